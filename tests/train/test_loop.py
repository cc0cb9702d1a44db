import dataclasses
import json
import math

import pytest
import torch

from snsm.train import checkpoint as ckpt
from snsm.train.loop import Trainer, TrainingError, lr_factor, train


def test_lr_schedule_warms_up_linearly_then_decays_to_the_floor():
    total, warmup = 100, 10
    factors = [lr_factor(s, total, 0.1, 0.1) for s in range(total)]
    assert factors[:warmup] == pytest.approx([(s + 1) / warmup for s in range(warmup)])
    assert factors[warmup] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[warmup:], factors[warmup + 1:]))
    assert lr_factor(total, total, 0.1, 0.1) == pytest.approx(0.1)
    assert lr_factor(0, total, 0.0, 0.1) == 1.0


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_tiny_run_end_to_end(tiny_config):
    rng = torch.get_rng_state()
    run_dir = train(tiny_config)
    assert torch.equal(torch.get_rng_state(), rng)
    records = _records(run_dir)
    steps = [r for r in records if "loss" in r]
    evals = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in steps] == list(range(1, 13))
    assert [r["step"] for r in evals] == [0, 4, 8, 12]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert steps[-1]["tokens"] == 12 * 4 * 32
    for r in steps:
        assert r["state_bytes"] > 0 and r["tokens_per_s"] > 0 and r["grad_norm"] > 0
        assert math.isfinite(r["loss"]) and r["peak_rss_mb"] > 0
    lrs = [r["lr"] for r in steps]
    assert max(lrs) == pytest.approx(tiny_config.resolved_lr)
    info = json.loads((run_dir / "config.json").read_text())
    assert info["config"]["optimizer"] == "adamw_snsm" and "torch" in info["versions"]
    assert (run_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"
    payload = ckpt.load_checkpoint(run_dir)
    assert payload["step"] == 12


def test_existing_run_folder_needs_resume(tiny_config):
    train(tiny_config)
    with pytest.raises(ValueError, match="--resume"):
        train(tiny_config)


def test_corrupt_checkpoint_is_a_clear_error_and_is_left_alone(tiny_config):
    run_dir = train(tiny_config)
    path = run_dir / ckpt.CHECKPOINT_NAME
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ckpt.CheckpointError, match="corrupt"):
        train(dataclasses.replace(tiny_config, resume=str(run_dir)))
    assert path.read_bytes() == b"not a checkpoint"


def test_checkpoint_of_another_run_is_rejected(tiny_config):
    run_dir = train(tiny_config)
    info = json.loads((run_dir / "config.json").read_text())
    info["config"]["seed"] += 1
    (run_dir / "config.json").write_text(json.dumps(info))
    with pytest.raises(ckpt.CheckpointError, match="seed"):
        train(dataclasses.replace(tiny_config, resume=str(run_dir)))


def test_non_finite_losses_are_skipped_then_stop_the_run(tiny_config, monkeypatch):
    config = dataclasses.replace(tiny_config, steps=20, max_bad_steps=3)
    trainer = Trainer(config)
    for _ in range(4):
        trainer.metrics.append(trainer.train_step())
    trainer.save()
    saved = ckpt.load_checkpoint(trainer.run_dir)["model"]
    monkeypatch.setattr(trainer, "_forward_backward", lambda: float("nan"))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for _ in range(2):
        record = trainer.train_step()
        assert record["skipped"]
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())
    with pytest.raises(TrainingError, match="3 non-finite losses in a row"):
        trainer.train_step()
    kept = ckpt.load_checkpoint(trainer.run_dir)
    assert kept["step"] == 4
    assert all(torch.equal(v, kept["model"][k]) for k, v in saved.items())
