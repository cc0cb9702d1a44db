"""The metrics log of a run: ``metrics.jsonl``, one JSON record per step or evaluation."""

from __future__ import annotations

import json
import logging
import math
import statistics
from pathlib import Path

from snsm_workbench.train import checkpoint as ckpt

logger = logging.getLogger(__name__)

METRICS_NAME = "metrics.jsonl"


class MetricsLog:
    """Append-only ``metrics.jsonl``; on resume, records after the checkpoint are dropped.
    With ``path`` None (the other ranks of a parallel run) records stay in memory."""

    def __init__(self, path: Path | None, keep_through_step: int | None):
        self.path = path
        self.records: list[dict] = []
        if path is None:
            return
        if keep_through_step is not None and path.is_file():
            self.records = [r for r in read_run_records(path) if r["step"] <= keep_through_step]
        self._rewrite()

    def _rewrite(self) -> None:
        text = "".join(json.dumps(r) + "\n" for r in self.records)
        ckpt.write_atomically(self.path, lambda handle: handle.write(text.encode()), "metrics")

    def append(self, record: dict) -> None:
        self.records.append(record)
        if self.path is None:
            return
        try:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record) + "\n")
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write the metrics {self.path}: "
                                     f"{exc.strerror or exc}") from exc


def read_records(path: Path) -> list[dict]:
    """The records of a metrics file; a last line cut short by a crash is dropped."""
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("dropping an unreadable line of %s: %r", path, line[:80])
    return records


def _as_record(line: str) -> dict | None:
    """The record of a line: a JSON object with an integer ``step``, or None."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    step = record.get("step") if isinstance(record, dict) else None
    return record if isinstance(step, int) and not isinstance(step, bool) else None


def read_run_records(path: Path) -> list[dict]:
    """The records of a run's metrics file, for a resume: a damaged last line (a write cut
    short) is dropped with a warning; a damaged line before it (not a JSON object with an
    integer ``step``) raises CheckpointError naming the file and the line."""
    lines = path.read_text(errors="replace").splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        record = _as_record(line)
        if record is not None:
            records.append(record)
        elif number == len(lines):
            logger.warning("%s: dropping its last line, damaged (a write cut short?): %r",
                           path, line[:80])
        else:
            raise ckpt.CheckpointError(
                f"{path} line {number} is not a metrics record with a step: {line[:80]!r}; "
                f"repair or delete that line")
    return records


def evaluation_rows(records: list[dict]) -> list[dict]:
    """One row per evaluation of a metrics log: step, tokens, mean training loss since the
    previous evaluation, validation loss and perplexity (the final table of ``snsm train``)."""
    rows, losses = [], []
    for record in records:
        if "loss" in record and math.isfinite(record["loss"]):
            losses.append(record["loss"])
        if "val_loss" in record:
            rows.append({"step": record["step"], "tokens": record["tokens"],
                         "train_loss": round(statistics.fmean(losses), 4) if losses else "-",
                         "val_loss": round(record["val_loss"], 4),
                         "val_ppl": round(record["val_ppl"], 2)})
            losses = []
    return rows
