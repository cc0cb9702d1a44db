import sys

import pytest
import torch
from torch import nn

from snsm_workbench.measure.models import ModelShape as ModelPreset
from snsm_workbench.train.models import PRESETS, build_model, count_parameters, model_config


def expected_parameters(preset: str, vocab: int) -> int:
    """Untied embeddings and lm_head, 4 attention + 3 MLP matrices and 2 norms per layer."""
    p = PRESETS[preset]
    per_layer = 4 * p.hidden * p.hidden + 3 * p.hidden * p.ffn + 2 * p.hidden
    return 2 * vocab * p.hidden + p.layers * per_layer + p.hidden


def test_presets_hold_the_paper_shapes():
    assert PRESETS["tiny"] == ModelPreset(hidden=128, layers=4, heads=4, ffn=352, seq_len=128)
    assert PRESETS["small"] == ModelPreset(256, 4, 4, 688, 256)
    assert PRESETS["llama-60m"] == ModelPreset(512, 8, 8, 1376, 256)
    assert PRESETS["llama-130m"] == ModelPreset(768, 12, 12, 2048, 256)
    assert PRESETS["llama-350m"] == ModelPreset(1024, 24, 16, 2736, 256)
    assert PRESETS["llama-1b"] == ModelPreset(2048, 24, 32, 5461, 256)
    assert PRESETS["llama-7b"] == ModelPreset(4096, 32, 32, 11008, 256)
    for preset in PRESETS.values():
        assert preset.hidden % preset.heads == 0
    with pytest.raises(AttributeError):
        PRESETS["tiny"].hidden = 64  # frozen


@pytest.mark.parametrize("name", list(PRESETS))
def test_model_config_of_every_preset(name):
    config = model_config(name, vocab_size=1000)
    p = PRESETS[name]
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads,
            config.num_key_value_heads, config.intermediate_size) == (
        p.hidden, p.layers, p.heads, p.heads, p.ffn)
    assert config.max_position_embeddings == p.seq_len
    assert config.tie_word_embeddings is False and config.use_cache is False
    assert config.rms_norm_eps == 1e-6 and config.attention_dropout == 0.0
    assert model_config(name, 1000, seq_len=64).max_position_embeddings == 64


@pytest.mark.parametrize("name", ["llama-60m", "llama-7b"])
def test_paper_sizes_on_the_meta_device(name):
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(model_config(name, vocab_size=32000))
    assert count_parameters(model) == expected_parameters(name, 32000)
    if name == "llama-7b":
        assert count_parameters(model) == 6_738_415_616


def test_tiny_model_parameters_and_untied_head():
    model = build_model("tiny", vocab_size=8192)
    assert count_parameters(model) == expected_parameters("tiny", 8192) == 2_901_120
    assert model.lm_head.weight is not model.model.embed_tokens.weight
    assert not torch.equal(model.lm_head.weight, model.model.embed_tokens.weight)
    assert model.config.max_position_embeddings == 128
    assert next(model.parameters()).dtype == torch.float32


def test_forward_pass_shape():
    model = build_model("tiny", vocab_size=300, seq_len=32)
    assert model.config.max_position_embeddings == 32
    inputs = torch.randint(0, 300, (2, 32))
    with torch.no_grad():
        logits = model(input_ids=inputs).logits
    assert logits.shape == (2, 32, 300)
    assert torch.isfinite(logits).all()


def test_same_seed_same_weights_other_seed_other_weights():
    a = build_model("tiny", 300, 32, seed=3).state_dict()
    b = build_model("tiny", 300, 32, seed=3).state_dict()
    c = build_model("tiny", 300, 32, seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["model.embed_tokens.weight"], c["model.embed_tokens.weight"])


def test_global_rng_is_left_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    build_model("tiny", 300, 32, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("kwargs, match", [
    ({"preset": "llama-3b"}, r"preset must be one of 'tiny'.*got 'llama-3b'"),
    ({"vocab_size": 0}, r"vocab_size must be an integer >= 1, got 0"),
    ({"seq_len": 0}, r"seq_len must be an integer >= 1, got 0"),
    ({"seq_len": 16.0}, r"seq_len must be an integer >= 1, got 16.0"),
    ({"seed": -1}, r"seed must be an integer >= 0, got -1"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model(**{"preset": "tiny", "vocab_size": 300, **kwargs})


def test_missing_transformers_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"pip install 'snsm\[train\]'"):
        build_model("tiny", 300)


def test_count_parameters_counts_a_shared_tensor_once():
    first, second = nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False)
    second.weight = first.weight
    assert count_parameters(nn.Sequential(first, second)) == 16
