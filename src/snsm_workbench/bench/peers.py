"""Peer optimizers for ``snsm bench``: one adapter per optimizer users would pick instead.

Each adapter builds the peer for a model the way its authors recommend routing
parameters (written in the adapter's ``routing``), with the peak learning rate
they recommend for a small LLaMA (``lr``) and a small grid around it for
``--tune`` (``grid``). A peer whose package is missing raises
:class:`PeerUnavailable` when built; the bench skips it with a line in the report.

Matrix shapes: "hidden matrices" are the ``nn.Linear`` weights inside the
transformer blocks (attention and MLP projections); the embedding and the
``lm_head`` are left to the AdamW part where the authors say so.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from snsm.optim.routing import hidden_matrices, split_params

logger = logging.getLogger(__name__)


class PeerUnavailable(RuntimeError):
    """The peer's package is not installed (or cannot run on this device)."""


@dataclass(frozen=True)
class Peer:
    """How to build one peer: ``build(model, lr, weight_decay, hparams) -> Optimizer``."""

    name: str
    package: str  # the pip distribution providing it ("torch" for torch.optim)
    license: str
    routing: str
    lr: float
    grid: tuple[float, ...]
    build: Callable[[nn.Module, float, float, dict], torch.optim.Optimizer]
    hparams: dict[str, Any] = field(default_factory=dict)
    # The adapter keeps the embedding, lm_head and norms in a plain group whose lr can be
    # set apart (hparams "plain_lr"); None there: Muon's AdamW lr, the group lr otherwise.
    plain_group: bool = False


def _import(module: str, package: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PeerUnavailable(f"{module} is not installed (pip install {package}); "
                              f"install the peers extra: pip install 'snsm[peers]'") from exc


class _MergedState(Mapping):
    """A read-only view of several optimizers' ``state`` dicts (never creates entries:
    a ChainMap over defaultdicts would, on every lookup of another child's key)."""

    def __init__(self, states: list[dict]):
        self.states = states

    def __getitem__(self, key):
        for state in self.states:
            if key in state:
                return state[key]
        raise KeyError(key)

    def __iter__(self):
        for state in self.states:
            yield from state

    def __len__(self) -> int:
        return sum(len(state) for state in self.states)


class ChainedOptimizer(torch.optim.Optimizer):
    """Several optimizers over disjoint parameters, stepped together (Muon + AdamW).

    ``param_groups`` are the children's group dicts themselves, so an lr scheduler
    on the chain scales every child; ``state`` is a read-only view of their states.
    """

    def __init__(self, optimizers: list[torch.optim.Optimizer]):
        if not optimizers:
            raise ValueError("ChainedOptimizer needs at least one optimizer, got none")
        params = [p for o in optimizers for g in o.param_groups for p in g["params"]]
        super().__init__(params, {})
        self.optimizers = list(optimizers)
        self.param_groups = [g for o in self.optimizers for g in o.param_groups]
        self.state = _MergedState([o.state for o in self.optimizers])

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for optimizer in self.optimizers:
            optimizer.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state_dict: dict) -> None:
        for optimizer, saved in zip(self.optimizers, state_dict["optimizers"], strict=True):
            optimizer.load_state_dict(saved)


# --- adapters ----------------------------------------------------------------------------

def _torch_adamw(model, lr, weight_decay, hp):
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, foreach=True)


def _adafactor(model, lr, weight_decay, hp):
    return torch.optim.Adafactor(model.parameters(), lr=lr, weight_decay=weight_decay,
                                 foreach=True)


def _muon(model, lr, weight_decay, hp):
    matrices, rest = split_params(model, hidden_matrices(model))
    muon = torch.optim.Muon(matrices, lr=lr, weight_decay=weight_decay,
                            adjust_lr_fn="match_rms_adamw")
    adamw = torch.optim.AdamW(rest, lr=hp.get("plain_lr") or hp["adamw_lr"],
                              weight_decay=weight_decay, foreach=True)
    return ChainedOptimizer([muon, adamw])


