"""adagrad-variants: each variant gets the rule it names on the matrices and one fixed rule
elsewhere; the lr pick; the quick run's figures are the ratios of its perplexities."""

from __future__ import annotations

import math

import pytest
import torch

from snsm_workbench.lab import adagrad_variants as exp
from snsm_workbench.train.config import TrainConfig
from snsm_workbench.train.models import build_model

# (accumulator shape of a 352 x 128 MLP weight, has a momentum buffer)
RULES = {"adagrad": ((352, 128), False), "adagrad_norm": ((1,), False),
         "sn_heuristic": ((352, 1), False), "sn_sqrt": ((256, 1), False),  # 176 | 45056
         "adagrad_sn": ((352, 1), True)}


@pytest.fixture(scope="module")
def model():
    return build_model("tiny", 300, 32)


@pytest.mark.parametrize("label", list(exp.VARIANTS))
def test_each_variant_gets_its_rule_on_the_matrices_and_adagrad_elsewhere(model, label):
    optimizer = exp.VariantFactory(label)(model, TrainConfig(lr=0.5))
    for param in model.parameters():
        param.grad = torch.ones_like(param)
    optimizer.step()
    mlp = model.model.layers[0].mlp.up_proj.weight
    embedding, norm = model.model.embed_tokens.weight, model.model.norm.weight
    shape, momentum = RULES[label]
    assert tuple(optimizer.state[mlp]["accumulator"].shape) == shape
    assert ("momentum" in optimizer.state[mlp]) is momentum
    matrices, plain = optimizer.param_groups
    assert matrices["lr"] == 0.5 and plain["lr"] == exp.PLAIN_LR
    for param in (embedding, norm):  # per-coordinate AdaGrad without momentum, every variant
        assert optimizer.state[param]["accumulator"].shape == param.shape
        assert "momentum" not in optimizer.state[param]
    assert plain["momentum"] == "none" and plain["accumulator"] == "sum"


def test_pick_lr_takes_the_lowest_loss_and_the_smaller_lr_on_a_tie():
    assert exp.pick_lr((0.1, 1.0, 10.0), [3.0, 2.5, math.inf]) == 1.0
    assert exp.pick_lr((0.1, 1.0), [2.0, 2.0]) == 0.1
    assert exp.pick_lr((0.1, 1.0), [math.inf, math.inf]) is None  # every lr diverged


def test_quick_figures_are_the_ratios_of_the_measured_perplexities(quick_results, figure):
    item = quick_results["adagrad-variants"]
    fig = figure("adagrad-variants")
    ppl = {label: fig[f"ppl_{label}"] for label in exp.VARIANTS}
    assert all(math.isfinite(v) and 1 < v < 3000 for v in ppl.values()), ppl  # vocab 300
    assert fig["coordinate_over_sn"] == pytest.approx(ppl["adagrad"] / ppl["sn_heuristic"],
                                                      rel=1e-3)
    assert fig["norm_over_coordinate"] == pytest.approx(ppl["adagrad_norm"] / ppl["adagrad"],
                                                        rel=1e-3)
    assert fig["seeds_in_claimed_order"] in (0, 1)
    assert set(item["expected"]) == {"coordinate_over_sn", "norm_over_coordinate"}
