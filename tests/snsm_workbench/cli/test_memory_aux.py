"""``snsm memory --aux``: the Muon family's auxiliary rule in the state table."""

import json

import pytest

from snsm_workbench.cli import main


def _rows(capsys, *flags) -> dict[str, int]:
    assert main(["memory", "--model", "tiny", "--no-peers", "--json", *flags]) == 0
    return {row["optimizer"]: row["bytes"] for row in json.loads(capsys.readouterr().out)}


def test_aux_changes_the_muon_family_rows_only(capsys):
    default, adamw = _rows(capsys), _rows(capsys, "--aux", "adamw")
    lean = _rows(capsys, "--aux", "sn_8bit")
    assert adamw == default  # the family's default auxiliary rule is AdamW
    family = {name for name in default if name.startswith("muon")}
    assert family and all(lean[name] < default[name] for name in family)
    assert all(lean[name] == default[name] for name in default if name not in family)


def test_aux_is_refused_where_the_table_ignores_it(capsys):
    assert main(["memory", "--total", "--aux", "sn_8bit"]) == 2
    assert "--aux has no effect" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["memory", "--aux", "lion"])
