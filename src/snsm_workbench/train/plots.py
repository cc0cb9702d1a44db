"""Loss curves: ``plot_curves(runs, path)`` writes a PNG of one or several runs.

Uses ``matplotlib.figure.Figure`` with the Agg canvas directly: no pyplot, no
global backend switch, safe in a headless process and in threads.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
from pathlib import Path
from typing import Any, Mapping, Sequence

logger = logging.getLogger(__name__)

TRAIN_ALPHA = 0.35  # the per-step training loss is noisy: a light line under the eval markers


def _series(label: str, records: Sequence[Mapping[str, Any]], key: str, x: str
            ) -> tuple[list[float], list[float]]:
    """(x, y) of the records that hold ``key``; non-finite values become gaps (NaN)."""
    xs, ys = [], []
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ValueError(f"run {label!r}: record {i} must be a dict, got {record!r}")
        if key not in record:
            continue
        if x not in record:
            raise ValueError(f"run {label!r}: record {i} has {key!r} but no {x!r}: {record!r}")
        try:
            value, position = float(record[key]), float(record[x])
        except (TypeError, ValueError):
            raise ValueError(f"run {label!r}: record {i} needs numbers for {key!r} and {x!r}, "
                             f"got {record!r}") from None
        xs.append(position)
        ys.append(value if math.isfinite(value) else math.nan)
    return xs, ys


def plot_curves(runs: Mapping[str, Sequence[Mapping[str, Any]]], path: str | os.PathLike,
                title: str | None = None) -> Path:
    """Plot loss against steps (left) and tokens (right) for every run; returns ``path``.

    ``runs`` maps a label to its metric records (as in ``metrics.jsonl``): train
    records hold ``step``, ``tokens`` and ``loss`` (a light line), eval records
    hold ``step``, ``tokens`` and ``val_loss`` (markers and line). One color per
    run. The PNG is written to a temporary file beside ``path``, then renamed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import EngFormatter
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib; install the train extra: "
                          "pip install 'snsm[train]'") from exc

    if not isinstance(runs, Mapping):
        raise ValueError(f"runs must map a label to a list of records, got {type(runs).__name__}")
    path = Path(path)
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    plotted = False
    for index, (label, records) in enumerate(runs.items()):
        color = f"C{index % 10}"
        for ax, x in zip(axes, ("step", "tokens")):
            xs, ys = _series(label, records, "loss", x)
            if xs:
                ax.plot(xs, ys, color=color, alpha=TRAIN_ALPHA, linewidth=1,
                        label=f"{label} train")
            vx, vy = _series(label, records, "val_loss", x)
            if vx:
                ax.plot(vx, vy, color=color, marker="o", markersize=4, linewidth=1.5,
                        label=f"{label} val")
            plotted = plotted or bool(xs or vx)
    axes[0].set(xlabel="step", ylabel="loss", title="loss against steps")
    axes[1].set(xlabel="tokens", title="loss against tokens")
    axes[1].xaxis.set_major_formatter(EngFormatter())
    for ax in axes:
        ax.grid(True, alpha=0.3)
    if plotted:
        axes[0].legend(fontsize="small")
    else:
        logger.warning("plot_curves: no loss records to plot for %s", path)
        axes[0].text(0.5, 0.5, "no records", ha="center", va="center",
                     transform=axes[0].transAxes)
    if title:
        fig.suptitle(title)
    return _save_atomically(fig, path)


def _save_atomically(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL with mode 0o666: a unique file that gets the umask's permissions (mkstemp: 0o600).
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as out:
            fig.savefig(out, format="png", dpi=110)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
