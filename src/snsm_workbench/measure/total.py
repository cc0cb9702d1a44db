r"""Total training memory per GPU: weights, gradients, optimizer state and activations.

``snsm memory --total`` counts, for each setup users compare, the bytes one GPU
holds (FSDP2: shard 0's share, the largest; ``torch.chunk`` pieces on dim 0):

* **weights**: every parameter in the setup's weight dtype. Under ``torch.amp`` the
  fp32 weights are the master copy (autocast casts them per op), so no second copy.
* **gradients**: the full gradient buffer in the weight dtype; with updates inside
  the backward pass (:func:`snsm.step_in_backward`, GaLore's per-layer updates)
  only the largest parameter's gradient is live at a time. Both run on one GPU
  only (DDP and FSDP2 reduce the gradients after the hooks fire), so those setups
  have no row for more GPUs.
* **state**: the optimizer's, from the layout that allocates it
  (:func:`snsm_workbench.measure.memory.estimate_state_bytes`); GaLore 8-bit from its layout:
  two 8-bit moments (bitsandbytes: one fp32 absmax per 256 elements, tensors under
  4096 elements in fp32) of the projected gradient plus the bf16 basis for the
  block matrices, 8-bit Adam for the rest.
* **update**: the transient of a pure-bf16 update (``bf16_update="stochastic"``, the
  default: :mod:`snsm.rules.bf16`), plus one chunk of rounding bits (int32,
  ``ROUNDING_CHUNK`` elements). On the single-tensor path (inside the backward pass, and
  on the CPU) it is the largest over the parameters of what one update holds at once:
  the float32 copy it works on (4 bytes per element), the working copies of its 8-bit
  state keys (:mod:`snsm.rules.precision`: the momentum in the weight dtype, a
  per-coordinate accumulator in float32) with the (de)quantizing's temporaries
  (``QUANTIZE_PIECE_BYTES`` per element of a piece of ``PIECE``), one tensor in the
  weight dtype (the numerator N, into which the back-projection adds in place) and, for
  subspace momentum, two tensors of the momentum's shape (P(g), m_hat - P(g)) in the
  weight dtype; a row-separable parameter (EMA or no momentum, D per coordinate: its
  rows update independently) holds these for a piece of about ``UPDATE_PIECE`` elements
  of whole rows at a time (:func:`snsm.optim.update.update_in_row_pieces_`). The
  update's smaller temporaries are not counted. On the foreach path (CUDA, outside the
  backward pass) it is the float32 copies of a piece of up to ``MASTER_PIECE`` elements.
* **activations** (an estimate, not a measurement): what the backward pass keeps
  per token, in the activation dtype a (2 bytes under bf16 autocast), for a LLaMA
  block of width h and MLP width f with fused (SDPA) attention: the two norm
  inputs, the normalized input, q, k, v, the attention output (2h + h + 3h + h)
  and the MLP's input, gate, up, activation and product (h + 4f), so
  :math:`a (8h + 4f)` per layer; with activation checkpointing, the block input
  h per layer plus one block's :math:`8h + 4f` while it is recomputed. Plus the
  embedding output and the logits: V in a, and twice V in fp32 for the loss
  (the upcast logits and the log-softmax).

The weights, gradients and state equal the bytes of the live tensors of a real
step (tested on small presets); ``snsm memory --measure`` puts a measured peak
beside the estimate. FSDP2's per-block all-gather and reduce-scatter buffers are
not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from snsm.memory import estimate_state_bytes
from snsm_workbench.measure.memory import GIB, rank_hparams
from snsm_workbench.measure.models import PRESETS, ModelShape, llama_skeleton
from snsm_workbench.measure.peers import FP32, bnb8_bytes
from snsm.optim import create_optimizer
from snsm.optim.foreach import MASTER_PIECE
from snsm.optim.plan import GroupHParams, state_layout, working_dtypes
from snsm.optim.update import UPDATE_PIECE, row_separable
from snsm.optim.routing import hidden_matrices
from snsm.optim.sharding import ShardSpec
from snsm.projectors import SVDProjector
from snsm.rules.bf16 import ROUNDING_CHUNK
from snsm.rules.quantize import PIECE, QUANTIZE_PIECE_BYTES

GALORE_8BIT = "galore_8bit"
PARTS = ("weights", "gradients", "state", "update", "activations", "total")


@dataclass(frozen=True)
class Setup:
    """One way to train: the optimizer (a registry name or ``galore_8bit``), the dtype of
    the weights (and gradients) and of the full-precision state, and whether each
    parameter is updated inside the backward pass."""

    name: str
    optimizer: str
    weights: torch.dtype
    states: torch.dtype
    in_backward: bool
    description: str
    state_precision: str = "full"  # "8bit": blockwise 8-bit momenta (snsm's state_precision)

    @property
    def hparams(self) -> dict:
        """The optimizer's own arguments for this setup (beside the rank)."""
        return {} if self.state_precision == "full" else {"state_precision": self.state_precision}


