"""snsm memory --total: weights, gradients and state equal the live bytes of a real step."""

import dataclasses
import json

import pytest
import torch

import snsm
from snsm_workbench.measure.memory import rank_hparams, reachable_state_bytes
from snsm_workbench.measure.models import PRESETS
from snsm_workbench.measure.total import SETUPS, galore_8bit_state_bytes, total_row, total_rows
from snsm_workbench.train.models import build_model

VOCAB, SEQ, BATCH, RANK = 512, 16, 2, 8
REGISTRY_SETUPS = [name for name, s in SETUPS.items() if s.optimizer != "galore_8bit"]


def _step(setup):
    """One real step of the tiny LLaMA: (model, weights, peak gradient bytes, state bytes)."""
    model = build_model("tiny", VOCAB, SEQ, seed=0).to(setup.weights)
    optimizer = snsm.create_optimizer(model, setup.optimizer, **rank_hparams(setup.optimizer, RANK),
                                      **setup.hparams)
    live = {"now": 0, "peak": 0}

    def count(param):  # runs before the in-backward hook frees the gradient
        live["now"] = sum(p.grad.nbytes for p in model.parameters() if p.grad is not None)
        live["peak"] = max(live["peak"], live["now"])

    handles = [p.register_post_accumulate_grad_hook(count) for p in model.parameters()]
    if setup.in_backward:  # its hooks run after the counting ones
        snsm.step_in_backward(model, optimizer)
    tokens = torch.randint(0, VOCAB, (BATCH, SEQ), generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(input_ids=tokens).logits
    torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), tokens.flatten()).backward()
    for handle in handles:
        handle.remove()
    optimizer.step()
    weights = sum(p.nbytes for p in model.parameters())
    return model, weights, live["peak"], snsm.state_bytes(optimizer)


@pytest.mark.parametrize("name", REGISTRY_SETUPS)
def test_weights_gradients_and_state_equal_the_live_bytes(name):
    setup = SETUPS[name]
    model, weights, gradients, state = _step(setup)
    shape = dataclasses.replace(PRESETS["tiny"], vocab=VOCAB)
    row = total_row(model, shape, setup, RANK, BATCH * SEQ, checkpointing=False)
    assert row["weights"] == weights
    assert row["gradients"] == pytest.approx(gradients, rel=0.01)
    assert row["state"] == state
    assert row["total"] == sum(row[k] for k in ("weights", "gradients", "state", "update",
                                                "activations"))


def test_galore_8bit_counts_the_measured_galore_layout_at_8_bits():
    po = pytest.importorskip("pytorch_optimizer")
    from snsm_workbench.bench.peers import build_peer
    from snsm_workbench.measure.peers import bnb8_bytes

    model = build_model("tiny", VOCAB, SEQ, seed=0)
    optimizer = build_peer("galore", model)  # rank 32 on the hidden matrices
    tokens = torch.randint(0, VOCAB, (BATCH, SEQ), generator=torch.Generator().manual_seed(0))
    model(input_ids=tokens, labels=tokens).loss.backward()
    optimizer.step()
    expected = 0
    for param in model.parameters():
        state = optimizer.state[param]
        moments = [state[k] for k in ("exp_avg", "exp_avg_sq")]
        assert moments[0].shape == moments[1].shape
        expected += bnb8_bytes(moments[0].numel())
        basis = [v for v in vars(state["projector"]).values()
                 if isinstance(v, torch.Tensor)] if "projector" in state else []
        expected += sum(b.numel() * 2 for b in basis)  # bf16
    assert galore_8bit_state_bytes(model, 32, torch.bfloat16) == expected
    assert po is not None and reachable_state_bytes(optimizer) > 0


def test_the_lean_setups_order_and_fsdp_shrinks_them():
    rows = {r["setup"]: r for r in total_rows("llama-1b", 512, 1, 256, checkpointing=True)}
    assert rows["adamw-bf16"]["total"] < rows["adamw-amp"]["total"]
    lean = rows["adamw_snsm-bf16-in-backward"]
    assert lean["gradients"] < rows["adamw_snsm-bf16"]["gradients"] / 10
    assert lean["total"] < rows["adamw_snsm-bf16"]["total"] < rows["adamw-bf16"]["total"]
    sharded = {r["setup"]: r for r in total_rows("llama-1b", 512, 1, 256, True, world_size=8)}
    assert not {"galore-8bit-per-layer", "adamw_snsm-bf16-in-backward"} & set(sharded)
    assert sharded["adamw-bf16"]["weights"] == pytest.approx(rows["adamw-bf16"]["weights"] / 8,
                                                             rel=0.01)


def test_cli_total_and_measure(capsys):
    from snsm_workbench.cli import main

    assert main(["memory", "--total", "--model", "llama-1b", "--checkpointing"]) == 0
    out = capsys.readouterr().out
    assert "adamw_snsm-bf16-in-backward" in out and "activations are an estimate" in out
    assert main(["memory", "--measure", "--model", "tiny", "--seq-len", "16", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["setup"] for r in rows} == set(REGISTRY_SETUPS)
    assert all(r["measured"] > 0 and r["estimate"] > 0 for r in rows)
