"""The standard suite's report: from ``results.json`` to ``report.md`` and its figures.

Everything is computed from the results dict, so ``snsm bench --suite standard`` on a
finished record rebuilds the same report. Definitions (over seeds, 95% bootstrap
intervals from :mod:`snsm_workbench.bench.statistics`):

* loss: mean ± sd of the final validation losses; ``Δ loss`` = mean - AdamW's mean;
* steps: the interpolated step at which the mean curve over seeds first reaches AdamW's mean
  final loss, as a fraction of the horizon (AdamW's budget); "not reached" if it never does;
* "better" needs the whole interval of the steps fraction below 1 (or of Δ loss below 0);
* memory at equal quality: the smallest optimizer state among a method's seeded
  configurations whose mean final loss is at most the upper end of AdamW's interval;
* state: each configuration's 1-step measurement (``state`` in the results) where there is
  one, else the size its runs recorded.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from pathlib import Path

from snsm_workbench.bench.run_pool import final_loss
from snsm_workbench.bench.standard import LEAN
from snsm_workbench.bench.statistics import bootstrap_interval, mean_curve, mean_sd, steps_to_target
from snsm_workbench.util.tables import markdown_table

BASELINE = "adamw"
STATE_GOAL_PCT = 25.0  # memory at equal quality: AdamSNSM at most 25% of AdamW's state
STEPS_STRETCH = 0.85
DECOMPOSITION = (("adamw", "AdamW"), ("adamw_sn", "Subset-Norm alone"),
                 ("adamw_sm", "Subspace-Momentum alone"), ("adamw_snsm", "both (AdamSNSM)"),
                 ("adamw_snsm_all", "both, every matrix incl. the embedding"))


# -- numbers -------------------------------------------------------------------------------
def with_measured_state(results: dict) -> tuple[dict, dict[str, tuple[int, int]]]:
    """``results`` with the ``state_bytes`` of every run on the suite's preset replaced by its
    configuration's 1-step measurement (on that preset), and {label: (recorded, measured)}
    for the labels whose runs recorded another size."""
    measured, changed = results.get("state") or {}, {}
    preset = results["settings"]["preset"]

    def walk(value):
        if isinstance(value, list):
            return [walk(v) for v in value]
        if not isinstance(value, dict):
            return value
        key = value.get("key")
        if key and key["preset"] == preset and key["label"] in measured \
                and "state_bytes" in value:
            label = key["label"]
            if value["state_bytes"] != measured[label]:
                changed.setdefault(label, (value["state_bytes"], measured[label]))
            return {**value, "state_bytes": measured[label]}
        return {k: walk(v) for k, v in value.items()}
    return walk(results), changed


def _finals(runs: list[dict]) -> list[float]:
    return [final_loss(r) for r in runs]


def _steps_fraction(runs: list[dict], baseline: list[dict], horizon: int) -> float:
    """Steps at which the mean curve of ``runs`` reaches the baseline's mean final loss,
    / horizon (inf: never reached; the baseline itself gives about 1)."""
    target = statistics.fmean(_finals(baseline))
    curve = mean_curve([dict(zip(r["steps"], r["val_loss"])) for r in runs])
    steps = steps_to_target(*curve, target)
    return math.inf if steps is None else steps / horizon


def _delta(runs: list[dict], baseline: list[dict]) -> float:
    return statistics.fmean(_finals(runs)) - statistics.fmean(_finals(baseline))


def compare(runs: list[dict], baseline: list[dict], horizon: int) -> dict:
    """Loss, Δ loss and steps fraction against ``baseline``, each with its interval."""
    finals = _finals(runs)
    if not all(math.isfinite(f) for f in finals):
        return {"loss": None, "sd": None, "seeds": len(runs), "failed": True}
    mean, sd = mean_sd(finals)
    pair = [runs, baseline]
    fraction = _steps_fraction(runs, baseline, horizon)
    return {"loss": mean, "sd": sd, "seeds": len(runs), "failed": False,
            "delta": _delta(runs, baseline),
            "delta_ci": bootstrap_interval(pair, _delta),
            "steps": fraction,
            "steps_ci": bootstrap_interval(pair, lambda r, b: _steps_fraction(r, b, horizon)),
            "state_bytes": runs[0]["state_bytes"]}


def verdict(row: dict) -> str:
    if row["failed"]:
        return "diverged"
    if row["steps_ci"][1] < 1:
        return "fewer steps"
    if row["delta_ci"][1] < 0:
        return "lower loss"
    if row["delta_ci"][0] > 0:
        return "higher loss"
    return "not distinguishable"


# -- tables --------------------------------------------------------------------------------
def _fmt_ci(ci, spec=".3f") -> str:
    lo, hi = ci
    return "[" + ", ".join("∞" if math.isinf(v) else format(v, spec) for v in (lo, hi)) + "]"


def _fmt_loss(row: dict) -> str:
    """Mean ± sd; one seed has no sd."""
    if row["failed"]:
        return "diverged"
    if row["seeds"] < 2:
        return f"{row['loss']:.4f} (one seed)"
    return f"{row['loss']:.4f} ± {row['sd']:.4f}"


def _fmt_steps(row: dict) -> str:
    if row["failed"]:
        return "-"
    point = "not reached" if math.isinf(row["steps"]) else f"{row['steps']:.2f}"
    return f"{point} {_fmt_ci(row['steps_ci'], '.2f')}"


def _lr_text(tuned: dict) -> str:
    """``lr / plain lr`` (``-`` for rows run at another row's lrs)."""
    if "lr" not in tuned:
        return "-"
    plain = tuned.get("plain_lr")
    return f"{tuned['lr']:.3g}" + ("" if plain is None else f" / {plain:.3g}")


def comparison_rows(tuned: dict[str, dict], baseline: list[dict], horizon: int,
                    adamw_state: int) -> list[dict]:
    rows = []
    for label, t in tuned.items():
        row = {"optimizer": label, "lr": _lr_text(t), "edge": t.get("grid_edge"),
               **compare(t["runs"], baseline, horizon)}
        row["state_pct"] = (100 * row["state_bytes"] / adamw_state
                            if row.get("state_bytes") and adamw_state else None)
        rows.append(row)
    return rows


COMPARISON_COLUMNS = [
    ("optimizer", "optimizer"), ("lr (matrices / plain)", "lr"), ("seeds", "seeds"),
    ("final val loss (mean ± sd)", _fmt_loss),
    ("Δ loss vs AdamW [95% CI]", lambda r: "-" if r["failed"]
     else f"{r['delta']:+.4f} {_fmt_ci(r['delta_ci'], '+.4f')}"),
    ("steps to AdamW's final, fraction [95% CI]", _fmt_steps),
    ("state % of AdamW", lambda r: "-" if r["state_pct"] is None else f"{r['state_pct']:.1f}"),
    ("verdict", verdict),
]


def tuning_rows(tuned: dict[str, dict]) -> list[dict]:
    rows = []
    for label, t in tuned.items():
        def points(scores):
            if not scores:
                return "-"
            return ", ".join(f"{k}: {'div' if v is None else f'{v:.3f}'}"
                             for k, v in scores.items())
        rows.append({"optimizer": label, "grid": points(t["grid"]),
                     "edge": t["grid_edge"] or "interior",
                     "plain": points(t.get("plain_grid")),
                     "plain_edge": "-" if t.get("plain_grid") is None
                     else (t["plain_edge"] or "interior"),
                     "confirm": points(t["confirm"]),
                     "confirm_edge": t.get("confirm_edge") or "interior",
                     "chosen": _lr_text(t)})
    return rows


TUNING_COLUMNS = [("optimizer", "optimizer"), ("lr grid (short horizon)", "grid"),
                  ("best on edge?", "edge"), ("plain-group lr (short)", "plain"),
                  ("plain on edge?", "plain_edge"), ("confirm (full horizon)", "confirm"),
                  ("confirmed best on edge?", "confirm_edge"),
                  ("chosen lr / plain", "chosen")]


def memory_at_equal_quality(rows: list[dict], baseline: list[dict]) -> dict:
    """The smallest state among seeded rows (2+ seeds) within AdamW's loss interval."""
    finals = _finals(baseline)
    upper = bootstrap_interval([finals], statistics.fmean)[1]
    reaching = [r for r in rows if not r["failed"] and r["seeds"] > 1 and r["loss"] <= upper
                and r.get("state_pct") is not None]
    best = min(reaching, key=lambda r: r["state_bytes"], default=None)
    ours = [r for r in reaching if r["optimizer"].startswith("adamw_snsm")]
    best_ours = min(ours, key=lambda r: r["state_bytes"], default=None)
    return {"adamw_upper": upper, "reaching": [r["optimizer"] for r in reaching],
            "smallest": None if best is None else (best["optimizer"], best["state_pct"]),
            "smallest_snsm": None if best_ours is None
            else (best_ours["optimizer"], best_ours["state_pct"])}


# -- figures -------------------------------------------------------------------------------
def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(plt, fig, path: Path) -> Path:
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
    return _save(plt, fig, path)


def parameter_count(preset: str, vocab: int) -> int:
    from snsm_workbench.measure.models import PRESETS, LlamaSkeleton
    import torch

    with torch.device("meta"):
        model = LlamaSkeleton(replace(PRESETS[preset], vocab=vocab))
    return sum(p.numel() for p in model.parameters())


def scale_rows(scale: dict, vocab: int, steps: int) -> list[dict]:
    rows = []
    for preset, by_label in scale.items():
        base, params = by_label[BASELINE], parameter_count(preset, vocab)
        for label, runs in by_label.items():
            fraction = _steps_fraction(runs, base, steps)
            rows.append({"preset": preset, "params": params,
                         "optimizer": label, "loss": statistics.fmean(_finals(runs)),
                         "steps": fraction})
    return rows


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
    return _save(plt, fig, path)


# -- the report ----------------------------------------------------------------------------
def write_report(results: dict, out: str | Path) -> Path:
    """``report.md`` (+ ``sensitivity.png``, ``scale.png``) in ``out``."""
    out = Path(out)
    settings = results["settings"]
    horizon = settings["full_steps"]
    incomplete = results.get("incomplete") or {}
    if "headline" not in results:
        path = out / "report.md"
        path.write_text("# Standard suite: incomplete\n\n" + "\n".join(
            f"- {stage}: {why}" for stage, why in incomplete.items()) + "\n")
        return path
    results, restated = with_measured_state(results)
    headline = results["headline"]
    baseline = headline[BASELINE]["runs"]
    adamw_state = baseline[0]["state_bytes"]
    tuned_all = {**headline, **results.get("peers", {})}
    lines = [f"# Standard suite: {settings['preset']}, {horizon} steps of "
             f"{settings['batch_size']} x {settings['seq_len']} tokens, "
             f"vocabulary {settings['vocab_size']}", "",
             "Tuning: every contender's lr grid at a third of the horizon, the best point "
             "and its neighbours at the full horizon; two-group contenders (ours, AdamW "
             "included) also tune the plain-group lr. Intervals: 95% bootstrap over seeds.",
             ""]
    if incomplete:
        lines += ["Stages not finished yet (their runs are not all in `runs/`; the suite resumes "
                  "them): " + ", ".join(f"{stage} ({why})" for stage, why in incomplete.items()),
                  ""]
    lines += _state_note(results, restated, adamw_state)
    lines += ["## Headline: each method's best configuration", ""]
    rows = comparison_rows(tuned_all, baseline, horizon, adamw_state)
    lines += [markdown_table(rows, COMPARISON_COLUMNS), ""]
    if any(r["seeds"] < 2 for r in rows):
        lines += ["A row with one seed (a peer outside the best three) has intervals that "
                  "resample AdamW's seeds only.", ""]
    sensitivity_figure(tuned_all, out / "sensitivity.png")
    lines += ["![lr sensitivity](sensitivity.png)", "", "## Tuning (every point)", "",
              markdown_table(tuning_rows(tuned_all), TUNING_COLUMNS), ""]
    decomposition = results.get("decomposition")
    if decomposition:
        lines += _decomposition_section(decomposition, horizon, adamw_state)
        rows += comparison_rows(
            {f"{k} (decomposition)": v for k, v in decomposition.items() if k != BASELINE},
            baseline, horizon, adamw_state)
    if results.get("search"):
        lines += _search_section(results["search"], headline["adamw_snsm"]["runs"], horizon,
                                 adamw_state)
        rows += comparison_rows({k: v for k, v in results["search"].items()
                                 if len(v["runs"]) > 1}, baseline, horizon, adamw_state)
    if results.get("corpora"):
        lines += _corpora_section(results["corpora"], horizon)
    if results.get("scale"):
        srows = scale_rows(results["scale"], settings["vocab_size"], settings["scale_steps"])
        scale_figure(srows, out / "scale.png")
        lines += ["## Scale trend", "", f"{settings['scale_steps']} steps at every width, "
                  "each optimizer at its tuned (tiny-model) lrs, seed 0.", "",
                  markdown_table(srows, [
                      ("preset", "preset"), ("parameters", lambda r: f"{r['params']:,}"),
                      ("optimizer", "optimizer"), ("final val loss", lambda r: f"{r['loss']:.4f}"),
                      ("steps fraction", lambda r: "not reached" if math.isinf(r["steps"])
                       else f"{r['steps']:.2f}")]), "", "![scale](scale.png)", ""]
    if results.get("lean"):
        lines += _lean_section(results["lean"], headline, horizon, adamw_state)
        rows += comparison_rows({label: {"runs": runs} for label, runs in results["lean"].items()},
                                baseline, horizon, adamw_state)
    lines += _memory_section(memory_at_equal_quality(rows, baseline))
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _state_note(results: dict, restated: dict[str, tuple[int, int]],
                adamw_state: int) -> list[str]:
    if not results.get("state"):
        return ["State sizes: as each configuration's runs recorded them.", ""]
    line = ("State sizes: each configuration's optimizer state measured on a 1-step run with "
            "the code that made this report (`state` in results.json).")
    if restated:
        line += " Its long runs recorded other sizes for " + ", ".join(
            f"{label} ({100 * old / adamw_state:.1f}% measured then, {100 * new / adamw_state:.1f}%"
            " now)" for label, (old, new) in sorted(restated.items())) + "."
    else:
        line += " Every long run recorded the same size."
    return [line, ""]


def _decomposition_section(decomposition: dict, horizon: int, adamw_state: int) -> list[str]:
    baseline = decomposition[BASELINE]["runs"]
    rows = comparison_rows(decomposition, baseline, horizon, adamw_state)
    by_label = {r["optimizer"]: r for r in rows}
    both = by_label.get("adamw_snsm")
    # A share of AdamSNSM's gap means something only when that gap is outside the noise.
    gap = None
    if both and not both["failed"] and _excludes_zero(both["delta_ci"]):
        gap = both["delta"]
    named = []
    for label, name in DECOMPOSITION:
        if label in by_label:
            row = dict(by_label[label], optimizer=f"{name} ({label})")
            row["share"] = None if gap is None or row["failed"] else row["delta"] / gap
            named.append(row)
    columns = COMPARISON_COLUMNS[:-1] + [
        ("share of AdamSNSM's Δ", lambda r: "-" if r.get("share") is None
         else f"{r['share']:.2f}"), COMPARISON_COLUMNS[-1]]
    plain = decomposition[BASELINE].get("plain_lr") or decomposition[BASELINE]["lr"]
    lines = ["## Each ingredient isolated", "",
             f"Every plain group (embedding, norms) at AdamW's tuned plain-group lr "
             f"({plain:.3g}); each row's matrix lr tuned on its grid.", "",
             markdown_table(named, columns), ""]
    if both and gap is None and not both["failed"]:
        low, high = both["delta_ci"]
        lines += [f"AdamSNSM's gap to AdamW here ({both['delta']:+.4f} [{low:+.4f}, "
                  f"{high:+.4f}]) is inside the noise, so no share of it is attributed to "
                  "either ingredient.", ""]
    return lines


def _excludes_zero(interval) -> bool:
    low, high = interval
    return low > 0 or high < 0


def _search_section(search: dict, default: list[dict], horizon: int,
                    adamw_state: int) -> list[str]:
    """Each variant against the headline AdamSNSM (same lrs, same seeds)."""
    finals = _finals(default)
    rows = []
    for found in search.values():
        runs = found["runs"]
        screen = final_loss(runs[0])
        rows.append({"variant": f"{found['knob']} = {found['value']}", "screen": screen,
                     "screen_delta": screen - finals[0], **compare(runs, default, horizon),
                     "state_pct": 100 * runs[0]["state_bytes"] / adamw_state})
    mean, sd = mean_sd(finals)
    columns = [("variant", "variant"),
               ("seed 0: final val loss (Δ vs default)", lambda r: "diverged" if r["failed"]
                else f"{r['screen']:.4f} ({r['screen_delta']:+.4f})"),
               ("seeds", "seeds"),
               ("final val loss (mean ± sd)", lambda r: "-" if r["failed"] or r["seeds"] < 2
                else f"{r['loss']:.4f} ± {r['sd']:.4f}"),
               ("Δ vs default [95% CI]", lambda r: "-" if r["failed"] or r["seeds"] < 2
                else f"{r['delta']:+.4f} {_fmt_ci(r['delta_ci'], '+.4f')}"),
               ("state % of AdamW", lambda r: f"{r['state_pct']:.1f}"),
               ("verdict", lambda r: "screened out (seed 0 worse by more than the default's "
                "seed sd)" if r["seeds"] < 2 and not r["failed"] else verdict(r))]
    return ["## The method at its best: AdamSNSM's knobs", "",
            f"One knob at a time from the headline AdamSNSM ({mean:.4f} ± {sd:.4f}, "
            f"seed 0 {finals[0]:.4f}), at its tuned lrs and the full horizon; a variant whose "
            "seed-0 loss is within the default's seed sd gets every seed. The lrs are not "
            "re-tuned per variant. \"Fewer steps\" / \"lower loss\" are against the default; "
            "only those would change a default.", "",
            markdown_table(rows, columns), ""]


def _memory_section(memory: dict) -> list[str]:
    lines = ["## Memory at equal quality", "",
             f"Seeded configurations whose mean final loss is at most {memory['adamw_upper']:.4f} "
             f"(the upper end of AdamW's interval): {', '.join(memory['reaching']) or 'none'}.", ""]
    for key, what in (("smallest", "Smallest state among them"),
                      ("smallest_snsm", "Smallest AdamSNSM configuration among them")):
        value = memory[key]
        lines.append(f"- {what}: " + ("none" if value is None
                                        else f"{value[0]}, {value[1]:.1f}% of AdamW's state"))
    if memory["smallest_snsm"] is not None:
        held = memory["smallest_snsm"][1] <= STATE_GOAL_PCT
        lines.append(f"- Goal (AdamSNSM at most {STATE_GOAL_PCT:.0f}% of AdamW's state at "
                     f"equal quality): {'met' if held else 'missed'}.")
    return lines + [""]


def _corpora_section(corpora: dict, horizon: int) -> list[str]:
    lines = ["## Other corpora", "", "The headline's Shakespeare-tuned settings, unchanged.", ""]
    seeds = min(len(runs) for by_label in corpora.values() for runs in by_label.values())
    if seeds < 3:
        lines += [f"{seeds} seed(s) a row: a bootstrap over so few seeds understates the spread, "
                  "so a verdict here is a lead to check with more seeds, not a finding.", ""]
    for corpus, by_label in corpora.items():
        baseline = by_label[BASELINE]
        rows = [{"optimizer": label, "lr": "-", **compare(runs, baseline, horizon),
                 "state_pct": None} for label, runs in by_label.items()]
        lines += [f"### {corpus}", "",
                  markdown_table(rows, [c for c in COMPARISON_COLUMNS
                                        if c[0] not in ("lr (matrices / plain)",
                                                        "state % of AdamW")]), ""]
    return lines


def _lean_section(lean: dict[str, list[dict]], headline: dict, horizon: int,
                  adamw_state: int) -> list[str]:
    """Each lean level against its own fp32 headline runs (same lrs, same seeds)."""
    bases = {label: base for label, base, _, _ in LEAN}
    rows = []
    for label, runs in lean.items():
        base = headline[bases[label]]["runs"]
        row = {"optimizer": label, "against": bases[label], **compare(runs, base, horizon)}
        base_mean = statistics.fmean(_finals(base))
        row["gap_pct"] = None if row["failed"] else 100 * row["delta"] / base_mean
        row["state_pct"] = 100 * runs[0]["state_bytes"] / adamw_state
        rows.append(row)
    columns = [("level", "optimizer"), ("against (fp32 states and weights)", "against"),
               ("seeds", "seeds"),
               ("final val loss (mean ± sd)", _fmt_loss),
               ("Δ loss [95% CI]", lambda r: "-" if r["failed"]
                else f"{r['delta']:+.4f} {_fmt_ci(r['delta_ci'], '+.4f')}"),
               ("gap to fp32", lambda r: "-" if r["gap_pct"] is None else f"{r['gap_pct']:+.2f}%"),
               ("state % of AdamW", lambda r: f"{r['state_pct']:.1f}")]
    return ["## Lean levels", "", "Each at its fp32 row's tuned lrs; pure-bf16 weights use the "
            "optimizers' default bf16 update (stochastic rounding) unless the row says "
            "nearest.", "",
            markdown_table(rows, columns), ""]
