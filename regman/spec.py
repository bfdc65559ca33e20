"""Step specifications: the pydantic models and their YAML file format.

The native file layout is cursus' ``.step.yaml`` (``step_type``, ``node_type``
and a ``spec:`` section holding ``dependencies`` and ``outputs`` keyed by
logical name); the flat layout (``dependencies``/``outputs`` at top level) is
accepted too. Any other top-level section is kept verbatim in ``metadata`` and
written back, so users' files survive a round trip.

Every problem becomes one :class:`~regman.errors.SpecError` naming
``file:line:column`` and the field path; yaml and pydantic errors never escape.
This module does no store I/O beyond reading a spec file and prints nothing.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from enum import Enum
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from regman.errors import SpecError

MAX_SPEC_BYTES = 1024 * 1024  # a spec is a few KB; bigger is a mistake or an attack
MAX_NESTING = 64  # real specs nest < 10 deep; deeper input is rejected before composing
MAX_EXPANDED_NODES = 100_000  # alias ("billion laughs") bombs expand past this

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
                _message(err),
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
    """What one pipeline step needs (dependencies) and produces (outputs)."""

    step_type: str = Field(min_length=1)
    node_type: NodeType
    dependencies: dict[str, DependencySpec] = Field(default_factory=dict)
    outputs: dict[str, OutputSpec] = Field(default_factory=dict)
    description: str = ""
    job_type: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

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
        rule = node_type_violation(self.node_type, len(self.dependencies), len(self.outputs))
        if rule:
            raise ValueError(rule)
        return self

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
        return doc

    def to_yaml(self) -> str:
        return dump_yaml(self.to_document())

    @classmethod
    def from_yaml(cls, text: str | bytes, source: str = "<string>") -> StepSpecification:
        return load_spec_text(text, source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> StepSpecification:
        return load_spec_file(path)


def node_type_violation(node_type: NodeType, n_dependencies: int, n_outputs: int) -> str | None:
    """The node-type rule a spec with these counts breaks, if any."""
    has_deps, has_outs = n_dependencies > 0, n_outputs > 0
    if node_type is NodeType.SOURCE and (has_deps or not has_outs):
        return "a source step has no dependencies and at least one output"
    if node_type is NodeType.INTERNAL and not (has_deps and has_outs):
        return "an internal step has at least one dependency and at least one output"
    if node_type is NodeType.SINK and (not has_deps or has_outs):
        return "a sink step has at least one dependency and no outputs"
    if node_type is NodeType.SINGULAR and (has_deps or has_outs):
        return "a singular step has no dependencies and no outputs"
    return None


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


# ---------------------------------------------------------------------------------
# YAML reading
# ---------------------------------------------------------------------------------

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _SpecLoader(_BaseLoader):  # type: ignore[misc]
    """Safe loader that rejects duplicate keys (PyYAML silently keeps the last).

    Only keys written in the mapping itself count: a key that overrides one brought
    in by a merge key (``<<: *defaults``) is what merge keys are for.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._explicit: dict[int, list[tuple[Any, Any]]] = {}

    def _explicit_pairs(self, node: Any) -> list[tuple[Any, Any]]:
        # flatten_mapping rewrites node.value in place (possibly while flattening
        # another mapping that merges this one), so remember the written pairs first.
        pairs = self._explicit.get(id(node))
        if pairs is None:
            pairs = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
            self._explicit[id(node)] = pairs
        return pairs

    def flatten_mapping(self, node: Any) -> None:
        self._explicit_pairs(node)
        super().flatten_mapping(node)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in self._explicit_pairs(node):
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    raise yaml.constructor.ConstructorError(
                        None, None, "a mapping key must be a plain value", key_node.start_mark
                    ) from None
                if key in seen:
                    line = seen[key].line + 1
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key '{key}' (first given on line {line})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def _refuse_binary(loader: Any, node: Any) -> Any:
    # pydantic would quietly decode bytes into a str field
    raise yaml.constructor.ConstructorError(
        None, None, "binary data (!!binary) has no place in a spec", node.start_mark
    )


