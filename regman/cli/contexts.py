"""``regman contexts list|show|create``."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from regman.cli.app import app
from regman.cli.render import (
    JsonOption,
    MessageOption,
    Output,
    OutputOption,
    context_argument,
    guarded,
    message,
    open_manager,
    open_registry,
    plural,
    print_json,
    print_names,
    print_table,
    say_empty_store,
    short_time,
    step_argument,
)

contexts_app = typer.Typer(help="List, inspect and create contexts.", no_args_is_help=True)
app.add_typer(contexts_app, name="contexts")


@contexts_app.command("list")
@guarded
def list_contexts(as_json: bool = JsonOption, output: Output = OutputOption) -> None:
    """List every context with its number of steps and step types."""
    manager = open_manager()
    stats = manager.get_context_stats()
    if as_json:
        print_json([{"name": name, **values} for name, values in stats.items()])
        return
    if output is Output.name:
        print_names(list(stats))
        return
    if not stats:
        say_empty_store(manager)
        return
    print_table(
        ["context", "steps", "step types", "revision", "updated"],
        [
            [n, s["step_count"], s["step_type_count"], s["revision"], short_time(s["updated_at"])]
            for n, s in stats.items()
        ],
        whole=(0, 4),
    )


@contexts_app.command("show")
@guarded
def show_context(
    context: str = context_argument("The context to show, or CONTEXT@N."),
    as_json: bool = JsonOption,
    output: Output = OutputOption,
) -> None:
    """Show the steps of one context: types, dependencies and outputs (and its revision)."""
    registry = open_registry(context)
    specs = registry.require_all_readable()
    if output is Output.name and not as_json:
        print_names(list(specs))
        return
    settings = open_manager().context_settings(registry.context_name)
    if as_json:
        print_json(
            {
                "context": registry.context_name,
                "revision": registry.revision,
                **settings,
                "steps": {name: spec.to_document() for name, spec in specs.items()},
            }
        )
        return
    message(
        f"context '{registry.context_name}' at revision {registry.revision} "
        f"(compatibility {settings['compatibility']}, {settings['mode']})"
    )
    if not specs:
        message(f"context '{context}' has no steps")
        return
    rows = []
    for name, spec in specs.items():
        required = [d.logical_name for d in spec.dependencies.values() if d.required]
        optional = [d.logical_name for d in spec.dependencies.values() if not d.required]
        rows.append(
            [
                name,
                spec.step_type,
                spec.node_type.value,
                ", ".join(required) or "-",
                ", ".join(optional) or "-",
                ", ".join(spec.outputs) or "-",
            ]
        )
    print_table(
        ["step", "step type", "node type", "required deps", "optional deps", "outputs"],
        rows,
        whole=(0, 1),
    )


@contexts_app.command("create")
@guarded
def create_context(
    context: str = context_argument("The context to create."),
    message_text: str = MessageOption,
) -> None:
    """Create an empty context (nothing happens if it exists)."""
    created = open_manager().create_context(context, message=message_text)
    message(f"created context '{context}'" if created else f"context '{context}' already exists")


@contexts_app.command("set")
@guarded
def set_context(
    context: str = context_argument("The context to change."),
    compatibility: str = typer.Option(
        None,
        "--compatibility",
        metavar="MODE",
        help="NONE, BACKWARD (no consumer breaks), FORWARD (no required dependency loses "
        "its provider) or FULL (both); every later write is checked.",
        case_sensitive=False,
    ),
    mode: str = typer.Option(
        None, "--mode", metavar="MODE", help="READONLY refuses every write; READWRITE undoes it."
    ),
    message_text: str = MessageOption,
) -> None:
    """Set a context's compatibility rule or make it read-only (a revision of its own)."""
    from regman.cli.render import bad_input

    if compatibility is None and mode is None:
        raise bad_input("nothing to set", hint="pass --compatibility MODE or --mode MODE")
    result = open_manager().set_context_settings(
        context,
        compatibility=compatibility.upper() if compatibility else None,
        mode=mode.upper() if mode else None,
        message=message_text,
    )
    if result.changed:
        message(f"context '{context}' is at revision {result.revision}")
    else:
        message(f"context '{context}' already had these settings")


