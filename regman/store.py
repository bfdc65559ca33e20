"""Where and how the bytes live: layout, trash, format version (atomic writes, the
index and locks are in ``atomic``, ``index`` and ``locks``).

Layout of a file store (everything human-readable)::

    <root>/regman-store.json          {"format_version": 1}
    <root>/contexts/<ctx>/context.json   per-context index (derived, JSON)
    <root>/contexts/<ctx>/specs/<step>.yaml   one spec per file (the truth, YAML)
    <root>/locks/<ctx>.lock           per-context inter-process lock
    <root>/trash/<ns>@<ctx>/          a cleared context, as it was
    <root>/trash/<ns>@<ctx>@<step>.yaml   a removed step

Invariants: every file is replaced atomically (temp file in the same folder,
fsync, ``os.replace``, folder fsync); every change to a context happens under its
lock and ends by replacing its index, so the index's identity (inode, mtime,
size) is a cheap change token for readers. Spec files are the truth; the index
only summarises them, so ``doctor`` can always rebuild it.

Importing this module must stay cheap: ``contexts list`` and ``stats`` read only
JSON indexes, so pydantic, yaml and the lock library load on the paths that need them.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regman.atomic import (
    TMP_PREFIX,
    Undo,
    atomic_write,
    fsync_dir,
    os_error,
    read_small_file,
    remove_tree,
    unlink_quietly,
)
from regman.errors import (
    ConflictError,
    ContextNotFoundError,
    InvalidInputError,
    InvalidNameError,
    LockTimeoutError,
    NotFoundError,
    SpecError,
    StepNotFoundError,
    StoreError,
    StoreVersionError,
)
from regman.index import (
    FORMAT_VERSION,
    STAT_KEYS,
    ContextIndex,
    DamagedIndexError,
    StepSummary,
    iso_utc,
    now_iso,
)
from regman.locks import acquire_with_backoff, thread_lock_for
from regman.names import find_case_clash, lock_key, validate_name

if TYPE_CHECKING:
    from regman.spec import StepSpecification

MEMORY = ":memory:"
DEFAULT_LOCK_TIMEOUT = 10.0
DEFAULT_TRASH_DAYS = 7.0
MARKER = "regman-store.json"
INDEX = "context.json"
STATS_CACHE = "stats-cache.json"  # derived; any reader may rebuild it
_CACHE_REWRITE_AFTER = 32  # indexes read afresh before a stats call rewrites the cache
CHANGING = ".changing"  # in a context folder while a change is half done
_SEP = "@"  # cannot occur in a valid name, so trash entry names parse unambiguously


def default_store_path() -> str:
    """``$REGMAN_HOME`` when set, else the platform's user data folder for regman."""
    home = os.environ.get("REGMAN_HOME")
    if home:
        return os.path.abspath(os.path.expanduser(home))
    import platformdirs  # only when no explicit location is given

    return platformdirs.user_data_dir("regman", appauthor=False)


def open_store(location: str | os.PathLike[str] | Store | None = None, **options: Any) -> Store:
    """None -> the default file store; ``":memory:"`` -> in memory; a path -> a file store."""
    if isinstance(location, Store):
        return location
    if location is None:
        return FileStore(default_store_path(), **options)
    if os.fspath(location) == MEMORY:
        return MemoryStore()
    return FileStore(os.fspath(location), **options)


@dataclass
class TrashEntry:
    """Something deleted recoverably: a whole context, or one step of a context."""

    entry_id: str
    context: str
    step: str | None
    deleted_at: float

    @property
    def kind(self) -> str:
        return "context" if self.step is None else "step"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.entry_id,
            "kind": self.kind,
            "context": self.context,
            "step": self.step,
            "deleted_at": iso_utc(self.deleted_at, milliseconds=False),
        }


