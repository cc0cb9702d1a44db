import pytest

from snsm_workbench.train.config import TrainConfig
from snsm_workbench.train.corpora import write_smoke_corpus

write_corpus = write_smoke_corpus  # the small corpus of the harness tests


@pytest.fixture
def corpus_dir(tmp_path):
    return write_corpus(tmp_path / "corpus")


@pytest.fixture
def tiny_config(tmp_path, corpus_dir):
    """A fast run: the tiny preset at seq 32, batch 4, vocab 300, on the small corpus."""
    return TrainConfig(preset="tiny", optimizer="adamw_snsm", steps=12, batch_size=4, seq_len=32,
                       vocab_size=300, eval_every=4, eval_batches=2, save_every=4,
                       data=str(corpus_dir), cache_dir=str(tmp_path / "cache"),
                       out=str(tmp_path / "run"), quiet=True,
                       optimizer_args={"rank": 8, "update_gap": 5})
