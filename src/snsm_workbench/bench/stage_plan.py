"""The standard suite's plan, read from ``snsm_workbench/suites/standard.json``.

Keys of the file (every one required; a bad one raises :class:`SuiteFileError` naming it):

* ``stages``: the stage names in priority order (the pool trains an earlier stage's runs first);
* ``settings``: the fields of :class:`Settings` but ``data`` and ``cache_dir``;
* ``smoke``: the fields of :class:`Settings` that ``--smoke`` changes (seconds on a CPU);
* ``tuning``: ``grid_step``, ``plain_step`` (x spacing of an extension past an edge),
  ``max_extensions`` (short horizon) and ``confirm_extensions`` (full horizon);
* ``headline``, ``ingredients``: entries ``{label, optimizer, grid, optimizer_args?, route?}``,
  tuned on both learning rates;
* ``peer_grid_factors``: a peer's grid as multiples of its authors' lr;
* ``lean``: ``{label, base (a headline label), optimizer_args, weights ("fp32" or "bf16")}``;
* ``search``: AdamSNSM's variants ``{knob, value, optimizer_args?, plain_same?}``;
* ``muon``: the Muon family's stage, in priority order: entries (as ``headline``'s, with
  ``route``) tuned on both lrs, and lean levels ``{label, base (an earlier item), optimizer_args,
  weights, tune_plain?}`` at their base's tuned lrs (``tune_plain``: the plain-group lr tuned
  again, for a level that changes the plain group's rule). ``settings.muon_labels`` names the
  items run;
* ``muon_goals`` (optional): issue 23's goals that the report checks, ``{peer,
  steps_fraction_max, state_pct_max, state_pct_stretch}`` (:mod:`snsm_workbench.bench.muon_report`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from snsm_workbench.bench.contenders import Contender
from snsm_workbench.bench.peers import PEERS
from snsm_workbench.bench.suite_files import (SUITES_DIR, SuiteFileError, check_keys,
                                              load_suite_file, numbers)

MAIN_CORPUS = "shakespeare"


@dataclass(frozen=True)
class Entry:
    """A contender of the standard suite and how it is tuned."""

    contender: Contender
    grid: tuple[float, ...]
    two_group: bool = False  # tune the plain-group lr too
    plain_follows_lr: bool = True  # an unset plain lr is the matrices' (Muon: its own AdamW lr)


@dataclass(frozen=True)
class Variant:
    """One change to the headline AdamSNSM for the ``search`` stage."""

    knob: str
    value: str | int
    optimizer_args: dict = field(default_factory=dict)
    plain_same: bool = False  # the plain group at the matrices' lr instead of its tuned one

    @property
    def label(self) -> str:
        return f"adamw_snsm_{self.knob}_{self.value}"


@dataclass(frozen=True)
class LeanLevel:
    """A headline contender (``base``) with extra optimizer arguments and its weights' dtype."""

    label: str
    base: str
    optimizer_args: dict
    weights: str
    tune_plain: bool = False  # tune the plain-group lr at the base's matrix lr (muon stage)

    def contender(self, base: Contender) -> Contender:
        """``base`` with this level's label, weights and extra arguments (no grid: no tuning)."""
        return replace(base, label=self.label, grid=(), weights=self.weights,
                       optimizer_args={**base.optimizer_args, **self.optimizer_args})


@dataclass(frozen=True)
class Settings:
    """The suite's size (``settings`` of the file; ``smoke`` changes some)."""

    preset: str
    full_steps: int
    batch_size: int
    seq_len: int
    vocab_size: int
    eval_every: int
    eval_batches: int
    seeds: int
    corpus_seeds: int
    peer_seeded: int  # the best peers that get ``seeds`` seeds
    corpora: tuple[str, ...]
    scale_presets: tuple[str, ...]
    scale_steps: int
    peers: tuple[str, ...]
    plain_grid: tuple[float, ...]
    search_knobs: tuple[str, ...]
    muon_labels: tuple[str, ...]  # the muon stage's items that run
    data: str | None = None  # the main corpus: Shakespeare when None
    cache_dir: str | None = None

    @property
    def short_steps(self) -> int:
        """The tuning horizon: a third of the full one."""
        return math.ceil(self.full_steps / 3)

    @classmethod
    def standard(cls, data: str | None = None, cache_dir: str | None = None) -> Settings:
        """The file's settings, on corpus ``data`` (None: Shakespeare)."""
        return replace(PLAN.settings, data=data, cache_dir=cache_dir)

    @classmethod
    def smoke(cls, data: str, second: str, cache_dir: str | None = None) -> Settings:
        """Seconds: generated corpora ``data`` (main) and ``second``, the file's ``smoke``."""
        return replace(PLAN.smoke, corpora=(second,), data=data, cache_dir=cache_dir)


