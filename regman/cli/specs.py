"""``regman register|show|remove|validate``: one step spec at a time."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from regman.cli.app import app
from regman.cli.render import (
    ForceRulesOption,
    IfRevisionOption,
    JsonOption,
    MessageOption,
    cap,
    confirm,
    context_argument,
    error_line,
    guarded,
    load_sources,
    message,
    open_manager,
    open_registry,
    overriding,
    print_json,
    print_text,
    step_argument,
)
from regman.errors import EXIT_BAD_INPUT, SpecError


def _read_spec(path: str):  # type: ignore[no-untyped-def]
    from regman.specfile import load_spec_file, load_spec_text
    from regman.yamlsafe import MAX_SPEC_BYTES

    if path == "-":
        data = sys.stdin.buffer.read(MAX_SPEC_BYTES + 1)
        return load_spec_text(data, "<stdin>")
    return load_spec_file(path)


@app.command()
@guarded
def register(
    context: str = context_argument("Context to register into (created if missing)."),
    step: str = step_argument("Step name within the context."),
    spec_file: str = typer.Argument(..., metavar="SPEC", help="Spec file, or - for stdin."),
    no_replace: bool = typer.Option(
        False, "--no-replace", help="Refuse to overwrite an existing, different spec (exit 1)."
    ),
    no_create: bool = typer.Option(
        False, "--no-create", help="Refuse a context that does not exist (exit 1)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report; write nothing."),
    message_text: str = MessageOption,
    if_revision: int = IfRevisionOption,
    force: bool = ForceRulesOption,
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON on stdout."),
) -> None:
    """Validate a spec file and store it as STEP in CONTEXT: one new revision."""
    from regman.names import validate_name

    validate_name(context, "context")
    validate_name(step, "step")
    spec = _read_spec(spec_file)
    manager = open_manager()
    existed = manager.has_context(context)
    with overriding(force):
        result = manager.register_specs(
            context,
            {step: spec},
            replace=not no_replace,
            message=message_text,
            if_revision=if_revision,
            dry_run=dry_run,
            create=not no_create,
        )
    outcome = result.outcomes[step]
    if not existed:
        _say_created(manager, context, dry_run)
    if as_json:
        print_json(
            {
                "context": context,
                "step": step,
                "outcome": outcome,
                "revision": result.revision,
                "dry_run": dry_run,
            }
        )
    else:
        prefix = "dry run: would be " if dry_run else ""
        tail = f" (revision {result.revision})" if result.changed else ""
        message(
            f"{prefix}{outcome}: step '{step}' ({spec.step_type}, {spec.node_type.value}) "
            f"in context '{context}'{tail}"
        )


def _say_created(manager: Any, context: str, dry_run: bool) -> None:
    """A new context may be a typo of an existing one: say so on stderr."""
    close = manager.closest_context(context)
    verb = "would create" if dry_run else "created"
    message(f"{verb} context '{context}'" + (f"; did you mean '{close}'?" if close else ""))


@app.command()
@guarded
def show(
    context: str = context_argument("The context, or CONTEXT@N for revision N."),
    step: str = step_argument("The step."),
    revision: int = typer.Option(
        None, "--revision", "-r", metavar="N", min=1, help="As it was at revision N."
    ),
    effective: bool = typer.Option(
        False,
        "--effective",
        help="The spec the resolver uses: the variant of the step's job type merged over it.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Print a stored spec as YAML (its native layout, extra sections included)."""
    registry = open_registry(context, revision)
    spec = registry.require_spec(step)
    if effective:
        from regman import DependencyResolver

        spec = DependencyResolver(registry).effective_specification(step)
    if as_json:
        print_json(spec.to_document())
    else:
        print_text(spec.to_yaml())


