"""Step time of steps inside the backward pass against optimizer.step(), side by side.

The training step (forward, backward, clipping, optimizer) of the tiny LLaMA on Shakespeare,
AdamW and AdamSNSM each with optimizer.step() and with snsm.step_in_backward, in interleaved
rounds in one process (snsm_workbench.bench.interleaved: medians, warm-up round dropped). Writes
OUT/results.json and prints the ratios.

    python benchmarks/scripts/in_backward_overhead.py OUT [--rounds 9] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from snsm_workbench.bench.contenders import Contender
from snsm_workbench.bench.interleaved import interleaved_step_times
from snsm_workbench.bench.suites import SNSM_ARGS
from snsm_workbench.train.config import TrainConfig, harness_lr
from snsm_workbench.train.corpora import load_corpus
from snsm_workbench.train.tokens import prepare_tokens
from snsm_workbench.util.environment import environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = TrainConfig(preset="tiny", batch_size=16, grad_clip=0.0, quiet=True)
    data = prepare_tokens(load_corpus(None), Path(base.cache_dir).expanduser(), base.vocab_size)
    contenders = []
    for name, optimizer_args in (("adamw", {}), ("adamw_snsm", dict(SNSM_ARGS))):
        for in_backward in (False, True):
            label = name + ("_in_backward" if in_backward else "")
            contenders.append((Contender(label, name, False, harness_lr(name), (),
                                         optimizer_args, in_backward=in_backward),
                               harness_lr(name), None))
    times = interleaved_step_times(contenders, base, data, rounds=args.rounds)
    ratios = {name: round(times[f"{name}_in_backward"]["step_s"] / times[name]["step_s"], 4)
              for name in ("adamw", "adamw_snsm")}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"times": times, "in_backward_over_step": ratios, "rounds": args.rounds,
              "threads": args.threads, "config": base.to_dict(),
              "environment": environment(("snsm", "torch", "transformers"))}
    (out / "results.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    for name, ratio in ratios.items():
        print(f"{name}: training step with steps inside the backward pass / with "
              f"optimizer.step(): {ratio} (medians {times[name + '_in_backward']['step_s']:.4f} s"
              f" / {times[name]['step_s']:.4f} s)")


if __name__ == "__main__":
    main()
