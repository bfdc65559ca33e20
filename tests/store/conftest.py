"""Fixtures shared by the store suites: every backend, and stores on every backend.

A new backend (S3 next) joins every contract and model test by adding one entry to
``BACKENDS``: a name and a factory from a fresh temporary folder to an empty backend.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from regman.store import Store
from regman.store.backend import Backend
from regman.store.files import FileBackend
from regman.store.memory import MemoryBackend

BACKENDS: dict[str, Callable[[Path], Backend]] = {
    "memory": lambda tmp: MemoryBackend(),
    "files": lambda tmp: FileBackend(tmp / "store"),
}


@pytest.fixture(params=sorted(BACKENDS))
def backend_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Backend]:
    """Makes empty backends of one kind; each call a new, separate store."""
    make = BACKENDS[request.param]
    counter = iter(range(1_000_000))
    return lambda: make(tmp_path / f"b{next(counter)}")


@pytest.fixture
def backend(backend_factory: Callable[[], Backend]) -> Backend:
    return backend_factory()


@pytest.fixture
def store(backend: Backend) -> Store:
    return Store(backend)
