import pytest

from bench_helpers import VOCAB
from snsm_workbench.train.models import build_model


@pytest.fixture
def tiny_lm():
    """The tiny LLaMA preset (hidden 128, 4 layers) at vocab 64 and seq 16."""
    return build_model("tiny", VOCAB, seq_len=16, seed=0)
