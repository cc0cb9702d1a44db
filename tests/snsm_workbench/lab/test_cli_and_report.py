"""The CLI's JSON output, the files it writes, and the mechanical verdict."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from snsm_workbench.lab import EXPERIMENTS, run
from snsm_workbench.lab.report import Question, Result, format_cell, in_range
from snsm_workbench.util.tables import markdown_table

KEYS = {"experiment", "claim", "figure", "expected", "verdict"}


def test_all_quick_json_has_every_experiment_and_keys(quick_results):
    assert list(quick_results) == list(EXPERIMENTS)
    for name, item in quick_results.items():
        assert KEYS <= set(item), name
        assert item["verdict"] in ("holds", "fails")
        assert item["claim"] and item["expected"], name
        assert set(item["expected"]) <= set(item["figure"]), name


def test_verdict_is_holds_exactly_when_every_expected_range_contains_its_figure(quick_results):
    for name, item in quick_results.items():
        inside = [in_range(float(item["figure"][k]), tuple(v))
                  for k, v in item["expected"].items()]
        assert (item["verdict"] == "holds") == all(inside), name
        assert item["checks"] == dict(zip(item["expected"], inside)), name


def test_each_experiment_writes_a_csv_and_a_png(quick_results, lab_out):
    for name, item in quick_results.items():
        csv_path, png_path = (Path(p) for p in item["files"])
        assert csv_path == lab_out / f"{name}.csv" and png_path == lab_out / f"{name}.png"
        assert len(csv_path.read_text().splitlines()) >= 3
        assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_in_range_handles_open_bounds_and_nan():
    assert in_range(3.0, (None, 3.0)) and in_range(3.0, (3.0, None))
    assert not in_range(3.1, (None, 3.0)) and not in_range(2.9, (3.0, None))
    assert not in_range(math.nan, (None, None)) and not in_range(math.inf, (0.0, None))


def test_result_rejects_ranges_for_unmeasured_figures():
    with pytest.raises(ValueError, match="unmeasured"):
        Result("x", "claim", {"a": 1.0}, {"b": (0.0, 1.0)}, [])


def test_failing_figure_gives_fails():
    result = Result("x", "claim", {"a": 2.0, "b": 0.5}, {"a": (0.0, 1.0), "b": (0.0, 1.0)},
                    [{"a": 2.0}])
    assert result.verdict == "fails" and result.checks == {"a": False, "b": True}
    assert "OUT" in result.summary() and markdown_table(result.rows, cell=format_cell).startswith("| a |")


def test_each_question_gets_its_own_verdict():
    questions = [Question("claim", "in range?", ("a", "b")), Question("finding", "how?", ("c",))]
    result = Result("x", "claim", {"a": 0.5, "b": 2.0, "c": 9.0},
                    {"a": (0.0, 1.0), "b": (0.0, 1.0)}, [{"a": 0.5}], questions=questions)
    assert [result.question_verdict(q) for q in questions] == ["fails", "reported"]
    item = result.to_json()
    assert [(q["name"], q["verdict"]) for q in item["questions"]] == [("claim", "fails"),
                                                                      ("finding", "reported")]
    assert "question finding: how? -> reported" in result.summary()
    with pytest.raises(ValueError, match="questions must own measured figures"):
        Result("x", "claim", {"a": 1.0}, {}, [], questions=[Question("q", "?", ("z",))])
    with pytest.raises(ValueError, match="questions must own measured figures"):
        Result("x", "claim", {"a": 1.0}, {}, [], questions=questions[:1] * 2)


def test_question_verdicts_in_the_quick_json_follow_their_ranges(quick_results):
    for name, item in quick_results.items():
        for question in item.get("questions", []):
            ranged = [k for k in question["figures"] if k in item["expected"]]
            expected = ("reported" if not ranged else
                        "holds" if all(item["checks"][k] for k in ranged) else "fails")
            assert question["verdict"] == expected, (name, question["name"])


def test_unknown_experiment_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        run("nope", quick=True, out=tmp_path)


def test_human_readable_output_of_one_experiment(tmp_path, capsys):
    from snsm_workbench.cli import main

    assert main(["lab", "memory-sample", "--quick", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "claim:" in text and "verdict:" in text and "kaczmarz_slope" in text
