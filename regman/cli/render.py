"""Everything the commands share: the manager they open, the error boundary, output.

Only the command line imports typer and rich. Data goes to stdout (JSON through
``json.dumps``, never rich, which would wrap long lines), messages and errors to
stderr. rich is imported only when a table is actually drawn.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from regman.errors import EXIT_BAD_INPUT, RefusedError, RegmanError, SpecError

if TYPE_CHECKING:
    from regman.manager import RegistryManager

F = TypeVar("F", bound=Callable[..., Any])

EXIT_INTERNAL = 70  # a bug: an exception that is not a RegmanError
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report a process killed by SIGINT
EXIT_BROKEN_PIPE = 141  # stdout closed early, as shells report a process killed by SIGPIPE
MAX_ERROR_CHARS = 400  # an error line longer than this is cut and says how much was left out


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


def cap(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """One line of at most about ``limit`` characters: never tens of thousands."""
    text = " ".join(text.splitlines()) if "\n" in text else text
    if len(text) <= limit:
        return text
    return f"{text[: limit - 40]}... ({len(text) - limit + 40} more characters)"


def report_error(error: RegmanError) -> None:
    if debug_enabled():
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    typer.echo(cap(error_line(error)), err=True)
    if error.hint:
        typer.echo(cap(f"hint: {error.hint}"), err=True)


# typer ships its own copy of click (0.26+): reach its base exception through typer.
ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def report_usage_error(error: Exception) -> int:
    """A usage error in the README's form: ``error: <what>`` and ``hint: usage: ...``."""
    ctx = getattr(error, "ctx", None)
    code = int(getattr(error, "exit_code", EXIT_BAD_INPUT))
    if type(error).__name__ == "NoArgsIsHelpError":  # a bare 'regman contexts': its help
        typer.echo(ctx.get_help() if ctx is not None else str(error), err=True)
        return code
    format_message = getattr(error, "format_message", None)
    text = str(format_message() if callable(format_message) else error)
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    typer.echo(cap(f"error: {text}"), err=True)
    if ctx is not None:
        usage = " ".join(ctx.get_usage().split())
        usage = usage[len("Usage: ") :] if usage.startswith("Usage: ") else usage
        typer.echo(cap(f"hint: usage: {usage}; see '{ctx.command_path} --help'"), err=True)
    return code


def quiet_broken_pipe() -> int:
    """stdout was closed by its reader: stop quietly, as git and coreutils do.

    Later writes (Python flushes stdout on exit) go to /dev/null instead of raising.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (CliRunner)
        pass
    return EXIT_BROKEN_PIPE


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
            raise typer.Exit(EXIT_INTERRUPTED) from None  # quietly, like git
        except BrokenPipeError:
            raise typer.Exit(quiet_broken_pipe()) from None
        except (typer.Exit, typer.Abort, ClickException):
            raise  # exits, and usage errors that the root command formats
        except Exception as e:
            if debug_enabled():
                raise
            typer.echo(f"error: internal error: {type(e).__name__}: {e}", err=True)
            typer.echo("hint: rerun with --debug and report the traceback", err=True)
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper  # type: ignore[return-value]


def bad_input(message: str, hint: str | None = None) -> typer.Exit:
    """For errors found by the CLI itself (not by the library)."""
    typer.echo(cap(f"error: {message}"), err=True)
    if hint:
        typer.echo(cap(f"hint: {hint}"), err=True)
    return typer.Exit(EXIT_BAD_INPUT)


def plural(count: int, noun: str) -> str:
    """``1 step``, ``2 steps``; nouns ending in y take ``ies`` (``entry`` -> ``entries``)."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun[:-1]}ies" if noun.endswith("y") else f"{count} {noun}s"


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
            "refusing to go ahead without confirmation: stdin is not a terminal",
            hint="pass --yes",
        )
    # Not typer.confirm: it turns Ctrl-C into "Aborted!" and exit 1. Here Ctrl-C reaches
    # the error boundary (exit 130, quietly) and end of input means no.
    sys.stderr.write(f"{prompt} [y/N]: ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer:
        sys.stderr.write("\n")
    return answer.strip().lower() in ("y", "yes")


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    footer: Sequence[Any] | None = None,
    justify: Sequence[str] | None = None,
    whole: Sequence[int] = (0,),
    styles: Sequence[str | None] | None = None,
    wrap: int | None = None,
) -> None:
    """A table on stdout: rich on a terminal; the same box drawing, plain, on a pipe.

    ``whole``: the columns never cut nor wrapped (names, times): on a terminal too
    narrow for them, the plain layout is printed (the terminal wraps the lines, but
    no name ever loses characters). Other columns wrap. ``styles``: one rich style
    per row, terminal only. ``wrap``: off a terminal, cells of the other columns are
    wrapped at this width (a row then takes several lines), for long prose.

    The plain path draws what rich would (its HEAVY_HEAD box) without importing rich,
    which keeps ``regman contexts list | ...`` near the cost of a bare Typer program.
    """
    cells = [
        [v if type(v) is str else str(v) if type(v) is int else _cell(v) for v in row]
        for row in rows
    ]
    foot = [_cell(v) if v != "" else "" for v in footer] if footer is not None else None
    how = (
        list(justify)
        if justify
        else [
            "right"
            if rows and isinstance(rows[0][i], int) and not isinstance(rows[0][i], bool)
            else "left"
            for i in range(len(columns))
        ]
    )
    if sys.stdout.isatty() and _rich_table(columns, cells, foot, how, whole, styles):
        return
    if wrap is not None:
        cells = wrapped_rows(cells, wrap, whole)
    print_text(plain_table(columns, cells, foot, how))


