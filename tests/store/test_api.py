"""The Python API of revisions (issue 9), on every backend.

``registry.revision``, ``registry.history()``, ``get_specification_at``,
``manager.get_registry_at`` / ``registry.at(n)``, ``rollback``, ``batch`` (one
revision; an exception inside commits nothing) and ``if_revision``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from regman import RegistryManager, SpecificationRegistry
from regman.errors import (
    ConflictError,
    ContextNotFoundError,
    InvalidInputError,
    InvalidNameError,
    NotFoundError,
    RevisionConflictError,
    StepNotFoundError,
)
from regman.store import Store
from tests.conftest import make_spec

A = make_spec("TypeA")
B = make_spec("TypeB", deps={"input_path": "training_data"})
C = make_spec("TypeC", outs={})


@pytest.fixture
def manager(store: Store) -> RegistryManager:
    """A manager on a store of each backend (the ``store`` fixture is parametrised)."""
    return RegistryManager(store)


@pytest.fixture
def registry(manager: RegistryManager) -> SpecificationRegistry:
    registry = manager.get_registry("ctx")
    assert registry is not None
    return registry


def kinds(registry: SpecificationRegistry, n: int) -> dict[str, str]:
    record = next(r for r in registry.history() if r.revision == n)
    return {step: change.kind for step, change in record.changes.items()}


def test_every_change_is_one_revision(registry: SpecificationRegistry) -> None:
    assert registry.revision == 1  # get_registry created the context: revision 1
    assert registry.history()[0].command == "create"
    assert registry.register_specification("a", A) == "created"
    assert registry.revision == 2
    assert registry.register_specification("a", A) == "unchanged"
    assert registry.revision == 2  # nothing changed: no revision
    assert registry.register_specification("a", B, message="why") == "updated"
    assert registry.remove_specification("a") is True
    assert registry.remove_specification("a") is False
    assert registry.revision == 4
    history = registry.history()
    assert [r.revision for r in history] == [4, 3, 2, 1]  # newest first
    assert [r.command for r in history] == ["remove", "register", "register", "create"]
    assert history[1].message == "why" and history[0].message is None
    assert [kinds(registry, n) for n in (2, 3, 4)] == [
        {"a": "created"},
        {"a": "updated"},
        {"a": "removed"},
    ]
    for record in history:
        summary = record.summary()
        assert summary["revision"] == record.revision
        assert summary["created_at"].endswith("Z") and "T" in summary["created_at"]
        assert isinstance(summary["author"], str) and summary["author"]


def test_history_of_a_step_and_limit(registry: SpecificationRegistry) -> None:
    registry.register_specification("a", A)
    registry.register_specification("b", B)
    registry.register_specification("a", C)
    assert [r.revision for r in registry.history("a")] == [4, 2]
    assert [r.revision for r in registry.history("b")] == [3]
    assert [r.revision for r in registry.history(limit=2)] == [4, 3]
    assert [r.revision for r in registry.history("a", limit=1)] == [4]
    assert registry.history("never") == []
    with pytest.raises(InvalidNameError):
        registry.history("../x")


def test_author_comes_from_the_environment(
    registry: SpecificationRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGMAN_AUTHOR", "ci-bot")
    registry.register_specification("a", A)
    assert registry.history(limit=1)[0].author == "ci-bot"


def test_specs_at_past_revisions(manager: RegistryManager, registry: SpecificationRegistry) -> None:
    registry.register_specification("a", A)  # 2
    registry.register_specification("b", B)  # 3
    registry.register_specification("a", C)  # 4
    registry.remove_specification("b")  # 5
    assert registry.get_specification_at("a", 2) == A
    assert registry.get_specification_at("a", 4) == C
    assert registry.get_specification_at("b", 2) is None  # not yet there
    assert registry.get_specification_at("b", 4) == B
    assert registry.get_specification_at("b", 5) is None  # removed
    with pytest.raises(NotFoundError):
        registry.get_specification_at("a", 6)
    with pytest.raises(NotFoundError):
        registry.get_specification_at("a", 0)
    missing = SpecificationRegistry("missing", registry.store)
    with pytest.raises(ContextNotFoundError):  # it has no revision 1 either
        missing.get_specification_at("a", 1)

    past = registry.at(3)
    assert past.revision == 3 and past.pinned_revision == 3
    assert past.list_specifications() == {"a": A, "b": B}
    assert past.get_specification("a") == A
    via_manager = manager.get_registry_at("ctx", 4)
    assert via_manager.list_specifications() == {"a": C, "b": B}
    assert manager.get_registry_at("ctx", None) is registry  # None: the live registry
    with pytest.raises(NotFoundError):
        registry.at(99)
    with pytest.raises(ContextNotFoundError):
        manager.get_registry_at("missing", None)
    with pytest.raises(ContextNotFoundError):
        manager.get_registry_at("missing", 1)
    assert not manager.has_context("missing")  # get_registry_at never creates

    # the past is read-only, and does not follow later changes
    with pytest.raises(InvalidInputError):
        past.register_specification("c", A)
    with pytest.raises(InvalidInputError):
        past.remove_specification("a")
    with pytest.raises(InvalidInputError), past.batch():
        pass
    registry.register_specification("a", B)
    assert past.get_specification("a") == A
    assert registry.get_specification("a") == B


def test_rollback(registry: SpecificationRegistry) -> None:
    registry.register_specification("a", A)  # 2
    registry.register_specification("b", B)  # 3
    registry.register_specification("a", C)  # 4
    registry.remove_specification("b")  # 5
    result = registry.rollback(3, message="back to 3")
    assert result.changed and result.revision == 6
    assert result.outcomes == {"a": "updated", "b": "created"}
    assert registry.list_specifications() == {"a": A, "b": B}
    record = registry.history(limit=1)[0]
    assert record.command == "rollback" and record.source == "ctx@3"
    assert record.message == "back to 3"
    # only the steps named
    registry.register_specification("a", C)  # 7
    registry.register_specification("b", C)  # 8
    result = registry.rollback(2, ["b"])
    assert result.outcomes == {"b": "removed"}
    assert registry.list_specifications() == {"a": C}
    # to where it already is: no revision
    top = registry.revision
    result = registry.rollback(top)
    assert not result.changed and registry.revision == top
    with pytest.raises(StepNotFoundError):
        registry.rollback(2, ["never"])
    with pytest.raises(NotFoundError):
        registry.rollback(top + 1)
    assert registry.revision == top


def test_batch_is_one_revision(registry: SpecificationRegistry) -> None:
    registry.register_specification("old", A)
    before = registry.revision
    with registry.batch(message="release 7") as batch:
        assert batch is registry
        assert registry.register_specification("a", A) == "created"
        assert registry.register_specification("b", B) == "created"
        assert registry.remove_specification("old") is True
        assert registry.remove_specification("never") is False
        assert registry.revision == before  # nothing written yet
        assert "a" not in registry
    assert registry.revision == before + 1
    record = registry.history(limit=1)[0]
    assert record.command == "batch" and record.message == "release 7"
    assert {s: c.kind for s, c in record.changes.items()} == {
        "a": "created",
        "b": "created",
        "old": "removed",
    }
    assert registry.list_specifications() == {"a": A, "b": B}


def test_remove_inside_a_batch_says_whether_the_step_is_there(
    registry: SpecificationRegistry,
) -> None:
    registry.register_specification("a", A)
    with registry.batch():
        assert registry.remove_specification("a") is True
        assert registry.remove_specification("a") is False  # removed already, in this batch
        registry.register_specification("b", B)
        assert registry.remove_specification("b") is True  # registered in this batch
        assert registry.remove_specification("b") is False
        assert registry.remove_specification("never") is False
    assert registry.list_specifications() == {}


def test_a_batch_that_changes_nothing_makes_no_revision(registry: SpecificationRegistry) -> None:
    registry.register_specification("a", A)
    top = registry.revision
    with registry.batch():
        registry.register_specification("a", A)
        registry.remove_specification("never")
    with registry.batch():
        pass
    assert registry.revision == top


def test_an_exception_inside_a_batch_commits_nothing(registry: SpecificationRegistry) -> None:
    registry.register_specification("a", A)
    top = registry.revision
    with pytest.raises(RuntimeError, match="stop"), registry.batch():
        registry.register_specification("b", B)
        registry.remove_specification("a")
        raise RuntimeError("stop")
    assert registry.revision == top
    assert registry.list_specifications() == {"a": A}
    # a refused register inside the batch abandons it too
    with pytest.raises(ConflictError), registry.batch():
        registry.register_specification("c", C)
        registry.register_specification("a", B, replace=False)
    assert registry.revision == top and "c" not in registry
    # and the registry is usable (not stuck in a batch) afterwards
    assert registry.register_specification("c", C) == "created"
    assert registry.revision == top + 1


def test_batches_do_not_nest(registry: SpecificationRegistry) -> None:
    with pytest.raises(InvalidInputError), registry.batch(), registry.batch():
        registry.register_specification("a", A)
    assert "a" not in registry
    with registry.batch():
        registry.register_specification("a", A)
    assert "a" in registry


def test_if_revision(registry: SpecificationRegistry, manager: RegistryManager) -> None:
    registry.register_specification("a", A)
    top = registry.revision
    assert registry.register_specification("b", B, if_revision=top) == "created"
    with pytest.raises(RevisionConflictError) as caught:
        registry.register_specification("c", C, if_revision=top)
    assert (caught.value.actual, caught.value.expected) == (top + 1, top)
    assert f"is at revision {top + 1}, not {top}" in str(caught.value)
    assert isinstance(caught.value, ConflictError)
    assert "c" not in registry and registry.revision == top + 1
    with pytest.raises(RevisionConflictError):
        registry.remove_specification("a", if_revision=top)
    assert "a" in registry
    with pytest.raises(RevisionConflictError), registry.batch(if_revision=top):
        registry.register_specification("c", C)
    assert "c" not in registry
    with pytest.raises(RevisionConflictError):
        manager.clear_context("ctx", if_revision=top)
    with pytest.raises(RevisionConflictError):
        manager.rollback("ctx", 1, if_revision=top)
    with pytest.raises(RevisionConflictError):
        manager.register_specs("ctx", {"c": C}, if_revision=top)
    assert registry.revision == top + 1
    manager.clear_context("ctx", if_revision=top + 1)
    with pytest.raises(RevisionConflictError):
        manager.restore("ctx", if_revision=top + 1)
    manager.restore("ctx", if_revision=top + 2)
    # creating a context: its revision is 0 before the first
    assert manager.register_specs("new", {"a": A}, if_revision=0).revision == 1
    with pytest.raises(RevisionConflictError):
        manager.register_specs("other", {"a": A}, if_revision=1)
    assert not manager.has_context("other")


def test_clear_and_restore(manager: RegistryManager, registry: SpecificationRegistry) -> None:
    registry.register_specification("a", A)
    registry.register_specification("b", B)
    assert manager.clear_context("ctx") is True
    assert manager.list_contexts() == []
    assert manager.clear_context("ctx") is False
    assert [e.as_dict()["kind"] for e in manager.list_trash()] == ["context"]
    assert manager.history("ctx")[0].command == "clear"  # a cleared context keeps its history
    result = manager.restore("ctx")
    assert result.outcomes == {"a": "created", "b": "created"}
    assert manager.list_contexts() == ["ctx"]
    fresh = manager.get_registry("ctx")
    assert fresh is not None and fresh.list_specifications() == {"a": A, "b": B}
    assert manager.remove_step("ctx", "a") is True
    assert [(e.context, e.step) for e in manager.list_trash()] == [("ctx", "a")]
    manager.restore("ctx", "a")
    assert fresh.get_specification("a") == A
    with pytest.raises(ConflictError):
        manager.restore("ctx", "a")  # registered: nothing to restore
    with pytest.raises(NotFoundError):
        manager.restore("ctx", "never")
    with pytest.raises(NotFoundError):
        manager.restore("nothing-here")


def test_purge(manager: RegistryManager, registry: SpecificationRegistry) -> None:
    registry.register_specification("a", A)
    registry.remove_specification("a", purge=True)
    assert manager.list_trash() == []
    with pytest.raises(NotFoundError):
        manager.restore("ctx", "a")
    assert manager.purge_context("ctx") is True
    assert manager.purge_context("ctx") is False
    assert manager.revision("ctx") == 0
    with pytest.raises(ContextNotFoundError):
        manager.history("ctx")
    # created again, its history starts anew
    again = manager.get_registry("ctx")
    assert again is not None and again.revision == 1 and len(again.history()) == 1


def test_the_seed_api_is_unchanged(manager: RegistryManager) -> None:
    registry = manager.get_registry("seed")
    assert registry is not None
    assert manager.get_registry("seed") is registry
    assert manager.get_registry("absent", create_if_missing=False) is None
    registry.register_specification("a", A)
    assert manager.list_contexts() == ["seed"]
    assert manager.get_context_stats()["seed"]["step_count"] == 1
    assert manager.clear_context("seed") is True
    assert manager.list_contexts() == []
    manager.get_registry("x")
    manager.get_registry("y")
    manager.clear_all_contexts()
    assert manager.list_contexts() == []


def test_standalone_registry_has_revisions(tmp_path: Path) -> None:
    registry = SpecificationRegistry("solo", str(tmp_path / "s"))
    assert registry.revision == 0
    registry.register_specification("a", A)
    assert registry.revision == 1
    assert registry.history()[0].changes["a"].kind == "created"


def test_restore_refuses_when_the_stored_spec_is_gone(
    manager: RegistryManager, registry: SpecificationRegistry
) -> None:
    """Restore fails cleanly, or brings back every spec: never a step that cannot be read."""
    from regman.errors import DamagedStoreError
    from regman.store.core import spec_key

    registry.register_specification("a", A)
    registry.register_specification("b", B)
    entry = manager.store.entry("ctx", "a")
    registry.remove_specification("a")
    manager.store.backend.delete_object(spec_key("ctx", "a", entry.spec))
    top = registry.revision
    with pytest.raises(DamagedStoreError):
        manager.restore("ctx", "a")
    assert registry.revision == top and "a" not in registry
    manager.clear_context("ctx")  # removes b
    b = manager.store.record("ctx", top + 1).changes["b"].previous
    assert b is not None
    manager.store.backend.delete_object(spec_key("ctx", "b", b.spec))
    with pytest.raises(DamagedStoreError):
        manager.restore("ctx")
    assert manager.revision("ctx") == top + 1 and manager.list_contexts() == []


def test_a_batch_belongs_to_its_thread(registry: SpecificationRegistry) -> None:
    """get_registry hands every thread the same registry: one thread's batch must not
    swallow another thread's writes (nor drop them when it fails)."""
    import threading

    opened, written = threading.Event(), threading.Event()
    outcome: list[object] = []

    def other_thread() -> None:
        opened.wait(10)
        outcome.append(registry.register_specification("theirs", B))
        outcome.append(registry.revision)
        written.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    top = registry.revision
    with pytest.raises(RuntimeError), registry.batch():
        registry.register_specification("mine", A)
        opened.set()
        assert written.wait(10)
        raise RuntimeError("abandon the batch")
    thread.join(10)
    assert outcome == ["created", top + 1]  # written at once, as one revision of its own
    assert registry.list_specifications() == {"theirs": B}


