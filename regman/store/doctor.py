"""Check a store for damage through its backend interface, and repair what can be.

What is checked, per context: the head parses and names valid steps; every revision
record up to the head exists and parses; every current and restorable spec object
exists, matches its hash and loads. What ``--repair`` fixes: a missing record of the
head's own revision (a kill after the head moved) is written from the head; objects
no revision refers to (a writer killed before its head moved) and temporary files
are deleted; a damaged head is rebuilt from the newest intact revision record (the
report says which revision it went back to). A spec whose bytes are damaged is
reported, never rewritten: ``rollback`` or ``restore`` fixes it from history.

Each context is checked under its writer lock where the backend has one, so a write
in flight is not taken for damage; without ``--repair`` nothing is written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from regman.errors import LockTimeoutError, RegmanError, StoreError, StoreVersionError
from regman.names import is_valid_name
from regman.store import Store
from regman.store.backend import MAX_RECORD_BYTES
from regman.store.core import record_key, spec_key
from regman.store.records import FORMAT_VERSION, SNAPSHOT_EVERY, Entry, Head, Record

Severity = Literal["error", "warning"]


@dataclass
class DoctorItem:
    """One problem found: how bad, where, what, and whether it was repaired."""

    severity: Severity
    path: str
    problem: str
    repaired: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DoctorReport:
    """What ``check_store`` found. ``healthy``: nothing is left to fix."""

    store: str
    repair: bool
    items: list[DoctorItem] = field(default_factory=list)
    contexts_checked: int = 0
    specs_checked: int = 0
    revisions_checked: int = 0

    @property
    def healthy(self) -> bool:
        return all(item.repaired for item in self.items)

    def add(self, severity: Severity, path: str, problem: str, repaired: bool = False) -> None:
        self.items.append(DoctorItem(severity, path, problem, repaired))

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "healthy": self.healthy,
            "repair": self.repair,
            "contexts_checked": self.contexts_checked,
            "revisions_checked": self.revisions_checked,
            "specs_checked": self.specs_checked,
            "items": [item.to_dict() for item in self.items],
        }


def check_store(store: Store, repair: bool = False) -> DoctorReport:
    """Check ``store``; with ``repair``, fix what can be fixed. Raises StoreVersionError."""
    report = DoctorReport(store.location, repair)
    backend = store.backend
    if not backend.exists():
        return report
    older = _older_format(store)
    if older is not None and not repair:  # upgrading writes: only with --repair
        report.add(
            "warning",
            f"{store.location}: format marker",
            f"the store has format {older}; the next write, or 'regman doctor --repair', "
            f"upgrades it to format {FORMAT_VERSION}",
        )
        return report
    try:
        store.check_format()  # a missing marker is written last: the heads may be newer
    except StoreVersionError:
        raise
    except StoreError as e:
        repaired = repair and _rewrite_marker(store)
        report.add("error", f"{store.location}: format marker", e.message, repaired)
        if not repaired:
            return report
    for warning in store.warnings():
        report.add("warning", store.location, warning)
    _check_stray_temporaries(store, report)
    for name in sorted({*backend.list_heads(), *backend.list_object_contexts()}):
        if not is_valid_name(name):
            report.add("error", name, "not a valid context name; regman ignores this folder")
            continue
        report.contexts_checked += 1
        try:
            lock = backend.writer_lock(name) if repair else _no_lock()
            with lock:
                _check_context(store, name, report)
        except LockTimeoutError:
            report.add("warning", name, "the context is locked by a writer; not checked")
    if repair:
        store.check_format(writing=True)
    return report


def _check_stray_temporaries(store: Store, report: DoctorReport) -> None:
    """Temporary files of the marker or a cache that a killed writer left."""
    backend = store.backend
    for name in backend.stray_temporaries():
        repaired = False
        if report.repair:
            try:
                with backend.store_lock():
                    repaired = backend.remove_stray_temporary(name)
            except StoreError:
                repaired = False
        report.add(
            "warning",
            f"{store.location}/{name}",
            "a temporary file left by an interrupted write",
            repaired,
        )


def _older_format(store: Store) -> int | None:
    """The store's format version when it is older than this regman's, else None."""
    from regman.store.core import marker_version

    try:
        raw = store.backend.read_marker()
        version = None if raw is None else marker_version(raw, "regman-store.json")
    except StoreError:
        return None  # a damaged marker: reported below
    return version if version is not None and version < FORMAT_VERSION else None


class _no_lock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _rewrite_marker(store: Store) -> bool:
    from regman.store.core import marker_bytes
    from regman.store.records import FORMAT_VERSION

    try:
        store.backend.write_marker(marker_bytes(FORMAT_VERSION))
        store._format_checked = False
        store.check_format()
    except RegmanError:
        return False
    return True


def _check_context(store: Store, name: str, report: DoctorReport) -> None:
    try:
        head = store.head(name)
        problem = None
        if head is None and store.backend.list_objects(f"{name}/revisions"):
            # Records without a head: the head was lost (not a first write that did not land).
            problem = "the context's head is missing; its revision records are there"
    except StoreVersionError:
        raise
    except StoreError as e:
        head, problem = None, e.message
    if problem is not None:
        repaired = report.repair and _rebuild_head(store, name, report)
        report.add("error", f"{name}: head", problem, repaired)
        if not repaired:
            return
        head = store.head(name)
    if head is None:
        _check_headless(store, name, report)
        return
    if head.last.command == "purge":  # a tombstone: the purge stopped before it was done
        repaired = report.repair and _finish_purge(store, name)
        report.add("warning", f"{name}: head", "a purge of the context was interrupted", repaired)
        return
    referenced = _check_records(store, name, head, report)
    referenced |= {(s, e.spec) for s, e in head.steps.items()}
    referenced |= {(s, r.entry.spec) for s, r in head.removed.items()}
    _check_specs(store, name, head, report)
    _check_unreferenced(store, name, referenced, head, report)


def _check_records(
    store: Store, name: str, head: Head, report: DoctorReport
) -> set[tuple[str, str]]:
    """Every revision record parses; the spec objects they refer to (for the sweep)."""
    backend = store.backend
    referenced: set[tuple[str, str]] = set()
    last_key = record_key(name, head.revision)
    if backend.read_object(last_key, MAX_RECORD_BYTES) is None:
        repaired = report.repair and _write_record(store, name, head.last)
        report.add(
            "warning",
            f"{name}: revision {head.revision}",
            "the record of the newest revision is only in the head (a writer stopped after "
            "its change landed)",
            repaired,
        )
    for revision in range(1, head.revision + 1):
        report.revisions_checked += 1
        try:
            record = store.record(name, revision)
        except RegmanError as e:
            report.add("error", f"{name}: revision {revision}", e.message)
            continue
        for step, change in record.changes.items():
            for entry in (change.entry, change.previous):
                if entry is not None:
                    referenced.add((step, entry.spec))
        if record.snapshot is None and revision % SNAPSHOT_EVERY == 0 and revision != head.revision:
            report.add("error", f"{name}: revision {revision}", "its snapshot is missing")
    return referenced


def _write_record(store: Store, name: str, record: Record) -> bool:
    try:
        store.backend.create_object(record_key(name, record.revision), record.to_json())
    except StoreError:
        return False
    return True


def _check_specs(store: Store, name: str, head: Head, report: DoctorReport) -> None:
    """Every current and restorable spec object exists, matches its hash and loads."""
    entries: list[tuple[str, Entry, str]] = [(s, e, "current") for s, e in head.steps.items()]
    entries += [(s, r.entry, "restorable") for s, r in head.removed.items()]
    for step, entry, what in entries:
        report.specs_checked += 1
        try:
            data = store.spec_bytes(name, step, entry)
            from regman.specfile import load_spec_text

            load_spec_text(data, spec_key(name, step, entry.spec))
        except RegmanError as e:
            report.add(
                "error",
                store.backend.where(spec_key(name, step, entry.spec)),
                f"the {what} spec of step '{step}' cannot be used: {e.message} (see "
                f"'regman history {name} {step}'; 'regman rollback' or 'restore' replaces it)",
            )


def _check_unreferenced(
    store: Store, name: str, referenced: set[tuple[str, str]], head: Head, report: DoctorReport
) -> None:
    """Objects no revision refers to: left by a writer that stopped before its head moved."""
    backend = store.backend
    for key in backend.list_objects(name):
        parts = key.split("/")
        kind = parts[1] if len(parts) > 1 else ""
        leftover = _is_leftover(parts, kind, referenced, head)
        if leftover is None:
            continue
        if leftover == _FOREIGN:  # reported, never deleted: it may be someone's data
            report.add("warning", store.backend.where(key), leftover)
            continue
        repaired = report.repair and _delete_object(store, key)
        report.add("warning", store.backend.where(key), leftover, repaired)


def _is_leftover(
    parts: list[str], kind: str, referenced: set[tuple[str, str]], head: Head
) -> str | None:
    name = parts[-1]
    if name.startswith("."):
        return "a temporary file left by an interrupted write"
    if kind == "head.json" and len(parts) == 2:
        return None
    if kind == "specs" and len(parts) == 4 and name.endswith(".yaml"):
        step, digest = parts[2], name[:-5]
        if (step, digest) in referenced:
            return None
        return "a spec object no revision refers to (a write that did not land)"
    if kind == "revisions" and len(parts) == 3 and name.endswith(".json"):
        number = name[:-5]
        if number.isdigit() and 1 <= int(number) <= head.revision:
            return None
        return "a revision record beyond the head (a write that did not land)"
    return _FOREIGN


_FOREIGN = (
    "a file regman did not write (left alone: move it out of the store, or register it if "
    "it is a spec an upgrade could not read)"
)


def _finish_purge(store: Store, name: str) -> bool:
    try:
        return store.purge_context(name)
    except StoreError:
        return False


def _delete_object(store: Store, key: str) -> bool:
    try:
        return store.backend.remove_leftover(key)
    except StoreError:
        return False


def _check_headless(store: Store, name: str, report: DoctorReport) -> None:
    """A context's objects without a head: what a writer killed before its first revision left."""
    backend = store.backend
    keys = backend.list_objects(name)
    if not keys:
        return
    what = f"{len(keys)} objects of a context that has no revision (its first write did not land)"
    if not report.repair:
        report.add("warning", backend.where(name), what)
        return
    if getattr(backend, "serialises_writers", False):  # we hold its writer lock
        try:
            backend.delete_prefix(name)
        except StoreError:
            report.add("warning", backend.where(name), what)
        else:
            report.add("warning", backend.where(name), what, True)
        return
    # No lock: a first write may be in flight; the backend keeps objects too young to judge.
    left = [key for key in keys if not _delete_object(store, key)]
    if left:
        what += f"; {len(left)} kept, young enough to belong to a write in flight"
    report.add("warning", backend.where(name), what, not left)


