"""Per-group hyperparameters and per-parameter plans, resolved once per step.

A plan says which rules a parameter actually gets: Subset-Norm and
Subspace-Momentum act only where the group has them on (``use_snsm``), and
Subspace-Momentum only on tensors of 2+ dims; everything else gets the group's
per-coordinate rule (``subspace`` momentum falls back to ``ema``). A group with
``orthogonalize`` on gives each of its tensors (matrices only: a 1-D or empty one raises) an
:class:`~snsm.rules.orthogonalize.OrthogonalPlan` and no partition (D = 1).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch

from snsm.projectors import BasisProjector, IndexProjector, Layout, Projector, get_projector
from snsm.rules.momentum import COMPLEMENT_BUFFER, matrix_view_shape
from snsm.rules.bf16 import COMPENSATION
from snsm.rules.orthogonalize import SECOND_MOMENT, OrthogonalPlan, orthogonal_plan
from snsm.rules.partition import Partition, resolve_partition
from snsm.rules.precision import add_state


@dataclass(frozen=True)
class GroupHParams:
    """A param group's hyperparameters as plain typed values."""

    lr: float
    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    momentum: str
    accumulator: str
    bias_correction: bool
    subset_size: int | str
    rank: int
    projector: Projector
    update_gap: int
    on_refresh: str
    seed: int
    use_snsm: bool
    maximize: bool
    state_precision: str
    bf16_update: str
    nesterov: bool = False
    complement: str = "gradient"
    orthogonal: tuple | None = None  # (ns_steps, ns_coefficients, ns_dtype, shape_scale, normalize)

    @classmethod
    def from_group(cls, group: dict) -> "GroupHParams":
        beta1, beta2 = group["betas"]
        return cls(
            lr=float(group["lr"]), beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"], momentum=group["momentum"],
            accumulator=group["accumulator"], bias_correction=group["bias_correction"],
            subset_size=group["subset_size"], rank=group["rank"],
            projector=get_projector(group["projector"]), update_gap=group["update_gap"],
            on_refresh=group["on_refresh"], seed=group["seed"], use_snsm=group["use_snsm"],
            maximize=group["maximize"], state_precision=group["state_precision"],
            bf16_update=group["bf16_update"], nesterov=group["nesterov"],
            complement=group["complement"], orthogonal=orthogonal_settings(group))

    def plan(self, shape: tuple[int, ...]) -> "ParamPlan":
        return plan_for(tuple(shape), self.momentum, self.accumulator, self.subset_size,
                        self.use_snsm, self.state_precision == "8bit", self.orthogonal)

    @property
    def corrects_denominator(self) -> bool:
        """Whether D divides by sqrt(1 - b2^t): bias correction of an EMA accumulator."""
        return self.bias_correction and self.accumulator == "ema"


def orthogonal_settings(group: dict) -> tuple | None:
    """The orthogonalizing rule's settings of a group (None where ``orthogonalize`` is off)."""
    if not group["orthogonalize"]:
        return None
    return (group["ns_steps"], tuple(group["ns_coefficients"]), group["ns_dtype"],
            group["shape_scale"], group["normalize"])


@dataclass(frozen=True)
class ParamPlan:
    """The rules one parameter gets: its momentum rule, its partition (None: D = 1),
    for a shard of a parameter the projector that works on it (None: the group's), and
    whether its momentum and per-coordinate accumulator are 8-bit
    (:mod:`snsm.rules.quantize`), its orthogonalizing rule (None: none) and, for a shard of a
    parameter, the shard's ``ShardSpec`` (:mod:`snsm.optim.sharding`: an orthogonalizing rule
    gathers the whole matrix through it, and stochastic rounding draws the shard's rows' bits
    of the whole)."""

    momentum: str
    partition: Partition | None
    projector: Projector | None = None
    quantized: bool = False
    orthogonal: OrthogonalPlan | None = None
    shard: Any = None


@functools.lru_cache(maxsize=4096)
def plan_for(shape: tuple[int, ...], momentum: str, accumulator: str, subset_size: int | str,
             use_snsm: bool, quantized: bool, orthogonal: tuple | None = None) -> ParamPlan:
    """Resolve the effective rules for a tensor of ``shape`` in a group (8-bit states only
    for tensors of 2+ dims: see :mod:`snsm.rules.quantize`); ``orthogonal``: the group's
    :func:`orthogonal_settings`."""
    quantized = quantized and len(shape) >= 2
    if momentum == "subspace" and not (use_snsm and len(shape) >= 2 and 0 not in shape):
        momentum = "ema"
    if orthogonal is not None:
        return ParamPlan(momentum, None, quantized=quantized,
                         orthogonal=orthogonal_plan(shape, *orthogonal))
    if accumulator == "none":
        return ParamPlan(momentum, None, quantized=quantized)
    return ParamPlan(momentum, resolve_partition(shape, subset_size if use_snsm else 1),
                     quantized=quantized)


