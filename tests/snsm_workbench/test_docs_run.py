"""Every code block of README.md, docs/ and benchmarks/README.md runs as written.

* ```` ```python ```` blocks are executed, each in a fresh namespace in an empty folder; a runnable
  block holds no ``...`` placeholder.
* ```` ```sh ```` blocks: every command is an ``snsm`` command, run in-process (exit 0 required);
  ``snsm train`` commands run with ``--steps`` divided by ``TRAIN_STEPS_DIVISOR`` (the same
  command, seconds instead of minutes).
* A block that cannot run here (it needs CUDA, torchrun, the network, an install, or trains for
  hours) has ``<!-- not run: REASON -->`` on the line before its fence, and the reason is given.
* A fence without a language is an output (usually a block copied from a record), not code.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(?P<lang>\S*)\n(?P<code>.*?)^```$", re.DOTALL | re.MULTILINE)
NOT_RUN = re.compile(r"<!-- not run: (?P<reason>.*?) -->\s*$")
CODE_LANGUAGES = {"python", "sh"}
TRAIN_STEPS_DIVISOR = 100


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    code: str
    not_run: str | None

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").splitlines()
        marker = NOT_RUN.search(before[-1]) if before else None
        found.append(Block(str(page.relative_to(ROOT)), text.count("\n", 0, match.start()) + 1,
                           match["lang"], match["code"], marker["reason"] if marker else None))
    return found


ALL = [block for page in PAGES for block in blocks(page)]
CODE = [block for block in ALL if block.lang in CODE_LANGUAGES]


def test_every_fence_is_code_or_output():
    odd = [f"{block} ```{block.lang}" for block in ALL if block.lang not in CODE_LANGUAGES | {""}]
    assert odd == [], "a fence's language is python, sh, or none (an output)"


def test_a_block_not_run_says_why():
    marked = [block for block in ALL if block.not_run is not None]
    assert marked, "the pages hold blocks that cannot run here (CUDA, torchrun)"
    assert all(len(block.not_run.strip()) >= 10 for block in marked), [str(b) for b in marked]


def commands(code: str) -> list[list[str]]:
    """The commands of a shell block: continuation lines joined, comments dropped."""
    joined = code.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines()
            if shlex.split(line, comments=True)]


def shorter_training(argv: list[str]) -> list[str]:
    if argv[:2] != ["snsm", "train"] or "--steps" not in argv:
        return argv
    at = argv.index("--steps") + 1
    return [*argv[:at], str(max(1, int(argv[at]) // TRAIN_STEPS_DIVISOR)), *argv[at + 1:]]


@pytest.mark.parametrize("block", [b for b in CODE if b.lang == "python" and b.not_run is None],
                         ids=str)
def test_python_block_runs_as_written(block, tmp_path, monkeypatch):
    assert "..." not in block.code, f"{block}: a runnable block holds a placeholder"
    monkeypatch.chdir(tmp_path)
    exec(compile(block.code, str(block), "exec"), {"__name__": "__doc_block__"})


@pytest.mark.parametrize("block", [b for b in CODE if b.lang == "sh" and b.not_run is None],
                         ids=str)
def test_shell_block_runs(block, tmp_path, monkeypatch):
    from snsm_workbench.cli import main

    monkeypatch.chdir(tmp_path)
    for argv in commands(block.code):
        assert argv[0] == "snsm", f"{block}: {argv[0]!r} is not an snsm command; mark the block " \
                                  "<!-- not run: REASON -->"
        assert main(shorter_training(argv)[1:]) == 0, f"{block}: {shlex.join(argv)} failed"


def test_commands_join_continuations_and_drop_comments():
    assert commands("snsm a \\\n  --b 1   # note\n\n# only a comment\nsnsm c\n") == [
        ["snsm", "a", "--b", "1"], ["snsm", "c"]]
    assert shorter_training(["snsm", "train", "--steps", "400", "--out", "x"]) == [
        "snsm", "train", "--steps", "4", "--out", "x"]
    assert shorter_training(["snsm", "list"]) == ["snsm", "list"]
