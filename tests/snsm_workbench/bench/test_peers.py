import importlib

import pytest
import torch

import snsm
from snsm_workbench.bench import peers
from snsm.optim.routing import hidden_matrices
from snsm_workbench.measure.memory import reachable_state_bytes

from bench_helpers import take_steps


def _build_or_skip(name, model, **kwargs):
    try:
        return peers.build_peer(name, model, **kwargs)
    except peers.PeerUnavailable as exc:
        pytest.skip(f"{name}: {exc}")


@pytest.mark.parametrize("name", peers.peer_names())
def test_each_adapter_builds_and_takes_three_steps(name, tiny_lm):
    before = {n: p.detach().clone() for n, p in tiny_lm.named_parameters()}
    optimizer = _build_or_skip(name, tiny_lm)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    with torch.random.fork_rng(devices=[]):  # APOLLO draws its projection from the global RNG
        torch.manual_seed(0)
        losses = take_steps(tiny_lm, optimizer)
    scheduler.step()
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0], f"{name}: loss did not go down on a fixed batch: {losses}"
    changed = [n for n, p in tiny_lm.named_parameters() if not torch.equal(p, before[n])]
    assert len(changed) == len(before), f"{name} left {set(before) - set(changed)} untouched"
    assert reachable_state_bytes(optimizer) > 0
    assert isinstance(optimizer.state_dict(), dict)


@pytest.mark.parametrize("name", peers.peer_names())
def test_every_parameter_is_routed_exactly_once(name, tiny_lm):
    optimizer = _build_or_skip(name, tiny_lm)
    routed = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(routed) == sorted(id(p) for p in tiny_lm.parameters())


def test_missing_package_raises_peer_unavailable(monkeypatch, tiny_lm):
    real = importlib.import_module

    def fake(name, *args):
        if name == "lion_pytorch":
            raise ImportError("No module named 'lion_pytorch'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(peers.PeerUnavailable, match="lion-pytorch"):
        peers.build_peer("lion", tiny_lm)


def test_unknown_peer_and_bad_lr_are_value_errors(tiny_lm):
    with pytest.raises(ValueError, match="unknown peer 'sgdx'"):
        peers.build_peer("sgdx", tiny_lm)
    with pytest.raises(ValueError, match="lr must be > 0"):
        peers.build_peer("torch_adamw", tiny_lm, lr=0.0)


def test_muon_routes_hidden_matrices_to_muon_and_the_rest_to_adamw(tiny_lm):
    optimizer = peers.build_peer("muon", tiny_lm)
    muon, adamw = optimizer.optimizers
    muon_ids = {id(p) for g in muon.param_groups for p in g["params"]}
    assert muon_ids == {id(p) for p in hidden_matrices(tiny_lm)}
    assert id(tiny_lm.lm_head.weight) not in muon_ids
    assert id(tiny_lm.model.embed_tokens.weight) not in muon_ids
    assert all(p.dim() == 2 for g in muon.param_groups for p in g["params"])
    assert isinstance(adamw, torch.optim.AdamW)


def test_chained_optimizer_schedules_both_children_and_round_trips(tiny_lm):
    optimizer = peers.build_peer("muon", tiny_lm)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 ** step)
    take_steps(tiny_lm, optimizer, 2)
    scheduler.step()
    muon, adamw = optimizer.optimizers
    assert muon.param_groups[0]["lr"] == pytest.approx(0.5 * peers.PEERS["muon"].lr)
    assert adamw.param_groups[0]["lr"] == pytest.approx(0.5 * 3e-3)
    saved = optimizer.state_dict()
    assert len(optimizer.state) == len(muon.state) + len(adamw.state)
    assert set(muon.state).isdisjoint(adamw.state)  # looking up state created no entries
    fresh = peers.build_peer("muon", tiny_lm)
    fresh.load_state_dict(saved)
    assert torch.equal(fresh.optimizers[0].state[muon.param_groups[0]["params"][0]]
                       ["momentum_buffer"],
                       muon.state[muon.param_groups[0]["params"][0]]["momentum_buffer"])


def test_state_bytes_count_tensors_held_by_galore_projectors(tiny_lm):
    optimizer = _build_or_skip("galore", tiny_lm)
    take_steps(tiny_lm, optimizer, 1)
    bases = sum(s["projector"].ortho_matrix.numel() * 4 for s in optimizer.state.values()
                if "projector" in s)
    assert bases > 0
    assert reachable_state_bytes(optimizer) == snsm.state_bytes(optimizer) + bases


@pytest.mark.parametrize("name", [n for n, p in peers.PEERS.items() if p.plain_group])
def test_a_plain_group_lr_reaches_only_the_plain_group(name, tiny_lm):
    matrices = {id(p) for p in hidden_matrices(tiny_lm)}
    optimizer = _build_or_skip(name, tiny_lm, lr=1e-2, plain_lr=7e-4)
    for group in optimizer.param_groups:
        ids = {id(p) for p in group["params"]}
        if ids & matrices:
            assert ids <= matrices and group["lr"] == 1e-2
        else:
            assert group["lr"] == 7e-4


def test_a_plain_group_lr_for_a_peer_without_one_is_refused(tiny_lm):
    with pytest.raises(ValueError, match="no separate plain group"):
        peers.build_peer("adafactor", tiny_lm, plain_lr=1e-3)
    with pytest.raises(ValueError, match="plain_lr must be > 0"):
        peers.build_peer("muon", tiny_lm, plain_lr=0.0)
