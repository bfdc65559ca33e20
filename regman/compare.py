"""Comparing two contexts: which steps exist where, and how their specs differ.

Pure functions over registries, used by ``regman diff`` and by pipeline code that
checks, say, that production differs from dev only where it should.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from regman.errors import NotFoundError
from regman.registry import SpecificationRegistry


@dataclass(frozen=True)
class FieldChange:
    """One leaf that differs: ``path`` is dotted (``spec.dependencies.x.required``)."""

    path: str
    left: Any
    right: Any

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "left": self.left, "right": self.right}


_MISSING = "<missing>"


@dataclass
class ContextDiff:
    left: str
    right: str
    only_left: list[str] = field(default_factory=list)
    only_right: list[str] = field(default_factory=list)
    same: list[str] = field(default_factory=list)
    changed: dict[str, list[FieldChange]] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return not (self.only_left or self.only_right or self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "left": self.left,
            "right": self.right,
            "only_left": self.only_left,
            "only_right": self.only_right,
            "same": self.same,
            "changed": {
                step: [c.to_dict() for c in changes] for step, changes in self.changed.items()
            },
        }


def diff_documents(left: Any, right: Any, prefix: str = "") -> Iterator[FieldChange]:
    """Leaf-level differences between two spec documents (mappings compared by key)."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in [*left, *(k for k in right if k not in left)]:
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in right:
                yield FieldChange(path, left[key], _MISSING)
            elif key not in left:
                yield FieldChange(path, _MISSING, right[key])
            else:
                yield from diff_documents(left[key], right[key], path)
    elif left != right:
        yield FieldChange(prefix or "<document>", left, right)


def diff_contexts(
    left: SpecificationRegistry, right: SpecificationRegistry, steps: list[str] | None = None
) -> ContextDiff:
    """Compare the specs of two contexts (optionally only ``steps``)."""
    a, b = left.require_all_readable(), right.require_all_readable()
    for step in steps or ():
        if step not in a and step not in b:
            raise NotFoundError(
                f"step '{step}' is in neither context '{left.context_name}' nor "
                f"'{right.context_name}'"
            )
    if steps:
        a = {k: v for k, v in a.items() if k in steps}
        b = {k: v for k, v in b.items() if k in steps}
    result = ContextDiff(left.context_name, right.context_name)
    result.only_left = sorted(set(a) - set(b))
    result.only_right = sorted(set(b) - set(a))
    for step in sorted(set(a) & set(b)):
        changes = list(diff_documents(a[step].to_document(), b[step].to_document()))
        if changes:
            result.changed[step] = changes
        else:
            result.same.append(step)
    return result
