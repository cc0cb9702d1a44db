import subprocess
import sys

import pytest

import snsm
from snsm_workbench.cli import main


def test_list_names_every_optimizer(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in snsm.list_optimizers():
        assert name in out


def test_memory_table_reproduces_the_paper(capsys):
    assert main(["memory", "--model", "llama-1b", "--dtype", "bf16", "--rank", "512",
                 "--no-bases"]) == 0
    lines = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[3:]}
    assert (lines["adamw"], lines["adamw_sn"], lines["adamw_snsm"]) == ("4.99", "2.62", "0.84")


def test_bad_model_name_is_rejected():
    with pytest.raises(SystemExit):
        main(["memory", "--model", "llama-2b"])


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "snsm_workbench", "list"], capture_output=True, text=True,
                            check=True)
    assert "adamw_snsm" in result.stdout


# --- user errors: one line, exit 2, nothing created ---------------------------------------

import errno  # noqa: E402
import os  # noqa: E402

from snsm_workbench.cli import is_user_error, one_line  # noqa: E402
from snsm_workbench.util.errors import Interrupted  # noqa: E402


def _user_errors(tmp):
    blocker = tmp / "file"
    blocker.write_text("x")
    train = ["train", "--cache-dir", str(tmp / "cache"), "--out", str(tmp / "run")]
    return [
        (train + ["--opt", "rank=0"], r"optimizer_args\['rank'\]: rank must be an integer >= 1, "
                                      r"got 0"),
        (train + ["--opt", "betas=0.9,2"], r"betas\[1\] must be in \[0, 1\), got 2"),
        (train + ["--vocab-size", "100"], r"vocab_size must be an integer >= 257, got 100"),
        (train + ["--seq-len", "0"], r"seq_len must be an integer >= 1, got 0"),
        (train + ["--data", str(tmp / "missing")], r"data path .*missing does not exist"),
        (["train", "--out", str(blocker / "run")], r"out .*file/run' cannot be created"),
        (["train", "--resume", str(tmp / "nowhere")], r"cannot resume .*nowhere: no such folder"),
        (["speed", "--optimizers", "adamw,lion"], r"--optimizers name must be one of .*'lion'"),
        (["bench", "--data", str(tmp / "missing"), "--out", str(tmp / "bench")],
         r"data path .*missing does not exist"),
        (["bench", "--vocab-size", "100", "--out", str(tmp / "bench")],
         r"vocab_size must be an integer >= 257"),
        (["bench", "--out", str(blocker / "bench")], r"file/bench' cannot be created"),
        (["lab", "subset-norm", "--quick", "--out", str(blocker / "lab")],
         r"--out .*file/lab' cannot be created: .*file' is a file"),
        (["lab", "subset-norm", "--quick", "--out", str(blocker)],
         r"--out .*file' is not a folder"),
        (["demo", "--data", str(tmp / "missing"), "--out", str(tmp / "demo")],
         r"data path .*missing does not exist"),
    ]


def test_every_user_error_is_one_line_with_exit_code_2(tmp_path, capsys):
    import re

    for argv, message in _user_errors(tmp_path):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if not line.startswith("corpus ")]
        assert len(lines) == 1 and lines[0].startswith("snsm: error: "), (argv, err)
        assert re.search(message, lines[0]), (argv, lines[0])
        assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no folder was created


@pytest.mark.parametrize("argv", [["memory", "--rank", "0"], ["memory", "--world-size", "0"],
                                  ["speed", "--repeats", "0"], ["bench", "--timing-rounds", "-1"],
                                  ["train", "--steps", "ten"], ["demo", "--steps", "0"]])