class Store:
    """The interface the registry and the manager use; two implementations below."""

    location: str = MEMORY

    def list_contexts(self) -> list[str]:
        raise NotImplementedError

    def context_exists(self, context: str) -> bool:
        raise NotImplementedError

    def create_context(self, context: str) -> bool:
        """Create an empty context; False when it already existed."""
        raise NotImplementedError

    def delete_context(self, context: str, *, purge: bool = False) -> bool:
        """Remove a context (into the trash unless ``purge``); False when it was missing."""
        raise NotImplementedError

    def read_index(self, context: str) -> ContextIndex | None:
        raise NotImplementedError

    def token(self, context: str) -> Hashable:
        """A value that changes whenever the context changes; cheap to compute."""
        raise NotImplementedError

    def load_spec(self, context: str, step: str) -> StepSpecification:
        raise NotImplementedError

    def step_names(self, context: str) -> list[str]:
        raise NotImplementedError

    def _unsorted_step_names(self, context: str) -> list[str]:
        return self.step_names(context)

    def spec_text(self, context: str, step: str) -> str | None:
        """The stored text of a spec, or None when the step is not there."""
        raise NotImplementedError

    def spec_signatures(self, context: str) -> dict[str, Hashable]:
        """Step -> a value that changes when that step's spec changes (cheap: no parsing)."""
        raise NotImplementedError

    def put_spec(
        self, context: str, step: str, spec: StepSpecification, *, replace: bool = True
    ) -> str:
        """Store a spec; returns "created", "updated" or "unchanged"."""
        raise NotImplementedError

    def delete_spec(self, context: str, step: str, *, purge: bool = False) -> bool:
        raise NotImplementedError

    def preview_put(
        self, context: str, step: str, spec: StepSpecification, *, replace: bool = True
    ) -> str:
        """What ``put_spec`` would do now (for ``--dry-run``), writing nothing."""
        _validate(context, step)
        if not self.context_exists(context):
            clash = find_case_clash(context, self.list_contexts())
            if clash:
                raise InvalidNameError(
                    f"context '{context}' differs only in case from existing context '{clash}'"
                )
            return "created"
        return self._decide(context, step, stored_text(spec, step), replace)

    def _decide(self, context: str, step: str, text: str, replace: bool) -> str:
        """created/updated/unchanged for storing ``text``; refuses --no-replace and case clashes."""
        current = self.spec_text(context, step)
        if current is None:
            clash = find_case_clash(step, self._unsorted_step_names(context))
            if clash:
                raise InvalidNameError(
                    f"step '{step}' differs only in case from existing step '{clash}' "
                    f"in context '{context}'",
                    hint=f"use '{clash}'",
                )
            return "created"
        if current == text:
            return "unchanged"
        if not replace:
            raise ConflictError(
                f"step '{step}' is already registered in context '{context}' with another spec",
                hint="drop --no-replace to overwrite it",
            )
        return "updated"

    def list_trash(self) -> list[TrashEntry]:
        return []

    def restore(self, context: str, step: str | None = None) -> TrashEntry:
        raise NotFoundError(f"nothing of context '{context}' is in the trash")

    def empty_trash(self, older_than_days: float | None = None) -> int:
        return 0

    def all_stats(self) -> dict[str, dict[str, Any]]:
        stats = {}
        for name in self.list_contexts():
            index = self.read_index(name)
            if index is not None:
                stats[name] = index.stats()
        return stats

    def info(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "format_version": FORMAT_VERSION,
            "contexts": len(self.list_contexts()),
        }


def stored_text(spec: StepSpecification, step: str) -> str:
    """The YAML a spec is stored as; refused if regman could not read it back.

    Block YAML can be much longer than the (flow-style) input it came from, so a spec
    accepted at 1 MiB could otherwise be stored beyond the size cap of the reader.
    """
    from regman.yamlsafe import MAX_SPEC_BYTES

    text = spec.to_yaml()
    if len(text.encode()) > MAX_SPEC_BYTES:
        raise SpecError(
            f"the spec would be stored as {len(text.encode()) // 1024} KiB of YAML, more than "
            f"the {MAX_SPEC_BYTES // 1024} KiB a spec may have",
            source=f"<{step}>",
            hint="a spec is a few KB; move bulky data out of it",
        )
    return text