@app.command()
@guarded
def diff(
    left: str = context_argument("The first context (e.g. dev, or dev@3).", metavar="LEFT"),
    right: str = context_argument("The second context (e.g. production).", metavar="RIGHT"),
    steps: list[str] = step_argument("Only these steps.", default=None),
    as_json: bool = JsonOption,
) -> None:
    """Compare two contexts: steps only in one, and every field that differs.

    Exits 0 when the contexts are identical, 1 when they differ.
    """
    from regman.compare import diff_contexts

    registries = [open_registry(name) for name in (left, right)]
    result = diff_contexts(registries[0], registries[1], steps or None)
    if as_json:
        print_json(_diff_document(result, registries))
    else:
        on_terminal = sys.stdout.isatty()
        rows: list[list[object]] = []
        rows += [[step, f"only in {left}", "", ""] for step in result.only_left]
        rows += [[step, f"only in {right}", "", ""] for step in result.only_right]
        for step, changes in result.changed.items():
            docs = [r.get_specification(step).to_document() for r in registries]
            for c in changes:
                values = [lookup(doc, c.path) for doc in docs]
                rows.append(
                    [step, c.path, *(_value_text(v, on_terminal) for v in values)],
                )
        if rows:
            print_table(
                ["step", "difference", left, right],
                rows,
                justify=["left", "left", "left", "left"],
                whole=(0, 1),
            )
        if result.identical:
            count = plural(len(result.same), "step")
            message(f"'{left}' and '{right}' are identical ({count})")
        else:
            message(
                f"{len(result.same)} same, {len(result.changed)} changed, "
                f"{len(result.only_left)} only in {left}, {len(result.only_right)} only in {right}"
            )
    if not result.identical:
        raise typer.Exit(1)


_ABSENT: Any = object()


def lookup(doc: Any, path: str) -> Any:
    """The value at a dotted ``path`` of a spec document, or ``_ABSENT``.

    Keys may contain dots themselves, so the longest matching key is taken at each level.
    """
    rest = path
    while rest:
        if not isinstance(doc, dict):
            return _ABSENT
        for key in sorted((k for k in doc if isinstance(k, str)), key=len, reverse=True):
            if rest == key or rest.startswith(key + "."):
                doc, rest = doc[key], rest[len(key) + 1 :]
                break
        else:
            return _ABSENT
    return doc


def _value_text(value: Any, on_terminal: bool) -> str:
    """A value for the table: whole off a terminal; on one, long values are shortened."""
    if value is _ABSENT:
        return "(absent)"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if on_terminal and len(text) > 200:
        return text[:197] + "..."
    return text


def _diff_document(result: Any, registries: list[Any]) -> dict[str, Any]:
    """``diff --json``: absence is data (``in_left``/``in_right`` and null), values whole."""
    changed: dict[str, list[dict[str, Any]]] = {}
    for step, changes in result.changed.items():
        docs = [r.get_specification(step).to_document() for r in registries]
        entries = []
        for c in changes:
            left_value, right_value = (lookup(doc, c.path) for doc in docs)
            entries.append(
                {
                    "path": c.path,
                    "in_left": left_value is not _ABSENT,
                    "in_right": right_value is not _ABSENT,
                    "left": None if left_value is _ABSENT else left_value,
                    "right": None if right_value is _ABSENT else right_value,
                }
            )
        changed[step] = entries
    return {
        "left": result.left,
        "right": result.right,
        "identical": result.identical,
        "only_left": result.only_left,
        "only_right": result.only_right,
        "same": result.same,
        "changed": changed,
    }
