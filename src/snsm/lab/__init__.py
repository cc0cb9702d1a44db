"""The theory lab: small seeded studies of the convergence claims behind the method.

Each experiment module exposes ``run(quick, out) -> Result``; :mod:`snsm.lab.registry`
holds the registry and ``snsm lab`` (:mod:`snsm.cli.lab`) runs them. Experiments
illustrate the theory on synthetic problems; they do not prove any bound.
"""

from snsm.lab.report import Result
from snsm.lab.registry import EXPERIMENTS, run, run_all

__all__ = ["EXPERIMENTS", "Result", "run", "run_all"]
