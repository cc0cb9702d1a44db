"""``snsm demo``: the standard record's tuned optimizers, summarized in a narrow table."""

import json
import math
import re

import pytest

from bench_helpers import write_corpus
from snsm_workbench.bench import demo, demo_record
from snsm_workbench.bench.suite_files import load_suite_file
from snsm_workbench.bench.suites import get_suite
from snsm_workbench.util.paths import repository_root

ROOT = repository_root("the tests of the demo's records")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The demo's code path in seconds: a few steps of small runs, then a rerun."""
    tmp = tmp_path_factory.mktemp("demo")
    base = demo.demo_config(steps=6, eval_every=3, quiet=True, batch_size=4, seq_len=32,
                            vocab_size=300, eval_batches=2,
                            data=str(write_corpus(tmp / "corpus")),
                            cache_dir=str(tmp / "cache"), optimizer_args={"rank": 8})
    rows = demo.run_demo(tmp / "demo", base)
    saved = json.loads((tmp / "demo" / "results.json").read_text())["rows"]
    again = demo.run_demo(tmp / "demo", base)  # finished runs are reused, not retrained
    return tmp / "demo", rows, saved, again


def test_demo_trains_the_suite_and_writes_its_record(smoke):
    out, rows, _, _ = smoke
    by = {row["optimizer"]: row for row in rows}
    assert list(by) == ["adamw", "adamw_snsm", "adamw_snsm_lean", "muon"]
    assert by["adamw"]["steps_ratio_vs_adamw"] == 1.0
    assert by["adamw_snsm_lean"]["state_bytes"] < by["adamw_snsm"]["state_bytes"] < \
        by["muon"]["state_bytes"] < by["adamw"]["state_bytes"]
    # pure-bf16 weights: half the weights' and gradients' bytes
    assert by["adamw_snsm_lean"]["memory"]["weights"] * 2 == by["adamw"]["memory"]["weights"]
    assert by["adamw"]["total_pct_of_adamw"] == 100.0
    assert by["adamw_snsm_lean"]["total_pct_of_adamw"] < by["adamw_snsm"]["total_pct_of_adamw"]
    config = json.loads((out / "adamw_snsm_lean" / "config.json").read_text())["config"]
    assert config["weights"] == "bf16" and config["optimizer_args"]["state_precision"] == "8bit"
    assert json.loads((out / "muon" / "config.json").read_text())["config"]["plain_lr"] == 0.01
    for row in rows:
        assert math.isfinite(row["final_val_loss"]) and row["median_opt_step_ms"] > 0
    for name in ("table.md", "demo.png", "results.json"):
        assert (out / name).is_file()
    assert "| adamw_snsm_lean | 0.02/0.04 |" in (out / "table.md").read_text()


def test_a_rerun_keeps_the_losses_and_the_step_timings(smoke):
    _, _, saved, again = smoke
    kept = ("final_val_loss", "state_bytes", "median_step_s", "median_opt_step_ms")
    assert [{k: r[k] for k in kept} for r in again] == [{k: r[k] for k in kept} for r in saved]
    assert all(r["median_opt_step_ms"] is not None for r in again)


def test_the_table_is_narrow_with_distinct_column_names(smoke):
    _, rows, _, _ = smoke
    titles = [title for title, _ in demo.COLUMNS]
    assert len(set(titles)) == len(titles)
    for markdown in (False, True):
        report = demo.demo_report(rows, 6, markdown=markdown)
        table = report.split("\n\n")[0].splitlines()
        assert len(table) == len(rows) + 2 and max(map(len, table)) <= 100, table
    assert max(map(len, demo.demo_report(rows, 6).splitlines())) <= 100


def test_the_demo_lrs_are_the_standard_records_tuned_ones():
    tuned = demo_record.record_lrs(demo_record.load_record())
    suite = get_suite("demo")
    assert {c.label: (c.lr, c.plain_lr) for c in suite.contenders} == tuned
    assert tuned["adamw"] != (0.003, None)  # not the old paper-style lr
    assert demo.demo_config().vocab_size == load_suite_file("standard")["settings"]["vocab_size"]


def test_the_lean_and_muon_contenders_are_the_records_settings():
    standard = load_suite_file("standard")
    lean = next(level for level in standard["lean"]
                if level["label"] == "adamw_snsm_8bit_pure_bf16")
    by = {c.label: c for c in get_suite("demo").contenders}
    snsm = next(c for c in standard["headline"] if c["label"] == "adamw_snsm")
    assert by["adamw_snsm"].optimizer_args == snsm["optimizer_args"]
    assert by["adamw_snsm_lean"].weights == lean["weights"] == "bf16"
    assert by["adamw_snsm_lean"].optimizer_args == {**snsm["optimizer_args"],
                                                    **lean["optimizer_args"],
                                                    "bf16_update": "stochastic"}
    assert by["muon"].optimizer == "muon" and by["muon"].route == "hidden"
    assert by["muon"].optimizer_args == {"shape_scale": "match_rms_adamw"}


