"""Extending a run's schedule on resume: ``continue`` (the default: no jump) and ``rebuild``."""

import argparse
import json
from types import SimpleNamespace

import pytest
import torch

from snsm_workbench.cli.train_flags import add_train_arguments, config_from_args
from snsm_workbench.train import checkpoint as ckpt
from snsm_workbench.train.config import TrainConfig
from snsm_workbench.train.loop import train
from snsm_workbench.train.run_config import resolve
from snsm_workbench.train.schedule import (WarmupCosine, extend_schedule, lr_factor,
                                           warmup_cosine)

WARMUP, FLOOR = 0.1, 0.1


def scheduler_for(total):
    """A scheduler of one parameter at peak lr 1 (its lr is the schedule's factor)."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    return warmup_cosine(optimizer, total, WARMUP, FLOOR)


def run(scheduler, steps):
    """The lrs of ``steps`` steps: the lr each step uses, then the scheduler's step."""
    lrs = []
    for _ in range(steps):
        lrs.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return lrs


def resumed(state, step, saved_total, total, mode="continue"):
    """A scheduler built for ``total`` steps, loaded with ``state`` and extended, as the
    harness resumes a run (``Trainer._restore``)."""
    scheduler = scheduler_for(total)
    scheduler.optimizer.param_groups[0]["lr"] = state["_last_lr"][0]  # the optimizer's state
    scheduler.load_state_dict(state)
    config = SimpleNamespace(steps=total, warmup_ratio=WARMUP, min_lr_ratio=FLOOR,
                             extend_schedule=mode)
    extend_schedule(scheduler, step, saved_total, config)
    return scheduler


def test_a_fresh_schedule_is_the_warmup_cosine_formula():
    schedule = WarmupCosine(100, WARMUP, FLOOR)
    assert [schedule(s) for s in range(10)] == [(s + 1) / 10 for s in range(10)]
    assert schedule(10) == 1.0 and schedule(100) == pytest.approx(FLOOR)
    assert lr_factor(55, 100, WARMUP, FLOOR) == pytest.approx(FLOOR + (1 - FLOOR) * 0.5)


@pytest.mark.parametrize("stop", [1, 8, 14, 20])  # in the warmup, mid-cosine, at the end
def test_continue_keeps_the_lr_of_the_resumed_step_and_decays_to_the_floor(stop):
    scheduler = scheduler_for(20)
    before = run(scheduler, stop)
    extended = resumed(scheduler.state_dict(), stop, 20, 40)
    after = run(extended, 40 - stop)
    assert after[0] == lr_factor(stop, 20, WARMUP, FLOOR)  # the lr the run was about to use
    decay = (before + after)[2:]  # after the 2 warmup steps the lr never rises
    assert len(decay) == 38 and all(a >= b for a, b in zip(decay, decay[1:]))
    assert after[-1] == pytest.approx(FLOOR, abs=0.01) and min(after) >= FLOOR
    assert WarmupCosine(40, WARMUP, FLOOR).warmup == 4 and extended.lr_lambdas[0].warmup == 2


def test_rebuild_follows_the_schedule_of_the_new_total():
    scheduler = scheduler_for(20)
    run(scheduler, 20)
    after = run(resumed(scheduler.state_dict(), 20, 20, 30, "rebuild"), 10)
    assert after == pytest.approx([lr_factor(s, 30, WARMUP, FLOOR) for s in range(20, 30)],
                                  rel=1e-12)
    assert after[0] > 3 * FLOOR  # the jump continue avoids (0.37x of the peak)


def test_a_continued_schedule_resumes_exactly():
    scheduler = scheduler_for(20)
    run(scheduler, 8)
    extended = resumed(scheduler.state_dict(), 8, 20, 40)
    run(extended, 10)
    state = extended.state_dict()
    assert state["lr_lambdas"][0]["total"] == 40 and state["lr_lambdas"][0]["anchor"] == 8
    uninterrupted = run(extended, 22)
    assert run(resumed(state, 18, 40, 40), 22) == uninterrupted


def test_a_checkpoint_without_a_saved_schedule_continues_the_one_it_ran():
    """Checkpoints written before the schedule was saved hold ``lr_lambdas: [None]``."""
    scheduler = scheduler_for(20)
    run(scheduler, 8)
    state = {**scheduler.state_dict(), "lr_lambdas": [None]}
    after = run(resumed(state, 8, 20, 40), 32)
    assert after[0] == lr_factor(8, 20, WARMUP, FLOOR)
    assert run(resumed(state, 8, 20, 20), 12) == [lr_factor(s, 20, WARMUP, FLOOR)
                                                  for s in range(8, 20)]


def test_resume_with_more_steps_continues_the_schedule_by_default(tiny_config):
    run_dir = train(tiny_config)
    train(TrainConfig(resume=str(run_dir), steps=16))
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in records if "loss" in r]
    peak, c = resolve(tiny_config).lr, tiny_config
    assert len(lrs) == 16 and lrs[11] == pytest.approx(
        peak * lr_factor(11, 12, c.warmup_ratio, c.min_lr_ratio), rel=1e-12)
    # the 12-step run ended at the floor; the extension stays there: no jump back up
    assert lrs[12:] == pytest.approx([peak * c.min_lr_ratio] * 4, rel=1e-12)
    assert peak * lr_factor(12, 16, c.warmup_ratio, c.min_lr_ratio) > 1.5 * lrs[12]  # rebuild's
    info = json.loads((run_dir / "config.json").read_text())
    assert info["config"]["extend_schedule"] == "continue"
    assert info["resumes"] == [{"step": 12, "changed": {"steps": [12, 16]}}]
    assert ckpt.load_checkpoint(run_dir)["scheduler"]["lr_lambdas"][0]["total"] == 16
    parser = add_train_arguments(argparse.ArgumentParser())
    flags = ["--resume", str(run_dir), "--steps", "20", "--extend-schedule", "rebuild"]
    assert config_from_args(parser.parse_args(flags)).extend_schedule == "rebuild"
