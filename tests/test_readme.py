"""Every command and every Python example the README shows runs, as a user would run it.

The first two ``sh`` blocks (install + examples, the tests) are checked by test_examples.py and
by CI itself, the command-line sections by tests/cli/test_readme.py. Every other ``sh`` block
runs line by line in a fresh store holding the examples; its ``regman`` lines must succeed
(``diff`` may exit 1: "they differ"), except that a line whose comment says "exit 1" must exit
exactly 1. The ``python`` blocks run in order in one namespace.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES

REPO = EXAMPLES.parent
README = REPO / "README.md"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", README.read_text(), re.S)


def regman_lines(block: str) -> list[str]:
    """The block's ``regman`` commands, comments dropped, continuation lines joined."""
    return [line for line, _ in commented_lines(block)]


def commented_lines(block: str) -> list[tuple[str, str]]:
    """``(command, comment)`` for each ``regman`` line of a block."""
    text = block.replace("\\\n", " ")
    lines = []
    for raw in text.splitlines():
        line, _, comment = raw.partition("  #")
        if line.strip().startswith("regman "):
            lines.append((line.strip(), comment))
    return lines


def sections_run_elsewhere() -> list[str]:
    """Blocks of the sections tests/cli/test_readme.py runs in order from an empty store."""
    from tests.cli.test_readme import SECTIONS

    text = README.read_text()
    found = []
    for title in SECTIONS:
        section = text[text.index(title) :]
        section = section[: section.index("\n## ", len(title))]
        found += re.findall(r"```sh\n(.*?)```", section, re.S)
    return found


COMMAND_BLOCKS = [
    b for b in blocks("sh")[2:] if regman_lines(b) and b not in sections_run_elsewhere()
]


def test_the_readme_shows_commands() -> None:
    assert len(COMMAND_BLOCKS) >= 2
    assert sum(len(regman_lines(b)) for b in COMMAND_BLOCKS) >= 12


@pytest.mark.parametrize("index", range(len(COMMAND_BLOCKS)))
def test_readme_command_block_runs(index: int, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "REGMAN_HOME": str(tmp_path / "home"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    seeded = subprocess.run(
        ["bash", str(EXAMPLES / "register_examples.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert seeded.returncode == 0, seeded.stderr
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(EXAMPLES)  # the README's paths are relative to the repo
    for line, comment in commented_lines(COMMAND_BLOCKS[index]):
        result = subprocess.run(
            ["bash", "-c", line],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        # a line whose comment says "exit 1" shows a refusal or a difference on purpose
        allowed = {1} if "exit 1" in comment else {0, 1} if shlex.split(line)[1] == "diff" else {0}
        assert result.returncode in allowed, (
            f"{line}\nexit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr}"
        )
        assert "Traceback" not in result.stderr, line


def test_readme_python_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    namespace: dict[str, object] = {"__name__": "readme"}
    code = blocks("python")
    assert len(code) >= 3
    for block in code:
        exec(compile(block, str(README), "exec"), namespace)  # our own README
    # create, register, the batch; rollback to the current revision and an unchanged
    # register make no revision
    registry: Any = namespace["registry"]
    assert [r.command for r in registry.history()] == ["batch", "register", "create"]
    assert registry.get_specification("preprocess") is not None
