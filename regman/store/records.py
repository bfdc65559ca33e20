"""What a store keeps about a context: its head and its revisions, as checked JSON.

Nothing read from a store file is trusted: every name is validated like user input,
every field's type is checked, and a file that fails is a ``DamagedStoreError``
naming it, never a crash (deep nesting, huge integers and wrong types included).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from regman.errors import DamagedStoreError, StoreVersionError
from regman.names import is_valid_name

FORMAT_VERSION = 2
SNAPSHOT_EVERY = 100  # a revision record whose number is a multiple carries all steps
CHANGE_KINDS = ("created", "updated", "removed")
_HASH_CHARS = frozenset("0123456789abcdef")
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
    "revision",
    "created_at",
    "updated_at",
    "compatibility",
    "mode",
)


@dataclass(frozen=True)
class Entry:
    """One stored version of a step: its spec object and what it adds to the statistics."""

    spec: str  # the hash that names the spec object
    step_type: str
    node_type: str
    dependencies: int
    required_dependencies: int
    outputs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "step_type": self.step_type,
            "node_type": self.node_type,
            "dependencies": self.dependencies,
            "required_dependencies": self.required_dependencies,
            "outputs": self.outputs,
        }

    @classmethod
    def from_dict(cls, doc: Any, where: str) -> Entry:
        _expect(isinstance(doc, dict), where, "a step entry is not an object")
        spec = doc.get("spec")
        _expect(
            isinstance(spec, str) and 16 <= len(spec) <= 64 and set(spec) <= _HASH_CHARS,
            where,
            "a spec hash is malformed",
        )
        for key in ("step_type", "node_type"):
            _expect(isinstance(doc.get(key), str) and len(doc[key]) < 4096, where, f"bad {key}")
        counts = [doc.get(k) for k in ("dependencies", "required_dependencies", "outputs")]
        _expect(all(type(c) is int and 0 <= c < 10**9 for c in counts), where, "bad counts")
        return cls(spec, doc["step_type"], doc["node_type"], *counts)


@dataclass(frozen=True)
class Change:
    """What one revision did to one step."""

    kind: str  # created / updated / removed
    entry: Entry | None  # the new version (None when removed)
    previous: Entry | None  # the version before (None when created)

    def to_dict(self) -> dict[str, Any]:
        return {
            "change": self.kind,
            "entry": self.entry.to_dict() if self.entry else None,
            "previous": self.previous.to_dict() if self.previous else None,
        }

    @classmethod
    def from_dict(cls, doc: Any, where: str) -> Change:
        _expect(isinstance(doc, dict) and doc.get("change") in CHANGE_KINDS, where, "bad change")
        entry = None if doc.get("entry") is None else Entry.from_dict(doc["entry"], where)
        previous = None if doc.get("previous") is None else Entry.from_dict(doc["previous"], where)
        _expect((entry is None) == (doc["change"] == "removed"), where, "bad change entry")
        _expect((previous is None) == (doc["change"] == "created"), where, "bad change previous")
        return cls(doc["change"], entry, previous)


COMPATIBILITY_MODES = ("NONE", "BACKWARD", "FORWARD", "FULL")
ACCESS_MODES = ("READWRITE", "READONLY")
DEFAULT_SETTINGS = {"compatibility": "NONE", "mode": "READWRITE"}


def _settings(doc: Any, where: str) -> dict[str, str]:
    if doc is None:
        return dict(DEFAULT_SETTINGS)
    _expect(isinstance(doc, dict) and set(doc) <= set(DEFAULT_SETTINGS), where, "bad settings")
    settings = {**DEFAULT_SETTINGS, **doc}
    _expect(settings["compatibility"] in COMPATIBILITY_MODES, where, "bad compatibility mode")
    _expect(settings["mode"] in ACCESS_MODES, where, "bad access mode")
    return settings


@dataclass
class Record:
    """One revision: who made it, when, with which command, and what it changed."""

    revision: int
    created_at: str
    author: str
    command: str
    message: str | None
    changes: dict[str, Change]
    source: str | None = None  # where the content came from (rollback: "ctx@n")
    purged: list[str] = field(default_factory=list)  # steps whose stored versions were deleted
    snapshot: dict[str, Entry] | None = None  # every step, at multiples of SNAPSHOT_EVERY
    overridden: list[str] = field(default_factory=list)  # compatibility findings --force overrode

    def summary(self) -> dict[str, Any]:
        """The public form (``history --json``)."""
        return {
            "revision": self.revision,
            "created_at": self.created_at,
            "author": self.author,
            "command": self.command,
            "message": self.message,
            "changes": {step: c.kind for step, c in sorted(self.changes.items())},
            "source": self.source,
            "purged": sorted(self.purged),
            "forced": bool(self.overridden),
            "overridden": list(self.overridden),
        }

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "revision": self.revision,
            "created_at": self.created_at,
            "author": self.author,
            "command": self.command,
            "message": self.message,
            "source": self.source,
            "purged": self.purged,
            "changes": {s: c.to_dict() for s, c in sorted(self.changes.items())},
        }
        if self.overridden:
            doc["overridden"] = self.overridden
        if self.snapshot is not None:
            doc["snapshot"] = {s: e.to_dict() for s, e in sorted(self.snapshot.items())}
        return doc

    def to_json(self) -> bytes:
        return _dump({"format_version": FORMAT_VERSION, **self.to_dict()})

    @classmethod
    def from_dict(cls, doc: Any, where: str) -> Record:
        _expect(isinstance(doc, dict), where, "a revision is not an object")
        rev = doc.get("revision")
        _expect(type(rev) is int and 1 <= rev < 10**12, where, "bad revision number")
        for key in ("created_at", "author", "command"):
            _expect(isinstance(doc.get(key), str) and len(doc[key]) < 4096, where, f"bad {key}")
        for key in ("message", "source"):
            value = doc.get(key)
            _expect(value is None or (isinstance(value, str) and len(value) < 65536), where, key)
        purged = doc.get("purged", [])
        _expect(isinstance(purged, list), where, "bad purged list")
        changes = doc.get("changes")
        _expect(isinstance(changes, dict), where, "bad changes")
        snapshot = doc.get("snapshot")
        overridden = doc.get("overridden", [])
        _expect(
            isinstance(overridden, list)
            and all(isinstance(o, str) and len(o) < 4096 for o in overridden),
            where,
            "bad overridden findings",
        )
        return cls(
            revision=rev,
            created_at=doc["created_at"],
            author=doc["author"],
            command=doc["command"],
            message=doc.get("message"),
            source=doc.get("source"),
            purged=[_name(p, where) for p in purged],
            changes={_name(s, where): Change.from_dict(c, where) for s, c in changes.items()},
            snapshot=None if snapshot is None else _entries(snapshot, where),
            overridden=list(overridden),
        )

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Record:
        doc = _load(data, where)
        record = cls.from_dict(doc, where)
        return record


@dataclass
class Removed:
    """A step removed and not registered since: what ``restore CONTEXT STEP`` brings back."""

    revision: int  # the revision that removed it
    removed_at: str
    entry: Entry

    def to_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "removed_at": self.removed_at, **self.entry.to_dict()}

    @classmethod
    def from_dict(cls, doc: Any, where: str) -> Removed:
        _expect(isinstance(doc, dict), where, "a removed entry is not an object")
        rev = doc.get("revision")
        _expect(type(rev) is int and rev >= 1, where, "bad removal revision")
        _expect(isinstance(doc.get("removed_at"), str), where, "bad removal time")
        return cls(rev, doc["removed_at"], Entry.from_dict(doc, where))


@dataclass
class Head:
    """A context now: its revision, its steps, and the record of its latest revision.

    The head is the only mutable thing a store keeps per context; it moves by
    compare-and-swap, so the latest record travels inside it and is written as an
    immutable file by the next writer (or later by anyone): a kill between the two
    writes loses nothing.
    """

    context: str
    revision: int
    created_at: str
    cleared: bool  # cleared contexts are not listed; their history stays
    steps: dict[str, Entry]
    removed: dict[str, Removed]
    last: Record
    settings: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SETTINGS))

    @property
    def updated_at(self) -> str:
        return self.last.created_at

    def stats(self) -> dict[str, Any]:
        """The per-context statistics (the seed's keys first)."""
        nodes: dict[str, int] = {}
        for e in self.steps.values():
            nodes[e.node_type] = nodes.get(e.node_type, 0) + 1
        return {
            "step_count": len(self.steps),
            "step_type_count": len({e.step_type for e in self.steps.values()}),
            "source_count": nodes.get("source", 0),
            "internal_count": nodes.get("internal", 0),
            "sink_count": nodes.get("sink", 0),
            "singular_count": nodes.get("singular", 0),
            "dependency_count": sum(e.dependencies for e in self.steps.values()),
            "required_dependency_count": sum(e.required_dependencies for e in self.steps.values()),
            "output_count": sum(e.outputs for e in self.steps.values()),
            "revision": self.revision,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "compatibility": self.settings["compatibility"],
            "mode": self.settings["mode"],
        }

    def step_types(self) -> list[str]:
        return sorted({e.step_type for e in self.steps.values()})

    def to_json(self) -> bytes:
        return _dump(
            {
                "format_version": FORMAT_VERSION,
                "context": self.context,
                "revision": self.revision,
                "created_at": self.created_at,
                "cleared": self.cleared,
                "steps": {s: e.to_dict() for s, e in sorted(self.steps.items())},
                "removed": {s: r.to_dict() for s, r in sorted(self.removed.items())},
                "last": self.last.to_dict(),
                **({} if self.settings == DEFAULT_SETTINGS else {"settings": self.settings}),
            }
        )

    @classmethod
    def from_json(cls, data: bytes, where: str, context: str) -> Head:
        doc = _load(data, where)
        _expect(doc.get("context") == context, where, "it names another context")
        rev = doc.get("revision")
        _expect(type(rev) is int and rev >= 1, where, "bad revision number")
        assert isinstance(rev, int)
        _expect(isinstance(doc.get("created_at"), str), where, "bad created_at")
        _expect(type(doc.get("cleared")) is bool, where, "bad cleared flag")
        removed = doc.get("removed")
        _expect(isinstance(removed, dict), where, "bad removed steps")
        assert isinstance(removed, dict)
        last = Record.from_dict(doc.get("last"), where)
        _expect(last.revision == rev, where, "its last revision is not its revision")
        return cls(
            context=context,
            revision=rev,
            created_at=doc["created_at"],
            cleared=doc["cleared"],
            steps=_entries(doc.get("steps"), where),
            removed={_name(s, where): Removed.from_dict(r, where) for s, r in removed.items()},
            last=last,
            settings=_settings(doc.get("settings"), where),
        )


def _entries(doc: Any, where: str) -> dict[str, Entry]:
    _expect(isinstance(doc, dict), where, "bad step table")
    return {_name(step, where): Entry.from_dict(e, where) for step, e in doc.items()}


def _name(value: Any, where: str) -> str:
    _expect(is_valid_name(value), where, f"bad name {value!r:.80}")
    return str(value)


def _expect(condition: bool, where: str, problem: str) -> None:
    if not condition:
        raise DamagedStoreError(f"{where} is damaged: {problem}", hint="run 'regman doctor'")


def _dump(doc: dict[str, Any]) -> bytes:
    # Compact: without ``indent`` json uses its C encoder, ~10x faster on a head of
    # thousands of steps, which every write rewrites.
    return (json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _load(data: bytes, where: str) -> dict[str, Any]:
    """Parse a store file's JSON; damage (any kind, any depth) is a DamagedStoreError."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError, MemoryError) as e:
        raise DamagedStoreError(
            f"{where} is damaged: not valid JSON ({type(e).__name__})",
            hint="run 'regman doctor'",
        ) from None
    _expect(isinstance(doc, dict), where, "not a JSON object")
    assert isinstance(doc, dict)
    version = doc.get("format_version")
    if type(version) is int and version > FORMAT_VERSION:
        raise StoreVersionError(
            f"{where} was written by a newer regman (format {version}; this one reads "
            f"format {FORMAT_VERSION})",
            hint="upgrade regman",
        )
    _expect(version == FORMAT_VERSION, where, f"unknown format version {version!r:.40}")
    return doc


def load_json_object(data: bytes, where: str) -> dict[str, Any]:
    """Parse a small JSON object (a marker, a cache) of any format: damage is an error."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError, MemoryError):
        raise DamagedStoreError(f"{where} is damaged", hint="run 'regman doctor'") from None
    _expect(isinstance(doc, dict), where, "not a JSON object")
    assert isinstance(doc, dict)
    return doc
