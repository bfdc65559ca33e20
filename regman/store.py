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

import json
import os
import threading
import time
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from regman.errors import (
    ConflictError,
    ContextNotFoundError,
    InvalidNameError,
    LockTimeoutError,
    NotFoundError,
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
_SEP = "@"  # cannot occur in a valid name, so trash entry names parse unambiguously


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
class StepSummary:
    """What the index keeps per step: enough for stats without parsing YAML."""

    step_type: str
    node_type: str
    dependencies: int
    required_dependencies: int
    outputs: int
    digest: str

    @classmethod
    def of(cls, spec: StepSpecification, digest: str) -> StepSummary:
        return cls(
            step_type=spec.step_type,
            node_type=spec.node_type.value,
            dependencies=len(spec.dependencies),
            required_dependencies=sum(1 for d in spec.dependencies.values() if d.required),
            outputs=len(spec.outputs),
            digest=digest,
        )


@dataclass
class ContextIndex:
    name: str
    created_at: str
    updated_at: str
    steps: dict[str, StepSummary] = field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        """The per-context statistics (the seed's keys first)."""
        node_counts = {"source": 0, "internal": 0, "sink": 0, "singular": 0}
        deps = required = outs = 0
        for s in self.steps.values():
            node_counts[s.node_type] = node_counts.get(s.node_type, 0) + 1
            deps += s.dependencies
            required += s.required_dependencies
            outs += s.outputs
        return {
            "step_count": len(self.steps),
            "step_type_count": len({s.step_type for s in self.steps.values()}),
            "source_count": node_counts["source"],
            "internal_count": node_counts["internal"],
            "sink_count": node_counts["sink"],
            "singular_count": node_counts["singular"],
            "dependency_count": deps,
            "required_dependency_count": required,
            "output_count": outs,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def to_json(self) -> bytes:
        doc = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "steps": {name: vars(s) for name, s in sorted(self.steps.items())},
        }
        return (json.dumps(doc, indent=1) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> ContextIndex:
        try:
            doc = json.loads(data)
            version = doc.get("format_version", 1)
            if not isinstance(version, int) or version > FORMAT_VERSION:
                raise StoreVersionError(
                    f"{where} was written by a newer regman (format {version}, this one reads "
                    f"{FORMAT_VERSION})",
                    hint="upgrade regman",
                )
            steps = {k: StepSummary(**v) for k, v in doc["steps"].items()}
            return cls(doc["name"], doc["created_at"], doc["updated_at"], steps)
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
        when = datetime.fromtimestamp(self.deleted_at, timezone.utc)
        return {
            "id": self.entry_id,
            "kind": self.kind,
            "context": self.context,
            "step": self.step,
            "deleted_at": when.isoformat(timespec="seconds").replace("+00:00", "Z"),
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

    def load_specs(self, context: str) -> tuple[Hashable, dict[str, StepSpecification]]:
        """Every spec of the context, with the token they were read under."""
        raise NotImplementedError

    def load_spec(self, context: str, step: str) -> StepSpecification:
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
        index = self.read_index(context)
        if index is None:
            clash = find_case_clash(context, self.list_contexts())
            if clash:
                raise InvalidNameError(
                    f"context '{context}' differs only in case from existing context '{clash}'"
                )
            return "created"
        return _check_put(index, context, step, _digest(spec.to_yaml()), replace)

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


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


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
        self._contexts: dict[str, tuple[ContextIndex, dict[str, StepSpecification]]] = {}
        self._tokens: dict[str, int] = {}
        self._counter = 0

    def _touch(self, context: str) -> None:
        self._counter += 1
        self._tokens[context] = self._counter

    def list_contexts(self) -> list[str]:
        with self._lock:
            return sorted(self._contexts)

    def context_exists(self, context: str) -> bool:
        return context in self._contexts

    def create_context(self, context: str) -> bool:
        _validate(context)
        with self._lock:
            if context in self._contexts:
                return False
            clash = find_case_clash(context, self._contexts)
            if clash:
                raise InvalidNameError(
                    f"context '{context}' differs only in case from existing '{clash}'"
                )
            stamp = now_iso()
            self._contexts[context] = (ContextIndex(context, stamp, stamp), {})
            self._touch(context)
            return True

    def delete_context(self, context: str, *, purge: bool = False) -> bool:
        _validate(context)
        with self._lock:
            if self._contexts.pop(context, None) is None:
                return False
            self._touch(context)
            return True

    def read_index(self, context: str) -> ContextIndex | None:
        entry = self._contexts.get(context)
        return entry[0] if entry else None

    def token(self, context: str) -> Hashable:
        return self._tokens.get(context)

    def load_specs(self, context: str) -> tuple[Hashable, dict[str, StepSpecification]]:
        with self._lock:
            entry = self._contexts.get(context)
            return self._tokens.get(context), dict(entry[1]) if entry else {}

    def load_spec(self, context: str, step: str) -> StepSpecification:
        entry = self._contexts.get(context)
        if entry is None:
            raise ContextNotFoundError(context)
        if step not in entry[1]:
            raise StepNotFoundError(context, step)
        return entry[1][step]

    def put_spec(
        self, context: str, step: str, spec: StepSpecification, *, replace: bool = True
    ) -> str:
        _validate(context, step)
        text = spec.to_yaml()
        with self._lock:
            if context not in self._contexts:
                self.create_context(context)
            index, specs = self._contexts[context]
            outcome = _check_put(index, context, step, _digest(text), replace)
            if outcome == "unchanged":
                return outcome
            specs[step] = spec
            index.steps[step] = StepSummary.of(spec, _digest(text))
            index.updated_at = now_iso()
            self._touch(context)
            return outcome

    def delete_spec(self, context: str, step: str, *, purge: bool = False) -> bool:
        _validate(context, step)
        with self._lock:
            entry = self._contexts.get(context)
            if entry is None or step not in entry[1]:
                return False
            del entry[1][step]
            del entry[0].steps[step]
            entry[0].updated_at = now_iso()
            self._touch(context)
            return True


def _check_put(index: ContextIndex, context: str, step: str, digest: str, replace: bool) -> str:
    """Decide created/updated/unchanged, refusing --no-replace and case clashes."""
    current = index.steps.get(step)
    if current is None:
        clash = find_case_clash(step, index.steps)
        if clash:
            raise InvalidNameError(
                f"step '{step}' differs only in case from existing step '{clash}' "
                f"in context '{context}'"
            )
        return "created"
    if current.digest == digest:
        return "unchanged"
    if not replace:
        raise ConflictError(
            f"step '{step}' is already registered in context '{context}'",
            hint="drop --no-replace to overwrite it",
        )
    return "updated"


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


def atomic_write(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file, whole."""
    folder = os.path.dirname(path)
    tmp = os.path.join(folder, f"{TMP_PREFIX}{os.getpid()}-{threading.get_ident()}-"
                               f"{time.monotonic_ns()}")
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
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        import errno

        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise _os_error("sync folder", folder, e) from e
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


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
            lock_timeout if lock_timeout is not None
            else float(env_timeout) if env_timeout else DEFAULT_LOCK_TIMEOUT
        )
        self.trash_days = DEFAULT_TRASH_DAYS if trash_days is None else trash_days
        self._checked_version = False

    # -- paths -------------------------------------------------------------------------
    def context_dir(self, context: str) -> str:
        return os.path.join(self.contexts_dir, context)

    def index_path(self, context: str) -> str:
        return os.path.join(self.contexts_dir, context, INDEX)

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
                poll_interval=0.002,
            )
            try:
                lock.acquire(timeout=max(deadline - time.monotonic(), 0))
            except filelock.Timeout:
                raise self._timeout(context) from None
            except OSError as e:
                raise _os_error("lock", lock.lock_file, e) from e
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
            return sorted(
                e.name for e in entries
                if not e.name.startswith(".") and e.is_dir() and os.path.exists(
                    os.path.join(e.path, INDEX)
                )
            )

    def context_exists(self, context: str) -> bool:
        return os.path.exists(self.index_path(context))

    def read_index(self, context: str) -> ContextIndex | None:
        path = self.index_path(context)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise _os_error("read", path, e) from e
        try:
            return ContextIndex.from_json(data, path)
        except _DamagedIndex:
            return self._rebuilt_index(context)

    def token(self, context: str) -> Hashable:
        try:
            st = os.stat(self.index_path(context))
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

    def load_spec(self, context: str, step: str) -> StepSpecification:
        from regman.spec import load_spec_file

        path = self.spec_path(context, step)
        if not os.path.exists(path):
            if not self.context_exists(context):
                raise ContextNotFoundError(context)
            raise StepNotFoundError(context, step)
        return load_spec_file(path)

    def load_specs(self, context: str) -> tuple[Hashable, dict[str, StepSpecification]]:
        from regman.errors import SpecError
        from regman.spec import load_spec_file

        # Retry until the token is the same before and after: then no writer
        # changed the context while we read it.
        for _ in range(50):
            before = self.token(context)
            specs = {}
            for step in self.step_names(context):
                try:
                    specs[step] = load_spec_file(self.spec_path(context, step))
                except SpecError as e:
                    if e.problem == "no such file":
                        continue  # removed while we were reading; the token will say so
                    raise
            if self.token(context) == before:
                return before, specs
        return before, specs

    # -- writing -----------------------------------------------------------------------
    def create_context(self, context: str) -> bool:
        _validate(context)
        with self.locked(context):
            return self._create_locked(context)

    def _create_locked(self, context: str) -> bool:
        if self.context_exists(context):
            return False
        clash = find_case_clash(context, self.list_contexts())
        if clash:
            raise InvalidNameError(
                f"context '{context}' differs only in case from existing context '{clash}'",
                hint=f"use '{clash}'",
            )
        folder = self.context_dir(context)
        try:
            os.makedirs(os.path.join(folder, "specs"), exist_ok=True)
        except OSError as e:
            raise _os_error("create", folder, e) from e
        fsync_dir(self.contexts_dir)
        stamp = now_iso()
        atomic_write(self.index_path(context), ContextIndex(context, stamp, stamp).to_json())
        return True

    def put_spec(
        self, context: str, step: str, spec: StepSpecification, *, replace: bool = True
    ) -> str:
        _validate(context, step)
        text = spec.to_yaml()
        digest = _digest(text)
        with self.locked(context):
            self._create_locked(context)
            index = self._index_for_write(context)
            outcome = _check_put(index, context, step, digest, replace)
            path = self.spec_path(context, step)
            if outcome == "unchanged" and os.path.exists(path):
                return outcome
            atomic_write(path, text.encode())
            index.steps[step] = StepSummary.of(spec, digest)
            index.updated_at = now_iso()
            atomic_write(self.index_path(context), index.to_json())
            return "updated" if outcome == "unchanged" else outcome

    def delete_spec(self, context: str, step: str, *, purge: bool = False) -> bool:
        _validate(context, step)
        with self.locked(context):
            path = self.spec_path(context, step)
            if not os.path.exists(path):
                return False
            index = self._index_for_write(context)
            try:
                if purge:
                    os.unlink(path)
                else:
                    entry = f"{time.time_ns()}{_SEP}{context}{_SEP}{step}.yaml"
                    os.replace(path, os.path.join(self.trash_dir, entry))
                    fsync_dir(self.trash_dir)
            except OSError as e:
                raise _os_error("remove", path, e) from e
            fsync_dir(os.path.dirname(path))
            index.steps.pop(step, None)
            index.updated_at = now_iso()
            atomic_write(self.index_path(context), index.to_json())
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
            try:
                os.replace(folder, target)  # the commit point: atomic on one filesystem
            except OSError as e:
                raise _os_error("remove", folder, e) from e
            fsync_dir(self.contexts_dir)
            fsync_dir(self.trash_dir)
            if purge:
                _remove_tree(target)
        self._expire_trash()
        return True

    def _index_for_write(self, context: str) -> ContextIndex:
        index = self.read_index(context)
        if index is None:
            return self._rebuilt_index(context)
        return index

    def _rebuilt_index(self, context: str) -> ContextIndex:
        """Derive the index from the spec files (after a crash or by hand damage)."""
        from regman.spec import load_spec_file

        steps = {}
        for step in self.step_names(context):
            path = self.spec_path(context, step)
            try:
                with open(path, "rb") as fh:
                    digest = _digest(fh.read().decode("utf-8", "replace"))
                steps[step] = StepSummary.of(load_spec_file(path), digest)
            except (OSError, ValueError):
                continue  # an unreadable spec is reported by doctor, not summarised
        stamp = now_iso()
        return ContextIndex(context, stamp, stamp, steps)

    def rebuild_index(self, context: str) -> None:
        with self.locked(context):
            atomic_write(self.index_path(context), self._rebuilt_index(context).to_json())

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
                if index is not None and index.steps:
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
                index = self._index_for_write(context)
                index.updated_at = now_iso()
                atomic_write(self.index_path(context), index.to_json())
            else:
                self._create_locked(context)
                path = self.spec_path(context, step)
                if os.path.exists(path):
                    raise ConflictError(
                        f"step '{step}' is registered in context '{context}'",
                        hint="remove it first to restore the deleted version",
                    )
                from regman.spec import load_spec_file

                spec = load_spec_file(source)
                with open(source, "rb") as fh:
                    digest = _digest(fh.read().decode())
                index = self._index_for_write(context)
                try:
                    os.replace(source, path)
                except OSError as e:
                    raise _os_error("restore", path, e) from e
                fsync_dir(os.path.dirname(path))
                index.steps[step] = StepSummary.of(spec, digest)
                index.updated_at = now_iso()
                atomic_write(self.index_path(context), index.to_json())
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
