"""Upgrading a real format-1 store (the previous release's bytes) to revisions.

``tests/corpus/format1-store`` was written by the previous release: contexts
``production`` and ``training_pipeline``, and a trash with removed steps and two
cleared ``dev`` contexts. What the upgraded store must hold is computed from those
files directly (never from another upgrade run): every spec, every statistic, and
every trash entry, either restorable or in history.

A kill during the upgrade is simulated at every kind of filesystem call: from the
k-th call on, every call fails (a dead process does nothing more, not even its
clean-up); the next command must upgrade again and lose nothing. A few real
``SIGKILL``s of a forked child complete the picture.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regman import RegistryManager, StepSpecification
from regman.specfile import load_spec_file
from regman.store import FileStore
from regman.store.doctor import check_store

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "format1-store"
STRESS = os.environ.get("REGMAN_STRESS") == "1"


def old_context(folder: Path) -> tuple[dict[str, Any], dict[str, StepSpecification]]:
    """A format-1 context folder: its index and its specs (step -> spec)."""
    index = json.loads((folder / "context.json").read_text())
    specs = {p.stem: load_spec_file(p) for p in sorted((folder / "specs").glob("*.yaml"))}
    return index, specs


def expected_stats(index: dict[str, Any]) -> dict[str, Any]:
    nodes = index["node_types"]
    return {
        "step_count": index["step_count"],
        "step_type_count": len(index["step_types"]),
        "source_count": nodes.get("source", 0),
        "internal_count": nodes.get("internal", 0),
        "sink_count": nodes.get("sink", 0),
        "singular_count": nodes.get("singular", 0),
        "dependency_count": index["dependency_count"],
        "required_dependency_count": index["required_dependency_count"],
        "output_count": index["output_count"],
    }


def trash_entries() -> list[tuple[str, str | None, Path]]:
    """(context, step or None, path) of each trash entry, oldest first (names start with ns)."""
    found = []
    for path in sorted((CORPUS / "trash").iterdir()):
        parts = path.name.split("@")
        step = parts[2].removesuffix(".yaml") if len(parts) == 3 else None
        found.append((parts[1], step, path))
    return found


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    shutil.copytree(CORPUS, root)
    return root


def marker(root: Path) -> int:
    return int(json.loads((root / "regman-store.json").read_text())["format_version"])


def all_specs_in_history(manager: RegistryManager, context: str) -> list[dict[str, Any]]:
    """The content of every revision of ``context`` (step -> spec), oldest first."""
    registry = manager.get_registry_at(context, 1)
    top = manager.revision(context)
    return [
        {
            step: registry.get_specification_at(step, n)
            for step in manager.store.step_names(context, n)
        }
        for n in range(1, top + 1)
    ]


def check_upgraded(root: Path, *, killed: bool = False) -> None:
    """After one command, everything of the format-1 corpus is in the store at ``root``."""
    manager = RegistryManager(root)
    assert manager.list_contexts() == ["production", "training_pipeline"]
    assert marker(root) == 2
    stats = manager.get_context_stats()
    for name in ("production", "training_pipeline"):
        index, specs = old_context(CORPUS / "contexts" / name)
        registry = manager.get_registry(name, create_if_missing=False)
        assert registry is not None
        assert registry.list_specifications() == specs  # every spec, equal
        assert registry.damaged == {}
        got = {k: stats[name][k] for k in expected_stats(index)}
        assert got == expected_stats(index), name
        assert stats[name]["revision"] == manager.revision(name) >= 1
        assert stats[name]["created_at"] == index["created_at"]

    trash = {(e.context, e.step) for e in manager.list_trash()}
    for context, step, path in trash_entries():
        if step is None:
            continue
        spec = load_spec_file(path)
        if (context, step) in trash:  # removed, not registered since: restorable, as it was
            head = manager.store.head(context)
            assert head is not None and step not in head.steps
            entry = head.removed[step].entry
            assert manager.store.load_spec(context, step, head.removed[step].revision - 1) == spec
            assert entry == manager.store.entry(context, step, head.removed[step].revision - 1)
        # either way the removed version is in the context's history
        assert any(rev.get(step) == spec for rev in all_specs_in_history(manager, context)), (
            context,
            step,
        )
    # removed steps of live contexts that are not live again are restorable
    assert ("training_pipeline", "model_evaluation") in trash
    # both cleared ``dev`` contexts are in history; the newest is what restore brings back
    assert ("dev", None) in trash
    dev_history = all_specs_in_history(manager, "dev")
    for context, _, path in trash_entries():
        if context == "dev":
            _, specs = old_context(path)
            assert specs in dev_history
    newest_dev = old_context([p for c, s, p in trash_entries() if c == "dev"][-1])[1]
    # no trace of the old layout is left (specs that parse were all moved)
    assert not (root / "trash").exists()
    assert not (root / "stats-cache.json").exists()
    for name in ("production", "training_pipeline", "dev"):
        folder = root / "contexts" / name
        assert not (folder / "context.json").exists()
        assert not list((folder / "specs").glob("*.yaml")), name
    if killed:  # a killed writer may leave temporary files: --repair removes them
        report = check_store(FileStore(root), repair=True)
        assert report.healthy, [i.to_dict() for i in report.items]
        assert all(i.severity == "warning" for i in report.items), report.items
    report = check_store(FileStore(root))
    assert report.healthy and not report.items, [i.to_dict() for i in report.items]
    # the restores still work on the upgraded store
    restored = manager.restore("training_pipeline", "model_evaluation")
    assert restored.outcomes == {"model_evaluation": "created"}
    model_evaluation = load_spec_file(
        next(p for c, s, p in trash_entries() if s == "model_evaluation")
    )
    registry = manager.get_registry("training_pipeline")
    assert registry is not None
    assert registry.get_specification("model_evaluation") == model_evaluation
    manager.restore("dev")
    dev = manager.get_registry("dev", create_if_missing=False)
    assert dev is not None and dev.list_specifications() == newest_dev


def test_the_first_write_upgrades_and_keeps_everything(old_store: Path) -> None:
    manager = RegistryManager(old_store)
    _, prod_specs = old_context(CORPUS / "contexts" / "production")
    registry = manager.get_registry("production", create_if_missing=False)
    assert registry is not None
    outcome = registry.register_specification("extra", next(iter(prod_specs.values())))
    assert outcome == "created"
    assert marker(old_store) == 2
    registry.remove_specification("extra")
    check_upgraded(old_store)


def test_a_read_upgrades_too(old_store: Path) -> None:
    """A format-1 store cannot be read in place: the first command of any kind upgrades it."""
    assert marker(old_store) == 1
    assert RegistryManager(old_store).list_contexts() == ["production", "training_pipeline"]
    assert marker(old_store) == 2
    check_upgraded(old_store)


def test_an_upgraded_store_is_not_upgraded_again(old_store: Path) -> None:
    RegistryManager(old_store).list_contexts()
    revisions = {c: RegistryManager(old_store).revision(c) for c in ("production", "dev")}
    RegistryManager(old_store).list_contexts()
    assert {c: RegistryManager(old_store).revision(c) for c in revisions} == revisions
    check_upgraded(old_store)


def test_history_says_what_the_upgrade_did(old_store: Path) -> None:
    manager = RegistryManager(old_store)
    first = manager.history("training_pipeline")[-1]
    assert first.revision == 1 and first.command == "upgrade"
    assert set(first.changes) == {
        p.stem for p in (CORPUS / "contexts/training_pipeline/specs").iterdir()
    }
    assert all(c.kind == "created" for c in first.changes.values())


def test_a_spec_that_does_not_parse_is_left_where_it_was(old_store: Path) -> None:
    bad = old_store / "contexts" / "production" / "specs" / "broken.yaml"
    bad.write_bytes(b"step_type: [unclosed\n")
    manager = RegistryManager(old_store)
    assert "broken" not in manager.store.step_names("production")
    assert bad.read_bytes() == b"step_type: [unclosed\n"  # nothing lost
    assert not check_store(FileStore(old_store)).healthy  # and doctor says so
    report = check_store(FileStore(old_store), repair=True)  # without deleting it
    assert [(i.path, i.repaired) for i in report.items] == [(str(bad), False)]
    assert bad.read_bytes() == b"step_type: [unclosed\n"


# -- a kill during the upgrade ---------------------------------------------------------------
class Killed(BaseException):
    """The process died here: nothing after this runs, not even clean-up."""


_OS_CALLS = (
    "open",
    "read",
    "write",
    "fsync",
    "replace",
    "link",
    "unlink",
    "mkdir",
    "rmdir",
    "utime",
    "scandir",
)


@pytest.fixture
def killer(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Count os calls; from call number ``state["at"]`` on, every one raises Killed."""
    state = {"calls": 0, "at": -1}
    for name in _OS_CALLS:
        real = getattr(os, name)

        def fake(*args: Any, __real: Any = real, **kwargs: Any) -> Any:
            state["calls"] += 1
            if 0 <= state["at"] <= state["calls"]:
                raise Killed
            return __real(*args, **kwargs)

        monkeypatch.setattr(os, name, fake)
    yield state


