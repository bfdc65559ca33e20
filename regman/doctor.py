"""Check a file store for damage, and repair what is derived from the spec files.

The spec files are the truth; everything else in a store is derived from them or
left over: each context's index (JSON counters), the format-version marker, and
temporary files (``.tmp-*``) that a killed writer leaves behind. ``check_store``
looks at all of it and, with ``repair=True``, rebuilds indexes, rewrites a damaged
or missing marker, removes context folders that hold nothing, and deletes stale
temporary files. It never touches a spec file: one that does not parse or validate
is reported for a person to fix (or restore from the trash).

A store written by a newer regman raises StoreVersionError before anything else:
guessing at a format we do not know could destroy data.

Each context is checked under its lock, so a concurrent writer is never mistaken
for damage; a context whose lock cannot be had is reported, not guessed at. This
module prints nothing; the command line renders the report.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from regman.atomic import TMP_PREFIX, atomic_write
from regman.errors import LockTimeoutError, SpecError, StoreError, StoreVersionError
from regman.index import FORMAT_VERSION, ContextIndex
from regman.names import validate_name
from regman.store import CHANGING, INDEX, MARKER, FileStore

Severity = Literal["error", "warning"]

# A temporary file outside a context folder (the marker's, or one carried into the
# trash) is stale when its writer is gone, or after this long in any case.
STALE_TEMP_SECONDS = 3600.0


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
            "specs_checked": self.specs_checked,
            "items": [item.to_dict() for item in self.items],
        }


def check_store(store: FileStore, repair: bool = False) -> DoctorReport:
    """Check ``store``; with ``repair``, fix derived data. Raises StoreVersionError."""
    report = DoctorReport(store.root, repair)
    if not os.path.isdir(store.root):
        return report
    marker_ok = _check_marker(store, report)
    # A check without --repair writes nothing: it locks contexts (so a writer at work
    # is not taken for damage) only where the lock files can be had without creating
    # anything, and a read-only store can still be checked.
    can_lock = marker_ok and (
        repair or (os.path.isdir(store.locks_dir) and os.access(store.locks_dir, os.W_OK))
    )
    if not repair and not all(os.path.isdir(d) for d in (store.contexts_dir, store.trash_dir)):
        can_lock = False  # locking would create the missing folders
    for name in _context_folders(store):
        _check_context(store, name, report, use_lock=can_lock)
    _check_loose_temp_files(store, report)
    return report


# -- format version -------------------------------------------------------------------
def _check_marker(store: FileStore, report: DoctorReport) -> bool:
    """True when the marker is present and readable (so locking changes nothing)."""
    path = os.path.join(store.root, MARKER)
    try:
        store._checked_version = False  # read it afresh
        store.check_version()
    except StoreVersionError:
        raise
    except StoreError:
        _newest_index_version(store)  # refuse to rewrite a newer store's marker
        repaired = report.repair and _write_marker(path)
        report.add("error", path, "the format-version marker is damaged", repaired)
        return repaired
    if os.path.exists(path):
        return True
    if not os.path.isdir(store.contexts_dir):
        return False  # an empty folder: nothing is a store yet
    _newest_index_version(store)
    repaired = report.repair and _write_marker(path)
    report.add("warning", path, "the format-version marker is missing", repaired)
    return repaired


def _newest_index_version(store: FileStore) -> None:
    """Raise StoreVersionError if any index says it was written by a newer regman."""
    for name in _context_folders(store):
        try:
            with open(os.path.join(store.contexts_dir, name, INDEX), "rb") as fh:
                version = json.loads(fh.read()).get("format_version", 1)
        except (OSError, ValueError, AttributeError):
            continue
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise StoreVersionError(
                f"context '{name}' in {store.root} has format version {version}; this "
                f"regman reads format {FORMAT_VERSION}",
                hint="upgrade regman to check this store",
            )


def _write_marker(path: str) -> bool:
    try:
        atomic_write(path, (json.dumps({"format_version": FORMAT_VERSION}) + "\n").encode())
    except StoreError:
        return False
    return True


# -- contexts ---------------------------------------------------------------------------
def _context_folders(store: FileStore) -> list[str]:
    try:
        return sorted(
            entry.name
            for entry in os.scandir(store.contexts_dir)
            if entry.is_dir(follow_symlinks=False) and not entry.name.startswith(".")
        )
    except FileNotFoundError:
        return []
    except OSError as e:
        raise StoreError(f"cannot list {store.contexts_dir}: {e.strerror or e}") from e


def _check_context(store: FileStore, name: str, report: DoctorReport, use_lock: bool) -> None:
    folder = store.context_dir(name)
    report.contexts_checked += 1
    try:
        validate_name(name, "context")
    except ValueError as e:
        report.add("error", folder, f"not a valid context name ({e}); regman ignores it")
        return
    if not use_lock:  # the marker is not sound: look, but change nothing
        _check_context_locked(store, name, report, can_repair=False)
        return
    try:
        with store.locked(name):
            _check_context_locked(store, name, report, can_repair=report.repair)
    except LockTimeoutError:
        report.add("warning", folder, "the context is locked by a writer; not checked")


def _check_context_locked(
    store: FileStore, name: str, report: DoctorReport, can_repair: bool
) -> None:
    folder = store.context_dir(name)
    specs_folder = os.path.join(folder, "specs")
    # Writers make temporary files only under this lock, so any here are left over.
    for directory in (folder, specs_folder):
        for temp in _temp_files_in(directory):
            repaired = can_repair and _delete(temp)
            report.add("warning", temp, "a temporary file left by an interrupted write", repaired)

    marker = os.path.join(folder, CHANGING)
    if os.path.exists(marker):
        repaired = can_repair and _delete(marker)
        report.add(
            "warning", marker, "a change was interrupted here (its index is checked)", repaired
        )

    steps = store.step_names(name)
    bad_specs = 0
    for step in steps:
        path = store.spec_path(name, step)
        report.specs_checked += 1
        try:
            validate_name(step, "step")
        except ValueError as e:
            report.add("error", path, f"not a valid step name ({e}); regman ignores it")
            continue
        try:
            store.load_spec(name, step)
        except SpecError as e:
            bad_specs += 1
            report.add("error", path, f"the spec does not load: {e}")

    index_path = store.index_path(name)
    problem = _index_problem(store, name, index_path, has_specs=bool(steps))
    if problem is None:
        return
    if problem == "empty folder":
        repaired = can_repair and _remove_empty_context(folder)
        report.add("warning", folder, "a context folder with no index and no specs", repaired)
        return
    repaired = can_repair and _rebuild_index(store, name)
    report.add("error", index_path, problem, repaired)


def _rebuild_index(store: FileStore, name: str) -> bool:
    """Rewrite a context's index from its spec files; the caller holds the lock."""
    try:
        store.rebuild_index_locked(name)
    except StoreVersionError:
        raise
    except StoreError:
        return False
    return True


