"""The staged suite's report: from ``results.json`` to ``report.md`` and its figures.

Everything is computed from the results dict (numbers: :mod:`snsm_workbench.bench.comparison`;
figures: :mod:`snsm_workbench.bench.figures`), so ``snsm bench --suite standard --cached-only``
on a finished record rebuilds the same report. The report states measurements and intervals;
its only verdicts are the t tests' (:func:`~snsm_workbench.bench.comparison.verdict`).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from snsm_workbench.bench.comparison import (BASELINE, compare, comparison_rows, excludes_zero,
                                             finals, lr_text, memory_at_equal_quality,
                                             scale_rows, verdict, with_measured_state)
from snsm_workbench.bench.figures import scale_figure, sensitivity_figure
from snsm_workbench.bench.muon_report import muon_section
from snsm_workbench.bench.report_format import fmt_ci as _fmt_ci
from snsm_workbench.bench.report_format import fmt_delta, fmt_loss as _fmt_loss
from snsm_workbench.bench.report_format import fmt_steps as _fmt_steps
from snsm_workbench.bench.run_pool import final_loss
from snsm_workbench.bench.stage_plan import PLAN, item_label
from snsm_workbench.bench.statistics import mean_sd
from snsm_workbench.util.tables import markdown_table

DECOMPOSITION = (("adamw", "AdamW"), ("adamw_sn", "Subset-Norm alone"),
                 ("adamw_sm", "Subspace-Momentum alone"), ("adamw_snsm", "both (AdamSNSM)"),
                 ("adamw_snsm_all", "both, every matrix incl. the embedding"))


INTERVALS_NOTE = (
    "Intervals: 95% Student t over seeds, paired by seed (each row ran AdamW's seeds with the "
    "same data order; Δ loss: the mean of the per-seed differences; steps: the geometric mean "
    "of the per-seed fractions, the interval of their logs). Verdicts: \"clearly\" fewer steps "
    "/ lower / higher loss only when the interval excludes 1 / 0; otherwise \"lead, not "
    "clear\" (lower loss inside the noise) or \"level\".")

COMPARISON_COLUMNS = [
    ("optimizer", "optimizer"), ("lr (matrices / plain)", "lr"), ("seeds", "seeds"),
    ("final val loss (mean ± sd)", _fmt_loss),
    ("Δ loss vs AdamW [95% CI]", fmt_delta),
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
                     "edge": "-" if not t["grid"] else (t["grid_edge"] or "interior"),
                     "plain": points(t.get("plain_grid")),
                     "plain_edge": "-" if t.get("plain_grid") is None
                     else (t["plain_edge"] or "interior"),
                     "confirm": points(t["confirm"]),
                     "confirm_edge": "-" if not t["confirm"]
                     else (t.get("confirm_edge") or "interior"),
                     "chosen": lr_text(t)})
    return rows


TUNING_COLUMNS = [("optimizer", "optimizer"), ("lr grid (short horizon)", "grid"),
                  ("best on edge?", "edge"), ("plain-group lr (short)", "plain"),
                  ("plain on edge?", "plain_edge"), ("confirm (full horizon)", "confirm"),
                  ("confirmed best on edge?", "confirm_edge"),
                  ("chosen lr / plain", "chosen")]


# -- the report ----------------------------------------------------------------------------
def write_report(results: dict, out: str | Path) -> Path:
    """``report.md`` (+ ``sensitivity.png``, ``scale.png``) in ``out``."""
    out = Path(out)
    path = out / "report.md"
    if "headline" not in results:
        path.write_text("# Standard suite: incomplete\n\n" + "\n".join(
            f"- {stage}: {why}" for stage, why in (results.get("incomplete") or {}).items())
            + "\n")
        return path
    results, restated = with_measured_state(results)
    muon_lines, muon_rows = (muon_section(results, PLAN.muon_goals)
                             if "muon" in results.get("stages", ()) else ([], []))
    lines, rows = _headline_part(results, restated, out,
                                 [r for r in muon_rows if "incomplete" not in r])
    lines += _stages_part(results, out, rows, muon_lines)
    lines += _memory_section(memory_at_equal_quality(rows))
    path.write_text("\n".join(lines) + "\n")
    return path


def _headline_part(results: dict, restated: dict, out: Path, stage: list[dict]
                   ) -> tuple[list[str], list[dict]]:
    """The title, notes, headline table (``stage``: the muon stage's finished rows at its
    end), lr sensitivity and tuning table; and the rows."""
    settings, incomplete = results["settings"], results.get("incomplete") or {}
    horizon, headline = settings["full_steps"], results["headline"]
    baseline = headline[BASELINE]["runs"]
    adamw_state = baseline[0]["state_bytes"]
    tuned_all = {**headline, **results.get("peers", {})}
    lines = [f"# Standard suite: {settings['preset']}, {horizon} steps of "
             f"{settings['batch_size']} x {settings['seq_len']} tokens, "
             f"vocabulary {settings['vocab_size']}", "",
             "Tuning: every contender's lr grid at a third of the horizon, the best point "
             "and its neighbours at the full horizon; two-group contenders (ours, AdamW "
             "included) also tune the plain-group lr.", "", INTERVALS_NOTE, ""]
    if incomplete:
        lines += ["Stages not finished yet (their runs are not all in `runs/`; the suite resumes "
                  "them): " + ", ".join(f"{stage} ({why})" for stage, why in incomplete.items()),
                  ""]
    lines += _state_note(results, restated, adamw_state)
    lines += ["## Headline: each method's best configuration", ""]
    rows = comparison_rows(tuned_all, baseline, horizon, adamw_state)
    lines += [markdown_table(rows + stage, COMPARISON_COLUMNS), ""]
    if stage:
        lines += [f"The rows from {stage[0]['optimizer']} down are the muon stage's finished "
                  "configurations (ours; `muon` above is `torch.optim.Muon`): their Δ against "
                  "it and the goals are in [Lean Muon](#lean-muon).", ""]
    rows += stage
    if any(r["seeds"] < 2 for r in rows):
        lines += ["A row with one seed (a peer outside the best three) is not paired: its "
                  "Δ loss interval is the single-case t test against AdamW's seeds (its "
                  "variance taken equal to AdamW's: AdamW's sd × √(1 + 1/n), n - 1 df), and "
                  "its steps fraction (seed 0) has no interval.", ""]
    sensitivity_figure(tuned_all, out / "sensitivity.png")
    lines += ["![lr sensitivity](sensitivity.png)", "", "## Tuning (every point)", "",
              markdown_table(tuning_rows(tuned_all), TUNING_COLUMNS), ""]
    return lines, rows


def _stages_part(results: dict, out: Path, rows: list[dict], muon_lines: list[str]
                 ) -> list[str]:
    """The sections of the other stages (``muon_lines``: the Lean Muon section's); their
    seeded rows are added to ``rows``."""
    settings, headline = results["settings"], results["headline"]
    horizon, baseline = settings["full_steps"], headline[BASELINE]["runs"]
    adamw_state, lines = baseline[0]["state_bytes"], []
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
        lines += _scale_section(results["scale"], settings, out)
    if results.get("lean"):
        lines += _lean_section(results["lean"], headline, horizon, adamw_state)
        rows += comparison_rows({label: {"runs": runs} for label, runs in results["lean"].items()},
                                baseline, horizon, adamw_state)
    if "muon" in results.get("stages", ()):
        lines += _muon_part(results, muon_lines)
    return lines


def _muon_part(results: dict, section: list[str]) -> list[str]:
    """The Lean Muon ``section``, the items not run, and its tuning table."""
    lines = list(section)
    running = results["settings"].get("muon_labels") or ()  # older results have none
    idle = [label for label in map(item_label, PLAN.muon) if running and label not in running]
    if idle:
        lines += ["Defined in the suite file but not run (not in `settings.muon_labels`): "
                  + ", ".join(idle) + ".", ""]
    tuned = {label: t for label, t in (results.get("muon") or {}).items()
             if t and (t.get("grid") or t.get("plain_grid"))}
    if tuned:
        lines += ["### Tuning of the muon stage (every point)", "",
                  markdown_table(tuning_rows(tuned), TUNING_COLUMNS), ""]
    return lines


def _scale_section(scale: dict, settings: dict, out: Path) -> list[str]:
    srows = scale_rows(scale, settings["vocab_size"], settings["scale_steps"])
    scale_figure(srows, out / "scale.png")
    return ["## Scale trend", "", f"{settings['scale_steps']} steps at every width, "
            "each optimizer at its tuned (tiny-model) lrs, seed 0.", "",
            markdown_table(srows, [
                ("preset", "preset"), ("parameters", lambda r: f"{r['params']:,}"),
                ("optimizer", "optimizer"), ("final val loss", lambda r: f"{r['loss']:.4f}"),
                ("steps fraction", lambda r: "not reached" if math.isinf(r["steps"])
                 else f"{r['steps']:.2f}")]), "", "![scale](scale.png)", ""]


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
    if both and not both["failed"] and excludes_zero(both["delta_ci"]):
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


def _search_section(search: dict, default: list[dict], horizon: int,
                    adamw_state: int) -> list[str]:
    """Each variant against the headline AdamSNSM (same lrs, same seeds)."""
    default_finals = finals(default)
    rows = []
    for found in search.values():
        runs = found["runs"]
        screen = final_loss(runs[0])
        rows.append({"variant": f"{found['knob']} = {found['value']}", "screen": screen,
                     "screen_delta": screen - default_finals[0], **compare(runs, default, horizon),
                     "state_pct": 100 * runs[0]["state_bytes"] / adamw_state})
    mean, sd = mean_sd(default_finals)
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
            f"seed 0 {default_finals[0]:.4f}), at its tuned lrs and the full horizon; a variant whose "
            "seed-0 loss is within the default's seed sd gets every seed. The lrs are not "
            "re-tuned per variant. \"Clearly fewer steps\" / \"clearly lower loss\" are against "
            "the default (paired by seed); only those would change a default.", "",
            markdown_table(rows, columns), ""]


def _memory_section(memory: dict) -> list[str]:
    lines = ["## Memory at equal quality", "",
             "Seeded configurations not clearly worse than AdamW (the lower end of their Δ loss "
             "interval at most 0: no evidence of a loss, which is not proof of none): "
             f"{', '.join(memory['reaching']) or 'none'}.", ""]
    for key, what in (("smallest", "Smallest state among them"),
                      ("smallest_snsm", "Smallest AdamSNSM configuration among them")):
        value = memory[key]
        lines.append(f"- {what}: " + ("none" if value is None
                                        else f"{value[0]}, {value[1]:.1f}% of AdamW's state"))
    return lines + [""]


def _corpora_section(corpora: dict, horizon: int) -> list[str]:
    lines = ["## Other corpora", "", "The headline's Shakespeare-tuned settings, unchanged.", ""]
    seeds = min(len(runs) for by_label in corpora.values() for runs in by_label.values())
    if seeds < 3:
        lines += [f"{seeds} seed(s) a row: a t interval over so few seeds is wide; a lead here "
                  "is one to check with more seeds, not a finding.", ""]
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
    bases = {level.label: level.base for level in PLAN.lean}
    rows = []
    for label, runs in lean.items():
        base = headline[bases[label]]["runs"]
        row = {"optimizer": label, "against": bases[label], **compare(runs, base, horizon)}
        base_mean = statistics.fmean(finals(base))
        row["gap_pct"] = None if row["failed"] else 100 * row["delta"] / base_mean
        row["state_pct"] = 100 * runs[0]["state_bytes"] / adamw_state
        rows.append(row)
    columns = [("level", "optimizer"), ("against (fp32 states and weights)", "against"),
               ("seeds", "seeds"),
               ("final val loss (mean ± sd)", _fmt_loss),
               ("Δ loss [95% CI]", lambda r: "-" if r["failed"]
                else f"{r['delta']:+.4f} {_fmt_ci(r['delta_ci'], '+.4f')}"),
               ("gap to fp32", lambda r: "-" if r["gap_pct"] is None else f"{r['gap_pct']:+.2f}%"),
               ("state % of AdamW", lambda r: f"{r['state_pct']:.1f}"), ("verdict", verdict)]
    return ["## Lean levels", "", "Each at its fp32 row's tuned lrs; pure-bf16 weights use the "
            "optimizers' default bf16 update (stochastic rounding) unless the row says "
            "nearest.", "",
            markdown_table(rows, columns), ""]