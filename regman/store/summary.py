"""Every context's statistics and step types in one object (``cache/summary.json``).

Listing a store, or counting its step types, then reads one object instead of every
context's head. Each entry carries the head token it was computed from, and an entry
whose token is not the head's current one is never used (the head is read instead):
the summary may be stale, damaged or missing without giving a wrong number.

It is kept current in one of two ways, chosen by the backend (``writers_keep_summary``):
on a folder, where checking a head costs a stat, readers rewrite it when many heads
changed; on S3, where reading a head costs a request, each writer updates its context's
entry under compare-and-swap after its commit, so a new machine lists 1,000 contexts
in a fixed number of requests.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regman.errors import StoreError
from regman.store.records import (
    ACCESS_MODES,
    COMPATIBILITY_MODES,
    FORMAT_VERSION,
    STAT_KEYS,
    load_json_object,
)

if TYPE_CHECKING:
    from regman.store.records import Head

SUMMARY_NAME = "summary.json"  # stats.json held the unversioned first form
SUMMARY_VERSION = 2  # entries as value lists in STAT_KEYS order, step types interned


@dataclass(frozen=True)
class SummaryEntry:
    """One context as a listing needs it."""

    token: Any  # the head token as JSON gives it back (a tuple becomes a list)
    cleared: bool
    stats: dict[str, Any]
    step_types: tuple[str, ...]

    @property
    def revision(self) -> int:
        return int(self.stats["revision"])


def plain_token(token: Hashable) -> Any:
    """A head token as it survives a JSON round trip, so cached and fresh ones compare."""
    return list(token) if isinstance(token, tuple) else token


def entry_of(token: Hashable, head: Head) -> SummaryEntry:
    return SummaryEntry(plain_token(token), head.cleared, head.stats(), tuple(head.step_types()))


def _empty() -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "summary_version": SUMMARY_VERSION,
        "keys": list(STAT_KEYS),
        "step_types": [],
        "contexts": {},
    }


def dump(entries: Mapping[str, SummaryEntry]) -> bytes:
    doc = _empty()
    doc["step_types"] = types = sorted({t for e in entries.values() for t in e.step_types})
    index = {t: i for i, t in enumerate(types)}
    doc["contexts"] = {name: _encode(e, index) for name, e in sorted(entries.items())}
    return json.dumps(doc, separators=(",", ":")).encode()


def _encode(e: SummaryEntry, index: Mapping[str, int]) -> list[Any]:
    return [e.token, e.cleared, [e.stats[k] for k in STAT_KEYS], [index[t] for t in e.step_types]]


def with_entry(raw: bytes | None, context: str, entry: SummaryEntry | None) -> bytes | None:
    """``raw`` with ``context``'s entry replaced (``entry`` None: taken out), or None when
    there is nothing to do (it already describes that revision or a later one).

    Only that entry is decoded, so a writer pays a JSON round trip, not the checks of a
    thousand other entries (readers check each entry they use). Step types are appended
    to the table, never renumbered; a reader's rewrite drops the ones no entry uses.
    """
    doc = _document(raw)
    types: list[str] = doc["step_types"]
    contexts: dict[str, Any] = doc["contexts"]
    if entry is None:
        if contexts.pop(context, None) is None:
            return None
    elif supersedes(_entry(contexts.get(context), types), entry):
        return None
    else:
        index = {t: i for i, t in enumerate(types)}
        for t in entry.step_types:
            if t not in index:
                index[t] = len(types)
                types.append(t)
        contexts[context] = _encode(entry, index)
    return json.dumps(doc, separators=(",", ":")).encode()


def _document(raw: bytes | None) -> dict[str, Any]:
    """The summary as JSON, if its header and tables are sound; else an empty one."""
    if raw is None:
        return _empty()
    try:
        doc = load_json_object(raw, SUMMARY_NAME)
    except (StoreError, ValueError):
        return _empty()
    sound = (
        doc.get("format_version") == FORMAT_VERSION
        and doc.get("summary_version") == SUMMARY_VERSION
        and doc.get("keys") == list(STAT_KEYS)
        and isinstance(doc.get("step_types"), list)
        and all(isinstance(t, str) for t in doc["step_types"])
        and isinstance(doc.get("contexts"), dict)
    )
    return doc if sound else _empty()


def parse(raw: bytes | None) -> dict[str, SummaryEntry]:
    """The sound entries of a summary; nothing from one of another version or damaged."""
    doc = _document(raw)
    types = doc["step_types"]
    found = {}
    for name, e in doc["contexts"].items():
        entry = _entry(e, types)
        if entry is not None:
            found[name] = entry
    return found


def _entry(e: Any, types: list[str]) -> SummaryEntry | None:
    if type(e) is not list or len(e) != 4:
        return None
    token, cleared, values, indices = e
    if type(cleared) is not bool or not sound_values(values) or type(indices) is not list:
        return None
    if not all(type(i) is int and 0 <= i < len(types) for i in indices):
        return None
    stats = dict(zip(STAT_KEYS, values, strict=True))
    return SummaryEntry(token, cleared, stats, tuple(types[i] for i in indices))


# What each statistic may be, by position in STAT_KEYS: a count, a time, one of some words.
_CHOICES: dict[str, tuple[str, ...]] = {
    "compatibility": COMPATIBILITY_MODES,
    "mode": ACCESS_MODES,
}
_SHAPES = tuple(_CHOICES.get(k, "time" if k.endswith("_at") else "count") for k in STAT_KEYS)


def sound_values(values: Any) -> bool:
    """Statistics (in STAT_KEYS order) of the shape ``Head.stats`` gives: a summary is
    never trusted, and this runs for every entry of every listing."""
    if type(values) is not list or len(values) != len(_SHAPES):
        return False
    for v, shape in zip(values, _SHAPES, strict=True):
        if shape == "count":
            if type(v) is not int or v < 0:
                return False
        elif shape == "time":
            if type(v) is not str:
                return False
        elif type(v) is not str or v not in shape:
            return False
    return True


def supersedes(current: SummaryEntry | None, entry: SummaryEntry) -> bool:
    """Whether ``current`` already describes ``entry``'s context at or after its revision
    (a writer that lost the summary's race to a later writer of its context stops)."""
    return (
        current is not None
        and current.stats["created_at"] == entry.stats["created_at"]
        and current.revision >= entry.revision
    )
