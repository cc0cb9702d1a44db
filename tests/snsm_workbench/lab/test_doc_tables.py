"""The lab's tables for docs/lab.md, rendered from a lab record (results.json and CSVs)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from snsm_workbench.lab import doc_tables
from snsm_workbench.lab.doc_tables import (adagrad_variants_perplexities, figures_table,
                                           high_probability_tail, overview, parse_cell,
                                           read_record, render_tables, stale_tables)

ROOT = Path(__file__).resolve().parents[3]
RECORD = {"experiment": "toy", "verdict": "fails", "seconds": 12.5,
          "figure": {"slope": -0.51234, "spread": 4.0, "count": 3},
          "expected": {"slope": [-0.7, -0.3], "spread": [None, 2.0]},
          "checks": {"slope": True, "spread": False},
          "questions": [{"name": "rate", "verdict": "holds", "figures": ["slope"]}]}


def table_rows(table: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")]
            for line in table.splitlines()[2:]]


def test_cells_of_a_csv_are_parsed_as_the_lab_wrote_them():
    assert [parse_cell(text) for text in ("", "True", "False", "0.5", "1e-05", "sgd")] == [
        None, True, False, 0.5, 1e-05, "sgd"]


def test_the_figures_table_marks_each_range():
    assert table_rows(figures_table(RECORD)) == [
        ["`slope`", "-0.5123", "[-0.7, -0.3]", "yes"],
        ["`spread`", "4", "[-inf, 2]", "**no**"],
        ["`count`", "3", "(reported)", ""]]
    assert len(table_rows(figures_table(RECORD, ["slope"]))) == 1


def test_the_overview_names_each_questions_verdict():
    assert table_rows(overview([RECORD])) == [
        ["[`toy`](#toy)", "fails (rate: holds)", "12.5"]]


def test_perplexity_is_the_exp_of_the_mean_loss_of_the_measuring_seeds():
    rows = [{"variant": "a", "role": "tune", "lr": 0.1, "seed": 0.0, "val_loss": 9.0,
             "val_ppl": math.exp(9.0)},
            *({"variant": "a", "role": "measure", "lr": 0.1, "seed": float(seed),
               "val_loss": loss, "val_ppl": math.exp(loss)}
              for seed, loss in ((1, 1.0), (2, 3.0)))]
    table = adagrad_variants_perplexities({}, rows)
    assert table.splitlines()[0] == "| variant | ppl lr=0.1 | lr | ppl seeds 1, 2 | ppl (geo. mean) |"
    assert table_rows(table)[0][-1] == f"{math.exp(2.0):.4g}"


def test_the_tail_is_taken_at_the_largest_sigma_and_T():
    rows = [{"method": "sgd", "sigma": sigma, "T": steps, "q0.5": sigma + steps, "q0.9": 1.0}
            for sigma in (0.0, 1.0) for steps in (100.0, 200.0)]
    table = high_probability_tail({}, rows)
    assert table.splitlines()[0] == "| method (sigma = 1, T = 200) | q0.5 | q0.9 |"
    assert table_rows(table) == [["sgd", "201", "1"]]


def test_the_committed_tables_are_those_of_the_committed_record():
    folder = ROOT / "docs" / "lab"
    assert stale_tables(folder) == []
    assert (folder / doc_tables.TABLES).read_text() == render_tables(folder)


def test_a_missing_or_malformed_record_is_named(tmp_path):
    with pytest.raises(ValueError, match="results.json: no such file"):
        read_record(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"experiment": "x"}))
    with pytest.raises(ValueError, match="results.json: expected a JSON list"):
        read_record(tmp_path)


def test_a_stale_tables_file_is_rewritten(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps([RECORD]))
    assert stale_tables(tmp_path, write=True) == [tmp_path / "tables.md"]
    assert "## toy: figures of rate" in (tmp_path / "tables.md").read_text()
    assert stale_tables(tmp_path) == []
