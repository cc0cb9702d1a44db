import dataclasses
import errno
import io
import json
import math
import re

import pytest
import torch

from snsm_workbench.train import checkpoint as ckpt
from snsm_workbench.train.config import TrainConfig, validate
from snsm_workbench.train.loop import Trainer, TrainingError, lr_factor, train
from snsm_workbench.train.run_config import resolve
from snsm_workbench.train.metrics import evaluation_rows, read_records
from snsm_workbench.util.errors import ConflictError


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
    assert max(lrs) == pytest.approx(resolve(tiny_config).lr)
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
        train(TrainConfig(resume=str(run_dir), quiet=True))  # the saved (edited) settings


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


def test_divergence_keeps_a_checkpoint_whose_parameters_are_good(tiny_config, caplog):
    """AdamW at lr 1000 diverges within a few steps. Before: checkpoints were written after
    the update that diverged and on skipped steps, so the one kept gave inf gradients."""
    config = dataclasses.replace(tiny_config, optimizer="adamw", optimizer_args={}, lr=1e3,
                                 warmup_ratio=1.0, steps=200, save_every=1, eval_every=100,
                                 eval_batches=1, max_bad_steps=2)
    stop = r"2 non-finite losses in a row at step \d+; stopping: the checkpoint of step \d+ is kept"
    with pytest.raises(TrainingError, match=stop) as info:
        train(config)
    found = re.search(r"at step (\d+);.* of step (\d+)", str(info.value))
    stopped, kept = int(found.group(1)), int(found.group(2))
    assert kept == ckpt.load_checkpoint(config.out)["step"] < stopped - 1
    resumed = Trainer(TrainConfig(resume=config.out, quiet=True))
    assert resumed.step == kept and resumed.counters.bad_in_a_row == 0
    loss, grad_norm = resumed._probe()
    assert math.isfinite(loss) and math.isfinite(grad_norm)
    params = resumed.model.state_dict().values()
    assert max(p.abs().max().item() for p in params) < 1e3
    assert "not saving the parameters" in caplog.text
    resumed.close()


def test_resume_with_more_steps_and_rebuild_rebuilds_the_schedule(tiny_config):
    run_dir = train(tiny_config)
    leftovers = [run_dir / ".checkpoint.pt.99999.tmp", run_dir / ".metrics.jsonl.99999.tmp"]
    for path in leftovers:  # a process killed mid-write leaves these
        path.write_bytes(b"partial")
    train(TrainConfig(resume=str(run_dir), steps=16, extend_schedule="rebuild"))
    assert not any(path.exists() for path in leftovers)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == list(range(1, 17))
    peak, c = resolve(tiny_config).lr, tiny_config
    for r in steps[12:]:  # lr of step s (1-based) is the 16-step schedule's at s - 1
        assert r["lr"] == pytest.approx(peak * lr_factor(r["step"] - 1, 16, c.warmup_ratio,
                                                         c.min_lr_ratio), rel=1e-12)
    assert steps[11]["lr"] == pytest.approx(peak * lr_factor(11, 12, c.warmup_ratio,
                                                             c.min_lr_ratio), rel=1e-12)
    info = json.loads((run_dir / "config.json").read_text())
    assert info["config"]["steps"] == 16
    assert info["resumes"] == [{"step": 12, "changed": {"steps": [12, 16],
                                                        "extend_schedule": ["continue", "rebuild"]}}]
    assert ckpt.load_checkpoint(run_dir)["step"] == 16
    assert [row["step"] for row in evaluation_rows(records)] == [0, 4, 8, 12, 16]
    with pytest.raises(ConflictError, match=r"--lr 0.5 \(saved: 0.03\)"):
        train(TrainConfig(resume=str(run_dir), lr=0.5))


def test_resume_refuses_data_whose_content_changed(tiny_config, corpus_dir):
    config = dataclasses.replace(tiny_config, steps=4)
    run_dir = train(config)
    fingerprint = json.loads((run_dir / "config.json").read_text())["data"]["fingerprint"]
    assert len(fingerprint) == 64
    doc = corpus_dir / "doc0.txt"
    doc.write_text(doc.read_text().replace("king", "kin", 1))  # same path, other content
    with pytest.raises(ConflictError, match=r"cannot resume .*: the content of its data "
                                            r"\(.*corpus\) changed since the run started"):
        train(TrainConfig(resume=str(run_dir), steps=8))
    assert ckpt.load_checkpoint(run_dir)["step"] == 4


class _FullDisk(io.FileIO):
    """A file on a full disk: every write fails with ENOSPC."""

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_at_a_checkpoint_is_a_plain_error_and_leaves_no_temporary_file(
        tiny_config, monkeypatch):
    trainer = Trainer(tiny_config)
    for _ in range(4):
        trainer.metrics.append(trainer.train_step())
    trainer.save()
    trainer.metrics.append(trainer.train_step())
    real_open = open
    monkeypatch.setattr(ckpt, "open", lambda path, mode="r", *args, **kwargs: (
        io.BufferedWriter(_FullDisk(path, "wb")) if "w" in mode
        else real_open(path, mode, *args, **kwargs)), raising=False)
    with pytest.raises(OSError, match=r"cannot write the checkpoint .*checkpoint.pt: No space "
                                      r"left on device") as info:
        trainer.save()
    assert info.value.errno == errno.ENOSPC
    assert [p.name for p in trainer.run_dir.iterdir() if p.name.endswith(".tmp")] == []
    assert ckpt.load_checkpoint(trainer.run_dir)["step"] == 4
    trainer.close()


def test_steps_inside_the_backward_pass_train_exactly_like_step(tiny_config, tmp_path):
    runs = {}
    for in_backward in (False, True):
        config = dataclasses.replace(tiny_config, steps=6, grad_clip=0.5,
                                     clip_rule="per-parameter", step_in_backward=in_backward,
                                     out=str(tmp_path / f"run-{in_backward}"))
        train(config)
        runs[in_backward] = read_records(tmp_path / f"run-{in_backward}" / "metrics.jsonl")
    regular, inside = runs[False], runs[True]
    assert [r.get("val_loss") for r in regular] == [r.get("val_loss") for r in inside]
    assert [r["grad_norm"] for r in regular if "loss" in r] == \
        pytest.approx([r["grad_norm"] for r in inside if "loss" in r], rel=1e-5)
    first = [r for r in regular if "loss" in r][0], [r for r in inside if "loss" in r][0]
    assert first[1]["peak_memory_mb"] < first[0]["peak_memory_mb"]  # no gradient buffer


def test_global_clipping_with_steps_inside_the_backward_pass_is_refused(tiny_config):
    with pytest.raises(ValueError, match="clip_rule='per-parameter'"):
        validate(dataclasses.replace(tiny_config, step_in_backward=True))


def test_pure_bf16_weights_train_and_resume_in_bf16(tiny_config, tmp_path):
    config = dataclasses.replace(tiny_config, steps=4, weights="bf16",
                                 optimizer_args={"rank": 8, "bf16_update": "stochastic"})
    run = train(config)
    payload = ckpt.load_checkpoint(run)
    assert {v.dtype for v in payload["model"].values()} == {torch.bfloat16}
    records = read_records(run / "metrics.jsonl")
    assert math.isfinite([r["val_loss"] for r in records if "val_loss" in r][-1])
    with pytest.raises(ValueError, match="weights"):
        validate(dataclasses.replace(tiny_config, weights="fp16"))