@app.command()
@guarded
def remove(
    context: str = context_argument("The context."),
    step: str = step_argument("The step to unregister."),
    purge: bool = typer.Option(
        False, "--purge", help="Also delete every stored version of the step, for good."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before --purge."),
    message_text: str = MessageOption,
    if_revision: int = IfRevisionOption,
    force: bool = ForceRulesOption,
) -> None:
    """Unregister one step: a new revision ('regman restore CONTEXT STEP' brings it back)."""
    from regman.errors import RefusedError

    registry = open_registry(context)
    registry.require_spec(step)
    if purge and not confirm(
        f"permanently delete step '{step}' of '{context}' and all its stored versions?", yes=yes
    ):
        raise RefusedError("not confirmed; nothing was removed")
    with overriding(force):
        registry.remove_specification(
            step, purge=purge, message=message_text, if_revision=if_revision
        )
    tail = "" if purge else f" (undo with 'regman restore {context} {step}')"
    message(f"removed step '{step}' from context '{context}' (revision {registry.revision}){tail}")


@app.command()
@guarded
def validate(
    spec_files: list[Path] = typer.Argument(..., metavar="SPEC.yaml...", help="Files to check."),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON on stdout."),
) -> None:
    """Validate spec files without touching any store: every problem of every file."""
    from regman.specfile import load_spec_file, spec_file_problems

    results: list[dict[str, Any]] = []
    for path in spec_files:
        try:
            spec = load_spec_file(path)
        except SpecError as first:
            problems = spec_file_problems(path)
            details = [
                {
                    "error": error_line(e)[7:],
                    "line": e.line,
                    "column": e.column,
                    "field": e.field,
                    "hint": e.hint,
                }
                for e in [first, *problems]
            ]
            # error/line/column/field: the problem 'register' would report; then every one
            results.append(
                {"file": str(path), "valid": False, **details[0], "problems": details[1:]}
            )
            if not as_json:
                for e in problems:
                    typer.echo(cap(error_line(e)), err=True)
                    if e.hint:
                        typer.echo(cap(f"hint: {e.hint}"), err=True)
            continue
        results.append(
            {
                "file": str(path),
                "valid": True,
                "step_type": spec.step_type,
                "node_type": spec.node_type.value,
            }
        )
    invalid = sum(1 for r in results if not r["valid"])
    if as_json:
        print_json(results)
    else:
        for r in results:
            if r["valid"]:
                print_text(f"ok: {r['file']} ({r['step_type']}, {r['node_type']})")
        message(f"{len(results) - invalid} valid, {invalid} invalid")
    if invalid:
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command("import")
@guarded
def import_specs(
    context: str = context_argument("Context to register into (created if missing)."),
    sources: list[str] = typer.Argument(
        ...,
        metavar="SPEC...",
        help="Spec files or folders (searched for *.step.yaml); each step is named after its file.",
    ),
    no_replace: bool = typer.Option(
        False, "--no-replace", help="Refuse to overwrite existing, different specs (exit 1)."
    ),
    no_create: bool = typer.Option(
        False, "--no-create", help="Refuse a context that does not exist (exit 1)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report; write nothing."),
    message_text: str = MessageOption,
    if_revision: int = IfRevisionOption,
    force: bool = ForceRulesOption,
    as_json: bool = typer.Option(False, "--json", help="Print the outcomes as JSON on stdout."),
) -> None:
    """Register many spec files as one revision (data_loading.step.yaml: step data_loading).

    Every file is validated first: if any is invalid, all problems are reported and
    nothing is written. Either every file lands, or none does.
    """
    from regman.names import validate_name

    validate_name(context, "context")
    specs = load_sources(sources, "nothing was registered")
    manager = open_manager()
    existed = manager.has_context(context)
    with overriding(force):
        result = manager.register_specs(
            context,
            specs,
            replace=not no_replace,
            command="import",
            message=message_text,
            if_revision=if_revision,
            dry_run=dry_run,
            create=not no_create,
        )
    if not existed:
        _say_created(manager, context, dry_run)
    outcomes = result.outcomes
    if as_json:
        print_json(
            {
                "context": context,
                "dry_run": dry_run,
                "revision": result.revision,
                "steps": outcomes,
            }
        )
        return
    counts = {
        k: sum(1 for v in outcomes.values() if v == k) for k in ("created", "updated", "unchanged")
    }
    prefix = "dry run: would have " if dry_run else ""
    tail = f" (revision {result.revision})" if result.changed else ""
    message(
        f"{prefix}{len(outcomes)} steps in context '{context}': "
        + ", ".join(f"{n} {k}" for k, n in counts.items())
        + tail
    )


@app.command()
@guarded
def export(
    context: str = context_argument("The context to export, or CONTEXT@N."),
    directory: str = typer.Argument(None, metavar="DIR", help="Folder to write into."),
    output: str = typer.Option(
        None,
        "--output",
        "-o",
        metavar="FILE",
        help="Write one bundle file instead (a multi-document YAML stream; - for stdout).",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
) -> None:
    """Write every spec of CONTEXT to DIR as <step>.step.yaml, or to one bundle file.

    Both re-import with 'regman import' (and 'plan'/'apply' read them).
    """
    from regman.cli.render import bad_input

    if (directory is None) == (output is None):
        raise bad_input("give a folder or --output FILE (one of them)")
    registry = open_registry(context)
    if output == "-":
        sys.stdout.write(registry.export_bundle())
        return
    if output is not None:
        registry.export_bundle(output, overwrite=force)
        message(
            f"exported {len(registry.list_step_names())} steps of context '{context}' to {output}"
        )
        return
    paths = registry.export(directory, overwrite=force)
    message(f"exported {len(paths)} steps of context '{context}' to {directory}")