def _projected_groups(model, weight_decay, hp) -> list[dict]:
    """GaLore-style groups: hidden matrices carry the projection keys, the rest is plain."""
    matrices, rest = split_params(model, hidden_matrices(model))
    plain = {"lr": hp["plain_lr"]} if hp.get("plain_lr") else {}
    return [{"params": rest, "weight_decay": weight_decay, **plain},
            {"params": matrices, "weight_decay": weight_decay, "rank": hp["rank"],
             "update_proj_gap": hp["update_proj_gap"], "scale": hp["scale"],
             "projection_type": hp["projection_type"], **hp.get("extra", {})}]


def _po_class(name: str):
    """Class ``name`` of pytorch-optimizer; PeerUnavailable if the installed version lacks it."""
    po = _import("pytorch_optimizer", "pytorch-optimizer")
    if not hasattr(po, name):
        raise PeerUnavailable(f"pytorch-optimizer {getattr(po, '__version__', '?')} has no "
                              f"{name}; upgrade it: pip install -U pytorch-optimizer")
    return getattr(po, name)


def _po_projected(class_name: str):
    def build(model, lr, weight_decay, hp):
        return _po_class(class_name)(_projected_groups(model, weight_decay, hp), lr=lr)
    return build


def _po_adam_mini(model, lr, weight_decay, hp):
    cfg = model.config
    return _po_class("AdamMini")(model, lr=lr, weight_decay=weight_decay, num_embeds=cfg.hidden_size,
                       num_heads=cfg.num_attention_heads,
                       num_query_groups=cfg.num_key_value_heads)


def _po_adamwsn(model, lr, weight_decay, hp):
    linear = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    sn, regular = split_params(model, linear)
    return _po_class("AdamWSN")([{"params": regular, "sn": False}, {"params": sn, "sn": True}], lr=lr,
                      weight_decay=weight_decay, subset_size=-1)


def _adam_mini(model, lr, weight_decay, hp):
    package = _import("adam_mini", "adam-mini")
    cfg = model.config
    return package.Adam_mini(model.named_parameters(), lr=lr, weight_decay=weight_decay,
                             dim=cfg.hidden_size, n_heads=cfg.num_attention_heads,
                             n_kv_heads=cfg.num_key_value_heads, verbose=False)


def _bnb_adamw8bit(model, lr, weight_decay, hp):
    bnb = _import("bitsandbytes", "bitsandbytes")
    optimizer = bnb.optim.AdamW8bit(model.parameters(), lr=lr, weight_decay=weight_decay)
    embeddings = [m.weight for m in model.modules() if isinstance(m, nn.Embedding)]
    manager = bnb.optim.GlobalOptimManager.get_instance()
    manager.initialize()  # the manager is a process-wide singleton: drop earlier models' ids
    for weight in embeddings:  # the authors: keep embeddings in 32-bit state (stability)
        manager.override_config(weight, "optim_bits", 32)
    return optimizer


def _lion(model, lr, weight_decay, hp):
    lion = _import("lion_pytorch", "lion-pytorch")
    return lion.Lion(model.parameters(), lr=lr, weight_decay=weight_decay)


_GALORE_HP = {"rank": 32, "update_proj_gap": 100, "scale": 0.25, "projection_type": "std"}

