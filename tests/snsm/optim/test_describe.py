"""describe_routing: which tensors got which rule, their lr, decay and state bytes; logged by
create_optimizer (INFO with verbose=True, else DEBUG)."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

import snsm
from snsm.memory import estimate_state_bytes

LOGGER = "snsm.optim.describe"


class TinyLlama(nn.Module):
    """LLaMA's layout in miniature: embed_tokens, a block's Linears, a norm, an untied lm_head."""

    def __init__(self):
        super().__init__()
        self.embed_tokens = nn.Embedding(50, 16)
        self.q_proj = nn.Linear(16, 16, bias=False)
        self.up_proj = nn.Linear(16, 32, bias=False)
        self.norm = nn.RMSNorm(32)
        self.lm_head = nn.Linear(32, 50, bias=False)


def rows(table: str) -> dict[str, str]:
    """Parameter name -> its row of the table."""
    return {line.split()[0]: line for line in table.splitlines()[2:] if not line.startswith("total")}


def test_adamw_snsm_names_the_rule_of_the_embedding_and_the_head():
    model = TinyLlama()
    optimizer = snsm.create_optimizer(model, "adamw_snsm", rank=4, plain={"lr": 3e-3})
    table = snsm.describe_routing(optimizer, model)
    row = rows(table)
    assert "1 plain" in row["embed_tokens.weight"] and "adamw" in row["embed_tokens.weight"]
    assert "0.003" in row["embed_tokens.weight"]
    for name in ("lm_head.weight", "q_proj.weight"):
        assert "0 matrix" in row[name]
        assert "subspace momentum rank 4 (svd) + subset-norm" in row[name]
    assert table.startswith("AdamSNSM: 5 tensors in 2 groups; state bytes estimated")
    total = estimate_state_bytes(model, "adamw_snsm", rank=4)
    numel = sum(p.numel() for p in model.parameters())
    assert table.splitlines()[-1] == f"total: 5 tensors, {numel:,} parameters, {total:,} state bytes"


def test_muon_puts_the_embedding_and_the_head_in_the_auxiliary_group():
    model = TinyLlama()
    table = snsm.describe_routing(snsm.create_optimizer(model, "muon", aux="adamw_8bit"), model)
    row = rows(table)
    for name in ("embed_tokens.weight", "lm_head.weight"):
        assert "1 aux" in row[name] and "adamw" in row[name] and "8-bit state" in row[name]
    assert "1 aux" in row["norm.weight"] and "8-bit" not in row["norm.weight"]
    for name in ("q_proj.weight", "up_proj.weight"):
        assert "0 matrix" in row[name] and "orthogonalized (NS5)" in row[name]


def test_state_bytes_are_measured_after_a_step_and_rows_fall_back_to_group_and_index():
    model = TinyLlama()
    optimizer = snsm.create_optimizer(model, "adamw_sn")
    model.lm_head.weight.grad = torch.ones_like(model.lm_head.weight)
    optimizer.step()  # only the head has state: the others' bytes are estimated, marked ~
    table = snsm.describe_routing(optimizer)
    assert "measured, or estimated from shapes where marked ~" in table.splitlines()[0]
    row = rows(table)
    head = row["group0[2]"]
    assert "50x32" in head and head.endswith(f" {snsm.state_bytes(optimizer):,}")
    assert row["group1[0]"].split()[-1].startswith("~")


def test_tied_weights_show_both_names_and_frozen_ones_are_listed():
    model = TinyLlama()
    model.lm_head = nn.Linear(16, 50, bias=False)
    model.lm_head.weight = model.embed_tokens.weight
    model.q_proj.requires_grad_(False)
    table = snsm.describe_routing(snsm.create_optimizer(model, "adamw_snsm", rank=4), model)
    assert "embed_tokens.weight=lm_head.weight" in rows(table)
    assert table.splitlines()[-1] == "not in the optimizer: q_proj.weight"


def test_verbose_logs_the_table_at_info_else_at_debug(caplog):
    model = TinyLlama()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        snsm.create_optimizer(model, "adamw_snsm", rank=4)
        assert caplog.records == []
        optimizer = snsm.create_optimizer(model, "muon", verbose=True)
    [record] = caplog.records
    assert record.levelno == logging.INFO
    assert record.getMessage() == snsm.describe_routing(optimizer, model)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        snsm.create_optimizer(model, "adamw", verbose=False)
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert "embed_tokens.weight" in caplog.records[0].getMessage()


def test_bad_input_gets_a_clear_error():
    model = TinyLlama()
    optimizer = snsm.create_optimizer(model, "adamw")
    with pytest.raises(TypeError, match="snsm optimizer.*got an object of type AdamW.*state_bytes"):
        snsm.describe_routing(torch.optim.AdamW(model.parameters()))
    with pytest.raises(TypeError, match="of type TinyLlama.*the model came first"):
        snsm.describe_routing(model, optimizer)
    with pytest.raises(TypeError, match="model.*nn.Module or None, got an object of type list"):
        snsm.describe_routing(optimizer, [model])
    with pytest.raises(TypeError, match="verbose must be True or False, got 'yes'"):
        snsm.create_optimizer(model, "adamw", verbose="yes")
