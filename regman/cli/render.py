"""Everything the commands share: the manager they open, the error boundary, output.

Only the command line imports typer and rich. Data goes to stdout (JSON through
``json.dumps``, never rich, which would wrap long lines), messages and errors to
stderr. rich is imported only when a table is actually drawn.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from regman.errors import EXIT_BAD_INPUT, RefusedError, RegmanError, SpecError

if TYPE_CHECKING:
    from regman.manager import RegistryManager

F = TypeVar("F", bound=Callable[..., Any])

EXIT_INTERNAL = 70  # a bug: an exception that is not a RegmanError


@dataclass
class Settings:
    """Global options, set by the app callback before any command runs."""

    store: str | None = None
    debug: bool = False


settings = Settings()


def debug_enabled() -> bool:
    return settings.debug or os.environ.get("REGMAN_DEBUG", "") not in ("", "0")


def open_manager() -> RegistryManager:
    """The manager on ``--store``, else ``$REGMAN_HOME``, else the platform default."""
    from regman.manager import RegistryManager

    return RegistryManager(settings.store)


def error_line(error: RegmanError) -> str:
    """``error: <what> (<where>)``: the one line a user error becomes."""
    if isinstance(error, SpecError):
        where = error.source or "<spec>"
        if error.line is not None:
            where += f":{error.line}" + (f":{error.column}" if error.column is not None else "")
        what = f"{error.field}: {error.problem}" if error.field else error.problem
        return f"error: {what} ({where})"
    return f"error: {error.message}"


def report_error(error: RegmanError) -> None:
    if debug_enabled():
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    typer.echo(error_line(error), err=True)
    if error.hint:
        typer.echo(f"hint: {error.hint}", err=True)


# typer ships its own copy of click (0.26+): reach its base exception through typer.
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def guarded(func: F) -> F:
    """The CLI's one error boundary: a RegmanError becomes one line and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RegmanError as e:
            report_error(e)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, _ClickException):
            raise  # typer's own exits and usage errors keep their usual form
        except Exception as e:
            if debug_enabled():
                raise
            typer.echo(f"error: internal error: {type(e).__name__}: {e}", err=True)
            typer.echo("hint: rerun with --debug and report the traceback", err=True)
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper  # type: ignore[return-value]


def bad_input(message: str, hint: str | None = None) -> typer.Exit:
    """For errors found by the CLI itself (not by the library)."""
    typer.echo(f"error: {message}", err=True)
    if hint:
        typer.echo(f"hint: {hint}", err=True)
    return typer.Exit(EXIT_BAD_INPUT)


def message(text: str) -> None:
    typer.echo(text, err=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def print_text(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def confirm(prompt: str, *, yes: bool) -> bool:
    """Ask on a terminal; without one, only ``--yes`` goes ahead."""
    if yes:
        return True
    if not stdin_is_terminal():
        raise RefusedError(
            "refusing to delete without confirmation: stdin is not a terminal",
            hint="pass --yes",
        )
    return typer.confirm(prompt, default=False, err=True)


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    width = None if tty else max(int(os.environ.get("COLUMNS", "0") or 0), 160)
    return Console(
        file=stream,
        width=width,
        highlight=False,
        soft_wrap=False,
        no_color=bool(os.environ.get("NO_COLOR")) or None,
    )


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    footer: Sequence[Any] | None = None,
    justify: Sequence[str] | None = None,
    styles: Sequence[str | None] | None = None,
) -> None:
    """A rich table on stdout; user text is escaped, numbers right-aligned."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=escape(title) if title else None,
        show_footer=footer is not None,
        title_justify="left",
        header_style="bold",
    )
    for i, column in enumerate(columns):
        how = (
            justify[i] if justify else ("right" if rows and isinstance(rows[0][i], int) else "left")
        )
        table.add_column(
            column,
            justify=how,  # type: ignore[arg-type]
            footer=escape(str(footer[i])) if footer else "",
        )
    for n, row in enumerate(rows):
        style = styles[n] if styles else None
        table.add_row(*(escape(_cell(v)) for v in row), style=style)
    _console().print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def short_time(iso: str | None) -> str:
    """``2026-11-28T01:23:17.989Z`` -> ``2026-11-28 01:23:17`` for tables."""
    if not iso:
        return "-"
    return iso.replace("T", " ")[:19]


JsonOption = typer.Option(False, "--json", help="Print JSON on stdout instead of a table.")