def wrapped_rows(
    cells: Sequence[Sequence[str]], width: int, whole: Sequence[int]
) -> list[list[str]]:
    """Rows whose long cells (outside ``whole``) continue on the following lines."""
    import textwrap

    out: list[list[str]] = []
    for row in cells:
        pieces = [
            [v] if i in whole or len(v) <= width else textwrap.wrap(v, width) or [""]
            for i, v in enumerate(row)
        ]
        height = max(len(p) for p in pieces)
        out += [[p[n] if n < len(p) else "" for p in pieces] for n in range(height)]
    return out


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: 2 for CJK, 0 for combining marks."""
    if text.isascii():
        return len(text)
    from wcwidth import wcswidth  # only for non-ASCII text: keeps plain tables cheap

    width = wcswidth(text)
    return width if width >= 0 else len(text)  # control characters: count them as 1


def plain_table(
    columns: Sequence[str],
    cells: Sequence[Sequence[str]],
    footer: Sequence[str] | None,
    justify: Sequence[str],
) -> str:
    all_rows = [list(columns), *cells, *([list(footer)] if footer is not None else [])]
    ascii_only = all(v.isascii() for row in all_rows for v in row)
    size = len if ascii_only else display_width
    widths = [max(map(size, column)) for column in zip(*all_rows, strict=True)]

    def line(left: str, fill: str, mid: str, right: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right

    def template(edge: str, aligns: Sequence[str]) -> Callable[..., str]:
        if not ascii_only:  # str.format pads by code points, not by columns
            return lambda *row: (
                f"{edge} "
                + f" {edge} ".join(
                    _pad(v, w, a) for v, w, a in zip(row, widths, aligns, strict=True)
                )
                + f" {edge}"
            )
        # One format string per table: rows of 10,000-context stats format in C.
        fields = (f"{{{i}:{a}{w}}}" for i, (w, a) in enumerate(zip(widths, aligns, strict=True)))
        return (f"{edge} " + f" {edge} ".join(fields) + f" {edge}").format

    body = template("│", ["<" if how == "left" else ">" for how in justify])
    out = [
        line("┏", "━", "┳", "┓"),
        template("┃", "<" * len(widths))(*columns),
        line("┡", "━", "╇", "┩"),
    ]
    out += [body(*r) for r in cells]
    if footer is not None:
        out += [line("├", "─", "┼", "┤"), body(*footer)]
    out.append(line("└", "─", "┴", "┘"))
    return "\n".join(out)


def _pad(text: str, width: int, align: str) -> str:
    fill = " " * (width - display_width(text))
    return fill + text if align == ">" else text + fill


def _rich_table(
    columns: Sequence[str],
    cells: Sequence[Sequence[str]],
    footer: Sequence[str] | None,
    justify: Sequence[str],
    whole: Sequence[int],
    styles: Sequence[str | None] | None,
) -> bool:
    """Draw with rich; False (nothing drawn) when the ``whole`` columns cannot fit."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False, no_color=bool(os.environ.get("NO_COLOR")) or None)
    all_rows = [list(columns), *cells, *([list(footer)] if footer is not None else [])]
    widths = [max(map(display_width, column)) for column in zip(*all_rows, strict=True)]
    # whole columns at full width, every other one as wide as its longest word (so rich
    # wraps at spaces and never splits a step name inside a sentence), plus borders
    words = [
        max((display_width(word) for v in column for word in v.split()), default=0)
        for column in zip(*all_rows, strict=True)
    ]
    needed = sum(w if i in whole else words[i] for i, w in enumerate(widths))
    if needed + 3 * len(columns) + 1 > console.width:
        return False
    table = Table(show_footer=footer is not None, header_style="bold")
    for i, column in enumerate(columns):
        keep = i in whole
        table.add_column(
            column,
            justify=justify[i],  # type: ignore[arg-type]
            footer=escape(footer[i]) if footer else "",
            no_wrap=keep,
            min_width=widths[i] if keep else None,
            overflow="fold",
        )
    for n, row in enumerate(cells):
        table.add_row(*(escape(v) for v in row), style=styles[n] if styles else None)
    console.print(table)
    return True


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def short_time(iso: str | None) -> str:
    """``2026-11-28T01:23:17.989Z`` -> ``2026-11-28 01:23:17 UTC`` for tables.

    One convention everywhere a table shows a time: UTC, said so; JSON keeps ISO 8601.
    """
    if not iso:
        return "-"
    return iso.replace("T", " ")[:19] + " UTC"


