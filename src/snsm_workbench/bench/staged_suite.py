"""The staged suite (``snsm bench --suite standard``): long, fairly tuned, seeded comparisons
with each ingredient isolated. Its numbers (grids, stages, lean levels, search variants, seeds,
steps) are in ``snsm_workbench/suites/standard.json`` (:mod:`snsm_workbench.bench.stage_plan`).

Setting (the file's): the tiny LLaMA, ``full_steps`` steps of 16 x 128 tokens (2M tokens at
1,000), evaluated every 50 steps on 16 validation batches, a 2,048-token BPE vocabulary (the
embedding is then about a quarter of the weights instead of over half: closer to a real
LLaMA's share, and each step is about twice as fast on a CPU).

Stages (each resumable: a finished run is read back from ``<record>/runs``):

* ``headline``: AdamW, AdamSN and AdamSNSM, each tuned by :mod:`snsm_workbench.bench.tuning`
  on both learning rates (matrices and plain group: AdamW too), ``seeds`` seeds.
* ``peers``: Muon, GaLore, APOLLO, Adam-mini and Adafactor, each tuned on its lr grid
  (x2 spacing around its authors' lr, factor 16); the best three get ``seeds`` seeds.
* ``decomposition``: every plain group at AdamW's tuned plain-group lr, matrices tuned:
  AdamW, Subset-Norm alone (adamw_sn), Subspace-Momentum alone (adamw_sm), both
  (adamw_snsm), both on every matrix with the embedding (adamw_snsm, route all-matrices).
* ``search``: the method at its best. AdamSNSM's knobs (rank, refresh gap, projector, subset
  rule, the plain-group lr rule) varied one at a time from its headline configuration, at its
  tuned lrs, full horizon, seed 0; a variant within one seed sd of the default's seed-0 run
  gets ``seeds`` seeds and is compared with the default over seeds (paired by seed).
* ``corpora``: the headline at its Shakespeare-tuned settings on the King James Bible and on
  Python source code (``corpus_seeds`` seeds).
* ``scale``: the headline at its tuned settings on three widths (tiny, mini, small) for
  ``scale_steps`` steps each (a fixed token budget), seed 0.
* ``lean``: AdamW and AdamSNSM at their tuned settings with 8-bit states, with pure-bf16
  weights (the optimizers' default bf16 update, stochastic rounding; and rounded to nearest,
  to show why not), and both together, ``seeds`` seeds, against their fp32 headline runs.
* ``muon``: the Muon family (ours ``muon``, NorMuon-like ``muon_sn``, subspace ``muon_sm`` at
  two ranks, ``muon_snsm``) tuned like the headline, and its lean levels
  (:mod:`snsm_workbench.bench.muon_stage`), beside ``torch.optim.Muon`` of ``peers``.

After the stages, every configuration they trained gets a 1-step run whose optimizer state is
the one the report shows (``state`` in the results): a configuration's state does not depend on
the horizon, and a long run's recorded size stays what that code measured, a bug included.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

from snsm_workbench.bench import tuning
from snsm_workbench.bench.contenders import Contender
from snsm_workbench.bench.muon_stage import muon_stage
from snsm_workbench.bench.run_pool import MissingRuns, RunKey, RunPool, final_loss
from snsm_workbench.bench.stage_plan import (MAIN_CORPUS, PLAN, Entry, Plan, Settings, Variant,
                                             check_same_settings)
from snsm_workbench.bench.statistics import mean_sd
from snsm_workbench.bench.tuning import Tuned
from snsm_workbench.train.config import TrainConfig
from snsm_workbench.train.corpora import load_corpus
from snsm_workbench.train.tokens import prepare_tokens

logger = logging.getLogger(__name__)

TUNED_STAGES = ("peers", "decomposition", "muon")  # their values are Tuned records
# Keys of a cached run left out of results.json (kept in the run's own file).
PER_STEP = ("train_steps", "step_time", "opt_step_times", "identity")


class StagedSuite:
    """Runs the stages into ``record`` (runs cached there), training in ``workers`` processes."""

    def __init__(self, settings: Settings, record: Path, work: Path, workers: int = 2,
                 train: bool = True, plan: Plan = PLAN):
        self.settings, self.record, self.plan = settings, Path(record), plan
        self.main = settings.data or MAIN_CORPUS
        check_same_settings(settings, self.record / "runs" / "settings.json")
        self.pool = RunPool(self.record, Path(work), workers, train)
        # label -> (contender, a point it ran at) on the main corpus and preset
        self._configurations: dict[str, tuple[Contender, tuple[float, float | None]]] = {}

    # -- runs ---------------------------------------------------------------------------
    def config(self, preset: str, steps: int, corpus: str) -> TrainConfig:
        s = self.settings
        data = None if corpus == MAIN_CORPUS else corpus
        extra = {"cache_dir": s.cache_dir} if s.cache_dir else {}
        return TrainConfig(preset=preset, steps=steps, batch_size=s.batch_size,
                           seq_len=s.seq_len, vocab_size=s.vocab_size,
                           eval_every=min(s.eval_every, steps), eval_batches=s.eval_batches,
                           save_every=steps, quiet=True, data=data, **extra)

    def runs(self, contender: Contender, points: list[tuple[float, float | None]], steps: int,
             seeds: list[int], corpus: str | None = None, preset: str | None = None,
             priority: int = 0) -> list[dict]:
        """Results of ``contender`` at every (lr, plain lr) of ``points`` x ``seeds``."""
        preset, corpus = preset or self.settings.preset, corpus or self.main
        if (corpus, preset) == (self.main, self.settings.preset):
            self._configurations.setdefault(contender.label, (contender, points[0]))
        results = self.pool.run_many(self._jobs(contender, points, steps, seeds, corpus, preset),
                                     priority)
        return [{k: v for k, v in r.items() if k not in PER_STEP} for r in results]

    def _jobs(self, contender: Contender, points: list[tuple[float, float | None]],
              steps: int, seeds: list[int], corpus: str, preset: str) -> list[tuple]:
        """The pool's (key, contender, config) of each point x seed."""
        config = self.config(preset, steps, corpus)
        if steps < config.eval_every or steps % config.eval_every:
            config = replace(config, eval_every=steps)  # tuning: one evaluation, at the end
        return [(RunKey(corpus, contender.label, preset, steps, lr,
                        None if plain == lr and not contender.peer else plain, seed),
                 contender, config) for lr, plain in points for seed in seeds]

    def scores(self, contender: Contender, steps: int, point_of, priority: int
                ) -> tuning.Score:
        def score(values):
            values = list(values)
            results = self.runs(contender, [point_of(v) for v in values], steps, [0],
                                priority=priority)
            return {v: final_loss(r) for v, r in zip(values, results)}
        return score

    # -- the protocol ---------------------------------------------------------------------
    def tune(self, entry: Entry, plain_fixed: float | None = None, seeds: int = 1,
             priority: int = 0) -> Tuned:
        """The fair-tuning protocol for one entry (``plain_fixed``: no plain-group search)."""
        s, c = self.settings, entry.contender
        tuned = Tuned(c.label)
        steps = self.plan.tuning
        tuned.grid, chosen = tuning.search(
            entry.grid, self.scores(c, s.short_steps, lambda lr: (lr, plain_fixed), priority),
            steps["grid_step"], steps["max_extensions"])
        lr, tuned.grid_edge, plain = chosen.value, chosen.edge, plain_fixed
        if entry.two_group and plain_fixed is None:
            values = (*s.plain_grid, lr) if entry.plain_follows_lr else s.plain_grid

            def point(p):  # "the same as the matrices" is the unset plain lr
                return lr, None if p == lr and entry.plain_follows_lr else p
            tuned.plain_grid, chosen_plain = tuning.search(
                values, self.scores(c, s.short_steps, point, priority), steps["plain_step"],
                steps["max_extensions"])
            plain, tuned.plain_edge = chosen_plain.value, chosen_plain.edge
        tuned.confirm, chosen = tuning.search(
            tuning.neighbours(tuned.grid, lr),
            self.scores(c, s.full_steps, lambda x: (x, plain), priority),
            steps["grid_step"], steps["confirm_extensions"])
        tuned.lr, tuned.confirm_edge = chosen.value, chosen.edge
        tuned.plain_lr = None if plain == tuned.lr and entry.plain_follows_lr else plain
        tuned.runs = self.seeded(c, tuned.lr, plain, seeds, priority=priority)
        return tuned

    def seeded(self, contender: Contender, lr: float, plain: float | None, seeds: int,
               corpus: str | None = None, preset: str | None = None,
               steps: int | None = None, priority: int = 0) -> list[dict]:
        steps = steps or self.settings.full_steps
        return self.runs(contender, [(lr, plain)], steps, list(range(seeds)), corpus, preset,
                         priority)

    @contextlib.contextmanager
    def threads(self, count: int):
        """Threads for concurrent stages or contenders; an interrupt (Ctrl-C, SIGTERM) in the
        waiting thread aborts the run pool first, so the threads end instead of the suite."""
        with ThreadPoolExecutor(max(1, count)) as threads:
            try:
                yield threads
            except KeyboardInterrupt:
                self.pool.abort()
                raise

    def _tune_all(self, entries, plain_fixed=None, seeds=1, priority=0) -> dict[str, Tuned]:
        with self.threads(len(entries)) as threads:
            tuned = list(threads.map(lambda e: self.tune(e, plain_fixed, seeds, priority),
                                     entries))
        return {t.label: t for t in tuned}

    # -- the stages (priority: their order in the plan) ---------------------------------------
    def priority_of(self, stage: str) -> int:
        return self.plan.stages.index(stage)

    def headline(self) -> dict[str, Tuned]:
        return self._tune_all(self.plan.headline, seeds=self.settings.seeds,
                              priority=self.priority_of("headline"))

    def decomposition(self, adamw: Tuned) -> dict[str, Tuned]:
        """Every plain group at AdamW's tuned plain-group lr; the matrices' lr tuned."""
        plain = adamw.plain_lr if adamw.plain_lr is not None else adamw.lr
        entries = [e for e in self.plan.headline if e.contender.label != "adamw"] + list(self.plan.ingredients)
        tuned = self._tune_all(entries, plain_fixed=plain, seeds=self.settings.seeds,
                               priority=self.priority_of("decomposition"))
        return {"adamw": adamw, **tuned}

    def peers(self) -> dict[str, Tuned]:
        s = self.settings
        entries = {name: self.plan.peer_entry(name) for name in s.peers}
        tuned = self._tune_all(list(entries.values()), priority=self.priority_of("peers"))
        best = sorted(tuned.values(), key=lambda t: final_loss(t.runs[0]))[:s.peer_seeded]
        for t in best:
            t.runs = self.seeded(entries[t.label].contender, t.lr, t.plain_lr, s.seeds,
                                 priority=self.priority_of("peers"))
        return tuned

    def _headline_everywhere(self, headline: dict[str, Tuned], places, seeds: int,
                             steps: int | None, priority: int, where: str) -> dict:
        """The headline's tuned settings run at each corpus or preset of ``places``."""
        jobs = [(place, e.contender, headline[e.contender.label]) for place in places
                for e in self.plan.headline]

        def run(job):
            place, contender, tuned = job
            return self.seeded(contender, tuned.lr, tuned.plain_lr, seeds, steps=steps,
                               priority=priority, **{where: place})
        with self.threads(len(jobs)) as threads:
            results = list(threads.map(run, jobs))
        out: dict[str, dict[str, list[dict]]] = {}
        for (place, contender, _), runs in zip(jobs, results):
            out.setdefault(place, {})[contender.label] = runs
        return out

    def search(self, headline: dict[str, Tuned]) -> dict[str, dict]:
        """Each variant of the plan's ``search`` (of ``search_knobs``) at AdamSNSM's tuned lrs: seed 0,
        then all seeds when its loss is at most the default's seed-0 loss plus the default's
        seed sd (a variant within noise is worth its seeds: equal loss with a smaller state
        counts too). Returns {label: {knob, value, optimizer_args, lr, plain_lr, runs}}."""
        s, base = self.settings, headline["adamw_snsm"]
        default = next(e.contender for e in self.plan.headline if e.contender.label == "adamw_snsm")
        variants = [v for v in self.plan.search if v.knob in s.search_knobs]
        finals = [final_loss(r) for r in base.runs]
        threshold = finals[0] + mean_sd(finals)[1]

        def run(variant: Variant) -> dict:
            contender = replace(default, label=variant.label, grid=(), optimizer_args={
                **default.optimizer_args, **variant.optimizer_args})
            plain = None if variant.plain_same else base.plain_lr
            runs = self.seeded(contender, base.lr, plain, 1, priority=self.priority_of("search"))
            if final_loss(runs[0]) <= threshold:
                runs = self.seeded(contender, base.lr, plain, s.seeds,
                                   priority=self.priority_of("search"))
            return {"knob": variant.knob, "value": variant.value,
                    "optimizer_args": contender.optimizer_args, "lr": base.lr,
                    "plain_lr": plain, "runs": runs}
        with self.threads(len(variants)) as threads:
            found = list(threads.map(run, variants))
        return {v.label: result for v, result in zip(variants, found)}

    def muon(self) -> dict[str, Tuned]:
        return muon_stage(self)

    def corpora(self, headline: dict[str, Tuned]) -> dict[str, dict[str, list[dict]]]:
        s = self.settings
        return self._headline_everywhere(headline, s.corpora, s.corpus_seeds, None,
                                         self.priority_of("corpora"), "corpus")

    def scale(self, headline: dict[str, Tuned]) -> dict[str, dict[str, list[dict]]]:
        s = self.settings
        return self._headline_everywhere(headline, s.scale_presets, 1, s.scale_steps,
                                         self.priority_of("scale"), "preset")

    def lean(self, headline: dict[str, Tuned]) -> dict[str, list[dict]]:
        """Each lean level at its headline contender's tuned lrs (no retuning)."""
        by_label = {e.contender.label: e.contender for e in self.plan.headline}

        def run(level):
            contender = level.contender(by_label[level.base])
            tuned = headline[level.base]
            return self.seeded(contender, tuned.lr, tuned.plain_lr, self.settings.seeds,
                               priority=self.priority_of("lean"))
        with self.threads(len(self.plan.lean)) as threads:
            runs = list(threads.map(run, self.plan.lean))
        return {level.label: level_runs for level, level_runs in zip(self.plan.lean, runs)}

    def state(self) -> dict[str, int]:
        """{label: optimizer-state bytes} of every configuration run so far, each measured
        on a 1-step run (seed 0) with this code, after every stage's runs. A read-only pool
        leaves out each configuration whose 1-step run it lacks (its runs keep the size they
        recorded); :meth:`run` lists them."""
        items = sorted(self._configurations.items())
        jobs = [job for _, (contender, point) in items for job in self._jobs(
            contender, [point], 1, [0], self.main, self.settings.preset)]
        priority = len(self.plan.stages)
        if self.pool.train:
            measured = self.pool.run_many(jobs, priority)
            return {label: run["state_bytes"] for (label, _), run in zip(items, measured)}
        state = {}
        for (label, _), job in zip(items, jobs):
            with contextlib.suppress(MissingRuns):
                state[label] = self.pool.run_many([job], priority)[0]["state_bytes"]
        return state

    def run(self, stages: tuple[str, ...] | None = None) -> dict:
        """Run ``stages`` concurrently (the headline always: the others use its settings);
        the pool trains the earlier stages' runs first, then :meth:`state`. Returns the
        results; a stage whose runs a read-only pool lacks is listed under ``incomplete``."""
        stages = self.plan.stages if stages is None else stages
        self.plan.check_stages(stages)
        results = {"settings": asdict(self.settings), "stages": list(stages), "incomplete": {}}
        if self.pool.train:
            self._prepare_tokens(stages)
        try:
            with self.threads(len(self.plan.stages)) as threads:
                futures = {stage: threads.submit(getattr(self, stage))
                           for stage in ("peers", "muon") if stage in stages}
                try:
                    headline = self.headline()
                except MissingRuns as exc:
                    results["incomplete"] = {stage: str(exc) for stage in ("headline", *stages)}
                    headline = None
                if headline is not None:
                    results["headline"] = _tuned_dict(headline)
                    futures.update({stage: threads.submit(getattr(self, stage), *(
                        [headline["adamw"]] if stage == "decomposition" else [headline]))
                        for stage in ("decomposition", "search", "corpora", "scale", "lean")
                        if stage in stages})
                for stage, future in futures.items():
                    try:
                        value = future.result()
                    except MissingRuns as exc:
                        results["incomplete"][stage] = str(exc)
                        continue
                    results[stage] = _tuned_dict(value) if stage in TUNED_STAGES else value
            results["state"] = self.state()
            unmeasured = sorted(set(self._configurations) - set(results["state"]))
            if unmeasured:
                results["incomplete"]["state"] = "no 1-step run yet for " + ", ".join(unmeasured)
        finally:
            self.pool.close()
        results["computed_runs"] = self.pool.computed
        return results


    def _prepare_tokens(self, stages: tuple[str, ...]) -> None:
        """Tokenize every corpus once here, before the workers would race to."""
        corpora = [self.main, *(self.settings.corpora if "corpora" in stages else ())]
        for corpus in corpora:
            config = self.config(self.settings.preset, 1, corpus)
            prepare_tokens(load_corpus(config.data), Path(config.cache_dir).expanduser(),
                           config.vocab_size)


def _tuned_dict(tuned: dict[str, Tuned | None]) -> dict[str, dict | None]:
    """JSON-ready (float keys become strings; an unfinished item stays None)."""
    def keyed(scores):
        return None if scores is None else {f"{k:.4g}": (v if math.isfinite(v) else None)
                                           for k, v in sorted(scores.items())}
    return {label: None if t is None else {
        **asdict(t), "grid": keyed(t.grid), "plain_grid": keyed(t.plain_grid),
        "confirm": keyed(t.confirm)} for label, t in tuned.items()}


def write_results(results: dict, record: Path) -> Path:
    path = Path(record) / "results.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    return path
