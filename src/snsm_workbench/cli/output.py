"""Printing rows: aligned text columns, or JSON with ``--json``."""

from __future__ import annotations

import json

import torch

from snsm_workbench.util.tables import Column, text_table

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def print_rows(rows: list[dict], columns: list[Column], as_json: bool) -> None:
    print(json.dumps(rows, indent=2) if as_json else text_table(rows, columns))
