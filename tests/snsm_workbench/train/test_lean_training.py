"""``snsm train --state-precision / --pure-bf16 / --bf16-update`` (issue 14): what they set,
their errors, a real run with all three inside the backward pass, and an 8-bit run of the
tiny LM that tracks full-precision states."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest
import torch

from snsm_workbench.cli import main
from snsm_workbench.cli.train_flags import (add_lean_arguments, add_train_arguments,
                                            apply_lean_flags, config_from_args)
from snsm_workbench.train import checkpoint as ckpt
from snsm_workbench.train.loop import train
from snsm_workbench.train.metrics import read_records
from snsm_workbench.util.errors import ConflictError


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    add_lean_arguments(parser)
    return parser.parse_args(argv)


def test_flags_set_the_optimizer_args_and_weights():
    config = config_from_args(_parse(["--state-precision", "8bit", "--pure-bf16"]))
    assert config.weights == "bf16"
    assert config.optimizer_args == {"state_precision": "8bit", "bf16_update": "stochastic"}
    config = config_from_args(_parse(["--pure-bf16", "--bf16-update", "kahan",
                                      "--state-precision", "fp32"]))
    assert config.optimizer_args == {"state_precision": "full", "bf16_update": "kahan"}
    config = config_from_args(_parse(["--pure-bf16", "--opt", "bf16_update=nearest"]))
    assert config.optimizer_args == {"bf16_update": "nearest"}
    assert config_from_args(_parse(["--weights", "bf16", "--bf16-update", "kahan"])
                            ).optimizer_args == {"bf16_update": "kahan"}
    assert config_from_args(_parse([])).optimizer_args == {}


@pytest.mark.parametrize("argv,message", [
    (["--state-precision", "8bit", "--opt", "state_precision=full"],
     r"--state-precision 8bit conflicts with optimizer_args state_precision='full'"),
    (["--pure-bf16", "--weights", "fp32"], r"--pure-bf16 means bf16 weights, got --weights fp32"),
    (["--bf16-update", "kahan"], r"--bf16-update kahan acts on bf16 weights only, and the "
                                 r"weights are fp32: add --pure-bf16"),
    (["--pure-bf16", "--bf16-update", "kahan", "--opt", "bf16_update=stochastic"],
     r"--bf16-update kahan conflicts with optimizer_args bf16_update='stochastic'"),
    (["--state-precision", "8bit", "--optimizer", "adagrad_norm"],
     r"optimizer_args\['state_precision'\]: optimizer 'adagrad_norm' takes no such argument"),
])
def test_contradictions_are_refused_naming_the_flag(argv, message):
    with pytest.raises(ValueError, match=message):
        config_from_args(_parse(argv))


def test_bad_values_name_what_was_expected():
    with pytest.raises(ValueError, match=r"--state-precision must be one of fp32, 32bit, full, "
                                         r"8bit, got '4bit'"):
        apply_lean_flags({}, state_precision="4bit")
    with pytest.raises(ValueError, match=r"--bf16-update must be one of stochastic, kahan, "
                                         r"nearest, got 'round'"):
        apply_lean_flags({}, bf16_update="round")
    with pytest.raises(SystemExit):  # argparse: invalid choice
        _parse(["--state-precision", "4bit"])


def test_all_three_with_steps_inside_the_backward_pass(tiny_config, capsys):
    """A real run through the command line: 8-bit states, pure bf16 with Kahan compensation,
    updates inside the backward pass; the weights stay bf16, the state holds the 8-bit codes
    and the compensations, the loss goes down, and a resume cannot change the flags."""
    c = tiny_config
    argv = ["train", "--preset", "tiny", "--optimizer", "adamw_snsm", "--steps", "6",
            "--batch-size", "4", "--seq-len", "32", "--vocab-size", "300", "--eval-every", "3",
            "--eval-batches", "2", "--save-every", "3", "--data", c.data, "--cache-dir",
            c.cache_dir, "--out", c.out, "--quiet", "--opt", "rank=8", "--state-precision",
            "8bit", "--pure-bf16", "--bf16-update", "kahan", "--step-in-backward",
            "--clip-rule", "per-parameter"]
    assert main(argv) == 0
    run_dir = Path(c.out)
    saved = json.loads((run_dir / "config.json").read_text())["config"]
    assert saved["weights"] == "bf16" and saved["step_in_backward"]
    assert saved["optimizer_args"] == {"rank": 8, "state_precision": "8bit",
                                       "bf16_update": "kahan"}
    payload = ckpt.load_checkpoint(run_dir)
    assert {v.dtype for v in payload["model"].values()} == {torch.bfloat16}
    states = payload["optimizer"]["state"].values()
    assert any(s.get("momentum", torch.empty(0)).dtype == torch.uint8 for s in states)
    assert all(s["compensation"].dtype == torch.bfloat16 for s in states)
    evals = [r["val_loss"] for r in read_records(run_dir / "metrics.jsonl") if "val_loss" in r]
    assert evals[-1] < evals[0]
    with pytest.raises(ConflictError, match=r"--bf16-update stochastic \(--opt bf16_update\) "
                                            r"\(saved: bf16_update=kahan\)"):
        config_from_args(_parse(["--resume", c.out, "--steps", "8", "--bf16-update",
                                 "stochastic"]))


def _final_val_loss(config) -> float:
    records = read_records(train(config) / "metrics.jsonl")
    return [r["val_loss"] for r in records if "val_loss" in r][-1]


def test_8bit_states_track_full_precision_on_the_tiny_lm(tiny_config, tmp_path):
    """The issue's goal, fixed before running: the final validation loss with 8-bit states
    within 0.5% of the one with full-precision states (same seed, same batches; 30 steps of
    AdamSNSM on the tiny LLaMA). Per step the 8-bit momentum is within 1/254 of its block's
    absmax and v within 4.6% (test_quantized_state.py), a relative change of the update of a
    few percent at most, which moves a loss averaged over a whole run far less."""
    base = dataclasses.replace(tiny_config, steps=30, eval_every=30, save_every=30)
    losses = {}
    for precision in ("full", "8bit"):
        config = dataclasses.replace(base, out=str(tmp_path / precision), optimizer_args={
            **base.optimizer_args, "state_precision": precision})
        losses[precision] = _final_val_loss(config)
    assert abs(losses["8bit"] / losses["full"] - 1) <= 0.005, losses