class Killed(BaseException):
    """The process died here."""


def _interrupted_purge(manager: RegistryManager, monkeypatch: pytest.MonkeyPatch) -> None:
    """A purge killed after its tombstone landed, before anything was deleted."""

    def die(prefix: str) -> None:
        raise Killed

    monkeypatch.setattr(manager.store.backend, "delete_prefix", die)
    with pytest.raises(Killed):
        manager.purge_context("ctx")
    monkeypatch.undo()


def test_the_next_writer_finishes_an_interrupted_purge(
    manager: RegistryManager, registry: SpecificationRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.register_specification("a", A)
    _interrupted_purge(manager, monkeypatch)
    assert manager.list_contexts() == [] and manager.list_trash() == []
    with pytest.raises(NotFoundError):
        manager.restore("ctx")
    result = manager.register_specs("ctx", {"b": B})  # a new context, history from 1
    assert result.revision == 1
    assert [r.revision for r in manager.history("ctx")] == [1]
    assert manager.store.backend.list_objects("ctx/specs/a") == []  # the purge was finished


def test_trash_empty_or_doctor_finish_an_interrupted_purge(
    manager: RegistryManager, registry: SpecificationRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.register_specification("a", A)
    _interrupted_purge(manager, monkeypatch)
    report = manager.check_store(repair=True)
    assert report.healthy, [i.to_dict() for i in report.items]
    assert manager.check_store().items == []
    assert manager.revision("ctx") == 0
    assert manager.store.backend.list_objects("ctx") == []


def test_a_first_write_that_did_not_land_blocks_no_name(manager: RegistryManager) -> None:
    """A writer killed before its first head moved leaves objects of 'Ctx' but no context."""
    manager.store.backend.create_object("Ctx/specs/s/" + "a" * 32 + ".yaml", b"step_type: A\n")
    assert manager.list_contexts() == []
    assert manager.register_specs("ctx", {"a": A}).revision == 1  # not a case clash
    with pytest.raises(InvalidNameError):
        manager.register_specs("CTX", {"a": A})  # but a real context is


def test_a_purge_finished_by_another_writer_spares_the_new_context(
    manager: RegistryManager, registry: SpecificationRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a lock (S3), a writer may finish a slow purge and create the context again
    before the purger removes the head: the purger must then leave the new context alone.

    (A writer that comes while the purger is still deleting specs is not covered: on a
    backend without a lock that needs objects named per incarnation of a context.)"""
    registry.register_specification("a", A)
    backend = manager.store.backend
    real = backend.delete_prefix
    other = RegistryManager(Store(backend))
    state = {"raced": False}

    def slow_purge(prefix: str) -> None:
        real(prefix)
        if prefix == "ctx/revisions" and not state["raced"]:
            state["raced"] = True
            other.register_specs("ctx", {"b": B})  # finishes the purge, then writes

    monkeypatch.setattr(backend, "delete_prefix", slow_purge)
    manager.purge_context("ctx")
    monkeypatch.undo()
    fresh = RegistryManager(Store(backend)).get_registry("ctx", create_if_missing=False)
    assert fresh is not None
    assert fresh.require_all_readable() == {"b": B}


def test_rollback_of_some_steps_refuses_a_case_clash(manager: RegistryManager) -> None:
    manager.register_specs("c", {"Train": A})  # 1
    manager.remove_step("c", "Train")  # 2
    manager.register_specs("c", {"train": B})  # 3
    with pytest.raises(InvalidNameError):
        manager.rollback("c", 1, ["Train"])  # would hold 'Train' beside 'train'
    assert manager.store.step_names("c") == ["train"] and manager.revision("c") == 3
    result = manager.rollback("c", 1, ["Train", "train"])  # both: 'train' goes, 'Train' comes
    assert result.outcomes == {"Train": "created", "train": "removed"}
    assert manager.rollback("c", 3).outcomes == {"Train": "removed", "train": "created"}
