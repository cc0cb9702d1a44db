"""The registry of specs: what the CLI, the harness and the bench read instead of probing."""

import inspect

import pytest
import torch

import snsm
from optim_db import OPTIM_DB


def test_every_registry_name_has_a_contract_entry():
    covered = {info.cls for info in OPTIM_DB}
    missing = [n for n in snsm.list_optimizers() if snsm.get_optimizer_class(n) not in covered]
    assert not missing


@pytest.mark.parametrize("name", snsm.list_optimizers())
def test_spec_matches_the_class_it_names(name):
    spec = snsm.get_spec(name)
    parameters = inspect.signature(spec.cls).parameters
    assert list(parameters)[0] == "params" and tuple(parameters)[1:] == spec.options
    assert parameters["lr"].default == spec.default_lr
    assert spec.takes_rank == ("rank" in parameters)
    assert spec.takes_projector == ("projector" in parameters)
    assert spec.harness_lr > 0 and (spec.paper_lr is None or spec.paper_lr > 0)
    assert spec.summary and spec.summary == spec.cls.__doc__.strip().splitlines()[0]


def test_named_optimizers_keep_their_positional_order_and_refuse_other_options():
    param = torch.nn.Parameter(torch.zeros(4, 3))
    optimizer = snsm.AdamW([param], 2e-3, (0.8, 0.9), 1e-7, 0.1)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == \
        (2e-3, (0.8, 0.9), 1e-7, 0.1)
    assert (group["subset_size"], group["momentum"]) == (1, "ema")
    group = snsm.SGDSM([param], 0.1, (0.5, 0.9), 0.0, 2).param_groups[0]
    assert (group["rank"], group["eps"], group["accumulator"]) == (2, 0.0, "none")
    with pytest.raises(TypeError, match="AdamW.*rank"):
        snsm.AdamW([param], rank=4)
    with pytest.raises(TypeError, match="AdaGrad.*momentum"):
        snsm.AdaGrad([param], momentum="ema")


def test_unknown_name_lists_the_registry():
    with pytest.raises(ValueError, match="unknown optimizer 'adam'.*adamw_snsm"):
        snsm.get_spec("adam")
