"""``regman trash list|empty`` and ``regman restore``: recoverable deletes."""

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
)

trash_app = typer.Typer(help="Show or empty what clear and remove deleted.", no_args_is_help=True)
app.add_typer(trash_app, name="trash")


@trash_app.command("list")
@guarded
def list_trash(as_json: bool = JsonOption) -> None:
    """List deleted contexts and steps, oldest first."""
    entries = [e.as_dict() for e in open_manager().store.list_trash()]
    if as_json:
        print_json(entries)
        return
    if not entries:
        message("the trash is empty")
        return
    print_table(
        ["deleted at", "kind", "context", "step"],
        [[e["deleted_at"], e["kind"], e["context"], e["step"]] for e in entries],
    )


@trash_app.command("empty")
@guarded
def empty_trash(
    older_than: float = typer.Option(
        None,
        "--older-than",
        metavar="DAYS",
        min=0,
        max=1e6,
        help="Only entries deleted more than DAYS ago.",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete trash entries for good."""
    from regman.errors import RefusedError

    if not confirm("permanently delete the trash?", yes=yes):
        raise RefusedError("not confirmed; nothing was deleted")
    removed = open_manager().store.empty_trash(older_than)
    message(f"deleted {removed} trash entr{'y' if removed == 1 else 'ies'}")


@app.command()
@guarded
def restore(
    context: str = typer.Argument(..., help="The context to bring back."),
    step: str = typer.Argument(None, help="Only this step of the context."),
) -> None:
    """Bring back the latest deleted version of a context or of one step."""
    entry = open_manager().store.restore(context, step)
    what = f"step '{step}' of context '{context}'" if step else f"context '{context}'"
    message(f"restored {what} (deleted {entry.as_dict()['deleted_at']})")
