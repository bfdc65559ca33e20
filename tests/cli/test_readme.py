"""The README's command-line sections run as written, in order, on a fresh store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLES

README = EXAMPLES.parent / "README.md"
SECTIONS = ("## The command line", "## Checking how a context wires together")


def readme_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    commands: list[str] = []
    for title in SECTIONS:
        section = text[text.index(title) :]
        section = section[: section.index("\n## ", len(title))]
        for block in re.findall(r"```sh\n(.*?)```", section, re.S):
            commands += [line for line in block.splitlines() if line.strip()]
    return commands


def test_the_readme_shows_the_new_commands() -> None:
    shown = " ".join(readme_commands())
    for needle in ("history", "rollback", "dev@1", "restore", "trash list", "schema", "-m "):
        assert needle in shown, needle


def test_every_readme_command_runs(tmp_path: Path) -> None:
    """Each line exits 0, or 1 where its comment says 'exits 1'."""
    (tmp_path / "examples").symlink_to(EXAMPLES)
    env = {
        **os.environ,
        "REGMAN_HOME": str(tmp_path / "home"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    for line in readme_commands():
        expected = 1 if "exits 1" in line.partition("#")[2] else 0
        result = subprocess.run(
            ["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == expected, (line, result.stdout[-2000:], result.stderr)
        assert "Traceback" not in result.stderr, line
    assert (tmp_path / "backup" / "training.step.yaml").exists()
    assert '"$schema"' in (tmp_path / "step-spec.schema.json").read_text()
