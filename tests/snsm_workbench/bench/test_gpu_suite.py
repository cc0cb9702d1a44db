"""The ``gpu`` suite: LLaMA-60M with bf16 autocast on CUDA; ``--smoke`` is its code path here."""

import json

import pytest
import torch

from snsm_workbench.bench.suites import get_suite
from snsm_workbench.cli import main


def test_the_gpu_suite_is_llama_60m_in_bf16_on_cuda_with_the_most_used_peers():
    suite = get_suite("gpu")
    assert (suite.preset, suite.device, suite.bf16) == ("llama-60m", "cuda", True)
    labels = {c.label for c in suite.contenders}
    assert {"adamw", "adamw_sn", "adamw_snsm", "galore", "apollo", "muon", "adam_mini"} <= labels
    snsm = next(c for c in suite.contenders if c.label == "adamw_snsm")
    assert snsm.optimizer_args["rank"] == 128  # the paper's rank at 60M


def test_gpu_smoke_runs_the_same_code_path_on_the_cpu(tmp_path):
    out = tmp_path / "record"
    code = main(["bench", "--suite", "gpu", "--smoke", "--timing-rounds", "0", "--out", str(out),
                 "--work", str(tmp_path / "work"), "--cache-dir", str(tmp_path / "cache")])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["device"] == "cpu" and results["config"]["bf16"] is True
    ran = {row["optimizer"] for row in results["rows"]}
    skipped = {item["optimizer"] for item in results["skipped"]}
    assert ran | skipped == {c.label for c in get_suite("gpu").contenders}
    assert {"adamw", "adamw_sn", "adamw_snsm"} <= ran
    assert all(row["final_val_loss"] is not None for row in results["rows"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_device_cuda_without_a_gpu_is_one_clear_error(tmp_path, capsys):
    code = main(["bench", "--suite", "gpu", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "cuda" in err.lower() and "not available" in err
    assert not (tmp_path / "r").exists()  # refused before any folder or data
