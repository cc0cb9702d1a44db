"""The committed records' reports rebuild from their results and runs with --cached-only,
unchanged, and without training (a cached-only pool raises on any missing run)."""

import shutil
from pathlib import Path

import pytest

from snsm_workbench.cli import main

RECORDS = Path(__file__).resolve().parents[3] / "benchmarks" / "records"
SHORT = [("quick", "2026-11-29-quick"), ("finetune", "2026-11-29-finetune"),
         ("finetune", "2026-11-30-finetune")]


@pytest.mark.parametrize("suite, name", SHORT + [("standard", "2026-11-29-standard")])
def test_a_committed_record_rebuilds_its_report_unchanged(tmp_path, suite, name):
    record = tmp_path / name
    shutil.copytree(RECORDS / name, record)
    (record / "report.md").unlink()
    code = main(["bench", "--suite", suite, "--cached-only", "--threads", "1", "--workers", "1",
                 "--out", str(record), "--work", str(tmp_path / "work")])
    assert code == 0
    assert (record / "report.md").read_text() == (RECORDS / name / "report.md").read_text()
    assert not (tmp_path / "work" / "runs").exists()  # nothing trained


def test_cached_only_without_a_record_is_one_clear_error(tmp_path, capsys):
    assert main(["bench", "--suite", "quick", "--cached-only", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--cached-only: no" in err and "results.json" in err
