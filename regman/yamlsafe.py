"""Safe, bounded YAML for spec files: the only way regman parses YAML.

Safe loader only (no object construction), and guards before and after parsing:
a size cap, encoding checks, a nesting bound (libyaml's composer recurses in C and
crashes the process on very deep input), an alias-expansion cap ("billion
laughs"), and duplicate keys rejected (PyYAML silently keeps the last). Every
problem is a SpecError with file, line and column.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml

from regman.errors import SpecError

MAX_SPEC_BYTES = 1024 * 1024  # a spec is a few KB; bigger is a mistake or an attack
MAX_NESTING = 64  # real specs nest < 10 deep; deeper input is rejected before composing
MAX_EXPANDED_NODES = 100_000  # alias ("billion laughs") bombs expand past this

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


def _refuse_set(loader: Any, node: Any) -> Any:
    # a set has no order, so the spec would be written differently on each run
    raise yaml.constructor.ConstructorError(
        None, None, "a set (!!set) has no place in a spec; use a list", node.start_mark
    )


MAX_NUMBER_CHARS = 100  # no spec needs a longer number; Python refuses > 4300 digits


def _bounded_number(loader: Any, node: Any) -> Any:
    # A scalar of thousands of digits (or sexagesimal groups, 1:59:59:...) would make
    # Python raise ValueError or OverflowError (or build a huge number), not a SpecError.
    if len(str(node.value)) > MAX_NUMBER_CHARS:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"a number of {len(str(node.value))} characters (at most {MAX_NUMBER_CHARS})",
            node.start_mark,
        )
    if node.tag.endswith(":int"):
        return yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)
    return yaml.constructor.SafeConstructor.construct_yaml_float(loader, node)


_SpecLoader.add_constructor("tag:yaml.org,2002:int", _bounded_number)
_SpecLoader.add_constructor("tag:yaml.org,2002:float", _bounded_number)
_SpecLoader.add_constructor("tag:yaml.org,2002:binary", _refuse_binary)
_SpecLoader.add_constructor("tag:yaml.org,2002:set", _refuse_set)


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


def locator(root: Any) -> Locator:
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


def no_location(path: Path_, at_key: bool = False) -> tuple[int, int] | None:
    return None
