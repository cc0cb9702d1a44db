"""The standard report's Lean Muon section (snsm_workbench.bench.muon_report) on made-up
results: the statistics per configuration, incomplete ones, and the goals read from the plan."""

import json
import shutil

import pytest

from snsm_workbench.bench.muon_report import muon_rows, muon_section
from snsm_workbench.bench.stage_plan import PLAN, load_plan
from snsm_workbench.bench.suite_files import SUITES_DIR, SuiteFileError

GOALS = {"peer": "muon", "steps_fraction_max": 0.8, "state_pct_max": 15,
         "state_pct_stretch": 10}
STEPS = [25, 50, 75, 100]


def _runs(label, curves, state=100):
    return [{"steps": STEPS, "val_loss": curve, "state_bytes": state,
             "key": {"label": label, "seed": seed, "preset": "tiny"}}
            for seed, curve in enumerate(curves)]


def _fast(final):  # reaches 4.0 (AdamW's final) at about step 67 of 100
    return [5.0, 4.2, 3.9, final]


def _results():
    adamw = _runs("adamw", [[5.0, 4.6, 4.2, f] for f in (4.0, 4.01, 3.99)], state=1000)
    muon = {"lean": {"lr": 0.01, "plain_lr": 0.1, "grid": {}, "plain_grid": None,
                     "confirm": {}, "runs": _runs("lean", [_fast(f) for f in (3.80, 3.82, 3.79)],
                                                  state=80)},
            "big": {"lr": 0.01, "plain_lr": None, "grid": {}, "plain_grid": None,
                    "confirm": {}, "runs": _runs("big", [_fast(f) for f in (3.80, 3.81, 3.79)],
                                                 state=500)},
            "short": {"lr": 0.01, "plain_lr": None, "runs": _runs("short", [_fast(3.8)] * 2)},
            "worse": {"lr": 0.01, "plain_lr": None,
                      "runs": _runs("worse", [_fast(f) for f in (3.95, 3.96, 3.94)], state=80)}}
    return {"settings": {"full_steps": 100, "seeds": 3,
                         "muon_labels": ["lean", "big", "short", "worse", "unrun"]},
            "stages": ["headline", "peers", "muon"],
            "headline": {"adamw": {"lr": 0.004, "runs": adamw}},
            "peers": {"muon": {"lr": 0.005, "runs": _runs(
                "muon", [_fast(f) for f in (3.81, 3.80, 3.80)], state=700)}},
            "muon": muon}


def test_each_configuration_against_adamw_and_the_peer_with_the_goals_missed():
    rows = {r["optimizer"]: r for r in muon_rows(_results(), GOALS)}
    assert list(rows) == ["lean", "big", "short", "worse", "unrun"]  # the stage's order
    assert rows["short"]["incomplete"] == "2 of 3 seeds"
    assert rows["unrun"]["incomplete"] == "not finished"
    lean = rows["lean"]
    assert lean["delta"] == pytest.approx(3.8033 - 4.0, abs=1e-3) and lean["delta_ci"][1] < 0
    assert lean["peer"]["delta"] == pytest.approx(3.8033 - 3.8033, abs=1e-3)
    assert lean["steps"] == pytest.approx(2 / 3, abs=0.01) and lean["state_pct"] == 8.0
    assert lean["missed"] == [] and rows["big"]["missed"] == ["state"]
    assert rows["worse"]["missed"] == ["peer"]  # below AdamW, clearly above torch's Muon


def test_the_section_names_what_meets_the_goals_and_shows_incomplete_rows_without_numbers():
    lines, _ = muon_section(_results(), GOALS)
    text = "\n".join(lines)
    assert "**Meets every goal: lean (8.0% of AdamW's state, within the 10% stretch).**" in text
    assert "2 of 5 configurations are incomplete" in text
    short, = [line for line in text.splitlines() if line.startswith("| short |")]
    assert "incomplete: 2 of 3 seeds" in short and set(short.split(" | ")[4:-1]) == {"-"}
    strict = {**GOALS, "steps_fraction_max": 0.5}  # the thresholds are the plan's, not the code's
    lines, _ = muon_section(_results(), strict)
    assert "**No configuration meets every goal so far.**" in "\n".join(lines)
    assert "at most 0.5x the steps" in "\n".join(lines)


def test_without_the_peers_runs_no_row_meets_the_peer_goal():
    results = _results()
    del results["peers"]
    lines, rows = muon_section(results, GOALS)
    assert all("peer" in r["missed"] for r in rows if "incomplete" not in r)
    assert any("is not in these results" in line for line in lines)


def test_the_goals_come_from_the_suite_file_and_are_checked(tmp_path):
    assert PLAN.muon_goals == GOALS
    data = json.loads((SUITES_DIR / "standard.json").read_text())
    data["muon_goals"]["state_pct"] = 15
    (tmp_path / "standard.json").write_text(json.dumps(data))
    shutil.copy(SUITES_DIR / "standard.json", tmp_path / "good.json")
    assert load_plan(tmp_path, "good").muon_goals == GOALS
    with pytest.raises(SuiteFileError, match="muon_goals: unknown key.*'state_pct'"):
        load_plan(tmp_path, "standard")
