"""README and docs: tables that report a record are copied from its files, and README is short
(that every code block runs: tests/snsm_workbench/test_docs_run.py)."""

from __future__ import annotations

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


def test_a_table_md_without_heading_gives_its_first_table(tmp_path):
    (tmp_path / "table.md").write_text("| a |\n|---|\n| 1 |\n\ntext\n")
    page = "<!-- from: table.md -->\nold\n<!-- end -->\n"
    assert render(page, tmp_path) == "<!-- from: table.md -->\n| a |\n|---|\n| 1 |\n<!-- end -->\n"


def test_a_command_section_of_a_text_output_is_fenced(tmp_path):
    (tmp_path / "output.txt").write_text("$ snsm a --x 1\nA\n  B\n\n$ snsm b\nC\n")
    page = "<!-- from: output.txt#$ snsm a --x 1 -->\n<!-- end -->"
    assert render(page, tmp_path) == (
        "<!-- from: output.txt#$ snsm a --x 1 -->\n```\nA\n  B\n```\n<!-- end -->")
    last = "<!-- from: output.txt#$ snsm b -->\n<!-- end -->"
    assert "```\nC\n```\n" in render(last, tmp_path)
    with pytest.raises(ValueError, match="output.txt: no line '\\$ snsm c'"):
        render("<!-- from: output.txt#$ snsm c -->\n<!-- end -->", tmp_path)


def test_a_whole_text_file_is_fenced(tmp_path):
    (tmp_path / "output.txt").write_text("x: 1.0\ny: 2.0\n")
    page = "<!-- from: output.txt -->\nstale\n<!-- end -->"
    assert render(page, tmp_path) == "<!-- from: output.txt -->\n```\nx: 1.0\ny: 2.0\n```\n<!-- end -->"


def test_a_missing_source_or_a_heading_in_a_text_output_is_named(tmp_path):
    with pytest.raises(ValueError, match="gone.txt: no such file"):
        render("<!-- from: gone.txt -->\n<!-- end -->", tmp_path)
    (tmp_path / "output.txt").write_text("x\n")
    with pytest.raises(ValueError, match="output.txt: a text output's block names"):
        render("<!-- from: output.txt#Heading -->\n<!-- end -->", tmp_path)


def test_a_csv_file_is_a_markdown_table_to_4_significant_digits(tmp_path):
    (tmp_path / "lab.csv").write_text("name,rank,value\nsgd,,0.479188434779644\nsm,8,12304.0\n")
    assert render("<!-- from: lab.csv -->\n<!-- end -->", tmp_path) == (
        "<!-- from: lab.csv -->\n| name | rank | value |\n|---|---|---|\n| sgd |  | 0.4792 |\n"
        "| sm | 8 | 12304 |\n<!-- end -->")
