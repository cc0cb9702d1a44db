"""From ``results.json`` to ``report.md``, ``val_loss.png`` and ``pareto.png``.

Everything in the report is computed from the results dict (``rows``, ``curves``,
``tuning``, ``skipped``, ``contenders``, ``config``), so a report can be rebuilt
from a committed ``results.json`` alone: ``write_report(load_results(path), folder)``.
The goals of the benchmark issue are checked here, against the rows, and the
report states for each whether it held.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from snsm_workbench.util.tables import markdown_table

ROW_KEYS = ("optimizer", "lr", "final_val_loss", "final_val_ppl", "steps_to_adamw_final",
            "steps_ratio_vs_adamw", "state_bytes", "state_pct_of_adamw",
            "step_time_ratio_vs_adamw", "seeds")
OURS = ("adamw_sn", "adamw_snsm")
STEPS_GOALS = {"adamw_snsm": 0.45, "adamw_sn": 0.5}
STEP_TIME_GOAL = 1.3


def load_results(path: str | os.PathLike) -> dict:
    """``results.json`` as a dict; ValueError when it lacks rows with the required keys."""
    results = json.loads(Path(path).read_text())
    check_rows(results.get("rows"))
    return results


def check_rows(rows: Any) -> None:
    """ValueError unless ``rows`` is a non-empty list of dicts holding ``ROW_KEYS``."""
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"results must hold a non-empty list 'rows', got {rows!r}")
    for row in rows:
        missing = [k for k in ROW_KEYS if not isinstance(row, dict) or k not in row]
        if missing:
            raise ValueError(f"row {row!r} lacks the key(s) {missing}")


def _fmt(value: Any, spec: str = "", none: str = "-") -> str:
    if value is None:
        return none
    return format(value, spec) if spec else str(value)


def _loss(row: dict) -> str:
    if row["final_val_loss"] is None:
        return "diverged"
    return f"{row['final_val_loss']:.4f} ± {row.get('final_val_loss_std', 0.0):.4f}"


# The main table: quality, steps to AdamW's final loss, memory, time.
COLUMNS = [
    ("optimizer", "optimizer"), ("lr", lambda r: f"{r['lr']:g}"),
    ("final val loss (± sd)", _loss), ("final val ppl", lambda r: _fmt(r["final_val_ppl"], ".2f")),
    ("steps to AdamW's final", lambda r: _fmt(r["steps_to_adamw_final"], none="never")),
    ("ratio", lambda r: _fmt(r["steps_ratio_vs_adamw"])),
    ("state MiB", lambda r: f"{r['state_bytes'] / 2**20:.2f}"),
    ("% of AdamW", lambda r: _fmt(r["state_pct_of_adamw"], ".1f")),
    ("step s", lambda r: _fmt(r.get("median_step_s"), ".3f")),
    ("ratio", lambda r: _fmt(r["step_time_ratio_vs_adamw"])),
    ("opt step ms", lambda r: _fmt(r.get("median_opt_step_ms"), ".2f")),
    ("ratio", lambda r: _fmt(r.get("opt_step_ratio_vs_adamw"))), ("seeds", "seeds")]


def format_table(rows: list[dict]) -> str:
    """The main markdown table (:data:`COLUMNS`)."""
    return markdown_table(rows, COLUMNS)


def _row(rows: list[dict], name: str) -> dict | None:
    return next((r for r in rows if r["optimizer"] == name), None)


def check_goals(results: dict) -> list[dict]:
    """Each goal of the issue: ``{"goal", "held": True/False/None, "detail"}`` (None: not run)."""
    rows, peers = results["rows"], set(results.get("peers", []))
    goals = []
    for name, limit in STEPS_GOALS.items():
        row = _row(rows, name)
        ratio = row and row["steps_ratio_vs_adamw"]
        goals.append({"goal": f"{name} reaches AdamW's final val loss in <= {limit}x its steps",
                      "held": None if row is None else (ratio is not None and ratio <= limit),
                      "detail": "not run" if row is None else
                      f"ratio {ratio}" if ratio is not None else "never reached"})
    snsm = _row(rows, "adamw_snsm")
    if snsm is not None and snsm["final_val_ppl"] is not None:
        rivals = [r for r in rows if r["optimizer"] in peers
                  and r["state_bytes"] <= snsm["state_bytes"]]
        beaten = [r["optimizer"] for r in rivals if r["final_val_ppl"] is None
                  or snsm["final_val_ppl"] < r["final_val_ppl"]]
        lost = [f"{r['optimizer']} ({r['final_val_ppl']:.2f})" for r in rivals
                if r["optimizer"] not in beaten]
        goals.append({"goal": "adamw_snsm ends with lower val ppl than every peer whose state "
                              "is no larger",
                      "held": None if not rivals else not lost,
                      "detail": (f"ppl {snsm['final_val_ppl']:.2f}; peers with no larger state: "
                                 f"{', '.join(r['optimizer'] for r in rivals) or 'none'}"
                                 + (f"; lower ppl: {', '.join(lost)}" if lost else ""))})
    for name in OURS:
        row = _row(rows, name)
        if row is None:
            continue
        step, opt = row["step_time_ratio_vs_adamw"], row.get("opt_step_ratio_vs_adamw")
        goals.append({"goal": f"{name} step time <= {STEP_TIME_GOAL}x AdamW's",
                      "held": None if step is None else step <= STEP_TIME_GOAL,
                      "detail": f"training step {step}x; optimizer.step() alone {opt}x"})
    if snsm is not None:
        scale = results.get("memory_at_scale", {})
        pct = scale.get("adamw_snsm_pct")
        goals.append({"goal": "adamw_snsm state at LLaMA-1B (snsm memory) <= 17% of AdamW's",
                      "held": None if pct is None else pct <= 17.0,
                      "detail": f"{pct}% ({scale.get('setting', 'LLaMA-1B')}); on this "
                                f"model {snsm['state_pct_of_adamw']}% (measured)"})
    return goals


def _goal_lines(goals: list[dict]) -> list[str]:
    mark = {True: "met", False: "NOT met", None: "not measured"}
    return [f"- **{mark[g['held']]}**: {g['goal']} ({g['detail']})" for g in goals]


def _tuning_lines(tuning: dict) -> list[str]:
    if not tuning:
        return ["No tuning: every contender ran at its recommended lr."]
    rows = [{"optimizer": label, "steps": t["steps"], "chosen": f"{t['chosen']:g}",
             "lr: final val loss": ", ".join(
                 f"{float(lr):g}: " + ("diverged" if v is None else f"{v:.4f}")
                 for lr, v in t["grid"].items())} for label, t in tuning.items()]
    return [markdown_table(rows, [("optimizer", "optimizer"), ("steps", "steps"),
                                  ("lr: final val loss", "lr: final val loss"),
                                  ("chosen", "chosen")])]


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


def _timing_note(rows: list[dict]) -> str:
    if rows and all(r.get("timing") == "interleaved" for r in rows):
        return ("Times measured after the runs, side by side in one process: every "
                "contender's model stepped in interleaved rounds (medians, warm-up round "
                "dropped), on a CPU shared with other work, so ratios are the meaningful part.")
    return ("Times are the medians of the runs, which ran one after another on a shared "
            "machine: noisy.")


def render_markdown(results: dict) -> str:
    """The text of ``report.md``."""
    c = results.get("config", {})
    rows = results["rows"]
    lines = [f"# snsm bench: suite `{results.get('suite', '?')}`", ""]
    if c:
        lines += [f"Model `{c.get('preset')}`, {c.get('steps')} steps, batch {c.get('batch_size')}"
                  f" x seq {c.get('seq_len')}, warmup {c.get('warmup_ratio')} then cosine to "
                  f"{c.get('min_lr_ratio')}, clip {c.get('grad_clip')}, weight decay "
                  f"{c.get('weight_decay')}, data `{c.get('data_name', 'shakespeare')}`, "
                  f"evaluation every {c.get('eval_every')} steps on {c.get('eval_batches')} "
                  f"fixed batches. Same seeds (weights and batch order) for every optimizer.", ""]
    if results.get("note"):
        lines += [results["note"], ""]
    lines += ["## Results", "", format_table(rows), "",
              "Ratios are against our `adamw` (same code path as ours, per-coordinate). "
              "Step s: median training step (forward, backward, clip, optimizer); opt step ms: "
              "median `optimizer.step()` alone. " + _timing_note(rows), "",
              "![validation loss](val_loss.png)", "", "![pareto](pareto.png)", ""]
    lines += ["## Goals", "", *_goal_lines(check_goals(results)), ""]
    lines += ["## Learning rates", "", *_tuning_lines(results.get("tuning", {})), ""]
    if results.get("contenders"):
        contenders = [{"optimizer": label, **info} for label, info in
                      results["contenders"].items()]
        lines += ["## Contenders", "", markdown_table(contenders, [
            ("optimizer", "optimizer"), ("package", "package"), ("version", "version"),
            ("license", "license"), ("routing", "description")]), ""]
    skipped = results.get("skipped", [])
    lines += ["## Skipped", ""]
    lines += [f"- {s['optimizer']}: {s['reason']}" for s in skipped] or ["None."]
    scale = results.get("memory_at_scale", {}).get("rows")
    if scale:
        lines += ["", f"## State memory at paper scale (`snsm memory`, "
                      f"{results['memory_at_scale']['setting']})", "",
                  markdown_table(scale, [("optimizer", "optimizer"), ("GiB", "gib"),
                                         ("% of AdamW", "pct_of_adamw")])]
    return "\n".join(lines) + "\n"


def write_report(results: dict, out: str | os.PathLike) -> list[Path]:
    """Write ``report.md``, ``val_loss.png`` and ``pareto.png`` into ``out``; returns the paths."""
    check_rows(results.get("rows"))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    suite = results.get("suite", "?")
    peers = frozenset(results.get("peers", []))
    paths = [out / "report.md"]
    paths[0].write_text(render_markdown(results))
    if results.get("curves"):
        paths.append(plot_val_curves(results["curves"], out / "val_loss.png",
                                     f"snsm bench {suite}: validation loss", peers))
    paths.append(plot_pareto(results["rows"], out / "pareto.png",
                             f"snsm bench {suite}: perplexity against optimizer-state memory",
                             peers))
    return paths
