"""File operations confined to one folder: no symlink is followed, only regular files are read.

Every path below the store's root is walked one component at a time with
``O_NOFOLLOW`` relative to the parent folder's descriptor, so a symlink planted
anywhere inside the store (a context folder, ``specs/``, a spec file) is refused
instead of followed out of it; reads open with ``O_NONBLOCK`` and check ``fstat``
so a FIFO or a device is refused instead of hanging or streaming forever, and
every read is capped. Writes replace files atomically (temporary file in the same
folder, fsync, rename, folder fsync), so a crash leaves the old or the new file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
import time
from collections.abc import Iterator, Sequence

from regman.errors import StoreError

TMP_PREFIX = ".tmp-"
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def os_error(action: str, path: str, e: OSError) -> StoreError:
    """An OSError as a one-line StoreError with a hint for the errors users can fix."""
    reason = e.strerror or str(e)
    if e.errno == errno.ELOOP:
        reason = "it is a symbolic link (regman never follows links inside its store)"
    return StoreError(f"cannot {action} {path}: {reason}", hint=_os_hint(e))


def _os_hint(e: OSError) -> str | None:
    return {
        errno.ENOSPC: "free some disk space and try again",
        errno.EDQUOT: "free some disk space and try again",
        errno.EACCES: "check the permissions of the store folder",
        errno.EPERM: "check the permissions of the store folder",
        errno.EROFS: "the store is on a read-only filesystem; use --store or REGMAN_HOME",
        errno.ELOOP: "remove the link; run 'regman doctor'",
        errno.ENOTDIR: "run 'regman doctor'",
    }.get(e.errno or 0)


def temp_name(suffix: str = "") -> str:
    return f"{TMP_PREFIX}{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}{suffix}"


class Folder:
    """A folder of the store, every access relative to it and never through a link."""

    def __init__(self, root: str) -> None:
        self.root = root

    def path(self, parts: Sequence[str]) -> str:
        return os.path.join(self.root, *parts)

    @contextlib.contextmanager
    def open_dir(
        self, parts: Sequence[str], *, create: bool = False, made: list[int] | None = None
    ) -> Iterator[int]:
        """A descriptor of the folder ``parts``; FileNotFoundError when absent (and not created).

        ``made`` collects the index in ``parts`` of each folder this call created.
        """
        try:
            fd = os.open(self.root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except FileNotFoundError:
            if not create:
                raise
            os.makedirs(self.root, exist_ok=True)
            fd = os.open(self.root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            for depth, part in enumerate(parts):
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                        if made is not None:
                            made.append(depth)
                    except FileExistsError:
                        pass
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def read(self, parts: Sequence[str], limit: int) -> bytes | None:
        """The bytes of a regular file, None when it (or its folder) is missing.

        Refuses links, FIFOs, devices and files over ``limit`` bytes with a StoreError.
        """
        where = self.path(parts)
        try:
            with self.open_dir(parts[:-1]) as dfd:
                fd = os.open(parts[-1], _READ_FLAGS, dir_fd=dfd)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise os_error("read", where, e) from e
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise StoreError(
                    f"cannot read {where}: it is not a regular file",
                    hint="remove it; run 'regman doctor'",
                )
            if st.st_size > limit:
                raise StoreError(
                    f"cannot read {where}: it is {st.st_size} bytes, more than the "
                    f"{limit} a file of this kind may have",
                    hint="run 'regman doctor'",
                )
            chunks: list[bytes] = []
            size = 0
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > limit:  # grew while being read
                    raise StoreError(f"cannot read {where}: it is over {limit} bytes")
                chunks.append(chunk)
        except OSError as e:
            raise os_error("read", where, e) from e
        finally:
            os.close(fd)

    def write(
        self,
        parts: Sequence[str],
        data: bytes,
        *,
        durable: bool = True,
        mtime_ns: int | None = None,
    ) -> None:
        """Replace the file ``parts`` with ``data`` atomically (folders created as needed).

        ``durable=False`` skips the fsyncs (derived files); ``mtime_ns`` stamps the file.
        """
        where = self.path(parts)
        made: list[int] = []
        try:
            with self.open_dir(parts[:-1], create=True, made=made) as dfd:
                tmp = self._write_temp(dfd, data, durable)
                try:
                    if mtime_ns is not None:
                        os.utime(tmp, ns=(mtime_ns, mtime_ns), dir_fd=dfd, follow_symlinks=False)
                    os.replace(tmp, parts[-1], src_dir_fd=dfd, dst_dir_fd=dfd)
                except BaseException:
                    _unlink_at(dfd, tmp)
                    raise
                if durable:
                    _fsync_fd(dfd)
        except OSError as e:
            self._remove_made(parts, made)
            raise os_error("write", where, e) from e

    def create(self, parts: Sequence[str], data: bytes) -> bool:
        """Write a new file that must not exist yet; False (nothing written) when it does.

        The file appears whole or not at all: a hard link of a fully written temporary
        file, which fails atomically if the name is taken.
        """
        where = self.path(parts)
        made: list[int] = []
        try:
            with self.open_dir(parts[:-1], create=True, made=made) as dfd:
                if _exists_at(dfd, parts[-1]):
                    return False  # the usual case for shared content: skip writing a copy
                tmp = self._write_temp(dfd, data, True)
                try:
                    os.link(tmp, parts[-1], src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
                except FileExistsError:
                    return False
                finally:
                    _unlink_at(dfd, tmp)
                try:
                    _fsync_fd(dfd)
                except BaseException:
                    _unlink_at(dfd, parts[-1])  # ours: a failed create leaves nothing
                    raise
                return True
        except OSError as e:
            self._remove_made(parts, made)
            raise os_error("write", where, e) from e

    def _remove_made(self, parts: Sequence[str], made: list[int]) -> None:
        """After a failed write: remove the (empty) folders it created, innermost first."""
        for depth in reversed(made):
            with contextlib.suppress(OSError), self.open_dir(parts[:depth]) as dfd:
                os.rmdir(parts[depth], dir_fd=dfd)

    @staticmethod
    def _write_temp(dfd: int, data: bytes, durable: bool) -> str:
        tmp = temp_name()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dfd)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            _unlink_at(dfd, tmp)
            raise
        return tmp

    def unlink(self, parts: Sequence[str]) -> bool:
        """Delete one file (never a folder, never through a link); False when absent."""
        try:
            with self.open_dir(parts[:-1]) as dfd:
                os.unlink(parts[-1], dir_fd=dfd)
                return True
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as e:
            raise os_error("delete", self.path(parts), e) from e

    def listdir(self, parts: Sequence[str]) -> list[tuple[str, bool]]:
        """``(name, is_folder)`` for each entry (links count as files); [] when absent."""
        try:
            with self.open_dir(parts) as dfd, os.scandir(dfd) as entries:
                return [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as e:
            raise os_error("list", self.path(parts), e) from e

    def remove_tree(self, parts: Sequence[str]) -> None:
        """Delete a folder and everything in it, never following a link out of it."""
        if not parts:
            raise ValueError("refusing to remove the store's root")
        try:
            with self.open_dir(parts[:-1]) as dfd:
                _remove_at(dfd, parts[-1])
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as e:
            raise os_error("delete", self.path(parts), e) from e

    def fsync(self, parts: Sequence[str]) -> None:
        try:
            with self.open_dir(parts) as dfd:
                _fsync_fd(dfd)
        except FileNotFoundError:
            return
        except OSError as e:
            raise os_error("sync", self.path(parts), e) from e


def _exists_at(dfd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _remove_at(dfd: int, name: str) -> None:
    try:
        child = os.open(name, _DIR_FLAGS, dir_fd=dfd)
    except FileNotFoundError:
        return
    except OSError as e:
        if e.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dfd)
        return
    try:
        with os.scandir(child) as entries:
            names = [e.name for e in entries]
        for entry in names:
            _remove_at(child, entry)
    finally:
        os.close(child)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(name, dir_fd=dfd)


def _unlink_at(dfd: int, name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=dfd)


def _fsync_fd(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EISDIR):
            raise
