r"""State precision as a layer: the rules read and write working tensors and never see codes.

A state key kept at 8 bits (``state_precision="8bit"``) holds uint8 codes in ``state[key]``
and float32 absmax scales in ``state[key + "_scale"]`` (:mod:`snsm.rules.quantize`); the state
dict stays plain tensors, which load with ``weights_only=True``. Each update path opens a
parameter's state once before its math and closes it once after:

.. code-block:: python

    working = open_state(state, dtypes)   # 8-bit keys dequantized into working tensors
    ...                                   # the rules: working["momentum"].lerp_(g, 1 - b1)
    close_state_(state, working)          # 8-bit keys requantized from them

A full-precision state opens as itself (no copy), so the same rule code updates it in place.
A key of nonnegative values (:data:`UNSIGNED_KEYS`: the accumulator of squared gradients)
uses the unsigned dynamic code, every other key (momenta) the signed linear one. So a new rule
gets 8-bit state by declaring its keys with :func:`add_state` in the state layout and running
between ``open_state`` and ``close_state_``: it never handles codes (Q(x): the quantizer;
the working tensor is x while the step runs, Q(x) after it).
"""

from __future__ import annotations

import torch

from snsm.projectors import Layout
from snsm.rules.quantize import block_axis, dequantize, quantize_, scale_shape

SCALE = "_scale"  # suffix of the key holding a quantized key's scales
UNSIGNED_KEYS = frozenset({"accumulator"})  # keys whose values are never negative


def add_state(layout: Layout, key: str, shape: tuple[int, ...], dtype: torch.dtype,
              quantized: bool, axis: int = 0) -> None:
    """Declare ``layout[key]``: in ``dtype``, or as uint8 codes plus ``key + "_scale"``
    (float32 absmax per block, blocked along ``axis``: :func:`snsm.rules.quantize.scale_shape`)."""
    if not quantized:
        layout[key] = (tuple(shape), dtype)
        return
    layout[key] = (tuple(shape), torch.uint8)
    layout[key + SCALE] = (scale_shape(tuple(shape), axis), torch.float32)


def is_quantized(state: dict, key: str) -> bool:
    """Whether ``state[key]`` holds 8-bit codes (its scales are ``state[key + "_scale"]``)."""
    return key + SCALE in state


def _is_scale(state: dict, key: str) -> bool:
    return key.endswith(SCALE) and key[:-len(SCALE)] in state


def open_state(state: dict, dtypes: dict[str, torch.dtype]) -> dict:
    """The state as working tensors: ``state`` itself when nothing is 8-bit; else a new dict
    with each 8-bit key dequantized into ``dtypes[key]`` (float32 if absent: the dtype a
    full-precision state would have), its scales left out, and every other entry as is."""
    if not any(_is_scale(state, key) for key in state):
        return state
    working = {}
    for key, value in state.items():
        if _is_scale(state, key):
            continue
        if is_quantized(state, key):
            value = dequantize(value, state[key + SCALE], key not in UNSIGNED_KEYS,
                               dtypes.get(key, torch.float32))
        working[key] = value
    return working


def close_state_(state: dict, working: dict) -> None:
    """Store ``working`` (from :func:`open_state`, updated) back into ``state``: requantize each
    8-bit key, and keep each entry the rules replaced (a rebuilt projector's basis)."""
    if working is state:
        return
    for key, value in working.items():
        if is_quantized(state, key):
            quantize_(state[key], state[key + SCALE], value, key not in UNSIGNED_KEYS)
        elif state.get(key) is not value:
            state[key] = value


def state_rows(state: dict, rows: int, piece: slice) -> dict | None:
    """The state of rows ``piece`` of a parameter of ``rows`` rows: each tensor's rows as
    views (an 8-bit key's codes and scales, which blocks along rows cut alike), 0-dim
    entries as they are; None when an entry does not split by rows (a state blocked along
    its columns, or of another first dim)."""
    part = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or value.dim() == 0:
            part[key] = value
            continue
        if value.shape[0] != rows or (is_quantized(state, key) and block_axis(
                tuple(value.shape), tuple(state[key + SCALE].shape)) != 0):
            return None
        part[key] = value[piece]
    return part


def open_states(states: list[dict], dtypes: list[dict[str, torch.dtype]]) -> list[dict]:
    """:func:`open_state` of each state (a multi-tensor path's bucket)."""
    return [open_state(state, types) for state, types in zip(states, dtypes)]


def close_states_(states: list[dict], working: list[dict]) -> None:
    """:func:`close_state_` of each state."""
    for state, opened in zip(states, working):
        close_state_(state, opened)


__all__ = ["SCALE", "UNSIGNED_KEYS", "add_state", "close_state_", "close_states_",
           "is_quantized", "open_state", "open_states", "state_rows"]
