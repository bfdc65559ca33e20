"""Step specifications: the pydantic models (what a step needs and produces) and their rules.

The file format lives in :mod:`regman.specfile` (documents in the cursus and flat
layouts) and :mod:`regman.yamlsafe` (bounded, safe YAML); their functions are also
reachable from here (``regman.spec.load_spec_file``) for convenience.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from enum import Enum
from functools import lru_cache
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from regman.errors import SpecError

_LOGICAL_NAME_RE = r"^[A-Za-z0-9_-]+$"


class DependencyType(str, Enum):
    """What a dependency consumes or an output produces."""

    MODEL_ARTIFACTS = "model_artifacts"
    PROCESSING_OUTPUT = "processing_output"
    TRAINING_DATA = "training_data"
    HYPERPARAMETERS = "hyperparameters"
    PAYLOAD_SAMPLES = "payload_samples"
    CUSTOM_PROPERTY = "custom_property"

    def __str__(self) -> str:
        return self.value


class NodeType(str, Enum):
    """Where a step may sit in a pipeline graph."""

    SOURCE = "source"  # no dependencies, at least one output
    INTERNAL = "internal"  # both
    SINK = "sink"  # dependencies, no outputs
    SINGULAR = "singular"  # neither

    def __str__(self) -> str:
        return self.value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=False)

    def __init__(self, **data: Any) -> None:
        # Callers building specs in Python get a SpecError (a ValueError), never pydantic's.
        try:
            super().__init__(**data)
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or None
            raise SpecError(
                error_message(err),
                source=f"<{type(self).__name__}>",
                field=field,
            ) from None


class DependencySpec(_Model):
    """An input a step needs, matched by the resolver against other steps' outputs."""

    logical_name: str = Field(pattern=_LOGICAL_NAME_RE)
    dependency_type: DependencyType
    required: bool = True
    compatible_sources: list[str] = Field(default_factory=list)
    semantic_keywords: list[str] = Field(default_factory=list)
    data_type: str = "S3Uri"
    description: str = ""


class OutputSpec(_Model):
    """An output a step produces, reachable at ``property_path`` on the built step."""

    logical_name: str = Field(pattern=_LOGICAL_NAME_RE)
    output_type: DependencyType
    property_path: str
    data_type: str = "S3Uri"
    description: str = ""
    aliases: list[str] = Field(default_factory=list)
    semantic_keywords: list[str] = Field(default_factory=list)

    @field_validator("property_path")
    @classmethod
    def _property_path_is_sagemaker_style(cls, value: str) -> str:
        if not value.startswith("properties."):
            raise ValueError("property_path must start with 'properties.'")
        return value


def _keyed_by_logical_name(value: Any, kind: str) -> Any:
    """Accept a list (keyed by logical_name) or a mapping keyed by logical name."""
    if isinstance(value, list):
        keyed: dict[str, Any] = {}
        for item in value:
            name = (
                getattr(item, "logical_name", None)
                if isinstance(item, BaseModel)
                else (item.get("logical_name") if isinstance(item, Mapping) else None)
            )
            if not isinstance(name, str):
                raise ValueError(f"every {kind} in a list needs a logical_name")
            if name in keyed:
                raise ValueError(f"duplicate {kind} logical_name '{name}'")
            keyed[name] = item
        return keyed
    if isinstance(value, Mapping):
        keyed = {}
        for key, item in value.items():
            if isinstance(item, Mapping) and "logical_name" not in item:
                item = {"logical_name": key, **item}
            keyed[key] = item
        return keyed
    return value


