"""``snsm bench``: the benchmark suite against the peers (see :mod:`snsm_workbench.bench`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from snsm_workbench.bench.records import check_record_suite
from snsm_workbench.cli.args import nonnegative_int, positive_int as _positive
from snsm.optim.routing import ROUTES
from snsm_workbench.train.config import TrainConfig, check_paths, validate
from snsm_workbench.train.parallel import DEVICES, use_cuda
from snsm_workbench.util.paths import check_writable_folder


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``bench`` on the ``snsm`` command's subparsers."""
    from snsm_workbench.bench.suites import SUITES

    bench = subparsers.add_parser(
        "bench", help="benchmark our optimizers against the peers (results.json, report.md)")
    bench.add_argument("--suite", choices=[*SUITES, "standard"], default="demo")
    bench.add_argument("--optimizers", help="comma-separated contenders (default: the suite's; "
                                            "adamw, the baseline, is always run)")
    bench.add_argument("--seeds", type=_positive, help="seeds of our contenders")
    bench.add_argument("--steps", type=_positive, help="training steps (default: the suite's)")
    bench.add_argument("--tune", action=argparse.BooleanOptionalAction, default=None,
                       help="sweep each lr grid first (default: the suite's)")
    bench.add_argument("--route", choices=ROUTES, default=None,
                       help="routing of our optimizers: nn.Linear weights (the paper's) or "
                            "every matrix, the embedding too")
    bench.add_argument("--out", help="record folder (default: runs/bench/<date>-<suite>)")
    bench.add_argument("--work", help="folder of the individual runs (default: <out>/../work-"
                                      "<suite>)")
    bench.add_argument("--pretrain-steps", type=_positive,
                       help="finetune suite: AdamW pre-training steps on Shakespeare")
    bench.add_argument("--data", help="local text file or folder (default: Shakespeare)")
    bench.add_argument("--seq-len", type=_positive, help="sequence length (default: the preset's)")
    bench.add_argument("--batch-size", type=_positive, help="batch size (default: the suite's)")
    bench.add_argument("--vocab-size", type=_positive, help="BPE vocabulary size (default 8192)")
    bench.add_argument("--timing-rounds", type=nonnegative_int, default=5,
                       help="interleaved step-time rounds after the runs (0: use the runs' "
                            "own medians)")
    bench.add_argument("--threads", type=_positive, default=None,
                       help="torch CPU threads (default: torch's; 1 avoids oversubscription "
                            "on a machine shared with other jobs)")
    bench.add_argument("--cache-dir", default=None, help="token cache folder")
    bench.add_argument("--stages", help="standard suite: comma-separated stages (default: all; "
                                        "the headline always runs)")
    bench.add_argument("--workers", type=nonnegative_int, default=2,
                       help="runs trained in parallel worker processes, one thread each "
                            "(0: one at a time in this process)")
    bench.add_argument("--cached-only", action="store_true",
                       help="train nothing: rebuild the report of the record in --out (standard "
                            "suite: from its runs, the stages its results.json lists (or "
                            "--stages) whose runs are all there; the others are listed as "
                            "incomplete; other suites: from results.json)")
    bench.add_argument("--smoke", action="store_true",
                       help="the suite's code path in seconds on the CPU, on a generated "
                            "corpus (for tests)")
    bench.add_argument("--device", choices=DEVICES, default=None,
                       help="where to train (default: the suite's; gpu: cuda, others: auto)")
    bench.set_defaults(run=run_bench)
    return bench


def _check_settings(args: argparse.Namespace, out: Path, work: Path) -> None:
    """The harness settings and folders checked before any data is read or folder made."""
    given = {key: value for key in ("steps", "batch_size", "seq_len", "vocab_size", "data",
                                    "cache_dir") if (value := getattr(args, key)) is not None}
    config = validate(TrainConfig(**given, out=str(work)))
    check_writable_folder("--out", out)
    check_writable_folder("--work", work)
    check_paths(config)


