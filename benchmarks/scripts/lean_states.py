"""8-bit states and pure-bf16 weights against fp32 on the tiny LLaMA (Shakespeare).

Every run: the tiny preset, STEPS steps of 16 x 128 tokens, seed 0, the harness defaults
(warmup + cosine, clipping 1.0), the optimizer's harness lr. Rows: AdamW and AdamSNSM with
fp32 weights and full-precision states, with 8-bit states, and with bf16 weights (no fp32
master copy) under nearest rounding, stochastic rounding and Kahan summation (the Kahan rows
came after the record of 2026-11-29), and all of these plus steps inside the backward pass
(which need per-parameter clipping). Finished runs are reused (resumable). Writes
OUT/results.json and OUT/table.md.

    python benchmarks/scripts/lean_states.py OUT [--steps 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from snsm_workbench.bench.suites import SNSM_ARGS
from snsm_workbench.train.config import TrainConfig
from snsm_workbench.train.loop import train
from snsm_workbench.train.metrics import METRICS_NAME, read_records
from snsm_workbench.util.environment import environment
from snsm_workbench.util.tables import markdown_table

VARIANTS = {  # label -> (weights, extra optimizer arguments, extra harness settings)
    "fp32": ("fp32", {}, {}),
    "8bit states": ("fp32", {"state_precision": "8bit"}, {}),
    "bf16 weights, nearest": ("bf16", {"bf16_update": "nearest"}, {}),
    "bf16 weights, stochastic rounding": ("bf16", {"bf16_update": "stochastic"}, {}),
    "bf16 weights, Kahan": ("bf16", {"bf16_update": "kahan"}, {}),
    # everything lean at once; steps inside the backward pass need per-parameter clipping
    "all: 8bit, bf16 + SR, in backward": (
        "bf16", {"state_precision": "8bit", "bf16_update": "stochastic"},
        {"step_in_backward": True, "clip_rule": "per-parameter"}),
}


def _run(out: Path, optimizer: str, variant: str, steps: int) -> dict:
    weights, extra, harness = VARIANTS[variant]
    slug = variant.replace(" ", "_").replace(",", "").replace(":", "").replace("+", "plus")
    folder = out / "runs" / f"{optimizer}-{slug}"
    records = read_records(folder / METRICS_NAME) if (folder / METRICS_NAME).is_file() else []
    if not any(r.get("step") == steps and "val_loss" in r for r in records):
        args = {**(SNSM_ARGS if optimizer == "adamw_snsm" else {}), **extra}
        train(TrainConfig(preset="tiny", optimizer=optimizer, steps=steps, eval_every=25,
                          save_every=steps, weights=weights, optimizer_args=args,
                          out=str(folder), quiet=True, **harness))
        records = read_records(folder / METRICS_NAME)
    final = [r["val_loss"] for r in records if "val_loss" in r][-1]
    state = [r["state_bytes"] for r in records if "state_bytes" in r][-1]
    return {"optimizer": optimizer, "variant": variant, "final_val_loss": round(final, 4),
            "state_bytes": state}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    rows = [_run(out, optimizer, variant, args.steps)
            for optimizer in ("adamw", "adamw_snsm") for variant in VARIANTS]
    for row in rows:
        base = next(r for r in rows if r["optimizer"] == row["optimizer"] and
                    r["variant"] == "fp32")
        row["gap_to_fp32_pct"] = round(100 * (row["final_val_loss"] / base["final_val_loss"] - 1),
                                       2)
        row["state_mib"] = round(row["state_bytes"] / 2**20, 2)
        row["final_val_ppl"] = round(math.exp(row["final_val_loss"]), 2)
    table = markdown_table(rows, [("optimizer", "optimizer"), ("variant", "variant"),
                                  ("final val loss", "final_val_loss"),
                                  ("ppl", "final_val_ppl"), ("gap to fp32 %", "gap_to_fp32_pct"),
                                  ("state MiB", "state_mib")])
    (out / "results.json").write_text(json.dumps(
        {"rows": rows, "steps": args.steps, "threads": args.threads,
         "environment": environment(("snsm", "torch", "transformers"))}, indent=2) + "\n")
    (out / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
