"""``regman contexts list|show|create``."""

from __future__ import annotations

import typer

from regman.cli.app import app
from regman.cli.render import (
    JsonOption,
    guarded,
    message,
    open_manager,
    print_json,
    print_table,
    short_time,
)

contexts_app = typer.Typer(help="List, inspect and create contexts.", no_args_is_help=True)
app.add_typer(contexts_app, name="contexts")


@contexts_app.command("list")
@guarded
def list_contexts(as_json: bool = JsonOption) -> None:
    """List every context with its number of steps and step types."""
    stats = open_manager().get_context_stats()
    if as_json:
        print_json([{"name": name, **values} for name, values in stats.items()])
        return
    if not stats:
        message("no contexts yet; create one with 'regman register CONTEXT STEP SPEC.yaml'")
        return
    print_table(
        ["context", "steps", "step types", "updated"],
        [
            [n, s["step_count"], s["step_type_count"], short_time(s["updated_at"])]
            for n, s in stats.items()
        ],
    )


@contexts_app.command("show")
@guarded
def show_context(
    context: str = typer.Argument(..., help="The context to show."),
    as_json: bool = JsonOption,
) -> None:
    """Show the steps of one context: types, dependencies and outputs."""
    from regman.errors import ContextNotFoundError

    registry = open_manager().get_registry(context, create_if_missing=False)
    if registry is None:
        raise ContextNotFoundError(context)
    specs = registry.list_specifications()
    if as_json:
        print_json({name: spec.to_document() for name, spec in specs.items()})
        return
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
    )


@contexts_app.command("create")
@guarded
def create_context(context: str = typer.Argument(..., help="The context to create.")) -> None:
    """Create an empty context (nothing happens if it exists)."""
    created = open_manager().create_context(context)
    message(f"created context '{context}'" if created else f"context '{context}' already exists")
