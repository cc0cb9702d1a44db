"""``snsm docs``: the lab's tables and the doc blocks rewritten from their records;
``--check`` lists the stale files and exits 1."""

from __future__ import annotations

import shutil
from pathlib import Path

from snsm_workbench.cli import main

ROOT = Path(__file__).resolve().parents[3]
REPORT = "# R\n\n## Head\n\n| a |\n|---|\n| 1 |\n"
STALE_PAGE = "x\n<!-- from: report.md#Head -->\n| a |\n|---|\n| 2 |\n<!-- end -->\n"


def test_the_repository_has_no_stale_table(capsys):
    assert main(["docs", "--check", "--root", str(ROOT)]) == 0
    assert "stale" not in capsys.readouterr().out


def test_check_lists_a_stale_block_and_exits_1_then_docs_rewrites_it(tmp_path, capsys):
    (tmp_path / "report.md").write_text(REPORT)
    page = tmp_path / "README.md"
    page.write_text(STALE_PAGE)
    assert main(["docs", "--check", "--root", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines() == [f"stale: {page}"]
    assert page.read_text() == STALE_PAGE  # --check rewrites nothing
    assert main(["docs", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"rewrote: {page}"]
    assert "| 1 |" in page.read_text() and "| 2 |" not in page.read_text()
    assert main(["docs", "--check", "--root", str(tmp_path)]) == 0


def test_the_lab_tables_are_written_from_the_lab_record_before_the_pages(tmp_path, capsys):
    lab = tmp_path / "docs" / "lab"
    lab.mkdir(parents=True)
    for path in (ROOT / "docs" / "lab").glob("*.csv"):
        shutil.copy(path, lab)
    shutil.copy(ROOT / "docs" / "lab" / "results.json", lab)
    page = tmp_path / "docs" / "page.md"
    page.write_text("<!-- from: docs/lab/tables.md#Overview -->\n<!-- end -->\n")
    assert main(["docs", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"rewrote: {lab / 'tables.md'}",
                                                   f"rewrote: {page}"]
    assert (lab / "tables.md").read_text() == (ROOT / "docs" / "lab" / "tables.md").read_text()
    assert "| [`subset-norm`](#subset-norm) | holds" in page.read_text()
    (lab / "tables.md").write_text("# edited by hand\n")
    assert main(["docs", "--check", "--root", str(tmp_path)]) == 1
    assert f"stale: {lab / 'tables.md'}" in capsys.readouterr().out


def test_a_root_that_is_not_a_folder_is_one_error_line(tmp_path, capsys):
    assert main(["docs", "--check", "--root", str(tmp_path / "gone")]) == 2
    assert capsys.readouterr().err == f"snsm: error: --root {tmp_path / 'gone'}: not a folder\n"
