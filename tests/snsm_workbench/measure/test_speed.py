"""snsm_workbench.measure.speed.measure_speed: the rows, the timing protocol and argument checks (no speed claims)."""

import json
import logging
import math

import pytest
import torch
from torch import nn

import snsm.optim.update
import snsm_workbench.measure.speed
from snsm_workbench.cli import main
from snsm.optim.registry import list_optimizers
from snsm_workbench.measure.speed import measure_speed

KEYS = {"optimizer", "projector", "step_ms", "refresh_ms", "amortized_ms", "adamw_ms",
        "ratio_vs_adamw", "repeats", "update_gap"}
PROJECTORS = ("svd", "rsvd", "uniform")


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 16)
        self.first = nn.Linear(64, 32)
        self.second = nn.Linear(48, 64)


def _tiny() -> Tiny:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return Tiny()


def test_rows_for_the_requested_optimizers(caplog):
    names = ["adamw_sn", "adamw_snsm", "sgd_sm", "rmsprop_sn"]
    with caplog.at_level(logging.INFO, logger="snsm_workbench.measure.speed"):
        rows = measure_speed(_tiny(), names, repeats=2, update_gap=5)
    expected = [("adamw_sn", "-"), *(("adamw_snsm", p) for p in PROJECTORS),
                *(("sgd_sm", p) for p in PROJECTORS), ("rmsprop_sn", "-")]
    assert [(row["optimizer"], row["projector"]) for row in rows] == expected
    for row in rows:
        assert KEYS <= set(row)
        assert (row["repeats"], row["update_gap"]) == (2, 5)
        for key in ("step_ms", "refresh_ms", "amortized_ms", "adamw_ms", "ratio_vs_adamw"):
            assert isinstance(row[key], float) and math.isfinite(row[key]) and row[key] > 0, row
        # amortized is a weighted mean of the two (up to the 2-decimal rounding)
        low, high = sorted((row["step_ms"], row["refresh_ms"]))
        assert low - 0.01 <= row["amortized_ms"] <= high + 0.01
        if row["projector"] == "-":
            assert row["step_ms"] == row["refresh_ms"] == row["amortized_ms"]
    assert sum("step" in r.getMessage() and "ratio" in r.getMessage()
               for r in caplog.records) == len(rows)


def test_default_is_every_registered_optimizer():
    rows = measure_speed(_tiny(), repeats=1, update_gap=3, projectors=("uniform",))
    assert [row["optimizer"] for row in rows] == list_optimizers()
    assert {row["projector"] for row in rows if snsm.get_spec(row["optimizer"]).takes_projector} == {"uniform"}
    assert {row["projector"] for row in rows if not snsm.get_spec(row["optimizer"]).takes_projector} == {"-"}


