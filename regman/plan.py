"""What a proposed change does to a context: its steps, and the wiring of its pipeline.

A plan compares a context's specs now with the specs it would hold after the change:
each step created / updated / removed / unchanged (with field-level differences), and
the wiring impact, found by resolving both states: edges added, removed and re-pointed,
required dependencies left without a provider, and consumed outputs removed or changed.
Pure: no I/O. ``RegistryManager.plan``/``apply``/``promote`` build and apply plans.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regman.compare import FieldChange, diff_documents

if TYPE_CHECKING:
    from regman.resolution import ResolutionReport
    from regman.spec import StepSpecification

ACTIONS = ("created", "updated", "removed", "unchanged")


@dataclass(frozen=True)
class StepPlan:
    """One step's fate: created / updated / removed / unchanged, and what differs."""

    step: str
    action: str
    changes: tuple[FieldChange, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "action": self.action,
            "changes": [c.to_dict() for c in self.changes],
        }


@dataclass(frozen=True)
class Edge:
    """``consumer.dependency <- provider.output``."""

    consumer: str
    dependency: str
    provider: str
    output: str

    def __str__(self) -> str:
        return f"{self.consumer}.{self.dependency} <- {self.provider}.{self.output}"

    def to_dict(self) -> dict[str, str]:
        return {
            "consumer": self.consumer,
            "dependency": self.dependency,
            "provider": self.provider,
            "output": self.output,
        }


@dataclass(frozen=True)
class Repointed:
    """A dependency that keeps a provider, but another one."""

    consumer: str
    dependency: str
    old: str  # provider.output
    new: str

    def __str__(self) -> str:
        return f"{self.consumer}.{self.dependency}: {self.old} -> {self.new}"

    def to_dict(self) -> dict[str, str]:
        return {
            "consumer": self.consumer,
            "dependency": self.dependency,
            "old": self.old,
            "new": self.new,
        }


@dataclass(frozen=True)
class BrokenOutput:
    """An output some step consumes now that the change removes or changes."""

    provider: str
    output: str
    change: str  # "removed", "step removed", or "output_type: a -> b; ..."
    consumers: tuple[str, ...]  # consumer.dependency

    def __str__(self) -> str:
        return (
            f"{self.provider}.{self.output} {self.change} (consumed by {', '.join(self.consumers)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "output": self.output,
            "change": self.change,
            "consumers": list(self.consumers),
        }


@dataclass(frozen=True)
class WiringImpact:
    added: tuple[Edge, ...] = ()
    removed: tuple[Edge, ...] = ()
    repointed: tuple[Repointed, ...] = ()
    unresolved: tuple[str, ...] = ()  # required consumer.dependency newly without a provider
    broken_outputs: tuple[BrokenOutput, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.repointed or self.unresolved)

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges_added": [e.to_dict() for e in self.added],
            "edges_removed": [e.to_dict() for e in self.removed],
            "edges_repointed": [r.to_dict() for r in self.repointed],
            "newly_unresolved_required": list(self.unresolved),
            "consumed_outputs_changed": [b.to_dict() for b in self.broken_outputs],
        }


@dataclass(frozen=True)
class ChangePlan:
    """A proposed change to ``context`` at ``base_revision``."""

    context: str
    base_revision: int
    steps: tuple[StepPlan, ...]
    wiring: WiringImpact = field(default_factory=WiringImpact)
    source: str | None = None  # where the proposal came from (``dev@12`` for a promotion)
    compatibility: str = "NONE"
    violations: tuple[str, ...] = ()  # what the context's compatibility rule forbids

    @property
    def changed(self) -> bool:
        return any(s.action != "unchanged" for s in self.steps)

    def counts(self) -> dict[str, int]:
        return {a: sum(1 for s in self.steps if s.action == a) for a in ACTIONS}

    def to_dict(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "base_revision": self.base_revision,
            "source": self.source,
            "changed": self.changed,
            "counts": self.counts(),
            "steps": [s.to_dict() for s in self.steps],
            "wiring": self.wiring.to_dict(),
            "compatibility": self.compatibility,
            "violations": list(self.violations),
        }


class _Specs:
    """A resolver's view of a mapping of specs (no store)."""

    def __init__(self, context: str, specs: Mapping[str, StepSpecification]) -> None:
        self._context = context
        self._specs = dict(specs)

    @property
    def context_name(self) -> str:
        return self._context

    def list_specifications(self) -> dict[str, StepSpecification]:
        return dict(self._specs)


def plan_change(
    context: str,
    base_revision: int,
    current: Mapping[str, StepSpecification],
    after: Mapping[str, StepSpecification],
    *,
    source: str | None = None,
    compatibility: str = "NONE",
) -> ChangePlan:
    """The plan that takes ``context`` from ``current`` to ``after`` (whole step mappings)."""
    steps: list[StepPlan] = []
    for step in sorted(set(current) | set(after)):
        old, new = current.get(step), after.get(step)
        if old is None:
            steps.append(StepPlan(step, "created"))
        elif new is None:
            steps.append(StepPlan(step, "removed"))
        else:
            changes = tuple(diff_documents(old.to_document(), new.to_document()))
            steps.append(StepPlan(step, "updated" if changes else "unchanged", changes))
    wiring = WiringImpact()
    violations: list[str] = []
    if any(s.action != "unchanged" for s in steps):
        wiring = wiring_impact(context, current, after)
        if compatibility != "NONE":
            violations = findings_under(compatibility, wiring, after)
    return ChangePlan(
        context, base_revision, tuple(steps), wiring, source, compatibility, tuple(violations)
    )


