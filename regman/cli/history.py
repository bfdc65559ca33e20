"""``regman history`` and ``regman rollback``: every change is a revision."""

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
    print_json,
    print_table,
    short_time,
    step_argument,
)


@app.command()
@guarded
def history(
    context: str = context_argument("The context (cleared ones too)."),
    step: str = step_argument("Only revisions that changed this step.", default=None),
    limit: int = typer.Option(
        None, "--limit", "-n", metavar="N", min=1, help="Only the newest N revisions."
    ),
    as_json: bool = JsonOption,
) -> None:
    """The revisions of a context, newest first: who changed what, when, with which command."""
    records = open_manager().history(context, step, limit)
    rows = [r.summary() for r in records]
    if as_json:
        print_json(rows)
        return
    if not rows:  # like 'git log -- nosuchfile': nothing to show is not an error
        message(f"no revision of context '{context}' touched step '{step}'")
        return
    print_table(
        ["revision", "time", "author", "command", "message", "changes"],
        [
            [
                r["revision"],
                short_time(r["created_at"]),
                r["author"],
                r["command"] + (f" ({r['source']})" if r["source"] else ""),
                r["message"],
                _changes_text(r["changes"], r["purged"]),
            ]
            for r in rows
        ],
        justify=["right", "left", "left", "left", "left", "left"],
        whole=(0, 1),
    )


def _changes_text(changes: dict[str, str], purged: list[str]) -> str:
    if not changes and not purged:
        return "-"
    parts = [f"{kind} {step}" for step, kind in changes.items()]
    parts += [f"purged {step}" for step in purged]
    if len(parts) > 6:
        counts: dict[str, int] = {}
        for kind in changes.values():
            counts[kind] = counts.get(kind, 0) + 1
        return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    return ", ".join(parts)


@app.command()
@guarded
def rollback(
    context: str = context_argument("The context to roll back."),
    steps: list[str] = step_argument("Only these steps.", default=None),
    to: int = typer.Option(..., "--to", metavar="N", min=1, help="The revision to go back to."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    message_text: str = MessageOption,
    if_revision: int = IfRevisionOption,
    force: bool = ForceRulesOption,
    as_json: bool = JsonOption,
) -> None:
    """Make a new revision whose content equals revision N (all steps, or those named).

    Nothing is lost: the revisions after N stay in the history, and a rollback can
    itself be rolled back.
    """
    from regman.errors import RefusedError

    manager = open_manager()
    current = manager.revision(context)
    if not confirm(
        f"make context '{context}' (revision {current}) equal to revision {to}"
        + (f" for {', '.join(steps)}" if steps else "")
        + "?",
        yes=yes,
    ):
        raise RefusedError("not confirmed; nothing was changed")
    with overriding(force):
        result = manager.rollback(
            context, to, steps or None, message=message_text, if_revision=if_revision
        )
    changed = {s: o for s, o in result.outcomes.items() if o != "unchanged"}
    if as_json:
        print_json(
            {
                "context": context,
                "revision": result.revision,
                "to": to,
                "changed": result.changed,
                "steps": changed,
            }
        )
        return
    if not result.changed:
        message(f"context '{context}' already equals revision {to}; nothing changed")
        return
    for step, outcome in sorted(changed.items()):
        message(f"  {outcome}: {step}")
    message(f"rolled context '{context}' back to revision {to} as revision {result.revision}")