class StepSpecification(_Model):
    """What one pipeline step needs (dependencies) and produces (outputs).

    ``variants`` maps a job type to a partial spec document (``{"spec": {"dependencies":
    ..., "outputs": ...}}``, cursus' top-level ``variants:`` section) that a step of that
    job type uses over this base: see :meth:`for_job_type`. The spec as stored keeps
    its variants; only the effective spec has them applied.
    """

    step_type: str = Field(min_length=1)
    node_type: NodeType
    dependencies: dict[str, DependencySpec] = Field(default_factory=dict)
    outputs: dict[str, OutputSpec] = Field(default_factory=dict)
    description: str = ""
    job_type: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # job type -> (the fields it was built from, the effective spec); see for_job_type
    _effective: dict[str, tuple[tuple[Any, ...], StepSpecification]] = PrivateAttr(
        default_factory=dict
    )

    def __eq__(self, other: object) -> bool:
        # the fields only: the cache of effective specs is no part of a spec's value
        if not isinstance(other, StepSpecification):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable, like any pydantic model

    @field_validator("dependencies", mode="before")
    @classmethod
    def _dependencies_keyed(cls, value: Any) -> Any:
        return _keyed_by_logical_name(value, "dependency")

    @field_validator("outputs", mode="before")
    @classmethod
    def _outputs_keyed(cls, value: Any) -> Any:
        return _keyed_by_logical_name(value, "output")

    @model_validator(mode="after")
    def _consistent(self) -> StepSpecification:
        for kind, items in (("dependency", self.dependencies), ("output", self.outputs)):
            for key, item in items.items():
                if key != item.logical_name:
                    raise ValueError(
                        f"{kind} key '{key}' differs from its logical_name '{item.logical_name}'"
                    )
        rule = node_type_violation(
            self.node_type,
            len(self.dependencies),
            len(self.outputs),
            sum(1 for d in self.dependencies.values() if d.required),
        )
        if rule:
            raise ValueError(rule)
        for job_type, variant in self.variants.items():
            problem = variant_problem(variant)
            if problem is None:
                try:
                    self.for_job_type(job_type)
                except SpecError as e:
                    problem = e.problem if e.field is None else f"{e.field}: {e.problem}"
            if problem is not None:
                raise ValueError(f"variant '{job_type}': {problem}")
        return self

    # -- job-type variants ----------------------------------------------------------------
    def variant_for(self, job_type: str | None) -> str | None:
        """The key of the variant a step of ``job_type`` uses (case, separators and
        abbreviations ignored: ``Training`` and ``train`` find ``training``), if any."""
        if job_type is None or not self.variants:
            return None
        wanted = normalize_job_type(job_type)
        for key in sorted(self.variants):
            if normalize_job_type(key) == wanted:
                return key
        return None

    def for_job_type(self, job_type: str | None) -> StepSpecification:
        """The effective spec of a step of ``job_type``: this base with the matching
        variant deep-merged over it (mappings merge, so ports a variant omits keep the
        base and a port restates only the fields it changes; lists and other values are
        replaced). Without a matching variant, the spec itself. The result has no
        variants; it is cached, so call it freely."""
        key = self.variant_for(job_type)
        if key is None:
            return self
        # cached with the very field objects it was built from, so that a copy with other
        # fields (model_copy(update=...)) or an assignment never sees a stale one
        sources = tuple(self.__dict__.values())
        found = self._effective.get(key)
        if (
            found is None
            or len(found[0]) != len(sources)
            or any(a is not b for a, b in zip(found[0], sources, strict=True))
        ):
            found = self._effective[key] = (sources, apply_variant(self, self.variants[key], key))
        return found[1]

    # -- convenience accessors (the cursus API) ---------------------------------
    def get_dependency(self, logical_name: str) -> DependencySpec | None:
        return self.dependencies.get(logical_name)

    def get_output(self, logical_name: str) -> OutputSpec | None:
        return self.outputs.get(logical_name)

    def get_output_by_name_or_alias(self, name: str) -> OutputSpec | None:
        if name in self.outputs:
            return self.outputs[name]
        for output in self.outputs.values():
            if name in output.aliases:
                return output
        return None

    def list_required_dependencies(self) -> list[DependencySpec]:
        return [d for d in self.dependencies.values() if d.required]

    def list_optional_dependencies(self) -> list[DependencySpec]:
        return [d for d in self.dependencies.values() if not d.required]

    def list_dependencies_by_type(
        self, dependency_type: DependencyType | str
    ) -> list[DependencySpec]:
        wanted = DependencyType(dependency_type)
        return [d for d in self.dependencies.values() if d.dependency_type == wanted]

    def list_outputs_by_type(self, output_type: DependencyType | str) -> list[OutputSpec]:
        wanted = DependencyType(output_type)
        return [o for o in self.outputs.values() if o.output_type == wanted]

    # -- file format --------------------------------------------------------------
    def to_document(self) -> dict[str, Any]:
        """The spec in the native (cursus ``.step.yaml``) layout, extra sections included."""
        doc: dict[str, Any] = {"step_type": self.step_type, "node_type": self.node_type.value}
        if self.job_type is not None:
            doc["job_type"] = self.job_type
        if self.description:
            doc["description"] = self.description
        doc["spec"] = {
            "dependencies": {n: _dependency_document(d) for n, d in self.dependencies.items()},
            "outputs": {n: _output_document(o) for n, o in self.outputs.items()},
        }
        for key, value in self.metadata.items():
            doc.setdefault(key, value)
        if self.variants:
            doc["variants"] = {job: _plain(v) for job, v in self.variants.items()}
        return doc

    def to_yaml(self) -> str:
        from regman.yamlsafe import dump_yaml

        return dump_yaml(self.to_document())

    @classmethod
    def from_yaml(cls, text: str | bytes, source: str = "<string>") -> StepSpecification:
        from regman.specfile import load_spec_text

        return load_spec_text(text, source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> StepSpecification:
        from regman.specfile import load_spec_file

        return load_spec_file(path)


_WORD_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z0-9]+|[A-Z0-9]+")
_JOB_ABBREVIATIONS = {
    "train": "training",
    "calib": "calibration",
    "test": "testing",
    "eval": "evaluation",
    "val": "validation",
    "infer": "inference",
}


