"""``regman doctor``: check the store and repair what is derived."""

from __future__ import annotations

import typer

from regman.cli.app import app
from regman.cli.render import JsonOption, guarded, message, open_manager, print_json, print_table


@app.command()
@guarded
def doctor(
    repair: bool = typer.Option(
        False, "--repair", help="Rebuild indexes and remove leftovers (never touches specs)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Check the store: format version, every spec, every index, leftover temporary files.

    Exits 0 when the store is healthy (or every problem was repaired), 1 otherwise.
    """
    from regman.doctor import check_store
    from regman.store import FileStore

    store = open_manager().store
    if not isinstance(store, FileStore):
        message("an in-memory store has nothing to check")
        return
    report = check_store(store, repair=repair)
    if as_json:
        print_json(report.to_dict())
    else:
        if report.items:
            print_table(
                ["severity", "path", "problem", "repaired"],
                [[i.severity, i.path, i.problem, i.repaired] for i in report.items],
                justify=["left", "left", "left", "left"],
            )
        state = "healthy" if report.healthy else "damaged"
        message(
            f"store {store.root}: {state} ({report.contexts_checked} contexts, "
            f"{report.specs_checked} specs checked, {len(report.items)} problems"
            f"{', all repaired' if report.items and report.healthy else ''})"
        )
        if not report.healthy and not repair:
            message("hint: 'regman doctor --repair' rebuilds what is derived from the specs")
    if not report.healthy:
        raise typer.Exit(1)