SETUPS: dict[str, Setup] = {s.name: s for s in (
    Setup("adamw-amp", "adamw", torch.float32, torch.float32, False,
          "AdamW, torch.amp: fp32 weights (the master copy), fp32 gradients and state"),
    Setup("adamw-bf16", "adamw", torch.bfloat16, torch.bfloat16, False,
          "AdamW in pure bf16"),
    Setup("galore-8bit-per-layer", GALORE_8BIT, torch.bfloat16, torch.bfloat16, True,
          "GaLore's 7B setup: bf16, 8-bit Adam states, per-layer updates (one GPU)"),
    Setup("adamw_snsm-bf16", "adamw_snsm", torch.bfloat16, torch.bfloat16, False,
          "AdamSNSM in pure bf16"),
    Setup("adamw_snsm-bf16-in-backward", "adamw_snsm", torch.bfloat16, torch.bfloat16, True,
          "AdamSNSM in pure bf16, steps inside the backward pass"),
    Setup("adamw_snsm-bf16-8bit-in-backward", "adamw_snsm", torch.bfloat16, torch.bfloat16, True,
          "AdamSNSM in pure bf16, 8-bit states, steps inside the backward pass",
          state_precision="8bit"),
)}


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _local_numel(param: nn.Parameter, world_size: int) -> int:
    if world_size == 1 or param.dim() == 0:
        return param.numel()
    return math.prod(ShardSpec.for_shard(tuple(param.shape), 0, world_size).local_shape)


def galore_8bit_state_bytes(model: nn.Module, rank: int, basis_dtype: torch.dtype,
                            include_bases: bool = True) -> int:
    """GaLore 8-bit's state on one GPU (see the module doc)."""
    hidden = {id(p) for p in hidden_matrices(model)}
    total = 0
    for param in model.parameters():
        if id(param) not in hidden:
            total += bnb8_bytes(param.numel())
            continue
        matrix = (param.shape[0], math.prod(param.shape[1:]))
        total += bnb8_bytes(math.prod(SVDProjector().low_shape(matrix, rank)))
        if include_bases:
            (basis_shape, _), = SVDProjector().state_layout(matrix, rank, basis_dtype).values()
            total += math.prod(basis_shape) * _itemsize(basis_dtype)
    return total


