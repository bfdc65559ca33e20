"""The store: contexts, their revisions and specs, on a pluggable backend.

``core.Store`` holds all policy (revisions, history, restore, purge, names, caps);
a backend (``backend.Backend``) only stores bytes: immutable objects and one head
per context moved by compare-and-swap. ``open_store`` picks the backend from a
location; a backend's client library is imported only when it is opened.
"""

from __future__ import annotations

import os
from typing import Any

from regman.errors import InvalidInputError
from regman.store.core import CommitResult, Store, TrashEntry
from regman.store.memory import MEMORY, MemoryBackend
from regman.store.records import STAT_KEYS

__all__ = [
    "MEMORY",
    "STAT_KEYS",
    "CommitResult",
    "FileStore",
    "MemoryStore",
    "S3Store",
    "Store",
    "TrashEntry",
    "default_store_path",
    "open_store",
]

KNOWN_SCHEMES: tuple[str, ...] = ("file", "s3")  # URL schemes with a backend


def default_store_path() -> str:
    """``$REGMAN_HOME`` when set, else the platform's user data folder for regman."""
    home = os.environ.get("REGMAN_HOME")
    if home:
        return home if "://" in home else os.path.abspath(os.path.expanduser(home))
    import platformdirs  # only when no explicit location is given

    return platformdirs.user_data_dir("regman", appauthor=False)


class MemoryStore(Store):
    """A store that lives and dies with the process."""

    def __init__(self) -> None:
        super().__init__(MemoryBackend())


class FileStore(Store):
    """A store in a local folder (the embedded default)."""

    def __init__(self, root: str | os.PathLike[str], *, lock_timeout: float | None = None) -> None:
        from regman.store.files import FileBackend

        backend = FileBackend(root, lock_timeout=lock_timeout)
        super().__init__(backend)
        self.root = backend.root


class S3Store(Store):
    """A store under a prefix of an S3 bucket, shared by everyone who can reach it.

    ``options`` go to the backend (``client``, ``cache_dir``, ``head_ttl``,
    ``leftover_grace``); the S3 client library is imported only here.
    """

    def __init__(self, url: str, **options: Any) -> None:
        from regman.store.s3 import S3Backend

        backend = S3Backend(url, **options)
        super().__init__(backend)
        self.bucket, self.prefix = backend.bucket, backend.prefix


def open_store(location: str | os.PathLike[str] | Store | None = None, **options: Any) -> Store:
    """None -> the default store; ``":memory:"`` -> in memory; ``s3://BUCKET/PREFIX`` -> a
    shared store in S3; a path -> a folder store.

    A URL whose scheme regman has no backend for is refused rather than taken for
    a folder name (``s3://bucket`` must never become a folder called ``s3:``).
    """
    if isinstance(location, Store):
        return location
    where = default_store_path() if location is None else os.fspath(location)
    if where == MEMORY:
        return MemoryStore()
    if "://" in where:
        scheme = where.split("://", 1)[0].lower()
        if scheme not in KNOWN_SCHEMES:
            raise InvalidInputError(
                f"unknown store location '{where}': regman has no backend for '{scheme}://'",
                hint="give a folder path, ':memory:' or s3://BUCKET/PREFIX",
            )
        if scheme == "s3":
            return S3Store(where, **options)
    if where.startswith("file://"):
        where = where[len("file://") :]
    return FileStore(where, **options)
