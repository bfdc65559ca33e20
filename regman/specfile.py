"""Spec documents to models and back: the cursus ``.step.yaml`` layout and the flat one.

The native layout is cursus' (``step_type``, ``node_type`` and a ``spec:`` section
holding ``dependencies`` and ``outputs`` keyed by logical name); the flat layout
(``dependencies``/``outputs`` at top level) is accepted too. Any other top-level
section is kept verbatim in ``metadata`` and written back. Every problem becomes one
SpecError naming ``file:line:column`` and the field path; yaml and pydantic errors
never escape.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from regman.errors import SpecError
from regman.spec import (
    DependencySpec,
    OutputSpec,
    StepSpecification,
    _Model,
    apply_variant,
    error_message,
    kind_of,
    variant_problem,
)
from regman.yamlsafe import MAX_SPEC_BYTES, Locator, Path_, locator, no_location, parse_yaml


def load_spec_file(path: str | os.PathLike[str]) -> StepSpecification:
    """Read and validate one spec file; every failure is a SpecError naming the file."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as fh:
            data = fh.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise SpecError("no such file", source=source, hint="check the path") from None
    except IsADirectoryError:
        raise SpecError("is a directory, not a spec file", source=source) from None
    except OSError as e:
        raise SpecError(f"cannot read file: {e.strerror or e}", source=source) from e
    return load_spec_text(data, source)


def load_spec_text(text: str | bytes, source: str = "<string>") -> StepSpecification:
    """Parse and validate one spec document given as text or bytes."""
    document, node = parse_yaml(text, source)
    return spec_from_document(document, source=source, locate=locator(node))


DEPENDENCY_KEYS = {
    "logical_name": "logical_name",
    "type": "dependency_type",
    "dependency_type": "dependency_type",
    "required": "required",
    "compatible_sources": "compatible_sources",
    "semantic_keywords": "semantic_keywords",
    "data_type": "data_type",
    "description": "description",
}
OUTPUT_KEYS = {
    "logical_name": "logical_name",
    "type": "output_type",
    "output_type": "output_type",
    "property_path": "property_path",
    "data_type": "data_type",
    "description": "description",
    "aliases": "aliases",
    "semantic_keywords": "semantic_keywords",
}
_HEADER_KEYS = ("step_type", "node_type", "description", "job_type")
_SPEC_SECTION_KEYS = ("dependencies", "outputs", *_HEADER_KEYS)
_TOP_KEYS = ("spec", "dependencies", "outputs", "variants", *_HEADER_KEYS)


def spec_file_problems(path: str | os.PathLike[str]) -> list[SpecError]:
    """Every problem of one spec file, in file order (``regman validate``); [] when valid.

    ``load_spec_file`` stops at the first problem; this goes on wherever the rest of
    the file can still be read (other keys, other dependencies and outputs), so a user
    fixes a file in one round. A problem that leaves nothing to read on (invalid YAML,
    a document that is not a mapping) is the only one reported.
    """
    try:
        load_spec_file(path)
        return []
    except SpecError as e:
        first = e
    source = os.fspath(path)
    try:
        with open(source, "rb") as fh:
            document, node = parse_yaml(fh.read(MAX_SPEC_BYTES + 1), source)
    except (OSError, SpecError):
        return [first]
    reader = _DocumentReader(source, locator(node))
    reader.problems = []
    try:
        reader.read(document)
    except SpecError as e:
        reader.problems.append(e)
    except _StopReading:
        pass
    found = reader.problems or [first]
    return sorted(found, key=lambda e: (e.line or 0, e.column or 0))


class _StopReading(Exception):
    """Collecting problems: what is left cannot be checked meaningfully."""


def spec_from_document(
    document: Any, *, source: str = "<spec>", locate: Locator | None = None
) -> StepSpecification:
    """Build a StepSpecification from a parsed document in either accepted layout."""
    return _DocumentReader(source, locate or no_location).read(document)


