"""The rules every optimizer here combines: a momentum rule (:mod:`~snsm.rules.momentum`) and a
step-size rule (:mod:`~snsm.rules.step_size`, over a :mod:`~snsm.rules.partition`), or the
orthogonalizing rule of Muon (:mod:`~snsm.rules.orthogonalize`) in place of a step size; how the
state is stored (:mod:`~snsm.rules.precision` over :mod:`~snsm.rules.quantize`) and how an
update reaches a bf16 parameter (:mod:`~snsm.rules.bf16`)."""

from snsm.rules.momentum import COMPLEMENT_RULES, MOMENTUM_RULES, REFRESH_RULES
from snsm.rules.partition import SUBSET_RULES, Partition, resolve_partition, sum_squares
from snsm.rules.step_size import ACCUMULATORS

__all__ = ["ACCUMULATORS", "COMPLEMENT_RULES", "MOMENTUM_RULES", "REFRESH_RULES",
           "SUBSET_RULES", "Partition", "resolve_partition", "sum_squares"]
