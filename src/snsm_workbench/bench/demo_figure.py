"""``snsm demo``'s figure: this demo's loss curves, the standard record's mean curves of the
same configurations (its full horizon, mean over its seeds), and each run's memory (weights,
gradients, optimizer state) as stacked bars labelled with its share of AdamW's."""

from __future__ import annotations

from pathlib import Path

from snsm_workbench.bench.demo_record import record_curve
from snsm_workbench.train.plots import TRAIN_ALPHA, _save_atomically as save_atomically

MiB = 2 ** 20


def run_curves(records: list[dict]) -> dict[str, list[list[float]]]:
    """A run's metrics as ``{"train": [[step, loss]...], "val": [[step, val loss]...]}``."""
    return {"train": [[r["step"], r["loss"]] for r in records if "loss" in r],
            "val": [[r["step"], r["val_loss"]] for r in records if "val_loss" in r]}


def _demo_panel(axes, curves: dict[str, dict], steps: int) -> None:
    for index, (label, curve) in enumerate(curves.items()):
        color = f"C{index % 10}"
        if curve["train"]:
            axes.plot(*zip(*curve["train"]), color=color, alpha=TRAIN_ALPHA, linewidth=1)
        if curve["val"]:
            axes.plot(*zip(*curve["val"]), color=color, marker="o", markersize=3, label=label)
    axes.set(xlabel="step", ylabel="loss (dots: validation)",
             title=f"this demo: {steps} steps, one seed")


def _record_panel(axes, labels: list[str], record: dict) -> None:
    for index, label in enumerate(labels):
        axes.plot(*record_curve(record, label), color=f"C{index % 10}", marker="o",
                  markersize=2, label=label)
    settings = record["settings"]
    axes.set(xlabel="step", ylabel="validation loss, mean over seeds",
             title=f"the record: {settings['full_steps']} steps, {settings['seeds']} seeds")


def _memory_panel(axes, rows: list[dict], state_color: str) -> None:
    labels, left = [row["optimizer"] for row in rows], [0.0] * len(rows)
    for part, color in (("weights", "0.55"), ("grads", "0.8"), ("state", state_color)):
        sizes = [row["memory"][part] / MiB for row in rows]
        axes.barh(labels, sizes, left=left, color=color, label=part)
        left = [a + b for a, b in zip(left, sizes)]
    for y, (row, end) in enumerate(zip(rows, left)):
        axes.text(end, y, f" {row['total_pct_of_adamw']:.0f}% (state "
                          f"{row['state_pct_of_adamw']:.0f}%)", va="center", fontsize="small")
    axes.invert_yaxis()
    axes.set_xlim(0, max(left) * 1.45)
    axes.set(xlabel="MiB", title="memory, % of AdamW's (its state's share)")
    axes.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)


def plot_demo(curves: dict[str, dict], rows: list[dict], record: dict, steps: int,
              path: Path) -> Path:
    """The figure (``curves``: :func:`run_curves` of each run; ``record``: the standard
    record's results) at ``path``; the two loss panels share their y range."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    demo, ours, bars = fig.subplots(1, 3, width_ratios=(3, 3, 2.4))
    _demo_panel(demo, curves, steps)
    _record_panel(ours, list(curves), record)
    finals = [r["final_val_loss"] for r in rows if r["final_val_loss"] is not None]
    finals += [record_curve(record, label)[1][-1] for label in curves]
    for axes in (demo, ours):  # the start's loss (~7.6) would flatten the differences
        axes.set_ylim(min(finals) - 0.15, max(finals) + 1.2)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
    _memory_panel(bars, rows, f"C{len(curves)}")
    return save_atomically(fig, path)
