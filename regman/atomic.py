"""Atomic file replacement, and undoing a store operation's steps when one fails.

Every file regman writes is replaced whole (temporary file in the same folder,
fsync, ``os.replace``, folder fsync), so a crash leaves the old or the new
version. ``Undo`` records the steps of one locked operation so that an
operation that raises has changed nothing visible.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from regman.errors import RegmanError, StoreError

TMP_PREFIX = ".tmp-"


def os_error(action: str, path: str, e: OSError) -> StoreError:
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


def atomic_write(
    path: str, data: bytes, *, mtime_ns: int | None = None, durable: bool = True
) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file, whole.

    ``mtime_ns`` stamps the new file (indexes get strictly increasing stamps, so a
    reader's change token never repeats even if an inode number is reused).
    ``durable=False`` skips the fsyncs, for derived files a power loss may lose (the
    replacement is still atomic).
    """
    folder = os.path.dirname(path)
    tmp = temp_name(folder)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as e:
        raise os_error("write", path, e) from e
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if mtime_ns is not None:
            os.utime(tmp, ns=(mtime_ns, mtime_ns))
        os.replace(tmp, path)
    except OSError as e:
        unlink_quietly(tmp)
        raise os_error("write", path, e) from e
    except BaseException:
        unlink_quietly(tmp)
        raise
    if durable:
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
        raise os_error("sync folder", folder, e) from e
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in unsupported:
            raise os_error("sync folder", folder, e) from e
    finally:
        os.close(fd)


def read_small_file(path: str) -> bytes:
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


def unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def temp_name(folder: str, suffix: str = "") -> str:
    return os.path.join(
        folder, f"{TMP_PREFIX}{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}{suffix}"
    )


class Undo:
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
            raise os_error("move", source, e) from e
        self.add(lambda: os.replace(target, source))

    def move_aside(self, path: str) -> None:
        """Remove ``path`` so that it can still be put back until ``done()``."""
        aside = temp_name(os.path.dirname(path), ".old")
        self.move(path, aside)
        self._kept.append(aside)

    def _keep(self, path: str) -> str | bytes | None:
        import errno

        link = temp_name(os.path.dirname(path), ".old")
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
                raise os_error("write", path, e) from e
            try:
                with open(path, "rb") as fh:
                    return fh.read()
            except FileNotFoundError:
                return None
            except OSError as e2:
                raise os_error("read", path, e2) from e2
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
            unlink_quietly(kept)
        self._steps.clear()
        self._kept.clear()

    @contextmanager
    def guard(self) -> Iterator[Undo]:
        """Undo on any exception; on success drop the kept copies."""
        try:
            yield self
        except BaseException as e:
            if not self.undo() and isinstance(e, RegmanError):
                e.hint = "the change may be partly applied; run 'regman doctor --repair'"
            raise
        self.done()


def remove_tree(path: str) -> None:
    import shutil

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        unlink_quietly(path)
