"""Runs of a long suite: in parallel worker processes, one torch thread each, cached.

A run is named by a :class:`RunKey` (corpus, contender, preset, horizon, lr, plain-group lr,
seed). Its compact result (evaluation steps and losses, state bytes, wall time) is kept as
one small JSON file under the record's ``runs/`` folder, so the record holds the whole
grid, a rerun skips every finished run, and an interrupted suite resumes where it stopped.
The harness's own run folders (metrics, checkpoints) go to the work folder, not the record.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import itertools
import json
import logging
import math
import multiprocessing
import queue
import re
import threading
import time
from pathlib import Path

from snsm_workbench.bench.contenders import Contender
from snsm_workbench.train.checkpoint import write_atomically
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
                     seed: int, run_dir: str) -> dict:
    """One run in a worker process (one torch thread); its compact result."""
    import torch

    from snsm_workbench.bench.run_one import run_one
    from snsm_workbench.train.config import config_from_dict

    torch.set_num_threads(1)
    start = time.perf_counter()
    result = run_one(Contender(**contender), lr, plain_lr, config_from_dict(config), seed,
                     Path(run_dir))
    evals = [r for r in result.records if "val_loss" in r]
    return {"steps": [r["step"] for r in evals], "val_loss": [r["val_loss"] for r in evals],
            "final_train_loss": next((r["loss"] for r in reversed(result.records)
                                      if "loss" in r), None),
            "state_bytes": result.state_bytes, "failed": result.failed,
            "wall_s": round(time.perf_counter() - start, 1)}


class MissingRuns(RuntimeError):
    """A pool that only reads cached runs was asked for runs it does not have."""


class RunPool:
    """Runs on ``workers`` processes, highest priority (lowest number) first, then in order
    of submission; finished ones are read from ``record/runs`` instead. With
    ``train=False`` nothing is trained: asking for an uncached run raises MissingRuns."""

    def __init__(self, record: Path, work: Path, workers: int, train: bool = True):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.train = train
        self.runs, self.work = Path(record) / "runs", Path(work) / "runs"
        context = multiprocessing.get_context("spawn")
        self.executor = futures.ProcessPoolExecutor(workers, mp_context=context)
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

    def cached(self, key: RunKey) -> dict | None:
        path = self.runs / key.path()
        return json.loads(path.read_text()) if path.is_file() else None

    def run_many(self, jobs: list[tuple[RunKey, Contender, TrainConfig]], priority: int = 0
                 ) -> list[dict]:
        """The results of ``jobs`` (key, contender, config), in order; waits for all."""
        pending = {}
        results: list[dict | None] = [self.cached(key) for key, _, _ in jobs]
        missing = [key for (key, _, _), result in zip(jobs, results) if result is None]
        if missing and not self.train:
            raise MissingRuns(f"{len(missing)} run(s) not cached, e.g. {missing[0].path()}")
        for i, (key, contender, config) in enumerate(jobs):
            if results[i] is None:
                run_dir = self.work / key.path().with_suffix("")
                call = (_train_in_worker, dataclasses.asdict(contender), config.to_dict(),
                        key.lr, key.plain_lr, key.seed, str(run_dir))
                pending[i] = futures.Future()
                self.queue.put((priority, next(self._order), call, pending[i]))
        for i, future in pending.items():
            key = jobs[i][0]
            results[i] = {**future.result(), "key": dataclasses.asdict(key)}
            path = self.runs / key.path()
            path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(results[i]) + "\n"
            write_atomically(path, lambda f, text=text: f.write(text.encode()), "run result")
            with self._lock:
                self.computed += 1
            logger.info("standard: %s %s lr %g plain %s seed %d: %s (%.0f s)", key.corpus,
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
