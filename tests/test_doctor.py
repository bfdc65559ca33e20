"""regman.doctor.check_store: finds damage, repairs only derived data, refuses newer stores."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from regman import RegistryManager
from regman.doctor import DoctorReport, check_store
from regman.errors import StoreVersionError
from regman.store import FileStore
from tests.conftest import make_spec, snapshot


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    manager = RegistryManager(path)
    registry = manager.get_registry("ctx")
    assert registry is not None
    registry.register_specification("load", make_spec("Load"))
    registry.register_specification(
        "train", make_spec("Train", deps={"input_path": "training_data"})
    )
    manager.get_registry("empty")
    return path


def problems(report: DoctorReport) -> list[tuple[str, str, bool]]:
    return [(item.severity, os.path.basename(item.path), item.repaired) for item in report.items]


def test_a_healthy_store_is_healthy_and_checking_changes_nothing(root: Path) -> None:
    before = snapshot(root)
    report = check_store(FileStore(root))
    assert report.healthy and not report.items
    assert report.items == []
    assert report.contexts_checked == 2 and report.specs_checked == 2
    assert json.loads(json.dumps(report.to_dict()))["healthy"] is True
    assert snapshot(root) == before


def test_a_missing_folder_is_healthy_and_stays_missing(tmp_path: Path) -> None:
    report = check_store(FileStore(tmp_path / "nothing"), repair=True)
    assert report.healthy
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize(
    "damage",
    [
        b"{not json",
        b"",
        b'{"format_version": 1, "name": "ctx"}',
        b"[1, 2, 3]",
    ],
)
def test_a_damaged_index_is_found_and_rebuilt(root: Path, damage: bytes) -> None:
    index = root / "contexts" / "ctx" / "context.json"
    index.write_bytes(damage)
    report = check_store(FileStore(root))
    assert problems(report) == [("error", "context.json", False)]
    assert not report.healthy
    assert index.read_bytes() == damage  # checking repairs nothing

    repaired = check_store(FileStore(root), repair=True)
    assert problems(repaired) == [("error", "context.json", True)]
    assert repaired.healthy
    assert check_store(FileStore(root)).items == []
    stats = RegistryManager(root).get_context_stats()["ctx"]
    assert stats["step_count"] == 2 and stats["dependency_count"] == 1


def test_an_index_that_disagrees_with_its_specs_is_rebuilt(root: Path) -> None:
    index = root / "contexts" / "ctx" / "context.json"
    doc = json.loads(index.read_bytes())
    doc["step_count"] = 7
    doc["output_count"] = 0
    index.write_text(json.dumps(doc))
    report = check_store(FileStore(root))
    assert problems(report) == [("error", "context.json", False)]
    assert "step_count 7" in report.items[0].problem
    assert check_store(FileStore(root), repair=True).healthy
    assert RegistryManager(root).get_context_stats()["ctx"]["step_count"] == 2


def test_a_spec_removed_behind_the_stores_back_is_found(root: Path) -> None:
    (root / "contexts" / "ctx" / "specs" / "load.yaml").unlink()
    assert problems(check_store(FileStore(root), repair=True)) == [("error", "context.json", True)]
    assert RegistryManager(root).get_context_stats()["ctx"]["step_count"] == 1


def test_a_missing_index_hides_specs_and_is_rebuilt(root: Path) -> None:
    (root / "contexts" / "ctx" / "context.json").unlink()
    # Still listed (its folder and specs are there), but without an index it has no stats.
    assert RegistryManager(root).list_contexts() == ["ctx", "empty"]
    assert "ctx" not in RegistryManager(root).get_context_stats()
    report = check_store(FileStore(root), repair=True)
    assert problems(report) == [("error", "context.json", True)]
    manager = RegistryManager(root)
    assert manager.list_contexts() == ["ctx", "empty"]
    registry = manager.get_registry("ctx")
    assert registry is not None and registry.list_step_names() == ["load", "train"]


def test_a_context_folder_with_nothing_in_it_is_removed(root: Path) -> None:
    (root / "contexts" / "half" / "specs").mkdir(parents=True)
    report = check_store(FileStore(root), repair=True)
    assert problems(report) == [("warning", "half", True)]
    assert not (root / "contexts" / "half").exists()


@pytest.mark.parametrize("where", ["contexts/ctx/specs", "contexts/ctx"])
def test_leftover_temp_files_in_a_context_are_deleted(root: Path, where: str) -> None:
    temp = root / where / ".tmp-123-456-789"
    temp.write_bytes(b"half a spec")
    report = check_store(FileStore(root))
    assert problems(report) == [("warning", temp.name, False)]
    assert temp.exists()
    assert problems(check_store(FileStore(root), repair=True)) == [("warning", temp.name, True)]
    assert not temp.exists()
    assert check_store(FileStore(root)).healthy


def test_a_temp_file_outside_contexts_is_deleted_only_when_its_writer_is_gone(
    root: Path,
) -> None:
    dead = root / f".tmp-{_dead_pid()}-1-2"
    dead.write_bytes(b"{")
    alive = root / f".tmp-{os.getppid()}-1-2"  # a live process that may still be writing
    alive.write_bytes(b"{")
    report = check_store(FileStore(root), repair=True)
    assert problems(report) == [("warning", dead.name, True)]
    assert not dead.exists() and alive.exists()


def _dead_pid() -> int:
    pid = 999_999
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except OSError:
            pass
        pid -= 1


@pytest.mark.parametrize(
    "content",
    [b"step_type: [broken\n", b"step_type: A\nnode_type: source\n", b"\xff\xfe\x00garbage"],
)
def test_a_corrupt_spec_is_reported_and_never_touched(root: Path, content: bytes) -> None:
    spec = root / "contexts" / "ctx" / "specs" / "load.yaml"
    spec.write_bytes(content)
    report = check_store(FileStore(root), repair=True)
    severities = {(item.severity, os.path.basename(item.path)): item for item in report.items}
    bad = severities[("error", "load.yaml")]
    assert not bad.repaired and "load.yaml" in bad.problem
    assert not report.healthy
    assert spec.read_bytes() == content
    # the index now counts only the specs that load, and says so again next time
    again = check_store(FileStore(root))
    assert problems(again) == [("error", "load.yaml", False)]


def test_a_newer_format_version_is_refused_and_left_alone(root: Path) -> None:
    marker = root / "regman-store.json"
    marker.write_text(json.dumps({"format_version": 99}))
    before = snapshot(root)
    for repair in (False, True):
        with pytest.raises(StoreVersionError):
            check_store(FileStore(root), repair=repair)
    assert snapshot(root) == before


def test_a_newer_index_is_refused_even_when_the_marker_is_lost(root: Path) -> None:
    (root / "regman-store.json").unlink()
    index = root / "contexts" / "ctx" / "context.json"
    doc = json.loads(index.read_bytes())
    doc["format_version"] = 2
    index.write_text(json.dumps(doc))
    before = snapshot(root)
    with pytest.raises(StoreVersionError):
        check_store(FileStore(root), repair=True)
    assert snapshot(root) == before


@pytest.mark.parametrize("content", [b"", b"{", b'{"format": 1}'])
def test_a_damaged_marker_is_rewritten(root: Path, content: bytes) -> None:
    marker = root / "regman-store.json"
    marker.write_bytes(content)
    before = snapshot(root)
    report = check_store(FileStore(root))
    assert problems(report) == [("error", "regman-store.json", False)]
    assert snapshot(root) == before  # not even a lock taken that could write the marker
    assert problems(check_store(FileStore(root), repair=True)) == [
        ("error", "regman-store.json", True)
    ]
    assert json.loads(marker.read_bytes()) == {"format_version": 1}
    assert RegistryManager(root).list_contexts() == ["ctx", "empty"]


def test_a_missing_marker_is_rewritten(root: Path) -> None:
    (root / "regman-store.json").unlink()
    report = check_store(FileStore(root), repair=True)
    assert problems(report) == [("warning", "regman-store.json", True)]
    assert (root / "regman-store.json").exists()


def test_a_context_locked_by_a_writer_is_reported_not_guessed(root: Path) -> None:
    store = FileStore(root, lock_timeout=0.05)
    held, release = threading.Event(), threading.Event()

    def writer() -> None:
        with FileStore(root).locked("ctx"):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        held.wait(5)
        report = check_store(store, repair=True)
    finally:
        release.set()
        thread.join()
    assert problems(report) == [("warning", "ctx", False)]
