"""The suites' settings as data: ``snsm_workbench/suites/<name>.json``, loaded and checked here.

Every number of a suite (grids, stages, lean levels, search variants, seeds, steps) lives in
its JSON file; the Python holds the protocol. :func:`load_suite_file` reads one file and
:func:`check_keys` checks an object of it against the keys and types a caller expects; a bad
file raises :class:`SuiteFileError` naming the file and the key (``quick.json: contenders[2].lr:
expected a number, got 'x'``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Package data (src/snsm_workbench/suites/): a wheel holds them as an editable install does.
SUITES_DIR = Path(__file__).resolve().parents[1] / "suites"

_KINDS: dict[str, tuple[type, ...]] = {
    "int": (int,), "number": (int, float), "bool": (bool,), "str": (str,), "list": (list,),
    "dict": (dict,), "str|null": (str, type(None)), "int|null": (int, type(None)),
    "number|str|null": (int, float, str, type(None)), "str|int": (str, int),
}


class SuiteFileError(ValueError):
    """A suite file that is missing, not JSON, or holds a bad key."""


def suite_names(folder: Path = SUITES_DIR) -> list[str]:
    """The suites with a data file in ``folder``, sorted."""
    return sorted(path.stem for path in Path(folder).glob("*.json"))


def load_suite_file(name: str, folder: Path = SUITES_DIR) -> dict[str, Any]:
    """The JSON object of ``<folder>/<name>.json``; SuiteFileError naming the file otherwise."""
    path = Path(folder) / f"{name}.json"
    if not path.is_file():
        raise SuiteFileError(f"no suite file {path} (suites: {', '.join(suite_names(folder))})")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SuiteFileError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SuiteFileError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def check_keys(obj: Any, where: str, required: Mapping[str, str],
               optional: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``obj`` (a dict) with every ``required`` key and no key outside ``required`` and
    ``optional``, each of its kind (``"int"``, ``"number"``, ``"list"``, ...; see ``_KINDS``).
    ``where`` (``file: key``) starts every error."""
    optional = optional or {}
    if not isinstance(obj, dict):
        raise SuiteFileError(f"{where}: expected an object, got {obj!r}")
    missing = [key for key in required if key not in obj]
    if missing:
        raise SuiteFileError(f"{where}: missing key(s) {missing}")
    unknown = [key for key in obj if key not in required and key not in optional]
    if unknown:
        raise SuiteFileError(f"{where}: unknown key(s) {unknown}; expected "
                             f"{sorted({**required, **optional})}")
    for key, value in obj.items():
        kind = {**optional, **required}[key]
        wrong_bool = isinstance(value, bool) and "bool" not in kind
        if wrong_bool or not isinstance(value, _KINDS[kind]):
            raise SuiteFileError(f"{where}.{key}: expected {kind}, got {value!r}")
    return obj


def numbers(values: list, where: str) -> tuple[float, ...]:
    """``values`` as a tuple of floats; SuiteFileError naming ``where`` for a non-number."""
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float))]
    if bad:
        raise SuiteFileError(f"{where}: expected numbers, got {bad}")
    return tuple(float(v) for v in values)
