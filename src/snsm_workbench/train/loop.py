"""The training loop: ``train(config)`` pre-trains a LLaMA and writes a run folder.

Run folder: ``config.json`` (config, package versions, data stats and fingerprint),
``metrics.jsonl`` (one record per step, one per evaluation), ``checkpoint.pt``
(every ``save_every`` steps and at the end) and ``curves.png``. With
``parallel="ddp"|"fsdp"`` (under torchrun, :mod:`snsm_workbench.train.parallel`) rank 0 writes
them, and the model and optimizer go to ``dcp-stepN/`` (:mod:`snsm_workbench.train.dist_checkpoint`).

Schedule: linear warmup over ``warmup_ratio * steps`` steps, then cosine decay
to ``min_lr_ratio`` times the peak. Batches are a pure function of (seed, step,
micro-step, rank), so a resumed run sees exactly the data the uninterrupted run saw.

Faults (each has a test in ``tests/test_faults.py``):

* the run folder is locked (``.lock``, rank 0): a second process on it is refused at once;
* a checkpoint is written only for parameters known good: no non-finite loss in a row and a
  finite loss on the next batch, so the checkpoint kept after ``max_bad_steps`` is good;
* SIGINT / SIGTERM: the current step finishes, the run is saved, the log says how to resume,
  and :class:`~snsm_workbench.util.errors.Interrupted` carries the exit code (130 / 143); a second
  signal abandons the step (the last checkpoint is kept);
* a resume is refused when the data's content changed (its fingerprint) or a setting that
  cannot change differs (:func:`snsm_workbench.train.config.resume_config`); temporary files left by a
  killed write are removed when the next run on the folder starts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import resource
import signal
import statistics
import sys
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

import snsm
from snsm_workbench.measure.peak import PeakMemory
from snsm_workbench.train import checkpoint as ckpt
from snsm_workbench.train import dist_checkpoint
from snsm_workbench.train import parallel as par
from snsm_workbench.train.config import (CONFIG_NAME, RESUME_CHANGEABLE, WEIGHT_DTYPES, TrainConfig,
                               check_paths, read_run_record, resume_changes, resume_config,
                               validate)
from snsm_workbench.train.corpora import load_corpus
from snsm_workbench.train.metrics import METRICS_NAME, MetricsLog
from snsm_workbench.train.models import build_model, count_parameters
from snsm_workbench.train.signals import StopRequest
from snsm_workbench.train.tokens import TokenData, eval_batches, get_batch, prepare_tokens
from snsm_workbench.util.environment import package_versions
from snsm_workbench.util.errors import ConflictError, Interrupted, TrainingError
from snsm_workbench.util.locks import FolderLock

logger = logging.getLogger(__name__)

VERSIONED = ("snsm", "torch", "transformers", "tokenizers", "numpy")  # in config.json

__all__ = ["CONFIG_NAME", "METRICS_NAME", "Trainer", "TrainingError", "lr_factor", "train"]


def lr_factor(step: int, total: int, warmup_ratio: float, min_ratio: float) -> float:
    """Multiplier of the peak lr at ``step`` (0-based): linear warmup, then cosine to min_ratio."""
    warmup = round(warmup_ratio * total)
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class Counters:
    """What the loop counts, saved in checkpoints."""

    tokens: int = 0
    bad_in_a_row: int = 0
    bad_total: int = 0


def _resolve_config(config: TrainConfig, read_data: bool = True
                    ) -> tuple[TrainConfig, Path, dict | None]:
    """The run's config, folder and, when resumed, its saved record; all checked, none created
    (the data paths only when the run reads its data: ``read_data``).

    A resumed run takes its saved config with the changes ``config`` asks for
    (:func:`~snsm_workbench.train.config.resume_changes`, :func:`~snsm_workbench.train.config.resume_config`).
    """
    if config.resume:
        run_dir = Path(config.resume)
        resolved = resume_config(run_dir, resume_changes(config))
        record = read_run_record(run_dir)
        if not (run_dir / ckpt.CHECKPOINT_NAME).is_file():
            raise ckpt.CheckpointError(
                f"cannot resume {run_dir}: it holds no {ckpt.CHECKPOINT_NAME} (the run stopped "
                f"before its first save); start it over with --out {run_dir}")
        check_paths(resolved, data=read_data)
        return resolved, run_dir, record
    check_paths(config, data=read_data)
    run_dir = Path(config.out or f"runs/{config.optimizer}-{time.strftime('%Y%m%d-%H%M%S')}")
    _check_no_run(run_dir)
    return config, run_dir, None


def _check_no_run(run_dir: Path) -> None:
    if (run_dir / ckpt.CHECKPOINT_NAME).exists():
        raise ConflictError(f"{run_dir} already holds a run; resume it with --resume {run_dir} "
                            f"or choose another --out")


def _evaluate(model, batches, device, autocast) -> float:
    model.eval()
    losses = []
    with torch.no_grad(), autocast():
        for inputs, targets in batches:
            logits = model(input_ids=inputs.to(device)).logits
            losses.append(F.cross_entropy(logits.flatten(0, 1).float(),
                                          targets.to(device).flatten()).item())
    model.train()
    return statistics.fmean(losses)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


OptimizerFactory = Callable[[torch.nn.Module, TrainConfig], torch.optim.Optimizer]


class Trainer:
    """One run: builds the pieces from a config, then steps until ``config.steps``.

    Hooks for callers that compare optimizers on one harness (``snsm bench``), all optional:
    ``optimizer_factory(model, config)`` builds the optimizer instead of the registry (its
    ``name`` attribute, if any, is recorded in ``config.json``); ``data`` replaces the
    config's corpus with already prepared tokens; ``initial_state`` is a model state dict
    loaded before training (fine-tuning from a checkpoint).
    """

    def __init__(self, config: TrainConfig, *, optimizer_factory: OptimizerFactory | None = None,
                 data: TokenData | None = None, initial_state: dict | None = None):
        self.config, self.run_dir, self.record = _resolve_config(config, read_data=data is None)
        self.parallel = par.start(self.config.parallel, self.config.device)  # rank, device
        self.lock: FolderLock | None = None
        self.saved_step: int | None = None  # the step of the checkpoint on disk
        try:
            self._build(optimizer_factory, data, initial_state)
        except BaseException:
            self.close()
            raise

    def _build(self, optimizer_factory: OptimizerFactory | None, data: TokenData | None,
               initial_state: dict | None) -> None:
        c = self.config
        self.run_dir = self.parallel.broadcast(self.run_dir)
        self._claim_folder()
        self.optimizer_factory = optimizer_factory
        self.device = self.parallel.device
        if data is None:
            corpus = load_corpus(c.data, c.hf_dataset, c.hf_config)
            self._check_data(corpus.fingerprint())
            with self.parallel.main_first():  # rank 0 builds the token cache, the others read it
                data = prepare_tokens(corpus, Path(c.cache_dir).expanduser(), c.vocab_size)
        else:
            self._check_data(data.stats.get("fingerprint"))
        self.data = data
        self.model = build_model(c.preset, self.data.vocab_size, c.seq_len, seed=c.seed)
        if initial_state is not None:
            self.model.load_state_dict(initial_state)
        self.model.to(self.device, WEIGHT_DTYPES[c.weights])
        self.seq_len = self.model.config.max_position_embeddings
        self.model = self.parallel.wrap(self.model)
        module = par.unwrap(self.model)
        if optimizer_factory is not None:
            self.optimizer = optimizer_factory(module, c)
        else:
            plain = {"lr": c.plain_lr} if c.plain_lr is not None else None
            self.optimizer = snsm.create_optimizer(module, c.optimizer, plain=plain,
                                                   lr=c.resolved_lr, weight_decay=c.weight_decay,
                                                   **c.optimizer_args)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, c.steps, c.warmup_ratio, c.min_lr_ratio))
        self.in_backward = None
        if c.step_in_backward:
            self.in_backward = snsm.step_in_backward(
                self.model, self.optimizer, c.grad_accum, c.grad_clip if c.grad_clip > 0 else None)
        self.eval_set = eval_batches(self.data.val, c.eval_batches, c.batch_size, self.seq_len)
        self.counters = Counters()
        self.step = 0
        if c.resume:
            self._restore(ckpt.load_checkpoint(self.run_dir, c.to_dict()))
        elif self.parallel.is_main:
            self._write_config()
        self.metrics = MetricsLog(self.run_dir / METRICS_NAME if self.parallel.is_main else None,
                                  self.step if c.resume else None)

    def _claim_folder(self) -> None:
        """Create and lock the run folder (rank 0; the others learn the outcome), then remove
        the temporary files a killed write left there."""
        error = None
        if self.parallel.is_main:
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                self.lock = FolderLock(self.run_dir, "run folder").acquire()
                weakref.finalize(self, self.lock.release)  # a Trainer never closed
                if not self.config.resume:
                    _check_no_run(self.run_dir)  # again, under the lock: a racing run
                ckpt.remove_leftovers(self.run_dir)
            except Exception as exc:
                error = exc
        error = self.parallel.broadcast(error)
        if error is not None:
            raise error
        self.run_dir.mkdir(parents=True, exist_ok=True)

    def _check_data(self, fingerprint: str | None) -> None:
        """On resume: ConflictError when the data's content differs from the saved run's."""
        if self.record is None:
            return
        saved = (self.record.get("data") or {}).get("fingerprint")
        if saved is None or fingerprint is None:
            logger.warning("%s: the data's fingerprint is unknown (a run of an older snsm); "
                           "its content cannot be checked", self.run_dir)
        elif fingerprint != saved:
            c = self.config
            source = c.data or c.hf_dataset or "shakespeare"
            raise ConflictError(
                f"cannot resume {self.run_dir}: the content of its data ({source}) changed "
                f"since the run started (fingerprint {fingerprint[:12]}, saved {saved[:12]}); "
                f"restore the data, or train on it in a new run with --out")

    def close(self) -> None:
        """Release the run folder and the process group this run created."""
        if self.lock is not None:
            self.lock.release()
        self.parallel.close()

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16)

    def _write_config(self) -> None:
        info = {"config": self.config.to_dict(), "versions": package_versions(VERSIONED),
                "model_parameters": count_parameters(self.model), "data": self.data.stats,
                "device": str(self.device), "world_size": self.parallel.world_size}
        if self.optimizer_factory is not None:
            info["optimizer_factory"] = getattr(self.optimizer_factory, "name",
                                                repr(self.optimizer_factory))
        self._write_record(info)

    def _write_record(self, info: dict) -> None:
        text = json.dumps(info, indent=2, default=str)
        ckpt.write_atomically(self.run_dir / CONFIG_NAME, lambda h: h.write(text.encode()),
                              "run record")

    def _restore(self, payload: dict) -> None:
        if self.parallel.enabled:
            dist_checkpoint.load(self.run_dir, payload, self.model, self.optimizer, self.parallel)
        else:
            self.model.load_state_dict(payload["model"])
            self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        ckpt.set_rng_state(payload["rng"])
        self.counters = Counters(**payload["counters"])
        self.step = self.saved_step = payload["step"]
        logger.info("resumed %s at step %d", self.run_dir, self.step)
        self._rebuild_schedule(payload.get("config", {}).get("steps", self.config.steps))
        self._record_changes()

    def _rebuild_schedule(self, saved_steps: int) -> None:
        """A checkpoint of a run planned for ``saved_steps``, resumed for more: the lr of the
        next step is the new schedule's (``LambdaLR`` follows the new total from then on)."""
        c = self.config
        if saved_steps == c.steps:
            return
        factor = lr_factor(self.step, c.steps, c.warmup_ratio, c.min_lr_ratio)
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * factor
        self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]
        logger.info("steps %d -> %d: the schedule is rebuilt for %d steps from step %d "
                    "(lr factor %.4g)", saved_steps, c.steps, c.steps, self.step, factor)

    def _record_changes(self) -> None:
        """Write the settings this resume changed into config.json (rank 0)."""
        saved = self.record["config"]
        changed = {k: [saved.get(k), getattr(self.config, k)] for k in RESUME_CHANGEABLE
                   if saved.get(k) != getattr(self.config, k)}
        if changed and self.parallel.is_main:
            self.record["config"] = {**saved, **{k: new for k, (_, new) in changed.items()}}
            self.record.setdefault("resumes", []).append({"step": self.step, "changed": changed})
            self._write_record(self.record)

    def save(self) -> None:
        """Write the checkpoint of the current step (no check: see :meth:`checkpoint`)."""
        payload = {"step": self.step, "scheduler": self.scheduler.state_dict(),
                   "rng": ckpt.rng_state(), "counters": vars(self.counters),
                   "config": self.config.to_dict()}
        if self.parallel.enabled:  # model and optimizer through torch.distributed.checkpoint
            dist_checkpoint.save(self.run_dir, payload, self.model, self.optimizer,
                                 self.parallel)
        else:
            ckpt.save_checkpoint(self.run_dir, {**payload, "model": self.model.state_dict(),
                                                "optimizer": self.optimizer.state_dict()})
        self.saved_step = self.step

    def _probe(self) -> tuple[float, float]:
        """Loss and gradient norm of the current parameters on the next step's first
        micro-batch (averaged over the ranks); the gradients are dropped, nothing changes."""
        c = self.config
        inputs, targets = get_batch(self.data.train, self.step * c.grad_accum, c.batch_size,
                                    self.seq_len, c.seed, self.parallel.rank,
                                    self.parallel.world_size)
        with self.autocast(), torch.set_grad_enabled(self.in_backward is None):
            logits = self.model(input_ids=inputs.to(self.device)).logits
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.to(self.device).flatten())
        if self.in_backward is not None:  # a backward pass would update: the loss alone
            return self.parallel.mean(loss.item()), 0.0
        loss.backward()
        grad_norm = par.scalar(torch.nn.utils.clip_grad_norm_(self.model.parameters(), math.inf))
        self.model.zero_grad(set_to_none=True)
        return self.parallel.mean(loss.item()), grad_norm

    def checkpoint(self) -> bool:
        """Save the current step if its parameters are known good: no non-finite loss in a row,
        and a finite loss and gradient on the next batch (:meth:`_probe`). Otherwise the
        previous checkpoint is kept. Returns whether the current step is saved."""
        if self.saved_step == self.step:
            return True
        if self.counters.bad_in_a_row == 0:
            loss, grad_norm = self._probe()
            if math.isfinite(loss) and math.isfinite(grad_norm):
                self.save()
                return True
            reason = (f"they give a non-finite loss or gradient on the next batch (loss {loss}, "
                      f"grad norm {grad_norm})")
        else:
            reason = f"the last {self.counters.bad_in_a_row} losses were not finite"
        if self.parallel.is_main:
            logger.warning("step %d: not saving the parameters, %s; %s", self.step, reason,
                           self._kept())
        return False

    def _kept(self) -> str:
        if self.saved_step is None:
            return "no checkpoint has been written"
        return f"the checkpoint of step {self.saved_step} is kept in {self.run_dir}"

    def _forward_backward(self) -> float:
        """Accumulate gradients over ``grad_accum`` micro-batches; returns the mean loss."""
        c, total = self.config, 0.0
        for micro in range(c.grad_accum):
            inputs, targets = get_batch(self.data.train, self.step * c.grad_accum + micro,
                                        c.batch_size, self.seq_len, c.seed, self.parallel.rank,
                                        self.parallel.world_size)
            with self.autocast():
                logits = self.model(input_ids=inputs.to(self.device)).logits
            loss = F.cross_entropy(logits.flatten(0, 1).float(),
                                   targets.to(self.device).flatten()) / c.grad_accum
            loss.backward()
            total += loss.item()
        return self.parallel.mean(total)  # the loss of the global batch

    def train_step(self) -> dict:
        """One optimizer step (skipped, and counted, if the loss or gradient is not finite)."""
        c = self.config
        start = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        with self._peak_meter() as meter:
            loss, grad_norm = self._gradients()
            finite = math.isfinite(loss) and math.isfinite(grad_norm)
            if finite:
                self.optimizer.step()  # a no-op with steps inside the backward pass
        if finite:
            self.counters.bad_in_a_row = 0
        else:
            self.counters.bad_in_a_row += 1
            self.counters.bad_total += 1
            logger.warning("step %d: non-finite loss or gradient (loss %s, grad norm %s); "
                           "step skipped", self.step + 1, loss, grad_norm)
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        tokens = c.batch_size * c.grad_accum * self.seq_len * self.parallel.world_size
        self.counters.tokens += tokens
        elapsed = time.perf_counter() - start
        if self.counters.bad_in_a_row >= c.max_bad_steps:
            raise TrainingError(
                f"{self.counters.bad_in_a_row} non-finite losses in a row at step {self.step}; "
                f"stopping: {self._kept()}")
        return {"step": self.step, "tokens": self.counters.tokens, "loss": loss, "lr": lr,
                "grad_norm": grad_norm, "skipped": not finite, "step_time": elapsed,
                "tokens_per_s": tokens / elapsed, "state_bytes": snsm.state_bytes(self.optimizer),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                **self._peak_record(meter)}

    def _gradients(self) -> tuple[float, float]:
        """(loss, gradient norm) of this step's micro-batches, the gradients clipped by the
        config's rule. With steps inside the backward pass the update has happened; a
        non-finite gradient there gives (nan, nan), a skipped step."""
        c = self.config
        if self.in_backward is not None:
            try:
                loss = self._forward_backward()
            except snsm.NonFiniteGradientError as error:
                logger.warning("step %d: %s", self.step + 1, error)
                self.in_backward.take_grad_norm()
                return math.nan, math.nan
            return loss, self.in_backward.take_grad_norm()
        loss = self._forward_backward()
        if c.clip_rule == "per-parameter":
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            grad_norm = par.scalar(torch.nn.utils.get_total_norm(grads))
            for grad in grads if c.grad_clip > 0 else ():
                snsm.optim.in_backward.clip_per_parameter_(grad, c.grad_clip)
            return loss, grad_norm
        max_norm = c.grad_clip if c.grad_clip > 0 else math.inf
        return loss, par.scalar(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))

    def _peak_meter(self):
        """The first step of this process on the CPU is metered (live tensor bytes; the meter
        slows every op, so only one step; not under torchrun or torch.compile); on CUDA the
        allocator's counter runs all along."""
        if self.__dict__.get("_metered") or self.device.type != "cpu" or self.parallel.enabled \
                or any(group.get("compile") for group in self.optimizer.param_groups):
            return contextlib.nullcontext()
        self._metered = True
        state = [v for s in self.optimizer.state.values() for v in s.values()
                 if isinstance(v, torch.Tensor)]
        return PeakMemory("cpu", existing=[*self.model.parameters(), *state])

    def _peak_record(self, meter) -> dict:
        if self.device.type == "cuda":
            return {"peak_memory_mb": torch.cuda.max_memory_allocated(self.device) / 2**20}
        if isinstance(meter, PeakMemory):
            logger.info("peak memory of step %d: %.1f MiB of live tensors", self.step,
                        meter.peak_bytes / 2**20)
            return {"peak_memory_mb": meter.peak_bytes / 2**20}
        return {}

    def evaluate(self) -> dict:
        """Validation loss and perplexity on the fixed held-out batches (outside the clock);
        one log line with the mean training loss and lr since the previous evaluation."""
        val_loss = _evaluate(self.model, self.eval_set, self.device, self.autocast)
        record = {"step": self.step, "tokens": self.counters.tokens, "val_loss": val_loss,
                  "val_ppl": math.exp(min(val_loss, 50.0))}
        if self.parallel.is_main:
            logger.info("%s", self._evaluation_line(record))
        self.metrics.append(record)
        return record

    def _evaluation_line(self, record: dict) -> str:
        since = []
        for r in reversed(self.metrics.records):
            if "val_loss" in r:
                break
            since.append(r)
        line = f"step {self.step}/{self.config.steps}:"
        losses = [r["loss"] for r in since if math.isfinite(r["loss"])]
        if losses:
            line += f" train loss {statistics.fmean(losses):.4f},"
        line += f" val loss {record['val_loss']:.4f}, ppl {record['val_ppl']:.2f}"
        if since:
            speed = statistics.median(r["tokens_per_s"] for r in since)
            line += f", lr {since[0]['lr']:.3g}, {speed:.0f} tok/s"
        return line

    @contextlib.contextmanager
    def _progress(self):
        """A tqdm bar on a terminal (stderr), log lines going above it; elsewhere none."""
        from tqdm.auto import tqdm

        c = self.config
        shown = not c.quiet and self.parallel.is_main and _is_terminal(sys.stderr)
        with tqdm(total=c.steps, initial=self.step, disable=not shown, unit="step",
                  desc=c.optimizer) as bar:
            if not shown:
                yield bar
                return
            from tqdm.contrib.logging import logging_redirect_tqdm

            with logging_redirect_tqdm():
                yield bar

    def _stop_signal(self, stop: StopRequest) -> int:
        """The signal this run stops on (0: none); every rank agrees (one all-reduce)."""
        signum = stop.signum or 0
        return self.parallel.max(signum) if self.parallel.enabled else signum

    def _interrupt(self, signum: int) -> None:
        """Save (if good) and raise Interrupted with how to resume."""
        saved = self.checkpoint()
        name = signal.Signals(signum).name
        if saved:
            message = (f"{name}: stopped after step {self.step}, saved in {self.run_dir}; "
                       f"resume with: snsm train --resume {self.run_dir}")
        elif self.saved_step is not None:
            message = (f"{name}: stopped after step {self.step}; {self._kept()}; resume with: "
                       f"snsm train --resume {self.run_dir}")
        else:
            message = f"{name}: stopped after step {self.step}; no checkpoint was written"
        if self.parallel.is_main:
            logger.warning("%s", message)
        raise Interrupted(signum, message, reported=True)

    def run(self) -> Path:
        """Train until ``config.steps``; returns the run folder. SIGINT / SIGTERM stop it
        after the current step, saved (:class:`StopRequest`, :meth:`_interrupt`)."""
        from snsm_workbench.train.plots import plot_curves

        c = self.config
        with StopRequest() as stop, self._progress() as bar:
            if self.step == 0 and not any("val_loss" in r for r in self.metrics.records):
                self.evaluate()
            while self.step < c.steps:
                signum = self._stop_signal(stop)
                if signum:
                    self._interrupt(signum)
                record = self.train_step()
                self.metrics.append(record)
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.3f}",
                                ppl=f"{math.exp(min(record['loss'], 50.0)):.1f}",
                                tok_s=f"{record['tokens_per_s']:.0f}")
                if self.step % c.eval_every == 0 or self.step == c.steps:
                    self.evaluate()
                if self.step % c.save_every == 0 or self.step == c.steps:
                    self.checkpoint()
        if self.parallel.is_main:
            plot_curves({c.optimizer: self.metrics.records}, self.run_dir / "curves.png")
        if self.counters.bad_total:
            logger.warning("%d steps were skipped for non-finite values", self.counters.bad_total)
        return self.run_dir


def train(config: TrainConfig, **hooks) -> Path:
    """Run (or resume) one training run; the caller's global RNG state is left as it was.

    ``hooks`` are :class:`Trainer`'s optional keyword arguments (``optimizer_factory``, ...).
    Raises ValueError (ConflictError, CheckpointError) for bad settings or a refused resume,
    TrainingError when the losses stay non-finite, Interrupted on SIGINT / SIGTERM.
    """
    validate(config)
    devices = list(range(torch.cuda.device_count()))
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(config.seed)
        trainer = Trainer(config, **hooks)
        try:
            return trainer.run()
        finally:
            trainer.close()
