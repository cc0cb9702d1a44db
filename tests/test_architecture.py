"""The one-way import rule of docs/architecture.md, checked on the source tree.

Two packages: the library ``snsm`` and the workbench ``snsm_workbench`` above it. Every
import of a module of either, lazy ones inside functions included, must go to the
importer's layer or a lower one, so the library never imports the workbench. ``import snsm``
(the public facade) sits above the rest of the library. A fresh interpreter shows that
``import snsm`` loads no third-party module beyond torch and torch's own dependencies.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import json
import re
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Package prefix -> layer; a module takes the layer of its longest matching prefix.
LAYERS = {
    "snsm.checks": 0,                                                     # argument checks
    "snsm.rules": 1, "snsm.projectors": 1, "snsm.optim": 1,               # the library
    "snsm": 2, "snsm.memory": 2, "snsm.integrations": 2,                  # its public face
    "snsm_workbench": 3, "snsm_workbench.util": 3,                        # workbench helpers
    "snsm_workbench.measure": 4,                                          # measurements
    "snsm_workbench.train": 5, "snsm_workbench.lab": 5,                   # harness, lab
    "snsm_workbench.bench": 6,                                            # (the bench runs train)
    "snsm_workbench.cli": 7, "snsm_workbench.__main__": 7,                # command line
}
NAMES = {0: "checks", 1: "library", 2: "facade", 3: "util", 4: "measure", 5: "applications",
         6: "bench", 7: "cli"}
PACKAGES = ("snsm", "snsm_workbench")


def layer(module: str) -> int:
    matches = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    return LAYERS[max(matches, key=len)]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, module) for every snsm module ``path`` imports."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # `from snsm.x import y`: y may be a module itself
                sub = f"{base}.{alias.name}"
                where = root / Path(*sub.split("."))
                is_module = where.is_dir() or where.with_suffix(".py").exists()
                found.append((node.lineno, sub if is_module else base))
    return [(line, m) for line, m in found if m.split(".")[0] in PACKAGES]


def upward_imports(root: Path) -> list[str]:
    """Each import that goes to a higher layer, as 'file:line: importer (layer) -> module'."""
    problems = []
    for path in sorted(p for package in PACKAGES for p in (root / package).rglob("*.py")):
        importer = module_name(path, root)
        for line, module in imported_modules(path, root):
            if layer(module) > layer(importer):
                problems.append(f"{path.relative_to(root)}:{line}: {importer} "
                                f"({NAMES[layer(importer)]}) imports {module} "
                                f"({NAMES[layer(module)]})")
    return problems


def test_every_import_goes_down_or_sideways():
    assert upward_imports(SRC) == []


def test_every_package_has_a_layer():
    packages = {module_name(p, SRC) for package in PACKAGES
                for p in (SRC / package).rglob("__init__.py")}
    assert all(any(p == k or p.startswith(k + ".") for k in LAYERS) for p in packages)


def test_the_check_catches_an_upward_import(tmp_path):
    for package in ("snsm", "snsm/optim", "snsm_workbench", "snsm_workbench/cli",
                    "snsm_workbench/util"):
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "snsm_workbench/cli/main.py").write_text("from snsm.optim import x\n")
    (tmp_path / "snsm_workbench/util/fine.py").write_text("import math\n")
    assert upward_imports(tmp_path) == []
    (tmp_path / "snsm/optim/bad.py").write_text("def f():\n    from snsm_workbench.cli import main\n")
    (tmp_path / "snsm_workbench/util/worse.py").write_text("from .. import cli\n")
    problems = upward_imports(tmp_path)
    assert len(problems) == 2
    assert "snsm.optim.bad (library) imports snsm_workbench.cli.main (cli)" in problems[0]
    assert "snsm_workbench.util.worse (util) imports snsm_workbench.cli (cli)" in problems[1]


def _requirement_names(distribution: str) -> set[str]:
    """Top-level module names of ``distribution``'s required (non-extra) dependencies, closed
    under their own requirements."""
    provided = metadata.packages_distributions()
    by_distribution: dict[str, set[str]] = {}
    for module, distributions in provided.items():
        for name in distributions:
            by_distribution.setdefault(name.lower().replace("_", "-"), set()).add(module)
    seen, todo, modules = set(), [distribution], set()
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        modules |= by_distribution.get(name, set())
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [re.split(r"[ ;<>=!~\[]", r, maxsplit=1)[0] for r in requires if "extra ==" not in r]
    return modules


def _top_level_modules_after(statement: str) -> set[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    return set(json.loads(result.stdout))


def test_import_snsm_loads_nothing_beyond_torch():
    """What ``import snsm`` adds to ``import torch`` is snsm and torch's own requirements (the
    distributed and compile modules of torch load sympy, for example)."""
    added = _top_level_modules_after("import snsm") - _top_level_modules_after("import torch")
    assert "snsm" in added and "snsm_workbench" not in added
    assert added - {"snsm"} - set(sys.stdlib_module_names) <= _requirement_names("torch")


MAX_FILE_LINES = 400
MAX_FUNCTION_CODE_LINES = 60


def code_lines(lines: list[str], node: ast.AST) -> int:
    """Lines of ``node`` that hold code: not blank, not only a comment, not its docstring."""
    skip: set[int] = set()
    body = getattr(node, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        skip = set(range(body[0].lineno, body[0].end_lineno + 1))
    return sum(1 for number in range(node.lineno, node.end_lineno + 1)
               if number not in skip and lines[number - 1].strip()
               and not lines[number - 1].strip().startswith("#"))


def oversized(root: Path) -> list[str]:
    """Each source file over MAX_FILE_LINES lines and each function over
    MAX_FUNCTION_CODE_LINES lines of code, as 'path[:name]: count'."""
    found = []
    for path in sorted(p for package in PACKAGES for p in (root / package).rglob("*.py")):
        text = path.read_text()
        lines = text.splitlines()
        where = path.relative_to(root)
        if len(lines) > MAX_FILE_LINES:
            found.append(f"{where}: {len(lines)} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                count = code_lines(lines, node)
                if count > MAX_FUNCTION_CODE_LINES:
                    found.append(f"{where}:{node.name}: {count} lines of code")
    return found


def test_no_oversized_file_or_function():
    assert oversized(SRC) == []


def test_the_size_check_catches_a_long_function(tmp_path):
    (tmp_path / "snsm").mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_CODE_LINES + 1))
    (tmp_path / "snsm" / "long.py").write_text(f'def f():\n    """Doc."""\n{body}')
    (tmp_path / "snsm_workbench").mkdir()
    assert oversized(tmp_path) == [f"snsm/long.py:f: {MAX_FUNCTION_CODE_LINES + 2} lines of code"]
