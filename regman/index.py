"""A context's index: the counters ``stats`` reads instead of parsing every spec.

The index is derived data (spec files are the truth): writers update it by delta
under the context's lock, and ``doctor`` can always rebuild it from the specs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regman.errors import StoreVersionError

if TYPE_CHECKING:
    from regman.spec import StepSpecification

FORMAT_VERSION = 1


def iso_utc(seconds: float, *, milliseconds: bool = True) -> str:
    """``2026-11-28T01:23:17.989Z`` (time.strftime: datetime costs start-up time)."""
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{int(seconds * 1000) % 1000:03d}Z" if milliseconds else f"{text}Z"


def now_iso() -> str:
    return iso_utc(time.time())


@dataclass(frozen=True)
class StepSummary:
    """What one spec contributes to its context's statistics."""

    step_type: str
    node_type: str
    dependencies: int
    required_dependencies: int
    outputs: int

    @classmethod
    def of(cls, spec: StepSpecification) -> StepSummary:
        return cls(
            step_type=spec.step_type,
            node_type=spec.node_type.value,
            dependencies=len(spec.dependencies),
            required_dependencies=sum(1 for d in spec.dependencies.values() if d.required),
            outputs=len(spec.outputs),
        )


STAT_KEYS = (
    "step_count",
    "step_type_count",
    "source_count",
    "internal_count",
    "sink_count",
    "singular_count",
    "dependency_count",
    "required_dependency_count",
    "output_count",
    "created_at",
    "updated_at",
)


@dataclass
class ContextIndex:
    """Aggregate statistics of one context, updated by delta on every write.

    It holds counters, not a list of steps, so rewriting it costs the same whether
    the context has ten steps or ten thousand: register stays O(1).
    """

    name: str
    created_at: str
    updated_at: str
    step_count: int = 0
    step_types: dict[str, int] = field(default_factory=dict)
    node_types: dict[str, int] = field(default_factory=dict)
    dependency_count: int = 0
    required_dependency_count: int = 0
    output_count: int = 0

    def apply(self, summary: StepSummary, sign: int = 1) -> None:
        """Add (sign=1) or subtract (sign=-1) one step's contribution."""
        self.step_count += sign
        for counter, key in (
            (self.step_types, summary.step_type),
            (self.node_types, summary.node_type),
        ):
            counter[key] = counter.get(key, 0) + sign
            if counter[key] <= 0:
                del counter[key]
        self.dependency_count += sign * summary.dependencies
        self.required_dependency_count += sign * summary.required_dependencies
        self.output_count += sign * summary.outputs

    def counters(self) -> dict[str, Any]:
        return {
            k: v for k, v in vars(self).items() if k not in ("name", "created_at", "updated_at")
        }

    def stats(self) -> dict[str, Any]:
        """The per-context statistics (the seed's keys first; the order of STAT_KEYS)."""
        nodes = self.node_types
        return {
            "step_count": self.step_count,
            "step_type_count": len(self.step_types),
            "source_count": nodes.get("source", 0),
            "internal_count": nodes.get("internal", 0),
            "sink_count": nodes.get("sink", 0),
            "singular_count": nodes.get("singular", 0),
            "dependency_count": self.dependency_count,
            "required_dependency_count": self.required_dependency_count,
            "output_count": self.output_count,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def to_json(self) -> bytes:
        doc = {"format_version": FORMAT_VERSION, **vars(self)}
        return (json.dumps(doc, indent=1, sort_keys=False) + "\n").encode()

    def _check_types(self) -> None:
        """Well-formed JSON can still hold the wrong types (damage, or a hand edit)."""

        def count(value: object) -> bool:
            return type(value) is int and value >= 0

        counters = (
            self.step_count,
            self.dependency_count,
            self.required_dependency_count,
            self.output_count,
        )
        if not (
            all(count(v) for v in counters)
            and all(
                isinstance(table, dict)
                and all(isinstance(k, str) and count(v) for k, v in table.items())
                for table in (self.step_types, self.node_types)
            )
            and isinstance(self.name, str)
            and isinstance(self.created_at, str)
            and isinstance(self.updated_at, str)
        ):
            raise TypeError("an index field has the wrong type")

    @classmethod
    def from_json(cls, data: bytes, where: str) -> ContextIndex:
        try:
            doc = json.loads(data)
            version = doc.pop("format_version", 1)
            if not isinstance(version, int) or version > FORMAT_VERSION:
                raise StoreVersionError(
                    f"{where} was written by a newer regman (format {version}, this one reads "
                    f"{FORMAT_VERSION})",
                    hint="upgrade regman",
                )
            index = cls(**doc)
            index._check_types()
            return index
        except StoreVersionError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise DamagedIndexError(where) from e


class DamagedIndexError(Exception):
    """An index file that does not parse; writers rebuild it from the spec files."""
