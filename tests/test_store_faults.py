"""Faults at every step of a store write: a clear error, the old state intact, no temp files.

``regman.store`` and ``regman.atomic`` see a proxy of ``os`` that fails one chosen call with
ENOSPC, EIO, EACCES or EROFS. Only calls that touch the store are counted and failed: creating,
writing and fsyncing a temporary file, linking a file aside, renaming
(``os.replace``) and fsyncing a folder. A dry run of each operation lists its steps;
then each step is failed in turn on a fresh copy of the same store. Afterwards the
store (everything but the lock files, which are not state) must be byte-for-byte
what it was, no ``.tmp-`` file may remain, and both the manager that saw the error
and a new one must read the old state.

A folder fsync that fails after a rename is the interesting case: the new file is
already in place. The store undoes the rename and reports the error, so "it failed"
always means "nothing changed".
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import regman.atomic
import regman.store
from regman import RegistryManager
from regman.errors import StoreError
from regman.store import TMP_PREFIX, FileStore
from tests.conftest import make_spec, snapshot

ERRNOS = [errno.ENOSPC, errno.EIO, errno.EACCES, errno.EROFS]
REAL_OS = os


@dataclass
class Plan:
    """Which store call fails: the ``at``-th (0-based) one; sticky: later ones of its kind too."""

    root: str
    at: int = -1
    error: int = errno.EIO
    sticky: bool = False
    calls: list[str] = field(default_factory=list)
    fired: str | None = None

    def step(self, kind: str, path: str) -> None:
        index = len(self.calls)
        self.calls.append(kind)
        if index == self.at or (self.sticky and self.fired == kind):
            self.fired = kind
            raise OSError(self.error, REAL_OS.strerror(self.error), path)


class FaultyOs:
    """Stands in for the ``os`` module inside regman.store and regman.atomic."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._temp_fds: dict[int, str] = {}
        self._dir_fds: dict[int, str] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(REAL_OS, name)

    def _ours(self, path: Any) -> bool:
        return isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith(self._plan.root)

    def open(self, path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        ours = self._ours(path)
        is_dir = ours and REAL_OS.path.isdir(path)
        is_temp = ours and REAL_OS.path.basename(path).startswith(TMP_PREFIX)
        if is_temp:
            self._plan.step("open", path)
        fd = REAL_OS.open(path, flags, mode, **kwargs)
        if is_temp:
            self._temp_fds[fd] = path
        elif is_dir:
            self._dir_fds[fd] = path
        return fd

    def write(self, fd: int, data: Any) -> int:
        if fd in self._temp_fds:
            self._plan.step("write", self._temp_fds[fd])
        return REAL_OS.write(fd, data)

    def fsync(self, fd: int) -> None:
        if fd in self._temp_fds:
            self._plan.step("fsync", self._temp_fds[fd])
        elif fd in self._dir_fds:
            self._plan.step("dirfsync", self._dir_fds[fd])
        REAL_OS.fsync(fd)

    def close(self, fd: int) -> None:
        self._temp_fds.pop(fd, None)
        self._dir_fds.pop(fd, None)
        REAL_OS.close(fd)

    def replace(self, src: Any, dst: Any, **kwargs: Any) -> None:
        if self._ours(src) or self._ours(dst):
            self._plan.step("replace", os.fspath(dst))
        REAL_OS.replace(src, dst, **kwargs)

    def link(self, src: Any, dst: Any, **kwargs: Any) -> None:
        if self._ours(src) or self._ours(dst):
            self._plan.step("link", os.fspath(dst))
        REAL_OS.link(src, dst, **kwargs)


def temp_files(root: Path) -> list[str]:
    return [
        os.path.join(folder, f)
        for folder, _, files in os.walk(root)
        for f in files
        if f.startswith(TMP_PREFIX)
    ]


def seeded_store(path: Path) -> None:
    """A store with two contexts; 'ctx' holds steps 'a' and 'b'."""
    manager = RegistryManager(path)
    registry = manager.get_registry("ctx")
    assert registry is not None
    registry.register_specification("a", make_spec("A"))
    registry.register_specification(
        "b", make_spec("B", deps={"in": "training_data"}, outs={"out": "model_artifacts"})
    )
    other = manager.get_registry("other")
    assert other is not None
    other.register_specification("x", make_spec("X"))


def state_seen_by(manager: RegistryManager) -> dict[str, Any]:
    specs = {}
    for name in manager.list_contexts():
        registry = manager.get_registry(name, create_if_missing=False)
        assert registry is not None
        specs[name] = {
            step: spec.to_yaml() for step, spec in registry.list_specifications().items()
        }
    stats = {
        name: {k: v for k, v in s.items() if k not in ("created_at", "updated_at")}
        for name, s in manager.get_context_stats().items()
    }
    return {"specs": specs, "stats": stats}


Operation = Callable[[RegistryManager], object]

OPERATIONS: dict[str, Operation] = {
    "register_new_step": lambda m: m.get_registry("ctx").register_specification(  # type: ignore[union-attr]
        "c", make_spec("C")
    ),
    "register_replacing": lambda m: m.get_registry("ctx").register_specification(  # type: ignore[union-attr]
        "a", make_spec("A2", outs={"other": "processing_output"})
    ),
    "register_new_context": lambda m: m.store.put_spec("fresh", "s", make_spec("S")),
    "create_context": lambda m: m.get_registry("fresh"),
    "remove": lambda m: m.get_registry("ctx").remove_specification("a"),  # type: ignore[union-attr]
    "remove_purge": lambda m: m.store.delete_spec("ctx", "a", purge=True),
    "clear": lambda m: m.clear_context("ctx"),
    "clear_purge": lambda m: m.store.delete_context("ctx", purge=True),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "template"
    seeded_store(path)
    return path


@pytest.fixture
def faulty(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Plan], None]]:
    def install(plan: Plan) -> None:
        proxy = FaultyOs(plan)
        for module in (regman.store, regman.atomic):
            monkeypatch.setattr(module, "os", proxy)

    yield install