def _validate(context: str, step: str | None = None) -> None:
    validate_name(context, "context")
    if step is not None:
        validate_name(step, "step")


# ---------------------------------------------------------------------------------------
# In memory
# ---------------------------------------------------------------------------------------
class MemoryStore(Store):
    """A store that lives and dies with the process (``RegistryManager(":memory:")``)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._indexes: dict[str, ContextIndex] = {}
        self._specs: dict[str, dict[str, tuple[str, StepSpecification, int]]] = {}
        self._counter = 0

    def _tick(self) -> int:
        self._counter += 1
        return self._counter

    def list_contexts(self) -> list[str]:
        with self._lock:
            return sorted(self._indexes)

    def context_exists(self, context: str) -> bool:
        return context in self._indexes

    def create_context(self, context: str) -> bool:
        _validate(context)
        with self._lock:
            if context in self._indexes:
                return False
            clash = find_case_clash(context, self._indexes)
            if clash:
                raise InvalidNameError(
                    f"context '{context}' differs only in case from existing context '{clash}'"
                )
            stamp = now_iso()
            self._indexes[context] = ContextIndex(context, stamp, stamp)
            self._specs[context] = {}
            self._tick()
            return True

    def delete_context(self, context: str, *, purge: bool = False) -> bool:
        _validate(context)
        with self._lock:
            if self._indexes.pop(context, None) is None:
                return False
            del self._specs[context]
            self._tick()
            return True

    def read_index(self, context: str) -> ContextIndex | None:
        return self._indexes.get(context)

    def token(self, context: str) -> Hashable:
        index = self._indexes.get(context)
        return None if index is None else (id(index), index.updated_at, self._counter)

    def step_names(self, context: str) -> list[str]:
        return sorted(self._specs.get(context, ()))

    def spec_text(self, context: str, step: str) -> str | None:
        entry = self._specs.get(context, {}).get(step)
        return entry[0] if entry else None

    def spec_signatures(self, context: str) -> dict[str, Hashable]:
        with self._lock:
            return {step: entry[2] for step, entry in self._specs.get(context, {}).items()}

    def load_spec(self, context: str, step: str) -> StepSpecification:
        specs = self._specs.get(context)
        if specs is None:
            raise ContextNotFoundError(context)
        if step not in specs:
            raise StepNotFoundError(context, step)
        return specs[step][1]

    def put_spec(
        self, context: str, step: str, spec: StepSpecification, *, replace: bool = True
    ) -> str:
        _validate(context, step)
        text = stored_text(spec, step)
        with self._lock:
            self.create_context(context)
            outcome = self._decide(context, step, text, replace)
            if outcome == "unchanged":
                return outcome
            index, specs = self._indexes[context], self._specs[context]
            if step in specs:
                index.apply(StepSummary.of(specs[step][1]), -1)
            specs[step] = (text, spec, self._tick())
            index.apply(StepSummary.of(spec))
            index.updated_at = now_iso()
            return outcome

    def delete_spec(self, context: str, step: str, *, purge: bool = False) -> bool:
        _validate(context, step)
        with self._lock:
            specs = self._specs.get(context)
            if specs is None or step not in specs:
                return False
            index = self._indexes[context]
            index.apply(StepSummary.of(specs.pop(step)[1]), -1)
            index.updated_at = now_iso()
            self._tick()
            return True


# ---------------------------------------------------------------------------------------
# On disk
# ---------------------------------------------------------------------------------------
class FileStore(Store):
    """The on-disk store; safe across threads and processes on a local filesystem."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        lock_timeout: float | None = None,
        trash_days: float | None = None,
    ) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.location = self.root
        self.contexts_dir = os.path.join(self.root, "contexts")
        self.locks_dir = os.path.join(self.root, "locks")
        self.trash_dir = os.path.join(self.root, "trash")
        self._lock_timeout = lock_timeout
        self.trash_days = DEFAULT_TRASH_DAYS if trash_days is None else trash_days
        self._checked_version = False
        self._index_paths: dict[str, str] = {}

    # -- paths -------------------------------------------------------------------------
    def context_dir(self, context: str) -> str:
        return os.path.join(self.contexts_dir, context)

    def index_path(self, context: str) -> str:
        path = self._index_paths.get(context)
        if path is None:
            path = self._index_paths[context] = os.sep.join((self.contexts_dir, context, INDEX))
        return path

    def spec_path(self, context: str, step: str) -> str:
        return os.path.join(self.contexts_dir, context, "specs", f"{step}.yaml")

    # -- format version ----------------------------------------------------------------
    def check_version(self) -> None:
        """Refuse a store written by a newer regman instead of misreading it."""
        if self._checked_version:
            return
        try:
            with open(os.path.join(self.root, MARKER), "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            self._checked_version = True
            return
        except OSError as e:
            raise os_error("read", os.path.join(self.root, MARKER), e) from e
        try:
            version = json.loads(raw)["format_version"]
        except (ValueError, KeyError, TypeError):
            raise StoreError(
                f"{os.path.join(self.root, MARKER)} is damaged",
                hint="run 'regman doctor --repair'",
            ) from None
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise StoreVersionError(
                f"the store at {self.root} has format version {version}; this regman reads "
                f"format {FORMAT_VERSION}",
                hint="upgrade regman to use this store",
            )
        self._checked_version = True

    def _initialise(self) -> None:
        self.check_version()
        marker = os.path.join(self.root, MARKER)
        if os.path.exists(marker) and all(
            os.path.isdir(d) for d in (self.contexts_dir, self.locks_dir, self.trash_dir)
        ):
            return
        try:
            for folder in (self.root, self.contexts_dir, self.locks_dir, self.trash_dir):
                os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise os_error("create the store at", self.root, e) from e
        if not os.path.exists(marker):
            atomic_write(marker, (json.dumps({"format_version": FORMAT_VERSION}) + "\n").encode())

    # -- locking -----------------------------------------------------------------------
    @contextmanager
    def locked(self, context: str) -> Iterator[None]:
        """Serialise writers of one context across threads and processes."""
        self._initialise()
        key = lock_key(context)
        thread_lock = thread_lock_for(self.root, key)
        deadline = time.monotonic() + self.lock_timeout
        if not thread_lock.acquire(timeout=max(self.lock_timeout, 0)):
            raise self._timeout(context)
        try:
            import filelock  # the write path only: it costs start-up time

            lock = filelock.FileLock(
                os.path.join(self.locks_dir, f"{key}.lock"),
                thread_local=False,
                is_singleton=False,
                preserve_lock_file=True,  # unlinking a lock file races with its next user
                fallback_to_soft=False,  # a soft lock would survive a killed holder
            )
            acquire_with_backoff(lock, deadline, lambda: self._timeout(context))
            try:
                yield
            finally:
                lock.release()
        finally:
            thread_lock.release()

    @property
    def lock_timeout(self) -> float:
        """Seconds a writer waits for a context's lock; ``REGMAN_LOCK_TIMEOUT`` when set."""
        if self._lock_timeout is not None:
            return self._lock_timeout
        raw = os.environ.get("REGMAN_LOCK_TIMEOUT", "")
        if not raw:
            return DEFAULT_LOCK_TIMEOUT
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not 0 <= value < 1e6:  # also refuses nan and inf
            raise InvalidInputError(
                f"REGMAN_LOCK_TIMEOUT={raw!r} is not a number of seconds",
                hint="use e.g. REGMAN_LOCK_TIMEOUT=10, or unset it",
            )
        return value

    def _timeout(self, context: str) -> LockTimeoutError:
        return LockTimeoutError(
            f"context '{context}' is locked by another writer (waited {self.lock_timeout:g} s)",
            hint="try again, or raise REGMAN_LOCK_TIMEOUT",
        )

    # -- reading -----------------------------------------------------------------------
    def list_contexts(self) -> list[str]:
        self.check_version()
        try:
            entries = os.scandir(self.contexts_dir)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise os_error("list", self.contexts_dir, e) from e
        with entries:
            # Context folders appear complete (built aside, renamed in): no per-folder stat.
            return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())

    def context_exists(self, context: str) -> bool:
        try:
            os.stat(self.index_path(context))
        except (OSError, ValueError):
            return False
        return True

    def all_stats(self) -> dict[str, dict[str, Any]]:
        # Stats of 10,000 contexts would mean reading 10,000 JSON files. A cache of
        # every context's stats, keyed by its index's token (inode, mtime, size; mtimes
        # of one context's index only ever grow), turns that into one JSON read and
        # one stat per context; only contexts whose index changed are read. Readers
        # refresh the cache (best effort); writers never touch it.
        self.check_version()
        try:
            names = os.listdir(self.contexts_dir)
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise os_error("list", self.contexts_dir, e) from e
        cached = self._read_stats_cache()
        fresh: dict[str, list[Any]] = {}
        stale = 0
        for name in sorted(names):
            if name.startswith("."):
                continue
            try:
                st = os.stat(self.index_path(name))
            except OSError:
                continue  # a folder without an index: doctor reports it
            token = [st.st_ino, st.st_mtime_ns, st.st_size]
            entry = cached.get(name)
            if entry is not None and entry[:3] == token:
                fresh[name] = entry
                continue
            index = self.read_index(name)
            if index is not None:
                fresh[name] = [*token, *index.stats().values()]
                stale += 1
        # Rewriting the cache costs more than re-reading a few indexes: only when it pays.
        if stale >= _CACHE_REWRITE_AFTER:
            self._write_stats_cache(fresh)
        return {name: dict(zip(STAT_KEYS, entry[3:], strict=True)) for name, entry in fresh.items()}

    def _read_stats_cache(self) -> dict[str, list[Any]]:
        try:
            doc = json.loads(read_small_file(os.path.join(self.root, STATS_CACHE)))
            if doc.get("keys") == list(STAT_KEYS) and isinstance(doc["contexts"], dict):
                return doc["contexts"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        return {}

    def _write_stats_cache(self, entries: dict[str, list[Any]]) -> None:
        if not os.path.isdir(self.root):
            return
        data = json.dumps({"keys": STAT_KEYS, "contexts": entries}, separators=(",", ":"))
        with contextlib.suppress(StoreError):  # a read-only store still answers
            atomic_write(os.path.join(self.root, STATS_CACHE), data.encode(), durable=False)

    def read_index(self, context: str) -> ContextIndex | None:
        path = self.index_path(context)
        try:
            data = read_small_file(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise os_error("read", path, e) from e
        try:
            return ContextIndex.from_json(data, path)
        except DamagedIndexError:
            return self._rebuilt_index(context)

    def token(self, context: str) -> Hashable:
        # The hot path of every registry read: one stat, no path building.
        try:
            st = os.stat(self._index_paths.get(context) or self.index_path(context))
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def step_names(self, context: str) -> list[str]:
        """Steps by their spec files (the truth), ignoring temporary files."""
        folder = os.path.join(self.contexts_dir, context, "specs")
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as e:
            raise os_error("list", folder, e) from e
        return sorted(n[:-5] for n in names if n.endswith(".yaml") and not n.startswith("."))

    def _unsorted_step_names(self, context: str) -> list[str]:
        try:
            names = os.listdir(os.path.join(self.contexts_dir, context, "specs"))
        except OSError:
            return []
        return [n[:-5] for n in names if n.endswith(".yaml")]

    def spec_text(self, context: str, step: str) -> str | None:
        path = self.spec_path(context, step)
        try:
            with open(path, "rb") as fh:
                return fh.read().decode("utf-8", "replace")
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise os_error("read", path, e) from e

    def spec_signatures(self, context: str) -> dict[str, Hashable]:
        folder = os.path.join(self.contexts_dir, context, "specs")
        try:
            entries = os.scandir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return {}
        except OSError as e:
            raise os_error("list", folder, e) from e
        signatures: dict[str, Hashable] = {}
        with entries:
            for entry in entries:
                name = entry.name
                if name.endswith(".yaml") and not name.startswith("."):
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue
                    signatures[name[:-5]] = (st.st_ino, st.st_mtime_ns, st.st_size)
        return signatures

    def load_spec(self, context: str, step: str) -> StepSpecification:
        from regman.specfile import load_spec_file

        _validate(context, step)  # names become paths: never read outside the store
        path = self.spec_path(context, step)
        if not os.path.exists(path):
            if not self.context_exists(context):
                raise ContextNotFoundError(context)
            raise StepNotFoundError(context, step)
        return load_spec_file(path)

    # -- writing -----------------------------------------------------------------------
    def create_context(self, context: str) -> bool:
        _validate(context)
        with self.locked(context):
            return self._create_locked(context)

    def _create_locked(self, context: str, undo: Undo | None = None) -> bool:
        if self.context_exists(context):
            return False
        clash = find_case_clash(context, self.list_contexts())
        if clash:
            raise InvalidNameError(
                f"context '{context}' differs only in case from existing context '{clash}'",
                hint=f"use '{clash}'",
            )
        folder = self.context_dir(context)
        stamp = now_iso()
        index = ContextIndex(context, stamp, stamp).to_json()
        with Undo().guard() if undo is None else contextlib.nullcontext(undo) as undo:
            if os.path.lexists(folder):
                # A folder without an index (damage): give it one; its specs stay.
                undo.write(self.index_path(context), index)
                return True
            # Built aside and renamed into place, so a context folder is always
            # complete: listing contexts needs no per-folder check.
            building = os.path.join(
                self.contexts_dir, f"{TMP_PREFIX}{context}-{os.getpid()}-{time.monotonic_ns()}"
            )
            try:
                os.makedirs(os.path.join(building, "specs"))
                atomic_write(os.path.join(building, INDEX), index, mtime_ns=time.time_ns())
                os.rename(building, folder)
            except (OSError, StoreError) as e:
                remove_tree(building)
                if isinstance(e, StoreError):
                    raise
                raise os_error("create", folder, e) from e
            undo.add(lambda: remove_tree(folder))
            fsync_dir(self.contexts_dir)
        return True

    def put_spec(
        self, context: str, step: str, spec: StepSpecification, *, replace: bool = True
    ) -> str:
        _validate(context, step)
        text = stored_text(spec, step)
        with self.locked(context), Undo().guard() as undo:
            self._create_locked(context, undo)
            outcome = self._decide(context, step, text, replace)
            if outcome == "unchanged":
                return outcome
            self._begin_change(context, undo)
            index = self._index_for_write(context)
            old = self._summary_of_stored(context, step) if outcome == "updated" else None
            undo.write(self.spec_path(context, step), text.encode())
            if outcome == "updated" and old is None:
                index = self._rebuilt_index(context, index)  # the old spec was unreadable
            else:
                if old is not None:
                    index.apply(old, -1)
                index.apply(StepSummary.of(spec))
            self._write_index(index, undo)
            return outcome

    def delete_spec(self, context: str, step: str, *, purge: bool = False) -> bool:
        _validate(context, step)
        with self.locked(context), Undo().guard() as undo:
            path = self.spec_path(context, step)
            if not os.path.exists(path):
                return False
            self._begin_change(context, undo)
            index = self._index_for_write(context)
            old = self._summary_of_stored(context, step)
            if purge:
                undo.move_aside(path)  # unlinked only once the index is written
            else:
                entry = f"{time.time_ns()}{_SEP}{context}{_SEP}{step}.yaml"
                undo.move(path, os.path.join(self.trash_dir, entry))
                fsync_dir(self.trash_dir)
            fsync_dir(os.path.dirname(path))
            if old is None:
                index = self._rebuilt_index(context, index)
            else:
                index.apply(old, -1)
            self._write_index(index, undo)
        self._expire_trash()
        return True

    def delete_context(self, context: str, *, purge: bool = False) -> bool:
        _validate(context)
        if not os.path.isdir(self.contexts_dir):
            return False
        with self.locked(context):
            folder = self.context_dir(context)
            if not self.context_exists(context):
                return False
            target = os.path.join(self.trash_dir, f"{time.time_ns()}{_SEP}{context}")
            with Undo().guard() as undo:
                undo.move(folder, target)  # the commit point: atomic on one filesystem
                fsync_dir(self.contexts_dir)
                fsync_dir(self.trash_dir)
            if purge:
                remove_tree(target)
        self._expire_trash()
        return True

    def _summary_of_stored(self, context: str, step: str) -> StepSummary | None:
        """The stored spec's contribution, or None when it cannot be parsed."""
        try:
            return StepSummary.of(self.load_spec(context, step))
        except (SpecError, NotFoundError):
            return None

    def _write_index(self, index: ContextIndex, undo: Undo | None = None) -> None:
        """Replace a context's index (the last step of every change) and end the change.

        Its mtime is set strictly after the previous index's, so the (inode, mtime,
        size) token that readers compare can never come back to an old value.
        """
        path = self.index_path(index.name)
        index.updated_at = now_iso()
        try:
            previous = os.stat(path).st_mtime_ns
        except OSError:
            previous = 0
        mtime = max(time.time_ns(), previous + 1)
        if undo is None:
            atomic_write(path, index.to_json(), mtime_ns=mtime)
        else:
            undo.write(path, index.to_json(), mtime_ns=mtime)
        unlink_quietly(os.path.join(self.context_dir(index.name), CHANGING))

    def _begin_change(self, context: str, undo: Undo | None = None) -> None:
        """Mark the context as mid-change (spec written, index not yet).

        A writer killed between the two leaves the mark; the next writer of the
        context (under the lock) then rebuilds the index from the spec files and
        removes the dead writer's temporary files before going on, so a kill never
        leaves wrong statistics for later writes to build on.
        """
        marker = os.path.join(self.context_dir(context), CHANGING)
        if os.path.exists(marker):
            self.recover_context(context)
        try:
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT, 0o644))
        except OSError as e:
            raise os_error("write", marker, e) from e
        if undo is not None:  # a change that failed and was undone is not half done
            undo.add(lambda: unlink_quietly(marker))

    def recover_context(self, context: str) -> None:
        """After an interrupted change (caller holds the lock): index rebuilt, leftovers gone."""
        for folder in (self.context_dir(context), os.path.join(self.context_dir(context), "specs")):
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                if name.startswith(TMP_PREFIX):
                    unlink_quietly(os.path.join(folder, name))
        self._write_index(self._rebuilt_index(context, self.read_index(context)))

    def _index_for_write(self, context: str) -> ContextIndex:
        index = self.read_index(context)
        if index is None:
            return self._rebuilt_index(context)
        return index

    def _rebuilt_index(self, context: str, previous: ContextIndex | None = None) -> ContextIndex:
        """Derive the index from the spec files (after a crash or damage by hand)."""
        stamp = now_iso()
        index = ContextIndex(context, previous.created_at if previous else stamp, stamp)
        for step in self.step_names(context):
            try:
                index.apply(StepSummary.of(self.load_spec(context, step)))
            except (SpecError, NotFoundError):
                continue  # an unreadable spec is reported by doctor, not counted
        return index

    def rebuild_index_locked(self, context: str) -> None:
        """Rewrite a context's index from its spec files (``doctor``; the caller holds the lock)."""
        self._write_index(self._rebuilt_index(context, self.read_index(context)))

    # -- trash -------------------------------------------------------------------------
    def list_trash(self) -> list[TrashEntry]:
        try:
            names = os.listdir(self.trash_dir)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise os_error("list", self.trash_dir, e) from e
        entries = []
        for name in names:
            entry = _parse_trash_name(name)
            if entry is not None:
                entries.append(entry)
        return sorted(entries, key=lambda e: (e.deleted_at, e.entry_id))

    def restore(self, context: str, step: str | None = None) -> TrashEntry:
        _validate(context, step)
        candidates = [e for e in self.list_trash() if e.context == context and e.step == step]
        if not candidates:
            what = f"step '{step}' of context '{context}'" if step else f"context '{context}'"
            raise NotFoundError(f"{what} is not in the trash", hint="see 'regman trash list'")
        entry = candidates[-1]
        source = os.path.join(self.trash_dir, entry.entry_id)
        with self.locked(context), Undo().guard() as undo:
            if step is None:
                self._restore_context_locked(context, source, undo)
            else:
                self._restore_step_locked(context, step, source, undo)
        return entry

    def _restore_context_locked(self, context: str, source: str, undo: Undo) -> None:
        folder = self.context_dir(context)
        if os.path.lexists(folder):
            if os.path.exists(os.path.join(folder, CHANGING)):
                self.recover_context(context)
            if self.step_names(context):  # the spec files decide, not the index
                raise ConflictError(
                    f"context '{context}' exists and has steps",
                    hint="clear it first, or restore single steps",
                )
            # The empty context goes to the trash (not deleted), undoably.
            undo.move(folder, os.path.join(self.trash_dir, f"{time.time_ns()}{_SEP}{context}"))
        else:
            clash = find_case_clash(context, self.list_contexts())
            if clash:
                raise InvalidNameError(
                    f"context '{context}' differs only in case from existing context '{clash}'"
                )
        undo.move(source, folder)
        fsync_dir(self.contexts_dir)
        fsync_dir(self.trash_dir)
        if os.path.exists(os.path.join(folder, CHANGING)):
            self.recover_context(context)
        self._write_index(self._rebuilt_index(context, self.read_index(context)), undo)

    def _restore_step_locked(self, context: str, step: str, source: str, undo: Undo) -> None:
        from regman.specfile import load_spec_file

        summary = StepSummary.of(load_spec_file(source))  # before anything is created
        path = self.spec_path(context, step)
        if os.path.exists(path):
            raise ConflictError(
                f"step '{step}' is registered in context '{context}'",
                hint="remove it first to restore the deleted version",
            )
        clash = find_case_clash(step, self._unsorted_step_names(context))
        if clash:
            raise InvalidNameError(
                f"step '{step}' differs only in case from existing step '{clash}' "
                f"in context '{context}'"
            )
        self._create_locked(context, undo)
        self._begin_change(context, undo)
        index = self._index_for_write(context)
        undo.move(source, path)
        fsync_dir(os.path.dirname(path))
        fsync_dir(self.trash_dir)
        index.apply(summary)
        self._write_index(index, undo)

    def empty_trash(self, older_than_days: float | None = None) -> int:
        cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
        removed = 0
        for entry in self.list_trash():
            if cutoff is None or entry.deleted_at < cutoff:
                path = os.path.join(self.trash_dir, entry.entry_id)
                remove_tree(path)
                if os.path.lexists(path):  # only what is really gone is counted
                    raise StoreError(
                        f"cannot delete trash entry {path}",
                        hint="check the permissions of the store folder",
                    )
                removed += 1
        return removed

    def _expire_trash(self) -> None:
        if self.trash_days >= 0:
            self.empty_trash(self.trash_days)

    def info(self) -> dict[str, Any]:
        info = super().info()
        info["trash_entries"] = len(self.list_trash())
        return info


def _parse_trash_name(name: str) -> TrashEntry | None:
    parts = name.split(_SEP)
    if len(parts) not in (2, 3) or not parts[0].isdigit():
        return None
    step = None
    if len(parts) == 3:
        if not parts[2].endswith(".yaml"):
            return None
        step = parts[2][:-5]
    return TrashEntry(name, parts[1], step, int(parts[0]) / 1e9)
