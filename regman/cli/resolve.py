"""``regman resolve|explain``: how a context's steps wire together, and why.

``resolve`` exits 0 when every required dependency is wired and 1 otherwise, whatever
the output format, so a script can gate on it; the result is printed either way.
"""

from __future__ import annotations

import os
from enum import Enum
from typing import TYPE_CHECKING, Any

import typer

from regman.cli.app import app
from regman.cli.render import (
    JsonOption,
    cap,
    context_argument,
    guarded,
    message,
    open_registry,
    print_json,
    print_table,
    print_text,
    step_argument,
)

if TYPE_CHECKING:
    from regman.registry import SpecificationRegistry
    from regman.resolution import Explanation, ResolutionReport


class Format(str, Enum):
    table = "table"
    tree = "tree"
    mermaid = "mermaid"
    dot = "dot"


ThresholdOption = typer.Option(
    0.5, "--threshold", min=0.0, max=1.0, help="Lowest score that may be wired (0-1)."
)


def _registry(context: str) -> SpecificationRegistry:
    """CONTEXT, or CONTEXT@N for how it wired at revision N.

    A damaged stored spec fails the command (naming the file and 'regman doctor')
    rather than being left out of the wiring, which would then be silently incomplete.
    """
    registry: SpecificationRegistry = open_registry(context)
    registry.require_all_readable()
    return registry


@app.command()
@guarded
def resolve(
    context: str = context_argument("The context whose steps to wire."),
    steps: list[str] = step_argument(
        "Steps to wire among themselves (default: all).", default=None
    ),
    output_format: Format = typer.Option(
        Format.table, "--format", "-f", help="table, tree, mermaid (Markdown) or dot (Graphviz)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the wiring as JSON on stdout (whatever the exit code)."
    ),
    threshold: float = ThresholdOption,
    candidates: bool = typer.Option(
        False,
        "--candidates",
        help="With --json: each dependency's runners-up, ranked, with scores (slower).",
    ),
) -> None:
    """Wire each step's dependencies to other steps' outputs and show the pipeline.

    Exit 0 when every required dependency is wired, 1 otherwise.
    """
    from regman.resolver import DependencyResolver

    if as_json and output_format is not Format.table:
        raise typer.BadParameter("--json and --format are alternatives; give one")
    if candidates and not as_json:
        raise typer.BadParameter("--candidates goes with --json ('regman explain' shows them)")
    registry = _registry(context)
    resolver = DependencyResolver(registry, threshold=threshold)
    report = resolver.get_resolution_report(steps or None)
    if as_json:
        document = resolution_document(report)
        if candidates:
            _add_runners_up(document, resolver, steps or None)
        print_json(document)
    elif not report.steps:
        pass  # nothing to draw; said on stderr below
    elif output_format is Format.mermaid:
        print_text(mermaid(report))
    elif output_format is Format.dot:
        print_text(dot(report))
    elif output_format is Format.tree:
        _print_tree(report, registry)
    else:
        _print_table(report)
    missing = report.unresolved_required
    if not report.steps:
        message(f"context '{context}' has no steps")
    elif not as_json:
        message(
            f"wired {len(report.edges)} of {report.total_dependencies} dependencies; "
            f"{len(missing)} required and {len(report.unresolved_optional)} optional unresolved"
        )
    if missing:
        names = ", ".join(f"{u.consumer}.{u.dependency}" for u in missing[:5])
        more = f" and {len(missing) - 5} more (see --json)" if len(missing) > 5 else ""
        message(cap(f"error: required dependencies unresolved: {names}{more}"))
        first = missing[0]
        message(f"hint: see 'regman explain {context} {first.consumer} {first.dependency}'")
        raise typer.Exit(1)


@app.command()
@guarded
def explain(
    context: str = context_argument("The context."),
    step: str = step_argument("The consuming step."),
    dependency: str = typer.Argument(
        ..., metavar="DEPENDENCY", help="One of its dependencies (logical name)."
    ),
    as_json: bool = JsonOption,
    limit: int = typer.Option(20, "--limit", min=1, help="Show at most this many candidates."),
    threshold: float = ThresholdOption,
) -> None:
    """Show every output considered for STEP's DEPENDENCY, ranked, and why each scored so."""
    from regman.resolver import DependencyResolver

    explanation = DependencyResolver(_registry(context), threshold=threshold).explain(
        step, dependency
    )
    if as_json:
        print_json(explanation.to_dict())
        return
    _print_explanation(explanation, limit)