def fresh_copy(template: Path, tmp_path: Path, name: str) -> tuple[Path, RegistryManager]:
    root = tmp_path / name
    shutil.copytree(template, root)
    manager = RegistryManager(root)
    state_seen_by(manager)  # warm the registries' caches, as a long-lived process would
    return root, manager


def dry_run(template: Path, tmp_path: Path, op: str, install: Callable[[Plan], None]) -> list[str]:
    root, manager = fresh_copy(template, tmp_path, f"dry-{op}")
    plan = Plan(str(root))
    install(plan)
    OPERATIONS[op](manager)
    assert plan.fired is None
    return plan.calls


@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_each_step_of_each_write_fails_cleanly(
    op: str, template: Path, tmp_path: Path, faulty: Callable[[Plan], None]
) -> None:
    calls = dry_run(template, tmp_path, op, faulty)
    kinds = set(calls)
    # every write goes through a temp file or a rename, each followed by a folder fsync
    assert "replace" in kinds and "dirfsync" in kinds, calls
    if op.startswith(("register", "create")):
        assert {"open", "write", "fsync"} <= kinds, calls
    cases = [(at, error, False) for at in range(len(calls)) for error in ERRNOS]
    cases += [(at, errno.ENOSPC, True) for at in range(len(calls)) if calls[at] != "replace"]
    for n, (at, error, sticky) in enumerate(cases):
        root, manager = fresh_copy(template, tmp_path, f"{op}-{n}")
        before = snapshot(root)
        seen_before = state_seen_by(RegistryManager(root))
        plan = Plan(str(root), at=at, error=error, sticky=sticky)
        faulty(plan)
        where = f"{op}: {calls[at]} #{at} failing with {errno.errorcode[error]}, sticky={sticky}"
        with pytest.raises(StoreError) as caught:
            OPERATIONS[op](manager)
        assert plan.fired == calls[at], where
        assert caught.value.exit_code == 3
        assert "\n" not in str(caught.value)
        faulty(Plan(str(root)))  # faults over: read back with a working os
        assert temp_files(root) == [], where
        assert snapshot(root) == before, where
        assert state_seen_by(manager) == seen_before, where
        assert state_seen_by(RegistryManager(root)) == seen_before, where
        shutil.rmtree(root)


def test_the_store_works_after_a_fault(
    template: Path, tmp_path: Path, faulty: Callable[[Plan], None]
) -> None:
    root, manager = fresh_copy(template, tmp_path, "after")
    calls = dry_run(template, tmp_path, "register_new_step", faulty)
    faulty(Plan(str(root), at=calls.index("dirfsync"), error=errno.EIO))
    with pytest.raises(StoreError):
        OPERATIONS["register_new_step"](manager)
    faulty(Plan(str(root)))
    assert OPERATIONS["register_new_step"](manager) == "created"
    registry = RegistryManager(root).get_registry("ctx")
    assert registry is not None
    assert registry.list_step_names() == ["a", "b", "c"]
    assert manager.get_context_stats()["ctx"]["step_count"] == 3


def test_a_failed_undo_says_so(
    template: Path, tmp_path: Path, faulty: Callable[[Plan], None]
) -> None:
    """When even the undo cannot run, the error says the change may be partial."""
    root, manager = fresh_copy(template, tmp_path, "undo")
    calls = dry_run(template, tmp_path, "register_replacing", faulty)
    last_dirfsync = len(calls) - 1 - calls[::-1].index("dirfsync")

    class FailingUndo(Plan):
        def step(self, kind: str, path: str) -> None:
            if self.fired and kind == "replace":  # every rename after the fault fails
                raise OSError(errno.EROFS, REAL_OS.strerror(errno.EROFS), path)
            super().step(kind, path)

    faulty(FailingUndo(str(root), at=last_dirfsync, error=errno.EIO))
    with pytest.raises(StoreError) as caught:
        OPERATIONS["register_replacing"](manager)
    assert caught.value.hint is not None and "doctor" in caught.value.hint


def test_fault_targets_only_the_store(tmp_path: Path, faulty: Callable[[Plan], None]) -> None:
    """The proxy leaves other paths alone, so the faults above are the store's own."""
    plan = Plan(str(tmp_path / "store"), at=0, error=errno.EIO)
    faulty(plan)
    outside = tmp_path / "elsewhere.txt"
    regman.store.atomic_write(str(outside), b"fine")
    assert outside.read_bytes() == b"fine"
    assert plan.calls == []
    store = FileStore(tmp_path / "store")
    with pytest.raises(StoreError):
        store.create_context("ctx")
    assert plan.fired is not None
