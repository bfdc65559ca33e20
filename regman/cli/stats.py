"""``regman stats|clear|info``: the store as a whole."""

from __future__ import annotations

import typer

from regman.cli.app import app
from regman.cli.render import (
    JsonOption,
    confirm,
    guarded,
    message,
    open_manager,
    print_json,
    print_table,
    short_time,
)
from regman.index import STAT_KEYS

# The table's counter columns: every counter of the index but the required-dependency one.
_COUNTS = tuple(k for k in STAT_KEYS if k.endswith("_count") and not k.startswith("required"))


@app.command()
@guarded
def stats(
    contexts: list[str] = typer.Argument(
        None, metavar="[CONTEXT]...", help="Contexts to show (default: all)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Per-context statistics, with a totals row."""
    from regman.errors import ContextNotFoundError
    from regman.names import validate_name

    all_stats = open_manager().get_context_stats()
    if contexts:
        for name in contexts:
            validate_name(name, "context")
            if name not in all_stats:
                raise ContextNotFoundError(name)
        all_stats = {name: all_stats[name] for name in dict.fromkeys(contexts)}
    if as_json:
        print_json(all_stats)
        return
    if not all_stats:
        message("no contexts yet")
        return
    rows = [
        [name, *(s[k] for k in _COUNTS), short_time(s["updated_at"])]
        for name, s in all_stats.items()
    ]
    totals = [f"total ({len(rows)})", *(sum(s[k] for s in all_stats.values()) for k in _COUNTS), ""]
    print_table(
        [
            "context",
            "steps",
            "step types",
            "source",
            "internal",
            "sink",
            "singular",
            "dependencies",
            "outputs",
            "updated",
        ],
        rows,
        footer=totals,
        justify=["left", *["right"] * len(_COUNTS), "left"],
    )


@app.command()
@guarded
def clear(
    context: str = typer.Argument(None, help="The context to remove."),
    all_contexts: bool = typer.Option(False, "--all", help="Remove every context."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    purge: bool = typer.Option(False, "--purge", help="Delete for good (skip the trash)."),
) -> None:
    """Remove a context (or --all); it stays in the trash for 7 days unless --purge."""
    from regman.errors import ContextNotFoundError, RefusedError
    from regman.names import validate_name

    if (context is not None) == all_contexts:
        raise typer.BadParameter("give a CONTEXT or --all, not both or neither")
    manager = open_manager()
    store = manager.store
    names = manager.list_contexts() if all_contexts else [validate_name(context, "context")]
    if not all_contexts and not manager.has_context(context):
        raise ContextNotFoundError(context)
    if not names:
        message("no contexts to clear")
        return
    what = f"all {len(names)} contexts" if all_contexts else f"context '{context}'"
    how = "permanently delete" if purge else "remove"
    if not confirm(f"{how} {what}?", yes=yes):
        raise RefusedError("not confirmed; nothing was removed")
    removed = [name for name in names if store.delete_context(name, purge=purge)]
    tail = "" if purge else " (restore with 'regman restore CONTEXT')"
    message(
        f"removed {len(removed)} context{'s' if len(removed) != 1 else ''}: "
        f"{', '.join(removed)}{tail}"
    )


@app.command()
@guarded
def info(as_json: bool = JsonOption) -> None:
    """Where the store is, its format version, and how much it holds."""
    from regman import __version__

    data = {"regman_version": __version__, **open_manager().store.info()}
    if as_json:
        print_json(data)
        return
    print_table(["key", "value"], [[k, v] for k, v in data.items()], justify=["left", "left"])
