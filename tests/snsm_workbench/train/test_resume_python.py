"""Resuming from Python (``train(TrainConfig(resume=RUN, ...))``): every setting given is
honoured or refused, equal to its default or not; a record edited by hand is refused."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from snsm_workbench.train import checkpoint as ckpt
from snsm_workbench.train.config import TrainConfig
from snsm_workbench.train.loop import train
from snsm_workbench.train.record import CONFIG_NAME
from snsm_workbench.util.errors import ConflictError


@pytest.fixture
def run(tiny_config):
    """A finished 4-step run (its eval_every 4, batch_size 4: neither is the default)."""
    config = dataclasses.replace(tiny_config, steps=4)
    return train(config)


def _record(run_dir) -> dict:
    return json.loads((run_dir / CONFIG_NAME).read_text())


def test_a_setting_equal_to_its_default_is_honoured(run):
    train(TrainConfig(resume=str(run), steps=6, eval_every=50))  # 50: the default
    assert _record(run)["config"]["eval_every"] == 50
    assert ckpt.load_checkpoint(run)["step"] == 6


def test_a_setting_equal_to_its_default_is_refused_when_it_cannot_change(run):
    with pytest.raises(ConflictError, match=r"--batch-size 16 \(saved: 4\)"):
        train(TrainConfig(resume=str(run), batch_size=16))  # 16: the default
    with pytest.raises(ConflictError, match=r"--steps 2 \(saved: 4;"):
        train(TrainConfig(resume=str(run), steps=2))
    assert ckpt.load_checkpoint(run)["step"] == 4  # nothing ran


def test_only_the_settings_given_count(run):
    config = TrainConfig(resume=str(run))
    config.quiet = True  # an assignment is a request too
    assert config.given_fields() == {"resume", "quiet"}
    assert train(config) == run
    assert dataclasses.replace(config).given_fields() == {
        f.name for f in dataclasses.fields(TrainConfig)}


@pytest.mark.parametrize("key, value", [("lr", 0.5), ("warmup_ratio", 0.5), ("seed", 3)])
def test_a_record_edited_by_hand_is_refused_naming_key_values_and_file(run, key, value):
    path = run / CONFIG_NAME
    record = _record(run)
    was = record["config"][key]
    record["config"][key] = value
    path.write_text(json.dumps(record))
    pattern = (rf"cannot resume {re.escape(str(run))}: {re.escape(str(path))} says "
               rf"{key}={value!r} but the run was trained with {key}={was!r}")
    with pytest.raises(ckpt.CheckpointError, match=pattern):
        train(TrainConfig(resume=str(run), steps=6))
    assert ckpt.load_checkpoint(run)["step"] == 4


def test_a_resumed_run_with_tuple_arguments_is_not_taken_for_an_edit(tiny_config):
    config = dataclasses.replace(tiny_config, steps=4, optimizer="adamw", optimizer_args={
        "betas": (0.9, 0.99)})
    run = train(config)
    train(TrainConfig(resume=str(run), steps=6))
    assert ckpt.load_checkpoint(run)["step"] == 6
