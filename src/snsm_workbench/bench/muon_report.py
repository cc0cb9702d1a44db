"""The standard report's "Lean Muon" section: each configuration of the ``muon`` stage
(issue 23) against AdamW and against ``torch.optim.Muon`` with the headline's statistics, and
which configuration, if any, meets the goals of ``muon_goals`` in
``snsm_workbench/suites/standard.json`` (:attr:`snsm_workbench.bench.stage_plan.Plan.muon_goals`).

Per configuration (seeded runs, paired by seed: :func:`~snsm_workbench.bench.comparison.compare`):
final loss; Δ loss vs AdamW and vs the peer ``muon_goals["peer"]`` (of the ``peers`` stage),
each with its 95% t interval; steps to AdamW's final loss; state as % of AdamW's (each
configuration's 1-step measurement). A configuration meets the goals when

* ``quality``: its Δ vs AdamW interval lies wholly below 0;
* ``peer``: it is not clearly worse than the peer (the lower end of its Δ interval is <= 0);
* ``steps``: every seed reaches AdamW's final loss and the steps estimate (geometric mean of the
  per-seed fractions) is <= ``steps_fraction_max``;
* ``state``: its state is <= ``state_pct_max`` % of AdamW's (``state_pct_stretch``: the stretch).

A configuration whose runs are not all there (the stage unfinished, its tuning unfinished, fewer
seeds than the suite's) is listed as incomplete, with no numbers.
"""

from __future__ import annotations

import math

from snsm_workbench.bench.comparison import BASELINE, compare, comparison_rows, verdict
from snsm_workbench.bench.report_format import fmt_delta, fmt_loss, fmt_steps
from snsm_workbench.util.tables import markdown_table

GOALS = ("quality", "peer", "steps", "state")


def incomplete_reason(tuned: dict | None, seeds: int) -> str | None:
    """Why a configuration has no comparable numbers yet (None: it has them)."""
    if tuned is None:
        return "not finished"
    if tuned.get("lr") is None:
        return "tuning not finished"
    if len(tuned["runs"]) < seeds:
        return f"{len(tuned['runs'])} of {seeds} seeds"
    return None


def missed_goals(row: dict, goals: dict) -> list[str]:
    """The :data:`GOALS` a complete row misses (every one when it diverged)."""
    if row["failed"]:
        return list(GOALS)
    missed = [] if row["delta_ci"][1] < 0 else ["quality"]
    peer = row["peer"]
    if peer is None or peer["failed"] or peer["delta_ci"][0] > 0:
        missed.append("peer")
    test = row["steps_test"]
    if test is None or math.isinf(test.estimate) or test.estimate > goals["steps_fraction_max"]:
        missed.append("steps")
    if row["state_pct"] is None or row["state_pct"] > goals["state_pct_max"]:
        missed.append("state")
    return missed


def muon_rows(results: dict, goals: dict) -> list[dict]:
    """One row per configuration of the stage, in the stage's order: a comparison row with
    ``peer`` (its comparison with the peer, None without the peer's runs) and ``missed``, or
    ``{"optimizer", "incomplete"}``."""
    settings, muon = results["settings"], results.get("muon") or {}
    horizon, seeds = settings["full_steps"], settings["seeds"]
    baseline = results["headline"][BASELINE]["runs"]
    peer = (results.get("peers") or {}).get(goals["peer"])
    rows = []
    for label in settings.get("muon_labels") or list(muon):
        tuned = muon.get(label)
        why = incomplete_reason(tuned, seeds)
        if why:
            rows.append({"optimizer": label, "incomplete": why})
            continue
        row, = comparison_rows({label: tuned}, baseline, horizon, baseline[0]["state_bytes"])
        row["peer"] = None if peer is None else compare(tuned["runs"], peer["runs"], horizon)
        row["missed"] = missed_goals(row, goals)
        rows.append(row)
    return rows


def _complete(format_cell):
    """A column's cell: ``format_cell(row)``, or ``-`` for an incomplete row."""
    return lambda row: "-" if "incomplete" in row else format_cell(row)