class _DocumentReader:
    def __init__(self, source: str, locate: Locator) -> None:
        self.source = source
        self.locate = locate
        self.problems: list[SpecError] | None = None  # collecting instead of raising

    def report(self, error: SpecError) -> None:
        """Raise ``error``, or, when collecting every problem, note it and go on."""
        if self.problems is None:
            raise error
        self.problems.append(error)

    def fail(
        self, problem: str, path: Path_, *, at_key: bool = False, hint: str | None = None
    ) -> SpecError:
        where = self.locate(path, at_key)
        return SpecError(
            problem,
            source=self.source,
            line=where[0] if where else None,
            column=where[1] if where else None,
            field=".".join(str(p) for p in path) or None,
            hint=hint,
        )

    def read(self, document: Any) -> StepSpecification:
        if not isinstance(document, Mapping):
            raise self.fail(
                f"a spec is a mapping with step_type and node_type, not {kind_of(document)}", ()
            )
        for key in document:
            if not isinstance(key, str):
                raise self.fail(
                    f"a section name must be text, not {kind_of(key)}",
                    (key,),
                    at_key=True,
                    hint="quote it",
                )
        header: dict[str, Any] = {}
        header_paths: dict[str, Path_] = {}
        body_path: tuple[str, ...]
        section = document.get("spec")
        native = "spec" in document
        if native:
            if not isinstance(section, Mapping):
                raise self.fail(f"'spec' must be a mapping, not {kind_of(section)}", ("spec",))
            for key in section:
                if key not in _SPEC_SECTION_KEYS:
                    self.report(self.unknown_key(key, ("spec", key), _SPEC_SECTION_KEYS))
            for key in _HEADER_KEYS:
                if key in section:
                    header[key], header_paths[key] = section[key], ("spec", key)
            for key in ("dependencies", "outputs"):
                if key in document:
                    raise self.fail(
                        f"'{key}' is given both at top level and under 'spec'", (key,), at_key=True
                    )
            body, body_path = section, ("spec",)
        else:
            body, body_path = document, ()
        metadata: dict[str, Any] = {}
        for key, value in document.items():
            if key in _HEADER_KEYS:
                if key in header and header[key] != value:
                    self.report(self.fail(f"'{key}' differs at top level and under 'spec'", (key,)))
                header[key], header_paths[key] = value, (key,)
            elif key not in _TOP_KEYS:
                close = difflib.get_close_matches(key, _TOP_KEYS, n=1, cutoff=0.85)
                if close:
                    self.report(self.unknown_key(key, (key,), _TOP_KEYS))
                    continue
                metadata[key] = value
        for key in ("step_type", "node_type"):
            if key not in header:
                self.report(self.fail(f"missing required field '{key}'", (), hint=f"add '{key}:'"))
        dependencies = self.entries(
            body.get("dependencies"),
            (*body_path, "dependencies"),
            "dependency",
            DependencySpec,
            DEPENDENCY_KEYS,
        )
        outputs = self.entries(
            body.get("outputs"), (*body_path, "outputs"), "output", OutputSpec, OUTPUT_KEYS
        )
        if self.problems:
            raise _StopReading  # the model's own rules would judge a partial spec
        values = {**header, "dependencies": dependencies, "outputs": outputs, "metadata": metadata}
        try:
            base = StepSpecification.model_validate(values)
        except (ValidationError, SpecError) as e:
            err = _validation_detail(e)
            field = str(err["loc"][0]) if err["loc"] else "node_type"
            raise self.fail(
                error_message(err), header_paths.get(field, header_paths["node_type"])
            ) from None
        if "variants" not in document or document["variants"] is None:
            return base
        variants = self.variants(document["variants"], base)
        return StepSpecification.model_validate({**values, "variants": variants})

    def variants(self, value: Any, base: StepSpecification) -> dict[str, Any]:
        """The ``variants:`` section, each variant checked by building its effective spec,
        so that a problem is reported where the variant says it."""
        if not isinstance(value, Mapping):
            raise self.fail(
                f"'variants' maps a job type to a partial spec, not {kind_of(value)}",
                ("variants",),
            )
        for job, variant in value.items():
            path: Path_ = ("variants", job)
            if not isinstance(job, str) or not job.strip():
                raise self.fail(f"a job type must be text, not {kind_of(job)}", path, at_key=True)
            problem = variant_problem(variant)
            if problem is not None:
                raise self.fail(f"variant '{job}': {problem}", path)
            try:
                apply_variant(base, variant, job)
            except SpecError as e:
                field = tuple(e.field.split(".")) if e.field else ()
                raise self.fail(f"variant '{job}': {e.problem}", (*path, *field)) from None
        return {job: dict(variant) for job, variant in value.items()}

    def unknown_key(
        self, key: Any, path: Path_, known: tuple[str, ...] | Mapping[str, str]
    ) -> SpecError:
        close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else "known keys: " + ", ".join(known)
        return self.fail(f"unknown key '{key}'", path, at_key=True, hint=hint)

    def entries(
        self, value: Any, path: Path_, kind: str, model: type[_Model], keys: Mapping[str, str]
    ) -> dict[str, Any]:
        if value is None:
            return {}
        items: Iterator[tuple[Any, Any, str | None]]
        if isinstance(value, list):
            items = ((i, item, None) for i, item in enumerate(value))
        elif isinstance(value, Mapping):
            items = ((k, item, k) for k, item in value.items())
        else:
            raise self.fail(
                f"'{path[-1]}' must be a mapping keyed by logical name or a list, "
                f"not {kind_of(value)}",
                path,
            )
        result: dict[str, Any] = {}
        keyed = isinstance(value, Mapping)
        for position, item, key_name in items:
            try:
                self.entry(item, (*path, position), key_name, keyed, kind, model, keys, result)
            except SpecError as e:
                self.report(e)
        return result

    def entry(
        self,
        item: Any,
        item_path: Path_,
        key_name: str | None,
        keyed: bool,
        kind: str,
        model: type[_Model],
        keys: Mapping[str, str],
        result: dict[str, Any],
    ) -> None:
        """Read one dependency or output into ``result`` (raises its first problem)."""
        position = item_path[-1]
        if keyed and not isinstance(position, str):  # `null:` and `no:` keys included
            raise self.fail(
                f"a logical name must be text, not {kind_of(position)} ({position!r})",
                item_path,
                at_key=True,
                hint="quote it in the YAML",
            )
        if not isinstance(item, Mapping):
            raise self.fail(f"a {kind} must be a mapping, not {kind_of(item)}", item_path)
        fields: dict[str, Any] = {}
        unknown = False
        for key, field_value in item.items():
            target = keys.get(key) if isinstance(key, str) else None
            if target is None:
                self.report(self.unknown_key(key, (*item_path, key), keys))
                unknown = True  # only when collecting: every unknown key of the entry
                continue
            if target in fields:
                raise self.fail(
                    f"'{key}' repeats another key for '{target}'",
                    (*item_path, key),
                    at_key=True,
                )
            fields[target] = field_value
        if unknown:
            return  # its other checks would report what the unknown keys caused
        if key_name is not None:
            given = fields.setdefault("logical_name", key_name)
            if given != key_name:
                raise self.fail(
                    f"logical_name '{given}' differs from its key '{key_name}'",
                    (*item_path, "logical_name"),
                )
        try:
            built = model.model_validate(fields)
        except (ValidationError, SpecError) as e:
            err = _validation_detail(e)
            loc = err["loc"]
            file_key = _file_key(item, str(loc[0]), keys) if loc else None
            field_path = (*item_path, file_key, *loc[1:]) if file_key else item_path
            if not file_key and loc and loc[0] == "logical_name" and key_name is not None:
                # the logical name is the mapping key: point at the key, not the body
                raise self.fail(
                    f"logical name {key_name!r} {error_message(err)}", item_path, at_key=True
                ) from None
            if not file_key and loc:
                raise self.fail(
                    f"missing required field '{_alias_for(str(loc[0]))}'",
                    item_path,
                    hint=f"add '{_alias_for(str(loc[0]))}:'",
                ) from None
            raise self.fail(error_message(err), field_path) from None
        name = built.logical_name  # type: ignore[attr-defined]
        if name in result:
            raise self.fail(f"duplicate {kind} logical_name '{name}'", item_path)
        result[name] = built


