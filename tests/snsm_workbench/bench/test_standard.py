"""``snsm bench --suite standard --smoke``: the whole staged protocol on generated corpora."""

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snsm_workbench.bench.comparison import with_measured_state
from snsm_workbench.bench.stage_plan import PLAN, Settings
from snsm_workbench.bench.staged_report import _decomposition_section
from snsm_workbench.bench.staged_suite import StagedSuite

from snsm.optim.registry import OPTIMIZERS
from snsm_workbench.cli import main

STAGES = tuple(stage for stage in PLAN.stages if stage != "muon")  # muon: its own test
MUON_FAMILY = ("muon", "muon_sn", "muon_sm", "muon_snsm")


@pytest.fixture(scope="module")
def smoke_record(tmp_path_factory):
    root = tmp_path_factory.mktemp("standard")
    args = ["bench", "--suite", "standard", "--smoke", "--out", str(root / "record"),
            "--work", str(root / "work"), "--cache-dir", str(root / "cache"),
            "--stages", ",".join(STAGES)]
    assert main(args) == 0
    return root, args


def test_every_stage_runs_and_the_protocol_holds(smoke_record):
    root, _ = smoke_record
    record = root / "record"
    results = json.loads((record / "results.json").read_text())
    assert set(STAGES) <= set(results) and results["computed_runs"] > 0
    settings = results["settings"]
    for stage in ("headline", "peers", "decomposition"):
        for label, tuned in results[stage].items():
            grid = {float(k) for k in tuned["grid"]}
            confirm = {float(k) for k in tuned["confirm"]}
            assert len(grid) >= 5 and tuned["lr"] in confirm, label
            if tuned["grid_edge"] is None:  # an interior best has both neighbours confirmed
                assert len(confirm) >= 3, label
            if tuned["confirm_edge"] is None:  # and the confirmed best is interior too
                ordered = sorted(confirm)
                assert ordered[0] < tuned["lr"] < ordered[-1], label
            assert all(run["steps"][-1] == settings["full_steps"] for run in tuned["runs"])
    for label in ("adamw", "adamw_sn", "adamw_snsm"):
        assert len(results["headline"][label]["runs"]) == settings["seeds"]
        assert results["headline"][label]["plain_grid"] is not None  # AdamW's too
    muon = results["peers"]["muon"]  # a peer with a plain group tunes it too, on its own grid
    assert muon["plain_grid"] is not None and float(next(iter(muon["plain_grid"]))) > 0
    assert results["peers"]["adafactor"]["plain_grid"] is None
    adamw = results["headline"]["adamw"]
    plain = adamw["plain_lr"] or adamw["lr"]
    for label, tuned in results["decomposition"].items():
        if label != "adamw":  # every ingredient at AdamW's plain-group lr
            assert tuned["plain_grid"] is None
            assert all(run["key"]["plain_lr"] in (plain, None) for run in tuned["runs"])
    _check_search(results)
    _check_state(results)
    report = (record / "report.md").read_text()
    assert "Every long run recorded the same size." in report
    for section in ("## Headline", "## Each ingredient isolated", "## Memory at equal quality",
                    "## The method at its best",
                    "## Other corpora", "## Scale trend", "## Lean levels",
                    "Subspace-Momentum alone"):
        assert section in report
    assert (record / "sensitivity.png").is_file() and (record / "scale.png").is_file()


def _check_search(results):
    """Each variant at the default's lrs and full horizon; seeded iff within noise."""
    default = results["headline"]["adamw_snsm"]
    finals = [run["val_loss"][-1] for run in default["runs"]]
    sd = statistics.stdev(finals)
    settings = results["settings"]
    assert {found["knob"] for found in results["search"].values()} == {"rank", "plain"}
    for label, found in results["search"].items():
        runs = found["runs"]
        assert all(run["key"]["lr"] == default["lr"] for run in runs), label
        assert all(run["steps"][-1] == settings["full_steps"] for run in runs), label
        plain = [run["key"]["plain_lr"] for run in runs]
        assert plain == [None if found["knob"] == "plain" else default["plain_lr"]] * len(runs)
        within = runs[0]["val_loss"][-1] <= finals[0] + sd
        assert len(runs) == (settings["seeds"] if within else 1), label
    assert results["search"]["adamw_snsm_rank_16"]["optimizer_args"]["rank"] == 16


def _check_state(results):
    """Every configuration's 1-step state is what its long runs recorded (a state does not
    grow with the horizon); the scale and corpora runs are not measured again."""
    labels = {*results["headline"], *results["peers"], *results["decomposition"],
              *results["search"], *results["lean"]}
    assert set(results["state"]) == labels
    for stage in ("headline", "peers", "decomposition", "search"):
        for label, row in results[stage].items():
            assert {run["state_bytes"] for run in row["runs"]} == {results["state"][label]}
    for label, runs in results["lean"].items():
        assert {run["state_bytes"] for run in runs} == {results["state"][label]}


