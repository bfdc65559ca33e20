"""``regman doctor``: check the store and repair what can be."""

from __future__ import annotations

import typer

from regman.cli.app import app
from regman.cli.render import JsonOption, guarded, message, open_manager, print_json, print_table


@app.command()
@guarded
def doctor(
    repair: bool = typer.Option(
        False,
        "--repair",
        help="Write missing records, remove leftovers of interrupted writes, rebuild a "
        "damaged head (never rewrites a spec).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Check the store: format, every context's head and revisions, every stored spec.

    Exits 0 when the store is healthy (or every problem was repaired), 1 otherwise.
    """
    manager = open_manager()
    report = manager.check_store(repair=repair)
    if as_json:
        print_json(report.to_dict())
    else:
        if report.items:
            print_table(
                ["severity", "where", "problem", "repaired"],
                [[i.severity, i.path, i.problem, i.repaired] for i in report.items],
                justify=["left", "left", "left", "left"],
                whole=(0, 1),
            )
        state = "healthy" if report.healthy else "damaged"
        message(
            f"store {report.store}: {state} ({report.contexts_checked} contexts, "
            f"{report.revisions_checked} revisions, {report.specs_checked} specs checked, "
            f"{len(report.items)} problems"
            f"{', all repaired' if report.items and report.healthy else ''})"
        )
        if not report.healthy and not repair:
            message("hint: 'regman doctor --repair' fixes what can be fixed")
    if not report.healthy:
        raise typer.Exit(1)
