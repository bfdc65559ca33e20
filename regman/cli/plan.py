"""``regman plan|apply|promote``: see what a change does to a context's wiring, then land it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    load_sources,
    message,
    open_manager,
    print_json,
    print_text,
    split_ref,
    step_argument,
)
from regman.errors import EXIT_NOT_FOUND

if TYPE_CHECKING:
    from regman.plan import ChangePlan

SourcesArgument = typer.Argument(
    ...,
    metavar="SOURCE...",
    help="Spec files or folders (searched for *.step.yaml); each step is named after its file.",
)
PruneOption = typer.Option(
    False, "--prune", help="Also remove the context's steps that the sources do not hold."
)
YesOption = typer.Option(False, "--yes", "-y", help="Do not ask (needed off a terminal).")


@app.command()
@guarded
def plan(
    context: str = context_argument("The context the change is for."),
    sources: list[str] = SourcesArgument,
    prune: bool = PruneOption,
    as_json: bool = JsonOption,
) -> None:
    """Show what 'apply' would do: each step, field by field, and the wiring impact.

    Writes nothing. Exit 0 when nothing would change, 1 when something would (like
    'diff' and 'terraform plan -detailed-exitcode'); 2 bad input, 3 store error.
    """
    specs = load_sources(sources, "nothing was planned")
    proposal = open_manager().plan(context, specs, prune=prune)
    _show(proposal, as_json)
    if proposal.changed:
        raise typer.Exit(EXIT_NOT_FOUND)


@app.command()
@guarded
def apply(
    context: str = context_argument("The context to change (created if missing)."),
    sources: list[str] = SourcesArgument,
    prune: bool = PruneOption,
    yes: bool = YesOption,
    force: bool = ForceRulesOption,
    message_text: str = MessageOption,
    if_revision: int = IfRevisionOption,
    as_json: bool = JsonOption,
) -> None:
    """Make CONTEXT hold what the sources hold, as one revision; prints the plan first.

    Steps the sources do not hold stay unless --prune. Confirms on a terminal.
    """
    specs = load_sources(sources, "nothing was planned")
    manager = open_manager()
    proposal = manager.plan(context, specs, prune=prune)
    _show(proposal, as_json)
    if not proposal.changed:
        return
    _refuse_violations(proposal, force)
    _confirm(f"apply these changes to context '{context}'?", yes)
    _, result = manager.apply(
        context,
        specs,
        prune=prune,
        message=message_text,
        if_revision=if_revision,
        plan=proposal,
        force=force,
    )
    if not as_json:
        message(f"context '{context}' is at revision {result.revision}")


@app.command()
@guarded
def promote(
    source: str = context_argument("The context (or CONTEXT@N) to copy from.", metavar="SOURCE"),
    target: str = context_argument(
        "The context to copy into (created if missing).", metavar="TARGET"
    ),
    steps: list[str] = step_argument("Steps to copy (default: all).", default=None),
    prune: bool = typer.Option(
        False, "--prune", help="Make the target equal to the source (removes other steps)."
    ),
    yes: bool = YesOption,
    force: bool = ForceRulesOption,
    message_text: str = MessageOption,
    if_revision: int = IfRevisionOption,
    as_json: bool = JsonOption,
) -> None:
    """Copy steps from one context to another as one revision that records its source.

    Prints the plan first and confirms on a terminal; history shows e.g. 'from dev@12'.
    """
    name, at = split_ref(source)
    manager = open_manager()
    proposal, _ = manager.promote(
        name, target, steps or None, revision=at, prune=prune, dry_run=True
    )
    _show(proposal, as_json)
    if not proposal.changed:
        return
    _refuse_violations(proposal, force)
    _confirm(f"promote these changes from '{proposal.source}' into '{target}'?", yes)
    _, result = manager.promote(
        name,
        target,
        steps or None,
        revision=at,
        prune=prune,
        message=message_text,
        if_revision=if_revision if if_revision is not None else proposal.base_revision,
        force=force,
    )
    if result is not None and not as_json:
        message(f"context '{target}' is at revision {result.revision} (from {proposal.source})")


def _refuse_violations(proposal: ChangePlan, force: bool) -> None:
    """Refuse before asking: the store would refuse the same change (exit 1)."""
    from regman.errors import CompatibilityError

    if proposal.violations and not force:
        raise CompatibilityError(
            proposal.context, proposal.compatibility, list(proposal.violations)
        )


def _confirm(prompt: str, yes: bool) -> None:
    """render.confirm: Ctrl-C exits 130 quietly and end of input means no."""
    from regman.errors import RefusedError

    if not confirm(prompt, yes=yes):
        raise RefusedError("nothing changed")


def _show(proposal: ChangePlan, as_json: bool) -> None:
    if as_json:
        print_json(proposal.to_dict())
        return
    print_text(render_plan(proposal))


def render_plan(proposal: ChangePlan) -> str:
    """The plan as text: what happens to each changed step, then to the wiring."""
    counts = proposal.counts()
    where = f"context '{proposal.context}' at revision {proposal.base_revision}"
    if proposal.source:
        where += f", from {proposal.source}"
    lines = [
        f"plan for {where}: "
        + ", ".join(f"{counts[a]} {a}" for a in ("created", "updated", "removed", "unchanged"))
    ]
    marks = {"created": "+", "updated": "~", "removed": "-"}
    for step in proposal.steps:
        if step.action == "unchanged":
            continue
        lines.append(f"  {marks[step.action]} {step.step} ({step.action})")
        for change in step.changes:
            lines.append(f"      {change.path}: {_value(change.left)} -> {_value(change.right)}")
    wiring = proposal.wiring
    if wiring.changed or wiring.broken_outputs:
        lines.append("wiring:")
        lines += [f"  + {edge}" for edge in wiring.added]
        lines += [f"  - {edge}" for edge in wiring.removed]
        lines += [f"  ~ {moved}" for moved in wiring.repointed]
        lines += [f"  ! {dep}: required, no provider any more" for dep in wiring.unresolved]
        lines += [f"  ! {broken}" for broken in wiring.broken_outputs]
    elif proposal.changed:
        lines.append("wiring: unchanged")
    if proposal.violations:
        lines.append(f"refused by compatibility {proposal.compatibility} (--force overrides):")
        lines += [f"  x {finding}" for finding in proposal.violations]
    return "\n".join(lines)


def _value(value: Any) -> str:
    import json

    if value is None:
        return "(absent)"
    return value if isinstance(value, str) else json.dumps(value)
