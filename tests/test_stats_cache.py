"""The reader-maintained stats cache never gives stale or wrong numbers."""

from __future__ import annotations

from pathlib import Path

from regman import RegistryManager
from regman.store import STATS_CACHE
from tests.conftest import make_spec


def fill(store: Path, contexts: int) -> RegistryManager:
    manager = RegistryManager(store)
    for i in range(contexts):
        manager.get_registry(f"ctx{i:02d}").register_specification(  # type: ignore[union-attr]
            "s", make_spec()
        )
    return manager


def test_cache_is_written_and_followed_by_changes(store_path: Path) -> None:
    writer = fill(store_path, 40)
    reader = RegistryManager(store_path)
    first = reader.get_context_stats()
    assert (store_path / STATS_CACHE).exists()  # 40 fresh indexes: worth caching
    assert first["ctx07"]["step_count"] == 1
    writer.get_registry("ctx07").register_specification("t", make_spec("Other"))  # type: ignore[union-attr]
    writer.clear_context("ctx08")
    writer.get_registry("new").register_specification("s", make_spec())  # type: ignore[union-attr]
    second = reader.get_context_stats()
    assert second["ctx07"]["step_count"] == 2 and second["ctx07"]["step_type_count"] == 2
    assert "ctx08" not in second and second["new"]["step_count"] == 1
    assert second == RegistryManager(store_path).get_context_stats()
    # a recreated context with the same name is not mistaken for the old one
    writer.clear_context("ctx09")
    writer.get_registry("ctx09")
    assert reader.get_context_stats()["ctx09"]["step_count"] == 0


def test_damaged_cache_is_ignored(store_path: Path) -> None:
    fill(store_path, 40)
    expected = RegistryManager(store_path).get_context_stats()
    for junk in ("{not json", '{"keys": [], "contexts": {}}', '{"keys": 1}', "[]"):
        (store_path / STATS_CACHE).write_text(junk)
        assert RegistryManager(store_path).get_context_stats() == expected


def test_small_stores_need_no_cache(store_path: Path) -> None:
    manager = fill(store_path, 5)
    assert manager.get_context_stats()["ctx03"]["step_count"] == 1
    assert not (store_path / STATS_CACHE).exists()
