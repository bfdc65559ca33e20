"""Fixtures shared by the store suites: every backend, and stores on every backend.

A new backend (S3 next) joins every contract and model test by adding one entry to
``BACKENDS``: a name and a factory from a fresh temporary folder to an empty backend.
``minimal`` implements only the abstract primitives (what a remote backend must).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable
from pathlib import Path

import pytest

from regman.errors import StoreError
from regman.store import Store
from regman.store.backend import Backend
from regman.store.files import FileBackend
from regman.store.memory import MemoryBackend


class MinimalBackend(Backend):
    """Only the abstract primitives, like a remote object store: no lock, no cache,
    etags that are counters (not content hashes). The policy must work on it alone."""

    def __init__(self) -> None:
        self.location = "minimal://test"
        self._guard = threading.Lock()
        self._objects: dict[str, bytes] = {}
        self._heads: dict[str, tuple[bytes, str]] = {}
        self._marker: bytes | None = None
        self._versions = itertools.count(1)

    def read_object(self, key: str, limit: int) -> bytes | None:
        data = self._objects.get(key)
        if data is not None and len(data) > limit:
            raise StoreError(f"{key} is over {limit} bytes")
        return data

    def create_object(self, key: str, data: bytes) -> bool:
        with self._guard:
            if key in self._objects:
                return False
            self._objects[key] = bytes(data)
            return True

    def delete_object(self, key: str) -> bool:
        with self._guard:
            return self._objects.pop(key, None) is not None

    def list_objects(self, prefix: str) -> list[str]:
        with self._guard:
            return sorted(k for k in self._objects if k.startswith(prefix + "/"))

    def list_object_contexts(self) -> list[str]:
        with self._guard:
            return sorted({k.split("/", 1)[0] for k in self._objects})

    def delete_prefix(self, prefix: str) -> None:
        for key in self.list_objects(prefix):
            self.delete_object(key)

    def read_head(self, context: str, limit: int) -> tuple[bytes, str] | None:
        head = self._heads.get(context)
        if head is not None and len(head[0]) > limit:
            raise StoreError(f"head {context} is over {limit} bytes")
        return head

    def swap_head(self, context: str, data: bytes | None, expected: str | None) -> bool:
        with self._guard:
            current = self._heads.get(context)
            if (current[1] if current else None) != expected:
                return False
            if data is None:
                self._heads.pop(context, None)
            else:
                self._heads[context] = (bytes(data), f"v{next(self._versions)}")
            return True

    def head_token(self, context: str) -> Hashable:
        head = self._heads.get(context)
        return None if head is None else head[1]

    def list_heads(self) -> list[str]:
        with self._guard:
            return list(self._heads)

    def read_marker(self) -> bytes | None:
        return self._marker

    def write_marker(self, data: bytes) -> None:
        self._marker = bytes(data)


BACKENDS: dict[str, Callable[[Path], Backend]] = {
    "memory": lambda tmp: MemoryBackend(),
    "files": lambda tmp: FileBackend(tmp / "store"),
    "minimal": lambda tmp: MinimalBackend(),
}


@pytest.fixture(params=[*sorted(BACKENDS), "s3"])
def backend_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Backend]:
    """Makes empty backends of one kind; each call a new, separate store."""
    if request.param == "s3":  # each a fresh prefix on the real S3 server (tests/s3server.py)
        return request.getfixturevalue("s3_backend")  # type: ignore[no-any-return]
    make = BACKENDS[request.param]
    counter = iter(range(1_000_000))
    return lambda: make(tmp_path / f"b{next(counter)}")


@pytest.fixture
def backend(backend_factory: Callable[[], Backend]) -> Backend:
    return backend_factory()


@pytest.fixture
def store(backend: Backend) -> Store:
    return Store(backend)
