"""``regman trash list|empty`` and ``regman restore``: what can be brought back, and purging it."""

from __future__ import annotations

import typer

from regman.cli.app import app
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
    short_time,
    step_argument,
)

trash_app = typer.Typer(
    help="Cleared contexts and removed steps that 'regman restore' can bring back.",
    no_args_is_help=True,
)
app.add_typer(trash_app, name="trash")


@trash_app.command("list")
@guarded
def list_trash(as_json: bool = JsonOption) -> None:
    """List cleared contexts and removed steps, oldest first (all kept until purged)."""
    entries = [e.as_dict() for e in open_manager().list_trash()]
    if as_json:
        print_json(entries)
        return
    if not entries:
        message("the trash is empty")
        return
    print_table(
        ["deleted at", "kind", "context", "step", "revision"],
        [
            [short_time(e["deleted_at"]), e["kind"], e["context"], e["step"], e["revision"]]
            for e in entries
        ],
        whole=(0, 2, 3),
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
        help="Only what was removed more than DAYS ago.",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Purge for good: cleared contexts with all their history, removed steps' stored versions."""
    from regman.errors import RefusedError

    manager = open_manager()
    count = len(manager.list_trash())
    if not count:
        message("the trash is empty")
        return
    if not confirm(f"permanently delete up to {count} trash entries?", yes=yes):
        raise RefusedError("not confirmed; nothing was deleted")
    removed = manager.empty_trash(older_than)
    message(f"purged {removed} trash entr{'y' if removed == 1 else 'ies'}")


@app.command()
@guarded
def restore(
    context: str = context_argument("The cleared context to bring back."),
    step: str = step_argument("Only this removed step of the context.", default=None),
    message_text: str = MessageOption,
    if_revision: int = IfRevisionOption,
    force: bool = ForceRulesOption,
) -> None:
    """Bring back a cleared context's last steps, or one removed step: a new revision."""
    with overriding(force):
        result = open_manager().restore(
            context, step, message=message_text, if_revision=if_revision
        )
    what = f"step '{step}' of context '{context}'" if step else f"context '{context}'"
    count = sum(1 for v in result.outcomes.values() if v == "created")
    message(f"restored {what} ({plural(count, 'step')}, revision {result.revision})")
