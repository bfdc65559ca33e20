"""The installed command registers only the modules of the command it runs, and that is enough."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from regman.cli.app import COMMAND_MODULES, MODULES_OF, app, modules_for


def top_level_names() -> set[str]:
    names = {(c.name or c.callback.__name__).replace("_", "-") for c in app.registered_commands}  # type: ignore[union-attr]
    return names | {g.name for g in app.registered_groups if g.name}


def test_every_command_has_its_modules() -> None:
    assert set(MODULES_OF) == top_level_names()
    assert all(set(modules) <= set(COMMAND_MODULES) for modules in MODULES_OF.values())


@pytest.mark.parametrize("command", sorted(MODULES_OF))
def test_the_modules_of_a_command_register_it(command: str) -> None:
    code = (
        "import sys, json\n"
        f"sys.argv = ['/usr/bin/regman', {command!r}, '--help']\n"
        "from regman.cli.app import app\n"
        "names = {(c.name or c.callback.__name__).replace('_', '-')\n"
        "         for c in app.registered_commands}\n"
        "names |= {g.name for g in app.registered_groups}\n"
        "print(json.dumps(sorted(names)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    registered = set(json.loads(out.stdout))
    assert command in registered
    assert len(registered) < len(top_level_names())  # only what it needs


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["pytest", "contexts", "list"], {}, COMMAND_MODULES),
        (["/venv/bin/regman", "contexts", "list"], {}, ("stats", "contexts")),
        (["regman", "--store", "contexts", "show", "x"], {}, ("specs",)),  # 'contexts' is a path
        (["regman", "show", "x", "y", "--store", "s"], {}, ("specs",)),
        (["regman", "--debug", "history", "x"], {}, ("history",)),
        (["regman", "contxts", "list"], {}, COMMAND_MODULES),  # did-you-mean needs them all
        (["regman", "--help"], {}, COMMAND_MODULES),
        (["regman"], {}, COMMAND_MODULES),
        (["regman", "show"], {"_REGMAN_COMPLETE": "bash_complete"}, COMMAND_MODULES),
    ],
)
def test_modules_for(argv: list[str], environ: dict[str, str], expected: tuple[str, ...]) -> None:
    assert modules_for(argv, environ) == expected
