"""More fault injection on real ``python -m snsm_workbench train`` processes (issue 24): a
folder that is not a run, damaged records and data, no memory, a second signal; each fault
gives one line (or a warning) and leaves nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_faults import ENV, _error_line, _train, _write_corpus

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and FIFOs")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The corpus and a shared token cache (built by a first short run)."""
    root = tmp_path_factory.mktemp("faults_more")
    world = {"root": root, "corpus": _write_corpus(root / "corpus"), "cache": root / "cache"}
    subprocess.run(_train(world, root / "first", "--quiet", steps=5), check=True,
                   capture_output=True, env=ENV, timeout=240)
    world["finished"] = root / "first"
    return world


def _run(command, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=timeout)


# --- a folder that is not a run ----------------------------------------------------------

def test_out_on_a_folder_that_is_not_a_run_is_refused_and_nothing_is_overwritten(world,
                                                                                  tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    files = {"config.json": '{"model_type": "llama", "hidden_size": 64}',
             "metrics.jsonl": '{"epoch": 1}\n', "curves.png": "not a png",
             "weights.safetensors": "weights"}
    for name, text in files.items():
        (model / name).write_text(text)
    result = _run(_train(world, model, "--quiet", steps=2))
    assert result.returncode == 2
    assert _error_line(result.stderr) == (
        f"snsm: error: --out {model} is not empty and not an snsm run folder (it holds "
        f"config.json, curves.png, metrics.jsonl, weights.safetensors); choose a new or empty "
        f"folder, nothing was written")
    assert {p.name: p.read_text() for p in model.iterdir()} == files  # no .lock either


def test_out_on_a_run_of_ours_that_stopped_before_its_first_save_starts_it_over(world,
                                                                                 tmp_path):
    import shutil

    run = Path(shutil.copytree(world["finished"], tmp_path / "run"))
    (run / "checkpoint.pt").unlink()  # as if stopped before its first save
    (run / "notes.txt").write_text("mine")
    result = _run(_train(world, run, "--quiet", steps=2))
    assert result.returncode == 0, result.stderr
    assert (run / "notes.txt").read_text() == "mine"
    assert json.loads((run / "config.json").read_text())["config"]["steps"] == 2


# --- damaged records ---------------------------------------------------------------------

@pytest.fixture
def finished(world, tmp_path):
    """A copy of the finished 5-step run."""
    import shutil

    return Path(shutil.copytree(world["finished"], tmp_path / "run"))


def _resume(run, *extra) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "snsm_workbench", "train", "--resume", str(run), "--quiet",
                 *extra])


@pytest.mark.parametrize("last", ['{"loss": 1.0, "tok', '{"loss": 1.0}'])
def test_a_damaged_last_metrics_line_is_dropped_with_a_warning(finished, last):
    metrics = finished / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + last)  # a torn write
    result = _resume(finished, "--steps", "6")
    assert result.returncode == 0, result.stderr
    assert "dropping its last line, damaged" in result.stderr
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps[-2:] == [6, 6]  # the step and its evaluation


def test_a_metrics_line_without_a_step_is_one_line_naming_file_and_line(finished):
    metrics = finished / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    lines.insert(2, '{"loss": 1.0}')
    metrics.write_text("\n".join(lines) + "\n")
    record = (finished / "config.json").read_text()
    result = _resume(finished, "--steps", "6")
    assert result.returncode == 2
    assert _error_line(result.stderr) == (f"snsm: error: {metrics} line 3 is not a metrics "
                                          f"record with a step: '{{\"loss\": 1.0}}'; repair or "
                                          f"delete that line")
    assert metrics.read_text().splitlines() == lines  # left as it was
    assert (finished / "config.json").read_text() == record


# --- data that is not a file -------------------------------------------------------------

@pytest.mark.parametrize("flag, name", [("--data", "corpus.txt"), ("--config", "train.toml")])
def test_a_fifo_is_refused_in_one_line_instead_of_hanging(world, tmp_path, flag, name):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    command = _train(world, tmp_path / "run", "--quiet", steps=2) + [flag, str(fifo)]
    result = _run(command, timeout=60)  # a hang is a timeout: the test fails
    assert result.returncode == 2
    what = "data path" if flag == "--data" else "config file"
    assert _error_line(result.stderr) == (f"snsm: error: {what} {fifo} is a FIFO, not a "
                                          f"regular file or folder")
    assert not (tmp_path / "run").exists()


# --- errors that depend on the data ------------------------------------------------------

def test_a_sequence_longer_than_the_data_allows_leaves_no_run_folder(world, tmp_path):
    out = tmp_path / "runs" / "run"
    result = _run(_train(world, out, "--quiet", "--seq-len", "100000", steps=2))
    assert result.returncode == 2
    assert "the data is too short for this sequence length" in _error_line(result.stderr)
    assert not out.exists()


def test_an_empty_corpus_leaves_no_run_folder(world, tmp_path):
    corpus = tmp_path / "empty"
    corpus.mkdir()
    (corpus / "blank.txt").write_text("\n  \n")
    out = tmp_path / "run"
    result = _run(_train({**world, "corpus": corpus}, out, "--quiet", steps=2))
    assert result.returncode == 2
    assert _error_line(result.stderr) == f"snsm: error: no text found in {corpus}"
    assert not out.exists()


def test_a_failed_start_in_a_folder_that_was_there_keeps_the_folder(world, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    result = _run(_train(world, out, "--quiet", steps=2) + ["--seq-len", "100000"])
    assert result.returncode == 2
    assert out.is_dir()


# --- out of memory -----------------------------------------------------------------------

def test_a_batch_too_large_for_memory_is_one_line_naming_what_to_lower(world, tmp_path):
    result = _run(_train(world, tmp_path / "run", "--quiet", "--batch-size", str(10**12),
                         steps=2))
    assert result.returncode == 2
    line = _error_line(result.stderr)
    assert line.startswith(f"snsm: error: out of memory at step 1 (tiny, batch {10**12} x 32 "
                           f"tokens, on cpu) (")
    assert line.endswith("); lower --batch-size (raise --grad-accum to keep the batch), "
                         "--seq-len or the --preset, or use --pure-bf16 / --state-precision 8bit")


def test_out_of_memory_in_a_step_is_one_line_and_not_a_diverged_run(tiny_config, monkeypatch):
    import torch

    from snsm_workbench.train.loop import Trainer, train
    from snsm_workbench.util.errors import OutOfMemory, TrainingError

    assert not issubclass(OutOfMemory, TrainingError)  # the bench records those as diverged

    def no_memory(self):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB\nmore")

    monkeypatch.setattr(Trainer, "_forward_backward", no_memory)
    with pytest.raises(OutOfMemory, match=r"^out of memory at step 1 \(tiny, batch 4 x 32 "
                                          r"tokens, on cpu\) \(OutOfMemoryError: CUDA out of "
                                          r"memory. Tried to allocate 20.00 GiB more\); lower "
                                          r"--batch-size"):
        train(tiny_config)


def test_memory_measure_out_of_memory_is_one_line(monkeypatch, capsys):
    import torch

    from snsm_workbench.cli import main
    from snsm_workbench.train import step_memory

    def no_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("DefaultCPUAllocator: not enough memory")

    monkeypatch.setattr(step_memory, "build_model", no_memory)
    assert main(["memory", "--measure", "--model", "tiny"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("snsm: error: out of memory measuring ")
    assert err.endswith("; lower --micro-batch or --seq-len, add --checkpointing, or measure a "
                        "smaller --model")
