"""Where and how the bytes live: layout, atomic writes, locks, index, trash, format version.

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
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regman.errors import (
    ConflictError,
    ContextNotFoundError,
    InvalidNameError,
    LockTimeoutError,
    NotFoundError,
    RegmanError,
    StepNotFoundError,
    StoreError,
    StoreVersionError,
)
from regman.names import find_case_clash, lock_key, validate_name

if TYPE_CHECKING:
    from regman.spec import StepSpecification

FORMAT_VERSION = 1
MEMORY = ":memory:"
DEFAULT_LOCK_TIMEOUT = 10.0
DEFAULT_TRASH_DAYS = 7.0
MARKER = "regman-store.json"
INDEX = "context.json"
TMP_PREFIX = ".tmp-"
STATS_CACHE = "stats-cache.json"  # derived; any reader may rebuild it
CHANGING = ".changing"  # in a context folder while a change is half done
_SEP = "@"  # cannot occur in a valid name, so trash entry names parse unambiguously


def iso_utc(seconds: float, *, milliseconds: bool = True) -> str:
    """``2026-11-28T01:23:17.989Z`` (time.strftime: datetime costs start-up time)."""
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{int(seconds * 1000) % 1000:03d}Z" if milliseconds else f"{text}Z"


def now_iso() -> str:
    return iso_utc(time.time())


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
            return cls(**doc)
        except StoreVersionError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise _DamagedIndex(where) from e


class _DamagedIndex(Exception):
    """An index file that does not parse; writers rebuild it from the spec files."""


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
        return self._decide(context, step, spec.to_yaml(), replace)

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
        text = spec.to_yaml()
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
_THREAD_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(root: str, key: str) -> threading.Lock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault((root, key), threading.Lock())


def _os_error(action: str, path: str, e: OSError) -> StoreError:
    reason = e.strerror or str(e)
    return StoreError(f"cannot {action} {path}: {reason}", hint=_os_hint(e))


def _os_hint(e: OSError) -> str | None:
    import errno

    return {
        errno.ENOSPC: "free some disk space and try again",
        errno.EDQUOT: "free some disk space and try again",
        errno.EACCES: "check the permissions of the store folder",
        errno.EPERM: "check the permissions of the store folder",
        errno.EROFS: "the store is on a read-only filesystem; use --store or REGMAN_HOME",
    }.get(e.errno or 0)


def atomic_write(path: str, data: bytes, *, mtime_ns: int | None = None) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file, whole.

    ``mtime_ns`` stamps the new file (indexes get strictly increasing stamps, so a
    reader's change token never repeats even if an inode number is reused).
    """
    folder = os.path.dirname(path)
    tmp = _temp_name(folder)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as e:
        raise _os_error("write", path, e) from e
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if mtime_ns is not None:
            os.utime(tmp, ns=(mtime_ns, mtime_ns))
        os.replace(tmp, path)
    except OSError as e:
        _unlink_quietly(tmp)
        raise _os_error("write", path, e) from e
    except BaseException:
        _unlink_quietly(tmp)
        raise
    fsync_dir(folder)


def fsync_dir(folder: str) -> None:
    """Make a rename in ``folder`` durable; filesystems that cannot do it are tolerated."""
    if os.name == "nt":
        return
    import errno

    unsupported = (errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EISDIR)
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError as e:
        if e.errno in unsupported:
            return
        raise _os_error("sync folder", folder, e) from e
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in unsupported:
            raise _os_error("sync folder", folder, e) from e
    finally:
        os.close(fd)


