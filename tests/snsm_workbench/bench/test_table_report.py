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
