"""README and docs: tables that report a record are copied from its report; README is short and
its Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from snsm_workbench.util.doc_blocks import render, section_table, stale_pages

ROOT = Path(__file__).resolve().parents[3]


def test_every_block_equals_its_source():
    assert stale_pages(ROOT) == []


def test_a_stale_block_is_found_and_rewritten(tmp_path):
    (tmp_path / "report.md").write_text("# R\n\n## Head\n\ntext\n\n| a |\n|---|\n| 1 |\n\n## Next\n")
    page = tmp_path / "README.md"
    page.write_text("x\n<!-- from: report.md#Head -->\n| a |\n|---|\n| 2 |\n<!-- end -->\ny\n")
    assert stale_pages(tmp_path) == [page]
    stale_pages(tmp_path, write=True)
    assert "| 1 |" in page.read_text() and "| 2 |" not in page.read_text()
    assert stale_pages(tmp_path) == []


def test_a_missing_heading_names_the_file(tmp_path):
    (tmp_path / "report.md").write_text("# R\n")
    with pytest.raises(ValueError, match="report.md: no heading 'Gone'"):
        section_table(tmp_path / "report.md", "Gone")
    with pytest.raises(ValueError, match="no heading"):
        render("<!-- from: report.md#Gone -->\n<!-- end -->", tmp_path)


def test_readme_is_at_most_200_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.DOTALL)


@pytest.mark.parametrize("index", range(len(python_blocks(ROOT / "README.md"))))
def test_readme_python_runs_as_written(index):
    code = python_blocks(ROOT / "README.md")[index]
    assert "..." not in code, "a runnable block holds a placeholder"
    exec(compile(code, f"README.md python block {index}", "exec"), {})
