import subprocess
import sys

import pytest

import snsm
from snsm.cli import main


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
    result = subprocess.run([sys.executable, "-m", "snsm", "list"], capture_output=True, text=True,
                            check=True)
    assert "adamw_snsm" in result.stdout
