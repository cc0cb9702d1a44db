"""The theory lab: small seeded studies of the convergence claims behind the method.

Each experiment module exposes ``run(quick, out) -> Result``; :mod:`snsm.lab.runner`
holds the registry and ``snsm lab`` (:mod:`snsm.lab.cli`) runs them. Experiments
illustrate the theory on synthetic problems; they do not prove any bound.
"""

from snsm.lab.report import Result
from snsm.lab.runner import EXPERIMENTS, run, run_all

__all__ = ["EXPERIMENTS", "Result", "run", "run_all"]
