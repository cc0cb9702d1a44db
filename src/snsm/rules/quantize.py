r"""8-bit optimizer states (``state_precision="8bit"``): blockwise absmax quantization.

A state tensor x is viewed as a (rows, cols) matrix (:func:`block_view_shape`: the
matrix view of a tensor of 2+ dims, one row for a 1-D or 0-D one) and cut, along each
row, into blocks of up to ``BLOCK`` = 256 contiguous elements; a block never straddles
two rows, so the pieces of a row-sharded state (FSDP2) quantize exactly as the whole
does. A state that FSDP2 splits by columns (the (r, n) Subspace-Momentum of a wide
matrix) is blocked along its columns instead (``axis=1``: the blocks of its transpose),
for the same reason. Each block b keeps its absmax ``s_b = max |x_i|`` (float32, shape
(rows, ceil(cols / 256)), or (ceil(rows / 256), cols) along columns) and one uint8 code
per element for ``u_i = x_i / s_b``:

* ``signed`` (the momentum m): linear, q = round(127 u) in [-127, 127], stored as
  q mod 256 (so code 0 is the value 0 whatever the scale); |x - Q(x)| <= s_b / 254.
* ``unsigned`` (Adam's v and AdaGrad's per-coordinate sum): dynamic, more resolution
  near 0: code 0 is 0 and code k >= 1 is 2^{-E (255 - k) / 254}, E = 32, a
  geometric grid from 2^{-32} to 1 with ratio rho = 2^{E/254}; u is rounded to the
  nearest code, so |x - Q(x)| <= x (rho - 1) / 2 (< 4.6% of x) for x >= 2^{-32} s_b,
  and <= 2^{-33} s_b below.

The step dequantizes into a temporary, updates it in full precision, uses it for this
step's update and requantizes it (:mod:`snsm.rules.precision`, the one place that does);
the state holds only codes and scales. The
Subset-Norm accumulators (one number per subset, O(sqrt d)) and projector bases stay
in their full-precision dtype: quantizing them would save next to nothing. So does the
state of a parameter of fewer than 2 dims (biases, norms; :func:`snsm.optim.plan.plan_for`):
FSDP2 splits its one row over the ranks, and blocks within a shard would depend on the
world size, so a checkpoint would not reshard.

Why not a library: torchao's quantized optimizer states are tensor subclasses, which
``torch.load(weights_only=True)`` refuses and whose FSDP2 behaviour depends on the
sharding; bitsandbytes needs CUDA. This is a few tensor ops on plain uint8 / float32
tensors, the same on every device, traceable by ``torch.compile``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

STATE_PRECISIONS = ("full", "8bit")
BLOCK = 256
PIECE = 1 << 18  # elements (de)quantized at a time
QUANTIZE_PIECE_BYTES = 24  # temporaries per element of a piece: float32 values, int64 codes
DYNAMIC_EXPONENT = 32  # E: the unsigned code spans [2^-E, 1] of a block's absmax


def block_view_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """(rows, cols) of the blocks' view: (shape[0], rest) for 2+ dims, (1, numel) else."""
    if len(shape) >= 2:
        return shape[0], math.prod(shape[1:])
    return 1, math.prod(shape)