def state_layout(shape: tuple[int, ...], dtype: torch.dtype, hp: GroupHParams,
                 plan: ParamPlan | None = None) -> Layout:
    """Shapes and dtypes of a parameter's optimizer state, before any step.

    Shared by state initialization and ``snsm.estimate_state_bytes``, so the
    estimate and the measured state agree exactly. For a shard of a parameter,
    ``shape`` is the local shape and ``plan`` the shard's (local) plan. An 8-bit plan
    stores the momentum and a per-coordinate accumulator as uint8 codes, each with a
    float32 ``<key>_scale`` of one absmax per block (:mod:`snsm.rules.quantize`). An
    orthogonalizing plan with a second moment has ``second_moment``, (m, 1) or (1, n) of the
    global shape (replicated on shards), in float32 for 16-bit parameters
    (:mod:`snsm.rules.orthogonalize`). A bf16
    parameter under ``bf16_update="kahan"`` has a bf16 ``compensation`` of its own shape
    (:mod:`snsm.rules.bf16`).
    """
    plan = plan or hp.plan(shape)
    projector = plan.projector or hp.projector
    layout: Layout = {"step": ((), torch.float32)}
    if plan.momentum == "ema":
        add_state(layout, "momentum", tuple(shape), dtype, plan.quantized)
    elif plan.momentum == "subspace":
        matrix = matrix_view_shape(shape)
        add_state(layout, "momentum", projector.low_shape(matrix, hp.rank), dtype,
                   plan.quantized, momentum_block_axis(projector, matrix))
        layout.update(projector.state_layout(matrix, hp.rank, dtype))
        if hp.complement == "buffer":  # always 8-bit: the lean buffer of the complement
            add_state(layout, COMPLEMENT_BUFFER, matrix, dtype, True)
    if plan.partition is not None:
        add_state(layout, "accumulator", plan.partition.state_shape,
                   accumulator_dtype(dtype, plan.partition, hp.accumulator),
                   plan.quantized and plan.partition.per_coordinate)
    if plan.orthogonal is not None and plan.orthogonal.moment_shape is not None:
        moment_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
        layout[SECOND_MOMENT] = (plan.orthogonal.moment_shape, moment_dtype)
    if dtype == torch.bfloat16 and hp.bf16_update == "kahan":
        layout[COMPENSATION] = (tuple(shape), torch.bfloat16)
    return layout


def momentum_block_axis(projector: Projector, matrix: tuple[int, int]) -> int:
    """The axis an 8-bit subspace momentum is blocked along: the one of the gradient's side
    it keeps, which FSDP2 splits (:mod:`snsm.optim.sharding`). A basis projector keeps the
    rows of a tall matrix, (m, r): 0, and the columns of a wide one, (r, n): 1; an index
    projector the reverse. A shard's projector knows its global orientation (``tall``)."""
    inner = getattr(projector, "inner", projector)
    if not isinstance(inner, (BasisProjector, IndexProjector)):
        return 0
    tall = getattr(projector, "tall", matrix[0] >= matrix[1])
    return int(tall != isinstance(inner, BasisProjector))


def accumulator_dtype(dtype: torch.dtype, partition: Partition, accumulator: str) -> torch.dtype:
    """float32 where a 16-bit accumulator would overflow or stall, else the parameter's dtype.

    A Subset-Norm accumulator holds a sum of k squares: in fp16 it overflows 65504 (and the
    update then stays 0 forever), in bf16 it keeps 8 bits. Subset accumulators of 16-bit
    parameters are therefore float32; they are small (O(sqrt d)), so this costs little.
    A per-coordinate AdaGrad sum in fp16 grows without bound, and is float32 too; a
    per-coordinate EMA (Adam's v) keeps the parameter's dtype, as ``torch.optim.Adam`` does.
    """
    if dtype not in (torch.float16, torch.bfloat16):
        return dtype
    if not partition.per_coordinate or (accumulator == "sum" and dtype == torch.float16):
        return torch.float32
    return dtype


def working_dtypes(dtype: torch.dtype, plan: ParamPlan, accumulator: str) -> dict:
    """The dtype of each state key of a full-precision state, for the gradient ``dtype``: an
    8-bit key opens into it (:func:`snsm.rules.precision.open_state`)."""
    dtypes = {"momentum": dtype, COMPLEMENT_BUFFER: dtype}
    if plan.partition is not None:
        dtypes["accumulator"] = accumulator_dtype(dtype, plan.partition, accumulator)
    return dtypes