def test_bad_flags_are_one_line_too(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"snsm {argv[0]}: error: argument {argv[1]}" in err


def test_debug_keeps_the_traceback(tmp_path):
    for argv in (["--debug", "train", "--vocab-size", "100"],
                 ["train", "--vocab-size", "100", "--debug"]):
        with pytest.raises(ValueError, match="vocab_size must be"):
            main(argv + ["--out", str(tmp_path / "run")])


def test_which_errors_are_one_line():
    assert is_user_error(OSError(errno.ENOSPC, "No space left on device"))
    assert is_user_error(PermissionError(errno.EACCES, "denied"))
    assert is_user_error(ValueError("bad"))
    assert not is_user_error(OSError(errno.EIO, "I/O error"))  # a bug or a broken disk
    assert not is_user_error(RuntimeError("boom"))
    assert one_line(OSError(errno.ENOSPC, "No space left on device", "/x/y")) == \
        "No space left on device: /x/y"
    assert one_line(ValueError("two\nlines")) == "two lines"


def test_interrupts_exit_with_the_signal_code(monkeypatch, capsys):
    from snsm_workbench.cli import listing

    def stopped(args):
        raise Interrupted(15, "SIGTERM: stopped")

    monkeypatch.setattr(listing, "run", stopped)
    assert main(["list"]) == 143
    assert capsys.readouterr().err.strip() == "snsm: SIGTERM: stopped"

    def ctrl_c(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(listing, "run", ctrl_c)
    assert main(["list"]) == 130
    assert capsys.readouterr().err.strip() == "snsm: interrupted"


def test_a_user_error_in_a_real_process_prints_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "snsm_workbench", "train", "--data",
                             str(tmp_path / "missing.txt"), "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, env={**os.environ,
                                                                 "SNSM_CACHE": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"snsm: error: data path {tmp_path}/missing.txt does "
                                          f"not exist"]
    assert not (tmp_path / "run").exists()


# --- help and listings ---------------------------------------------------------------------

def test_list_shows_each_optimizers_lrs_in_100_columns(capsys):
    from snsm.optim.registry import OPTIMIZERS

    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert lines[0].split() == ["name", "class", "harness", "lr", "paper", "lr", "summary"]
    assert not any("``" in line for line in lines)
    rows = {line.split()[0]: line.split()[2:4] for line in lines[2:] if line[:1].strip()}
    for name, spec in OPTIMIZERS.items():
        paper = "-" if spec.paper_lr is None else f"{spec.paper_lr:g}"
        assert rows[name] == [f"{spec.harness_lr:g}", paper], name


def test_list_json_has_the_lrs(capsys):
    import json

    from snsm.optim.registry import OPTIMIZERS

    assert main(["list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["adamw_snsm"]["harness_lr"] == OPTIMIZERS["adamw_snsm"].harness_lr
    assert rows["adamw_snsm"]["paper_lr"] == OPTIMIZERS["adamw_snsm"].paper_lr


def test_top_level_help_is_the_same_without_loading_the_subcommands():
    from snsm_workbench.cli import build_parser

    assert build_parser([]).format_help() == build_parser().format_help()


def test_snsm_help_imports_no_subcommand_and_no_torch():
    code = ("import sys\nfrom snsm_workbench.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\nprint(sorted(m for m in sys.modules if m == 'torch' "
            "or m.startswith('snsm_workbench.cli.')), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert "list" in result.stdout and result.stderr.strip() == "[]"


def test_a_subcommand_loads_its_own_module_only():
    code = ("import sys\nfrom snsm_workbench.cli import main\nmain(['list'])\n"
            "print(sorted(m for m in sys.modules if m.startswith('snsm_workbench.cli.')), "
            "file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stderr.strip() == "['snsm_workbench.cli.listing']"


def _subparsers():
    from snsm_workbench.cli import build_parser

    return build_parser()._subparsers._group_actions[0].choices


@pytest.mark.parametrize("command", ["list", "memory", "speed", "lab", "docs"])
def test_every_flag_has_help_and_no_rst_backticks(command):
    parser = _subparsers()[command]
    assert [action.dest for action in parser._actions if not action.help] == []
    assert "``" not in parser.format_help()
