"""The state-precision layer (snsm.rules.precision): rules see working tensors, never codes."""

from __future__ import annotations

import re
from pathlib import Path

import torch

import snsm
from snsm.rules.precision import add_state, close_state_, open_state
from snsm.rules.quantize import BLOCK, dequantize

SRC = Path(snsm.__file__).parent


def _state(layout: dict) -> dict:
    return {key: torch.zeros(shape, dtype=dtype) for key, (shape, dtype) in layout.items()}


def test_a_full_precision_state_opens_as_itself():
    layout = {}
    add_state(layout, "momentum", (4, 3), torch.float32, quantized=False)
    state = _state(layout)
    working = open_state(state, {})
    assert working is state
    working["momentum"].add_(1.0)
    close_state_(state, working)
    assert torch.equal(state["momentum"], torch.ones(4, 3))


def test_a_new_rules_8bit_momentum_needs_no_code_handling():
    """A rule that declares its key with add_state (as a future orthogonalizing rule would)
    updates a float working tensor; the state keeps uint8 codes and float32 scales."""
    layout = {"step": ((), torch.float32)}
    add_state(layout, "ortho_momentum", (4, 2 * BLOCK), torch.float32, quantized=True)
    add_state(layout, "accumulator", (4, 2 * BLOCK), torch.float32, quantized=True)
    state = _state(layout)
    assert state["ortho_momentum"].dtype == torch.uint8
    assert state["ortho_momentum_scale"].shape == (4, 2)
    target = torch.randn(4, 2 * BLOCK, generator=torch.Generator().manual_seed(0))
    working = open_state(state, {"ortho_momentum": torch.float32})
    assert set(working) == {"step", "ortho_momentum", "accumulator"}  # no scales, no codes
    assert working["ortho_momentum"].dtype == torch.float32
    working["ortho_momentum"].add_(target)  # the rule's math, in float32
    working["accumulator"].add_(target.square())
    close_state_(state, working)
    momentum = dequantize(state["ortho_momentum"], state["ortho_momentum_scale"], True,
                          torch.float32)
    scale = state["ortho_momentum_scale"].repeat_interleave(BLOCK, dim=1)
    assert ((momentum - target).abs() <= scale / 254 + 1e-7).all()  # signed by default
    again = open_state(state, {})
    assert torch.equal(again["ortho_momentum"], momentum)
    assert (again["accumulator"] >= 0).all()  # the unsigned code of a nonnegative key
    assert torch.allclose(again["accumulator"], target.square(), rtol=0.05, atol=1e-6)


def test_a_replaced_entry_is_kept_on_close():
    layout = {}
    add_state(layout, "momentum", (2, BLOCK), torch.float32, quantized=True)
    state = {**_state(layout), "basis": torch.zeros(3, 2)}
    working = open_state(state, {})
    working["basis"] = torch.ones(3, 2)  # a refresh rebuilds the projector's basis
    close_state_(state, working)
    assert torch.equal(state["basis"], torch.ones(3, 2))


def test_only_the_precision_layer_touches_codes():
    """No module but rules/quantize.py (the codec) and rules/precision.py calls the codec."""
    allowed = {SRC / "rules" / "quantize.py", SRC / "rules" / "precision.py"}
    pattern = re.compile(r"\b(quantize_|dequantize)\(")
    offenders = [str(path.relative_to(SRC)) for path in SRC.rglob("*.py")
                 if path not in allowed and pattern.search(path.read_text())]
    assert not offenders