def _index_problem(store: FileStore, name: str, path: str, has_specs: bool) -> str | None:
    """What is wrong with a context's index, if anything."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return "the index is missing (its specs are invisible)" if has_specs else "empty folder"
    except OSError as e:
        return f"the index cannot be read: {e.strerror or e}"
    try:
        stored = ContextIndex.from_json(data, path)
    except StoreVersionError:
        raise
    except Exception:  # the store's private "damaged index" error
        return "the index is damaged (not valid JSON of the expected shape)"
    if stored.name != name:
        return f"the index names context '{stored.name}'"
    expected = store._rebuilt_index(name, stored)
    if stored.counters() != expected.counters():
        differences = ", ".join(
            f"{key} {stored.counters()[key]} (specs say {value})"
            for key, value in expected.counters().items()
            if stored.counters()[key] != value
        )
        return f"the index does not match its spec files: {differences}"
    return None


def _remove_empty_context(folder: str) -> bool:
    try:
        specs = os.path.join(folder, "specs")
        if os.path.isdir(specs):
            os.rmdir(specs)
        os.rmdir(folder)
    except OSError:
        return False
    return True


# -- temporary files elsewhere ------------------------------------------------------------
def _check_loose_temp_files(store: FileStore, report: DoctorReport) -> None:
    """Temp files outside context folders: in the root, contexts/, trash/."""
    places = [store.root, store.contexts_dir, store.trash_dir]
    try:
        places += [e.path for e in os.scandir(store.trash_dir) if e.is_dir(follow_symlinks=False)]
        places += [
            os.path.join(e.path, "specs")
            for e in os.scandir(store.trash_dir)
            if e.is_dir(follow_symlinks=False)
        ]
    except OSError:
        pass
    for directory in places:
        for temp in _temp_files_in(directory):
            if not _is_stale(temp):
                continue  # a writer is at work right now
            repaired = report.repair and _delete(temp)
            report.add("warning", temp, "a temporary file left by an interrupted write", repaired)


def _temp_files_in(directory: str) -> list[str]:
    try:
        return sorted(
            os.path.join(directory, name)
            for name in os.listdir(directory)
            if name.startswith(TMP_PREFIX)
        )
    except OSError:
        return []


def _is_stale(path: str) -> bool:
    try:
        age = time.time() - os.stat(path).st_mtime
    except OSError:
        return False
    if age > STALE_TEMP_SECONDS:
        return True
    pid_text = os.path.basename(path)[len(TMP_PREFIX) :].split("-", 1)[0]
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True  # its writer is gone
    except OSError:
        return False
    return False


def _delete(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
