"""A store the previous release wrote (279ac7f, format 2, its ``cache/stats.json`` of the
first form) opens with this one, nothing lost: tests/corpus/release-279ac7f-store.

This release keeps its summary in ``cache/summary.json``; the old cache is ignored
(another version's file, never trusted), the numbers come from the heads.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from regman import RegistryManager, StepSpecification
from regman.store.doctor import check_store
from tests.conftest import EXAMPLES

RELEASE_STORE = Path(__file__).resolve().parent / "corpus" / "release-279ac7f-store"
TRAINING = EXAMPLES / "training_pipeline"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    shutil.copytree(RELEASE_STORE, root)
    return root


def test_contexts_history_and_specs_are_all_there(store: Path) -> None:
    manager = RegistryManager(store)
    assert manager.list_contexts() == ["dev", "production"]
    dev = manager.get_registry("dev")
    assert dev is not None
    assert [r.message for r in dev.history()] == ["drop one", "first import"]
    dropped = "data_loading_calibration"
    assert dropped not in dev.list_step_names() and len(dev.list_step_names()) == 8
    for step in dev.list_step_names():  # byte-for-byte the specs the old release stored
        expected = StepSpecification.from_file(TRAINING / f"{step}.step.yaml")
        assert dev.get_specification(step) == expected
    assert dev.at(1).get_specification(dropped) is not None


def test_the_old_cache_is_ignored_and_the_numbers_come_from_the_heads(store: Path) -> None:
    old_cache = json.loads((store / "cache" / "stats.json").read_text())
    old_cache["contexts"]["dev"][2]["step_count"] = 999  # it is not even read
    (store / "cache" / "stats.json").write_text(json.dumps(old_cache))
    manager = RegistryManager(store)
    stats = manager.get_context_stats(with_step_types=True)
    assert {n: s["step_count"] for n, s in stats.items()} == {"dev": 8, "production": 2}
    assert stats["dev"]["revision"] == 2 and stats["production"]["revision"] == 1
    dev = manager.get_registry("dev")
    assert dev is not None
    assert stats["dev"]["step_types"] == dev.list_step_types()
    assert manager.distinct_step_types() == sorted(
        set(dev.list_step_types()) | set(stats["production"]["step_types"])
    )


def test_it_takes_writes_restores_and_is_healthy(store: Path) -> None:
    manager = RegistryManager(store)
    assert [e.context for e in manager.store.list_trash() if e.step is None] == ["old"]
    manager.restore("old")
    assert manager.list_contexts() == ["dev", "old", "production"]
    spec = StepSpecification.from_file(TRAINING / "training.step.yaml")
    result = manager.register_specs("production", {"training": spec})
    assert result.revision == 2
    assert RegistryManager(store).get_context_stats()["production"]["step_count"] == 3
    report = check_store(manager.store)
    assert report.healthy, report.to_dict()
