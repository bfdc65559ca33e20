"""regman.store.doctor.check_store: finds damage, repairs what can be, refuses newer stores.

A check without ``repair`` never writes; ``--repair`` rebuilds a damaged or lost head
from the revision records, writes a newest record that is only in the head, removes
objects no revision refers to and temporary files, and never rewrites a spec.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from regman import RegistryManager
from regman.errors import StoreVersionError
from regman.store import FileStore, MemoryStore
from regman.store.doctor import DoctorReport, check_store
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
    registry.register_specification("load", make_spec("Load2"))  # revision 4
    registry.remove_specification("train")  # 5: restorable
    registry.register_specification(
        "train", make_spec("Train", deps={"input_path": "training_data"})
    )  # 6: the same content as at revision 3
    manager.get_registry("empty")
    return path


def problems(report: DoctorReport) -> list[tuple[str, str, bool]]:
    return [(item.severity, os.path.basename(item.path), item.repaired) for item in report.items]


def ctx_folder(root: Path) -> Path:
    return root / "contexts" / "ctx"


def spec_files(root: Path, step: str) -> list[Path]:
    return sorted((ctx_folder(root) / "specs" / step).glob("*.yaml"))


def state(root: Path) -> tuple[int, dict[str, str | None]]:
    manager = RegistryManager(root)
    registry = manager.get_registry("ctx", create_if_missing=False)
    assert registry is not None
    specs = {s: (v.step_type if v else None) for s, v in registry.list_specifications().items()}
    return registry.revision, specs


def test_a_healthy_store_is_healthy_and_checking_changes_nothing(root: Path) -> None:
    before = snapshot(root)
    report = check_store(FileStore(root))
    assert report.healthy and report.items == []
    assert report.contexts_checked == 2 and report.specs_checked == 2
    assert report.revisions_checked == 6 + 1
    assert json.loads(json.dumps(report.to_dict()))["healthy"] is True
    assert snapshot(root) == before
    assert check_store(FileStore(root), repair=True).items == []
    assert snapshot(root) == before


def test_a_memory_store_is_checked_through_the_interface() -> None:
    manager = RegistryManager(MemoryStore())
    registry = manager.get_registry("ctx")
    assert registry is not None
    registry.register_specification("a", make_spec())
    report = manager.check_store()
    assert report.healthy and report.contexts_checked == 1 and report.specs_checked == 1
    store = manager.store
    store.backend.create_object("ctx/specs/a/" + "0" * 32 + ".yaml", b"never referenced")
    assert problems(manager.check_store()) == [("warning", "0" * 32 + ".yaml", False)]
    assert problems(manager.check_store(repair=True)) == [("warning", "0" * 32 + ".yaml", True)]
    assert manager.check_store().items == []


def test_a_missing_folder_is_healthy_and_stays_missing(tmp_path: Path) -> None:
    report = check_store(FileStore(tmp_path / "nothing"), repair=True)
    assert report.healthy
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize(
    "damage",
    [
        b"{not json",
        b"",
        b"[1, 2, 3]",
        b'{"format_version": 2, "context": "ctx"}',
        b'{"format_version": 2, "context": "other", "revision": 6}',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_a_damaged_head_is_found_and_rebuilt_from_the_records(root: Path, damage: bytes) -> None:
    before = state(root)
    stats_before = RegistryManager(root).get_context_stats()
    head = ctx_folder(root) / "head.json"
    head.write_bytes(damage)
    report = check_store(FileStore(root))
    assert problems(report) == [("error", "ctx: head", False)]
    assert not report.healthy
    assert head.read_bytes() == damage  # checking repairs nothing

    repaired = check_store(FileStore(root), repair=True)
    assert ("error", "ctx: head", True) in problems(repaired)
    assert repaired.healthy
    assert check_store(FileStore(root)).items == []  # clean after the repair
    assert state(root) == before  # the newest record was written: nothing lost
    assert RegistryManager(root).get_context_stats() == stats_before
    # what was restorable still is
    manager = RegistryManager(root)
    manager.remove_step("ctx", "train")
    manager.restore("ctx", "train")


def test_a_lost_head_is_rebuilt_never_taken_for_a_failed_first_write(root: Path) -> None:
    before = state(root)
    (ctx_folder(root) / "head.json").unlink()
    assert "ctx" not in RegistryManager(root).list_contexts()
    snap = snapshot(root)
    report = check_store(FileStore(root))
    assert problems(report) == [("error", "ctx: head", False)]
    assert snapshot(root) == snap
    assert check_store(FileStore(root), repair=True).healthy
    assert state(root) == before
    assert check_store(FileStore(root)).items == []


def test_a_head_whose_newest_record_is_lost_goes_back_one_revision(root: Path) -> None:
    (ctx_folder(root) / "revisions" / "6.json").unlink()
    (ctx_folder(root) / "head.json").write_bytes(b"{")
    report = check_store(FileStore(root), repair=True)
    assert report.healthy
    assert any("rebuilt at revision 5" in item.problem for item in report.items)
    revision, specs = state(root)
    assert revision == 5 and specs == {"load": "Load2"}
    assert check_store(FileStore(root)).items == []


def test_an_unrebuildable_head_is_reported_and_nothing_is_deleted(root: Path) -> None:
    (ctx_folder(root) / "revisions" / "2.json").unlink()  # a hole in the records
    (ctx_folder(root) / "head.json").write_bytes(b"{")
    before = snapshot(root)
    report = check_store(FileStore(root), repair=True)
    assert ("error", "ctx: head", False) in problems(report)
    assert not report.healthy
    assert snapshot(root) == before  # every spec and record is still there


def test_the_newest_record_only_in_the_head_is_written(root: Path) -> None:
    """A writer killed after its head moved, before it wrote the record file."""
    (ctx_folder(root) / "revisions" / "6.json").unlink()
    report = check_store(FileStore(root))
    assert problems(report) == [("warning", "ctx: revision 6", False)]
    assert check_store(FileStore(root), repair=True).healthy
    assert (ctx_folder(root) / "revisions" / "6.json").exists()
    assert check_store(FileStore(root)).items == []
    assert [r.revision for r in RegistryManager(root).history("ctx")] == [6, 5, 4, 3, 2, 1]


def test_a_missing_past_record_is_an_error_not_repaired(root: Path) -> None:
    (ctx_folder(root) / "revisions" / "3.json").unlink()
    report = check_store(FileStore(root), repair=True)
    assert ("error", "ctx: revision 3", False) in problems(report)
    assert not report.healthy
    assert state(root)[0] == 6  # the live context is untouched


def test_unreferenced_objects_and_temp_files_are_removed(root: Path) -> None:
    folder = ctx_folder(root)
    leftovers = [
        folder / "specs" / "load" / ("f" * 32 + ".yaml"),  # a write whose head never moved
        folder / "specs" / "ghost" / ("e" * 32 + ".yaml"),
        folder / "revisions" / "7.json",  # beyond the head
        folder / "specs" / "load" / ".tmp-123-456-789",
        folder / ".tmp-1-2-3",
        folder / "revisions" / ".tmp-9-9-9",
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"leftover")
    before = state(root)
    report = check_store(FileStore(root))
    assert sorted(problems(report)) == sorted(("warning", p.name, False) for p in leftovers)
    assert all(p.exists() for p in leftovers)
    repaired = check_store(FileStore(root), repair=True)
    assert sorted(problems(repaired)) == sorted(("warning", p.name, True) for p in leftovers)
    assert repaired.healthy
    assert not any(p.exists() for p in leftovers)
    assert check_store(FileStore(root)).items == []
    assert state(root) == before
    # every version in history is still there: the sweep only took unreferenced objects
    assert len(spec_files(root, "load")) == 2


def test_a_context_whose_first_write_did_not_land_is_removed(root: Path) -> None:
    half = root / "contexts" / "half" / "specs" / "s"
    half.mkdir(parents=True)
    (half / ("a" * 32 + ".yaml")).write_bytes(b"step_type: A\n")
    report = check_store(FileStore(root))
    assert problems(report) == [("warning", "half", False)]
    assert check_store(FileStore(root), repair=True).healthy
    assert not (root / "contexts" / "half").exists()
    assert check_store(FileStore(root)).items == []


def test_a_folder_that_is_not_a_context_name_is_reported(root: Path) -> None:
    (root / "contexts" / "bad name").mkdir()
    report = check_store(FileStore(root), repair=True)
    assert problems(report) == [("error", "bad name", False)]
    assert (root / "contexts" / "bad name").exists()


@pytest.mark.parametrize(
    "content",
    [b"step_type: [broken\n", b"step_type: A\nnode_type: source\n", b"\xff\xfe\x00garbage"],
)
def test_a_changed_spec_is_reported_and_never_touched(root: Path, content: bytes) -> None:
    current = RegistryManager(root).store.entry("ctx", "load")
    spec = ctx_folder(root) / "specs" / "load" / f"{current.spec}.yaml"
    spec.write_bytes(content)
    report = check_store(FileStore(root), repair=True)
    bad = [item for item in report.items if item.severity == "error"]
    assert len(bad) == 1 and not bad[0].repaired
    assert "'load'" in bad[0].problem and bad[0].path.endswith(spec.name)
    assert not report.healthy
    assert spec.read_bytes() == content
    assert problems(check_store(FileStore(root))) == problems(report)
    # history still has the good version: rollback brings it back, and doctor is clean
    manager = RegistryManager(root)
    manager.rollback("ctx", 2, ["load"])
    assert check_store(FileStore(root)).healthy


def test_a_removed_spec_object_is_reported(root: Path) -> None:
    for path in spec_files(root, "train"):
        path.unlink()
    report = check_store(FileStore(root), repair=True)
    assert [i.severity for i in report.items] == ["error"]
    assert not report.healthy


def test_a_newer_format_version_is_refused_and_left_alone(root: Path) -> None:
    marker = root / "regman-store.json"
    marker.write_text(json.dumps({"format_version": 99}))
    before = snapshot(root)
    for repair in (False, True):
        with pytest.raises(StoreVersionError):
            check_store(FileStore(root), repair=repair)
    assert snapshot(root) == before


def test_a_newer_head_is_refused_even_when_the_marker_is_lost(root: Path) -> None:
    (root / "regman-store.json").unlink()
    head = ctx_folder(root) / "head.json"
    doc = json.loads(head.read_bytes())
    doc["format_version"] = 3
    head.write_text(json.dumps(doc))
    before = snapshot(root)
    with pytest.raises(StoreVersionError):
        check_store(FileStore(root), repair=True)
    assert {k: v for k, v in snapshot(root).items() if k != "regman-store.json"} == {
        k: v for k, v in before.items() if k != "regman-store.json"
    }


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b'{"format": 2}', b'{"format_version": null}', b'{"format_version": "2"}'],
)
def test_a_damaged_marker_is_rewritten(root: Path, content: bytes) -> None:
    marker = root / "regman-store.json"
    marker.write_bytes(content)
    before = snapshot(root)
    report = check_store(FileStore(root))
    assert problems(report) == [("error", "store: format marker", False)]
    assert snapshot(root) == before  # not even a lock taken that could write the marker
    repaired = check_store(FileStore(root), repair=True)
    assert problems(repaired) == [("error", "store: format marker", True)]
    assert json.loads(marker.read_bytes()) == {"format_version": 2}
    assert RegistryManager(root).list_contexts() == ["ctx", "empty"]


def test_a_context_locked_by_a_writer_is_reported_not_guessed(root: Path) -> None:
    store = FileStore(root, lock_timeout=0.05)
    held, release = threading.Event(), threading.Event()

    def writer() -> None:
        with FileStore(root).backend.writer_lock("ctx"):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert held.wait(5)
        report = check_store(store, repair=True)
    finally:
        release.set()
        thread.join()
    assert problems(report) == [("warning", "ctx", False)]
    assert report.contexts_checked == 2


def test_a_removed_restorable_spec_object_is_reported(root: Path) -> None:
    RegistryManager(root).remove_step("ctx", "load")  # restorable from the trash
    for path in spec_files(root, "load"):
        path.unlink()
    report = check_store(FileStore(root), repair=True)
    assert [i.severity for i in report.items] == ["error"]
    assert "restorable" in report.items[0].problem
    assert not report.healthy


def test_a_missing_marker_is_written_by_repair(root: Path) -> None:
    (root / "regman-store.json").unlink()
    before = snapshot(root)
    assert check_store(FileStore(root)).healthy
    assert snapshot(root) == before
    assert check_store(FileStore(root), repair=True).healthy
    assert json.loads((root / "regman-store.json").read_bytes()) == {"format_version": 2}


@pytest.mark.parametrize("where", ["stray.txt", "specs/old_format.yaml", "specs/load/notes.md"])
def test_a_file_regman_did_not_write_is_reported_and_never_deleted(root: Path, where: str) -> None:
    """E.g. a format-1 spec the upgrade could not read: it stays for its owner to fix."""
    path = ctx_folder(root) / where
    path.write_bytes(b"step_type: [unclosed\n")
    report = check_store(FileStore(root), repair=True)
    assert problems(report) == [("warning", path.name, False)]
    assert "did not write" in report.items[0].problem
    assert path.read_bytes() == b"step_type: [unclosed\n"


def test_a_store_others_can_write_is_warned_about(root: Path) -> None:
    os.chmod(root, 0o777)
    try:
        report = check_store(FileStore(root), repair=True)
        assert [(i.severity, i.repaired) for i in report.items] == [("warning", False)]
        assert "chmod go-w" in report.items[0].problem
        assert RegistryManager(root).warnings() == [report.items[0].problem]
        os.chmod(root, 0o1777)  # sticky, like /tmp: others cannot replace our files
        assert check_store(FileStore(root)).items == []
    finally:
        os.chmod(root, 0o755)
    assert check_store(FileStore(root)).items == []
