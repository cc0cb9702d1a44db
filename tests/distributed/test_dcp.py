"""DCP checkpoints of FSDP2 runs: resume at 2 ranks, reshard into one process, harness resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import snsm
from dist_worker import full_params, make_batches, make_model, relative_difference, train
from snsm_workbench.train.dist_checkpoint import load_model_and_optimizer

HPARAMS = {"lr": 1e-2, "projector": "svd", "rank": 2, "update_gap": 3}


@pytest.fixture
def run(checkpoint_run) -> Path:
    return checkpoint_run


def _results(run: Path, kind: str) -> list[dict]:
    return [json.loads((run / f"{kind}-{rank}.json").read_text()) for rank in (0, 1)]


def test_resume_at_two_ranks_is_bitwise_the_uninterrupted_run(run):
    for result in _results(run, "checkpoint"):
        assert result["loaded"] == 0.0
        assert result["bitwise"], result


def test_two_rank_checkpoint_loads_into_one_process(run):
    """The 2->1 reshard: a plain model and optimizer load the FSDP2 checkpoint of step 4,
    then one process on the whole batch ends where the two ranks ended at step 8."""
    model = make_model(seed=123)
    optimizer = snsm.create_optimizer(model, "adamw_snsm", **HPARAMS)
    load_model_and_optimizer(run / "dcp", model, optimizer)
    at_4 = torch.load(run / "params-4.pt")
    loaded = full_params(model)
    assert all(torch.equal(loaded[k], at_4[k]) for k in at_4)
    assert {state["step"].item() for state in optimizer.state.values()} == {4.0}
    train(model, optimizer, make_batches(8)[4:])
    assert relative_difference(full_params(model), torch.load(run / "params-8.pt")) < 1e-5


def test_harness_resume_under_fsdp_equals_the_whole_run(run):
    """A Trainer saved at step 3 (DCP) and resumed by a new one ends bitwise as the run
    of ``snsm train --parallel fsdp``, with the same losses after the cut."""
    for result in _results(run, "trainer"):
        assert result["whole_step"] == 6 and result["resumed_at"] == 3
        assert result["bitwise"], result
        assert result["losses"][0] == result["losses"][1] and len(result["losses"][0]) == 3


def test_harness_ddp_run_equals_the_fsdp_run(run):
    """Same batches per rank, same optimizer: DDP and FSDP2 train the same model."""
    for result in _results(run, "trainer"):
        assert result["ddp_vs_fsdp"] < 1e-5, result
        assert result["ddp_losses"] == pytest.approx(result["fsdp_losses"], rel=1e-5)
