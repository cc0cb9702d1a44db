"""A short suite's report: from ``results.json`` to ``report.md``, ``val_loss.png`` and ``pareto.png``.

Everything in the report is computed from the results dict (``rows``, ``curves``,
``tuning``, ``skipped``, ``contenders``, ``config``), so a report can be rebuilt
from a committed ``results.json`` alone: ``write_report(load_results(path), folder)``
(``snsm bench --suite NAME --cached-only --out FOLDER``). It states the measurements (the
rows of :mod:`snsm_workbench.bench.summary`, against AdamW) and one test per row: the 95% t
interval of its final loss minus AdamW's (:func:`against_adamw_rows`), Welch's from each row's
mean, sd and seed count (the results keep no per-seed finals to pair by seed), the single-case
form for a one-seed row; "clearly" lower / higher only when the interval excludes 0.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from snsm_workbench.bench.comparison import verdict
from snsm_workbench.bench.figures import plot_pareto, plot_val_curves
from snsm_workbench.bench.statistics import welch_from_summary
from snsm_workbench.util.tables import markdown_table

ROW_KEYS = ("optimizer", "lr", "final_val_loss", "final_val_ppl", "steps_to_adamw_final",
            "steps_ratio_vs_adamw", "state_bytes", "state_pct_of_adamw",
            "step_time_ratio_vs_adamw", "seeds")


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


def against_adamw_rows(rows: list[dict]) -> list[dict]:
    """Per row but AdamW's: Δ final loss vs AdamW, its Welch (or single-case) t interval, p and
    verdict; no test where neither side has two seeds."""
    base = next((r for r in rows if r["optimizer"] == "adamw"), None)
    if base is None or base["final_val_loss"] is None:
        return []
    out = []
    for row in rows:
        if row is base:
            continue
        if row["final_val_loss"] is None:
            out.append({"optimizer": row["optimizer"], "seeds": row["seeds"],
                        "failed": True, "test": None})
            continue
        test = None
        if max(row["seeds"], base["seeds"]) > 1:
            test = welch_from_summary(row["final_val_loss"], row.get("final_val_loss_std", 0.0),
                                      row["seeds"], base["final_val_loss"],
                                      base.get("final_val_loss_std", 0.0), base["seeds"])
        out.append({"optimizer": row["optimizer"], "seeds": row["seeds"], "failed": False,
                    "test": test, "delta": row["final_val_loss"] - base["final_val_loss"]})
    return out


def _against_verdict(row: dict) -> str:
    if row["test"] is None:
        return "diverged" if row["failed"] else "no test (one seed each)"
    return verdict({"failed": False, "steps_ci": None, "delta": row["delta"],
                    "delta_ci": row["test"].bounds})


AGAINST_COLUMNS = [
    ("optimizer", "optimizer"), ("seeds", "seeds"),
    ("Δ final val loss vs AdamW [95% CI]", lambda r: "-" if r["failed"] else
     f"{r['delta']:+.4f}" + ("" if r["test"] is None
                            else f" [{r['test'].low:+.4f}, {r['test'].high:+.4f}]")),
    ("test", lambda r: "-" if r["test"] is None
     else {"welch": "Welch", "single": "single-case"}[r["test"].design]),
    ("p", lambda r: "-" if r["test"] is None else f"{r['test'].p:.2g}"),
    ("verdict", _against_verdict)]


def _against_lines(rows: list[dict]) -> list[str]:
    against = against_adamw_rows(rows)
    if not against:
        return []
    title = ["## Against AdamW: final loss over seeds", ""]
    if all(r["test"] is None for r in against):
        return title + ["One seed each: no interval and no test; a difference in the table "
                        "above is a single draw, a lead to check with more seeds at most.", ""]
    return title + [
            "95% Student t intervals of a row's mean final loss minus AdamW's: Welch's "
            "(Welch–Satterthwaite df) from each side's mean, sd and seeds, since the results "
            "keep no per-seed finals to pair by seed (pairing would narrow them); a one-seed "
            "row against several AdamW seeds: the single-case test (its variance taken equal "
            "to AdamW's). \"Clearly\" lower / higher only when the interval excludes 0; "
            "otherwise \"lead, not clear\" (lower inside the noise) or \"level\". The steps "
            "ratio above is of mean curves and has no interval.", "",
            markdown_table(against, AGAINST_COLUMNS), ""]


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
    lines += _against_lines(rows)
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