def scale_shape(shape: tuple[int, ...], axis: int = 0) -> tuple[int, int]:
    """Shape of the absmax scales of a state of ``shape``: (rows, ceil(cols / BLOCK)) with
    blocks along rows (``axis=0``); (ceil(rows / BLOCK), cols) with blocks along the columns
    of a matrix (``axis=1``: the blocks of its transpose)."""
    rows, cols = block_view_shape(shape)
    return (rows, -(-cols // BLOCK)) if axis == 0 else (-(-rows // BLOCK), cols)


def block_axis(shape: tuple[int, ...], scales: tuple[int, ...]) -> int:
    """The axis a state of ``shape`` with scales of shape ``scales`` is blocked along (the
    scales' shape tells: the two shapes coincide only where both axes quantize alike)."""
    return 0 if tuple(scales) == scale_shape(shape, 0) else 1


def dynamic_code(device: torch.device | str | None = None) -> Tensor:
    """The 256 values of the unsigned dynamic code: 0, then 2^{-E (255 - k) / 254}."""
    k = torch.arange(256, dtype=torch.float32, device=device)
    values = torch.exp2(-(255 - k) * (DYNAMIC_EXPONENT / 254))
    return torch.where(k == 0, torch.zeros_like(values), values)


def _encode(unit: Tensor, signed: bool) -> Tensor:
    """Codes in [0, 255] (float32) of values ``unit`` in [-1, 1] (signed) or [0, 1]."""
    if signed:
        q = torch.round(unit * 127)
        return torch.where(q < 0, q + 256, q)
    code = dynamic_code(unit.device)
    return torch.bucketize(unit, (code[:-1] + code[1:]) / 2).to(torch.float32)


def _decode(codes: Tensor, signed: bool) -> Tensor:
    """The float32 values in [-1, 1] or [0, 1] of uint8 ``codes``."""
    if signed:
        c = codes.to(torch.float32)
        return torch.where(c >= 128, c - 256, c) / 127
    return dynamic_code(codes.device)[codes.to(torch.int64)]


def _quantize_rows(matrix: Tensor, signed: bool) -> tuple[Tensor, Tensor]:
    """(codes as float32, of ``matrix``'s shape; absmax per block (rows, blocks)) of a
    float32 (rows, cols) matrix blocked along its rows."""
    rows, cols = matrix.shape
    blocks = F.pad(matrix, (0, (-cols) % BLOCK)).view(rows, -(-cols // BLOCK), BLOCK)
    absmax = blocks.abs().amax(dim=2, keepdim=True)
    unit = blocks / torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    encoded = _encode(unit, signed).view(rows, blocks.shape[1] * BLOCK)[:, :cols]
    return encoded, absmax.squeeze(2)


def _dequantize_rows(codes: Tensor, scale: Tensor, signed: bool) -> Tensor:
    """The float32 (rows, cols) values of uint8 ``codes`` blocked along rows."""
    scales = scale.repeat_interleave(BLOCK, dim=1)[:, :codes.shape[1]]
    return _decode(codes, signed) * scales


def _row_pieces(rows: int, cols: int) -> list[slice]:
    """Slices of whole rows of at most about ``PIECE`` elements: (de)quantizing piece by
    piece bounds the float32 / int64 temporaries by the piece, not by the tensor."""
    step = max(1, PIECE // max(cols, 1))
    return [slice(start, start + step) for start in range(0, rows, step)]


def _blocked_views(codes: Tensor, scale: Tensor) -> tuple[Tensor, Tensor, bool]:
    """(codes, scales) as (rows, cols) views blocked along their rows, and whether they are
    the transposes of the stored ones (a state blocked along its columns)."""
    matrix = codes.view(block_view_shape(tuple(codes.shape)))
    if block_axis(tuple(codes.shape), tuple(scale.shape)) == 1:
        return matrix.T, scale.T, True
    return matrix, scale, False


def quantize_(codes: Tensor, scale: Tensor, value: Tensor, signed: bool) -> None:
    """Write ``value`` into ``codes`` (uint8, its shape) and ``scale`` (float32 absmax per
    block, its shape giving the block axis); a block of zeros gets scale 0 and codes 0."""
    code_rows, scale_rows, transposed = _blocked_views(codes, scale)
    values = value.reshape(block_view_shape(tuple(value.shape)))
    values = values.T if transposed else values
    for rows in _row_pieces(*code_rows.shape):
        encoded, absmax = _quantize_rows(values[rows].to(torch.float32), signed)
        code_rows[rows].copy_(encoded)
        scale_rows[rows].copy_(absmax)


def dequantize(codes: Tensor, scale: Tensor, signed: bool, dtype: torch.dtype) -> Tensor:
    """x_i = s_b * value(code_i), a new tensor of ``codes``' shape in ``dtype``."""
    code_rows, scale_rows, transposed = _blocked_views(codes, scale)
    out = torch.empty(block_view_shape(tuple(codes.shape)), dtype=dtype, device=codes.device)
    out_rows = out.T if transposed else out
    for rows in _row_pieces(*code_rows.shape):
        out_rows[rows] = _dequantize_rows(code_rows[rows], scale_rows[rows], signed)
    return out.view(codes.shape)
