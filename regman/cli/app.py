"""The Typer application, its global options, and the process entry point."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import typer
from typer.core import TyperArgument, TyperGroup

from regman.cli.render import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    ClickException,
    quiet_broken_pipe,
    report_usage_error,
    settings,
)

HELP = """Keep isolated registries of pipeline step specifications, one per context.

Exit codes: 0 success; 1 not found, refused or unhealthy; 2 bad input (usage, invalid
spec or name, unreadable file); 3 store unavailable (lock timeout, I/O error, newer format);
130 interrupted (Ctrl-C); 141 stdout closed early (regman ... | head).
"""

# Global options a user may also give after the command (`regman contexts list --store X`),
# as gh and kubectl allow; they are moved in front of the command before parsing.
_GLOBAL_WITH_VALUE = ("--store",)
_GLOBAL_FLAGS = ("--debug",)


def hoist_global_options(args: Sequence[str]) -> list[str]:
    """Move ``--store PATH`` / ``--store=PATH`` / ``--debug`` given after the command to the front.

    Arguments after ``--`` are never touched: there they are names, not options.
    """
    front: list[str] = []
    rest: list[str] = []
    seen_command = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if seen_command and arg in _GLOBAL_FLAGS:
            front.append(arg)
        elif seen_command and arg in _GLOBAL_WITH_VALUE and i + 1 < len(args):
            front += [arg, args[i + 1]]
            i += 1
        elif seen_command and arg.startswith(tuple(f"{o}=" for o in _GLOBAL_WITH_VALUE)):
            front.append(arg)
        else:
            if not arg.startswith("-") and not (rest and rest[-1] in _GLOBAL_WITH_VALUE):
                seen_command = True
            rest.append(arg)
        i += 1
    return front + rest


def _conventional_usage_name(self: Any) -> str:
    """``CONTEXT`` and ``[STEP]...`` in usage lines, not typer 0.29's ``{CONTEXT}``."""
    name = str(self.display_name_raw)
    name = name if self.required else f"[{name}]"
    return name + ("..." if self.nargs != 1 and not name.endswith("...") else "")


def _no_type_label(self: Any, ctx: Any) -> str | None:
    """Argument help reads ``SPEC  Spec file...``, not ``SPEC <str>`` or ``<list[str]>``."""
    return None


if hasattr(TyperArgument, "_usage_display_name"):  # typer >= 0.29; older ones need nothing
    setattr(TyperArgument, "_usage_display_name", _conventional_usage_name)  # noqa: B010
    setattr(TyperArgument, "display_type_rich", _no_type_label)  # noqa: B010


class RegmanGroup(TyperGroup):
    """The root command: one place that turns every way a run can end into an exit code.

    Usage errors become ``error: ... / hint: usage: ...`` (exit 2) instead of Click's
    block; Ctrl-C anywhere exits 130 quietly; a closed stdout exits 141 quietly, as
    a process killed by SIGPIPE would. CliRunner goes through here too.
    """

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = hoist_global_options(list(sys.argv[1:] if args is None else args))
        try:
            code = super().main(
                args=argv,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except ClickException as e:
            code = report_usage_error(e)
        except (typer.Abort, KeyboardInterrupt):
            code = EXIT_INTERRUPTED
        except BrokenPipeError:
            code = quiet_broken_pipe()
        code = code if isinstance(code, int) else 0
        if code == EXIT_BROKEN_PIPE:
            quiet_broken_pipe()
        if not standalone_mode:
            return code
        sys.exit(code)


app = typer.Typer(
    name="regman",
    cls=RegmanGroup,
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from regman._version import __version__

        typer.echo(f"regman {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    store: str = typer.Option(
        None,
        "--store",
        metavar="PATH",
        envvar=None,
        help="Store folder; beats $REGMAN_HOME, which beats the platform default.",
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks (also REGMAN_DEBUG=1)."),
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    if store is not None and not store.strip():
        raise typer.BadParameter("--store needs a folder path", param_hint="--store")
    if store and "://" in store:
        settings.store = store  # a URL: open_store picks its backend (or refuses the scheme)
    else:
        settings.store = os.path.abspath(os.path.expanduser(store)) if store else None
    settings.debug = debug


# Importing a command module registers its commands on ``app``, in this order in --help.
COMMAND_MODULES = (
    "specs",
    "plan",
    "stats",
    "contexts",
    "history",
    "resolve",
    "trash",
    "doctor",
    "schema",
)
# Which modules a top-level command needs (checked against the registered commands by
# tests/cli/test_command_line.py). Typer inspects the signature of every registered command
# at startup (about 20 ms for all of them), so the installed command registers only the
# modules of the command it runs.
MODULES_OF = {
    **dict.fromkeys(("register", "show", "remove", "validate", "import", "export"), ("specs",)),
    **dict.fromkeys(("plan", "apply", "promote"), ("plan",)),
    **dict.fromkeys(("stats", "clear", "info"), ("stats",)),
    "contexts": ("stats", "contexts"),  # 'contexts delete' is 'clear', from stats
    "diff": ("contexts",),
    **dict.fromkeys(("history", "rollback"), ("history",)),
    **dict.fromkeys(("resolve", "explain"), ("resolve",)),
    **dict.fromkeys(("trash", "restore"), ("trash",)),
    "doctor": ("doctor",),
    "schema": ("schema",),
}


def modules_for(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[str, ...]:
    """The command modules a run of the installed ``regman`` with ``argv`` needs.

    All of them unless this is the console script running one known command: in tests
    (CliRunner), for --help, completion or a mistyped command, everything is registered.
    """
    if os.path.basename(argv[0] if argv else "") != "regman" or any(
        key.endswith("_COMPLETE") for key in environ
    ):
        return COMMAND_MODULES
    args = hoist_global_options(list(argv[1:]))
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in _GLOBAL_WITH_VALUE else 1
    needed = MODULES_OF.get(args[i]) if i < len(args) else None
    return needed or COMMAND_MODULES


def _register_commands() -> None:
    from importlib import import_module

    for name in modules_for(sys.argv, os.environ):
        import_module(f"regman.cli.{name}")
    from regman.cli.examples import EXAMPLES, epilog

    def attach(typer_app: typer.Typer, prefix: str) -> None:
        for info in typer_app.registered_commands:
            name = info.name or (info.callback.__name__ if info.callback else "")
            path = f"{prefix}{name.replace('_', '-')}"
            if path in EXAMPLES:
                info.epilog = epilog(path)
        for group in typer_app.registered_groups:
            if group.typer_instance is not None and group.name:
                attach(group.typer_instance, f"{prefix}{group.name} ")

    attach(app, "")


def main() -> None:
    """Console-script entry point (``RegmanGroup.main`` decides every exit code)."""
    try:
        app()
    except BrokenPipeError:  # while Python flushed stdout on the way out
        sys.exit(quiet_broken_pipe())
    except KeyboardInterrupt:  # before or after the command ran
        sys.exit(EXIT_INTERRUPTED)


_register_commands()
