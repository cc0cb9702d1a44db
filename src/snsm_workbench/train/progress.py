"""What a run shows while it trains: a progress bar on a terminal, one log line per evaluation."""

from __future__ import annotations

import contextlib
import math
import statistics
import sys


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


@contextlib.contextmanager
def progress_bar(total: int, initial: int, desc: str, wanted: bool):
    """A tqdm bar when ``wanted`` and stderr is a terminal, log lines going above it;
    elsewhere a disabled one (its updates do nothing)."""
    from tqdm.auto import tqdm

    shown = wanted and is_terminal(sys.stderr)
    with tqdm(total=total, initial=initial, disable=not shown, unit="step", desc=desc) as bar:
        if not shown:
            yield bar
            return
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm():
            yield bar


def show_step(bar, record: dict) -> None:
    """Advance ``bar`` by the step of ``record``: its loss, perplexity and speed."""
    bar.update(1)
    bar.set_postfix(loss=f"{record['loss']:.3f}", ppl=f"{math.exp(min(record['loss'], 50.0)):.1f}",
                    tok_s=f"{record['tokens_per_s']:.0f}")


def evaluation_line(records: list[dict], record: dict, step: int, steps: int) -> str:
    """The log line of evaluation ``record`` at ``step`` of ``steps``: the mean training loss,
    the lr and the median speed of the steps since the previous evaluation in ``records``."""
    since = []
    for r in reversed(records):
        if "val_loss" in r:
            break
        since.append(r)
    line = f"step {step}/{steps}:"
    losses = [r["loss"] for r in since if math.isfinite(r["loss"])]
    if losses:
        line += f" train loss {statistics.fmean(losses):.4f},"
    line += f" val loss {record['val_loss']:.4f}, ppl {record['val_ppl']:.2f}"
    if since:
        speed = statistics.median(r["tokens_per_s"] for r in since)
        line += f", lr {since[0]['lr']:.3g}, {speed:.0f} tok/s"
    return line