def test_global_rng_untouched_and_grads_put_back():
    model = _tiny()
    model.first.weight.grad = marker = torch.ones_like(model.first.weight)
    state = torch.get_rng_state()
    measure_speed(model, ["adamw_snsm", "adagrad_snsm"], repeats=2, update_gap=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert model.first.weight.grad is marker
    assert model.second.weight.grad is None and model.embed.weight.grad is None
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("update_gap,repeats", [(2, 3), (3, 4), (1, 2)])
def test_regular_steps_never_refresh_while_timed(monkeypatch, update_gap, repeats):
    refreshes = []
    original = snsm.optim.update.refresh_projector_

    def counting(*args, **kwargs):
        refreshes.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(snsm.optim.update, "refresh_projector_", counting)
    timed = []  # (update_gap of the timed optimizer, refreshes during the timed step)

    original_time_ms = snsm_workbench.measure.speed.time_ms

    def spy_time_ms(step, devices=()):
        before = len(refreshes)
        result = original_time_ms(step, devices)
        optimizer = getattr(step, "__self__", None)
        if isinstance(optimizer, snsm.SNSM):
            timed.append((optimizer.param_groups[0]["update_gap"], len(refreshes) - before))
        return result

    monkeypatch.setattr(snsm_workbench.measure.speed, "time_ms", spy_time_ms)
    rows = measure_speed(_tiny(), ["adamw_snsm"], repeats=repeats, update_gap=update_gap,
                         projectors=("uniform",))
    matrices = 2  # the two nn.Linear weights
    assert len(timed) == (2 if update_gap > 1 else 1) * repeats
    assert all(count == (matrices if gap == 1 else 0) for gap, count in timed), timed
    if update_gap == 1:
        assert rows[0]["step_ms"] == rows[0]["refresh_ms"] == rows[0]["amortized_ms"]


@pytest.mark.parametrize("kwargs,match", [
    ({"repeats": 0}, "repeats"),
    ({"repeats": 2.0}, "repeats"),
    ({"update_gap": 0}, "update_gap"),
    ({"optimizers": ["adamw", "adam"]}, "'adam'.*adamw_snsm"),
    ({"optimizers": []}, "optimizers"),
    ({"optimizers": "adamw"}, "optimizers"),
    ({"projectors": ("svd", "qr")}, "'qr'"),
    ({"optimizers": ["adamw_snsm"], "projectors": ()}, "projectors"),
    ({"model": "llama-2b"}, "'llama-2b'.*llama-60m"),
    ({"model": 3}, "nn.Module"),
    ({"compile": "yes"}, "compile"),
])
def test_bad_arguments_raise(kwargs, match):
    args = {"model": _tiny(), "optimizers": ["adamw_sn"], **kwargs}
    with pytest.raises(ValueError, match=match):
        measure_speed(**args)


def test_meta_model_is_rejected():
    with torch.device("meta"):
        model = nn.Linear(4, 4)
    with pytest.raises(ValueError, match="meta"):
        measure_speed(model, ["adamw_sn"], repeats=1)


def test_compile_failure_is_a_runtime_error(monkeypatch):
    # Compiling for real takes tens of seconds on a CPU; a compiler that fails is enough here.
    def failing_compile(fn, **kwargs):
        assert kwargs.get("fullgraph") is False

        def compiled(*args, **kw):
            raise TypeError("cannot trace this")
        return compiled

    monkeypatch.setattr(torch, "compile", failing_compile)
    with pytest.raises(RuntimeError, match="torch.compile.*cannot trace this"):
        measure_speed(_tiny(), ["adamw_sn"], repeats=1, compile=True)


def test_cli_speed_on_llama_60m(capsys):
    # About 5 s on 2 CPU cores (a 58M-parameter skeleton, two optimizers' state).
    assert main(["speed", "--model", "llama-60m", "--optimizers", "adamw_sn", "--repeats", "1",
                 "--update-gap", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["optimizer"], row["projector"]) for row in rows] == [("adamw_sn", "-")]
    assert KEYS <= set(rows[0]) and rows[0]["step_ms"] > 0 and rows[0]["adamw_ms"] > 0


class _Counted(torch.optim.SGD):
    """A baseline that counts its steps."""

    def __init__(self, params):
        super().__init__(params, lr=1e-3)
        self.steps = 0

    def step(self, closure=None):
        self.steps += 1
        return super().step(closure)


def test_a_peer_baseline_is_stepped_in_every_round_beside_adamw():
    built = []

    def build(model):
        built.append(_Counted(model.parameters()))
        return built[-1]

    rows = measure_speed(_tiny(), ["adamw_sn", "muon"], repeats=3, against={"counted": build})
    assert len(built) == 1  # one baseline for every row, interleaved with each row's steps
    assert built[0].steps == snsm_workbench.measure.speed._BASELINE_WARM_UP + 2 * 3
    for row in rows:
        peer, ratio = row["peer_counted_ms"], row["ratio_vs_peer_counted"]
        assert peer > 0 and ratio > 0  # ratio = amortized / peer, up to the rounding of each
        assert ratio * peer == pytest.approx(row["amortized_ms"],
                                             abs=0.005 * (1 + ratio) + 0.0005 * peer + 1e-9)


def test_cli_speed_times_ours_against_torch_muon(capsys, monkeypatch):
    seen = {}

    def fake(model, compile, against, **kwargs):  # the timing itself: the tests above
        seen.update(against)
        return [{"optimizer": "muon", "projector": "-", "amortized_ms": 11.0,
                 "peer_muon_ms": 10.0, "ratio_vs_peer_muon": 1.1}]
    monkeypatch.setattr("snsm_workbench.cli.speed.measure_speed", fake)
    assert main(["speed", "--optimizers", "muon", "--against", "muon"]) == 0
    out = capsys.readouterr().out
    assert "and peer muon" in out and "muon (peer) ms" in out and "ratio vs muon" in out
    assert out.splitlines()[-1].split()[-2:] == ["10.0", "1.1"]
    built = seen["muon"](_tiny())  # the peer of snsm bench: torch.optim.Muon on the matrices
    assert any(isinstance(o, torch.optim.Muon) for o in built.optimizers)