def test_the_report_shows_the_measured_state_and_names_what_changed():
    run = {"key": {"label": "adamw_snsm", "preset": "tiny"}, "state_bytes": 480}
    wider = {"key": {"label": "adamw_snsm", "preset": "small"}, "state_bytes": 1900}
    results = {"settings": {"preset": "tiny"}, "headline": {"adamw_snsm": {"runs": [run]}},
               "search": {"x": {"runs": [run]}}, "scale": {"small": {"adamw_snsm": [wider]}},
               "state": {"adamw_snsm": 346}}
    restated, changed = with_measured_state(results)
    assert restated["headline"]["adamw_snsm"]["runs"][0]["state_bytes"] == 346
    assert restated["search"]["x"]["runs"][0]["state_bytes"] == 346
    assert restated["scale"]["small"]["adamw_snsm"][0]["state_bytes"] == 1900  # another model
    assert run["state_bytes"] == 480 and changed == {"adamw_snsm": (480, 346)}
    assert with_measured_state({**results, "state": {}})[1] == {}


def test_a_rerun_reuses_every_run_and_recomputes_a_missing_one(smoke_record):
    root, args = smoke_record
    record = root / "record"
    before = json.loads((record / "results.json").read_text())
    one = next((record / "runs").rglob("seed1.json"))
    one.unlink()
    assert main(args) == 0
    after = json.loads((record / "results.json").read_text())
    assert after["computed_runs"] == 1 and one.is_file()
    for stage in STAGES:
        assert _without_wall_time(after[stage]) == _without_wall_time(before[stage]), stage


def _without_wall_time(value):
    """The results with every run's wall time left out (a recomputed run takes its own)."""
    if isinstance(value, dict):
        return {k: _without_wall_time(v) for k, v in value.items() if k != "wall_s"}
    if isinstance(value, list):
        return [_without_wall_time(v) for v in value]
    return value


def test_runs_made_with_other_settings_are_refused(smoke_record, tmp_path):
    root, _ = smoke_record
    other = Settings.smoke("data", "second", str(tmp_path))
    with pytest.raises(ValueError, match="other settings"):
        StagedSuite(other, root / "record", tmp_path / "work")


def test_unknown_stages_are_refused_before_anything_runs(tmp_path, capsys):
    code = main(["bench", "--suite", "standard", "--stages", "headline,nope",
                 "--out", str(tmp_path / "r")])
    assert code == 2 and "nope" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_cached_only_reports_finished_stages_and_lists_the_rest(smoke_record, tmp_path):
    root, args = smoke_record
    record = root / "record"
    lean_run = next((record / "runs").rglob("adamw_snsm_8bit/*/*/seed0.json"))
    kept = lean_run.read_text()
    lean_run.unlink()
    try:
        assert main([*args, "--cached-only"]) == 0
        results = json.loads((record / "results.json").read_text())
        assert results["computed_runs"] == 0 and not lean_run.exists()
        assert list(results["incomplete"]) == ["lean"] and "lean" not in results
        assert "headline" in results and "scale" in results
        assert "Stages not finished yet" in (record / "report.md").read_text()
    finally:
        lean_run.write_text(kept)
    empty = ["bench", "--suite", "standard", "--smoke", "--cached-only",
             "--out", str(tmp_path / "empty"), "--work", str(tmp_path / "work"),
             "--cache-dir", str(root / "cache")]
    assert main(empty) == 0
    results = json.loads((tmp_path / "empty" / "results.json").read_text())
    assert "headline" in results["incomplete"] and "headline" not in results
    assert (tmp_path / "empty" / "report.md").read_text().startswith("# Standard suite: incomplete")