# -- documents ---------------------------------------------------------------------------


def resolution_document(report: ResolutionReport) -> dict[str, Any]:
    """The ``--json`` document: context, edges, unresolved, order; nothing more."""
    return {
        "context": report.context,
        "edges": [
            {
                "consumer": e.consumer,
                "dependency": e.dependency,
                "provider": e.provider,
                "output": e.output,
                "score": e.score.total,
                "tied_with": e.tied_with,  # a rival only name order separated, else null
                "notes": list(e.notes),
            }
            for e in report.edges
        ],
        "unresolved": [
            {"consumer": u.consumer, "dependency": u.dependency, "required": u.required}
            for u in report.unresolved
        ],
        "order": list(report.order),
    }


def _add_runners_up(document: dict[str, Any], resolver: Any, steps: list[str] | None) -> None:
    """Each edge and unresolved dependency gets ``candidates``: the others considered."""
    for entry in [*document["edges"], *document["unresolved"]]:
        explained = resolver.explain(entry["consumer"], entry["dependency"], steps)
        entry["candidates"] = [
            {
                "provider": c.provider,
                "output": c.output,
                "score": c.score.total,
                "status": c.status,
                "reason": c.reason,
            }
            for c in explained.candidates
            if c.status != "chosen"
        ]


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def mermaid(report: ResolutionReport) -> str:
    """A Mermaid flowchart: steps in execution order, edges labelled output -> dependency."""
    ids = {name: f"s{i}" for i, name in enumerate(report.order)}
    lines = ["flowchart TD"]
    lines += [f'    {ids[name]}["{_mermaid_text(name)}"]' for name in report.order]
    for e in report.edges:
        label = _mermaid_text(f"{e.output} → {e.dependency} ({e.score.total:.2f})")
        lines.append(f'    {ids[e.provider]} -->|"{label}"| {ids[e.consumer]}')
    for i, u in enumerate(report.unresolved):
        kind = "required" if u.required else "optional"
        lines.append(
            f'    u{i}(["{_mermaid_text(u.dependency)}: unresolved, {kind}"]):::{kind}'
            f" -.-> {ids[u.consumer]}"
        )
    if report.unresolved:
        lines.append("    classDef required stroke:#d00,color:#d00")
        lines.append("    classDef optional stroke:#999,color:#999,stroke-dasharray:3")
    return "\n".join(lines)


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot(report: ResolutionReport) -> str:
    """A Graphviz digraph: steps as boxes, unresolved dependencies as red/grey notes."""
    lines = [
        f"digraph {_dot_text(report.context)} {{",
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    lines += [f"  {_dot_text(name)};" for name in report.order]
    for e in report.edges:
        label = _dot_text(f"{e.output} -> {e.dependency}\n{e.score.total:.2f}")
        lines.append(f"  {_dot_text(e.provider)} -> {_dot_text(e.consumer)} [label={label}];")
    for i, u in enumerate(report.unresolved):
        color = "red" if u.required else "grey"
        kind = "required" if u.required else "optional"
        node = _dot_text(f"unresolved:{i}")
        label = _dot_text(f"{u.dependency}\nunresolved ({kind})")
        lines.append(
            f"  {node} [label={label}, shape=note, style=dashed, color={color}, fontcolor={color}];"
        )
        lines.append(f"  {node} -> {_dot_text(u.consumer)} [style=dashed, color={color}];")
    lines.append("}")
    return "\n".join(lines)


# -- terminal rendering ------------------------------------------------------------------


def _console() -> Any:
    from rich.console import Console

    return Console(
        highlight=False, soft_wrap=True, no_color=bool(os.environ.get("NO_COLOR")) or None
    )


def _resolution_rows(report: ResolutionReport) -> list[tuple[list[str], str]]:
    """Rows of (cells, style): edges, then unresolved dependencies, by consumer."""
    rows: list[tuple[list[str], str]] = []
    for e in report.edges:
        note = "; ".join(e.notes)
        rows.append(
            (
                [
                    f"{e.consumer}.{e.dependency}",
                    "<-",
                    f"{e.provider}.{e.output}",
                    f"{e.score.total:.2f}",
                    note,
                ],
                "",
            )
        )
    for u in report.unresolved:
        status = "UNRESOLVED (required)" if u.required else "unresolved (optional)"
        rows.append(
            (
                [f"{u.consumer}.{u.dependency}", "", status, "-", u.reason],
                "bold red" if u.required else "yellow",
            )
        )
    return rows


def _print_table(report: ResolutionReport) -> None:
    rows = _resolution_rows(report)
    if rows:
        print_table(
            ["consumer.dependency", "", "provider.output", "score", "notes"],
            [r for r, _ in rows],
            justify=["left", "left", "left", "right", "left"],
            whole=(0, 2),
            styles=[style or None for _, style in rows],
        )
    print_text("execution order: " + " -> ".join(report.order))


def _print_tree(report: ResolutionReport, registry: SpecificationRegistry) -> None:
    from rich.markup import escape
    from rich.tree import Tree

    specs = registry.list_specifications()
    edges = {(e.consumer, e.dependency): e for e in report.edges}
    missing = {(u.consumer, u.dependency): u for u in report.unresolved}
    tree = Tree(f"[bold]{escape(report.context)}[/bold] (execution order)")
    for position, name in enumerate(report.order, 1):
        spec = specs[name]
        node = tree.add(f"{position}. [bold]{escape(name)}[/bold] ({escape(spec.step_type)})")
        for dep_name in sorted(spec.dependencies):
            key = (name, dep_name)
            if key in edges:
                e = edges[key]
                node.add(
                    f"{escape(dep_name)} <- {escape(e.provider)}.{escape(e.output)} "
                    f"({e.score.total:.2f})"
                )
            else:
                u = missing[key]
                if u.required:
                    node.add(f"[bold red]{escape(dep_name)}: UNRESOLVED (required)[/bold red]")
                else:
                    node.add(f"[yellow]{escape(dep_name)}: unresolved (optional)[/yellow]")
    _console().print(tree)


def _print_explanation(explanation: Explanation, limit: int) -> None:
    e = explanation
    kind = "required" if e.required else "optional"
    lines = [
        f"{e.step}.{e.dependency}: {e.dependency_type.value}, {e.data_type}, {kind}; "
        f"threshold {e.threshold}"
    ]
    if e.preferred_job_type:
        whose = "the step's own" if e.step_job_type else "asked for by the dependency"
        lines.append(f"job type: {e.preferred_job_type} ({whose})")
    if e.chosen is not None:
        c = e.chosen
        lines.append(f"wired to: {c.provider}.{c.output} ({c.score.total:.2f})")
    else:
        lines.append(f"unresolved: {e.unresolved_reason}")
    print_text("\n".join(lines))
    rows = []
    for rank, c in enumerate(e.candidates[:limit], 1):
        parts = c.score.components
        breakdown = (
            f"type {parts['type']:.2f} name {parts['name']:.2f} "
            f"kw {parts['dependency_keywords']:.2f}/{parts['output_keywords']:.2f} "
            f"source {parts['compatible_source']:.2f}"
        )
        rows.append(
            [
                str(rank),
                f"{c.provider}.{c.output}",
                f"{c.score.total:.2f}",
                breakdown,
                c.status,
                c.reason,
                "; ".join(c.score.reasons),
            ]
        )
    if rows:
        print_table(
            ["#", "candidate", "score", "breakdown", "status", "why", "evidence"],
            rows,
            justify=["right", "left", "right", "left", "left", "left", "left"],
            whole=(1,),
            styles=["green" if c.status == "chosen" else None for c in e.candidates[: len(rows)]],
            wrap=40,
        )
    hidden = len(e.candidates) - len(rows)
    if hidden > 0:
        message(f"{hidden} more candidate(s); see --limit")
    if e.incompatible:
        message(f"{len(e.incompatible)} output(s) of an incompatible type or data type not shown")
    if not e.candidates:
        message("no output of a compatible type in the context")
