"""The sharding rules in one process (no process group): pieces, layouts, errors, estimates."""

from __future__ import annotations

import inspect
import json
import math

import pytest
import torch

import snsm
from snsm_workbench.cli import main
from snsm.optim.plan import GroupHParams, state_layout
from snsm.optim.sharding import ShardProjector, ShardSpec, chunk
from snsm_workbench.measure.peers import peer_state_bytes
from snsm.projectors import PROJECTORS
from snsm_workbench.measure.peers import galore_state_bytes
from snsm_workbench.measure.models import llama_skeleton

SHAPES = [(17, 12), (11, 17), (1, 12), (5, 3, 2), (13,)]


@pytest.mark.parametrize("length,world", [(5, 2), (1, 2), (17, 4), (64, 8), (3, 4)])
def test_pieces_are_torch_chunk_pieces(length, world):
    pieces = [chunk(length, i, world) for i in range(world)]
    sizes = [len(c) for c in torch.arange(length).chunk(world)]
    assert [stop - start for start, stop in pieces] == sizes + [0] * (world - len(sizes))
    assert pieces[0][0] == 0 and all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))


def _groups() -> list:
    """Every registry optimizer's group, with each projector where it takes one."""
    groups = []
    for name in snsm.list_optimizers():
        cls = snsm.get_optimizer_class(name)
        takes = "projector" in inspect.signature(cls).parameters
        for projector in sorted(PROJECTORS) if takes else [None]:
            kwargs = {"projector": projector, "rank": 2} if projector else {}
            group = cls([torch.zeros(1)], **kwargs).param_groups[0]
            groups.append(pytest.param(GroupHParams.from_group(group), id=f"{name}-{projector}"))
    return groups


@pytest.mark.parametrize("hp", _groups())
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("world", [2, 3])
def test_state_pieces_tile_the_single_process_state(hp, shape, world):
    """Split keys: the ranks' pieces add up to the one-process tensor along the split dim;
    replicated keys: every rank holds the one-process shape."""
    whole = state_layout(shape, torch.float32, hp)
    pieces = [ShardSpec.for_shard(shape, rank, world) for rank in range(world)]
    layouts = [spec.state_layout(torch.float32, hp) for spec in pieces]
    splits = pieces[0].state_splits(pieces[0].plan(hp))
    for key, (full_shape, dtype) in whole.items():
        shapes = [layout[key][0] for layout in layouts]
        assert all(layout[key][1] == dtype for layout in layouts)
        if key not in splits:
            assert shapes == [full_shape] * world, key
            continue
        dim, length = splits[key]
        assert full_shape[dim] == length and sum(s[dim] for s in shapes) == length, key
        assert all(s[:dim] + s[dim + 1:] == full_shape[:dim] + full_shape[dim + 1:]
                   for s in shapes), key


def test_subsets_straddling_shards_are_rejected_and_whole_rows_accepted():
    straddle = GroupHParams.from_group(snsm.AdamSN([torch.zeros(1)], subset_size=3)
                                       .param_groups[0])
    with pytest.raises(ValueError, match="straddle"):
        ShardSpec.for_shard((6, 4), 0, 2).plan(straddle)
    square = GroupHParams.from_group(snsm.AdamSN([torch.zeros(1)], subset_size="sqrt")
                                     .param_groups[0])
    assert ShardSpec.for_shard((6, 6), 1, 2).plan(square).partition.view == (3, 6)


@pytest.mark.parametrize("projector", sorted(PROJECTORS))
@pytest.mark.parametrize("shape", [(9, 4), (4, 9)], ids=str)
def test_one_shard_holding_every_row_is_the_projector_itself(projector, shape):
    inner = PROJECTORS[projector]
    sharded = ShardProjector(inner, ShardSpec.for_shard(shape, 0, 1))
    grad = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    make = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    want_state, got_state = inner.build(grad, 2, make()), sharded.build(grad, 2, make())
    assert want_state.keys() == got_state.keys()
    assert all(torch.equal(want_state[k], got_state[k]) for k in want_state)
    low = inner.project(grad, want_state)
    assert torch.allclose(sharded.project(grad, got_state), low)
    want = inner.back_add_(grad.clone(), low, want_state)
    assert torch.allclose(sharded.back_add_(grad.clone(), low, got_state), want)
    assert sharded.low_shape(shape, 2) == inner.low_shape(shape, 2)


def test_init_state_allocates_zero_state_without_stepping():
    model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Linear(4, 8))
    optimizer = snsm.create_optimizer(model, "adamw_snsm", rank=2)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.init_state()
    assert len(optimizer.state) == len(before)
    assert all(state["step"].item() == 0 and not any(v.any() for v in state.values())
               for state in optimizer.state.values())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_estimate_rejects_a_rank_outside_the_world():
    with pytest.raises(ValueError, match="shard_index"):
        snsm.estimate_state_bytes(torch.nn.Linear(3, 3), "adamw", world_size=2, shard_index=2)


def test_galore_on_one_gpu_is_the_peer_formula():
    model = llama_skeleton("llama-60m")
    for bases in (True, False):
        assert galore_state_bytes(model, torch.bfloat16, 128, include_bases=bases) == \
            peer_state_bytes(model, "galore", dtype=torch.bfloat16, rank=128,
                             include_bases=bases)


def test_memory_per_gpu_table(capsys):
    assert main(["memory", "--model", "llama-60m", "--world-size", "1", "8", "--json"]) == 0
    rows = {row["optimizer"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {*snsm.list_optimizers(), "galore"}
    one = snsm.estimate_state_bytes(llama_skeleton("llama-60m"), "adamw", dtype=torch.bfloat16)
    assert rows["adamw"]["gib_1"] == round(one / 2**30, 3)
    for row in rows.values():  # everything large is split: 8 GPUs hold about 1/8 each
        assert row["gib_8"] <= math.ceil(1000 * row["gib_1"] / 8 * 1.05) / 1000
