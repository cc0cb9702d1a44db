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
    assert parameters["lr"].default == spec.constructor_lr == spec.cls.constructor_lr
    assert spec.takes_rank == ("rank" in parameters)
    assert spec.takes_projector == ("projector" in parameters)
    assert spec.harness_lr > 0 and (spec.paper_lr is None or spec.paper_lr > 0)
    assert spec.summary and spec.summary == spec.cls.__doc__.strip().splitlines()[0]


# The named classes' signatures: (options in order, their defaults); then, keyword-only,
# foreach=None, maximize=False, compile=False, bf16_update="stochastic", skip_nonfinite=False.
ADAM = (("lr", 1e-2), ("betas", (0.9, 0.999)), ("eps", 1e-6), ("weight_decay", 0.0))
SUBSPACE = (("rank", 128), ("projector", "svd"), ("update_gap", 200), ("on_refresh", "reset"),
            ("seed", 0))
SUBSET, FULL = (("subset_size", "heuristic"),), (("state_precision", "full"),)
MUON = (("lr", 1e-3), ("betas", (0.95, 0.95)), ("eps", 1e-7), ("weight_decay", 0.1),
        ("nesterov", True))
NS = (("ns_steps", 5), ("ns_coefficients", (3.4445, -4.7750, 2.0315)), ("ns_dtype", "bfloat16"),
      ("shape_scale", "original"))
MUON_SUBSPACE = (("rank", 128), ("projector", "svd"), ("update_gap", 100),
                 ("on_refresh", "project"), ("complement", "gradient"), ("seed", 0))
SIGNATURES = {
    snsm.AdamSN: (*ADAM, *SUBSET, *FULL),
    snsm.AdamSNSM: (*ADAM, *SUBSET, *SUBSPACE, *FULL),
    snsm.AdamSM: (("lr", 1e-3), ADAM[1], ("eps", 1e-8), ADAM[3], *SUBSPACE, *FULL),
    snsm.AdaGradSN: (("lr", 1e-1), *ADAM[1:], *SUBSET, *FULL),
    snsm.AdaGradSNSM: (("lr", 1.0), *ADAM[1:], *SUBSET, *SUBSPACE, *FULL),
    snsm.RMSpropSN: (("lr", 2e-3), *ADAM[1:], *SUBSET, *FULL),
    snsm.SGDSM: (ADAM[0], ADAM[1], ADAM[3], *SUBSPACE, *FULL),
    snsm.AdaGradNorm: (("lr", 1e-1), ("eps", 1e-6), ("weight_decay", 0.0)),
    snsm.AdaGrad: (("lr", 1e-2), ("eps", 1e-10), ("weight_decay", 0.0), *FULL),
    snsm.AdamW: (("lr", 1e-3), ("betas", (0.9, 0.999)), ("eps", 1e-8), ("weight_decay", 1e-2),
                 *FULL),  # torch.optim.AdamW's defaults
    snsm.Muon: (*MUON, *NS, ("aux", "adamw"), *FULL),  # torch.optim.Muon's defaults
    snsm.MuonSN: (*MUON, ("normalize", "row"), *NS, ("aux", "adamw"), *FULL),
    snsm.MuonSM: (*MUON, *MUON_SUBSPACE, *NS, ("aux", "adamw"), *FULL),
    snsm.MuonSNSM: (*MUON, ("normalize", "row"), *MUON_SUBSPACE, *NS, ("aux", "adamw"), *FULL),
}
KEYWORD_ONLY = (("foreach", None), ("maximize", False), ("compile", False),
                ("bf16_update", "stochastic"), ("skip_nonfinite", False))


@pytest.mark.parametrize("cls", SIGNATURES, ids=lambda cls: cls.__name__)
def test_named_class_signature_and_options(cls):
    parameters = list(inspect.signature(cls).parameters.values())
    assert parameters[0].name == "params"
    positional = [(p.name, p.default) for p in parameters[1:]
                  if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    keyword = [(p.name, p.default) for p in parameters[1:]
               if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert (tuple(positional), tuple(keyword)) == (SIGNATURES[cls], KEYWORD_ONLY)
    assert cls.options == tuple(name for name, _ in (*SIGNATURES[cls], *KEYWORD_ONLY))
    assert cls.constructor_lr == SIGNATURES[cls][0][1]
    assert cls.__module__ == "snsm.optim.named" and cls.__doc__.strip()


def test_every_exported_named_class_is_covered():
    named = {getattr(snsm, name) for name in snsm.__all__
             if isinstance(getattr(snsm, name), type) and issubclass(getattr(snsm, name), snsm.SNSM)
             and getattr(snsm, name) is not snsm.SNSM}
    assert named == set(SIGNATURES)


def test_adamw_has_torch_adamw_defaults():
    ours = inspect.signature(snsm.AdamW).parameters
    theirs = inspect.signature(torch.optim.AdamW).parameters
    for name in ("lr", "betas", "eps", "weight_decay"):
        assert ours[name].default == theirs[name].default, name


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


def test_all_lists_the_public_api():
    """``snsm.__all__`` names exactly its public attributes (submodules aside)."""
    public = {name for name, value in vars(snsm).items()
              if not name.startswith("_") and not inspect.ismodule(value)}
    assert public == set(snsm.__all__)


def test_a_user_subclass_without_a_default_lr_still_defines():
    class Custom(snsm.SNSM):
        def __init__(self, params, lr, *, rank=4):
            super().__init__(params, lr, rank=rank)

    assert Custom.options == ("lr", "rank") and Custom.constructor_lr is None
    group = Custom([torch.nn.Parameter(torch.zeros(3, 2))], 0.5).param_groups[0]
    assert (group["lr"], group["rank"]) == (0.5, 4)


@pytest.mark.parametrize("not_a_model", [
    lambda m: m.parameters(), lambda m: list(m.parameters()),
    lambda m: [{"params": list(m.parameters())}], lambda m: "adamw_snsm"])
def test_create_optimizer_names_what_it_got_when_not_given_a_module(not_a_model):
    model = torch.nn.Linear(4, 4)
    with pytest.raises(TypeError, match=r"takes an nn\.Module.*got (a|str) .*optimizer class"):
        snsm.create_optimizer(not_a_model(model), "adamw_snsm")
