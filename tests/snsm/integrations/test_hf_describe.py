"""optimizer_cls_and_kwargs(verbose=True) logs the routing table of a LLaMA at INFO."""

import logging

import pytest

transformers = pytest.importorskip("transformers")

from snsm.integrations.hf import optimizer_cls_and_kwargs  # noqa: E402


def test_verbose_logs_the_rule_of_the_embedding_and_the_head(caplog):
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2))
    with caplog.at_level(logging.INFO, logger="snsm.optim.describe"):
        optimizer_cls_and_kwargs(model, "adamw_snsm", lr=2e-2, weight_decay=0.0)
        assert caplog.records == []
        optimizer_cls_and_kwargs(model, "muon_sm", lr=2e-2, weight_decay=0.0, rank=4,
                                 verbose=True)
    [record] = caplog.records
    assert record.levelno == logging.INFO
    rows = {line.split()[0]: line for line in record.getMessage().splitlines()}
    assert "1 aux" in rows["model.embed_tokens.weight"]
    assert "1 aux" in rows["lm_head.weight"] and "adamw" in rows["lm_head.weight"]
    assert "subspace momentum rank 4" in rows["model.layers.0.self_attn.q_proj.weight"]
