"""The short suites of ``snsm bench`` (demo, quick, full, finetune, gpu), read from their files.

Each suite's contenders, model, steps, seeds and tuning budget are in
``snsm_workbench/suites/<name>.json`` (the ``description`` key says what it is for); this module
turns one into a :class:`Suite`. Keys: ``preset``, ``steps``, ``seeds``, ``tune``,
``tune_steps``, ``batch_size``, ``eval_every``, ``eval_batches``, ``device``, ``bf16``,
optional ``finetune`` ({``pretrain_steps``, ``corpus``}), ``contenders`` (ours: ``label``,
``optimizer``, ``lr``, ``grid``, optional ``optimizer_args``, ``plain_lr``, ``route``,
``seeds``, ``weights``: ``"bf16"`` for pure-bf16 weights), optional ``lr_from`` ({ablation: the contender whose tuned lr it takes}) and
``peers`` ({``names``: adapters at their authors' lr and grid, ``seeds``: null for the
suite's}). The ``standard`` suite has its own schema (:mod:`snsm_workbench.bench.stage_plan`).

``Suite.smoke()`` is any suite's code path in seconds on the CPU (tiny model, a few
steps), for the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from snsm_workbench.bench.contenders import Contender
from snsm_workbench.bench.peers import PEERS
from snsm_workbench.bench.suite_files import (SUITES_DIR, SuiteFileError, check_keys,
                                              load_suite_file, numbers, suite_names)

STANDARD = "standard"  # the staged suite: its file has another schema


@dataclass(frozen=True)
class Suite:
    """A suite's settings (see the module docstring)."""

    name: str
    contenders: tuple[Contender, ...]
    preset: str = "tiny"
    steps: int = 200
    seeds: int = 1
    tune: bool = False
    tune_steps: int = 40
    batch_size: int = 16
    eval_every: int = 10
    eval_batches: int = 4
    finetune: dict = field(default_factory=dict)  # pretrain_steps, data (finetune only)
    device: str = "auto"  # auto, cpu or cuda (snsm_workbench.train.parallel.use_cuda)
    bf16: bool = False  # bfloat16 autocast
    lr_from: dict = field(default_factory=dict)  # ablation -> the contender whose tuned lr it takes

    def with_route(self, route: str) -> Suite:
        """Every one of our contenders (not the ablations, not peers) on ``route``."""
        contenders = tuple(replace(c, route=route) if not c.peer and c.label not in self.lr_from
                           else c for c in self.contenders)
        return replace(self, contenders=contenders)

    def smoke(self) -> Suite:
        """The same contenders and code path in seconds on the CPU: tiny model, few steps."""
        return replace(self, preset="tiny", steps=4, seeds=min(self.seeds, 2), tune_steps=2,
                       batch_size=2, eval_every=2, eval_batches=1, device="cpu",
                       finetune=self.finetune and {**self.finetune, "pretrain_steps": 2})


_SETTINGS = {"preset": "str", "steps": "int", "seeds": "int", "tune": "bool",
             "tune_steps": "int", "batch_size": "int", "eval_every": "int",
             "eval_batches": "int", "device": "str", "bf16": "bool"}
_CONTENDER = {"label": "str", "optimizer": "str", "lr": "number", "grid": "list"}
_CONTENDER_OPTIONAL = {"optimizer_args": "dict", "plain_lr": "number|str|null", "route": "str",
                       "seeds": "int|null", "weights": "str"}


def _contender(obj: dict, where: str) -> Contender:
    check_keys(obj, where, _CONTENDER, _CONTENDER_OPTIONAL)
    return Contender(obj["label"], obj["optimizer"], False, float(obj["lr"]),
                     numbers(obj["grid"], f"{where}.grid"), dict(obj.get("optimizer_args", {})),
                     obj.get("plain_lr"), obj.get("route", "linear"), obj.get("seeds"),
                     weights=obj.get("weights", "fp32"))


def _peers(obj: dict, where: str) -> tuple[Contender, ...]:
    """Each named peer adapter at its authors' lr and grid."""
    check_keys(obj, where, {"names": "list", "seeds": "int|null"})
    unknown = [name for name in obj["names"] if name not in PEERS]
    if unknown:
        raise SuiteFileError(f"{where}.names: unknown peer(s) {unknown}; choose from "
                             f"{', '.join(PEERS)}")
    return tuple(Contender(name, name, True, PEERS[name].lr, PEERS[name].grid,
                           seeds=obj["seeds"]) for name in obj["names"])


def load_suite(name: str, folder: Path = SUITES_DIR) -> Suite:
    """The short suite of ``<folder>/<name>.json`` (see the module docstring)."""
    data = load_suite_file(name, folder)
    where = str(Path(folder) / f"{name}.json")
    check_keys(data, where, {**_SETTINGS, "description": "str", "contenders": "list"},
               {"finetune": "dict", "lr_from": "dict", "peers": "dict"})
    ours = tuple(_contender(c, f"{where}: contenders[{i}]")
                 for i, c in enumerate(data["contenders"]))
    peers = _peers(data["peers"], f"{where}: peers") if "peers" in data else ()
    labels = [c.label for c in ours + peers]
    lr_from = data.get("lr_from", {})
    bad = {k: v for k, v in lr_from.items() if k not in labels or v not in labels}
    if bad or len(set(labels)) != len(labels) or "adamw" not in labels:
        raise SuiteFileError(f"{where}: contenders need unique labels with 'adamw' among them "
                             f"and lr_from between them; got {labels}, lr_from {bad or lr_from}")
    if "finetune" in data:
        check_keys(data["finetune"], f"{where}: finetune",
                   {"pretrain_steps": "int", "corpus": "str"})
    return Suite(name, ours + peers, finetune=dict(data.get("finetune", {})), lr_from=lr_from,
                 **{key: data[key] for key in _SETTINGS})


SUITES: dict[str, Suite] = {name: load_suite(name) for name in suite_names() if name != STANDARD}
# AdamSNSM's arguments on the tiny model (rank 32 of 128-wide matrices), for the scripts.
SNSM_ARGS = dict(next(c.optimizer_args for c in SUITES["demo"].contenders
                      if c.label == "adamw_snsm"))


def get_suite(name: str) -> Suite:
    """Suite ``name``; ValueError listing the names otherwise."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; choose one of {', '.join(SUITES)}")
    return SUITES[name]


def select(suite: Suite, labels: list[str] | None) -> Suite:
    """``suite`` restricted to ``labels`` (AdamW, the baseline, is always kept)."""
    if not labels:
        return suite
    known = {c.label for c in suite.contenders}
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise ValueError(f"suite {suite.name!r} has no contender(s) {unknown}; "
                         f"choose from {', '.join(sorted(known))}")
    wanted = set(labels) | {"adamw"}
    return replace(suite, contenders=tuple(c for c in suite.contenders if c.label in wanted))
