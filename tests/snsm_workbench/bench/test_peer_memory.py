import pytest
import torch

import snsm

from snsm_workbench.bench import peers
from snsm_workbench.measure.memory import reachable_state_bytes
from snsm_workbench.cli import main
from snsm_workbench.measure.memory import memory_rows
from snsm_workbench.measure.peers import PEER_FORMULAS, peer_state_bytes

from bench_helpers import take_steps

# formula name -> (adapter, rank the adapter uses, whether the adapter's state holds the basis)
MEASURABLE = {"adafactor": "adafactor", "adamw8bit": "adamw8bit", "muon": "muon",
              "galore": "galore", "fira": "fira", "adam_mini": "adam_mini"}


@pytest.mark.parametrize("name", sorted(MEASURABLE))
def test_formula_matches_the_measured_state_of_the_adapter(name, tiny_lm):
    try:
        optimizer = peers.build_peer(MEASURABLE[name], tiny_lm)
    except peers.PeerUnavailable as exc:
        pytest.skip(str(exc))
    take_steps(tiny_lm, optimizer, 1)
    measured = reachable_state_bytes(optimizer)
    rank = peers.PEERS[MEASURABLE[name]].hparams.get("rank", 512)
    formula = peer_state_bytes(tiny_lm, name, rank=rank, heads=4)
    # the formulas leave out step counters and per-tensor scalars (a few bytes per tensor)
    slack = 64 * len(list(tiny_lm.parameters())) + 2 * 256 * 4 * 2
    assert formula <= measured <= formula + slack, (name, formula, measured)


def test_apollo_formula_leaves_out_the_seeded_basis(tiny_lm):
    with_basis = peer_state_bytes(tiny_lm, "galore", rank=32)
    apollo = peer_state_bytes(tiny_lm, "apollo", rank=32)
    assert apollo < with_basis
    assert peer_state_bytes(tiny_lm, "galore", rank=32, include_bases=False) == apollo


def test_unknown_peer_formula_and_missing_heads_are_value_errors(tiny_lm):
    with pytest.raises(ValueError, match="unknown peer 'sgd'"):
        peer_state_bytes(tiny_lm, "sgd")
    with pytest.raises(ValueError, match="heads"):
        peer_state_bytes(tiny_lm, "adam_mini")


def test_memory_table_lists_the_peers_at_paper_scale():
    rows = {r["optimizer"]: r for r in memory_rows("llama-1b", torch.bfloat16, 512, False,
                                                   peers=True)}
    assert {f"{name} (peer)" if name in snsm.list_optimizers() else name
            for name in PEER_FORMULAS} <= set(rows)
    assert "muon (peer)" in rows and "muon" in rows  # ours and torch.optim.Muon, told apart
    assert rows["adamw_snsm"]["pct_of_adamw"] <= 17.0
    # Adam-mini keeps a full first moment: about half of AdamW
    assert 49.0 <= rows["adam_mini"]["pct_of_adamw"] <= 51.0
    assert rows["galore"]["bytes"] > rows["adamw_snsm"]["bytes"]


def test_memory_cli_can_leave_the_peers_out(capsys):
    import json
    assert main(["memory", "--model", "llama-60m", "--json", "--no-peers"]) == 0
    names = {r["optimizer"] for r in json.loads(capsys.readouterr().out)}
    assert "galore" not in names and "adamw" in names
