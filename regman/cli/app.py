"""The Typer application, its global options, and the process entry point."""

from __future__ import annotations

import os
import sys

import typer

from regman.cli.render import settings

HELP = """Keep isolated registries of pipeline step specifications, one per context.

Exit codes: 0 success; 1 not found, refused or unhealthy; 2 bad input (usage, invalid
spec or name, unreadable file); 3 store unavailable (lock timeout, I/O error, newer format).
"""

app = typer.Typer(
    name="regman",
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


def _register_commands() -> None:
    # Importing a command module registers its commands on ``app``, in this order in
    # --help; each module imports the library lazily inside its commands.
    from importlib import import_module

    for name in ("specs", "stats", "contexts", "history", "resolve", "trash", "doctor"):
        import_module(f"regman.cli.{name}")


def main() -> None:
    """Console-script entry point: handles a closed stdout (``regman ... | head``)."""
    try:
        app()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


_register_commands()