@dataclass(frozen=True)
class Plan:
    """Everything ``standard.json`` holds (see the module docstring)."""

    stages: tuple[str, ...]
    settings: Settings
    smoke: Settings
    tuning: dict
    headline: tuple[Entry, ...]
    ingredients: tuple[Entry, ...]
    peer_grid_factors: tuple[float, ...]
    lean: tuple[LeanLevel, ...]
    search: tuple[Variant, ...]
    muon: tuple[Entry | LeanLevel, ...]
    muon_goals: dict = field(default_factory=dict)  # issue 23's goals, read by the report

    def peer_entry(self, name: str) -> Entry:
        """A peer on its grid around its authors' lr; a peer with a plain group (Muon,
        GaLore, Fira, APOLLO) tunes its lr too, like ours."""
        peer = PEERS[name]
        grid = tuple(peer.lr * f for f in self.peer_grid_factors)
        return Entry(Contender(name, name, True, peer.lr, grid), grid,
                     two_group=peer.plain_group, plain_follows_lr=name != "muon")

    def check_stages(self, stages: tuple[str, ...]) -> None:
        """ValueError naming the stages that are not in ``stages`` of the plan."""
        unknown = [stage for stage in stages if stage not in self.stages]
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; choose from {', '.join(self.stages)}")


_SETTINGS = {"preset": "str", "full_steps": "int", "batch_size": "int", "seq_len": "int",
             "vocab_size": "int", "eval_every": "int", "eval_batches": "int", "seeds": "int",
             "corpus_seeds": "int", "peer_seeded": "int", "corpora": "list",
             "scale_presets": "list", "scale_steps": "int", "peers": "list",
             "plain_grid": "list", "search_knobs": "list", "muon_labels": "list"}


MUON_GOALS = {"peer": "str", "steps_fraction_max": "number", "state_pct_max": "number",
              "state_pct_stretch": "number"}


