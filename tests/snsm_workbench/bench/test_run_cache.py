"""The run cache refuses what it must not use (issue 24 items 7, 9, 10): a run copied into
another configuration's place, a run made with other settings, a damaged run file, and a
record of another suite."""

import json
import shutil
from pathlib import Path

import pytest

from bench_helpers import write_corpus
from snsm_workbench.bench.contenders import Contender
from snsm_workbench.bench.run_cache import DamagedRun, RunMismatch, read_run, write_run
from snsm_workbench.bench.run_one import run_config, run_identity
from snsm_workbench.bench.run_pool import MissingRuns, RunKey, RunPool
from snsm_workbench.cli import main
from snsm_workbench.train.config import TrainConfig

RECORDS = Path(__file__).resolve().parents[3] / "benchmarks" / "records"
ADAMW = Contender("adamw", "adamw", False, 1e-3, ())
KEY = RunKey("shakespeare", "adamw", "tiny", 10, 0.001, None, 0)


def _identity(**settings):
    config = TrainConfig(steps=10, **settings)
    return run_identity(ADAMW, run_config(config, ADAMW, KEY.lr, None, 0, Path("x")))


def _saved(key=KEY, **extra):
    return {"steps": [0, 10], "val_loss": [7.0, 5.0], "final_train_loss": 5.1,
            "state_bytes": 100, "failed": None, "key": {**key.__dict__}, **extra}


def test_a_run_copied_into_another_configurations_place_is_refused(tmp_path):
    other = RunKey("shakespeare", "adamw", "tiny", 10, 0.002, None, 0)
    path = tmp_path / KEY.path()
    write_run(path, _saved(other))  # the lr 0.002 run, sitting where lr 0.001's belongs
    with pytest.raises(RunMismatch, match=r"seed0.json: holds the run .*0.002"):
        read_run(path, KEY, None)
    write_run(path, _saved(KEY))
    assert read_run(path, KEY, None)["val_loss"] == [7.0, 5.0]


def test_a_run_made_with_other_settings_is_refused_and_a_new_default_accepted(tmp_path):
    path = tmp_path / KEY.path()
    write_run(path, _saved(identity=_identity(batch_size=8)))
    with pytest.raises(RunMismatch, match=r"other settings \(config.batch_size: 8 != 16\)"):
        read_run(path, KEY, _identity(batch_size=16))
    assert read_run(path, KEY, _identity(batch_size=8)) is not None
    old = _identity(batch_size=8)
    del old["config"]["grad_clip"]  # a setting the harness gained after the run was saved
    write_run(path, _saved(identity=old))
    assert read_run(path, KEY, _identity(batch_size=8)) is not None  # at its default: fine
    with pytest.raises(RunMismatch, match="grad_clip"):
        read_run(path, KEY, _identity(batch_size=8, grad_clip=0.5))


@pytest.mark.parametrize("text, reason", [
    ('{"steps": [0, 10], "val_lo', "not JSON"),
    (json.dumps({k: v for k, v in _saved().items() if k != "state_bytes"}), "missing key"),
    (json.dumps(_saved(val_loss=["x", 5.0])), "val_loss"),
    (json.dumps(_saved(state_bytes="100")), "state_bytes"),
    (json.dumps(_saved(steps=[0])), "differ in length"),
    ("[1, 2]", "JSON object"),
])
def test_a_damaged_run_is_named_in_one_line_and_retrained_or_missing(tmp_path, text, reason):
    path = tmp_path / "record" / "runs" / KEY.path()
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(DamagedRun, match=reason) as caught:
        read_run(path, KEY, None)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    pool = RunPool(tmp_path / "record", tmp_path / "work", 0, train=True)
    try:
        assert pool.cached(KEY) is None  # treated as missing: the pool retrains it
    finally:
        pool.close()
    pool = RunPool(tmp_path / "record", tmp_path / "work", 0, train=False)
    try:
        with pytest.raises(MissingRuns, match="damaged run file"):
            pool.run_many([(KEY, ADAMW, TrainConfig(steps=10))])
    finally:
        pool.close()


def _demo_args(tmp_path, corpus, *extra):
    return ["bench", "--suite", "demo", "--steps", "4", "--threads", "1", "--workers", "0",
            "--timing-rounds", "0", "--data", str(corpus), "--seq-len", "32",
            "--vocab-size", "300", "--cache-dir", str(tmp_path / "cache"),
            "--out", str(tmp_path / "record"), "--work", str(tmp_path / "work"), *extra]


def test_a_short_suite_rerun_with_other_settings_is_refused(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus")
    assert main(_demo_args(tmp_path, corpus, "--batch-size", "2")) == 0
    runs = sorted((tmp_path / "record" / "runs").rglob("seed0.json"))
    assert len(runs) == 4 and all("identity" in json.loads(p.read_text()) for p in runs)
    capsys.readouterr()
    assert main(_demo_args(tmp_path, corpus, "--batch-size", "3")) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "batch_size: 2 != 3" in err


@pytest.mark.parametrize("suite, name", [("standard", "2026-11-29-quick"),
                                         ("quick", "2026-11-29-finetune"),
                                         ("finetune", "2026-11-29-standard")])
def test_cached_only_into_another_suites_record_is_refused(tmp_path, capsys, suite, name):
    record = tmp_path / name
    shutil.copytree(RECORDS / name, record, ignore=shutil.ignore_patterns("runs"))
    if suite == "finetune":  # the standard record without its runs still names its suite
        (record / "runs").mkdir()
    before = {p.name: p.read_bytes() for p in record.iterdir() if p.is_file()}
    code = main(["bench", "--suite", suite, "--cached-only", "--out", str(record),
                 "--work", str(tmp_path / "work")])
    assert code == 2
    assert "holds a record of the" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in record.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("text", ['{"preset": "ti', "[1]"])
def test_a_damaged_settings_file_of_a_standard_record_is_one_line(tmp_path, text):
    from snsm_workbench.bench.stage_plan import PLAN, check_same_settings

    path = tmp_path / "runs" / "settings.json"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(ValueError, match=r"settings.json: damaged settings file") as caught:
        check_same_settings(PLAN.settings, path)
    assert "\n" not in str(caught.value)
