#!/usr/bin/env python3
"""The prepared device check of the GPU path (``make gpu-check``; docs/gpu.md).

Its parts' time limits (``BUDGET_S`` and each ``limit``) bound it. Each part runs as a subprocess with its own
time limit; a part that fails or runs out of time is recorded and the next one runs:

1. ``tests``: the device-parametrized tests on CUDA (``pytest -k cuda``), the compiled
   ones last (``tests-compiled``: compilation takes most of their time);
2. ``speed-*``: ``snsm speed --device cuda``: every registry optimizer (projectors rsvd and
   uniform) and the peers whose packages are installed, against ``AdamW(foreach=True)`` and
   ``AdamW(fused=True)``, on llama-60m, llama-350m and llama-1b; the compiled path of
   adamw_sn and adamw_snsm on llama-60m;
3. ``train-*``: llama-60m with bf16 autocast, AdamW and AdamSNSM (tokens/s, peak memory);
4. ``bench-gpu``: ``snsm bench --suite gpu`` at 100 steps (the suite alone is sized for 8
   minutes), where that suite exists.

Writes ``benchmarks/records/<date>-gpu-check/`` (``--out``): ``summary.md``, ``summary.json``,
``environment.json`` and each part's output. Exit status 0 when every part passed, 1
otherwise, 2 without a CUDA GPU (one line on stderr).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "gpu-check"  # the training runs (checkpoints stay out of the record)
TEST_FILES = ["tests/snsm/optim/test_contract.py", "tests/snsm/optim/test_equivalence.py",
              "tests/snsm/projectors/test_projectors.py", "tests/snsm/test_memory.py",
              "tests/snsm/optim/test_sync_free.py", "tests/snsm/optim/test_gpu_path.py",
              "tests/snsm/optim/test_muon.py"]
PEERS = "galore,apollo,adam_mini,muon,adamw8bit"
TRAIN = ["--preset", "llama-60m", "--bf16", "--steps", "60", "--batch-size", "32",
         "--seq-len", "256", "--data", "python-stdlib", "--eval-every", "60",
         "--eval-batches", "2", "--save-every", "1000", "--quiet"]
BUDGET_S = 400  # no part starts after this many seconds; the longest limit is 80 s: 8 minutes


def parts(out: Path) -> list[dict]:
    """name, command (argv after ``python -m``), time limit in seconds, stdout file; the
    important parts first, since the last ones are skipped once the budget is spent."""
    snsm, speed = ["snsm"], ["snsm", "speed", "--device", "cuda", "--repeats", "5", "--json"]
    pytest = ["pytest", "-q", "-p", "no:cacheprovider", "-k"]
    plan = [dict(name="tests", limit=120, stdout="tests.log",
                 argv=[*pytest, "cuda and not compiled", *TEST_FILES])]
    for model, limit in (("llama-60m", 40), ("llama-350m", 45), ("llama-1b", 70)):
        plan.append(dict(name=f"speed-{model}", limit=limit, stdout=f"speed-{model}.json",
                         argv=[*speed, "--model", model, "--projectors", "rsvd,uniform",
                               "--peers", PEERS]))
    for optimizer, limit in (("adamw", 60), ("adamw_snsm", 40)):  # the first trains the BPE
        plan.append(dict(name=f"train-{optimizer}", limit=limit, stdout=f"train-{optimizer}.log",
                         argv=[*snsm, "train", "--device", "cuda", "--optimizer", optimizer,
                               *TRAIN, "--out", str(RUNS / f"train-{optimizer}")]))
    plan.append(dict(name="speed-llama-60m-compiled", limit=75,
                     stdout="speed-llama-60m-compiled.json",
                     argv=[*speed, "--model", "llama-60m", "--compile", "--optimizers",
                           "adamw_sn,adamw_snsm", "--projectors", "uniform"]))
    plan.append(dict(name="tests-compiled", limit=80, stdout="tests-compiled.log",
                     argv=[*pytest, "cuda and compiled", "tests/snsm/optim/test_compiled.py",
                           "tests/snsm/optim/test_sync_free.py"]))
    # The suite alone is sized for 8 minutes: here its code path at 100 steps.
    plan.append(dict(name="bench-gpu", limit=60, stdout="bench-gpu.log", needs_gpu_suite=True,
                     argv=[*snsm, "bench", "--suite", "gpu", "--steps", "100", "--data",
                           "python-stdlib", "--out", str(out / "bench-gpu"),
                           "--work", str(RUNS / "bench-gpu")]))
    return plan


def gpu_suite_exists() -> bool:
    """Whether ``snsm bench`` has a ``gpu`` suite (another issue adds it)."""
    if str(ROOT / "src") not in sys.path:
        sys.path.insert(0, str(ROOT / "src"))  # the checkout's snsm, installed or not
    from snsm_workbench.bench.suites import SUITES

    return "gpu" in SUITES


def environment() -> dict:
    import torch

    return {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "python": sys.version.split()[0], "torch": torch.__version__,
            "cuda": torch.version.cuda, "device": torch.cuda.get_device_name(0),
            "memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
            "git": _git_head()}


def _git_head() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_part(part: dict, out: Path, env: dict) -> dict:
    """Run one part; its stdout to ``out/part["stdout"]``, its stderr to ``<name>.err``."""
    start = time.monotonic()
    with open(out / part["stdout"], "w") as stdout, open(out / f"{part['name']}.err", "w") as err:
        try:
            code = subprocess.run([sys.executable, "-m", *part["argv"]], cwd=ROOT, env=env,
                                  stdout=stdout, stderr=err, timeout=part["limit"]).returncode
            status = "passed" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            status = f"timed out after {part['limit']} s"
    return {"name": part["name"], "status": status,
            "seconds": round(time.monotonic() - start, 1)}


def speed_rows(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return []


def train_summary(run_dir: Path) -> dict:
    """Median tokens/s after the first 10 steps and the peak memory of a training run."""
    try:
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text()
                   .splitlines() if line.strip()]
    except (OSError, ValueError):
        return {}
    speeds = [r["tokens_per_s"] for r in records if "tokens_per_s" in r and r.get("step", 0) > 10]
    peaks = [r["peak_memory_mb"] for r in records if "peak_memory_mb" in r]
    losses = [r["loss"] for r in records if "loss" in r]
    return {"tokens_per_s": round(statistics.median(speeds)) if speeds else None,
            "peak_memory_mb": round(max(peaks)) if peaks else None,
            "final_loss": round(losses[-1], 4) if losses else None}


def markdown(env: dict, results: list[dict], out: Path) -> str:
    lines = [f"# GPU check, {env['date']}", "",
             f"{env['device']} ({env['memory_gib']} GiB), torch {env['torch']}, CUDA "
             f"{env['cuda']}, Python {env['python']}, commit {env['git']}", "",
             "| part | status | seconds |", "|---|---|---|"]
    lines += [f"| {r['name']} | {r['status']} | {r['seconds']} |" for r in results]
    for result in results:
        if result["name"].startswith("speed-"):
            rows = speed_rows(out / f"{result['name']}.json")
            if rows:
                lines += ["", f"## {result['name']} (ms per step, amortized over update_gap)",
                          "", "| optimizer | projector | amortized | AdamW foreach | ratio | "
                          "AdamW fused | ratio vs fused | compiled ratio |",
                          "|---|---|---|---|---|---|---|---|"]
                lines += [f"| {r['optimizer']} | {r['projector']} | {r['amortized_ms']} | "
                          f"{r['adamw_ms']} | {r['ratio_vs_adamw']} | "
                          f"{r.get('fused_adamw_ms', '-')} | "
                          f"{r.get('ratio_vs_fused_adamw', '-')} | "
                          f"{r.get('compiled_ratio_vs_adamw', '-')} |" for r in rows]
    trains = {r["name"]: train_summary(RUNS / r["name"]) for r in results
              if r["name"].startswith("train-")}
    if trains:
        lines += ["", "## llama-60m, bf16 autocast, 60 steps", "",
                  "| optimizer | tokens/s | peak MiB | final loss |", "|---|---|---|---|"]
        lines += [f"| {name[6:]} | {t.get('tokens_per_s')} | {t.get('peak_memory_mb')} | "
                  f"{t.get('final_loss')} |" for name, t in trains.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="record folder (default: benchmarks/records/<date>-gpu-check)")
    parser.add_argument("--budget", type=float, default=BUDGET_S,
                        help="seconds after which no further part is started")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the parts' commands and exit (no GPU needed)")
    args = parser.parse_args(argv)
    day = datetime.date.today().isoformat()
    out = (args.out or ROOT / "benchmarks" / "records" / f"{day}-gpu-check").resolve()
    plan = parts(out)
    if args.dry_run:
        for part in plan:
            print(f"{part['name']} ({part['limit']} s): python -m {shlex.join(part['argv'])}")
        return 0
    import torch

    if not torch.cuda.is_available():
        print(f"gpu-check: needs a CUDA GPU; torch {torch.__version__} sees none",
              file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(RUNS, ignore_errors=True)  # a rerun trains afresh
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT / "src"), str(ROOT / "tests"), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1"}
    record = environment()
    (out / "environment.json").write_text(json.dumps(record, indent=2) + "\n")
    start, results = time.monotonic(), []
    for part in plan:
        if part.get("needs_gpu_suite") and not gpu_suite_exists():
            results.append({"name": part["name"], "status": "skipped (no gpu suite)",
                            "seconds": 0.0})
            continue
        if time.monotonic() - start > args.budget:
            results.append({"name": part["name"], "status": "skipped (budget spent)",
                            "seconds": 0.0})
            continue
        results.append(run_part(part, out, env))
        print(f"gpu-check: {results[-1]['name']}: {results[-1]['status']} "
              f"({results[-1]['seconds']} s)", flush=True)
    for result in results:  # each training run's metrics and config go into the record
        if result["name"].startswith("train-"):
            for name in ("metrics.jsonl", "config.json"):
                source = RUNS / result["name"] / name
                if source.is_file():
                    (out / f"{result['name']}-{name}").write_bytes(source.read_bytes())
    summary = markdown(record, results, out)
    (out / "summary.md").write_text(summary)
    (out / "summary.json").write_text(json.dumps({"environment": record, "parts": results},
                                                 indent=2) + "\n")
    print(summary)
    failed = [r for r in results if not r["status"].startswith(("passed", "skipped (no"))]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