def _settings(obj: dict, where: str, base: dict | None = None) -> Settings:
    check_keys(obj, where, {} if base else _SETTINGS, _SETTINGS)
    values = {**(base or {}), **obj}
    values["plain_grid"] = numbers(values["plain_grid"], f"{where}.plain_grid")
    unknown = [p for p in values["peers"] if p not in PEERS]
    if unknown:
        raise SuiteFileError(f"{where}.peers: unknown peer(s) {unknown}")
    return Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _entry(obj: dict, where: str) -> Entry:
    """One of ours, started at the middle of its grid, both lrs tuned."""
    check_keys(obj, where, {"label": "str", "optimizer": "str", "grid": "list"},
               {"optimizer_args": "dict", "route": "str"})
    grid = numbers(obj["grid"], f"{where}.grid")
    contender = Contender(obj["label"], obj["optimizer"], False, grid[len(grid) // 2], grid,
                          dict(obj.get("optimizer_args", {})), route=obj.get("route", "linear"))
    return Entry(contender, grid, two_group=True)


def _items(data: dict, key: str, where: str, build) -> tuple:
    return tuple(build(obj, f"{where}: {key}[{i}]") for i, obj in enumerate(data[key]))


def _lean(obj: dict, where: str) -> LeanLevel:
    check_keys(obj, where, {"label": "str", "base": "str", "optimizer_args": "dict",
                            "weights": "str"}, {"tune_plain": "bool"})
    return LeanLevel(**obj)


def _muon_item(obj: dict, where: str) -> Entry | LeanLevel:
    """A lean level (it has a ``base``) or an entry tuned on both lrs."""
    return _lean(obj, where) if isinstance(obj, dict) and "base" in obj else _entry(obj, where)


def item_label(item: Entry | LeanLevel) -> str:
    """The label of a muon-stage item (an entry's is its contender's)."""
    return item.label if isinstance(item, LeanLevel) else item.contender.label


def _check_muon(muon: tuple, settings: tuple[Settings, ...], where: str) -> None:
    """Unique labels, each level's base an earlier item, ``muon_labels`` among them."""
    seen: list[str] = []
    for item in muon:
        if item_label(item) in seen or (isinstance(item, LeanLevel) and item.base not in seen):
            raise SuiteFileError(f"{where}: muon: {item_label(item)!r} repeats a label or its base "
                                 f"is not an earlier item of {seen}")
        seen.append(item_label(item))
    bases = {item.label: item.base for item in muon if isinstance(item, LeanLevel)}
    for s in settings:
        unknown = [label for label in s.muon_labels if label not in seen]
        orphans = [label for label in s.muon_labels
                   if label in bases and bases[label] not in s.muon_labels]
        if unknown or orphans:
            raise SuiteFileError(f"{where}: muon_labels: unknown item(s) {unknown}, or "
                                 f"levels without their base {orphans}")


def _variant(obj: dict, where: str) -> Variant:
    check_keys(obj, where, {"knob": "str", "value": "str|int"},
               {"optimizer_args": "dict", "plain_same": "bool"})
    return Variant(**obj)


def load_plan(folder: Path = SUITES_DIR, name: str = "standard") -> Plan:
    """The plan of ``<folder>/<name>.json``."""
    data = load_suite_file(name, folder)
    where = str(Path(folder) / f"{name}.json")
    check_keys(data, where, {"description": "str", "stages": "list", "settings": "dict",
                             "smoke": "dict", "tuning": "dict", "headline": "list",
                             "ingredients": "list", "peer_grid_factors": "list",
                             "lean": "list", "search": "list", "muon": "list"},
               {"muon_goals": "dict"})
    goals = check_keys(data.get("muon_goals", {}), f"{where}: muon_goals", {}, MUON_GOALS)
    check_keys(data["tuning"], f"{where}: tuning", {"grid_step": "number", "plain_step": "number",
                                                    "max_extensions": "int",
                                                    "confirm_extensions": "int"})
    settings = _settings(data["settings"], f"{where}: settings")
    headline = _items(data, "headline", where, _entry)
    lean = _items(data, "lean", where, _lean)
    labels = {e.contender.label for e in headline}
    if "adamw" not in labels or any(level.base not in labels for level in lean):
        raise SuiteFileError(f"{where}: headline needs 'adamw', and every lean base one of "
                             f"its labels {sorted(labels)}")
    smoke = _settings(data["smoke"], f"{where}: smoke", asdict(settings))
    muon = _items(data, "muon", where, _muon_item)
    _check_muon(muon, (settings, smoke), where)
    return Plan(tuple(data["stages"]), settings, smoke, dict(data["tuning"]), headline,
                _items(data, "ingredients", where, _entry),
                numbers(data["peer_grid_factors"], f"{where}: peer_grid_factors"), lean,
                _items(data, "search", where, _variant), muon, dict(goals))


PLAN = load_plan()


def check_same_settings(settings: Settings, path: Path) -> None:
    """The runs cached under ``path.parent`` were made with ``settings`` (written if new).
    A setting added after the cache was made must hold the file's value."""
    saved = json.loads(json.dumps(asdict(settings)))
    if path.is_file():
        defaults = json.loads(json.dumps(asdict(PLAN.settings)))
        try:
            cached = {**defaults, **json.loads(path.read_text())}
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
            raise ValueError(f"{path}: damaged settings file ({exc}); restore it from git or "
                             f"use another --out") from None
        changed = sorted(k for k in saved if cached.get(k) != saved[k])
        if changed:
            raise ValueError(f"{path.parent} holds runs made with other settings ({changed}); "
                             f"use another --out")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(saved, indent=1) + "\n")
