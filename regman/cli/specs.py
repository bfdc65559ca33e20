"""``regman register|show|remove|validate``: one step spec at a time."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from regman.cli.app import app
from regman.cli.render import (
    JsonOption,
    confirm,
    error_line,
    guarded,
    message,
    open_manager,
    print_json,
    print_text,
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
    context: str = typer.Argument(..., help="Context to register into (created if missing)."),
    step: str = typer.Argument(..., help="Step name within the context."),
    spec_file: str = typer.Argument(..., metavar="SPEC.yaml", help="Spec file, or - for stdin."),
    no_replace: bool = typer.Option(
        False, "--no-replace", help="Refuse to overwrite an existing, different spec (exit 1)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report; write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON on stdout."),
) -> None:
    """Validate a spec file and store it as STEP in CONTEXT."""
    from regman.names import validate_name

    validate_name(context, "context")
    validate_name(step, "step")
    spec = _read_spec(spec_file)
    manager = open_manager()
    if dry_run:
        outcome = manager.store.preview_put(context, step, spec, replace=not no_replace)
    else:
        # put_spec creates the context in the same locked, undoable step: a refused
        # spec leaves no empty context behind.
        outcome = manager.store.put_spec(context, step, spec, replace=not no_replace)
    if as_json:
        print_json({"context": context, "step": step, "outcome": outcome, "dry_run": dry_run})
    else:
        prefix = "dry run: would be " if dry_run else ""
        message(
            f"{prefix}{outcome}: step '{step}' ({spec.step_type}, {spec.node_type.value}) "
            f"in context '{context}'"
        )


@app.command()
@guarded
def show(
    context: str = typer.Argument(..., help="The context."),
    step: str = typer.Argument(..., help="The step."),
    as_json: bool = JsonOption,
) -> None:
    """Print a stored spec as YAML (its native layout, extra sections included)."""
    spec = open_manager().store.load_spec(context, step)
    if as_json:
        print_json(spec.to_document())
    else:
        print_text(spec.to_yaml())


@app.command()
@guarded
def remove(
    context: str = typer.Argument(..., help="The context."),
    step: str = typer.Argument(..., help="The step to unregister."),
    purge: bool = typer.Option(False, "--purge", help="Delete for good (skip the trash)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before --purge."),
) -> None:
    """Unregister one step (it goes to the trash; see 'regman restore')."""
    from regman.errors import ContextNotFoundError, RefusedError, StepNotFoundError
    from regman.names import validate_name

    validate_name(step, "step")
    manager = open_manager()
    if not manager.has_context(context):
        raise ContextNotFoundError(context)
    if manager.store.spec_text(context, step) is None:
        raise StepNotFoundError(context, step)
    if purge and not confirm(f"permanently delete step '{step}' of '{context}'?", yes=yes):
        raise RefusedError("not confirmed; nothing was removed")
    if not manager.store.delete_spec(context, step, purge=purge):
        raise StepNotFoundError(context, step)
    tail = "" if purge else f" (undo with 'regman restore {context} {step}')"
    message(f"removed step '{step}' from context '{context}'{tail}")


@app.command()
def validate(
    spec_files: list[Path] = typer.Argument(..., metavar="SPEC.yaml...", help="Files to check."),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON on stdout."),
) -> None:
    """Validate spec files without touching any store; reports every invalid file."""
    from regman.specfile import load_spec_file

    results = []
    for path in spec_files:
        try:
            spec = load_spec_file(path)
            results.append(
                {
                    "file": str(path),
                    "valid": True,
                    "step_type": spec.step_type,
                    "node_type": spec.node_type.value,
                }
            )
        except SpecError as e:
            results.append(
                {
                    "file": str(path),
                    "valid": False,
                    "error": error_line(e)[7:],
                    "line": e.line,
                    "column": e.column,
                    "field": e.field,
                }
            )
            if not as_json:
                typer.echo(error_line(e), err=True)
                if e.hint:
                    typer.echo(f"hint: {e.hint}", err=True)
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


def step_name_for(path: str) -> str:
    """``preprocessing_training.step.yaml`` -> ``preprocessing_training``."""
    name = Path(path).name
    for suffix in (".step.yaml", ".step.yml", ".yaml", ".yml"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@app.command("import")
@guarded
def import_specs(
    context: str = typer.Argument(..., help="Context to register into (created if missing)."),
    spec_files: list[str] = typer.Argument(
        ..., metavar="SPEC.yaml...", help="Spec files; each step is named after its file."
    ),
    no_replace: bool = typer.Option(
        False, "--no-replace", help="Refuse to overwrite existing, different specs (exit 1)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report; write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcomes as JSON on stdout."),
) -> None:
    """Register many spec files at once (data_loading.step.yaml becomes step data_loading).

    Every file is validated first: if any is invalid, all problems are reported and
    nothing is written.
    """
    from regman.names import validate_name
    from regman.specfile import load_spec_file

    validate_name(context, "context")
    specs: dict[str, Any] = {}
    failed = 0
    for path in spec_files:
        step = step_name_for(path)
        try:
            validate_name(step, "step")
            clash = next((other for other in specs if other.casefold() == step.casefold()), None)
            if clash is not None:
                raise SpecError(f"two files name step '{clash}' (ignoring case)", source=path)
            specs[step] = load_spec_file(path)
        except (SpecError, ValueError) as e:
            failed += 1
            typer.echo(
                error_line(e) if isinstance(e, SpecError) else f"error: {e} ({path})", err=True
            )
    if failed:
        message(f"{failed} of {len(spec_files)} files are invalid; nothing was registered")
        raise typer.Exit(EXIT_BAD_INPUT)
    manager = open_manager()
    # Every refusal (--no-replace conflict, case clash, size) before anything is written.
    for step, spec in specs.items():
        manager.store.preview_put(context, step, spec, replace=not no_replace)
    store, replace = manager.store, not no_replace
    write = store.preview_put if dry_run else store.put_spec
    outcomes = {step: write(context, step, spec, replace=replace) for step, spec in specs.items()}
    if as_json:
        print_json({"context": context, "dry_run": dry_run, "steps": outcomes})
        return
    counts = {
        k: sum(1 for v in outcomes.values() if v == k) for k in ("created", "updated", "unchanged")
    }
    prefix = "dry run: would have " if dry_run else ""
    message(
        f"{prefix}{len(outcomes)} steps in context '{context}': "
        + ", ".join(f"{n} {k}" for k, n in counts.items())
    )


@app.command()
@guarded
def export(
    context: str = typer.Argument(..., help="The context to export."),
    directory: str = typer.Argument(..., metavar="DIR", help="Folder to write into."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
) -> None:
    """Write every spec of CONTEXT to DIR as <step>.step.yaml (re-import with 'regman import')."""
    from regman.errors import ContextNotFoundError

    registry = open_manager().get_registry(context, create_if_missing=False)
    if registry is None:
        raise ContextNotFoundError(context)
    paths = registry.export(directory, overwrite=force)
    message(f"exported {len(paths)} steps of context '{context}' to {directory}")
