import pytest
import torch

import snsm
from snsm_workbench.cli import main
from snsm_workbench.measure.memory import memory_rows
from snsm_workbench.measure.models import llama_skeleton
from problems import TinyLM


@pytest.mark.parametrize("name", snsm.list_optimizers())
@pytest.mark.parametrize("include_bases", [True, False])
@pytest.mark.parametrize("projector", ["svd", "uniform"])
def test_estimate_equals_measured_state_after_one_step(name, include_bases, projector, device):
    model = TinyLM().to(device)
    hparams = {"rank": 3, "projector": projector} if "sm" in name else {}
    optimizer = snsm.create_optimizer(model, name, **hparams)
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(0)).to(device)
    optimizer.step()
    measured = snsm.state_bytes(optimizer, include_bases=include_bases)
    estimated = snsm.estimate_state_bytes(model, name, include_bases=include_bases, **hparams)
    assert measured == estimated > 0


def test_estimate_works_on_meta_device_and_honours_dtype():
    model = llama_skeleton("llama-60m")
    fp32 = snsm.estimate_state_bytes(model, "adamw")
    bf16 = snsm.estimate_state_bytes(model, "adamw", dtype=torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    steps = 4 * len(list(model.parameters()))
    assert fp32 == 8 * params + steps and bf16 == 4 * params + steps


def test_state_bytes_measures_torch_optimizers_too():
    param = torch.zeros(10, 10, requires_grad=True)
    optimizer = torch.optim.AdamW([param])
    param.grad = torch.ones_like(param)
    optimizer.step()
    assert snsm.state_bytes(optimizer) == 2 * 400 + 4


def test_paper_llama_1b_states_are_reproduced():
    rows = {r["optimizer"]: r["gib"] for r in memory_rows("llama-1b", torch.bfloat16, 512, False)}
    assert (rows["adamw"], rows["adamw_sn"], rows["adamw_snsm"]) == (4.99, 2.62, 0.84)


def test_memory_cli_prints_json(capsys):
    import json
    assert main(["memory", "--model", "llama-60m", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["optimizer"] for r in rows} >= set(snsm.list_optimizers()) | {"galore", "muon"}
    assert next(r for r in rows if r["optimizer"] == "adamw")["pct_of_adamw"] == 100.0


@pytest.mark.parametrize("argv, message", [
    (["--measure", "--total"], "--measure and --total print two different tables"),
    (["--measure", "--world-size", "2"],
     "--world-size has no effect on the measured step (--measure); it is read by the per-GPU "
     "state table (--world-size) or the totals table (--total)"),
    (["--measure", "--no-bases"], "--no-bases has no effect on the measured step (--measure)"),
    (["--total", "--dtype", "fp32"], "--dtype has no effect on the totals table (--total)"),
    (["--total", "--state-precision", "8bit"], "--state-precision has no effect on the totals"),
    (["--world-size", "2", "--no-peers"], "--no-peers has no effect on the per-GPU state table"),
    (["--micro-batch", "4"], "--micro-batch has no effect on the state table; it is read by the "
                             "totals table (--total) or the measured step (--measure)"),
    (["--checkpointing"], "--checkpointing has no effect on the state table"),
    (["--bf16-update", "kahan", "--dtype", "fp32"],
     "--bf16-update kahan has no effect with --dtype fp32"),
])
def test_memory_refuses_a_flag_its_table_would_ignore(argv, message, capsys):
    assert main(["memory", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [f"snsm: error: {err.splitlines()[0][13:]}"]
    assert message in err


def test_every_memory_flag_is_read_by_some_table():
    import argparse

    from snsm_workbench.cli.memory import COMMON, READS, add_parser

    parser = add_parser(argparse.ArgumentParser().add_subparsers())
    flags = {"--" + dest.replace("_", "-") for dest in vars(parser.parse_args([])) if dest != "run"}
    assert flags <= set(COMMON).union(*READS.values())


def test_memory_total_takes_world_sizes_and_no_bases(capsys):
    assert main(["memory", "--total", "--world-size", "1", "8", "--no-bases",
                 "--model", "llama-60m"]) == 0
    out = capsys.readouterr().out
    assert "1 GPU," in out and "8 GPUs," in out and "projector bases not counted" in out
