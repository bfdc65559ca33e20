"""A write that fails part-way leaves the context whole: at the old revision or the new
one, and never a head that names spec objects the failed writer took back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from regman import RegistryManager
from regman.errors import StoreError
from regman.store import FileStore
from regman.store.doctor import check_store
from regman.store.files import FileBackend
from tests.conftest import make_spec


def test_a_swap_that_lands_then_fails_keeps_its_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """E.g. the folder fsync after the head's rename fails with EIO: the new head is there."""
    root = tmp_path / "store"
    manager = RegistryManager(root)
    manager.register_specs("ctx", {"a": make_spec("A")})
    real = FileBackend.swap_head

    def lands_then_fails(self: FileBackend, context: str, data: Any, expected: Any) -> bool:
        real(self, context, data, expected)
        raise StoreError("cannot sync the folder: Input/output error")

    monkeypatch.setattr(FileBackend, "swap_head", lands_then_fails)
    with pytest.raises(StoreError):
        manager.register_specs("ctx", {"b": make_spec("B"), "a": make_spec("A2")})
    monkeypatch.undo()
    fresh = RegistryManager(root)
    registry = fresh.get_registry("ctx", create_if_missing=False)
    assert registry is not None
    specs = registry.require_all_readable()  # every step the head names can be read
    assert specs in ({"a": make_spec("A")}, {"a": make_spec("A2"), "b": make_spec("B")})
    assert check_store(FileStore(root), repair=True).healthy
    assert check_store(FileStore(root)).items == []


def test_a_swap_that_fails_takes_back_its_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "store"
    manager = RegistryManager(root)
    manager.register_specs("ctx", {"a": make_spec("A")})

    def fails(self: FileBackend, context: str, data: Any, expected: Any) -> bool:
        raise StoreError("cannot write: No space left on device")

    monkeypatch.setattr(FileBackend, "swap_head", fails)
    with pytest.raises(StoreError):
        manager.register_specs("ctx", {"b": make_spec("B")})
    monkeypatch.undo()
    assert manager.store.backend.list_objects("ctx/specs/b") == []  # nothing left behind
    assert RegistryManager(root).revision("ctx") == 1
    assert check_store(FileStore(root)).items == []
