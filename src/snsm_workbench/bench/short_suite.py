"""A short suite's run (:mod:`snsm_workbench.bench.suites`): tune, train every contender over its
seeds, summarize, write the record. Its runs go through the standard suite's engine: the run
pool (:mod:`snsm_workbench.bench.run_pool`) trains them in worker processes and caches each
under ``<record>/runs`` with the settings that made it, so a rerun reuses the finished runs and
refuses runs made with other settings.

Order: AdamW first (the baseline, and the lr of the ``plain group at AdamW's lr``
ablation), then ours, the ablations (at the tuned lr of the suite's ``lr_from``), then peers.
A peer that is not installed, or that fails, is skipped with its reason.
Output folder: ``results.json``, ``report.md``, ``val_loss.png``, ``pareto.png``,
``config.json`` (the suite) and ``environment.json`` (machine and package versions).
The harness's run folders go to the work folder (not part of the record).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import replace
from pathlib import Path

import torch

from snsm_workbench.bench import peers as peer_lib
from snsm_workbench.bench.contenders import Contender, resolve_plain_lr
from snsm_workbench.bench.records import check_record_suite
from snsm_workbench.bench.run_one import RunResult, from_compact
from snsm_workbench.bench.run_pool import RunKey, RunPool, final_loss
from snsm_workbench.bench.suites import Suite
from snsm_workbench.bench.summary import summarize
from snsm_workbench.bench.table_report import write_report
from snsm_workbench.bench.tuning import tune_lr
from snsm_workbench.measure.memory import memory_rows
from snsm_workbench.train.config import TrainConfig
from snsm_workbench.train.corpora import load_corpus
from snsm_workbench.train.tokens import TokenData, prepare_tokens
from snsm_workbench.util.environment import environment, package_version

logger = logging.getLogger(__name__)

VERSIONED = ("snsm", "torch", "transformers", "tokenizers", "numpy", "pytorch_optimizer",
             "adam-mini", "bitsandbytes", "lion-pytorch", "matplotlib")


def _ordered(suite: Suite) -> list[Contender]:
    """AdamW first, then ours, the ablations (which take ours' tuned lr), then the peers."""
    def order(c: Contender) -> tuple[bool, int]:
        return c.label != "adamw", 1 if c.label in suite.lr_from else (2 if c.peer else 0)
    return sorted(suite.contenders, key=order)


def _contender_info(c: Contender) -> dict:
    if c.peer:
        peer = peer_lib.get_peer(c.optimizer)
        return {"kind": "peer", "package": peer.package, "version": package_version(peer.package),
                "license": peer.license, "description": peer.routing}
    return {"kind": "ours", "package": "snsm", "version": package_version("snsm"),
            "license": "Apache-2.0", "description": c.describe()}


def memory_at_scale() -> dict:
    """``snsm memory`` rows at LLaMA-1B, bf16 states, rank 512, bases not counted (the paper's)."""
    rows = memory_rows("llama-1b", torch.bfloat16, 512, include_bases=False, peers=True)
    pct = next(r["pct_of_adamw"] for r in rows if r["optimizer"] == "adamw_snsm")
    return {"setting": "LLaMA-1B, bf16 states, rank 512, projector bases not counted",
            "adamw_snsm_pct": pct, "rows": rows}


@dataclasses.dataclass
class SuiteOptions:
    """Overrides of a suite from the command line (None: the suite's)."""

    steps: int | None = None
    seeds: int | None = None
    tune: bool | None = None
    cache_dir: str | None = None
    pretrain_steps: int | None = None  # finetune suite only
    data: str | None = None  # a local text file or folder instead of Shakespeare
    seq_len: int | None = None
    batch_size: int | None = None
    vocab_size: int | None = None
    timing_rounds: int = 5  # interleaved step-time rounds after the runs (0: the runs' medians)
    device: str | None = None  # auto, cpu or cuda (None: the suite's)
    workers: int = 2  # runs trained in parallel, one thread each (0: in this process)


def _base_config(suite: Suite, options: SuiteOptions) -> tuple[TrainConfig, int]:
    steps = options.steps or suite.steps
    extra = {key: value for key in ("cache_dir", "data", "seq_len", "vocab_size")
             if (value := getattr(options, key)) is not None}
    base = TrainConfig(preset=suite.preset, steps=steps, device=options.device or suite.device,
                       bf16=suite.bf16,
                       batch_size=options.batch_size or suite.batch_size,
                       eval_every=min(suite.eval_every, steps), eval_batches=suite.eval_batches,
                       save_every=steps, seed=0, quiet=True, **extra)
    return base, max(2, min(suite.tune_steps, steps))


@dataclasses.dataclass
class Trained:
    """What the contenders' loop leaves: chosen lrs, runs, tuning points, skips, package info."""

    lrs: dict[str, float] = dataclasses.field(default_factory=dict)
    runs: dict[str, list[RunResult]] = dataclasses.field(default_factory=dict)
    tuning: dict[str, dict] = dataclasses.field(default_factory=dict)
    skipped: list[dict] = dataclasses.field(default_factory=list)
    info: dict[str, dict] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _Runs:
    """Where a suite's runs come from: the pool, the base config and the corpus's key."""

    pool: RunPool
    base: TrainConfig
    corpus: str

    def __call__(self, c: Contender, lrs: list[float], plain_lr: float | None, steps: int,
                 seeds: int) -> list[dict]:
        config = self.base if steps == self.base.steps else replace(
            self.base, steps=steps, eval_every=steps)  # tuning: one evaluation, at the end
        return self.pool.run_many([(RunKey(self.corpus, c.label, config.preset, steps, lr,
                                           plain_lr, seed), c, config)
                                   for lr in lrs for seed in range(seeds)])


def _data(suite: Suite, options: SuiteOptions, base: TrainConfig, work: Path
          ) -> tuple[TokenData, dict | None, str, str]:
    """(token data, initial model state or None, data name, corpus key of the runs): the
    finetune suite continues a pretrained model on the KJV Bible."""
    corpus = load_corpus(base.data)
    source = prepare_tokens(corpus, Path(base.cache_dir).expanduser(), base.vocab_size)
    if not suite.finetune:
        return source, None, corpus.name, base.data or corpus.name
    from snsm_workbench.bench.finetune import finetune_data, pretrain

    pretrain_steps = options.pretrain_steps or suite.finetune["pretrain_steps"]
    initial_state = pretrain(base, source, pretrain_steps, work / "pretrain")
    key = f"kjv-from-{base.data or corpus.name}-pretrained{pretrain_steps}"
    return finetune_data(source, work), initial_state, f"kjv ({corpus.name} tokenizer)", key


def _train_one(c: Contender, suite: Suite, options: SuiteOptions, tune_steps: int | None,
               trained: Trained, runs: _Runs) -> None:
    """Tune (``tune_steps`` not None) and train ``c`` over its seeds into ``trained``."""
    lr = trained.lrs.get(suite.lr_from.get(c.label), c.lr)
    plain_lr = resolve_plain_lr(c, trained.lrs.get("adamw"))
    if tune_steps is not None and c.grid:
        def score(lrs):
            lrs = list(lrs)
            return {x: final_loss(r) for x, r in zip(lrs, runs(c, lrs, plain_lr, tune_steps, 1))}
        lr, scores = tune_lr(c, score)
        trained.tuning[c.label] = {"steps": tune_steps, "chosen": lr, "grid": {
            f"{k:g}": (None if v == float("inf") else round(v, 4)) for k, v in scores.items()}}
    seeds = c.seeds or options.seeds or suite.seeds
    trained.runs[c.label] = [from_compact(c.label, r)
                             for r in runs(c, [lr], plain_lr, runs.base.steps, seeds)]
    trained.lrs[c.label] = lr
    trained.info[c.label] = {**_contender_info(c), "plain_lr": plain_lr}


def _train_all(suite: Suite, options: SuiteOptions, tune_steps: int | None,
               runs: _Runs) -> Trained:
    """Every contender in :func:`_ordered` order; a peer unavailable or failing is skipped."""
    trained = Trained()
    for c in _ordered(suite):
        try:
            _train_one(c, suite, options, tune_steps, trained, runs)
        except peer_lib.PeerUnavailable as exc:
            trained.skipped.append({"optimizer": c.label, "reason": str(exc)})
            logger.warning("bench: skipping %s: %s", c.label, exc)
        except Exception as exc:  # a failing peer is reported, ours are bugs: re-raised
            if not c.peer:
                raise
            trained.skipped.append({"optimizer": c.label,
                                    "reason": f"failed: {type(exc).__name__}: {exc}"})
            logger.exception("bench: %s failed; skipped", c.label)
    return trained


def run_suite(suite: Suite, out: str | os.PathLike, work: str | os.PathLike,
              options: SuiteOptions | None = None) -> dict:
    """Run ``suite``; writes the record into ``out`` and returns the results dict."""
    options = options or SuiteOptions()
    out, work = Path(out), Path(work)
    check_record_suite(out, suite.name)
    out.mkdir(parents=True, exist_ok=True)
    base, tune_steps = _base_config(suite, options)
    tune = suite.tune if options.tune is None else options.tune
    data, initial_state, data_name, corpus_key = _data(suite, options, base, work)
    pool = RunPool(out, work, options.workers, inputs=(data, initial_state) if suite.finetune
                   else (None, None))
    try:
        trained = _train_all(suite, options, tune_steps if tune else None,
                             _Runs(pool, base, corpus_key))
    finally:
        pool.close()
    timings = None
    if options.timing_rounds:
        from snsm_workbench.bench.interleaved import interleaved_step_times

        timed = [(c, trained.lrs[c.label], resolve_plain_lr(c, trained.lrs.get("adamw")))
                 for c in _ordered(suite) if c.label in trained.runs]
        timings = interleaved_step_times(timed, base, data, rounds=options.timing_rounds,
                                         initial_state=initial_state)
    rows, curves = summarize(trained.runs, trained.lrs, timings=timings)
    config = {**base.to_dict(), "seq_len": base.seq_len or _preset_seq_len(base.preset),
              "data_name": data_name, "tune": tune, "tune_steps": tune_steps if tune else None,
              "suite": dataclasses.asdict(replace(suite, contenders=())), "out": None}
    results = {"suite": suite.name, "config": config, "rows": rows, "curves": curves,
               "tuning": trained.tuning, "skipped": trained.skipped,
               "contenders": trained.info, "peers": [c.label for c in suite.contenders if c.peer],
               "memory_at_scale": memory_at_scale(),
               "note": _note(suite, tune, tune_steps, options)}
    _write_record(out, results, suite, options, config)
    return results


def _write_record(out: Path, results: dict, suite: Suite, options: SuiteOptions,
                  config: dict) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "config.json").write_text(json.dumps(
        {"suite": suite.name, "options": dataclasses.asdict(options), "train": config,
         "contenders": [dataclasses.asdict(c) for c in suite.contenders]}, indent=2) + "\n")
    (out / "environment.json").write_text(json.dumps(environment(VERSIONED), indent=2) + "\n")
    write_report(results, out)


def _preset_seq_len(preset: str) -> int:
    from snsm_workbench.train.models import PRESETS
    return PRESETS[preset].seq_len


def _note(suite: Suite, tune: bool, tune_steps: int, options: SuiteOptions) -> str:
    parts = []
    if tune:
        parts.append(f"Learning rates tuned on a {tune_steps}-step budget (seed 0, same "
                     f"schedule compressed), best final validation loss; then every contender "
                     f"trained at its chosen lr.")
    seeded = sorted({c.seeds for c in suite.contenders if c.seeds and c.seeds != suite.seeds})
    if seeded:
        parts.append(f"Peers and ablations ran {', '.join(map(str, seeded))} seed(s) (time "
                     f"budget); our three ran the suite's seed count.")
    if suite.finetune:
        pretrain_steps = options.pretrain_steps or suite.finetune["pretrain_steps"]
        parts.append(f"Fine-tuning: the tiny model pre-trained {pretrain_steps}"
                     f" AdamW steps on Shakespeare, continued on the King James Bible "
                     f"(tokenized with the Shakespeare tokenizer) by each optimizer at its "
                     f"recommended lr.")
    return " ".join(parts)
