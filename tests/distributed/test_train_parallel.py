"""End to end: ``snsm train --parallel fsdp`` on 2 torchrun ranks (the tiny LLaMA, 6 steps).

The run is made by the ``checkpoint`` launch of ``dist_worker.py`` (``harness``), whose
ranks call the CLI's entry point, as ``torchrun -m snsm train`` does.
"""

from __future__ import annotations

import contextlib
import json

import pytest

import snsm
from dist_worker import HARNESS
from snsm_workbench.train import checkpoint as ckpt
from snsm_workbench.train.corpora import load_corpus
from snsm_workbench.train.dist_checkpoint import PREFIX, load_model_and_optimizer
from snsm_workbench.train.loop import _evaluate
from snsm_workbench.train.models import build_model
from snsm_workbench.train.tokens import eval_batches, prepare_tokens


def test_rank_zero_writes_metrics_config_and_checkpoint_once(checkpoint_run):
    out, steps = checkpoint_run / "whole", HARNESS["steps"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, steps + 1))
    assert [r["step"] for r in records if "val_loss" in r] == [0, 3, 6]
    per_step = HARNESS["batch_size"] * HARNESS["seq_len"] * 2  # batch_size is per rank
    assert records[-2]["tokens"] == steps * per_step
    info = json.loads((out / "config.json").read_text())
    assert info["world_size"] == 2 and info["config"]["parallel"] == "fsdp"
    payload = ckpt.load_checkpoint(out)
    assert payload["step"] == steps and payload["world_size"] == 2
    assert [p.name for p in out.glob(f"{PREFIX}*")] == [payload["dcp"]]  # step 3's pruned
    assert (out / "curves.png").is_file()


def test_fsdp_run_checkpoint_reshards_into_one_process(checkpoint_run):
    """One process loads the 2-rank checkpoint and gets the run's last validation loss."""
    out = checkpoint_run / "whole"
    data = prepare_tokens(load_corpus(str(checkpoint_run / "corpus")), checkpoint_run / "cache",
                          HARNESS["vocab_size"])
    seq, batch = HARNESS["seq_len"], HARNESS["batch_size"]
    model = build_model(HARNESS["preset"], data.vocab_size, seq, seed=123)
    optimizer = snsm.create_optimizer(model, HARNESS["optimizer"], **HARNESS["optimizer_args"])
    load_model_and_optimizer(out / ckpt.load_checkpoint(out)["dcp"], model, optimizer)
    assert {state["step"].item() for state in optimizer.state.values()} == {HARNESS["steps"]}
    val_loss = _evaluate(model, eval_batches(data.val, 1, batch, seq), model.device,
                         contextlib.nullcontext)
    last = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert val_loss == pytest.approx(last["val_loss"], rel=1e-5)


def test_parallel_mode_outside_torchrun_says_how_to_launch(monkeypatch):
    from snsm_workbench.train import parallel

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(ValueError, match="torchrun --nproc_per_node=N -m snsm train"):
        parallel.start("fsdp")
    with pytest.raises(ValueError, match="parallel must be one of"):
        parallel.start("zero3")
    alone = parallel.start("none")
    assert (alone.rank, alone.world_size, alone.enabled, alone.is_main) == (0, 1, False, True)
    assert alone.mean(2.5) == 2.5 and alone.broadcast("x") == "x"
