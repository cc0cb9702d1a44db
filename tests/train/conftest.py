import pytest

from snsm.train.config import TrainConfig

WORDS = ("thou art the king of night and day whose crown is made of stars and rain "
         "my lord the queen hath sent for thee to speak of love and war ").split()


def write_corpus(path, documents=6, words=1500):
    """A small deterministic text corpus: one file per document."""
    path.mkdir(parents=True, exist_ok=True)
    for d in range(documents):
        text = " ".join(WORDS[(i * 7 + d * 3) % len(WORDS)] for i in range(words))
        lines = [text[i:i + 70] for i in range(0, len(text), 70)]
        (path / f"doc{d}.txt").write_text("\n".join(lines))
    return path


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
