"""The training loop: ``train(config)`` pre-trains a LLaMA and writes a run folder.

The run folder (:mod:`snsm_workbench.train.run_folder`): ``config.json`` (the run record),
``metrics.jsonl`` (one record per step, one per evaluation), ``checkpoint.pt`` (every
``save_every`` steps and at the end) and ``curves.png``. The settings are resolved once
(:mod:`snsm_workbench.train.run_config`); the memory fields of a step's record are
:mod:`snsm_workbench.train.metering`'s. ``parallel="ddp"|"fsdp"`` runs under torchrun
(:mod:`snsm_workbench.train.parallel`).

Schedule (:mod:`snsm_workbench.train.schedule`): linear warmup, cosine decay to ``min_lr_ratio``
times the peak; ``extend_schedule`` says how a resume with more steps extends it. Batches are a
pure function of (seed, step, micro-step, rank), so a resumed run sees exactly the data the
uninterrupted run saw.

Faults (each has a test in ``tests/snsm_workbench/train/test_faults*.py``):

* the run folder is locked (``.lock``, rank 0): a second process on it is refused at once;
  a non-empty folder that is not a run of ours is refused before anything is written;
* a checkpoint is written only for parameters known good: no non-finite loss in a row and a
  finite loss on the next batch, so the checkpoint kept after ``max_bad_steps`` is good;
* SIGINT / SIGTERM: the current step finishes, the run is saved, the log says how to resume,
  and :class:`~snsm_workbench.util.errors.Interrupted` carries the exit code (130 / 143); a second
  signal abandons the step (the last checkpoint is kept);
* a resume is refused when the data's content changed (its fingerprint), a setting that
  cannot change differs (:func:`snsm_workbench.train.resume.resume_config`) or ``config.json``
  was edited; temporary files and incomplete DCP folders left by a killed write are removed
  when the next run on the folder starts;
* a run that fails before it begins (bad data) removes the folder it created; running out of
  memory is one line naming what to lower (:mod:`snsm_workbench.train.out_of_memory`).
"""

from __future__ import annotations

import logging
import math
import signal
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

import snsm
from snsm_workbench.train import checkpoint as ckpt
from snsm_workbench.train import parallel as par
from snsm_workbench.train.config import TrainConfig, validate
from snsm_workbench.train.corpora import load_corpus
from snsm_workbench.train.metering import StepMeter
from snsm_workbench.train.metrics import METRICS_NAME
from snsm_workbench.train.models import build_model, count_parameters
from snsm_workbench.train.out_of_memory import TRAIN_ADVICE, out_of_memory
from snsm_workbench.train.progress import evaluation_line, progress_bar, show_step
from snsm_workbench.train.record import CONFIG_NAME, new_record
from snsm_workbench.train.run_config import RunConfig, resolve
from snsm_workbench.train.run_folder import RunFolder, plan_run
from snsm_workbench.train.schedule import extend_schedule, lr_factor, warmup_cosine
from snsm_workbench.train.signals import StopRequest
from snsm_workbench.train.tokens import TokenData, eval_batches, get_batch, prepare_tokens
from snsm_workbench.util.errors import Interrupted, TrainingError

logger = logging.getLogger(__name__)

__all__ = ["CONFIG_NAME", "METRICS_NAME", "Trainer", "TrainingError", "lr_factor", "train"]


@dataclass
class Counters:
    """What the loop counts, saved in checkpoints."""

    tokens: int = 0
    bad_in_a_row: int = 0
    bad_total: int = 0


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


OptimizerFactory = Callable[[torch.nn.Module, RunConfig], torch.optim.Optimizer]


