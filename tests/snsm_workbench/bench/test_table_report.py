import json
from pathlib import Path

import pytest

from snsm_workbench.bench.table_report import ROW_KEYS, load_results, render_markdown, write_report

FAKE = Path(__file__).with_name("fake_results.json")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_from_a_fixed_results_file(tmp_path):
    paths = write_report(load_results(FAKE), tmp_path)
    assert {p.name for p in paths} == {"report.md", "val_loss.png", "pareto.png"}
    for name in ("val_loss.png", "pareto.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC)
    text = (tmp_path / "report.md").read_text()
    assert "| adamw_snsm | 0.03 | 4.7000 ± 0.0300 | 109.95 | 50 | 0.5 | 10.00 | 50.0 |" in text
    assert "| lion | 0.0003 | diverged | - | never | - |" in text
    assert "- adamw8bit: bitsandbytes is not installed" in text
    assert "| adamw | 20 | 0.001: 6.1000, 0.003: 5.9000, 0.01: diverged | 0.003 |" in text
    assert "| galore | pytorch-optimizer | 4.1.0 | Apache-2.0 |" in text


def test_the_report_states_measurements_and_judges_no_goal():
    text = render_markdown(load_results(FAKE))
    assert "## Results" in text and "## Learning rates" in text
    assert "goal" not in text.lower() and "met" not in text.split()


def test_report_rejects_rows_without_the_required_keys(tmp_path):
    results = json.loads(FAKE.read_text())
    del results["rows"][1]["steps_to_adamw_final"]
    with pytest.raises(ValueError, match="steps_to_adamw_final"):
        write_report(results, tmp_path)
    with pytest.raises(ValueError, match="non-empty list 'rows'"):
        write_report({"rows": []}, tmp_path)
    assert set(ROW_KEYS) <= set(json.loads(FAKE.read_text())["rows"][0])


def test_each_row_is_tested_against_adamw_and_clearly_only_past_the_bar():
    """Welch from mean, sd and seeds; one seed against AdamW's three: the single-case test."""
    from snsm_workbench.bench.table_report import against_adamw_rows
    from snsm_workbench.bench.statistics import welch_from_summary

    rows = load_results(FAKE)["rows"]
    by_label = {r["optimizer"]: r for r in against_adamw_rows(rows)}
    assert "adamw" not in by_label and by_label["lion"]["test"] is None  # diverged
    snsm = by_label["adamw_snsm"]["test"]
    assert snsm.design == "welch" and snsm.bounds == welch_from_summary(4.7, 0.03, 3,
                                                                        5.0, 0.02, 3).bounds
    assert by_label["galore"]["test"].design == "single"
    text = render_markdown(load_results(FAKE))
    assert "| adamw_snsm | 3 | -0.3000 [" in text and "| Welch |" in text
    tested = [line for line in text.splitlines() if "| Welch |" in line]
    assert any(line.startswith("| adamw_snsm |") and line.endswith("| clearly lower loss |")
               for line in tested)
    # a lead whose interval spans zero is not called clear
    near = [dict(r, final_val_loss=4.99, final_val_loss_std=0.05) if r["optimizer"] == "adamw_sn"
            else r for r in rows]
    assert "| adamw_sn | 3 | -0.0100 [" in render_markdown({"rows": near}) \
        and "lead, not clear" in render_markdown({"rows": near})
    one_seed = [dict(r, seeds=1) for r in rows]
    assert "One seed each: no interval" in render_markdown({"rows": one_seed})
