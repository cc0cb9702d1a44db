r"""Stepping on sharded parameters (FSDP2 DTensors): what stays local, what communicates.

FSDP2 (``torch.distributed.fsdp.fully_shard``) keeps each parameter as a DTensor
sharded on dim 0: rank i holds rows [a_i, b_i) of the parameter (``torch.chunk``
sizes, so uneven shards are allowed and a rank may hold no row), and its
gradient holds the same rows of the averaged gradient. The optimizer steps on
the local shards (``to_local()``, which shares storage) and keeps its state as
local tensors. With G the (m, n) matrix view of the global gradient and G_i its
rows on rank i, every rule is decided on the *global* shape, exactly as one
process would, then applied to the shard.

Subset-Norm (the sum of g^2 over each subset):

* per coordinate, and the heuristic for m >= n (one subset per row, summed over
  dim 1): local; the accumulator is sharded like the parameter.
* the heuristic for m < n (one subset per column) and ``"tensor"``: each rank
  sums its rows in float32, then one all-reduce of the (1, n) or (1,) partial
  sums; that small accumulator is replicated.
* an int k or ``"sqrt"``: supported when its subsets are whole rows (for
  example ``"sqrt"`` on a square matrix); otherwise ValueError, since contiguous
  subsets of the flattened tensor straddle the shard boundaries.

Subspace-Momentum. Every state tensor is split over the ranks, by G's rows (m)
or by its columns (n), in ``torch.chunk`` pieces:

* basis Q, m >= n (Q is n x r): P(G) = G_i Q is local, the momentum (m, r) is
  split by rows; Q is split by its rows (G's columns) and all-gathered once per
  step for P and P^T (n r elements).
* basis Q, m < n (Q is m x r, split by rows like G): P(G) = sum_i Q_i^T G_i, a
  reduce-scatter of the (r, n) partial products leaves each rank its columns of
  P(G) and of the momentum; P^T(X) = Q_i X all-gathers X (r n elements each way).
* indices, m >= n: each rank fills the selected rows it holds, a reduce-scatter
  over columns gives its columns of P(G) and of the momentum; P^T all-gathers.
* indices, m < n: P(G) = G_i[:, idx] is local, the momentum (m, r) is split by rows.

8-bit states (``state_precision="8bit"``, :mod:`snsm.rules.quantize`): blocks run along
the dim that is not split (along rows for a row-split state, along columns for the
(r, n) momentum split by columns), so each rank's codes and scales are its piece of the
single process's, whatever the world size; the scales split like their codes. Tensors of
fewer than 2 dims keep full-precision state.

Orthogonalization (``orthogonalize=True``, the Muon family): Newton-Schulz needs the whole
N, so each step all-gathers the matrix's numerator rows (m n elements), orthogonalizes it
as one process would on every rank, and keeps its rows; the momentum stays split by rows,
the second moment after it (O(m) or O(n)) is replicated.

The indices (r integers), the step counts and the all-reduced Subset-Norm
accumulators above are replicated. Refresh (every ``update_gap`` steps): the
seeded projectors (``uniform``, ``gaussian``, ``srht``) draw from the global
shape with the generator of (seed, parameter index, step), the same on every
rank: each rank builds the basis a single process would, with no
communication, and keeps its piece. The data-dependent ones (``svd``, ``rsvd``,
``topk``) all-gather that one matrix's gradient on refresh steps only and build
from it exactly as a single process does. We chose the gather over an
all-reduced Gram matrix G^T G: it serves both sides (m < n too), it gives the
single-process basis up to the rounding of the gradient itself (an
eigendecomposition of G^T G would square the condition number), and its cost
(m n elements and one transient matrix, once per ``update_gap`` steps) is small
next to the per-step traffic of FSDP.

State dicts: :mod:`snsm.optim.sharded_state`. Meshes: 1-D (FSDP) or one ``Shard(0)`` dim
with the others ``Replicate`` (HSDP); collectives run on the sharded mesh dim's group.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from snsm.optim.plan import GroupHParams, ParamPlan, state_layout
from snsm.projectors import BasisProjector, IndexProjector, Layout, Projector
from snsm.rules.bf16 import COMPENSATION
from snsm.rules.momentum import COMPLEMENT_BUFFER, matrix_view_shape
from snsm.rules.partition import Partition

logger = logging.getLogger(__name__)

try:
    from torch.distributed.tensor import DTensor, Partial, Shard
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset
except ImportError:  # a torch built without distributed support
    DTensor = None

# How one state tensor is split: (its sharded dim, the global length of that dim).
Split = tuple[int, int]


def is_dtensor(tensor: Any) -> bool:
    return DTensor is not None and isinstance(tensor, DTensor)


def chunk(length: int, index: int, world: int) -> tuple[int, int]:
    """[start, stop) of piece ``index`` of ``length`` split as ``torch.chunk`` (FSDP2) does."""
    size = -(-length // world)
    start = min(index * size, length)
    return start, min(start + size, length)


def _contiguous_stride(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(math.prod(shape[i + 1:]) for i in range(len(shape)))


@dataclass(frozen=True)
class ShardSpec:
    """Rank ``index`` of ``world`` along the sharded mesh dim, for a parameter of global
    ``shape`` sharded on dim 0. ``group`` is that mesh dim's process group (None: no
    communication, as in the memory estimates); ``mesh``, ``placements`` and ``mesh_dim``
    rebuild DTensors."""

    shape: tuple[int, ...]
    index: int
    world: int
    group: Any = field(default=None, compare=False)
    mesh: Any = field(default=None, compare=False)
    placements: tuple = field(default=(), compare=False)
    mesh_dim: int = 0

    @classmethod
    def of(cls, tensor: Tensor) -> "ShardSpec | None":
        """The spec of a DTensor sharded on dim 0; None for a plain or replicated tensor."""
        if not is_dtensor(tensor):
            return None
        placements = tuple(tensor.placements)
        sharded = [i for i, p in enumerate(placements) if p.is_shard()]
        unsupported = [p for p in placements if not (p.is_replicate() or p.is_shard(0))]
        if unsupported or len(sharded) > 1 or tensor.dim() == 0:
            raise ValueError(
                f"snsm optimizers step on DTensors sharded on dim 0 of one mesh dim (FSDP2) "
                f"or replicated; got placements {placements} for a tensor of shape "
                f"{tuple(tensor.shape)}")
        if not sharded:
            return None
        mesh, dim = tensor.device_mesh, sharded[0]
        spec = cls(tuple(tensor.shape), mesh.get_local_rank(dim), mesh.size(dim),
                   mesh.get_group(dim), mesh, placements, dim)
        local, offset = compute_local_shape_and_global_offset(tensor.shape, mesh, placements)
        if (offset[0], offset[0] + local[0]) != (spec.start, spec.stop):
            raise ValueError(f"unexpected shard layout: rows {offset[0]}:{offset[0] + local[0]} "
                             f"of {tensor.shape[0]}, expected {spec.start}:{spec.stop}")
        return spec

    @classmethod
    def for_shard(cls, shape: tuple[int, ...], index: int, world_size: int) -> "ShardSpec":
        """Shard ``index`` of ``world_size`` under FSDP2's dim-0 chunking, without a process
        group (for the memory estimates)."""
        if not 0 <= index < world_size:
            raise ValueError(f"shard_index must be in [0, world_size={world_size}), got {index}")
        return cls(tuple(shape), index, world_size)

    @property
    def start(self) -> int:
        return chunk(self.shape[0], self.index, self.world)[0]

    @property
    def stop(self) -> int:
        return chunk(self.shape[0], self.index, self.world)[1]

    @property
    def rows(self) -> int:
        return self.stop - self.start

    @property
    def local_shape(self) -> tuple[int, ...]:
        return (self.rows, *self.shape[1:])

    def piece(self, length: int) -> tuple[int, int]:
        """This rank's [start, stop) of any dim of ``length`` split like the parameter."""
        return chunk(length, self.index, self.world)

    def local(self, tensor: Tensor) -> Tensor:
        """The local shard of a DTensor (sharing its storage) or the tensor itself."""
        return tensor.to_local() if is_dtensor(tensor) else tensor

    def plan(self, hp: GroupHParams) -> ParamPlan:
        """The global plan of the parameter, made local: its partition and projector."""
        plan = hp.plan(self.shape)
        partition = None if plan.partition is None else self.local_partition(plan.partition)
        projector = ShardProjector(hp.projector, self) if plan.momentum == "subspace" else None
        return ParamPlan(plan.momentum, partition, projector, plan.quantized, plan.orthogonal,
                         self)

    def local_partition(self, partition: Partition) -> Partition:
        """The partition of the local rows that gives this shard's part of the global one."""
        if partition.per_coordinate:
            return Partition(self.local_shape, ())
        m = self.shape[0]
        rest = math.prod(self.shape) // m
        if partition.view == (m, rest) and partition.dims == (1,):
            return Partition((self.rows, rest), (1,))
        if partition.view == (m, rest) and partition.dims == (0,):
            return AllReducedPartition((self.rows, rest), (0,), self.group)
        if partition.view == (m * rest,) and partition.dims == (0,):
            return AllReducedPartition((self.rows * rest,), (0,), self.group)
        raise ValueError(
            f"a parameter of shape {self.shape} sharded on dim 0 cannot use subsets of "
            f"{partition.view[-1]} contiguous elements (they straddle the shards); use "
            f"subset_size='heuristic', 'tensor', 1, or a size that makes a subset one row "
            f"({rest})")

    def state_layout(self, dtype: torch.dtype, hp: GroupHParams) -> Layout:
        """Shapes of this shard's state (what the process holding it allocates)."""
        return state_layout(self.local_shape, dtype, hp, self.plan(hp))

    def state_splits(self, plan: ParamPlan) -> dict[str, Split]:
        """The sharded state keys and how each is split (the others are replicated)."""
        rows = (0, self.shape[0])
        splits = {COMPENSATION: rows,  # a Kahan compensation, where there is one: like p
                  COMPLEMENT_BUFFER: rows, COMPLEMENT_BUFFER + "_scale": rows}  # likewise
        if plan.momentum == "ema":
            splits["momentum"] = rows
        elif plan.momentum == "subspace":
            splits.update(plan.projector.state_splits)
        if plan.partition is not None and not isinstance(plan.partition, AllReducedPartition):
            splits["accumulator"] = rows
        if plan.quantized:  # 8-bit blocks never straddle the split: scales split like codes
            if "momentum" in splits:
                splits["momentum_scale"] = splits["momentum"]
            if plan.partition is not None and plan.partition.per_coordinate:
                splits["accumulator_scale"] = rows
        return splits

    def _placements(self, placement) -> tuple:
        return tuple(placement if i == self.mesh_dim else p
                     for i, p in enumerate(self.placements))

    def to_dtensor(self, local: Tensor, split: Split) -> Tensor:
        """``local``, this rank's piece of a tensor split as ``split``, as a DTensor."""
        dim, length = split
        shape = tuple(length if i == dim else size for i, size in enumerate(local.shape))
        return DTensor.from_local(local, self.mesh, self._placements(Shard(dim)),
                                  run_check=False, shape=torch.Size(shape),
                                  stride=_contiguous_stride(shape))

    def gather(self, local: Tensor, split: Split) -> Tensor:
        """The whole tensor from every rank's piece (an all-gather)."""
        if self.group is None:
            return local
        return self.to_dtensor(local, split).full_tensor()

    def reduce_scatter(self, partial: Tensor, dim: int) -> Tensor:
        """This rank's piece along ``dim`` of the sum over ranks of ``partial``."""
        if self.group is None:
            return partial
        summed = DTensor.from_local(partial, self.mesh, self._placements(Partial()),
                                    run_check=False, shape=partial.shape,
                                    stride=_contiguous_stride(tuple(partial.shape)))
        return summed.redistribute(self.mesh, self._placements(Shard(dim))).to_local()