def _rebuild_head(store: Store, name: str, report: DoctorReport) -> bool:
    """Rebuild a damaged head from the newest intact revision record."""
    from regman.store.core import apply_changes

    backend = store.backend
    numbers = sorted(
        int(k.rsplit("/", 1)[-1][:-5])
        for k in backend.list_objects(f"{name}/revisions")
        if k.endswith(".json") and k.rsplit("/", 1)[-1][:-5].isdigit()
    )
    records: dict[int, Record] = {}
    for number in numbers:
        raw = backend.read_object(record_key(name, number), MAX_RECORD_BYTES)
        try:
            if raw is not None:
                records[number] = Record.from_json(raw, f"{name} revision {number}")
        except RegmanError:
            continue
    newest = max(records, default=0)
    if newest == 0 or set(range(1, newest + 1)) - set(records):
        return False
    steps: dict[str, Entry] = {}
    removed = {}
    from regman.store.records import Removed

    for number in range(1, newest + 1):
        record = records[number]
        for step, change in record.changes.items():
            if change.kind == "removed" and change.previous is not None:
                removed[step] = Removed(number, record.created_at, change.previous)
            else:
                removed.pop(step, None)
        for step in record.purged:
            removed.pop(step, None)
        apply_changes(steps, record.changes)
    last = records[newest]
    cleared = last.command == "clear"
    head = Head(name, newest, records[1].created_at, cleared, steps, removed, last)
    try:
        current = backend.read_head(name, 1 << 62)  # a FIFO or a link: reported, not a crash
        ok = backend.swap_head(name, head.to_json(), current[1] if current else None)
    except StoreError:
        return False
    if ok:
        report.add(
            "warning",
            f"{name}: head",
            f"rebuilt at revision {newest} from its records; a newer revision, if there was "
            "one, is lost",
            True,
        )
    return ok