def _transient(param: nn.Parameter, hp: GroupHParams, weights: torch.dtype,
               world_size: int) -> int:
    """Bytes one single-tensor update of ``param`` holds at once (module doc): its float32
    copy, the working copies of its 8-bit state keys and one tensor in the weight dtype,
    for the whole (local) parameter or, if it is row-separable, for a piece of rows."""
    shard = (ShardSpec.for_shard(tuple(param.shape), 0, world_size)
             if world_size > 1 and param.dim() > 0 else None)
    shape = tuple(param.shape) if shard is None else shard.local_shape
    plan = hp.plan(shape) if shard is None else shard.plan(hp)
    layout = (state_layout(shape, weights, hp, plan) if shard is None
              else shard.state_layout(weights, hp))
    numel = math.prod(shape)
    updated = numel  # elements updated at once
    if row_separable(param, plan):
        row = numel // max(shape[0], 1)
        updated = min(numel, max(1, UPDATE_PIECE // max(row, 1)) * row)
    dtypes = working_dtypes(weights, plan, hp.accumulator)
    quantized = {key: math.prod(key_shape) for key, (key_shape, dtype) in layout.items()
                 if dtype == torch.uint8}
    working = sum(n * _itemsize(dtypes.get(key, torch.float32)) for key, n in quantized.items())
    transient = updated * (FP32 + _itemsize(weights)) + working * updated // max(numel, 1)
    if plan.momentum == "subspace":  # P(g) and m_hat - P(g); P^T adds into N in place
        transient += 2 * math.prod(layout["momentum"][0]) * _itemsize(weights)
    if quantized:
        transient += QUANTIZE_PIECE_BYTES * min(PIECE, updated)
    return transient


def update_bytes(model: nn.Module, setup: Setup, rank: int, world_size: int = 1,
                 foreach: bool = True) -> int:
    """The transient of one pure-bf16 update (module doc); 0 for other weight dtypes."""
    if setup.weights != torch.bfloat16 or setup.optimizer == GALORE_8BIT:
        return 0  # no bf16 rule of ours (GaLore's update is its own)
    if foreach and not setup.in_backward:
        numels = [_local_numel(p, world_size) for p in model.parameters()]
        return FP32 * (min(sum(numels), max(max(numels), MASTER_PIECE)) + ROUNDING_CHUNK)
    optimizer = create_optimizer(model, setup.optimizer, **rank_hparams(setup.optimizer, rank),
                                 **setup.hparams)
    largest = max(_transient(param, GroupHParams.from_group(group), setup.weights, world_size)
                  for group in optimizer.param_groups for param in group["params"])
    return largest + FP32 * ROUNDING_CHUNK


def activation_bytes(shape: ModelShape, tokens: int, checkpointing: bool,
                     dtype: torch.dtype = torch.bfloat16) -> int:
    """The activations the backward pass keeps for ``tokens`` tokens (module doc's estimate)."""
    a = _itemsize(dtype)
    block = 8 * shape.hidden + 4 * shape.ffn
    per_token = (shape.layers * shape.hidden + block) if checkpointing else shape.layers * block
    logits = shape.vocab * (a + 2 * FP32)
    return tokens * (a * (per_token + shape.hidden) + logits)


def total_row(model: nn.Module, shape: ModelShape, setup: Setup, rank: int, tokens: int,
              checkpointing: bool, world_size: int = 1, include_bases: bool = True,
              foreach: bool = True) -> dict:
    """Bytes per GPU of one setup: weights, gradients, state, activations and their total
    (``foreach``: the step takes the multi-tensor path, as on CUDA; else the single-tensor
    one, as on the CPU)."""
    itemsize = _itemsize(setup.weights)
    numels = [_local_numel(p, world_size) for p in model.parameters()]
    weights = sum(numels) * itemsize
    gradients = (max(numels) if setup.in_backward else sum(numels)) * itemsize
    if setup.optimizer == GALORE_8BIT:
        if world_size > 1:
            raise ValueError("GaLore's per-layer updates run on one GPU only; "
                             f"got world_size={world_size}")
        state = galore_8bit_state_bytes(model, rank, setup.states, include_bases)
    else:
        state = estimate_state_bytes(model, setup.optimizer, dtype=setup.states,
                                     include_bases=include_bases, world_size=world_size,
                                     **rank_hparams(setup.optimizer, rank), **setup.hparams)
    activations = activation_bytes(shape, tokens, checkpointing)  # bf16 autocast or pure bf16
    update = update_bytes(model, setup, rank, world_size, foreach)
    return {"setup": setup.name, "weights": weights, "gradients": gradients, "state": state,
            "update": update, "activations": activations,
            "total": weights + gradients + state + update + activations}


def total_rows(model_name: str, rank: int, micro_batch: int, seq_len: int | None,
               checkpointing: bool, world_size: int = 1, include_bases: bool = True
               ) -> list[dict]:
    """One row per setup of :data:`SETUPS` for LLaMA ``model_name``, in bytes and GiB."""
    shape = PRESETS[model_name]
    skeleton = llama_skeleton(model_name)
    tokens = micro_batch * (seq_len or shape.seq_len)
    rows = []
    for setup in SETUPS.values():
        if setup.in_backward and world_size > 1:
            continue  # updates inside the backward pass run on one GPU only
        row = total_row(skeleton, shape, setup, rank, tokens, checkpointing, world_size,
                        include_bases)
        row.update({f"{key}_gib": round(row[key] / GIB, 2) for key in PARTS})
        rows.append(row)
    return rows
