"""The theory lab: small seeded studies of the convergence claims behind the method.

Each experiment module exposes ``run(quick, out) -> Result``; :mod:`snsm_workbench.lab.registry`
holds the registry and ``snsm lab`` (:mod:`snsm_workbench.cli.lab`) runs them. Experiments
illustrate the theory on synthetic problems; they do not prove any bound.
"""

from snsm_workbench.lab.report import Result
from snsm_workbench.lab.registry import EXPERIMENTS, run, run_all

__all__ = ["EXPERIMENTS", "Result", "run", "run_all"]
