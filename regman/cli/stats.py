"""``regman stats|clear|info``: the store as a whole."""

from __future__ import annotations

import difflib

import typer

from regman.cli.app import app
from regman.cli.contexts import contexts_app
from regman.cli.render import (
    ForceRulesOption,
    IfRevisionOption,
    JsonOption,
    MessageOption,
    confirm,
    context_argument,
    guarded,
    message,
    open_manager,
    overriding,
    plural,
    print_json,
    print_table,
    say_empty_store,
    short_time,
    warn_about_store,
)
from regman.store import STAT_KEYS

# The table's counter columns: every counter of the index but the required-dependency one.
_COUNTS = tuple(k for k in STAT_KEYS if k.endswith("_count") and not k.startswith("required"))


@app.command()
@guarded
def stats(
    contexts: list[str] = context_argument("Contexts to show (default: all).", default=None),
    as_json: bool = JsonOption,
) -> None:
    """Per-context statistics, with a totals row."""
    from regman.errors import ContextNotFoundError
    from regman.names import validate_name

    manager = open_manager()
    all_stats = manager.get_context_stats(with_step_types=not as_json)
    if contexts:
        for name in contexts:
            validate_name(name, "context")
            if name not in all_stats:
                close = difflib.get_close_matches(name, list(all_stats), n=1, cutoff=0.75)
                raise ContextNotFoundError(
                    name, hint=f"did you mean '{close[0]}'?" if close else None
                )
        all_stats = {name: all_stats[name] for name in dict.fromkeys(contexts)}
    if as_json:
        print_json(all_stats)
        return
    if not all_stats:
        say_empty_store(manager)
        return
    rows = [
        [name, *(s[k] for k in _COUNTS), short_time(s["updated_at"])]
        for name, s in all_stats.items()
    ]
    totals: list[object] = [
        f"total ({len(rows)})",
        *(sum(s[k] for s in all_stats.values()) for k in _COUNTS),
        "",
    ]
    # Step types are counted once however many contexts use them (dev and production
    # share theirs).
    distinct = {t for s in all_stats.values() for t in s["step_types"]}
    totals[1 + _COUNTS.index("step_type_count")] = len(distinct)
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
        whole=(0, len(_COUNTS) + 1),
    )


@app.command()
@guarded
def clear(
    context: str = context_argument("The context to clear.", default=None),
    all_contexts: bool = typer.Option(False, "--all", help="Clear every context."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    purge: bool = typer.Option(
        False, "--purge", help="Delete the context and all its history for good."
    ),
    message_text: str = MessageOption,
    if_revision: int = IfRevisionOption,
    force: bool = ForceRulesOption,
) -> None:
    """Clear a context (or --all): a revision removing every step; 'regman restore' undoes it."""
    from regman.errors import ContextNotFoundError, RefusedError
    from regman.names import validate_name

    if (context is not None) == all_contexts:
        raise typer.BadParameter("give a CONTEXT or --all, not both or neither")
    if all_contexts and if_revision is not None:
        raise typer.BadParameter("--if-revision names one context's revision; not with --all")
    manager = open_manager()
    names = manager.list_contexts() if all_contexts else [validate_name(context, "context")]
    cleared_but_purgeable = purge and not all_contexts and manager.revision(context) > 0
    if not all_contexts and not manager.has_context(context) and not cleared_but_purgeable:
        raise ContextNotFoundError(context)
    if not names:
        message("no contexts to clear")
        return
    stats = manager.get_context_stats()
    steps = sum(stats.get(n, {}).get("step_count", 0) for n in names)
    what = f"all {len(names)} contexts" if all_contexts else f"context '{context}'"
    how = "permanently delete (with all history)" if purge else "clear"
    if not confirm(f"{how} {what} ({plural(steps, 'step')})?", yes=yes):
        raise RefusedError("not confirmed; nothing was removed")
    with overriding(force):
        removed = [
            name
            for name in names
            if manager.clear_context(
                name, purge=purge, message=message_text, if_revision=if_revision
            )
        ]
    tail = "" if purge else f" (bring back with 'regman restore {removed[0]}')" if removed else ""
    if not purge and len(removed) > 1:
        tail = " (bring back each with 'regman restore CONTEXT')"
    message(
        f"{'purged' if purge else 'cleared'} {len(removed)} "
        f"context{'s' if len(removed) != 1 else ''}: {', '.join(removed)}{tail}"
    )


@app.command()
@guarded
def info(as_json: bool = JsonOption) -> None:
    """Where the store is, its format version, and how much it holds."""
    from regman import __version__

    manager = open_manager()
    data = {"regman_version": __version__, **manager.info()}
    if as_json:
        print_json(data)
        return
    warn_about_store(manager)
    print_table(
        ["key", "value"],
        [[k, _info_value(v)] for k, v in data.items()],
        justify=["left", "left"],
        whole=(0, 1),
    )


contexts_app.command("delete")(clear)  # the noun-verb twin of 'regman clear', as kubectl has


def _info_value(value: object) -> object:
    """Mappings and lists as one readable cell ('-' when empty)."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return value