def run_standard(args: argparse.Namespace) -> int:
    """``--suite standard``: the staged, fairly tuned suite (:mod:`snsm_workbench.bench.staged_suite`)."""
    from snsm_workbench.bench.stage_plan import PLAN, Settings
    from snsm_workbench.bench.staged_report import write_report
    from snsm_workbench.bench.staged_suite import StagedSuite, write_results

    out = Path(args.out or f"runs/bench/{time.strftime('%Y-%m-%d')}-standard")
    work = Path(args.work or out.parent / f"work-{out.name}")
    stages = tuple(s.strip() for s in args.stages.split(",")) if args.stages else PLAN.stages
    if args.cached_only and not args.stages and (out / "results.json").is_file():
        stages = _record_stages(out / "results.json", stages)  # the record's own report
    PLAN.check_stages(stages)  # before any folder is made
    check_record_suite(out, "standard")
    _check_settings(args, out, work)
    if args.smoke:
        from snsm_workbench.train.corpora import write_smoke_corpus
        data = str(write_smoke_corpus(work / "smoke-corpus"))
        second = str(write_smoke_corpus(work / "smoke-corpus-2", documents=4, words=1200))
        settings = Settings.smoke(data, second, args.cache_dir)
    else:
        settings = Settings.standard(args.data, args.cache_dir)
    results = StagedSuite(settings, out, work, args.workers,
                            train=not args.cached_only).run(stages)
    write_results(results, out)
    write_report(results, out)
    print(f"record: {out} (report.md, results.json, runs/)")
    return 0


def _record_stages(results: Path, default: tuple[str, ...]) -> tuple[str, ...]:
    """The stages a standard record was run with (its report rebuilds as it was)."""
    import json

    try:
        stages = json.loads(results.read_text()).get("stages")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return default
    return tuple(stages) if isinstance(stages, list) and stages else default


def rebuild_report(args: argparse.Namespace) -> int:
    """``--cached-only`` for a short suite: the report of ``--out`` from its results.json."""
    from snsm_workbench.bench.table_report import load_results, write_report

    if not args.out:
        raise ValueError("--cached-only needs --out: the record whose report to rebuild")
    results = Path(args.out) / "results.json"
    if not results.is_file():
        raise ValueError(f"--cached-only: no {results} to rebuild the report from")
    check_record_suite(Path(args.out), args.suite)
    write_report(load_results(results), args.out)
    print(f"record: {args.out} (report.md, val_loss.png, pareto.png rebuilt)")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from snsm_workbench.bench.short_suite import SuiteOptions, run_suite
    from snsm_workbench.bench.suites import get_suite, select
    from snsm_workbench.bench.table_report import format_table

    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    if args.suite == "standard":
        return run_standard(args)
    if args.cached_only:
        return rebuild_report(args)
    suite = get_suite(args.suite)
    if args.smoke:
        suite = suite.smoke()
        args.seq_len, args.vocab_size = args.seq_len or 32, args.vocab_size or 300
    if args.route:
        suite = suite.with_route(args.route)
    labels = [s.strip() for s in args.optimizers.split(",")] if args.optimizers else None
    suite = select(suite, labels)
    use_cuda(args.device or suite.device)  # no GPU for --device cuda: say so before any work
    out = Path(args.out or f"runs/bench/{time.strftime('%Y-%m-%d')}-{suite.name}")
    work = Path(args.work or out.parent / f"work-{out.name}")
    if args.smoke and args.data is None:
        from snsm_workbench.train.corpora import write_smoke_corpus

        check_writable_folder("--work", work)
        args.data = str(write_smoke_corpus(work / "smoke-corpus"))
    _check_settings(args, out, work)
    options = SuiteOptions(steps=args.steps, seeds=args.seeds, tune=args.tune,
                           cache_dir=args.cache_dir, pretrain_steps=args.pretrain_steps,
                           data=args.data, seq_len=args.seq_len, batch_size=args.batch_size,
                           vocab_size=args.vocab_size, timing_rounds=args.timing_rounds,
                           device=args.device, workers=args.workers)
    results = run_suite(suite, out, work, options)
    print(format_table(results["rows"]))
    for item in results["skipped"]:
        print(f"skipped {item['optimizer']}: {item['reason']}")
    print(f"record: {out} (report.md, results.json, val_loss.png, pareto.png)")
    return 0
