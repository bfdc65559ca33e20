"""What a resolution produces: wired edges, what stayed unresolved, and explanations.

Plain data with ``to_dict()`` for ``--json``; built by :mod:`regman.resolver`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from regman.scoring import Score
from regman.spec import DependencyType, OutputSpec, StepSpecification

DEFAULT_THRESHOLD = 0.5


class SpecSource(Protocol):
    """What the resolver reads: a registry's name and its specs (a SpecificationRegistry)."""

    @property
    def context_name(self) -> str: ...

    def list_specifications(self) -> dict[str, StepSpecification]: ...


# -- public results ----------------------------------------------------------------------


@dataclass(frozen=True, init=False)
class PropertyReference:
    """Where a dependency's value comes from: ``step_name``'s ``output_name``.

    Built as ``PropertyReference(step, output_name, property_path, score)`` or, as cursus
    code does, ``PropertyReference(step_name=..., output_spec=OutputSpec(...))``; either
    way ``output_name``/``property_path`` and (when known) ``output_spec`` are set.
    ``str()`` gives ``step.output``.
    """

    step_name: str
    output_name: str
    property_path: str
    score: float
    output_spec: OutputSpec | None = field(compare=False)

    def __init__(
        self,
        step_name: str,
        output_name: str | None = None,
        property_path: str | None = None,
        score: float = 1.0,
        *,
        output_spec: OutputSpec | None = None,
    ) -> None:
        if output_spec is not None:
            output_name = output_spec.logical_name if output_name is None else output_name
            property_path = output_spec.property_path if property_path is None else property_path
        if output_name is None or property_path is None:
            raise TypeError("PropertyReference needs output_spec, or output_name and property_path")
        object.__setattr__(self, "step_name", step_name)
        object.__setattr__(self, "output_name", output_name)
        object.__setattr__(self, "property_path", property_path)
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "output_spec", output_spec)

    def __str__(self) -> str:
        return f"{self.step_name}.{self.output_name}"

    def __repr__(self) -> str:
        return (
            f"PropertyReference({self.step_name}.{self.output_name} -> "
            f"{self.property_path}, score={self.score:.2f})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_name": self.step_name,
            "output_name": self.output_name,
            "property_path": self.property_path,
            "score": self.score,
        }

    def to_sagemaker_property(self) -> dict[str, str]:
        """The reference as a SageMaker pipeline definition holds it, the form the SageMaker
        SDK writes: ``{"Get": "Steps.<step>.ProcessingOutputConfig..."}``. The leading
        ``properties.`` of ``property_path`` is the Python attribute path
        (``step.properties.ProcessingOutputConfig``), not part of the reference."""
        path = self.property_path.removeprefix("properties.")
        return {"Get": f"Steps.{self.step_name}.{path}"}


@dataclass(frozen=True)
class ResolvedDependency:
    """One edge ``consumer.dependency <- provider.output`` with its score and notes."""

    consumer: str
    dependency: str
    provider: str
    output: str
    property_path: str
    required: bool
    score: Score
    notes: tuple[str, ...] = ()
    output_spec: OutputSpec | None = field(default=None, compare=False, repr=False)
    #: the equally ranked candidate the choice was made over by name (``provider.output``),
    #: when no rule separated them: the choice is arbitrary
    tied_with: str | None = None

    @property
    def reference(self) -> PropertyReference:
        return PropertyReference(
            self.provider,
            self.output,
            self.property_path,
            self.score.total,
            output_spec=self.output_spec,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "dependency": self.dependency,
            "provider": self.provider,
            "output": self.output,
            "property_path": self.property_path,
            "required": self.required,
            "score": self.score.total,
            "breakdown": self.score.to_dict(),
            "notes": list(self.notes),
            "tied_with": self.tied_with,
        }


@dataclass(frozen=True)
class UnresolvedDependency:
    """A dependency left unwired, and why."""

    consumer: str
    dependency: str
    required: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "dependency": self.dependency,
            "required": self.required,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ResolutionReport:
    """Everything one resolution decided: edges, what stayed unresolved, the order."""

    context: str
    threshold: float
    steps: tuple[str, ...]
    edges: tuple[ResolvedDependency, ...]
    unresolved: tuple[UnresolvedDependency, ...]
    order: tuple[str, ...]

    @property
    def total_dependencies(self) -> int:
        return len(self.edges) + len(self.unresolved)

    @property
    def resolution_rate(self) -> float:
        total = self.total_dependencies
        return len(self.edges) / total if total else 1.0

    @property
    def unresolved_required(self) -> list[UnresolvedDependency]:
        return [u for u in self.unresolved if u.required]

    @property
    def unresolved_optional(self) -> list[UnresolvedDependency]:
        return [u for u in self.unresolved if not u.required]

    @property
    def ok(self) -> bool:
        """True when every required dependency is wired."""
        return not self.unresolved_required

    def wiring(self) -> dict[str, dict[str, PropertyReference]]:
        """``{step: {dependency: PropertyReference}}`` for every step, sorted."""
        result: dict[str, dict[str, PropertyReference]] = {step: {} for step in self.steps}
        for edge in self.edges:
            result[edge.consumer][edge.dependency] = edge.reference
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "threshold": self.threshold,
            "steps": list(self.steps),
            "resolved": [e.to_dict() for e in self.edges],
            "unresolved_required": [u.to_dict() for u in self.unresolved_required],
            "unresolved_optional": [u.to_dict() for u in self.unresolved_optional],
            "total_dependencies": self.total_dependencies,
            "resolution_rate": round(self.resolution_rate, 4),
            "order": list(self.order),
        }


@dataclass(frozen=True)
class Candidate:
    """One output considered for a dependency, as :meth:`DependencyResolver.explain` shows it."""

    provider: str
    output: str
    property_path: str
    score: Score
    provider_job_type: str | None
    # chosen | closes a cycle | job type | tie | lower score | below threshold |
    # nearest provider | exact name | passed over (closed a cycle when considered)
    status: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "output": self.output,
            "property_path": self.property_path,
            "score": self.score.total,
            "breakdown": self.score.to_dict(),
            "provider_job_type": self.provider_job_type,
            "status": self.status,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class IncompatibleOutput:
    provider: str
    output: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "output": self.output, "reason": self.reason}


@dataclass(frozen=True)
class Explanation:
    """Why a dependency was wired as it was: every candidate, ranked, with its reasons."""

    context: str
    step: str
    dependency: str
    dependency_type: DependencyType
    data_type: str
    required: bool
    threshold: float
    step_job_type: str | None
    preferred_job_type: str | None
    chosen: Candidate | None
    candidates: tuple[Candidate, ...]
    incompatible: tuple[IncompatibleOutput, ...] = field(default=())
    unresolved_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "step": self.step,
            "dependency": self.dependency,
            "dependency_type": self.dependency_type.value,
            "data_type": self.data_type,
            "required": self.required,
            "threshold": self.threshold,
            "step_job_type": self.step_job_type,
            "preferred_job_type": self.preferred_job_type,
            "chosen": self.chosen.to_dict() if self.chosen else None,
            "unresolved_reason": self.unresolved_reason,
            "candidates": [c.to_dict() for c in self.candidates],
            "incompatible": [i.to_dict() for i in self.incompatible],
        }


# -- the index ---------------------------------------------------------------------------
