"""The two torchrun launches the distributed tests share (2 ranks, gloo, CPU)."""

import json

import pytest
import torch.distributed as dist

if not (dist.is_available() and dist.is_gloo_available()):
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

from launch import WORKER, torchrun, write_corpus  # noqa: E402


@pytest.fixture(scope="session")
def equivalence_results(tmp_path_factory) -> list[dict]:
    """Per rank: every configuration's differences to one process (``dist_worker.py``)."""
    out = tmp_path_factory.mktemp("equivalence")
    torchrun(WORKER, "equivalence", out)
    return [json.loads((out / f"equivalence-{rank}.json").read_text()) for rank in (0, 1)]


@pytest.fixture(scope="session")
def checkpoint_run(tmp_path_factory):
    """The folder of the ``checkpoint`` launch: DCP checkpoints and the harness runs."""
    out = tmp_path_factory.mktemp("checkpoint")
    corpus = write_corpus(out / "corpus")
    torchrun(WORKER, "checkpoint", out, corpus, out / "cache")
    return out