PEERS: dict[str, Peer] = {p.name: p for p in [
    Peer("torch_adamw", "torch", "BSD-3-Clause",
         "all parameters in one group; torch.optim.AdamW(foreach=True)",
         3e-3, (1e-3, 3e-3, 1e-2), _torch_adamw),
    Peer("adafactor", "torch", "BSD-3-Clause",
         "all parameters (factored second moment for matrices, full for vectors); "
         "torch.optim.Adafactor, no first moment", 1e-2, (3e-3, 1e-2, 3e-2), _adafactor),
    Peer("muon", "torch", "BSD-3-Clause",
         "Muon for the hidden matrices (attention, MLP); AdamW (lr 3e-3) for the embedding, "
         "lm_head and norms, as Muon's authors recommend; adjust_lr_fn='match_rms_adamw'",
         2e-2, (1e-2, 2e-2, 5e-2), _muon, {"adamw_lr": 3e-3}, plain_group=True),
    Peer("galore", "pytorch-optimizer", "Apache-2.0",
         "GaLore (rank 32, gap 100, scale 0.25) on the hidden matrices; Adam on the "
         "embedding, lm_head and norms (GaLore's target modules: attn, mlp)",
         1e-2, (3e-3, 1e-2, 3e-2), _po_projected("GaLore"), dict(_GALORE_HP),
         plain_group=True),
    Peer("fira", "pytorch-optimizer", "Apache-2.0",
         "Fira (GaLore projection plus the scaled residual; rank 32, gap 100, scale 0.25) on "
         "the hidden matrices; Adam on the rest", 1e-2, (3e-3, 1e-2, 3e-2),
         _po_projected("Fira"), dict(_GALORE_HP), plain_group=True),
    Peer("apollo", "pytorch-optimizer", "Apache-2.0 (pytorch-optimizer's reimplementation; "
         "the authors' apollo-torch is non-commercial, CC BY-NC 4.0)",
         "APOLLO (random projection rank 32, channel-wise scaling, scale 1, gap 100) on the "
         "hidden matrices; AdamW on the embedding, lm_head and norms", 1e-2, (3e-3, 1e-2, 3e-2),
         _po_projected("APOLLO"),
         {"rank": 32, "update_proj_gap": 100, "scale": 1.0, "projection_type": "random",
          "extra": {"scale_type": "channel"}}, plain_group=True),
    Peer("adam_mini_po", "pytorch-optimizer", "Apache-2.0",
         "pytorch-optimizer's AdamMini: one second moment per head for q/k, per output neuron "
         "for the other matrices, per token for the embedding and lm_head (by parameter name)",
         3e-3, (1e-3, 3e-3, 1e-2), _po_adam_mini),
    Peer("adam_mini", "adam-mini", "MIT (github.com/zyushun/Adam-mini)",
         "the authors' Adam_mini(named_parameters, dim, n_heads): the same block partition "
         "as the paper, by parameter name", 3e-3, (1e-3, 3e-3, 1e-2), _adam_mini),
    Peer("adamwsn_po", "pytorch-optimizer", "Apache-2.0",
         "pytorch-optimizer's AdamWSN: nn.Linear weights (lm_head included) with subset-norm "
         "(subset_size=-1), the rest AdamW, as in its docstring", 3e-2, (1e-2, 3e-2, 1e-1),
         _po_adamwsn),
    Peer("adamw8bit", "bitsandbytes", "MIT",
         "bitsandbytes AdamW8bit on all parameters (blockwise 8-bit states; tensors under 4096 "
         "elements stay 32-bit); embeddings overridden to 32-bit states as its authors advise",
         3e-3, (1e-3, 3e-3, 1e-2), _bnb_adamw8bit),
    Peer("lion", "lion-pytorch", "MIT",
         "Lion on all parameters; lr about 3-10x below AdamW's, as its authors advise",
         3e-4, (1e-4, 3e-4, 1e-3), _lion),
]}


def peer_names() -> list[str]:
    """The adapters' names."""
    return list(PEERS)


def get_peer(name: str) -> Peer:
    """The adapter ``name``; ValueError listing the names otherwise."""
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; choose one of {', '.join(PEERS)}")
    return PEERS[name]


def build_peer(name: str, model: nn.Module, lr: float | None = None,
               weight_decay: float = 0.0, plain_lr: float | None = None
               ) -> torch.optim.Optimizer:
    """Peer ``name`` for ``model`` (lr: the adapter's default; ``plain_lr``: its plain group's,
    for adapters with one); PeerUnavailable if not installed."""
    peer = get_peer(name)
    for what, value in (("lr", lr), ("plain_lr", plain_lr)):
        if value is not None and not value > 0:
            raise ValueError(f"{what} must be > 0, got {value!r}")
    if plain_lr is not None and not peer.plain_group:
        raise ValueError(f"peer {name!r} has no separate plain group; plain_lr={plain_lr} "
                         f"cannot apply")
    hparams = peer.hparams if plain_lr is None else {**peer.hparams, "plain_lr": plain_lr}
    return peer.build(model, lr if lr is not None else peer.lr, weight_decay, hparams)
