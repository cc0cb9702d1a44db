"""Which suite a record folder holds, so that no suite writes over another suite's record.

A record's suite is named by its ``results.json`` (``suite``: a short suite's; ``stages``: the
standard suite's), else by its ``config.json`` (``suite``), else by ``runs/settings.json``
(the standard suite's, interrupted before its first report). A folder holding none of them is
free.
"""

from __future__ import annotations

import json
from pathlib import Path

STANDARD = "standard"


def _read(path: Path) -> dict | None:
    """``path``'s JSON object; ValueError naming it when it exists but is not one."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); is this a record?") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object; is this a record?")
    return data


def record_suite(folder: Path) -> str | None:
    """The suite whose record ``folder`` holds (None: no record there)."""
    folder = Path(folder)
    results = _read(folder / "results.json")
    if results is not None:
        if isinstance(results.get("suite"), str):
            return results["suite"]
        return STANDARD if "stages" in results else "unknown"
    config = _read(folder / "config.json")
    if config is not None:
        return config["suite"] if isinstance(config.get("suite"), str) else "unknown"
    return STANDARD if (folder / "runs" / "settings.json").is_file() else None


def check_record_suite(folder: Path, suite: str) -> None:
    """ValueError when ``folder`` holds the record of another suite than ``suite``."""
    found = record_suite(folder)
    if found is not None and found != suite:
        raise ValueError(f"{folder} holds a record of the {found!r} suite, not {suite!r}; "
                         f"use another --out")