@dataclass(frozen=True)
class AllReducedPartition(Partition):
    """A shard's partition whose subsets span the rows of every rank: sums are all-reduced."""

    group: Any = field(default=None, compare=False)

    def reduce_(self, sums: Tensor) -> Tensor:
        if self.group is not None:
            dist.all_reduce(sums, group=self.group)
        return sums


class ShardProjector:
    """A projector applied to this rank's rows of a sharded (m, n) gradient.

    See the table in this module's docstring; ``build`` receives the local rows,
    ``project`` returns this rank's piece of P(G) and ``back_add_`` takes it.
    """

    def __init__(self, inner: Projector, shard: ShardSpec):
        if not isinstance(inner, (BasisProjector, IndexProjector)):
            raise ValueError(f"projector {inner!r} has no sharded form; the sharded forms are "
                             f"those of basis and index projectors")
        self.inner = inner
        self.shard = shard
        self.name = inner.name
        self.data_dependent = inner.data_dependent
        self.m, self.n = matrix_view_shape(shard.shape)
        self.tall = self.m >= self.n
        self.basis_family = isinstance(inner, BasisProjector)
        self.col_start, self.col_stop = shard.piece(self.n)
        self._gathered: tuple[Tensor, int, Tensor] | None = None

    @property
    def state_splits(self) -> dict[str, Split]:
        """How the momentum and the basis are split: by the gradient's rows (dim 0 of
        length m) or by its columns (length n: dim 0 of Q, dim 1 of a (r, n) momentum)."""
        rows, columns = (0, self.m), (1, self.n)
        if self.basis_family:
            return ({"momentum": rows, "basis": (0, self.n)} if self.tall
                    else {"basis": rows, "momentum": columns})
        return {"momentum": columns} if self.tall else {"momentum": rows}

    def low_shape(self, shape: tuple[int, int], rank: int) -> tuple[int, int]:
        """This rank's piece of P(G), for its local (rows, n) matrix ``shape``."""
        low = self.inner.low_shape((self.m, self.n), rank)
        dim, _ = self.state_splits["momentum"]
        local = self.col_stop - self.col_start if dim == 1 else shape[0]
        return (local, low[1]) if dim == 0 else (low[0], local)

    def state_layout(self, shape: tuple[int, int], rank: int, dtype: torch.dtype) -> Layout:
        layout = self.inner.state_layout((self.m, self.n), rank, dtype)
        if self.basis_family:
            (_, r), basis_dtype = layout["basis"]
            side = self.col_stop - self.col_start if self.tall else shape[0]
            layout["basis"] = ((side, r), basis_dtype)
        return layout

    def build(self, grad: Tensor, rank: int, generator: torch.Generator) -> dict[str, Tensor]:
        if self.data_dependent:
            full = self.shard.gather(grad, (0, self.m))
        else:  # a zero-stride stand-in: seeded projectors read only its shape, dtype, device
            full = grad.new_zeros(()).expand(self.m, self.n)
        state = self.inner.build(full, rank, generator)
        if self.basis_family:
            start, stop = ((self.col_start, self.col_stop) if self.tall
                           else (self.shard.start, self.shard.stop))
            state["basis"] = state["basis"][start:stop].contiguous()
        return state

    def _full_basis(self, local: Tensor) -> Tensor:
        """Q (n, r) of a tall matrix, gathered once per step (cached on this instance)."""
        if self._gathered is None or self._gathered[0] is not local or \
                self._gathered[1] != local._version:
            self._gathered = (local, local._version, self.shard.gather(local, (0, self.n)))
        return self._gathered[2]

    def _local_selection(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        """Positions in ``indices`` of this rank's rows, and those rows' local offsets."""
        mine = (indices >= self.shard.start) & (indices < self.shard.stop)
        positions = mine.nonzero().squeeze(1)
        return positions, indices[positions] - self.shard.start

    def project(self, grad: Tensor, state: dict[str, Tensor]) -> Tensor:
        if self.basis_family:
            if self.tall:
                return grad @ self._full_basis(state["basis"]).to(grad.dtype)
            return self.shard.reduce_scatter(state["basis"].to(grad.dtype).T @ grad, 1)
        indices = state["indices"]
        if not self.tall:
            return grad.index_select(1, indices)
        positions, rows = self._local_selection(indices)
        partial = grad.new_zeros(indices.numel(), self.n)
        partial.index_copy_(0, positions, grad.index_select(0, rows))
        return self.shard.reduce_scatter(partial, 1)

    def back_add_(self, out: Tensor, low: Tensor, state: dict[str, Tensor]) -> Tensor:
        if self.basis_family:
            if self.tall:
                q = self._full_basis(state["basis"]).to(low.dtype)
                return out.add_(low @ q.T) if out.dtype != low.dtype else out.addmm_(low, q.T)
            q, full = state["basis"].to(low.dtype), self.shard.gather(low, (1, self.n))
            return out.add_(q @ full) if out.dtype != low.dtype else out.addmm_(q, full)
        indices = state["indices"]
        if not self.tall:
            return out.index_add_(1, indices, low.to(out.dtype))
        positions, rows = self._local_selection(indices)
        full = self.shard.gather(low, (1, self.n))
        return out.index_add_(0, rows, full.index_select(0, positions).to(out.dtype))

    def __repr__(self) -> str:
        return f"ShardProjector({self.inner!r}, rows {self.shard.start}:{self.shard.stop})"


def needs_collectives(plan: ParamPlan) -> bool:
    """Whether a shard's step communicates (a compiled graph cannot hold that)."""
    return (isinstance(plan.projector, ShardProjector) or plan.shard is not None
            or isinstance(plan.partition, AllReducedPartition))


@functools.cache
def warn_compile_is_eager() -> None:
    logger.warning("compile=True: a param group whose sharded parameters need collectives "
                   "(Subset-Norm over columns, Subspace-Momentum) steps eagerly")
