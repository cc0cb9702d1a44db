"""The figures of the bench reports (matplotlib, written to PNG files).

* staged suite: :func:`sensitivity_figure` (final loss against the lr at each tuning step)
  and :func:`scale_figure` (final loss and steps fraction against the parameter count);
* short suites: :func:`plot_val_curves` (mean validation loss against steps) and
  :func:`plot_pareto` (final perplexity against optimizer-state MiB).
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save_pyplot(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sensitivity_figure(tuned: dict[str, dict], path: Path) -> Path:
    """Final validation loss against the lr, one line per contender: the matrix lr at the
    short horizon (plain group at the same lr), the plain-group lr at the short horizon
    (matrices at their short-horizon best) and the matrix lr at the full horizon (plain
    group at its tuned lr)."""
    plt = _pyplot()
    panels = (("grid", "matrix lr, short horizon\n(plain group at the same lr)",
               "learning rate (matrices)"),
              ("plain_grid", "plain-group lr, short horizon\n(matrices at their best)",
               "learning rate (embedding, norms)"),
              ("confirm", "matrix lr, full horizon\n(plain group at its tuned lr)",
               "learning rate (matrices)"))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for label, t in tuned.items():
        for ax, (key, _, _) in zip(axes, panels):
            points = sorted((float(k), v) for k, v in (t.get(key) or {}).items() if v is not None)
            if points:
                ax.plot(*zip(*points), marker="o", label=label)
    for ax, (_, title, xlabel) in zip(axes, panels):
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("final validation loss (seed 0)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return _save_pyplot(plt, fig, path)


def scale_figure(rows: list[dict], path: Path) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for label in dict.fromkeys(r["optimizer"] for r in rows):
        mine = sorted((r["params"], r["loss"], r["steps"]) for r in rows if r["optimizer"] == label)
        params = [m[0] / 1e6 for m in mine]
        axes[0].plot(params, [m[1] for m in mine], marker="o", label=label)
        axes[1].plot(params, [min(m[2], 1.5) for m in mine], marker="o", label=label)
    axes[0].set_ylabel("final validation loss")
    axes[1].set_ylabel("steps to AdamW's final / horizon (1.5: not reached)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("parameters (millions)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _save_pyplot(plt, fig, path)


def plot_val_curves(curves: dict[str, dict], path: Path, title: str,
                    peers: frozenset[str] = frozenset()) -> Path:
    """Mean validation loss against steps, one line per contender (peers dashed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for index, (label, curve) in enumerate(curves.items()):
        ours = label not in peers
        ax.plot(curve["step"], curve["val_loss"], label=label, linewidth=2 if ours else 1.2,
                linestyle="-" if ours else "--", color=f"C{index % 10}",
                marker="o" if ours else None, markersize=3)
    finals = [c["val_loss"][-1] for c in curves.values()
              if c["val_loss"] and math.isfinite(c["val_loss"][-1])]
    if finals:  # zoom on the end of training, where the contenders differ
        ax.set_ylim(min(finals) - 0.2, max(finals) + 1.5)
    ax.set(xlabel="step", ylabel="validation loss (mean over seeds)", title=title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", ncol=2)
    return _save(fig, path)


def plot_pareto(rows: list[dict], path: Path, title: str,
                peers: frozenset[str] = frozenset()) -> Path:
    """Final validation perplexity against optimizer-state MiB (lower-left is better);
    ours are red stars, peers blue dots."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for r in rows:
        if r["final_val_ppl"] is None:
            continue
        ours = r["optimizer"] not in peers
        ax.scatter(r["state_bytes"] / 2**20, r["final_val_ppl"], s=60 if ours else 35,
                   marker="*" if ours else "o", color="C3" if ours else "C0")
        ax.annotate(r["optimizer"], (r["state_bytes"] / 2**20, r["final_val_ppl"]),
                    textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set(xlabel="optimizer state (MiB)", ylabel="final validation perplexity", title=title)
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as out:
        fig.savefig(out, format="png", dpi=100)
    os.replace(tmp, path)
    return path
