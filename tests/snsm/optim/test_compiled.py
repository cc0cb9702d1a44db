"""compile=True: the compiled update equals the eager reference and compiles once per group."""

import json

import pytest
import torch
import torch._dynamo
from torch import nn

import snsm
from problems import small_model as make_model, train_scheduled as train
import snsm_workbench.cli.speed
from snsm_workbench.cli import main

CASES = [
    ("adamw", {"weight_decay": 0.1}),
    ("adamw_sn", {"maximize": True}),
    ("adamw_snsm", {"projector": "uniform", "rank": 3, "update_gap": 2, "on_refresh": "project"}),
    ("adamw_snsm", {"projector": "svd", "rank": 3, "update_gap": 2, "weight_decay": 0.1}),
    ("muon", {"ns_dtype": "float32"}),  # orthogonalized in the graph, shape scale in the table
    ("muon_snsm", {"ns_dtype": "float32", "rank": 3, "update_gap": 2, "normalize": "column"}),
]


@pytest.mark.parametrize("name,hparams", CASES, ids=lambda c: c if isinstance(c, str) else
                         ",".join(f"{k}={v}" for k, v in c.items()))
def test_compiled_step_equals_eager(device, name, hparams):
    eager_model, eager = train(name, hparams, device, compile=False)
    # Each group's graph is compiled at step 1; a retrace on a later step (new step count,
    # new lr, projector refresh) would be a recompilation and raise.
    with torch._dynamo.config.patch(error_on_recompile=True):
        compiled_model, compiled = train(name, hparams, device, compile=True)
    assert len(compiled.param_groups) == 2 and all(g["compile"] for g in compiled.param_groups)
    for (key, p_eager), p_compiled in zip(eager_model.named_parameters(),
                                          compiled_model.parameters()):
        assert not torch.equal(p_eager, make_model(device).get_parameter(key)), key
        torch.testing.assert_close(p_compiled, p_eager, rtol=1e-5, atol=1e-6, msg=key)
    for p_eager, p_compiled in zip(eager_model.parameters(), compiled_model.parameters()):
        state_eager, state_compiled = eager.state[p_eager], compiled.state[p_compiled]
        assert state_eager.keys() == state_compiled.keys()
        for key, value in state_eager.items():
            if value.is_floating_point():
                torch.testing.assert_close(state_compiled[key], value, rtol=1e-5, atol=1e-6)
            else:
                assert torch.equal(state_compiled[key], value), key


    # The state dict holds tensors only (the graphs stay with the optimizer) and carries the flag.
    saved = compiled.state_dict()
    assert all(isinstance(v, torch.Tensor) for s in saved["state"].values() for v in s.values())
    restored = snsm.create_optimizer(make_model(device), name, **hparams)
    restored.load_state_dict(saved)
    assert all(group["compile"] for group in restored.param_groups)


def test_compile_flag_is_validated():
    with pytest.raises(ValueError, match="compile"):
        snsm.AdamSNSM([nn.Parameter(torch.zeros(2, 2))], compile="yes")


def test_cli_speed_compile_reports_the_compiled_ratio(monkeypatch, capsys):
    # Compiling llama-60m takes minutes here: the two measurements are replaced by fixed rows.
    def rows(model, optimizers, repeats, update_gap, compile, **kwargs):
        ms, adamw_ms = (30.0, 60.0) if compile else (80.0, 100.0)
        return [{"optimizer": "adamw_sn", "projector": "-", "step_ms": ms, "refresh_ms": ms,
                 "amortized_ms": ms, "adamw_ms": adamw_ms, "ratio_vs_adamw": ms / adamw_ms,
                 "repeats": repeats, "update_gap": update_gap, "compile": compile}]

    monkeypatch.setattr(snsm_workbench.cli.speed, "measure_speed", rows)
    assert main(["speed", "--optimizers", "adamw_sn", "--compile", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["ratio_vs_adamw"], row["compiled_ratio_vs_adamw"]) == (0.8, 0.5)
    assert (row["compiled_ms"], row["compiled_adamw_ms"], row["compile_speedup"]) == \
        (30.0, 60.0, round(80 / 30, 3))
    assert main(["speed", "--optimizers", "adamw_sn"]) == 0
    assert "compiled" not in capsys.readouterr().out


def test_state_dict_saved_before_the_compile_key_loads_with_it_filled_in():
    param = nn.Parameter(torch.randn(4, 3))
    param.grad = torch.randn(4, 3)
    optimizer = snsm.AdamSN([param])
    optimizer.step()
    saved = optimizer.state_dict()
    for group in saved["param_groups"]:
        del group["compile"]  # as written by a version without the key
    fresh = snsm.AdamSN([param])
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["compile"] is False
    fresh.step()  # reads group["compile"] directly
