"""The training loop: ``train(config)`` pre-trains a LLaMA and writes a run folder.

Run folder: ``config.json`` (config, package versions, data stats),
``metrics.jsonl`` (one record per step, one per evaluation), ``checkpoint.pt``
(every ``save_every`` steps and at the end) and ``curves.png``. With
``parallel="ddp"|"fsdp"`` (under torchrun, :mod:`snsm.train.parallel`) rank 0 writes
them, and the model and optimizer go to ``dcp-stepN/`` (:mod:`snsm.train.dist_checkpoint`).

Schedule: linear warmup over ``warmup_ratio * steps`` steps, then cosine decay
to ``min_lr_ratio`` times the peak. Batches are a pure function of (seed, step,
micro-step, rank), so a resumed run sees exactly the data the uninterrupted run saw.
"""

from __future__ import annotations

import json
import logging
import math
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

import snsm
from snsm.train import checkpoint as ckpt
from snsm.train import dist_checkpoint
from snsm.train import parallel as par
from snsm.train.config import TrainConfig, config_from_dict, validate
from snsm.train.corpora import load_corpus
from snsm.train.models import build_model, count_parameters
from snsm.train.tokens import TokenData, eval_batches, get_batch, prepare_tokens
from snsm.util.environment import package_versions

logger = logging.getLogger(__name__)

VERSIONED = ("snsm", "torch", "transformers", "tokenizers", "numpy")  # in config.json

METRICS_NAME = "metrics.jsonl"
CONFIG_NAME = "config.json"


class TrainingError(RuntimeError):
    """Training cannot go on (for example: non-finite losses in a row)."""


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


def _resolve_config(config: TrainConfig) -> tuple[TrainConfig, Path]:
    """The run's config and folder; a resumed run takes its saved config."""
    if config.resume:
        run_dir = Path(config.resume)
        path = run_dir / CONFIG_NAME
        if not path.is_file():
            raise ckpt.CheckpointError(f"cannot resume {run_dir}: no {CONFIG_NAME} there")
        saved = json.loads(path.read_text())["config"]
        saved.update(resume=str(run_dir), quiet=config.quiet, out=str(run_dir))
        return config_from_dict(saved), run_dir
    run_dir = Path(config.out or f"runs/{config.optimizer}-{time.strftime('%Y%m%d-%H%M%S')}")
    if (run_dir / ckpt.CHECKPOINT_NAME).exists():
        raise ValueError(f"{run_dir} already holds a run; resume it with --resume {run_dir} "
                         f"or choose another --out")
    return config, run_dir


class MetricsLog:
    """Append-only ``metrics.jsonl``; on resume, records after the checkpoint are dropped.
    With ``path`` None (the other ranks of a parallel run) records stay in memory."""

    def __init__(self, path: Path | None, keep_through_step: int | None):
        self.path = path
        self.records: list[dict] = []
        if path is None:
            return
        if keep_through_step is not None and path.is_file():
            self.records = [r for r in read_records(path) if r["step"] <= keep_through_step]
        self._rewrite()

    def _rewrite(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in self.records))
        tmp.replace(self.path)

    def append(self, record: dict) -> None:
        self.records.append(record)
        if self.path is None:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")


