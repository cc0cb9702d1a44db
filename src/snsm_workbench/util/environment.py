"""What a record needs to be reproduced: package versions, the machine, the commit."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

NOT_INSTALLED = "not installed"


def package_version(name: str) -> str:
    """The installed version of distribution ``name``, or ``"not installed"``."""
    try:
        return version(name)
    except PackageNotFoundError:
        return NOT_INSTALLED


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    """``{name: version}`` for each distribution of ``names``."""
    return {name: package_version(name) for name in names}


def _cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in
                    Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False).stdout.strip() or None
    except OSError:
        return None


def environment(names: tuple[str, ...]) -> dict:
    """Date, Python, platform, CPU, torch threads, CUDA device, git commit and versions."""
    import torch

    return {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "python": platform.python_version(), "platform": platform.platform(),
            "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "git_commit": _git_commit(), "versions": package_versions(names)}