JsonOption = typer.Option(False, "--json", help="Print JSON on stdout instead of a table.")


class Output(str, Enum):
    table = "table"
    name = "name"


OutputOption = typer.Option(
    Output.table, "--output", "-o", help="table, or name: only the names, one per line (scripts)."
)


def print_names(names: Sequence[str]) -> None:
    if names:
        print_text("\n".join(names))


MessageOption = typer.Option(
    None, "--message", "-m", metavar="MSG", help="Say why, in the revision's history."
)
IfRevisionOption = typer.Option(
    None,
    "--if-revision",
    metavar="N",
    min=0,
    help="Refuse (exit 1) unless the context is at revision N (0: it has none yet).",
)


ForceRulesOption = typer.Option(
    False,
    "--force",
    help="Override the context's compatibility rule (the revision records what it overrode).",
)


@contextlib.contextmanager
def overriding(force: bool) -> Iterator[None]:
    """The block of a write: --force overrides the context's compatibility rule, and under
    NONE what the write breaks is printed as warnings once it landed."""
    from regman import RegistryManager

    override = RegistryManager.forcing() if force else contextlib.nullcontext()
    with RegistryManager.wiring_warnings() as found, override:
        yield
    for finding in found:
        typer.echo(f"warning: {finding}", err=True)


def load_sources(sources: list[str], consequence: str) -> dict[str, Any]:
    """Step -> spec from files, folders and bundles; every problem on stderr, then exit 2."""
    from regman.sources import load_spec_sources

    specs, problems = load_spec_sources(sources)
    for problem in problems:
        typer.echo(cap(error_line(problem)), err=True)
    if problems:
        message(f"{len(problems)} source files are invalid; {consequence}")
        raise typer.Exit(EXIT_BAD_INPUT)
    return specs


def split_ref(ref: str) -> tuple[str, int | None]:
    """``CONTEXT@N`` -> (CONTEXT, N); ``CONTEXT`` -> (CONTEXT, None)."""
    from regman.errors import InvalidInputError

    name, at, number = ref.partition("@")
    if not at:
        return ref, None
    if not number.isdigit() or len(number) > 12 or int(number) < 1:
        raise InvalidInputError(
            f"'{ref}' names no revision: after '@' comes a revision number (1, 2, ...)",
            hint=f"see 'regman history {name}'",
        )
    return name, int(number)


def open_registry(ref: str, revision: int | None = None) -> Any:
    """The registry of ``CONTEXT`` or ``CONTEXT@N`` (never created); --revision may pin it."""
    from regman.errors import InvalidInputError

    context, at = split_ref(ref)
    if at is not None and revision is not None and at != revision:
        raise InvalidInputError(f"'{ref}' and --revision {revision} disagree")
    return open_manager().get_registry_at(context, at if at is not None else revision)


def say_empty_store(manager: RegistryManager) -> None:
    """On stderr: there is no store here yet (reads never create one), or it is empty."""
    if manager.store_exists():
        message("no contexts yet; create one with 'regman register CONTEXT STEP SPEC'")
    else:
        message(
            f"no store at {manager.location} yet (a first 'regman register' creates it); "
            "see 'regman info' and --store"
        )


def _completion_manager(ctx: typer.Context) -> RegistryManager:
    """The manager a completion reads: the root callback has not run, so ask its params."""
    from regman.manager import RegistryManager

    store = ctx.find_root().params.get("store")
    if store and "://" not in store:
        store = os.path.abspath(os.path.expanduser(store))
    return RegistryManager(store or None)


def complete_context(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of context names (never raises: a completion must stay quiet)."""
    try:
        return [c for c in _completion_manager(ctx).list_contexts() if c.startswith(incomplete)]
    except Exception:
        return []


def complete_step(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of the step names of the context given before (CONTEXT@N too)."""
    ref = ctx.params.get("context") or ctx.params.get("left")
    if not isinstance(ref, str):
        return []
    try:
        name, at = split_ref(ref)
        registry = _completion_manager(ctx).get_registry_at(name, at)
        return [s for s in registry.list_step_names() if s.startswith(incomplete)]
    except Exception:
        return []


def context_argument(help_text: str, *, default: Any = ..., metavar: str = "CONTEXT") -> Any:
    """A command's context-name argument, with name completion."""
    return typer.Argument(default, metavar=metavar, autocompletion=complete_context, help=help_text)


def step_argument(help_text: str, *, default: Any = ..., metavar: str = "STEP") -> Any:
    """A command's step-name argument, with name completion (from its context's steps)."""
    return typer.Argument(default, metavar=metavar, autocompletion=complete_step, help=help_text)


def warn_about_store(manager: RegistryManager) -> None:
    """Say on stderr what the store finds worth a warning (e.g. others can write it)."""
    for text in manager.warnings():
        message(f"warning: {text}")