def _peer_verdict(row: dict) -> str:
    """The loss verdict against the peer (steps are counted against AdamW's final only)."""
    peer = row["peer"]
    return "-" if peer is None else verdict({**peer, "steps_ci": None})


def _columns(peer: str) -> list:
    return [
        ("configuration", "optimizer"), ("lr (matrices / plain)", _complete(lambda r: r["lr"])),
        ("seeds", _complete(lambda r: r["seeds"])),
        ("final val loss (mean ± sd)", lambda r: f"incomplete: {r['incomplete']}"
         if "incomplete" in r else fmt_loss(r)),
        ("Δ loss vs AdamW [95% CI]", _complete(fmt_delta)),
        (f"Δ loss vs peer {peer} [95% CI]", _complete(
            lambda r: "-" if r["peer"] is None else fmt_delta(r["peer"]))),
        ("steps to AdamW's final, fraction [95% CI]", _complete(fmt_steps)),
        ("state % of AdamW", _complete(
            lambda r: "-" if r["state_pct"] is None else f"{r['state_pct']:.1f}")),
        ("vs AdamW", _complete(verdict)), (f"vs peer {peer}", _complete(_peer_verdict)),
        ("goals missed", _complete(lambda r: ", ".join(r["missed"]) or "none"))]


def goals_text(goals: dict) -> str:
    """The goals, in words, from ``muon_goals``."""
    stretch = goals.get("state_pct_stretch")
    return (f"Goals (`muon_goals` of the suite file): **quality**, Δ loss vs AdamW below 0 with "
            f"its interval excluding 0; **peer**, not clearly worse than {goals['peer']} (the "
            f"lower end of the Δ interval at most 0); **steps**, AdamW's final loss reached by "
            f"every seed in at most {goals['steps_fraction_max']:g}x the steps (the estimate); "
            f"**state**, at most {goals['state_pct_max']:g}% of AdamW's state"
            + ("" if stretch is None else f" (stretch: {stretch:g}%)") + ".")


def verdict_line(rows: list[dict], goals: dict) -> str:
    """Which configuration meets every goal, if any, in one plain sentence."""
    complete = [r for r in rows if "incomplete" not in r]
    pending = len(rows) - len(complete)
    tail = (f" {pending} of {len(rows)} configurations are incomplete; this may change when "
            "they finish." if pending else "")
    met = [r for r in complete if not r["missed"]]
    if not met:
        return "**No configuration meets every goal" + (" so far" if pending else "") + ".**" \
            + tail
    stretch = goals.get("state_pct_stretch")
    names = ", ".join(f"{r['optimizer']} ({r['state_pct']:.1f}% of AdamW's state"
                      + ("" if stretch is None or r["state_pct"] > stretch
                         else f", within the {stretch:g}% stretch") + ")" for r in met)
    return f"**Meets every goal: {names}.**" + tail


def muon_section(results: dict, goals: dict) -> tuple[list[str], list[dict]]:
    """The section's lines and its rows (:func:`muon_rows`)."""
    rows, peer = muon_rows(results, goals), goals["peer"]
    lines = ["## Lean Muon", "",
             "The muon stage: each entry tuned by the headline's protocol, each lean level at "
             "its base's lrs (its plain-group lr searched again where it changes that group's "
             f"rule). Δ vs peer {peer}: paired by seed with the peers stage's {peer} runs (its "
             "row in the headline table).", ""]
    if not (results.get("peers") or {}).get(peer):
        lines += [f"The peers stage's {peer} is not in these results: no Δ against it, and "
                  "no configuration can meet the peer goal.", ""]
    if any("incomplete" in r for r in rows):
        lines += ["An incomplete configuration (no results yet: the stage is unfinished, and a "
                  "rerun resumes its runs) is shown without numbers.", ""]
    lines += [markdown_table(rows, _columns(peer)), "", goals_text(goals), "",
              verdict_line(rows, goals), ""]
    return lines, rows
