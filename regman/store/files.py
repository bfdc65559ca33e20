"""The local-folder backend (the embedded default).

Layout (every file human-readable)::

    <root>/regman-store.json                          {"format_version": 2}
    <root>/contexts/<ctx>/head.json                   current revision: steps, history tip
    <root>/contexts/<ctx>/revisions/<n>.json          revision n (immutable)
    <root>/contexts/<ctx>/specs/<step>/<hash>.yaml    one version of a spec (immutable)
    <root>/locks/<ctx>.lock                           per-context writer lock
    <root>/cache/summary.json                         derived; any reader may rebuild it

Writers of a context are serialised by an OS file lock (filelock: flock on Unix,
released by the kernel when a holder dies) plus a thread lock, so compare-and-swap
of a head never fails between well-behaved writers of one machine; it is still
checked, as the contract requires.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import threading
import time
from collections.abc import Hashable, Iterator
from typing import Any

from regman.errors import InvalidInputError, LockTimeoutError, StoreError
from regman.names import lock_key
from regman.store.backend import MAX_CACHE_BYTES, MAX_MARKER_BYTES, Backend
from regman.store.safeio import TMP_PREFIX, Folder, os_error

MARKER = "regman-store.json"
HEAD = "head.json"
DEFAULT_LOCK_TIMEOUT = 10.0

_THREAD_LOCKS: dict[tuple[str, str], threading.RLock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock_for(root: str, key: str) -> threading.RLock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault((root, key), threading.RLock())


class FileBackend(Backend):
    """A store in a folder of the local filesystem."""

    serialises_writers = True  # a failed change may take back the objects it wrote

    def __init__(self, root: str | os.PathLike[str], *, lock_timeout: float | None = None) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.location = self.root
        self.folder = Folder(self.root)
        self._lock_timeout = lock_timeout
        self._held = threading.local()
        self._head_paths: dict[str, str] = {}

    # -- keys ------------------------------------------------------------------------------
    @staticmethod
    def _parts(key: str) -> list[str]:
        parts = key.split("/")
        if any(not p or p.startswith(".") for p in parts):
            raise StoreError(f"refusing the object key {key!r}")  # names are validated above
        return ["contexts", *parts]

    def head_path(self, context: str) -> str:
        path = self._head_paths.get(context)
        if path is None:
            path = self._head_paths[context] = os.sep.join((self.root, "contexts", context, HEAD))
        return path

    # -- objects ---------------------------------------------------------------------------
    def read_object(self, key: str, limit: int) -> bytes | None:
        return self.folder.read(self._parts(key), limit)

    def create_object(self, key: str, data: bytes) -> bool:
        return self.folder.create(self._parts(key), data)

    def delete_object(self, key: str) -> bool:
        parts = self._parts(key)
        deleted = self.folder.unlink(parts)
        # Folders the object emptied go too (up to the context's own, when it has no
        # head): a change taken back leaves the store as it was, not empty folders.
        for depth in range(len(parts) - 1, 1, -1):
            try:
                with self.folder.open_dir(parts[: depth - 1]) as dfd:
                    os.rmdir(parts[depth - 1], dir_fd=dfd)
            except OSError:
                break
        return deleted

    def where(self, key: str) -> str:
        return os.path.join(self.root, "contexts", *key.split("/"))

    def remove_leftover(self, key: str) -> bool:
        parts = key.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise StoreError(f"refusing the object key {key!r}")
        return self.folder.unlink(["contexts", *parts])

    def stray_temporaries(self) -> list[str]:
        found = []
        for folder in ([], ["cache"]):
            for name, is_dir in self.folder.listdir(folder):
                if not is_dir and name.startswith(TMP_PREFIX):
                    found.append("/".join([*folder, name]))
        return found

    def remove_stray_temporary(self, name: str) -> bool:
        parts = name.split("/")
        if not parts[-1].startswith(TMP_PREFIX) or parts[:-1] not in ([], ["cache"]):
            raise StoreError(f"refusing to delete {name!r}: not a temporary file of the store")
        return self.folder.unlink(parts)

    def list_objects(self, prefix: str) -> list[str]:
        found: list[str] = []
        self._walk(self._parts(prefix), prefix, found)
        return sorted(found)

    def _walk(self, parts: list[str], key: str, found: list[str]) -> None:
        for name, is_dir in self.folder.listdir(parts):
            if is_dir:
                self._walk([*parts, name], f"{key}/{name}", found)
            else:
                found.append(f"{key}/{name}")

    def delete_prefix(self, prefix: str) -> None:
        self.folder.remove_tree(self._parts(prefix))

    # -- heads -----------------------------------------------------------------------------
    def read_head(self, context: str, limit: int) -> tuple[bytes, str] | None:
        data = self.folder.read(["contexts", context, HEAD], limit)
        return None if data is None else (data, hashlib.sha256(data).hexdigest())

    def swap_head(self, context: str, data: bytes | None, expected: str | None) -> bool:
        with self.writer_lock(context):
            current = self.read_head(context, 1 << 62)
            if (current[1] if current else None) != expected:
                return False
            if data is None:
                self.folder.unlink(["contexts", context, HEAD])
                return True
            # Strictly increasing modification times: the (inode, mtime, size) token
            # that readers compare can never come back to an earlier value.
            try:
                previous = os.stat(self.head_path(context)).st_mtime_ns
            except OSError:
                previous = 0
            mtime = max(time.time_ns(), previous + 1)
            try:
                self.folder.write(["contexts", context, HEAD], data, mtime_ns=mtime)
            except StoreError:
                # The rename may have landed before a later step (the folder's fsync)
                # failed: put the old head back, so that a failed swap changed nothing
                # (the caller takes back the objects the new head refers to).
                self._undo_swap(context, data, current[0] if current else None, mtime)
                raise
            return True

    def _undo_swap(self, context: str, new: bytes, old: bytes | None, mtime: int) -> None:
        with contextlib.suppress(StoreError):
            now = self.read_head(context, len(new) + 1)
            if now is None or now[0] != new:
                return  # the swap did not land
            if old is None:
                self.folder.unlink(["contexts", context, HEAD])
            else:
                self.folder.write(["contexts", context, HEAD], old, mtime_ns=mtime + 1)

    def etag_of(self, data: bytes) -> str | None:
        return hashlib.sha256(data).hexdigest()

    def head_token(self, context: str) -> Hashable:
        try:
            st = os.stat(self._head_paths.get(context) or self.head_path(context))
        except (OSError, ValueError):
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def list_heads(self) -> list[str]:
        return [
            name
            for name, is_dir in self.folder.listdir(["contexts"])
            if is_dir and not name.startswith(".")
        ]

    def list_object_contexts(self) -> list[str]:
        return self.list_heads()  # a context's folder holds its head and its objects

    # -- caches and marker -------------------------------------------------------------
    def read_cache(self, name: str, limit: int = MAX_CACHE_BYTES) -> bytes | None:
        try:
            return self.folder.read(["cache", name], limit)
        except StoreError:
            return None

    def write_cache(self, name: str, data: bytes) -> None:
        if not os.path.isdir(self.root):
            return  # a read never creates a store
        with contextlib.suppress(StoreError):
            self.folder.write(["cache", name], data, durable=False)

    def read_marker(self) -> bytes | None:
        return self.folder.read([MARKER], MAX_MARKER_BYTES)

    def write_marker(self, data: bytes) -> None:
        self.folder.write([MARKER], data)

    def exists(self) -> bool:
        return os.path.isdir(self.root)

    # -- locks -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer_lock(self, context: str) -> Iterator[None]:
        with self._lock(lock_key(context), f"context '{context}'"):
            yield

    def store_lock(self) -> contextlib.AbstractContextManager[None]:
        return self._lock(".store", "the store")

    @contextlib.contextmanager
    def _lock(self, key: str, what: str) -> Iterator[None]:
        """A thread lock, then an OS file lock; re-entrant within one thread."""
        held: dict[str, int] = self._held.__dict__.setdefault("counts", {})
        if held.get(key):
            held[key] += 1
            try:
                yield
            finally:
                held[key] -= 1
            return
        thread_lock = _thread_lock_for(self.root, key)
        timeout = self.lock_timeout
        deadline = time.monotonic() + timeout
        if not thread_lock.acquire(timeout=max(timeout, 0)):
            raise self._timeout(what)
        try:
            lock = self._file_lock(key)
            _acquire_with_backoff(lock, deadline, lambda: self._timeout(what))
            held[key] = 1
            try:
                yield
            finally:
                held.pop(key, None)
                lock.release()
        finally:
            thread_lock.release()

    def _file_lock(self, key: str) -> Any:
        import filelock  # the write path only: it costs start-up time

        path = os.path.join(self.root, "locks", f"{key}.lock")
        try:
            with self.folder.open_dir(["locks"], create=True):
                pass
            st = os.lstat(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise os_error("lock", path, e) from e
        else:
            if not stat.S_ISREG(st.st_mode):
                raise StoreError(
                    f"cannot lock {path}: it is not a regular file",
                    hint="remove it; regman recreates it",
                )
        return filelock.FileLock(
            path,
            thread_local=False,
            is_singleton=False,
            preserve_lock_file=True,  # unlinking a lock file races with its next user
            fallback_to_soft=False,  # a soft lock would survive a killed holder
        )

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

    def _timeout(self, what: str) -> LockTimeoutError:
        return LockTimeoutError(
            f"{what} is locked by another writer (waited {self.lock_timeout:g} s)",
            hint="try again, or raise REGMAN_LOCK_TIMEOUT",
        )

    # -- facts -----------------------------------------------------------------------------
    def warnings(self) -> list[str]:
        try:
            st = os.stat(self.root)
        except OSError:
            return []
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            return [
                f"the store folder {self.root} is writable by other users, who could change "
                f"its specs; run 'chmod go-w {self.root}'"
            ]
        return []


def _acquire_with_backoff(lock: object, deadline: float, timeout_error: object) -> None:
    """Try the lock, sleeping 0.5 ms, 1 ms, ... up to 25 ms (with jitter) between tries.

    A fixed short poll keeps a lone waiter quick but lets dozens of waiters burn
    both cores on one context; backing off keeps the first retries fast and the crowd quiet.
    """
    import random

    import filelock

    delay = 0.0005
    while True:
        try:
            lock.acquire(blocking=False)  # type: ignore[attr-defined]
            return
        except filelock.Timeout:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise timeout_error() from None  # type: ignore[operator]
            time.sleep(min(delay * (0.5 + random.random()), remaining))
            delay = min(delay * 2, 0.025)
        except OSError as e:
            raise os_error("lock", lock.lock_file, e) from e  # type: ignore[attr-defined]
