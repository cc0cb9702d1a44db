"""Runs of a suite: in parallel worker processes, one torch thread each, cached.

A run is named by a :class:`RunKey` (corpus, contender, preset, horizon, lr, plain-group lr,
seed). Its compact result (:func:`snsm_workbench.bench.run_one.compact`: evaluations, step
times, state bytes, the settings that made it) is kept as one small JSON file under the
record's ``runs/`` folder, so the record holds the whole grid, a rerun skips every finished
run, and an interrupted suite resumes where it stopped. Each cached file is checked before use
(:mod:`snsm_workbench.bench.run_cache`): a damaged one is retrained, one that is another run
or was made with other settings is refused. The harness's own run folders (metrics,
checkpoints) go to the work folder, not the record. ``workers=0`` trains in this process (no
worker processes: a test's monkeypatches hold, and a GPU keeps one context).
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import itertools
import logging
import math
import multiprocessing
import queue
import re
import threading
import time
from pathlib import Path

from snsm_workbench.bench.contenders import Contender
from snsm_workbench.bench.run_cache import DamagedRun, read_run, write_run
from snsm_workbench.bench.run_one import run_config, run_identity
from snsm_workbench.train.config import TrainConfig

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunKey:
    """What names one run (and its cache file)."""

    corpus: str
    label: str
    preset: str
    steps: int
    lr: float
    plain_lr: float | None
    seed: int

    def path(self) -> Path:
        plain = "same" if self.plain_lr is None else f"{self.plain_lr:.3g}"
        corpus = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(self.corpus).name)  # a name, or a path
        return (Path(corpus) / self.label / f"{self.preset}-{self.steps}steps"
                / f"lr{self.lr:.3g}-plain{plain}" / f"seed{self.seed}.json")


def _train_in_worker(contender: dict, config: dict, lr: float, plain_lr: float | None,
                     seed: int, run_dir: str, data=None, initial_state=None) -> dict:
    """One run in a worker process (one torch thread); its compact result."""
    import torch

    from snsm_workbench.bench.run_one import compact, train_one
    from snsm_workbench.train.config import config_from_dict

    torch.set_num_threads(1)
    start = time.perf_counter()
    result = train_one(Contender(**contender), lr, plain_lr, config_from_dict(config), seed,
                       Path(run_dir), data, initial_state)
    return {**compact(result), "wall_s": round(time.perf_counter() - start, 1)}


class _InProcess:
    """An executor that runs each call here, at once (``workers=0``)."""

    def submit(self, fn, *args) -> futures.Future:
        future: futures.Future = futures.Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


class MissingRuns(RuntimeError):
    """A pool that only reads cached runs was asked for runs it does not have."""


class RunPool:
    """Runs on ``workers`` processes, highest priority (lowest number) first, then in order
    of submission; finished ones are read from ``record/runs`` instead. With
    ``train=False`` nothing is trained: asking for an uncached run raises MissingRuns.
    ``inputs`` (token data, initial model state) go to every run (the finetune suite's)."""

    def __init__(self, record: Path, work: Path, workers: int, train: bool = True,
                 inputs: tuple = (None, None)):
        if workers < 0:
            raise ValueError(f"workers must be >= 0 (0: in this process), got {workers}")
        self.train, self.inputs = train, tuple(inputs)
        self.runs, self.work = Path(record) / "runs", Path(work) / "runs"
        context = multiprocessing.get_context("spawn")
        self.executor = (futures.ProcessPoolExecutor(workers, mp_context=context) if workers
                         else _InProcess())
        workers = max(1, workers)
        self.queue: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()
        self._lock = threading.Lock()
        self.computed = 0
        self.aborted = False
        self._servers = [threading.Thread(target=self._serve, daemon=True)
                         for _ in range(workers)]
        for server in self._servers:
            server.start()

    def _serve(self) -> None:
        """Take the most urgent queued run, train it in a worker process, repeat."""
        while True:
            _, _, call, future = self.queue.get()
            if call is None:
                return
            if self.aborted:
                future.cancel()
                continue
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self.executor.submit(*call).result())
            except BaseException as exc:  # handed to the waiting stage
                future.set_exception(exc)

    def abort(self) -> None:
        """Stop at once (Ctrl-C, SIGTERM): queued runs are cancelled and the workers killed,
        so every waiting stage gets an error instead of the rest of the suite. A killed run
        leaves no result (it starts over on the next invocation)."""
        self.aborted = True
        while True:
            try:
                *_, future = self.queue.get_nowait()
            except queue.Empty:
                break
            if future is not None:
                future.cancel()
        # ProcessPoolExecutor has no public way to stop a running call before Python 3.14.
        for process in list((getattr(self.executor, "_processes", None) or {}).values()):
            process.kill()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        for _ in self._servers:
            self.queue.put((math.inf, next(self._order), None, None))
        self.executor.shutdown(cancel_futures=True)

    def cached(self, key: RunKey, identity: dict | None = None) -> dict | None:
        """The cached result of ``key`` (None: not cached, or damaged and retrainable);
        RunMismatch for a run that is not ``key``'s or was made with other settings."""
        try:
            return read_run(self.runs / key.path(), key, identity)
        except DamagedRun as exc:
            if not self.train:
                raise MissingRuns(f"{exc}; rerun without --cached-only to retrain it") from None
            logger.warning("%s; retraining it", exc)
            return None

    def _submit(self, key: RunKey, contender: Contender, config: TrainConfig,
                priority: int) -> futures.Future:
        run_dir = self.work / key.path().with_suffix("")
        call = (_train_in_worker, dataclasses.asdict(contender), config.to_dict(),
                key.lr, key.plain_lr, key.seed, str(run_dir), *self.inputs)
        future: futures.Future = futures.Future()
        self.queue.put((priority, next(self._order), call, future))
        return future

    def run_many(self, jobs: list[tuple[RunKey, Contender, TrainConfig]], priority: int = 0
                 ) -> list[dict]:
        """The results of ``jobs`` (key, contender, config), in order; waits for all."""
        identities = [run_identity(c, run_config(config, c, key.lr, key.plain_lr, key.seed,
                                                 Path()))
                      for key, c, config in jobs]
        results = [self.cached(key, identity) for (key, _, _), identity in zip(jobs, identities)]
        missing = [key for (key, _, _), result in zip(jobs, results) if result is None]
        if missing and not self.train:
            raise MissingRuns(f"{len(missing)} run(s) not cached, e.g. {missing[0].path()}")
        pending = {i: self._submit(*jobs[i], priority) for i, result in enumerate(results)
                   if result is None}
        for i, future in pending.items():
            key = jobs[i][0]
            results[i] = {**future.result(), "identity": identities[i],
                          "key": dataclasses.asdict(key)}
            write_run(self.runs / key.path(), results[i])
            with self._lock:
                self.computed += 1
            logger.info("bench: %s %s lr %g plain %s seed %d: %s (%.0f s)", key.corpus,
                        key.label, key.lr, key.plain_lr, key.seed,
                        _final_text(results[i]), results[i]["wall_s"])
        return results


def final_loss(result: dict) -> float:
    """A run's last validation loss; +inf when it failed or never evaluated."""
    losses = result["val_loss"]
    if result.get("failed") or not losses or losses[-1] != losses[-1]:
        return float("inf")
    return losses[-1]


def _final_text(result: dict) -> str:
    loss = final_loss(result)
    return f"val {loss:.4f}" if loss != float("inf") else f"failed ({result.get('failed')})"
