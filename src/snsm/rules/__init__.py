"""The two rules every optimizer here combines: a momentum rule and a step-size rule."""

from snsm.rules.momentum import MOMENTUM_RULES, REFRESH_RULES
from snsm.rules.partition import SUBSET_RULES, Partition, resolve_partition, sum_squares
from snsm.rules.step_size import ACCUMULATORS

__all__ = ["ACCUMULATORS", "MOMENTUM_RULES", "REFRESH_RULES", "SUBSET_RULES", "Partition",
           "resolve_partition", "sum_squares"]