def read_records(path: Path) -> list[dict]:
    """The records of a metrics file; a last line cut short by a crash is dropped."""
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("dropping an unreadable line of %s: %r", path, line[:80])
    return records


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
        self.config, self.run_dir = _resolve_config(config)
        c = self.config
        self.parallel = par.start(c.parallel)  # rank, world size, device (see snsm.train.parallel)
        self.run_dir = self.parallel.broadcast(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.optimizer_factory = optimizer_factory
        self.device = self.parallel.device
        if data is None:
            corpus = load_corpus(c.data, c.hf_dataset, c.hf_config)
            with self.parallel.main_first():  # rank 0 builds the token cache, the others read it
                data = prepare_tokens(corpus, Path(c.cache_dir).expanduser(), c.vocab_size)
        self.data = data
        self.model = build_model(c.preset, self.data.vocab_size, c.seq_len, seed=c.seed)
        if initial_state is not None:
            self.model.load_state_dict(initial_state)
        self.model.to(self.device)
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
        self.eval_set = eval_batches(self.data.val, c.eval_batches, c.batch_size, self.seq_len)
        self.counters = Counters()
        self.step = 0
        if c.resume:
            self._restore(ckpt.load_checkpoint(self.run_dir, c.to_dict()))
        elif self.parallel.is_main:
            self._write_config()
        self.metrics = MetricsLog(self.run_dir / METRICS_NAME if self.parallel.is_main else None,
                                  self.step if c.resume else None)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16)

    def _write_config(self) -> None:
        info = {"config": self.config.to_dict(), "versions": package_versions(VERSIONED),
                "model_parameters": count_parameters(self.model), "data": self.data.stats,
                "device": str(self.device), "world_size": self.parallel.world_size}
        if self.optimizer_factory is not None:
            info["optimizer_factory"] = getattr(self.optimizer_factory, "name",
                                                repr(self.optimizer_factory))
        (self.run_dir / CONFIG_NAME).write_text(json.dumps(info, indent=2, default=str))

    def _restore(self, payload: dict) -> None:
        if self.parallel.enabled:
            dist_checkpoint.load(self.run_dir, payload, self.model, self.optimizer, self.parallel)
        else:
            self.model.load_state_dict(payload["model"])
            self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        ckpt.set_rng_state(payload["rng"])
        self.counters = Counters(**payload["counters"])
        self.step = payload["step"]
        logger.info("resumed %s at step %d", self.run_dir, self.step)

    def save(self) -> None:
        payload = {"step": self.step, "scheduler": self.scheduler.state_dict(),
                   "rng": ckpt.rng_state(), "counters": vars(self.counters),
                   "config": self.config.to_dict()}
        if self.parallel.enabled:  # model and optimizer through torch.distributed.checkpoint
            dist_checkpoint.save(self.run_dir, payload, self.model, self.optimizer,
                                 self.parallel)
            return
        ckpt.save_checkpoint(self.run_dir, {**payload, "model": self.model.state_dict(),
                                            "optimizer": self.optimizer.state_dict()})

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
        loss = self._forward_backward()
        max_norm = c.grad_clip if c.grad_clip > 0 else math.inf
        grad_norm = par.scalar(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
        lr = self.optimizer.param_groups[0]["lr"]
        finite = math.isfinite(loss) and math.isfinite(grad_norm)
        if finite:
            self.optimizer.step()
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
                f"stopping. The last good checkpoint is kept in {self.run_dir}")
        return {"step": self.step, "tokens": self.counters.tokens, "loss": loss, "lr": lr,
                "grad_norm": grad_norm, "skipped": not finite, "step_time": elapsed,
                "tokens_per_s": tokens / elapsed, "state_bytes": snsm.state_bytes(self.optimizer),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}

    def evaluate(self) -> dict:
        """Validation loss and perplexity on the fixed held-out batches (outside the clock)."""
        val_loss = _evaluate(self.model, self.eval_set, self.device, self.autocast)
        record = {"step": self.step, "tokens": self.counters.tokens, "val_loss": val_loss,
                  "val_ppl": math.exp(min(val_loss, 50.0))}
        self.metrics.append(record)
        if self.parallel.is_main:
            logger.info("step %d: val loss %.4f, ppl %.2f", self.step, val_loss,
                        record["val_ppl"])
        return record

    def run(self) -> Path:
        """Train until ``config.steps``; returns the run folder."""
        from tqdm.auto import tqdm

        from snsm.train.plots import plot_curves

        c = self.config
        if self.step == 0:
            self.evaluate()
        with tqdm(total=c.steps, initial=self.step, disable=c.quiet or not self.parallel.is_main,
                  unit="step",
                  desc=c.optimizer) as bar:
            while self.step < c.steps:
                record = self.train_step()
                self.metrics.append(record)
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.3f}",
                                ppl=f"{math.exp(min(record['loss'], 50.0)):.1f}",
                                tok_s=f"{record['tokens_per_s']:.0f}")
                if self.step % c.eval_every == 0 or self.step == c.steps:
                    self.evaluate()
                if self.step % c.save_every == 0 or self.step == c.steps:
                    self.save()
        if self.parallel.is_main:
            plot_curves({c.optimizer: self.metrics.records}, self.run_dir / "curves.png")
        if self.counters.bad_total:
            logger.warning("%d steps were skipped for non-finite values", self.counters.bad_total)
        return self.run_dir


def train(config: TrainConfig, **hooks) -> Path:
    """Run (or resume) one training run; the caller's global RNG state is left as it was.

    ``hooks`` are :class:`Trainer`'s optional keyword arguments (``optimizer_factory``, ...).
    """
    validate(config)
    devices = list(range(torch.cuda.device_count()))
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(config.seed)
        trainer = Trainer(config, **hooks)
        try:
            return trainer.run()
        finally:
            trainer.parallel.close()