def _kill_points(total: int) -> list[int]:
    if STRESS:
        return list(range(1, total + 1))
    rng = random.Random(total)
    every = max(1, total // 12)
    return sorted(
        set(range(1, total + 1, every)) | set(rng.sample(range(1, total + 1), min(8, total)))
    )


def test_a_kill_at_any_call_of_the_upgrade_loses_nothing(
    tmp_path: Path, killer: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = tmp_path / "probe"
    shutil.copytree(CORPUS, probe)
    killer["calls"] = 0
    RegistryManager(probe).list_contexts()
    total = killer["calls"]
    assert total > 100  # the count covers the upgrade's filesystem work
    for at in _kill_points(total):
        root = tmp_path / f"k{at}"
        killer["at"] = -1
        shutil.copytree(CORPUS, root)
        killer["calls"], killer["at"] = 0, at
        with pytest.raises(Killed):
            RegistryManager(root).list_contexts()
        killer["at"] = -1
        try:
            check_upgraded(root, killed=True)  # the next command upgrades again
        except AssertionError as e:
            raise AssertionError(f"after a kill at os call {at} of {total}: {e}") from e
        shutil.rmtree(root)


@pytest.mark.skipif(sys.platform == "win32", reason="fork and SIGKILL")
def test_sigkill_of_a_process_upgrading_loses_nothing(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    shutil.copytree(CORPUS, probe)
    start = time.perf_counter()
    RegistryManager(probe).list_contexts()
    took = time.perf_counter() - start
    rng = random.Random(9)
    for round_ in range(20 if STRESS else 5):
        root = tmp_path / f"r{round_}"
        shutil.copytree(CORPUS, root)
        pid = os.fork()
        if pid == 0:  # the child upgrades until it is killed
            try:
                RegistryManager(root).list_contexts()
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0, took))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        check_upgraded(root, killed=True)


def test_trash_entries_that_clash_in_case_do_not_block_the_upgrade(old_store: Path) -> None:
    """Removed 'training', then registered 'Training': the old one cannot come back beside it."""
    trash = old_store / "trash"
    step_entry = trash / "1796237791999999998@training_pipeline@Training.yaml"
    step_entry.write_bytes((trash / next(trash.glob("*@model_evaluation.yaml")).name).read_bytes())
    context_entry = trash / "1796237791999999999@Production"
    shutil.copytree(next(trash.glob("*@dev")), context_entry)
    kept = {p: p.read_bytes() for p in [step_entry, *context_entry.rglob("*")] if p.is_file()}
    manager = RegistryManager(old_store)
    assert manager.list_contexts() == ["production", "training_pipeline"]
    assert marker(old_store) == 2
    for name in ("production", "training_pipeline"):
        registry = manager.get_registry(name, create_if_missing=False)
        assert registry is not None
        assert registry.list_specifications() == old_context(CORPUS / "contexts" / name)[1]
    assert ("training_pipeline", "model_evaluation") in {
        (e.context, e.step) for e in manager.list_trash()
    }
    assert {p: p.read_bytes() for p in kept} == kept  # left where they were, never lost


def test_an_empty_format1_context_stays_a_context(old_store: Path) -> None:
    folder = old_store / "contexts" / "empty"
    (folder / "specs").mkdir(parents=True)
    index = json.loads((CORPUS / "contexts" / "production" / "context.json").read_text())
    index.update(name="empty", step_count=0, step_types={}, node_types={}, dependency_count=0)
    (folder / "context.json").write_text(json.dumps(index))
    manager = RegistryManager(old_store)
    assert manager.list_contexts() == ["empty", "production", "training_pipeline"]
    stats = manager.get_context_stats()["empty"]
    assert stats["step_count"] == 0 and stats["created_at"] == index["created_at"]


def test_a_dry_run_on_a_format1_store_sees_its_specs(old_store: Path) -> None:
    spec = load_spec_file(old_store / "contexts" / "production" / "specs" / "training.yaml")
    result = RegistryManager(old_store).register_specs(
        "production", {"training": spec, "new": spec}, dry_run=True
    )
    assert result.outcomes == {"training": "unchanged", "new": "created"}
    assert result.revision >= 1 and not result.changed
    check_upgraded(old_store)


def test_a_registry_opened_directly_on_a_format1_store_sees_its_specs(old_store: Path) -> None:
    from regman import SpecificationRegistry

    registry = SpecificationRegistry("production", str(old_store))
    assert registry.list_specifications() == old_context(CORPUS / "contexts" / "production")[1]
    check_upgraded(old_store)


def test_doctor_upgrades_only_with_repair(old_store: Path) -> None:
    from tests.conftest import snapshot

    before = snapshot(old_store)
    report = check_store(FileStore(old_store))
    assert [(i.severity, i.repaired) for i in report.items] == [("warning", False)]
    assert "format 1" in report.items[0].problem
    assert snapshot(old_store) == before  # a check writes nothing, not even an upgrade
    assert check_store(FileStore(old_store), repair=True).healthy
    assert marker(old_store) == 2
    check_upgraded(old_store)
