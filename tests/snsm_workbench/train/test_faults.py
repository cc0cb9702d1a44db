"""Fault injection on real ``python -m snsm_workbench train`` processes (issue 11): kill, interrupt,
fill the disk, corrupt, race, diverge; each fault has one outcome a user can rely on.

All runs use the tiny preset at seq 32, batch 4, vocab 300 on the small synthetic corpus
(``tests/snsm_workbench/train/conftest.py``); one uninterrupted run is the reference for exactness.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from processes import wait_for_step
from snsm_workbench.train import checkpoint as ckpt
from snsm_workbench.util.errors import ConflictError
from snsm_workbench.util.locks import FolderLock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and flock")

STEPS = 20
DETERMINISTIC = ("step", "tokens", "loss", "lr", "grad_norm", "val_loss")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _write_corpus(path: Path) -> Path:
    spec = importlib.util.spec_from_file_location(
        "train_conftest", Path(__file__).parent / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_corpus(path)


SNSM = ("--optimizer", "adamw_snsm", "--opt", "rank=8", "--opt", "update_gap=7")


def _train(world, out, *extra, steps=STEPS, optimizer=SNSM) -> list[str]:
    return [sys.executable, "-m", "snsm_workbench", "train", "--preset", "tiny", *optimizer, "--data",
            str(world["corpus"]), "--vocab-size", "300", "--seq-len", "32", "--batch-size", "4",
            "--steps", str(steps), "--eval-every", "5", "--save-every", "5", "--eval-batches",
            "2", "--cache-dir", str(world["cache"]), "--out", str(out), *extra]


def _resume(out, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snsm_workbench", "train", "--resume", str(out), *extra],
                          capture_output=True, text=True, env=ENV, timeout=240)


def _records(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _deterministic(run_dir) -> list[dict]:
    return [{k: r[k] for k in DETERMINISTIC if k in r} for r in _records(run_dir)]


def _assert_same_run(got_dir, want_dir) -> None:
    want, got = ckpt.load_checkpoint(want_dir), ckpt.load_checkpoint(got_dir)
    assert got["step"] == want["step"] == STEPS
    for key, tensor in want["model"].items():
        assert torch.equal(got["model"][key], tensor), key
    assert _deterministic(got_dir) == _deterministic(want_dir)


def _error_line(stderr: str) -> str:
    """The one line the CLI printed for an error, checked to be alone (no traceback)."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("snsm: error: ")]
    assert len(errors) == 1, stderr
    assert stderr.rstrip().endswith(errors[0]), stderr  # nothing after it
    return errors[0]


def _start(command) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The corpus, a shared token cache and the reference run (uninterrupted, its stdout and
    stderr in one file as with ``snsm train > log 2>&1``)."""
    root = tmp_path_factory.mktemp("faults")
    world = {"root": root, "corpus": _write_corpus(root / "corpus"), "cache": root / "cache",
             "reference": root / "reference"}
    with open(root / "reference.log", "w") as log:
        subprocess.run(_train(world, world["reference"]), stdout=log, stderr=log, env=ENV,
                       check=True, timeout=240)
    world["log"] = (root / "reference.log").read_text()
    return world


# --- kill and interrupt ------------------------------------------------------------------

@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_saves_says_how_to_resume_and_resumes_exactly(world, tmp_path, signum, code):
    out = tmp_path / "run"
    process = _start(_train(world, out, "--quiet"))
    wait_for_step(out, 7, process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    assert f"resume with: snsm train --resume {out}" in stderr.splitlines()[-1]
    saved = ckpt.load_checkpoint(out)["step"]
    last = max(r["step"] for r in _records(out))
    assert 7 <= saved == last < STEPS  # the step in progress finished and was saved
    result = _resume(out, "--quiet")
    assert result.returncode == 0, result.stderr
    _assert_same_run(out, world["reference"])


def test_a_second_signal_abandons_the_step_keeps_the_last_checkpoint_and_resumes(world,
                                                                                  tmp_path):
    out = tmp_path / "run"
    process = _start(_train(world, out, "--quiet"))
    wait_for_step(out, 7, process)
    process.send_signal(signal.SIGINT)  # stop after this step...
    process.send_signal(signal.SIGTERM)  # ...no: at once (a second signal, before the save)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1] == ("snsm: SIGTERM again: the step was abandoned; the last "
                                       "checkpoint is kept")
    saved = ckpt.load_checkpoint(out)["step"]
    assert saved % 5 == 0 and 5 <= saved < STEPS  # a checkpoint of the schedule, intact
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []
    result = _resume(out, "--quiet")
    assert result.returncode == 0, result.stderr
    _assert_same_run(out, world["reference"])


def test_kill_during_a_write_leaves_nothing_that_blocks_the_resume(world, tmp_path):
    out = tmp_path / "run"
    process = _start(_train(world, out, "--quiet"))
    wait_for_step(out, 7, process)
    process.kill()
    process.wait()
    leftover = out / f".{ckpt.CHECKPOINT_NAME}.{process.pid}.tmp"  # as if killed mid-write
    leftover.write_bytes(b"PK\x03\x04 half a checkpoint")
    result = _resume(out, "--quiet")
    assert result.returncode == 0, result.stderr
    assert not leftover.exists()
    _assert_same_run(out, world["reference"])


# --- full disk ---------------------------------------------------------------------------

FULL_DISK = """
import errno, io, sys
from snsm_workbench.train import checkpoint
from snsm_workbench.cli import main

