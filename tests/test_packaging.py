"""The distribution installs like a library: a wheel and an sdist that ``twine check`` passes, a
wheel that works in a fresh environment holding torch alone (its suites and the demo's digest of
the standard record are package data), and workbench commands that name the extra they need.
Nothing is downloaded: the build uses this environment's setuptools."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from snsm_workbench.bench import demo_record
from test_architecture import _requirement_names

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "src" / "snsm_workbench" / "suites"
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "src")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """A wheel and an sdist built from a copy of the sources (the checkout stays clean)."""
    work = tmp_path_factory.mktemp("build")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, work / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, work / name)
    out = work / "dist"
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
                    str(work)], check=True, capture_output=True, text=True)
    return out


def test_wheel_and_sdist_pass_twine_check(dist):
    files = sorted(dist.iterdir())
    assert sorted(f.suffix for f in files) == [".gz", ".whl"]
    result = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_wheel_metadata_and_contents(dist):
    wheel = next(dist.glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    import snsm
    assert f"Version: {snsm.__version__}" in meta
    assert "License-Expression: Apache-2.0" in meta and "Classifier: Typing :: Typed" in meta
    assert "snsm/py.typed" in names and "snsm/optim/named.py" in names
    assert "snsm_workbench/cli/__init__.py" in names
    assert {f"snsm_workbench/suites/{p.name}" for p in SUITES.glob("*.json")} <= set(names)
    assert "snsm_workbench/suites/standard.json" in names
    assert "snsm_workbench/bench/standard_digest.json" in names
    assert not any(name.startswith("tests/") for name in names)


def _torch_only_site(target: Path) -> Path:
    """A folder of links to torch and the distributions torch requires, nothing else."""
    target.mkdir()
    site = Path(metadata.distribution("torch").locate_file(""))
    for module in _requirement_names("torch") | {"torch", "torchgen", "functorch"}:
        for candidate in (site / module, site / f"{module}.py"):
            if candidate.exists():
                os.symlink(candidate, target / candidate.name)
    return target


def test_wheel_works_in_a_torch_only_environment(dist, tmp_path):
    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "torch_only.pth").write_text(str(_torch_only_site(tmp_path / "torch_only")) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--target", str(site), str(next(dist.glob("*.whl")))], check=True)
    code = ("import torch, snsm\n"
            "model = torch.nn.Sequential(torch.nn.Embedding(50, 16), torch.nn.Linear(16, 50))\n"
            "opt = snsm.create_optimizer(model, 'adamw_snsm', lr=1e-2, rank=4)\n"
            "model(torch.randint(0, 50, (2, 8))).logsumexp(-1).mean().backward()\n"
            "opt.step()\n"
            "print(snsm.state_bytes(opt) > 0)\n")
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    train = subprocess.run([str(python), "-m", "snsm_workbench", "train", "--steps", "1"],
                           capture_output=True, text=True)
    assert train.returncode == 2 and "Traceback" not in train.stderr
    assert re.fullmatch(r"snsm: error: this command needs (transformers|numpy|tokenizers), from "
                        r"the 'train' extra: pip install 'snsm\[train\]'",
                        train.stderr.strip().splitlines()[-1])
    _check_the_workbench_data(python, tmp_path)


def _check_the_workbench_data(python: Path, cwd: Path) -> None:
    """In the wheel's environment (outside the checkout): ``snsm list``, every suite file, the
    demo's digest, and one clear error from what needs a checkout."""
    listed = subprocess.run([str(python), "-m", "snsm_workbench", "list"], cwd=cwd,
                            capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert "adamw_snsm" in listed.stdout
    code = ("import json\n"
            "from snsm_workbench.bench import demo_record, suites\n"
            "from snsm_workbench.bench.stage_plan import load_plan\n"
            "from snsm_workbench.bench.suite_files import SUITES_DIR, load_suite_file\n"
            "load_suite_file('demo'), load_plan()\n"
            "record = demo_record.load_record()\n"
            "print(json.dumps({'folder': str(SUITES_DIR), 'suites': sorted(suites.SUITES),\n"
            "                  'sentence': demo_record.record_sentence(record),\n"
            "                  'lrs': demo_record.record_lrs(record)}))\n")
    result = subprocess.run([str(python), "-c", code], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert Path(out["folder"]).parent.parent.name == "site-packages"  # not the checkout's
    assert out["suites"] == sorted(p.stem for p in SUITES.glob("*.json") if p.stem != "standard")
    assert out["sentence"].startswith("The standard record (benchmarks/records/2026-11-29-")
    checkout = demo_record.record_lrs(demo_record.load_record())
    assert out["lrs"] == {label: list(lrs) for label, lrs in checkout.items()}
    root = subprocess.run([str(python), "-c", "from snsm_workbench.util.paths import "
                           "repository_root; repository_root('the bench records')"],
                          cwd=cwd, capture_output=True, text=True)
    assert root.returncode == 1
    assert "FileNotFoundError: the bench records needs a repository checkout" in root.stderr