@lru_cache(maxsize=1 << 12)
def normalize_job_type(job_type: str) -> str:
    """How job types compare: ``"Training"``, ``"train"`` -> ``"training"``;
    ``"FineTune"``, ``"fine_tune"`` -> ``"finetune"`` (one word: a name suffix cannot
    hold a separator)."""
    words = [w.lower() for w in _WORD_RE.findall(job_type)]
    return "".join(_JOB_ABBREVIATIONS.get(w, w) for w in words) or job_type.lower()


def node_type_violation(
    node_type: NodeType, n_dependencies: int, n_outputs: int, n_required: int | None = None
) -> str | None:
    """The node-type rule a spec with these counts breaks, if any.

    A source may have optional dependencies (cursus accepts such specs, and real ones
    exist: a loader that can also take a previous run's output); never a required one.
    ``n_required`` defaults to every dependency being required.
    """
    has_deps, has_outs = n_dependencies > 0, n_outputs > 0
    required = n_dependencies if n_required is None else n_required
    if node_type is NodeType.SOURCE and (required > 0 or not has_outs):
        return "a source step has no required dependencies and at least one output"
    if node_type is NodeType.INTERNAL and not (has_deps and has_outs):
        return "an internal step has at least one dependency and at least one output"
    if node_type is NodeType.SINK and (not has_deps or has_outs):
        return "a sink step has at least one dependency and no outputs"
    if node_type is NodeType.SINGULAR and (has_deps or has_outs):
        return "a singular step has no dependencies and no outputs"
    return None


#: what a variant may restate: the ports (native or flat layout) and the free text
VARIANT_KEYS = ("spec", "dependencies", "outputs", "description", "node_type")
_PORT_KEYS = {
    "dependencies": {"dependency_type": "type"},
    "outputs": {"output_type": "type"},
}


def variant_problem(variant: Any) -> str | None:
    """What is wrong with a variant's shape, if anything (its content is checked by
    building the effective spec)."""
    if not isinstance(variant, Mapping):
        return f"a variant is a mapping like a spec document, not {kind_of(variant)}"
    for key in variant:
        if key not in VARIANT_KEYS:
            return f"unknown key '{key}' (a variant may hold: {', '.join(VARIANT_KEYS)})"
    section = variant.get("spec", {})
    if not isinstance(section, Mapping):
        return f"'spec' must be a mapping, not {kind_of(section)}"
    for key in section:
        if key not in ("dependencies", "outputs", "description", "node_type"):
            return f"unknown key 'spec.{key}' (a variant restates dependencies and outputs)"
    return None


