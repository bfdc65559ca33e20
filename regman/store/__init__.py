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
    "Store",
    "TrashEntry",
    "default_store_path",
    "open_store",
]

KNOWN_SCHEMES: tuple[str, ...] = ("file",)  # URL schemes with a backend (s3 comes next)


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


def open_store(location: str | os.PathLike[str] | Store | None = None, **options: Any) -> Store:
    """None -> the default store; ``":memory:"`` -> in memory; a path -> a folder store.

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
                hint="give a folder path, or ':memory:'",
            )
    if where.startswith("file://"):
        where = where[len("file://") :]
    return FileStore(where, **options)