def wiring_impact(
    context: str,
    current: Mapping[str, StepSpecification],
    after: Mapping[str, StepSpecification],
) -> WiringImpact:
    """How the pipeline's wiring differs between two states of a context."""
    before_report, after_report = _resolve(context, current), _resolve(context, after)
    before, now = _edges(before_report), _edges(after_report)
    added = tuple(Edge(c, d, *now[(c, d)]) for c, d in sorted(now.keys() - before.keys()))
    removed = tuple(Edge(c, d, *before[(c, d)]) for c, d in sorted(before.keys() - now.keys()))
    repointed = tuple(
        Repointed(c, d, ".".join(before[(c, d)]), ".".join(now[(c, d)]))
        for c, d in sorted(before.keys() & now.keys())
        if before[(c, d)] != now[(c, d)]
    )
    was_unresolved = {(u.consumer, u.dependency) for u in before_report.unresolved_required}
    unresolved = tuple(
        f"{u.consumer}.{u.dependency}"
        for u in sorted(after_report.unresolved_required, key=lambda u: (u.consumer, u.dependency))
        if (u.consumer, u.dependency) not in was_unresolved
    )
    return WiringImpact(
        added, removed, repointed, unresolved, _broken_outputs(before, current, after)
    )


def _resolve(context: str, specs: Mapping[str, StepSpecification]) -> ResolutionReport:
    from regman.resolver import DependencyResolver

    return DependencyResolver(_Specs(context, specs)).get_resolution_report(sorted(specs))


def _edges(report: ResolutionReport) -> dict[tuple[str, str], tuple[str, str]]:
    return {(e.consumer, e.dependency): (e.provider, e.output) for e in report.edges}


def _broken_outputs(
    before: Mapping[tuple[str, str], tuple[str, str]],
    current: Mapping[str, StepSpecification],
    after: Mapping[str, StepSpecification],
) -> tuple[BrokenOutput, ...]:
    consumers: dict[tuple[str, str], list[str]] = {}
    for (consumer, dependency), provided in sorted(before.items()):
        consumers.setdefault(provided, []).append(f"{consumer}.{dependency}")
    broken: list[BrokenOutput] = []
    for (provider, output), who in sorted(consumers.items()):
        old_spec, new_spec = current[provider], after.get(provider)
        if new_spec is None:
            broken.append(BrokenOutput(provider, output, "step removed", tuple(who)))
            continue
        old, new = old_spec.outputs.get(output), new_spec.outputs.get(output)
        if old is None:
            continue
        if new is None:  # renamed, keeping the old name as an alias, is not a removal
            new = next((o for o in new_spec.outputs.values() if output in o.aliases), None)
        if new is None:
            broken.append(BrokenOutput(provider, output, "removed", tuple(who)))
            continue
        differences = [
            f"{name}: {_shown(getattr(old, name))} -> {_shown(getattr(new, name))}"
            for name in ("output_type", "data_type", "property_path")
            if getattr(old, name) != getattr(new, name)
        ]
        if differences:
            broken.append(BrokenOutput(provider, output, "; ".join(differences), tuple(who)))
    return tuple(broken)


def _shown(value: object) -> str:
    return str(getattr(value, "value", value))  # an enum shows its value


def compatibility_findings(
    context: str,
    mode: str,
    current: Mapping[str, StepSpecification],
    after: Mapping[str, StepSpecification],
) -> list[str]:
    """What a change from ``current`` to ``after`` breaks under a compatibility ``mode``.

    BACKWARD: no edge of the current wiring is lost and no consumed output is removed or
    changed in type, data type or property path (a re-pointed edge is a lost one, unless
    it still reaches the same output under a new name that keeps the old as an alias).
    FORWARD: no required dependency is left without a provider. FULL: both. NONE: nothing.
    """
    if mode == "NONE":
        return []
    return findings_under(mode, wiring_impact(context, current, after), after)


def findings_under(
    mode: str, impact: WiringImpact, after: Mapping[str, StepSpecification]
) -> list[str]:
    """The part of ``impact`` that ``mode`` forbids (see ``compatibility_findings``)."""
    findings: list[str] = []
    if mode in ("BACKWARD", "FULL"):
        findings += [f"edge lost: {edge}" for edge in impact.removed if edge.consumer in after]
        findings += [
            f"edge re-pointed: {moved}"
            for moved in impact.repointed
            if not _same_output(moved, after)
        ]
        findings += [f"consumed output changed: {broken}" for broken in impact.broken_outputs]
    if mode in ("FORWARD", "FULL"):
        findings += [f"required dependency without a provider: {dep}" for dep in impact.unresolved]
    return findings


def _same_output(moved: Repointed, after: Mapping[str, StepSpecification]) -> bool:
    old_step, _, old_output = moved.old.partition(".")
    new_step, _, new_output = moved.new.partition(".")
    if old_step != new_step or old_step not in after:
        return False
    output = after[new_step].outputs.get(new_output)
    return output is not None and old_output in output.aliases
