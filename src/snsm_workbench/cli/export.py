"""``snsm export RUN OUT``: a ``snsm train`` run folder as a Hugging Face model folder."""

from __future__ import annotations

import argparse

from snsm_workbench.cli import add_command


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``export`` on the ``snsm`` command's subparsers."""
    export = add_command(
        subparsers, "export",
        description="Write the weights of the run's last checkpoint, the model config and, "
                    "when the run's token cache is still there, its tokenizer with "
                    "save_pretrained, so that LlamaForCausalLM.from_pretrained(OUT) and "
                    "AutoTokenizer.from_pretrained(OUT) load them.")
    export.add_argument("run_dir", metavar="RUN", help="run folder of snsm train (--out)")
    export.add_argument("out", metavar="OUT", help="new or empty folder to write")
    export.set_defaults(run=run_command)
    return export


def run_command(args: argparse.Namespace) -> int:
    from snsm_workbench.train.export import export_run

    written = export_run(args.run_dir, args.out)
    tokenizer = "model, config and tokenizer" if written["tokenizer"] else \
        "model and config (no tokenizer: the run's token cache is gone)"
    print(f"exported step {written['step']} of {args.run_dir} to {written['out']}: {tokenizer}")
    return 0
