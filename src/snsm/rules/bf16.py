r"""How the update reaches a bf16 parameter with no fp32 master copy (``bf16_update``).

A bf16 number keeps 8 significant bits: an update smaller than half the spacing of the
weight (2^-9 of it) rounds away, and training with small learning rates stalls. Three
rules, all applied to bf16 parameters only (other dtypes are updated as they are):

* ``"stochastic"`` (the default): the update is computed on a float32 copy w of p and
  written back with unbiased stochastic rounding, E[p'] = w'
  (:func:`stochastic_round_to_bf16`; bits seeded by the group's seed, the parameter's
  index and the step, never the global RNG). No extra state. The rounding runs a chunk
  of ``ROUNDING_CHUNK`` elements at a time, in place in w, with that chunk's bits
  (:class:`RoundingBits`): its transient is 4 bytes per element of one chunk (4 MiB),
  not 10 per element of the parameter; what remains is w itself (4 bytes per element
  of the parameter being updated).
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

import math
from typing import Iterator, NamedTuple

import torch
from torch import Tensor

from snsm.rules.momentum import mix_seed

BF16_UPDATES = ("stochastic", "kahan", "nearest")
COMPENSATION = "compensation"  # the state key of the Kahan compensation
ROUNDING_CHUNK = 1 << 20  # elements rounded stochastically at a time (their bits: 4 MiB)


class RoundingBits(NamedTuple):
    """The random bits of one stochastic rounding of a tensor of ``shape``, drawn a chunk
    at a time: chunk c (elements [c C, (c + 1) C) of the whole tensor flattened in
    row-major order, C = ``ROUNDING_CHUNK``) draws 16 bits per element (int32 in
    [0, 2^16)) from a generator seeded with mix_seed(seed, c), never the global RNG. An
    element's bits depend on the seed and its position in the whole tensor only, so every
    path rounds alike, however it cuts the work: a part of the whole (a row piece of an
    update, an FSDP2 shard's rows) is ``shape`` at element ``offset`` of a whole of
    ``total`` elements (None: the part is the whole)."""

    shape: tuple[int, ...]
    device: torch.device
    seed: int
    offset: int = 0
    total: int | None = None

    @property
    def whole_numel(self) -> int:
        """Elements of the whole tensor (each chunk draws its exact size: every device's
        generator then gives the same bits)."""
        return math.prod(self.shape) if self.total is None else self.total

    def chunk(self, index: int) -> Tensor:
        """The bits of the whole tensor's chunk ``index`` (shorter for the last chunk)."""
        size = min(ROUNDING_CHUNK, self.whole_numel - index * ROUNDING_CHUNK)
        generator = torch.Generator(device=self.device).manual_seed(mix_seed(self.seed, index))
        return torch.randint(0, 1 << 16, (size,), generator=generator, device=self.device,
                             dtype=torch.int32)

    def pieces(self) -> Iterator[tuple[int, int, Tensor]]:
        """(start, stop, bits) of this part, one chunk of the whole at a time: elements
        [start, stop) of the part flattened, and their bits."""
        first, stop = self.offset, self.offset + math.prod(self.shape)
        for index in range(first // ROUNDING_CHUNK, -(-stop // ROUNDING_CHUNK)):
            begin = index * ROUNDING_CHUNK
            low, high = max(begin, first), min(begin + ROUNDING_CHUNK, stop)
            yield low - first, high - first, self.chunk(index)[low - begin:high - begin]

    def part(self, start: int, shape: tuple[int, ...]) -> "RoundingBits":
        """The bits of the part of ``shape`` at element ``start`` of this one."""
        return RoundingBits(tuple(shape), self.device, self.seed, self.offset + start,
                            self.whole_numel)

    def whole(self) -> Tensor:
        """Every bit of this part at once, in ``shape`` (for a traced update, which takes
        them as an input: the compiled path)."""
        bits = [piece for _, _, piece in self.pieces()]
        if not bits:
            return torch.zeros(self.shape, dtype=torch.int32, device=self.device)
        return torch.cat(bits).view(self.shape)


def rounding_bits(shape: tuple[int, ...], device: torch.device, seed: int, offset: int = 0,
                  total: int | None = None) -> RoundingBits:
    """The bits of one stochastic rounding (:class:`RoundingBits`), drawn when used."""
    return RoundingBits(tuple(shape), torch.device(device), seed, offset, total)


def stochastic_round_to_bf16(value: Tensor, bits: Tensor) -> Tensor:
    r"""float32 ``value`` rounded to bfloat16 stochastically: with r uniform in [0, 2^16),
    the float32 bit pattern plus r, its low 16 bits cleared. x between the neighbours
    a < b (|b - a| = one bf16 ulp) becomes b with probability (x - a) / (b - a), so
    E[round(x)] = x: updates below half an ulp, which nearest rounding loses, survive on
    average."""
    rounded = (value.view(torch.int32) + bits).bitwise_and_(-65536)  # -65536 = 0xFFFF0000
    return rounded.view(torch.float32).to(torch.bfloat16)


def stochastic_round_(param: Tensor, master: Tensor, bits: RoundingBits) -> None:
    """``param`` <- :func:`stochastic_round_to_bf16` of ``master``, a chunk at a time, in
    place in ``master`` (scratch): the result has zero low bits, so the copy into the bf16
    ``param`` is exact."""
    work = master.contiguous().view(-1)  # the master copy itself, unless it is strided
    target = param.view(-1) if param.is_contiguous() else None
    for start, stop, piece_bits in bits.pieces():
        piece = work[start:stop]
        piece.view(torch.int32).add_(piece_bits).bitwise_and_(-65536)
        if target is not None:
            target[start:stop].copy_(piece)
        del piece_bits  # freed before the next chunk is drawn: one chunk's bits at a time
    if target is None:
        param.copy_(work.view(param.shape))


def uses_master(dtype: torch.dtype, bf16_update: str) -> bool:
    """Whether a parameter of ``dtype`` is updated through a float32 copy: bf16 parameters
    whose rule is not ``"nearest"``."""
    return dtype == torch.bfloat16 and bf16_update != "nearest"


def master_copy(param: Tensor, compensation: Tensor | None) -> Tensor:
    """The float32 weight w of a bf16 parameter: p, plus c under Kahan (exact)."""
    master = param.float()
    return master if compensation is None else master.add_(compensation)


def write_back_(param: Tensor, master: Tensor, bits: RoundingBits | Tensor | None,
                compensation: Tensor | None) -> None:
    """Store the updated float32 weight ``master`` into the bf16 ``param``: stochastically
    with ``bits`` (in chunks; a tensor: every bit at once, as a traced update has them),
    else split into p and c with a ``compensation``, else to nearest. ``master`` is used as
    scratch space."""
    if isinstance(bits, Tensor):
        param.copy_(stochastic_round_to_bf16(master, bits))
    elif bits is not None:
        stochastic_round_(param, master, bits)
    if bits is not None:
        return
    param.copy_(master)
    if compensation is not None:
        compensation.copy_(master.sub_(param))
