import pytest
import torch
from torch import nn

import snsm
from problems import TinyLM
from snsm.optim.routing import check_exact_cover


def _ids(params):
    return {id(p) for p in params}


def test_linear_weights_go_to_the_snsm_group_and_the_rest_to_the_plain_group():
    model = TinyLM()
    matrices, plain = snsm.param_groups(model)
    assert _ids(matrices["params"]) == {id(model.proj.weight), id(model.head.weight)}
    assert plain["use_snsm"] is False
    assert _ids(plain["params"]) == {id(model.embed.weight), id(model.proj.bias),
                                     id(model.norm.weight), id(model.norm.bias)}


def test_tied_weight_lands_once_in_the_plain_group():
    model = TinyLM(tie=True)
    matrices, plain = snsm.param_groups(model)
    assert id(model.embed.weight) not in _ids(matrices["params"])
    assert [id(p) for p in plain["params"]].count(id(model.embed.weight)) == 1


def test_overrides_reach_their_group():
    matrices, plain = snsm.param_groups(TinyLM(), plain={"lr": 1e-3}, rank=4)
    assert matrices["rank"] == 4 and plain["lr"] == 1e-3 and "lr" not in matrices


def test_exact_cover_check_catches_missing_and_repeated():
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(3))
    with pytest.raises(RuntimeError, match="missing"):
        check_exact_cover([a, b], [[a]])
    with pytest.raises(RuntimeError, match="repeated"):
        check_exact_cover([a, b], [[a, b], [b]])


@pytest.mark.parametrize("name", snsm.list_optimizers())
def test_create_optimizer_builds_every_registry_name_and_trains(name):
    model = TinyLM()
    optimizer = snsm.create_optimizer(model, name, lr=1e-3)
    assert isinstance(optimizer, snsm.get_optimizer_class(name))
    tokens = torch.arange(8) % 50
    loss = model.head(model.norm(model.proj(model.embed(tokens)))).logsumexp(-1).mean()
    loss.backward()
    optimizer.step()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert set(map(id, optimizer.state)) == _ids(trainable)


def test_unknown_optimizer_name_lists_the_choices():
    with pytest.raises(ValueError, match="adamw_snsm"):
        snsm.create_optimizer(TinyLM(), "adam_snsm")


def test_plain_group_keeps_full_momentum_and_per_coordinate_steps():
    model = TinyLM()
    optimizer = snsm.create_optimizer(model, "adamw_snsm", rank=2)
    model.embed.weight.grad = torch.ones_like(model.embed.weight)
    model.proj.weight.grad = torch.ones_like(model.proj.weight)
    optimizer.step()
    embed, proj = optimizer.state[model.embed.weight], optimizer.state[model.proj.weight]
    assert embed["momentum"].shape == embed["accumulator"].shape == model.embed.weight.shape
    assert proj["momentum"].shape == (32, 2) and proj["accumulator"].shape == (32, 1)


@pytest.mark.parametrize("name", ["lm_head", "output", "head"])
def test_the_hidden_route_keeps_an_output_layer_by_its_usual_names_out(name, caplog):
    """A head called ``output`` (torchtitan's LLaMA) or ``head`` used to get the matrix rule."""
    model = nn.Module()
    model.embed = nn.Embedding(50, 16)
    model.block = nn.Linear(16, 16)
    setattr(model, name, nn.Linear(16, 50, bias=False))
    hidden, plain = snsm.param_groups(model, route="hidden")
    assert [p for p in hidden["params"]] == [model.block.weight]
    assert any(p is getattr(model, name).weight for p in plain["params"])
    assert "no output layer" not in caplog.text


def test_the_hidden_route_warns_when_it_finds_no_output_layer(caplog):
    model = nn.Sequential(nn.Embedding(50, 16), nn.Linear(16, 50))
    with caplog.at_level("WARNING", logger="snsm.optim.routing"):
        hidden, _ = snsm.param_groups(model, route="hidden")
    assert hidden["params"] == [model[1].weight]  # unnamed: it cannot tell the head
    assert "Sequential has no output layer" in caplog.text and "lm_head, output, head" in caplog.text
