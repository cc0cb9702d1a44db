import math
import sys

import pytest

from snsm_workbench.train.plots import plot_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def records(steps=30, eval_every=10, scale=1.0, evals=True):
    """Metric records as the loop writes them: one per step, one per evaluation."""
    out = [{"step": 0, "tokens": 0, "val_loss": 9.0, "val_ppl": math.exp(9.0)}] if evals else []
    for step in range(1, steps + 1):
        loss = 3 + 6 * math.exp(-scale * step / 10)
        out.append({"step": step, "tokens": 512 * step, "loss": loss, "lr": 1e-3})
        if evals and step % eval_every == 0:
            out.append({"step": step, "tokens": 512 * step, "val_loss": loss + 0.1})
    return out


def assert_png(path):
    assert path.is_file() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_one_run(tmp_path):
    path = plot_curves({"adamw": records()}, tmp_path / "curves.png")
    assert path == tmp_path / "curves.png"
    assert_png(path)


def test_several_runs_one_without_eval_records(tmp_path):
    runs = {"adamw": records(), "adamw_sn": records(scale=1.3),
            "adamw_snsm": records(scale=1.6, evals=False)}
    assert_png(plot_curves(runs, str(tmp_path / "demo.png")))


def test_empty_and_odd_runs_still_write_a_png(tmp_path):
    bad = records()
    bad[5]["loss"], bad[6]["loss"] = math.nan, math.inf  # skipped non-finite steps
    assert_png(plot_curves({"a": bad, "b": []}, tmp_path / "a" / "odd.png"))
    assert_png(plot_curves({}, tmp_path / "b" / "empty.png"))


def test_existing_file_is_replaced(tmp_path):
    path = tmp_path / "curves.png"
    path.write_bytes(b"old")
    plot_curves({"adamw": records()}, path)
    assert_png(path)


@pytest.mark.parametrize("runs, match", [
    ({"adamw": [{"tokens": 5, "loss": 3.0}]}, r"run 'adamw': record 0 has 'loss' but no 'step'"),
    ({"adamw": [{"step": 1, "tokens": 5, "loss": None}]}, r"run 'adamw': record 0 needs numbers"),
    ({"adamw": ["oops"]}, r"run 'adamw': record 0 must be a dict"),
    ([("adamw", [])], r"runs must map a label"),
])
def test_bad_records_are_a_clear_error_and_write_nothing(tmp_path, runs, match):
    path = tmp_path / "curves.png"
    with pytest.raises(ValueError, match=match):
        plot_curves(runs, path)
    assert list(tmp_path.iterdir()) == []


def test_no_pyplot_global_state(tmp_path):
    before = "matplotlib.pyplot" in sys.modules
    plot_curves({"adamw": records()}, tmp_path / "curves.png")
    assert ("matplotlib.pyplot" in sys.modules) == before