def _headline_row(report: str, label: str) -> list[str]:
    line = next(line for line in report.splitlines() if line.startswith(f"| {label} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_records_sentence_agrees_with_the_record():
    record = demo_record.load_record()
    sentence = demo_record.record_sentence(record)
    report = (ROOT / demo_record.STANDARD_RECORD / "report.md").read_text()
    assert "benchmarks/records/2026-11-29-standard/report.md" in sentence
    for label in ("adamw_sn", "adamw_snsm"):
        assert _headline_row(report, label)[-1] == "level"
        assert f"{_headline_row(report, label)[-2]}%" in sentence  # state % of AdamW
    muon = _headline_row(report, "muon")
    assert muon[-1] == "clearly fewer steps" and f"{muon[-2]}%" in sentence
    low, high = map(float, re.search(r"\[([-+.\d]+), ([-+.\d]+)\]", muon[4]).groups())
    assert low < high < 0  # clearly lower loss
    assert "level with tuned AdamW" in sentence and "clearly better" in sentence


def test_the_spread_sentence_takes_adamws_seed_sd_from_the_record():
    record = demo_record.load_record()
    report = (ROOT / demo_record.STANDARD_RECORD / "report.md").read_text()
    sd = float(_headline_row(report, "adamw")[3].split("±")[1])
    sentence = demo_record.spread_sentence(record, 200)
    assert f"varies by {sd:.3f} (sd)" in sentence and "one seed of 200 steps" in sentence


def test_the_muon_sentence_finds_where_the_records_muon_leads_for_good():
    record = {"headline": {"adamw": {"runs": [{"steps": [0, 10, 20, 30],
                                               "val_loss": [5.0, 4.0, 3.5, 3.0]}]}},
              "peers": {"muon": {"runs": [{"steps": [0, 10, 20, 30],
                                           "val_loss": [5.0, 3.9, 3.6, 2.9]}]}}}
    assert "from step 30 of 30 on" in demo_record.muon_sentence(record)
    assert "from step 350 of 1000 on" in demo_record.muon_sentence(demo_record.load_record())


def test_the_table_gives_the_records_final_loss_of_each_configuration(smoke):
    _, rows, _, _ = smoke
    record = demo_record.load_record()
    table = demo.demo_report(rows, 6, markdown=True)
    for label, (stage, source) in demo_record.RECORD_RUNS.items():
        runs = record[stage][source]
        runs = runs if isinstance(runs, list) else runs["runs"]
        mean = sum(run["val_loss"][-1] for run in runs) / len(runs)
        assert f"| {label} | " in table and f"| {mean:.4f} |" in table, label
    muon, adamw = (demo_record.record_final(record, label) for label in ("muon", "adamw"))
    assert muon < adamw  # the record's verdict, which a 200-step demo does not show


def test_the_figure_redraws_from_results_alone(smoke, tmp_path):
    out, _, _, _ = smoke
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("results.json",):
        (copy / name).write_bytes((out / name).read_bytes())
    demo.redraw(copy)
    assert (copy / "demo.png").stat().st_size > 0
    assert (copy / "table.md").read_text() == (out / "table.md").read_text()
    curves = json.loads((copy / "results.json").read_text())["curves"]
    assert set(curves) == {"adamw", "adamw_snsm", "adamw_snsm_lean", "muon"}
    assert all(len(curve["val"]) == 3 and len(curve["train"]) == 6 for curve in curves.values())


def test_the_committed_records_table_is_generated_from_its_results():
    record = ROOT / "benchmarks" / "records" / "2026-12-02-demo"
    results = json.loads((record / "results.json").read_text())
    assert (record / "table.md").read_text() == \
        demo.demo_report(results["rows"], results["config"]["steps"], markdown=True) + "\n"
    assert results["config"]["steps"] == get_suite("demo").steps


def test_a_run_folder_of_an_earlier_demo_with_other_settings_is_trained_afresh(smoke, caplog):
    out, _, saved, _ = smoke
    config = json.loads((out / "adamw" / "config.json").read_text())["config"]
    base = demo.demo_config(steps=6, eval_every=3, quiet=True, batch_size=3, seq_len=32,
                            vocab_size=300, eval_batches=2, data=config["data"],
                            cache_dir=config["cache_dir"], optimizer_args={"rank": 8})
    with caplog.at_level("WARNING"):
        rows = demo.run_demo(out, base)
    assert caplog.text.count("trained with other settings") == 4
    assert json.loads((out / "adamw" / "config.json").read_text())["config"]["batch_size"] == 3
    assert [r["final_val_loss"] for r in rows] != [r["final_val_loss"] for r in saved]
