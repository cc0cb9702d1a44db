"""The repository checkout, for what only a checkout has: found from a source tree, one clear
error from an installed package."""

from pathlib import Path

import pytest

from snsm_workbench.util import paths


def test_the_checkout_is_found_from_the_source_tree():
    root = paths.repository_root("the records")
    assert (root / "pyproject.toml").is_file() and (root / "benchmarks" / "records").is_dir()
    assert root == Path(__file__).resolve().parents[3]


def test_an_installed_package_names_what_needs_a_checkout(tmp_path, monkeypatch):
    installed = tmp_path / "site-packages" / "snsm_workbench" / "util" / "paths.py"
    monkeypatch.setattr(paths, "__file__", str(installed))
    with pytest.raises(FileNotFoundError, match=r"^the bench records needs a repository "
                                                r"checkout of snsm .*an installed wheel\?"):
        paths.repository_root("the bench records")
