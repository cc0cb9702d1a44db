"""A large row-separable parameter is updated a piece of rows at a time
(:func:`snsm.optim.update.update_in_row_pieces_`, issue 24 item 16): its float32 copy, its
working 8-bit state and its temporaries are a piece's, and the result is the whole
update's, bit for bit (each piece rounds with its own elements' bits)."""

from __future__ import annotations

import pytest
import torch

import snsm
from snsm.optim import update as update_module
from snsm.rules.bf16 import rounding_bits

SHAPE = (96, 40)  # 3840 elements; a piece of 256 elements is 6 rows (not a chunk's multiple)


def _two_steps(name: str, piece: int, monkeypatch, **hparams) -> tuple[torch.Tensor, dict]:
    monkeypatch.setattr(update_module, "UPDATE_PIECE", piece)
    monkeypatch.setattr("snsm.rules.bf16.ROUNDING_CHUNK", 1000)  # chunks straddle the pieces
    generator = torch.Generator().manual_seed(0)
    param = torch.randn(SHAPE, generator=generator).bfloat16().requires_grad_()
    optimizer = snsm.get_optimizer_class(name)([param], foreach=False, **hparams)
    for _ in range(2):
        param.grad = torch.randn(SHAPE, generator=generator).bfloat16()
        optimizer.step()
    return param.detach().clone(), {k: v.clone() for k, v in optimizer.state[param].items()}


@pytest.mark.parametrize("hparams", [
    {"state_precision": "8bit"},
    {"state_precision": "full"},
    {"bf16_update": "kahan", "state_precision": "8bit"},
    {"bf16_update": "nearest"},
])
def test_pieces_update_as_the_whole_does_bit_for_bit(hparams, monkeypatch):
    whole, whole_state = _two_steps("adamw", 1 << 30, monkeypatch, **hparams)
    pieces, pieces_state = _two_steps("adamw", 256, monkeypatch, **hparams)
    assert torch.equal(whole, pieces)
    assert whole_state.keys() == pieces_state.keys()
    for key in whole_state:
        assert torch.equal(whole_state[key], pieces_state[key]), key


def test_the_update_is_cut_into_row_pieces(monkeypatch):
    """The pieces are really used: a parameter of 3840 elements with pieces of 256 calls
    the update on 16 pieces of 6 rows (and once on the whole, which cuts them)."""
    calls = []
    original = update_module.update_parameter_

    def spy(param, *args, **kwargs):
        calls.append(tuple(param.shape))
        return original(param, *args, **kwargs)

    monkeypatch.setattr(update_module, "update_parameter_", spy)
    _two_steps("adamw", 256, monkeypatch, state_precision="8bit")
    assert calls.count((6, 40)) >= 16


def test_a_part_of_the_bits_is_the_whole_bits_slice():
    """The bits of a part (a piece, an FSDP2 shard) at an offset are the whole tensor's bits
    at those elements, across chunk boundaries."""
    whole = rounding_bits((3, 1 << 20), torch.device("cpu"), 5)
    part = whole.part(700_000, (2, 1 << 20))
    assert torch.equal(part.whole().view(-1), whole.whole().view(-1)[700_000:700_000 + (2 << 20)])

