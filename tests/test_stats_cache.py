"""The reader-maintained stats cache (``cache/stats.json``) never gives stale or wrong numbers.

It is keyed by each context's head token, so any change of a head (a register, a
clear, a purge and a new context of the same name) is seen; a damaged cache is
ignored and rewritten; statistics never parse YAML.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from regman import RegistryManager
from regman.store import MemoryStore
from regman.store.summary import SUMMARY_NAME
from tests.conftest import make_spec


def cache_file(store: Path) -> Path:
    return store / "cache" / SUMMARY_NAME


def fill(store: Path | MemoryStore, contexts: int) -> RegistryManager:
    manager = RegistryManager(store)
    for i in range(contexts):
        manager.register_specs(f"ctx{i:02d}", {"s": make_spec()})
    return manager


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 contexts of one step each, written once per module (copied by ``filled``)."""
    root = tmp_path_factory.mktemp("stats") / "store"
    fill(root, 40)
    assert not cache_file(root).exists()  # no read yet
    return root


@pytest.fixture
def filled(template: Path, store_path: Path) -> Path:
    shutil.copytree(template, store_path)
    return store_path


def test_cache_is_written_and_followed_by_changes(store_path: Path) -> None:
    writer = fill(store_path, 40)
    reader = RegistryManager(store_path)
    first = reader.get_context_stats()
    assert cache_file(store_path).exists()  # 40 fresh heads: worth caching
    assert first["ctx07"]["step_count"] == 1 and first["ctx07"]["revision"] == 1
    writer.register_specs("ctx07", {"t": make_spec("Other")})
    writer.clear_context("ctx08")
    writer.register_specs("new", {"s": make_spec()})
    second = reader.get_context_stats()
    assert second["ctx07"]["step_count"] == 2 and second["ctx07"]["step_type_count"] == 2
    assert second["ctx07"]["revision"] == 2
    assert "ctx08" not in second and second["new"]["step_count"] == 1
    assert second == RegistryManager(store_path).get_context_stats()
    assert reader.list_contexts() == sorted(second)
    # a restored context comes back with its numbers
    writer.restore("ctx08")
    assert reader.get_context_stats()["ctx08"]["step_count"] == 1
    # a purged context created again is not mistaken for the old one
    writer.purge_context("ctx09")
    writer.create_context("ctx09")
    third = reader.get_context_stats()
    assert third["ctx09"]["step_count"] == 0 and third["ctx09"]["revision"] == 1


def test_the_cache_is_rewritten_when_many_heads_changed(filled: Path) -> None:
    store_path = filled
    writer = RegistryManager(store_path)
    RegistryManager(store_path).get_context_stats()
    for i in range(40):
        writer.register_specs(f"ctx{i:02d}", {"t": make_spec("T")})
    RegistryManager(store_path).get_context_stats()
    doc = json.loads(cache_file(store_path).read_bytes())
    assert doc["format_version"] == 2 and doc["keys"][0] == "step_count"
    assert {name: entry[2][0] for name, entry in doc["contexts"].items()} == {
        f"ctx{i:02d}": 2 for i in range(40)
    }


@pytest.mark.parametrize(
    "junk",
    [
        b"{not json",
        b'{"keys": [], "contexts": {}}',
        b'{"keys": 1}',
        b"[]",
        b"",
        b'{"format_version": 1, "contexts": {}}',
        b'{"format_version": 2, "contexts": []}',
        b'{"format_version": 2, "contexts": {"ctx00": [1, 2]}}',
        b'{"format_version": 2, "contexts": {"ctx00": "x", "ctx01": [null, true, 5]}}',
        b'{"format_version": 2, "summary_version": 2, "keys": [], "contexts": {}}',
        b'{"format_version": 2, "summary_version": 2, "keys": 1, "step_types": {}}',
        b"[" * 100_000 + b"]" * 100_000,
        b"\xff\xfe\x00",
    ],
)
def test_a_damaged_cache_is_ignored(filled: Path, junk: bytes) -> None:
    store_path = filled
    expected = RegistryManager(store_path).get_context_stats()
    cache_file(store_path).write_bytes(junk)
    assert RegistryManager(store_path).get_context_stats() == expected
    assert RegistryManager(store_path).list_contexts() == sorted(expected)


def test_a_cache_entry_with_a_stale_token_is_not_used(filled: Path) -> None:
    store_path = filled
    RegistryManager(store_path).get_context_stats()
    doc = json.loads(cache_file(store_path).read_bytes())
    doc["contexts"]["ctx00"][0] = [1, 2, 3]  # a token no head has
    doc["contexts"]["ctx00"][2][0] = 999  # step_count
    cache_file(store_path).write_text(json.dumps(doc))
    assert RegistryManager(store_path).get_context_stats()["ctx00"]["step_count"] == 1


def test_a_cache_that_is_not_a_regular_file_is_ignored(filled: Path) -> None:
    store_path = filled
    expected = RegistryManager(store_path).get_context_stats()
    cache_file(store_path).unlink()
    cache_file(store_path).mkdir()
    assert RegistryManager(store_path).get_context_stats() == expected


def test_small_stores_need_no_cache(store_path: Path) -> None:
    manager = fill(store_path, 5)
    assert manager.get_context_stats()["ctx03"]["step_count"] == 1
    assert not cache_file(store_path).exists()


def test_a_read_never_creates_a_store(tmp_path: Path) -> None:
    manager = RegistryManager(tmp_path / "absent")
    assert manager.get_context_stats() == {}
    assert manager.list_contexts() == []
    assert not (tmp_path / "absent").exists()


def test_statistics_never_parse_yaml(filled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store_path = filled
    import regman.specfile

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("statistics parsed a spec")

    monkeypatch.setattr(regman.specfile, "load_spec_text", refuse)
    monkeypatch.setattr(regman.specfile, "load_spec_file", refuse)
    for _ in range(2):  # without the cache, then with it
        stats = RegistryManager(store_path).get_context_stats()
        assert len(stats) == 40 and stats["ctx00"]["step_count"] == 1
        assert RegistryManager(store_path).list_contexts() == sorted(stats)


def test_a_memory_store_keeps_its_cache_right() -> None:
    store = MemoryStore()
    writer = fill(store, 40)
    reader = RegistryManager(store)
    assert reader.get_context_stats()["ctx01"]["step_count"] == 1
    writer.register_specs("ctx01", {"t": make_spec()})
    writer.clear_context("ctx02")
    stats = reader.get_context_stats()
    assert stats["ctx01"]["step_count"] == 2 and "ctx02" not in stats
