"""The one-way import rule of docs/architecture.md, checked on the source tree.

Every import of an ``snsm`` module, lazy ones inside functions included, must go
to the importer's layer or a lower one. ``import snsm`` (the public facade)
counts as the measure layer, since the facade re-exports the library and the
memory measurements.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Package prefix -> layer; a module takes the layer of its longest matching prefix.
LAYERS = {
    "snsm.util": 0,                                                       # helpers
    "snsm.rules": 1, "snsm.projectors": 1, "snsm.optim": 1,               # the library
    "snsm": 2, "snsm.measure": 2,                                         # measurements
    "snsm.train": 3, "snsm.lab": 3, "snsm.integrations": 3,               # applications
    "snsm.bench": 4,                                                      # (the bench runs train)
    "snsm.cli": 5, "snsm.__main__": 5,                                    # command line
}
NAMES = {0: "util", 1: "library", 2: "measure", 3: "applications", 4: "bench", 5: "cli"}


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
    return [(line, m) for line, m in found if m == "snsm" or m.startswith("snsm.")]


def upward_imports(root: Path) -> list[str]:
    """Each import that goes to a higher layer, as 'file:line: importer (layer) -> module'."""
    problems = []
    for path in sorted((root / "snsm").rglob("*.py")):
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
    packages = {module_name(p, SRC) for p in (SRC / "snsm").rglob("__init__.py")}
    assert all(any(p == k or p.startswith(k + ".") for k in LAYERS) for p in packages)


def test_the_check_catches_an_upward_import(tmp_path):
    for package in ("snsm", "snsm/optim", "snsm/cli", "snsm/util"):
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "snsm/cli/main.py").write_text("from snsm.optim import x\n")
    (tmp_path / "snsm/util/fine.py").write_text("import math\n")
    assert upward_imports(tmp_path) == []
    (tmp_path / "snsm/optim/bad.py").write_text("def f():\n    from snsm.cli import main\n")
    (tmp_path / "snsm/util/worse.py").write_text("from .. import optim\n")
    problems = upward_imports(tmp_path)
    assert len(problems) == 2
    assert "snsm.optim.bad (library) imports snsm.cli.main (cli)" in problems[0]
    assert "snsm.util.worse (util) imports snsm.optim (library)" in problems[1]