_SpecLoader.add_constructor("tag:yaml.org,2002:binary", _refuse_binary)


class _SpecDumper(_BaseDumper):  # type: ignore[misc]
    """Block YAML; short lists of plain values inline (``[data, training]``), as in cursus."""


def _represent_list(dumper: Any, data: list[Any]) -> Any:
    inline = len(data) <= 8 and all(
        isinstance(v, (str, int, float, bool)) and len(str(v)) <= 40 for v in data
    )
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=inline)


_SpecDumper.add_representer(list, _represent_list)


def dump_yaml(document: Any) -> str:
    """Human-readable block YAML, keys in the order given."""
    return yaml.dump(
        document,
        Dumper=_SpecDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


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
    return spec_from_document(document, source=source, locate=_locator(node))


def parse_yaml(text: str | bytes, source: str) -> tuple[Any, Any]:
    """Decode, bound and safely parse one YAML document; returns (data, root node)."""
    text = _decode(text, source)
    if not text.strip() or all(
        not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()
    ):
        raise SpecError("the file is empty", source=source, hint="write a spec in it")
    _check_characters(text, source)
    try:
        _check_nesting(text, source)
        loader = _SpecLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise SpecError("the file is empty", source=source)
            _check_shape(node, source)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context or "invalid YAML"
        if "expected a single document" in (e.context or ""):
            problem = "more than one YAML document: a spec file holds one spec"
        raise SpecError(
            f"invalid YAML: {problem}",
            source=source,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as e:
        raise SpecError(f"invalid YAML: {e}", source=source) from None
    return data, node


# Characters YAML 1.1 accepts in a stream (its "printable" set); anything else is
# refused here with a position, because the parsers report it without one.
_NOT_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


def _check_characters(text: str, source: str) -> None:
    found = _NOT_PRINTABLE.search(text)
    if found is None:
        return
    offset = found.start()
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    char = found.group()
    what = (
        "binary data (a NUL byte)" if char == "\x00" else f"the control character U+{ord(char):04X}"
    )
    raise SpecError(
        f"the file holds {what}",
        source=source,
        line=line,
        column=column,
        hint="a spec file is UTF-8 text",
    )


_INDENT_RE = re.compile(r"^ +", re.MULTILINE)


def _nesting_bound(text: str) -> int:
    """An upper bound on the nesting depth, cheap enough to skip the event pass.

    A block collection nests inside another only on a more indented line or after
    ``-``/``?`` on the same line; a flow ``[`` opens at most two levels (a sequence
    and an implicit single-pair mapping), ``{`` one. Typical specs stay far below
    MAX_NESTING, so only unusual files pay for the exact check.
    """
    indent = max((len(m) for m in _INDENT_RE.findall(text)), default=0)
    return 2 + indent + text.count("-") + text.count("?") + 2 * text.count("[") + text.count("{")


def _check_nesting(text: str, source: str) -> None:
    """Refuse documents nested deeper than MAX_NESTING before anything composes them.

    Composers recurse once per level (libyaml's C composer overflows the stack and
    kills the process near 30,000 levels; the pure-Python one raises RecursionError),
    whereas the event parsers of both backends keep an explicit stack. So one pass over
    the events bounds the depth exactly, and reports the first node too deep, whatever
    quoting, comments or flow/block mixing the text uses.
    """
    if _nesting_bound(text) <= MAX_NESTING:
        return
    loader = _SpecLoader(text)
    depth = 0
    try:
        while True:
            event = loader.get_event()
            if event is None or isinstance(event, yaml.StreamEndEvent):
                return
            if isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.NodeEvent):
                if depth > MAX_NESTING:
                    mark = event.start_mark
                    raise SpecError(
                        f"the document nests more than {MAX_NESTING} levels deep",
                        source=source,
                        line=mark.line + 1 if mark else None,
                        column=mark.column + 1 if mark else None,
                    )
                if isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
    finally:
        loader.dispose()


def _decode(text: str | bytes, source: str) -> str:
    if isinstance(text, str):
        if len(text) > MAX_SPEC_BYTES:
            raise SpecError(f"the spec is larger than {MAX_SPEC_BYTES} bytes", source=source)
        if "\x00" in text:
            raise SpecError("the file holds binary data (a NUL byte)", source=source)
        return text.removeprefix("\ufeff")
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(
            f"the file is larger than {MAX_SPEC_BYTES // 1024} KiB",
            source=source,
            hint="a spec is a few KB; check that this is the right file",
        )
    if text.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpecError(
            "the file is UTF-16 or UTF-32 encoded", source=source, hint="save it as UTF-8"
        )
    if text.startswith(b"\xef\xbb\xbf"):
        text = text[3:]
    nul = text.find(b"\x00")
    if nul >= 0:
        line, column = _position(text, nul)
        raise SpecError(
            "the file holds binary data (a NUL byte)",
            source=source,
            line=line,
            column=column,
            hint="a spec file is UTF-8 text",
        )
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError as e:
        line, column = _position(text, e.start)
        raise SpecError(
            "the file is not valid UTF-8",
            source=source,
            line=line,
            column=column,
            hint="save it as UTF-8",
        ) from None


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column of a byte offset; the column counts characters, as editors do."""
    line = data.count(b"\n", 0, offset) + 1
    start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[start:offset].decode("utf-8", "replace")) + 1
    return line, column


def _check_shape(root: Any, source: str) -> None:
    """Reject over-deep documents and alias bombs using the composed (unexpanded) tree."""
    sizes: dict[int, int] = {}

    def size(node: Any, depth: int) -> int:
        if depth > MAX_NESTING:
            raise SpecError(
                f"the document nests more than {MAX_NESTING} levels deep",
                source=source,
                line=node.start_mark.line + 1,
                column=node.start_mark.column + 1,
            )
        known = sizes.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                total += size(key, depth + 1) + size(value, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item, depth + 1)
        if total > MAX_EXPANDED_NODES:
            raise SpecError(
                "the document expands to too many values (an alias bomb?)",
                source=source,
                line=node.start_mark.line + 1,
                column=node.start_mark.column + 1,
            )
        sizes[id(node)] = total
        return total

    size(root, 0)


Path_ = tuple[Any, ...]
Locator = Callable[[Path_, bool], tuple[int, int] | None]


def _locator(root: Any) -> Locator:
    """Map a path of keys/indices in the document to (line, column) of its key or value."""

    def locate(path: Path_, at_key: bool = False) -> tuple[int, int] | None:
        node, mark = root, root.start_mark
        for i, part in enumerate(path):
            last = i == len(path) - 1
            found = None
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in reversed(node.value):  # last wins (merges)
                    if isinstance(key_node, yaml.ScalarNode) and _same_key(key_node, part):
                        found = value_node
                        mark = key_node.start_mark if (last and at_key) else value_node.start_mark
                        break
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(part, int)
                and 0 <= part < len(node.value)
            ):
                found = node.value[part]
                mark = found.start_mark
            if found is None:
                break
            node = found
        return mark.line + 1, mark.column + 1

    return locate


def _same_key(key_node: Any, part: Any) -> bool:
    """Whether a composed key node is the document key ``part`` (``on`` is True, ``~`` None)."""
    if isinstance(part, str) and key_node.tag == "tag:yaml.org,2002:str":
        return bool(key_node.value == part)
    try:
        value = yaml.constructor.SafeConstructor().construct_object(key_node, deep=True)
    except yaml.YAMLError:
        return False
    return type(value) is type(part) and bool(value == part)


def _no_location(path: Path_, at_key: bool = False) -> tuple[int, int] | None:
    return None


# ---------------------------------------------------------------------------------
# document -> StepSpecification
# ---------------------------------------------------------------------------------
_DEPENDENCY_KEYS = {
    "logical_name": "logical_name",
    "type": "dependency_type",
    "dependency_type": "dependency_type",
    "required": "required",
    "compatible_sources": "compatible_sources",
    "semantic_keywords": "semantic_keywords",
    "data_type": "data_type",
    "description": "description",
}
_OUTPUT_KEYS = {
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
_TOP_KEYS = ("spec", "dependencies", "outputs", *_HEADER_KEYS)


def spec_from_document(
    document: Any, *, source: str = "<spec>", locate: Locator | None = None
) -> StepSpecification:
    """Build a StepSpecification from a parsed document in either accepted layout."""
    return _DocumentReader(source, locate or _no_location).read(document)


class _DocumentReader:
    def __init__(self, source: str, locate: Locator) -> None:
        self.source = source
        self.locate = locate

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
                f"a spec is a mapping with step_type and node_type, not {_kind(document)}", ()
            )
        for key in document:
            if not isinstance(key, str):
                raise self.fail(
                    f"a section name must be text, not {_kind(key)}",
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
                raise self.fail(f"'spec' must be a mapping, not {_kind(section)}", ("spec",))
            for key in section:
                if key not in _SPEC_SECTION_KEYS:
                    raise self.unknown_key(key, ("spec", key), _SPEC_SECTION_KEYS)
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
                    raise self.fail(f"'{key}' differs at top level and under 'spec'", (key,))
                header[key], header_paths[key] = value, (key,)
            elif key not in _TOP_KEYS:
                close = difflib.get_close_matches(key, _TOP_KEYS, n=1, cutoff=0.85)
                if close:
                    raise self.unknown_key(key, (key,), _TOP_KEYS)
                metadata[key] = value
        for key in ("step_type", "node_type"):
            if key not in header:
                raise self.fail(f"missing required field '{key}'", (), hint=f"add '{key}:'")
        dependencies = self.entries(
            body.get("dependencies"),
            (*body_path, "dependencies"),
            "dependency",
            DependencySpec,
            _DEPENDENCY_KEYS,
        )
        outputs = self.entries(
            body.get("outputs"), (*body_path, "outputs"), "output", OutputSpec, _OUTPUT_KEYS
        )
        values = {**header, "dependencies": dependencies, "outputs": outputs, "metadata": metadata}
        try:
            return StepSpecification.model_validate(values)
        except (ValidationError, SpecError) as e:
            err = _validation_detail(e)
            field = str(err["loc"][0]) if err["loc"] else "node_type"
            raise self.fail(
                _message(err), header_paths.get(field, header_paths["node_type"])
            ) from None

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
                f"not {_kind(value)}",
                path,
            )
        result: dict[str, Any] = {}
        keyed = isinstance(value, Mapping)
        for position, item, key_name in items:
            item_path = (*path, position)
            if keyed and not isinstance(position, str):  # `null:` and `no:` keys included
                raise self.fail(
                    f"a logical name must be text, not {_kind(position)} ({position!r})",
                    item_path,
                    at_key=True,
                    hint="quote it in the YAML",
                )
            if not isinstance(item, Mapping):
                raise self.fail(f"a {kind} must be a mapping, not {_kind(item)}", item_path)
            fields: dict[str, Any] = {}
            for key, field_value in item.items():
                target = keys.get(key) if isinstance(key, str) else None
                if target is None:
                    raise self.unknown_key(key, (*item_path, key), keys)
                if target in fields:
                    raise self.fail(
                        f"'{key}' repeats another key for '{target}'",
                        (*item_path, key),
                        at_key=True,
                    )
                fields[target] = field_value
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
                        f"logical name {key_name!r} {_message(err)}", item_path, at_key=True
                    ) from None
                if not file_key and loc:
                    raise self.fail(
                        f"missing required field '{_alias_for(str(loc[0]))}'",
                        item_path,
                        hint=f"add '{_alias_for(str(loc[0]))}:'",
                    ) from None
                raise self.fail(_message(err), field_path) from None
            name = built.logical_name  # type: ignore[attr-defined]
            if name in result:
                raise self.fail(f"duplicate {kind} logical_name '{name}'", item_path)
            result[name] = built
        return result


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


def _message(err: Mapping[str, Any]) -> str:
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


def _kind(value: Any) -> str:
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