class Trainer:
    """One run: builds the pieces from a config, then steps until ``config.steps``.

    Hooks for callers that compare optimizers on one harness (``snsm bench``), all optional:
    ``optimizer_factory(model, run_config)`` builds the optimizer instead of the registry,
    from the run's resolved settings (:class:`~snsm_workbench.train.run_config.RunConfig`:
    ``lr``, ``plain_lr``, ``weight_decay``, ``settings``); its ``name`` attribute, if any, is
    recorded in ``config.json``. ``data`` replaces the config's corpus with already prepared
    tokens; ``initial_state`` is a model state dict loaded before training (fine-tuning from
    a checkpoint). ``config`` is the settings as given (:class:`TrainConfig`), ``run_config``
    the same resolved.
    """

    def __init__(self, config: TrainConfig, *, optimizer_factory: OptimizerFactory | None = None,
                 data: TokenData | None = None, initial_state: dict | None = None):
        config, run_dir, record = plan_run(config, read_data=data is None)
        self.run_config = resolve(config)
        self.config = self.run_config.settings
        self.parallel = par.start(self.config.parallel, self.config.device)  # rank, device
        self.folder: RunFolder | None = None
        self.saved_step: int | None = None  # the step of the checkpoint on disk
        try:
            self.folder = RunFolder(run_dir, self.parallel, record)
            self.run_dir = self.folder.path
            self.folder.claim()
            with out_of_memory(f"building the {self.config.preset} run", TRAIN_ADVICE):
                self._build(optimizer_factory, data, initial_state)
        except BaseException:
            if self.folder is not None:
                self.folder.abandon()
            self.close()
            raise

    def _build(self, optimizer_factory: OptimizerFactory | None, data: TokenData | None,
               initial_state: dict | None) -> None:
        c, run = self.config, self.run_config
        self.device = self.parallel.device
        self.meter = StepMeter(self.device, self.parallel.enabled)
        self.data = self._load_data(data)
        self.model = build_model(c.preset, self.data.vocab_size, run.seq_len, seed=c.seed)
        if initial_state is not None:
            self.model.load_state_dict(initial_state)
        self.model.to(self.device, run.weight_dtype)
        self.model = self.parallel.wrap(self.model)
        self.optimizer = self._build_optimizer(optimizer_factory)
        self.scheduler = warmup_cosine(self.optimizer, c.steps, c.warmup_ratio, c.min_lr_ratio)
        self.in_backward = None
        if c.step_in_backward:
            self.in_backward = snsm.step_in_backward(
                self.model, self.optimizer, c.grad_accum, c.grad_clip if c.grad_clip > 0 else None)
        self.eval_set = eval_batches(self.data.val, c.eval_batches, c.batch_size, run.seq_len)
        self.counters = Counters()
        self.step = 0
        if self.folder.resumed:
            self._restore(self.folder.load_checkpoint(c.to_dict(), self.model, self.optimizer))
        elif self.parallel.is_main:
            self.folder.write_record(new_record(
                c, count_parameters(self.model), self.data.stats, str(self.device),
                self.parallel.world_size, optimizer_factory))
        self.metrics = self.folder.metrics_log(self.step if self.folder.resumed else None)
        if self.folder.resumed:  # last: a resume refused above leaves the record as it was
            self.folder.record_resume(self.config, self.step)

    def _load_data(self, data: TokenData | None) -> TokenData:
        """The run's tokens: ``data`` as given, or the config's corpus tokenized (and cached);
        on resume their content is checked against the saved run's."""
        c = self.config
        source = c.data or c.hf_dataset or "shakespeare"
        if data is not None:
            self.folder.check_data(data.stats.get("fingerprint"), source)
            return data
        corpus = load_corpus(c.data, c.hf_dataset, c.hf_config)
        self.folder.check_data(corpus.fingerprint(), source)
        with self.parallel.main_first():  # rank 0 builds the token cache, the others read it
            return prepare_tokens(corpus, Path(c.cache_dir).expanduser(), c.vocab_size)

    def _build_optimizer(self, optimizer_factory: OptimizerFactory | None
                         ) -> torch.optim.Optimizer:
        """The optimizer of the model: ``optimizer_factory(model, run_config)``, or the
        registry's optimizer with the resolved lr, plain-group lr and weight decay."""
        module, run = par.unwrap(self.model), self.run_config
        if optimizer_factory is not None:
            return optimizer_factory(module, run)
        return snsm.create_optimizer(module, self.config.optimizer, plain={"lr": run.plain_lr},
                                     lr=run.lr, weight_decay=run.weight_decay,
                                     verbose=not self.config.quiet and self.parallel.is_main,
                                     **self.config.optimizer_args)

    def close(self) -> None:
        """Release the run folder and the process group this run created."""
        if self.folder is not None:
            self.folder.release()
        self.parallel.close()

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16)

    def _restore(self, payload: dict) -> None:
        """Continue from a checkpoint (the model and optimizer state already loaded)."""
        self.scheduler.load_state_dict(payload["scheduler"])
        ckpt.set_rng_state(payload["rng"])
        self.counters = Counters(**payload["counters"])
        self.step = self.saved_step = payload["step"]
        logger.info("resumed %s at step %d", self.run_dir, self.step)
        c = self.config
        extend_schedule(self.scheduler, self.step, payload.get("config", {}).get("steps", c.steps),
                        c)

    def save(self) -> None:
        """Write the checkpoint of the current step (no check: see :meth:`checkpoint`)."""
        payload = {"step": self.step, "scheduler": self.scheduler.state_dict(),
                   "rng": ckpt.rng_state(), "counters": vars(self.counters),
                   "config": self.config.to_dict()}
        self.folder.save_checkpoint(payload, self.model, self.optimizer)
        self.saved_step = self.step

    def _probe(self) -> tuple[float, float]:
        """Loss and gradient norm of the current parameters on the next step's first
        micro-batch (averaged over the ranks); the gradients are dropped, nothing changes."""
        c = self.config
        inputs, targets = get_batch(self.data.train, self.step * c.grad_accum, c.batch_size,
                                    self.run_config.seq_len, c.seed, self.parallel.rank,
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

    def _place(self) -> str:
        c = self.config
        return (f"at step {self.step + 1} ({c.preset}, batch {c.batch_size} x "
                f"{self.run_config.seq_len} tokens, on {self.device})")

    def _kept(self) -> str:
        if self.saved_step is None:
            return "no checkpoint has been written"
        return f"the checkpoint of step {self.saved_step} is kept in {self.run_dir}"

    def _forward_backward(self) -> float:
        """Accumulate gradients over ``grad_accum`` micro-batches; returns the mean loss."""
        c, total = self.config, 0.0
        for micro in range(c.grad_accum):
            inputs, targets = get_batch(self.data.train, self.step * c.grad_accum + micro,
                                        c.batch_size, self.run_config.seq_len, c.seed,
                                        self.parallel.rank, self.parallel.world_size)
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
        with self.meter.peak(self.model, self.optimizer) as meter:
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
        tokens = c.batch_size * c.grad_accum * self.run_config.seq_len * self.parallel.world_size
        self.counters.tokens += tokens
        elapsed = time.perf_counter() - start
        if self.counters.bad_in_a_row >= c.max_bad_steps:
            raise TrainingError(
                f"{self.counters.bad_in_a_row} non-finite losses in a row at step {self.step}; "
                f"stopping: {self._kept()}")
        return {"step": self.step, "tokens": self.counters.tokens, "loss": loss, "lr": lr,
                "grad_norm": grad_norm, "skipped": not finite, "step_time": elapsed,
                "tokens_per_s": tokens / elapsed,
                **self.meter.record(self.optimizer, meter, self.step)}

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

    def evaluate(self) -> dict:
        """Validation loss and perplexity on the fixed held-out batches (outside the clock);
        one log line with the mean training loss and lr since the previous evaluation."""
        val_loss = _evaluate(self.model, self.eval_set, self.device, self.autocast)
        record = {"step": self.step, "tokens": self.counters.tokens, "val_loss": val_loss,
                  "val_ppl": math.exp(min(val_loss, 50.0))}
        if self.parallel.is_main:
            logger.info("%s", evaluation_line(self.metrics.records, record, self.step,
                                                   self.config.steps))
        self.metrics.append(record)
        return record

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
        c = self.config
        shown = not c.quiet and self.parallel.is_main
        with StopRequest() as stop, progress_bar(c.steps, self.step, c.optimizer, shown) as bar, \
                out_of_memory(self._place, TRAIN_ADVICE):
            if self.step == 0 and not any("val_loss" in r for r in self.metrics.records):
                self.evaluate()
            while self.step < c.steps:
                signum = self._stop_signal(stop)
                if signum:
                    self._interrupt(signum)
                record = self.train_step()
                self.metrics.append(record)
                show_step(bar, record)
                if self.step % c.eval_every == 0 or self.step == c.steps:
                    self.evaluate()
                if self.step % c.save_every == 0 or self.step == c.steps:
                    self.checkpoint()
        self.folder.plot(c.optimizer, self.metrics.records)
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
