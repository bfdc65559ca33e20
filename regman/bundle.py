"""Bundles: every spec of a context in one file, a multi-document YAML stream.

A YAML stream rather than an archive: a bundle stays text a person can read, review in a
pull request and diff in git, in the very layout of the spec files. The first document is
a header (``regman_bundle: 1``, the context and revision it came from); each later one is a
spec document with its step name in one reserved key, ``regman_step``, first. Documents are
split on ``---`` lines (a marker YAML never allows inside content) and each is parsed by
the same bounded, safe loader as a spec file, with its line numbers in the whole file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from regman.errors import SpecError
from regman.names import validate_name

if TYPE_CHECKING:
    from regman.spec import StepSpecification

BUNDLE_VERSION = 1
STEP_KEY = "regman_step"
MAX_BUNDLE_BYTES = 256 * 1024 * 1024
_MARKER = re.compile(r"^---[ \t]*(?:#.*)?$", re.M)


def dump_bundle(context: str, revision: int, specs: Mapping[str, StepSpecification]) -> str:
    """The bundle text of ``specs`` (step -> spec), steps in name order."""
    from regman.yamlsafe import dump_yaml

    parts = [dump_yaml({"regman_bundle": BUNDLE_VERSION, "context": context, "revision": revision})]
    for step in sorted(specs):
        document = specs[step].to_document()
        if STEP_KEY in document:
            raise SpecError(f"a spec may not use the reserved key '{STEP_KEY}'", source=step)
        parts.append(dump_yaml({STEP_KEY: step, **document}))
    return "".join(f"---\n{part}" for part in parts)


def looks_like_bundle(head: bytes) -> bool:
    """Whether a file starting with ``head`` is a bundle (checked before reading it whole)."""
    text = head.decode("utf-8", "replace").lstrip("\ufeff")
    return bool(re.match(r"(?:\s*#[^\n]*\n)*\s*(?:---[ \t]*\n)?regman_bundle\s*:", text))


def load_bundle(text: str | bytes, source: str) -> dict[str, StepSpecification]:
    """The specs of a bundle by step name; every problem raised with file:line:column."""
    from regman.specfile import spec_from_document
    from regman.yamlsafe import locator, parse_yaml

    if isinstance(text, bytes):
        if len(text) > MAX_BUNDLE_BYTES:
            raise SpecError(f"the bundle is over {MAX_BUNDLE_BYTES} bytes", source=source)
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise SpecError("the bundle is not UTF-8 text", source=source) from None
    specs: dict[str, StepSpecification] = {}
    documents = _documents(text)
    if not documents:
        raise SpecError("the bundle is empty", source=source)
    first_line, header_text = documents[0]
    header, _ = parse_yaml("\n" * first_line + header_text, source)
    if not isinstance(header, dict) or header.get("regman_bundle") != BUNDLE_VERSION:
        raise SpecError(
            f"not a regman bundle (version {BUNDLE_VERSION}): its first document lacks "
            f"'regman_bundle: {BUNDLE_VERSION}'",
            source=source,
            line=first_line + 1,
        )
    for line, chunk in documents[1:]:
        document, node = parse_yaml("\n" * line + chunk, source)
        step = document.pop(STEP_KEY, None) if isinstance(document, dict) else None
        if not isinstance(step, str):
            raise SpecError(
                f"a bundle document lacks its step name ('{STEP_KEY}: NAME')",
                source=source,
                line=line + 1,
            )
        try:
            validate_name(step, "step")
        except ValueError as e:
            raise SpecError(str(e), source=source, line=line + 1) from None
        if step in specs:
            raise SpecError(f"step '{step}' appears twice", source=source, line=line + 1)
        specs[step] = spec_from_document(document, source=source, locate=locator(node))
    return specs


def _documents(text: str) -> list[tuple[int, str]]:
    """``(line offset, text)`` of each non-empty document of the stream."""
    found: list[tuple[int, str]] = []
    starts = [0, *(m.end() + 1 for m in _MARKER.finditer(text))]
    ends = [m.start() for m in _MARKER.finditer(text)] + [len(text)]
    for start, end in zip(starts, ends, strict=True):
        chunk = text[start:end] if start <= end else ""
        if chunk.strip() and not all(
            not ln.strip() or ln.lstrip().startswith("#") for ln in chunk.splitlines()
        ):
            found.append((text.count("\n", 0, start), chunk))
    return found
