r"""How the update reaches a bf16 parameter with no fp32 master copy (``bf16_update``).

A bf16 number keeps 8 significant bits: an update smaller than half the spacing of the
weight (2^-9 of it) rounds away, and training with small learning rates stalls. Three
rules, all applied to bf16 parameters only (other dtypes are updated as they are):

* ``"stochastic"`` (the default): the update is computed on a float32 copy w of p and
  written back with unbiased stochastic rounding, E[p'] = w'
  (:func:`snsm.rules.quantize.stochastic_round_to_bf16`; bits seeded by the group's seed,
  the parameter's index and the step, never the global RNG). No extra state.
* ``"kahan"``: a bf16 compensation c per parameter (state key ``"compensation"``, 2 bytes
  per element) holds the low bits p lost. The weight is w = p + c in float32 (|c| is at
  most half a bf16 spacing of p). Each step updates w in float32 and splits it again:

  .. math::
      w = p + c, \quad w' = \mathrm{update}(w), \quad p' = \mathrm{rn}_{bf16}(w'),
      \quad c' = \mathrm{rn}_{bf16}(w' - p')

  w' - p' is exact in float32 and |w' - p'| <= s/2 (s: the bf16 spacing at p'); storing
  it in bf16 loses at most 2^-9 |w' - p'| <= 2^-10 s per step. Besides, a step rounds in
  float32 a few times (p + c, the update: each <= u |w|, u = 2^-24), as a float32 master
  would. So after n steps, p is within s/2 + n (2^-10 s + k u |w|) of the weight a float32
  master copy would hold (k: the step's float32 roundings), deterministically.
* ``"nearest"``: the update in the parameter's dtype, rounded to nearest (what plain
  PyTorch does). Updates below half a spacing are lost: shown only for comparison.
"""

from __future__ import annotations

import torch
from torch import Tensor

from snsm.rules.quantize import stochastic_round_to_bf16

BF16_UPDATES = ("stochastic", "kahan", "nearest")
COMPENSATION = "compensation"  # the state key of the Kahan compensation


def uses_master(dtype: torch.dtype, bf16_update: str) -> bool:
    """Whether a parameter of ``dtype`` is updated through a float32 copy: bf16 parameters
    whose rule is not ``"nearest"``."""
    return dtype == torch.bfloat16 and bf16_update != "nearest"


def master_copy(param: Tensor, compensation: Tensor | None) -> Tensor:
    """The float32 weight w of a bf16 parameter: p, plus c under Kahan (exact)."""
    master = param.float()
    return master if compensation is None else master.add_(compensation)


def write_back_(param: Tensor, master: Tensor, bits: Tensor | None,
                compensation: Tensor | None) -> None:
    """Store the updated float32 weight ``master`` into the bf16 ``param``: stochastically
    with ``bits``, else split into p and c with a ``compensation``, else to nearest.
    ``master`` is used as scratch space."""
    if bits is not None:
        param.copy_(stochastic_round_to_bf16(master, bits))
        return
    param.copy_(master)
    if compensation is not None:
        compensation.copy_(master.sub_(param))
