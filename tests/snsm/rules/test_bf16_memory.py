"""The transient of a pure-bf16 update (issue 24 item 16): the stochastic rounding works a
chunk at a time, so its bits and rounded values never exist for the whole tensor; what
remains is the float32 copy the update works on, which ``snsm memory --total`` counts.

Live bytes are counted by a dispatch mode: every tensor an op allocates (a storage that is
none of its inputs') is live until the last tensor object on it dies; the peak of their sum
is the update's transient."""

from __future__ import annotations

import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import snsm
from snsm.optim.functional import single_tensor_step
from snsm.optim.plan import GroupHParams
from snsm.rules.bf16 import ROUNDING_CHUNK, rounding_bits, stochastic_round_to_bf16, write_back_

NUMEL = 1 << 23  # 8M elements: 16 MiB in bf16
SHAPE = (4096, NUMEL // 4096)


class LiveBytes(TorchDispatchMode):
    """The peak bytes of the tensors allocated under this mode and alive at once."""

    def __init__(self):
        super().__init__()
        self.live: dict[int, list[int]] = {}  # storage address -> [bytes, tensor objects]
        self.now = self.peak = 0

    def _release(self, address: int) -> None:
        entry = self.live[address]
        entry[1] -= 1
        if entry[1] == 0:
            del self.live[address]
            self.now -= entry[0]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor)}
        for tensor in tree_leaves(out):
            if not isinstance(tensor, torch.Tensor) or tensor.untyped_storage().nbytes() == 0:
                continue
            address = tensor.untyped_storage().data_ptr()
            if address not in self.live:
                if address in inputs:
                    continue  # an alias of a tensor from outside: no allocation
                self.live[address] = [tensor.untyped_storage().nbytes(), 0]
                self.now += self.live[address][0]
                self.peak = max(self.peak, self.now)
            self.live[address][1] += 1
            weakref.finalize(tensor, self._release, address)
        return out


def test_the_counter_sees_a_temporary():
    x = torch.ones(1000)
    with LiveBytes() as mode:
        y = x * 2  # 4000 bytes, alive
        z = y + 1  # 4000 more, freed at once
        del z
        x.add_(1)  # in place: nothing
    assert mode.peak == 8000 and mode.now == 4000


def test_the_rounding_holds_one_chunk_of_bits_at_a_time():
    """Writing back an 8M-element master copy allocates one chunk's int32 bits (4 MiB) at
    most; drawing the whole tensor's bits and rounding out of place took 10 bytes per
    element (80 MiB: int32 bits, int32 sums, the bf16 result)."""
    param = torch.zeros(SHAPE, dtype=torch.bfloat16)
    master = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    expected = master.clone()
    bits = rounding_bits(SHAPE, param.device, 3)
    with LiveBytes() as mode:
        write_back_(param, master, bits, None)
    assert mode.peak <= 4 * ROUNDING_CHUNK
    assert torch.equal(param, stochastic_round_to_bf16(expected, bits.whole()))  # all at once


def _update_peak(name: str, rule: str) -> int:
    """The peak transient of one single-tensor update (the second step, its state made)."""
    param = torch.zeros(SHAPE, dtype=torch.bfloat16, requires_grad=True)
    optimizer = snsm.get_optimizer_class(name)([param], bf16_update=rule)
    param.grad = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0)).bfloat16()
    optimizer.step()
    hp = GroupHParams.from_group(optimizer.param_groups[0])
    with torch.no_grad(), LiveBytes() as mode:
        single_tensor_step([param], [param.grad], [optimizer.state[param]],
                           [hp.plan(SHAPE)], hp, [0])
    return mode.peak


@pytest.mark.parametrize("name", ["adamw_sn", "adamw"])
def test_a_stochastic_update_costs_its_master_copy_and_one_chunk(name):
    """Beside what the same update costs under nearest rounding (the update's own
    temporaries: AdamW's full-size denominator, also converted to float32 for the copy),
    the stochastic one holds its float32 copy (4 bytes per element) and one chunk of bits;
    it held 14 bytes per element before (copy, bits, sums, result)."""
    nearest, stochastic = _update_peak(name, "nearest"), _update_peak(name, "stochastic")
    denominator = 4 * NUMEL if name == "adamw" else 0  # the float32 copy of the denominator
    assert stochastic <= nearest + 4 * NUMEL + denominator + 4 * ROUNDING_CHUNK
    if name == "adamw_sn":  # Subset-Norm: no full-size temporary but the copy
        assert stochastic <= 4 * NUMEL + 4 * ROUNDING_CHUNK + (1 << 20)


def test_the_total_estimate_counts_the_master_copy_the_numerator_and_one_chunk():
    """On the tiny preset every parameter is under ``UPDATE_PIECE`` elements: AdamW inside
    the backward pass holds the largest one's float32 copy (4 bytes per element) and
    numerator (2, bf16), and one chunk of bits (full-precision state: no working copies);
    subspace momentum holds more (P(g), m_hat - P(g) and their back-projection)."""
    import dataclasses

    from snsm_workbench.measure.models import PRESETS
    from snsm_workbench.measure.total import SETUPS, total_row
    from snsm_workbench.train.models import build_model

    model = build_model("tiny", 512, 16, seed=0)
    largest = max(p.numel() for p in model.parameters())
    shape = PRESETS["tiny"]
    adamw = dataclasses.replace(SETUPS["adamw-bf16"], in_backward=True)
    assert total_row(model, shape, adamw, 8, 32, False)["update"] == (
        (4 + 2) * largest + 4 * ROUNDING_CHUNK)
    row = total_row(model, shape, SETUPS["adamw_snsm-bf16-in-backward"], 8, 32, False)
    assert row["update"] > (4 + 2) * largest + 4 * ROUNDING_CHUNK
    assert total_row(model, shape, SETUPS["adamw-amp"], 8, 32, False)["update"] == 0