def test_sigterm_stops_the_suite_and_its_workers(tmp_path):
    """The stages wait on each other in threads: a signal must abort the pool, not wait for
    the rest of the suite (it used to go on training until every stage was done)."""
    out = tmp_path / "record"
    command = [sys.executable, "-m", "snsm_workbench", "bench", "--suite", "standard", "--smoke",
               "--out", str(out), "--work", str(tmp_path / "work"),
               "--cache-dir", str(tmp_path / "cache"), "--stages", ",".join(STAGES)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    runs = out / "runs"
    deadline = time.monotonic() + 300  # guards against a hang; nothing is timed
    while not any(runs.rglob("seed0.json")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    workers = _children(process.pid)
    assert workers, "the pool's worker processes"
    finished = len(list(runs.rglob("seed*.json")))
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 128 + signal.SIGTERM, err.decode()[-2000:]
    assert not (out / "results.json").exists()
    # at most the runs already past their last step when the signal came (one per worker)
    assert len(list(runs.rglob("seed*.json"))) <= finished + len(workers)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)


@pytest.mark.skipif(not set(MUON_FAMILY) <= set(OPTIMIZERS), reason="optimizer not registered")
def test_the_muon_stage_tunes_ours_fairly_and_runs_its_lean_levels(tmp_path):
    """Issue 23's stage in seconds: ours ``muon`` (labelled apart from torch's peer) through the
    whole protocol, a lean level at its base's lrs, one that retunes its plain group, and the
    1-step state of each."""
    record = tmp_path / "record"
    assert main(["bench", "--suite", "standard", "--smoke", "--stages", "headline,muon",
                 "--out", str(record), "--work", str(tmp_path / "work"),
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    results = json.loads((record / "results.json").read_text())
    muon, seeds = results["muon"], results["settings"]["seeds"]
    assert list(muon) == list(PLAN.smoke.muon_labels) and "muon" not in muon
    for label in ("snsm_muon", "muon_sm_r32"):  # entries: the headline's protocol
        tuned = muon[label]
        assert len(tuned["grid"]) >= 5 and tuned["plain_grid"] and tuned["lr"] in {
            float(k) for k in tuned["confirm"]}, label
        assert len(tuned["runs"]) == seeds
        assert all(run["key"]["label"] == label for run in tuned["runs"])
    retuned = muon["muon_sm_r32_8bit_aux_sn8"]  # a lean aux group: its plain lr searched again
    assert retuned["lr"] == muon["muon_sm_r32"]["lr"] and retuned["plain_grid"]
    bf16 = muon["muon_sm_r32_8bit_aux_sn8_pure_bf16"]  # a level of a level: its lrs
    assert (bf16["lr"], bf16["plain_lr"]) == (retuned["lr"], retuned["plain_lr"])
    assert bf16["grid"] == {} and len(bf16["runs"]) == seeds
    assert set(muon) <= set(results["state"]) and all(results["state"][k] > 0 for k in muon)
    assert results["state"]["muon_sm_r32_8bit_aux_sn8"] < results["state"]["muon_sm_r32"]
    saved = json.loads(next((record / "runs").rglob("snsm_muon/*/*/seed0.json")).read_text())
    assert saved["identity"]["contender"]["optimizer"] == "muon"
    assert saved["identity"]["config"]["optimizer_args"]["shape_scale"] == "match_rms_adamw"
    report = (record / "report.md").read_text()  # the Lean Muon section, one row each
    section = report[report.index("## Lean Muon"):report.index("## Memory at equal quality")]
    assert all(f"| {label} | " in section for label in muon)
    assert "not in these results" in section and "goals missed" in section  # no peers stage
    idle, = [line for line in section.splitlines() if line.startswith("Defined in the suite")]
    assert "muon_sn, " in idle and "snsm_muon," not in idle  # items the smoke run leaves out
    headline = report[report.index("## Headline"):report.index("## Tuning")]
    assert all(f"| {label} | " in headline for label in muon)  # the headline gains the rows
    _a_stage_in_progress_reports_its_finished_items(record, tmp_path, results)


def _a_stage_in_progress_reports_its_finished_items(record, tmp_path, finished):
    """--cached-only with one of muon_sm_r32's seeds gone: that entry and the levels built on
    it are "not finished"; the others keep their results (the stage used to vanish whole)."""
    next((record / "runs").rglob("muon_sm_r32/*/*/seed1.json")).unlink()
    (record / "report.md").unlink()
    assert main(["bench", "--suite", "standard", "--smoke", "--cached-only", "--stages",
                 "headline,muon", "--out", str(record), "--work", str(tmp_path / "work"),
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    muon = json.loads((record / "results.json").read_text())["muon"]
    unfinished = {label for label, tuned in muon.items() if tuned is None}
    assert unfinished == {label for label in muon if label.startswith("muon_sm_r32")}
    assert muon["snsm_muon"] == finished["muon"]["snsm_muon"]
    report = (record / "report.md").read_text()
    assert "| muon_sm_r32 | - | - | incomplete: not finished |" in report
    assert "| snsm_muon | " in report and "configurations are incomplete" in report
    headline = report[report.index("## Headline"):report.index("## Tuning")]
    assert "| snsm_muon | " in headline and "| muon_sm_r32 | " not in headline


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    """Running (a zombie left for init to reap counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def _runs(finals, label):
    return [{"steps": [50, 100], "val_loss": [final + 1, final], "state_bytes": 100,
             "key": {"label": label}} for final in finals]


@pytest.mark.parametrize("snsm_finals, shares", [
    ((4.5, 4.52, 4.48), ["0.00", "0.50", "1.00"]),  # a clear gap: shares of it
    ((4.0, 4.03, 3.98), ["-", "-", "-"]),  # a gap inside the noise: no shares
])
def test_ingredient_shares_only_of_a_gap_outside_the_noise(snsm_finals, shares):
    decomposition = {"adamw": {"runs": _runs((4.0, 4.01, 3.99), "adamw"), "lr": 1e-3},
                     "adamw_sn": {"runs": _runs((4.25, 4.26, 4.24), "adamw_sn"), "lr": 1e-2},
                     "adamw_snsm": {"runs": _runs(snsm_finals, "adamw_snsm"), "lr": 1e-2}}
    lines = _decomposition_section(decomposition, 100, 100)
    table = [line for line in "\n".join(lines).splitlines() if "(adamw" in line]
    assert [line.split(" | ")[-2] for line in table] == shares
    assert any("inside the noise" in line for line in lines) == (shares[0] == "-")