def _read_small_file(path: str) -> bytes:
    """Read a file of a few hundred bytes with raw calls (stats reads one per context)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks: list[bytes] = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _acquire_with_backoff(
    lock: Any, deadline: float, timeout_error: Callable[[], StoreError]
) -> None:
    """Try the lock, sleeping 0.5 ms, 1 ms, ... up to 25 ms (with jitter) between tries.

    A fixed short poll keeps a lone waiter quick but lets dozens of waiters burn
    both cores on one context (seen: 64 writers at 100 ms per register); backing off
    keeps the first retries fast and the crowd quiet.
    """
    import random

    import filelock

    delay = 0.0005
    while True:
        try:
            lock.acquire(blocking=False)
            return
        except filelock.Timeout:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise timeout_error() from None
            time.sleep(min(delay * (0.5 + random.random()), remaining))
            delay = min(delay * 2, 0.025)
        except OSError as e:
            raise _os_error("lock", lock.lock_file, e) from e


def _temp_name(folder: str, suffix: str = "") -> str:
    return os.path.join(
        folder, f"{TMP_PREFIX}{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}{suffix}"
    )


class _Undo:
    """The changes of one locked operation, and how to take each back.

    A store operation changes several files (a spec, then the index; a context
    folder, then its index). If any step fails -- including the folder fsync after
    a rename, when the new file is already in place -- the steps already done are
    undone in reverse, so an operation that raises has changed nothing visible and
    a caller told "failed" can trust it. Each replaced file is first kept as a hard
    link (which needs no data blocks, so undoing works on a full disk) or, where
    links are unsupported, as bytes. ``done()`` drops the kept copies.
    """

    def __init__(self) -> None:
        self._steps: list[Callable[[], object]] = []
        self._kept: list[str] = []

    def add(self, step: Callable[[], object]) -> None:
        self._steps.append(step)

    def write(self, path: str, data: bytes, *, mtime_ns: int | None = None) -> None:
        """atomic_write, undoable."""
        kept = self._keep(path)
        if kept is None:
            self.add(lambda: os.unlink(path))
        elif isinstance(kept, str):
            self.add(lambda: os.replace(kept, path))
        else:
            self.add(lambda: atomic_write(path, kept))
        atomic_write(path, data, mtime_ns=mtime_ns)

    def move(self, source: str, target: str) -> None:
        """os.replace, undoable (``target`` must not exist)."""
        try:
            os.replace(source, target)
        except OSError as e:
            raise _os_error("move", source, e) from e
        self.add(lambda: os.replace(target, source))

    def move_aside(self, path: str) -> None:
        """Remove ``path`` so that it can still be put back until ``done()``."""
        aside = _temp_name(os.path.dirname(path), ".old")
        self.move(path, aside)
        self._kept.append(aside)

    def _keep(self, path: str) -> str | bytes | None:
        import errno

        link = _temp_name(os.path.dirname(path), ".old")
        try:
            os.link(path, link)
        except FileNotFoundError:
            return None
        except OSError as e:
            unsupported = (
                errno.EPERM,
                errno.ENOTSUP,
                errno.EOPNOTSUPP,
                errno.EMLINK,
                errno.EXDEV,
                errno.ENOSYS,
            )
            if e.errno not in unsupported:
                raise _os_error("write", path, e) from e
            try:
                with open(path, "rb") as fh:
                    return fh.read()
            except FileNotFoundError:
                return None
            except OSError as e2:
                raise _os_error("read", path, e2) from e2
        self._kept.append(link)
        return link

    def undo(self) -> bool:
        """Take back every step done, newest first; False when one could not be."""
        complete = True
        for step in reversed(self._steps):
            try:
                step()
            except FileNotFoundError:
                pass
            except (OSError, StoreError):
                complete = False
        self.done()
        return complete

    def done(self) -> None:
        for kept in self._kept:
            _unlink_quietly(kept)
        self._steps.clear()
        self._kept.clear()

    @contextmanager
    def guard(self) -> Iterator[_Undo]:
        """Undo on any exception; on success drop the kept copies."""
        try:
            yield self
        except BaseException as e:
            if not self.undo() and isinstance(e, RegmanError):
                e.hint = "the change may be partly applied; run 'regman doctor --repair'"
            raise
        self.done()


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
        env_timeout = os.environ.get("REGMAN_LOCK_TIMEOUT")
        self.lock_timeout = (
            lock_timeout
            if lock_timeout is not None
            else float(env_timeout)
            if env_timeout
            else DEFAULT_LOCK_TIMEOUT
        )
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
            raise _os_error("read", os.path.join(self.root, MARKER), e) from e
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
        if os.path.exists(marker) and os.path.isdir(self.locks_dir):
            return
        try:
            for folder in (self.root, self.contexts_dir, self.locks_dir, self.trash_dir):
                os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise _os_error("create the store at", self.root, e) from e
        if not os.path.exists(marker):
            atomic_write(marker, (json.dumps({"format_version": FORMAT_VERSION}) + "\n").encode())

    # -- locking -----------------------------------------------------------------------
    @contextmanager
    def locked(self, context: str) -> Iterator[None]:
        """Serialise writers of one context across threads and processes."""
        self._initialise()
        key = lock_key(context)
        thread_lock = _thread_lock(self.root, key)
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
            _acquire_with_backoff(lock, deadline, lambda: self._timeout(context))
            try:
                yield
            finally:
                lock.release()
        finally:
            thread_lock.release()

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
            raise _os_error("list", self.contexts_dir, e) from e
        with entries:
            # Context folders appear complete (built aside, renamed in): no per-folder stat.
            return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())

    def context_exists(self, context: str) -> bool:
        try:
            os.stat(self._index_paths.get(context) or self.index_path(context))
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
            raise _os_error("list", self.contexts_dir, e) from e
        cached = self._read_stats_cache()
        fresh: dict[str, list[Any]] = {}
        stale = False
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
                stale = True
        if stale or len(fresh) != len(cached):
            self._write_stats_cache(fresh)
        return {name: dict(zip(STAT_KEYS, entry[3:], strict=True)) for name, entry in fresh.items()}

    def _read_stats_cache(self) -> dict[str, list[Any]]:
        try:
            doc = json.loads(_read_small_file(os.path.join(self.root, STATS_CACHE)))
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
            atomic_write(os.path.join(self.root, STATS_CACHE), data.encode())

    def read_index(self, context: str) -> ContextIndex | None:
        path = self.index_path(context)
        try:
            data = _read_small_file(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise _os_error("read", path, e) from e
        try:
            return ContextIndex.from_json(data, path)
        except _DamagedIndex:
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
            raise _os_error("list", folder, e) from e
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
            raise _os_error("read", path, e) from e

    def spec_signatures(self, context: str) -> dict[str, Hashable]:
        folder = os.path.join(self.contexts_dir, context, "specs")
        try:
            entries = os.scandir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return {}
        except OSError as e:
            raise _os_error("list", folder, e) from e
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
        from regman.spec import load_spec_file

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

    def _create_locked(self, context: str, undo: _Undo | None = None) -> bool:
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
        with _Undo().guard() if undo is None else contextlib.nullcontext(undo) as undo:
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
                _remove_tree(building)
                if isinstance(e, StoreError):
                    raise
                raise _os_error("create", folder, e) from e
            undo.add(lambda: _remove_tree(folder))
            fsync_dir(self.contexts_dir)
        return True

    def put_spec(
        self, context: str, step: str, spec: StepSpecification, *, replace: bool = True
    ) -> str:
        _validate(context, step)
        text = spec.to_yaml()
        with self.locked(context), _Undo().guard() as undo:
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
        with self.locked(context), _Undo().guard() as undo:
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
            with _Undo().guard() as undo:
                undo.move(folder, target)  # the commit point: atomic on one filesystem
                fsync_dir(self.contexts_dir)
                fsync_dir(self.trash_dir)
            if purge:
                _remove_tree(target)
        self._expire_trash()
        return True

    def _summary_of_stored(self, context: str, step: str) -> StepSummary | None:
        """The stored spec's contribution, or None when it cannot be parsed."""
        from regman.errors import SpecError

        try:
            return StepSummary.of(self.load_spec(context, step))
        except (SpecError, NotFoundError):
            return None

    def _write_index(self, index: ContextIndex, undo: _Undo | None = None) -> None:
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
        _unlink_quietly(os.path.join(self.context_dir(index.name), CHANGING))

    def _begin_change(self, context: str, undo: _Undo | None = None) -> None:
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
            raise _os_error("write", marker, e) from e
        if undo is not None:  # a change that failed and was undone is not half done
            undo.add(lambda: _unlink_quietly(marker))

    def recover_context(self, context: str) -> None:
        """After an interrupted change (caller holds the lock): index rebuilt, leftovers gone."""
        for folder in (self.context_dir(context), os.path.join(self.context_dir(context), "specs")):
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                if name.startswith(TMP_PREFIX):
                    _unlink_quietly(os.path.join(folder, name))
        self._write_index(self._rebuilt_index(context, self.read_index(context)))

    def _index_for_write(self, context: str) -> ContextIndex:
        index = self.read_index(context)
        if index is None:
            return self._rebuilt_index(context)
        return index

    def _rebuilt_index(self, context: str, previous: ContextIndex | None = None) -> ContextIndex:
        """Derive the index from the spec files (after a crash or damage by hand)."""
        from regman.errors import SpecError

        stamp = now_iso()
        index = ContextIndex(context, previous.created_at if previous else stamp, stamp)
        for step in self.step_names(context):
            try:
                index.apply(StepSummary.of(self.load_spec(context, step)))
            except (SpecError, NotFoundError):
                continue  # an unreadable spec is reported by doctor, not counted
        return index

    def rebuild_index(self, context: str) -> None:
        with self.locked(context):
            previous = self.read_index(context)
            self._write_index(self._rebuilt_index(context, previous))

    # -- trash -------------------------------------------------------------------------
    def list_trash(self) -> list[TrashEntry]:
        try:
            names = os.listdir(self.trash_dir)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise _os_error("list", self.trash_dir, e) from e
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
        with self.locked(context):
            if step is None:
                index = self.read_index(context)
                if index is not None and index.step_count:
                    raise ConflictError(
                        f"context '{context}' exists and has steps",
                        hint="clear it first, or restore single steps",
                    )
                folder = self.context_dir(context)
                if index is not None:
                    _remove_tree(folder)
                try:
                    os.replace(source, folder)
                except OSError as e:
                    raise _os_error("restore", folder, e) from e
                fsync_dir(self.contexts_dir)
                index = self._rebuilt_index(context, self.read_index(context))
            else:
                self._create_locked(context)
                path = self.spec_path(context, step)
                if os.path.exists(path):
                    raise ConflictError(
                        f"step '{step}' is registered in context '{context}'",
                        hint="remove it first to restore the deleted version",
                    )
                from regman.spec import load_spec_file

                summary = StepSummary.of(load_spec_file(source))
                self._begin_change(context)
                index = self._index_for_write(context)
                try:
                    os.replace(source, path)
                except OSError as e:
                    raise _os_error("restore", path, e) from e
                fsync_dir(os.path.dirname(path))
                index.apply(summary)
            self._write_index(index)
        return entry

    def empty_trash(self, older_than_days: float | None = None) -> int:
        cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
        removed = 0
        for entry in self.list_trash():
            if cutoff is None or entry.deleted_at < cutoff:
                _remove_tree(os.path.join(self.trash_dir, entry.entry_id))
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


def _remove_tree(path: str) -> None:
    import shutil

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        _unlink_quietly(path)
