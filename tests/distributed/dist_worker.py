"""Run under torchrun (2 ranks, gloo): FSDP2 / DDP runs against one process, and DCP checkpoints.

``python -m torch.distributed.run --standalone --nproc_per_node=2 dist_worker.py MODE OUT``

* ``equivalence``: for every entry of ``CONFIGS``, 10 steps of a tiny model under FSDP2
  (every Linear and the root sharded), under DDP, and under DDP with the steps inside the
  backward pass (``snsm.step_in_backward``), each rank on half of the global batch, and 10 steps of the same model in this process on the whole batch. Writes
  ``OUT/equivalence-<rank>.json``: the largest relative parameter difference per
  configuration and mode, and the measured and estimated state bytes of this rank.
* ``checkpoint``: FSDP2, 4 steps, DCP save (model + optimizer), 4 more steps; a fresh
  model and optimizer load the checkpoint and take the same 4 steps. Writes
  ``OUT/checkpoint-<rank>.json`` (the differences) and keeps the checkpoint in
  ``OUT/dcp``, the parameters after steps 4 and 8 in ``OUT/params-{4,8}.pt`` for the
  2->1 test. Then the training harness (``CORPUS``, ``CACHE`` given): ``snsm train
  --parallel fsdp`` for 6 steps in ``OUT/whole``, against a run saved at step 3 and
  resumed by a new Trainer, and against a ``--parallel ddp`` run of the same config.

``python -m torch.distributed.run ... dist_worker.py checkpoint OUT CORPUS CACHE``
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.nn.functional as F
from torch import nn
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel

import snsm

STEPS = 10
GLOBAL_BATCH = 8
SM = {"rank": 2, "update_gap": 3}
# name -> (registry name, hyperparameters): every registry optimizer, every projector.
CONFIGS = {
    "adamw": ("adamw", {"lr": 1e-2, "weight_decay": 0.1}),
    "adamw_sn": ("adamw_sn", {"lr": 1e-2}),
    **{f"adamw_snsm[{p}]": ("adamw_snsm", {"lr": 1e-2, "projector": p, **SM})
       for p in ("uniform", "gaussian", "srht", "svd", "rsvd", "topk")},
    "adamw_snsm[svd,project]": ("adamw_snsm", {"lr": 1e-2, "projector": "svd",
                                               "on_refresh": "project", **SM}),
    "adamw_snsm[gaussian,project,foreach]": ("adamw_snsm", {
        "lr": 1e-2, "projector": "gaussian", "on_refresh": "project", "foreach": True, **SM}),
    # compile=True: the plain group (local rules) compiles, the SN/SM group steps eagerly.
    "adamw_snsm[gaussian,compile]": ("adamw_snsm", {"lr": 1e-2, "projector": "gaussian",
                                                    "compile": True, **SM}),
    "adagrad": ("adagrad", {"lr": 1e-2}),
    "adagrad_norm": ("adagrad_norm", {"lr": 1e-2}),
    "adagrad_sn": ("adagrad_sn", {"lr": 1e-2, "foreach": True}),
    "adagrad_snsm[srht]": ("adagrad_snsm", {"lr": 1e-2, "projector": "srht", **SM}),
    "rmsprop_sn": ("rmsprop_sn", {"lr": 1e-3}),
    "sgd_sm[uniform]": ("sgd_sm", {"lr": 1e-2, "projector": "uniform", **SM}),
    "sgd_sm[svd]": ("sgd_sm", {"lr": 1e-2, "projector": "svd", **SM}),
    # 8-bit states: codes and scales of row- and column-split momenta (snsm.rules.quantize).
    "adamw[8bit]": ("adamw", {"lr": 1e-2, "state_precision": "8bit"}),
    "adamw_snsm[uniform,8bit]": ("adamw_snsm", {"lr": 1e-2, "projector": "uniform",
                                                "state_precision": "8bit", **SM}),
    "adamw_snsm[gaussian,8bit]": ("adamw_snsm", {"lr": 1e-2, "projector": "gaussian",
                                                 "state_precision": "8bit", **SM}),
    # The Muon family: each step all-gathers a matrix's numerator (snsm.optim.sharding).
    "muon[fp32]": ("muon", {"lr": 1e-2, "ns_dtype": "float32"}),
    "muon_snsm[uniform,heuristic,fp32]": ("muon_snsm", {
        "lr": 1e-2, "ns_dtype": "float32", "projector": "uniform", "normalize": "heuristic",
        **SM}),
    "muon_sm[gaussian,buffer,fp32]": ("muon_sm", {
        "lr": 1e-2, "ns_dtype": "float32", "projector": "gaussian", "complement": "buffer",
        **SM}),
    # Pure-bf16 weights, stochastic rounding: a shard rounds with its rows' bits of the whole.
    "adamw[bf16]": ("adamw", {"lr": 1e-2}),
    "adamw_snsm[uniform,bf16]": ("adamw_snsm", {"lr": 1e-2, "projector": "uniform", **SM}),
}
BF16 = ("adamw[bf16]", "adamw_snsm[uniform,bf16]")  # their models' weights are bf16

# Configurations also run under HSDP (2-D mesh), one per projector family and Subset-Norm.
HSDP = ("adamw_sn", "adamw_snsm[uniform]", "adamw_snsm[gaussian]", "adamw_snsm[svd]")


class TinyModel(nn.Module):
    """Uneven shards everywhere over 2 ranks: a tall (17 x 12) and a wide (11 x 17) matrix,
    a one-row matrix (rank 1 holds none of it), biases and an embedding."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(13, 12)
        self.tall = nn.Linear(12, 17)
        self.wide = nn.Linear(17, 11, bias=False)
        self.row = nn.Linear(11, 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(self.tall(self.embed(tokens)))
        return self.row(torch.tanh(self.wide(hidden))).squeeze(-1)


def make_model(seed: int = 0, dtype: torch.dtype = torch.float32) -> TinyModel:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TinyModel().to(dtype)


def make_batches(steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return [(torch.randint(0, 13, (GLOBAL_BATCH, 5), generator=generator),
             torch.randn(GLOBAL_BATCH, 5, generator=generator)) for _ in range(steps)]


def shard_fsdp(model: nn.Module, mesh=None) -> nn.Module:
    """FSDP2 on every Linear and the root; ``mesh`` 2-D (replicate, shard) for HSDP."""
    for module in (model.tall, model.wide, model.row):
        fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def local_half(batch, rank: int, world: int):
    per_rank = GLOBAL_BATCH // world
    return tuple(t[rank * per_rank:(rank + 1) * per_rank] for t in batch)


def train(model, optimizer, batches) -> None:
    for tokens, target in batches:
        output = model(tokens)
        F.mse_loss(output, target.to(output.dtype)).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def full_params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name.replace("module.", ""): (p.full_tensor() if isinstance(p, DTensor) else p)
            .detach().clone() for name, p in model.named_parameters()}


def relative_difference(got: dict, want: dict) -> float:
    return max(((got[k].float() - want[k].float()).norm() / want[k].float().norm()).item()
               for k in want)


def full_state(optimizer, skip: frozenset = frozenset()) -> dict[str, torch.Tensor]:
    """The optimizer's state tensors, gathered to full size, keyed "param id/key"."""
    return {f"{pid}/{key}": (value.full_tensor() if isinstance(value, DTensor) else value)
            .float().clone()
            for pid, state in optimizer.state_dict()["state"].items()
            for key, value in state.items() if key not in skip}


def state_difference(got: dict, want: dict) -> float:
    """The largest relative difference of two states (absolute where a tensor is zero); 8-bit
    codes are compared through their values (code * scale)."""
    assert got.keys() == want.keys(), (sorted(got), sorted(want))
    got, want = dequantized(got), dequantized(want)
    return max(((got[k] - want[k]).norm() / max(want[k].norm(), 1e-12)).item() for k in want)


def dequantized(state: dict) -> dict:
    """``full_state`` with each 8-bit state (codes beside a "<key>_scale") as its values."""
    from snsm.rules.quantize import dequantize

    out = dict(state)
    for key in state:
        if key + "_scale" in state:
            out[key] = dequantize(state[key].to(torch.uint8), state[key + "_scale"],
                                  not key.endswith("accumulator"), torch.float32)
    return out


def equivalence(out: Path, rank: int, world: int) -> None:
    batches = make_batches(STEPS)
    local = [local_half(b, rank, world) for b in batches]
    results = {}
    for label, (name, hparams) in CONFIGS.items():
        # compile=True only under FSDP2: the eager reference and DDP spare two compilations.
        eager = {k: v for k, v in hparams.items() if k != "compile"}
        dtype = torch.bfloat16 if label in BF16 else torch.float32
        new_model = functools.partial(make_model, dtype=dtype)
        reference = new_model()
        reference_optimizer = snsm.create_optimizer(reference, name, **eager)
        train(reference, reference_optimizer, batches)
        want = full_params(reference)
        # An SVD basis is defined up to the signs of its vectors (and so is the momentum in it).
        skip = frozenset({"basis", "momentum"}) if hparams.get("projector") in (
            "svd", "rsvd") else frozenset()
        row = {}
        fsdp = shard_fsdp(new_model())
        optimizer = snsm.create_optimizer(fsdp, name, **hparams)
        train(fsdp, optimizer, local)
        row["fsdp"] = relative_difference(full_params(fsdp), want)
        row["fsdp_state"] = state_difference(full_state(optimizer, skip),
                                             full_state(reference_optimizer, skip))
        row["state_bytes"] = snsm.state_bytes(optimizer)
        row["estimated_bytes"] = snsm.estimate_state_bytes(
            new_model(), name, world_size=world, shard_index=rank,
            **{k: v for k, v in eager.items() if k not in ("lr", "weight_decay")})
        if label in HSDP:  # a (1, 2) mesh: placements (Replicate(), Shard(0))
            mesh = init_device_mesh("cpu", (1, world), mesh_dim_names=("replicate", "shard"))
            hsdp = shard_fsdp(new_model(), mesh)
            hsdp_optimizer = snsm.create_optimizer(hsdp, name, **eager)
            train(hsdp, hsdp_optimizer, local)
            row["hsdp"] = relative_difference(full_params(hsdp), want)
            row["hsdp_state"] = state_difference(full_state(hsdp_optimizer, skip),
                                                 full_state(reference_optimizer, skip))
        ddp = DistributedDataParallel(new_model())
        train(ddp, snsm.create_optimizer(ddp.module, name, **eager), local)
        row["ddp"] = relative_difference(full_params(ddp), want)
        row["fsdp_vs_ddp_max_abs"] = max((a.float() - b.float()).abs().max().item() for a, b in
                                         zip(full_params(fsdp).values(),
                                             full_params(ddp).values()))
        overlapped = DistributedDataParallel(new_model())
        in_backward = snsm.create_optimizer(overlapped.module, name, **eager)
        snsm.step_in_backward(overlapped, in_backward)
        train(overlapped, in_backward, local)
        row["ddp_in_backward_max_abs"] = max(
            (a - b).abs().max().item() for a, b in zip(full_params(overlapped).values(),
                                                       full_params(ddp).values()))
        results[label] = row
    (out / f"equivalence-{rank}.json").write_text(json.dumps(results, indent=1))


def checkpoint(out: Path, rank: int, world: int) -> None:
    name, hparams = "adamw_snsm", {"lr": 1e-2, "projector": "svd", **SM}
    batches = [local_half(b, rank, world) for b in make_batches(8)]
    model = shard_fsdp(make_model())
    optimizer = snsm.create_optimizer(model, name, **hparams)
    train(model, optimizer, batches[:4])
    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optimizer": optim_sd}, checkpoint_id=str(out / "dcp"))
    params_at_4 = full_params(model)
    if rank == 0:
        torch.save(params_at_4, out / "params-4.pt")
    train(model, optimizer, batches[4:])
    want = full_params(model)

    resumed = shard_fsdp(make_model(seed=123))  # other weights: all must come from the file
    resumed_optimizer = snsm.create_optimizer(resumed, name, **hparams)
    model_sd, optim_sd = get_state_dict(resumed, resumed_optimizer)
    dcp.load({"model": model_sd, "optimizer": optim_sd}, checkpoint_id=str(out / "dcp"))
    set_state_dict(resumed, resumed_optimizer, model_state_dict=model_sd,
                   optim_state_dict=optim_sd)
    loaded = relative_difference(full_params(resumed), params_at_4)
    train(resumed, resumed_optimizer, batches[4:])
    got = full_params(resumed)
    if rank == 0:
        torch.save(want, out / "params-8.pt")
    result = {"loaded": loaded, "resumed": relative_difference(got, want),
              "bitwise": all(torch.equal(got[k], want[k]) for k in want)}
    (out / f"checkpoint-{rank}.json").write_text(json.dumps(result))


# The harness run of ``harness``: TrainConfig fields, and the same as ``snsm train`` flags.
HARNESS = dict(preset="tiny", optimizer="adamw_snsm", steps=6, batch_size=2, seq_len=32,
               vocab_size=300, eval_every=3, eval_batches=1, save_every=3, quiet=True,
               parallel="fsdp", optimizer_args={"rank": 4, "update_gap": 2})


def harness_argv(out: Path, corpus: str, cache: str) -> list[str]:
    argv = ["train", "--opt", "rank=4", "--opt", "update_gap=2", "--data", corpus,
            "--cache-dir", cache, "--out", str(out)]
    for key, value in HARNESS.items():
        if key == "quiet":
            argv.append("--quiet")
        elif key != "optimizer_args":
            argv += ["--" + key.replace("_", "-"), str(value)]
    return argv


def harness(out: Path, rank: int, corpus: str, cache: str) -> None:
    """``snsm train --parallel fsdp`` (the CLI's entry point, on every rank) for 6 steps;
    a run saved at step 3 by a Trainer and resumed by a new one; a ``--parallel ddp``
    run of the same config. The two last are compared with the first."""
    from snsm_workbench.cli import main as cli_main
    from snsm_workbench.train.config import TrainConfig
    from snsm_workbench.train.loop import Trainer

    cli_main(harness_argv(out / "whole", corpus, cache))
    whole = Trainer(TrainConfig(resume=str(out / "whole"), quiet=True))  # loads step 6
    fields = dict(HARNESS, data=corpus, cache_dir=cache)
    cut = Trainer(TrainConfig(**fields, out=str(out / "cut")))
    for _ in range(3):
        cut.metrics.append(cut.train_step())
    cut.save()
    del cut
    resumed = Trainer(TrainConfig(**fields, resume=str(out / "cut")))
    start = resumed.step
    resumed.run()
    want, got = full_params(whole.model), full_params(resumed.model)
    ddp = Trainer(TrainConfig(**{**fields, "parallel": "ddp"}, out=str(out / "ddp")))
    ddp.run()
    whole_records = [json.loads(line) for line in
                     (out / "whole" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in whole_records if "loss" in r]
    result = {"whole_step": whole.step, "resumed_at": start,
              "bitwise": all(torch.equal(got[k], want[k]) for k in want),
              "losses": [losses[3:], [r["loss"] for r in resumed.metrics.records
                                      if "loss" in r and r["step"] > 3]],
              "ddp_vs_fsdp": relative_difference(full_params(ddp.model), want),
              "ddp_losses": [r["loss"] for r in ddp.metrics.records if "loss" in r],
              "fsdp_losses": losses}
    (out / f"trainer-{rank}.json").write_text(json.dumps(result))


def main() -> None:
    mode, out = sys.argv[1], Path(sys.argv[2])
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        if mode == "equivalence":
            equivalence(out, rank, world)
        else:
            checkpoint(out, rank, world)
            harness(out, rank, *sys.argv[3:5])
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