def canonical_variant(variant: Mapping[str, Any]) -> dict[str, Any]:
    """A variant in the layout :meth:`StepSpecification.to_document` writes, so that it
    merges key by key: ports under ``spec`` keyed by logical name, ``type`` for
    ``dependency_type``/``output_type``."""
    section: dict[str, Any] = {}
    head: dict[str, Any] = {}
    for key, value in variant.items():
        if key == "spec":
            section.update(value)
        elif key in _PORT_KEYS:
            section[key] = value
        else:
            head[key] = value
    for key in ("description", "node_type"):
        if key in section:
            head[key] = section.pop(key)
    for kind, renames in _PORT_KEYS.items():
        ports = section.get(kind)
        if isinstance(ports, list):
            ports = {
                p.get("logical_name"): {k: v for k, v in p.items() if k != "logical_name"}
                for p in ports
                if isinstance(p, Mapping)
            }
        if isinstance(ports, Mapping):
            section[kind] = {
                name: {renames.get(k, k): v for k, v in port.items()}
                if isinstance(port, Mapping)
                else port
                for name, port in ports.items()
            }
    if section:
        head["spec"] = section
    return head


def apply_variant(
    base: StepSpecification, variant: Mapping[str, Any], job_type: str
) -> StepSpecification:
    """``base`` (its variants ignored) with ``variant`` deep-merged over it, validated as a
    spec of its own; a SpecError names the merged field that is wrong."""
    from regman.specfile import spec_from_document

    document = base.to_document()
    document.pop("variants", None)
    merged = deep_merge(document, canonical_variant(variant))
    return spec_from_document(merged, source=f"<{base.step_type} variant {job_type}>")


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base``: mappings recursively, anything else replaced."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _dependency_document(dep: DependencySpec) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": dep.dependency_type.value, "required": dep.required}
    if dep.compatible_sources:
        doc["compatible_sources"] = list(dep.compatible_sources)
    if dep.semantic_keywords:
        doc["semantic_keywords"] = list(dep.semantic_keywords)
    doc["data_type"] = dep.data_type
    if dep.description:
        doc["description"] = dep.description
    return doc


def _output_document(out: OutputSpec) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": out.output_type.value, "property_path": out.property_path}
    if out.aliases:
        doc["aliases"] = list(out.aliases)
    if out.semantic_keywords:
        doc["semantic_keywords"] = list(out.semantic_keywords)
    doc["data_type"] = out.data_type
    if out.description:
        doc["description"] = out.description
    return doc


def error_message(err: Mapping[str, Any]) -> str:
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    if err.get("type") == "string_pattern_mismatch":
        return "must contain only letters, digits, '_' and '-'"
    if err.get("type") == "missing":
        return "is required"
    value = err.get("input")
    if err.get("type") in ("string_type", "bool_type", "enum") and not isinstance(value, Mapping):
        msg += f" (got {value!r})"
    return msg


def kind_of(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


_FILE_API = {
    "MAX_EXPANDED_NODES": "regman.yamlsafe",
    "MAX_NESTING": "regman.yamlsafe",
    "MAX_SPEC_BYTES": "regman.yamlsafe",
    "dump_yaml": "regman.yamlsafe",
    "parse_yaml": "regman.yamlsafe",
    "coerce_specification": "regman.specfile",
    "load_spec_file": "regman.specfile",
    "load_spec_text": "regman.specfile",
    "spec_from_document": "regman.specfile",
}


def __getattr__(name: str) -> Any:
    # The file functions live in their own modules (which import this one); they are
    # looked up lazily so that either side can be imported first.
    module = _FILE_API.get(name)
    if module is None:
        raise AttributeError(f"module 'regman.spec' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