writes = []

class FullDisk(io.FileIO):
    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

def fake_open(path, mode="r", *args, **kwargs):
    if "w" in mode and ".checkpoint.pt." in str(path):
        writes.append(path)
        if len(writes) >= 2:  # the disk is full from the second checkpoint on
            return io.BufferedWriter(FullDisk(path, "wb"))
    return open(path, mode, *args, **kwargs)

checkpoint.open = fake_open
sys.exit(main(sys.argv[1:]))
"""


def test_full_disk_is_one_line_keeps_the_last_checkpoint_and_resumes(world, tmp_path):
    out = tmp_path / "run"
    command = _train(world, out, "--quiet")
    result = subprocess.run([sys.executable, "-c", FULL_DISK, *command[3:]], capture_output=True,
                            text=True, env=ENV, timeout=240)
    assert result.returncode == 2
    assert _error_line(result.stderr) == (f"snsm: error: cannot write the checkpoint "
                                          f"{out}/checkpoint.pt: No space left on device")
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []
    assert ckpt.load_checkpoint(out)["step"] == 5
    result = _resume(out, "--quiet")  # space freed
    assert result.returncode == 0, result.stderr
    _assert_same_run(out, world["reference"])


# --- corruption and refused resumes ------------------------------------------------------

@pytest.fixture
def finished(world, tmp_path):
    """A copy of the reference run folder."""
    import shutil

    return Path(shutil.copytree(world["reference"], tmp_path / "run"))


def test_corrupt_config_is_one_line_naming_the_file(finished):
    (finished / "config.json").write_text('{"config": {"steps": 2')
    result = _resume(finished, "--steps", "30")
    assert result.returncode == 2
    line = _error_line(result.stderr)
    assert f"{finished}/config.json is corrupt (not JSON: " in line


def test_corrupt_checkpoint_is_one_line_and_left_alone(finished):
    path = finished / ckpt.CHECKPOINT_NAME
    path.write_bytes(b"not a checkpoint")
    result = _resume(finished, "--steps", "30")
    assert result.returncode == 2
    assert re.search(r"checkpoint .*checkpoint.pt is corrupt or unreadable",
                     _error_line(result.stderr))
    assert path.read_bytes() == b"not a checkpoint"


def test_resume_refuses_a_changed_setting_naming_flag_value_and_saved_value(finished):
    result = _resume(finished, "--lr", "0.1", "--steps", "30")
    assert result.returncode == 2
    assert re.search(r"^snsm: error: cannot resume .* with --lr 0.1 \(saved: 0.03\): on resume "
                     r"only --steps \(larger\)", _error_line(result.stderr))
    assert ckpt.load_checkpoint(finished)["step"] == STEPS  # nothing ran


def test_resume_refuses_data_edited_in_place(world, tmp_path):
    corpus = _write_corpus(tmp_path / "corpus")
    out = tmp_path / "run"
    subprocess.run(_train({**world, "corpus": corpus}, out, "--quiet", steps=5), check=True,
                   capture_output=True, env=ENV, timeout=240)
    doc = corpus / "doc2.txt"
    doc.write_text(doc.read_text().replace("queen", "quean"))
    result = _resume(out, "--steps", "10")
    assert result.returncode == 2
    assert re.search(r"the content of its data \(.*corpus\) changed since the run started",
                     _error_line(result.stderr))
    assert ckpt.load_checkpoint(out)["step"] == 5


# --- races -------------------------------------------------------------------------------

def test_a_second_process_on_a_run_folder_is_refused_at_once(world, tmp_path):
    out = tmp_path / "run"
    first = _start(_train(world, out, "--quiet", steps=100_000))
    wait_for_step(out, 5, first)  # its first checkpoint is written: a resume could start
    second = _resume(out, "--quiet")
    assert first.poll() is None  # the first still runs and holds the folder
    assert second.returncode == 2
    assert re.search(rf"run folder .*run is in use by another process \(pid {first.pid}\); "
                     rf"wait for it to end", _error_line(second.stderr))
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=120)
    assert first.returncode == 143


def test_lock_is_per_process_and_dropped_when_the_holder_dies(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom snsm_workbench.util.locks import FolderLock\n"
        f"FolderLock({str(tmp_path)!r}).acquire()\nprint('held', flush=True)\ntime.sleep(600)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(ConflictError, match=rf"is in use by another process \(pid {holder.pid}\)"):
        FolderLock(tmp_path).acquire()
    holder.kill()
    holder.wait()
    first, again = FolderLock(tmp_path).acquire(), FolderLock(tmp_path).acquire()  # re-entrant
    first.release()
    again.release()


# --- divergence --------------------------------------------------------------------------

def test_divergence_stops_naming_the_good_checkpoint_it_kept(world, tmp_path):
    out = tmp_path / "run"
    command = _train(world, out, "--quiet", "--lr", "1000", "--warmup-ratio", "1",
                     "--save-every", "1", "--max-bad-steps", "2", steps=200,
                     optimizer=("--optimizer", "adamw"))
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=240)
    assert result.returncode == 1
    line = _error_line(result.stderr)
    kept = int(re.search(r"non-finite losses in a row at step \d+; stopping: the checkpoint of "
                         r"step (\d+) is kept in ", line).group(1))
    payload = ckpt.load_checkpoint(out)
    assert payload["step"] == kept and payload["counters"]["bad_in_a_row"] == 0
    assert all(torch.isfinite(t).all() and t.abs().max() < 1e3 for t in payload["model"].values())


# --- readable logs -----------------------------------------------------------------------

def test_a_redirected_log_has_no_progress_bar_and_one_line_per_evaluation(world):
    log = world["log"]
    assert "\r" not in log
    evaluations = [line for line in log.splitlines() if re.match(r"step \d+/20: ", line)]
    assert [int(line.split("/")[0].split()[1]) for line in evaluations] == [0, 5, 10, 15, 20]
    assert all("val loss" in line for line in evaluations)
    table = log[log.index("step  tokens"):].splitlines()
    assert [row.split()[0] for row in table[2:7]] == ["0", "5", "10", "15", "20"]
    assert table[-1] == f"run folder: {world['reference']}"


def test_demo_log_redirected_to_a_file_is_readable(world, tmp_path):
    with open(tmp_path / "demo.log", "w") as log:
        subprocess.run([sys.executable, "-m", "snsm_workbench", "demo", "--steps", "2", "--eval-every", "1",
                        "--data", str(world["corpus"]), "--vocab-size", "300", "--seq-len", "32",
                        "--batch-size", "4", "--cache-dir", str(world["cache"]), "--out",
                        str(tmp_path / "demo")], stdout=log, stderr=log, env=ENV, check=True,
                       timeout=240)
    text = (tmp_path / "demo.log").read_text()
    assert "\r" not in text and "Traceback" not in text
    assert len([line for line in text.splitlines() if re.match(r"step 2/2: ", line)]) == 4
    assert re.search(r"^adamw_snsm +0.02/0.04 ", text, re.MULTILINE)