def _validation_detail(error: BaseException) -> Mapping[str, Any]:
    """pydantic's own first error behind ``error``, for its location in the document.

    ``_Model.__init__`` turns pydantic's error into a SpecError, and pydantic calls a
    custom ``__init__`` from ``model_validate`` too, then wraps that SpecError in a
    ValidationError of its own with no location: unwrap back to the original.
    """
    found: BaseException | None = error
    while found is not None:
        if isinstance(found, ValidationError):
            err = found.errors()[0]
            inner = (err.get("ctx") or {}).get("error")
            if err["type"] != "value_error" or err["loc"] or not isinstance(inner, SpecError):
                return err
            found = inner
        else:
            found = found.__cause__ or found.__context__
    raise error


def _file_key(item: Mapping[str, Any], field: str, keys: Mapping[str, str]) -> str | None:
    for key in item:
        if keys.get(key) == field:
            return str(key)
    return None


def _alias_for(field: str) -> str:
    return "type" if field in ("dependency_type", "output_type") else field


def coerce_specification(spec: Any, source: str = "<mapping>") -> StepSpecification:
    """A StepSpecification as is, or a mapping in any layout a spec file may use."""
    if isinstance(spec, StepSpecification):
        return spec
    if isinstance(spec, Mapping):
        if (
            "metadata" in spec
            and isinstance(spec.get("metadata"), Mapping)
            and ("spec" not in spec)
        ):
            try:
                return StepSpecification.model_validate(dict(spec))
            except (ValidationError, SpecError):
                pass
        return spec_from_document(spec, source=source)
    raise SpecError(
        f"expected a StepSpecification or a mapping, not {type(spec).__name__}", source=source
    )
