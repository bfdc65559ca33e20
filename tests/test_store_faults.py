"""Faults at every OS call a store write makes: one clear error, exit 3, nothing changed.

``regman.store.safeio`` (the only module that touches store files) sees a proxy of
``os`` that fails one chosen call with ENOSPC, EIO, EACCES or EROFS. The calls
counted are those of the write path: opening a file for writing, ``write``,
``fsync`` (files and folders), ``link``, ``replace``, ``utime``, ``mkdir``,
``unlink`` and ``rmdir``. A clean run of each command lists its calls; then each
call is failed in turn, with each errno, on a fresh copy of the same store.

What must hold (decided precisely):

- the command exits 3 with one ``error:`` line (and at most a ``hint:``), or, when
  the failed call was one the write does not need (removing its own temporary
  file after it landed), exits 0 with the change whole;
- after a failure the store is byte for byte what it was, lock files and the
  derived ``cache/`` aside: no new object, no temporary file, no empty folder;
- after a success that survived a fault, a left temporary file is the only
  difference allowed, and ``doctor --repair`` removes it;
- a purge is the exception by design (its tombstone lands first): a failure after
  it leaves the context gone, ``doctor --repair`` finishes it and doctor is clean.

An import of 50 files on a disk that fills up midway registers none of them.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import regman.store.safeio as safeio
from regman.cli import app
from tests.conftest import EXAMPLES, snapshot

ERRNOS = [errno.ENOSPC, errno.EIO, errno.EACCES, errno.EROFS]
STRESS = os.environ.get("REGMAN_STRESS") == "1"
REAL_OS = os
TRAINING = EXAMPLES / "training_pipeline"
LOAD = TRAINING / "data_loading_training.step.yaml"
TRAIN = TRAINING / "training.step.yaml"
PACKAGING = TRAINING / "packaging.step.yaml"
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT

pytestmark = pytest.mark.skipif(os.name != "posix", reason="dir_fd calls are POSIX")


@dataclass
class Plan:
    """Fail the ``at``-th (0-based) counted call; ``sticky``: and every later one of its kind."""

    at: int = -1
    error: int = errno.EIO
    sticky: bool = False
    kinds: tuple[str, ...] = ()
    calls: list[str] = field(default_factory=list)
    fired: str | None = None

    def step(self, kind: str) -> None:
        if self.kinds and kind not in self.kinds:
            return
        index = len(self.calls)
        self.calls.append(kind)
        if index == self.at or (self.sticky and self.fired == kind):
            self.fired = kind
            raise OSError(self.error, REAL_OS.strerror(self.error))


class FaultyOs:
    """Stands in for ``os`` inside regman.store.safeio."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan

    def __getattr__(self, name: str) -> Any:
        return getattr(REAL_OS, name)

    def open(self, path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & _WRITE_FLAGS:
            self._plan.step("open")
        return REAL_OS.open(path, flags, *args, **kwargs)

    def _wrap(name: str) -> Any:  # type: ignore[misc]
        def call(self: FaultyOs, *args: Any, **kwargs: Any) -> Any:
            self._plan.step(name)
            return getattr(REAL_OS, name)(*args, **kwargs)

        call.__name__ = name
        return call

    write = _wrap("write")
    fsync = _wrap("fsync")
    link = _wrap("link")
    replace = _wrap("replace")
    utime = _wrap("utime")
    mkdir = _wrap("mkdir")
    unlink = _wrap("unlink")
    rmdir = _wrap("rmdir")
    del _wrap


@pytest.fixture
def faulty(monkeypatch: pytest.MonkeyPatch) -> Iterator[Plan]:
    plan = Plan()
    monkeypatch.setattr(safeio, "os", FaultyOs(plan))
    yield plan


def cli(store: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--store", str(store), *args])


def state(root: Path) -> dict[str, bytes | None]:
    """The store's state: everything but lock files and the derived cache."""
    return {
        k: v
        for k, v in snapshot(root).items()
        if os.path.normpath(k).split(os.sep)[0] not in ("cache", "locks")
    }


def temp_files(root: Path) -> list[str]:
    return [
        os.path.join(folder, name)
        for folder, _, files in os.walk(root)
        for name in files
        if name.startswith(safeio.TMP_PREFIX)
    ]


def make_template(root: Path, imports: Path) -> None:
    """ctx at revision 4 (load, train; packaging removed); gone: cleared; the import folder."""
    for args in [
        ("register", "ctx", "load", str(LOAD)),
        ("register", "ctx", "train", str(TRAIN)),
        ("register", "ctx", "packaging", str(PACKAGING)),
        ("remove", "ctx", "packaging"),
        ("register", "gone", "load", str(LOAD)),
        ("clear", "gone", "--yes"),
    ]:
        result = cli(root, *args)
        assert result.exit_code == 0, result.stderr
    imports.mkdir()
    text = LOAD.read_text()
    for i in range(50):
        (imports / f"step{i:02d}.step.yaml").write_text(
            text.replace("Pull the training split", f"Pull split {i}")
        )


OPERATIONS: dict[str, tuple[str, ...]] = {
    "register-new": ("register", "ctx", "extra", str(TRAIN)),
    "register-update": ("register", "ctx", "load", str(TRAIN)),
    "register-new-context": ("register", "fresh", "load", str(LOAD)),
    "import-50": ("import", "ctx", "{imports}"),
    "remove": ("remove", "ctx", "train"),
    "clear": ("clear", "ctx", "--yes"),
    "restore-context": ("restore", "gone"),
    "restore-step": ("restore", "ctx", "packaging"),
    "rollback": ("rollback", "ctx", "--to", "1", "--yes"),
    "remove-purge": ("remove", "ctx", "train", "--purge", "--yes"),
    "trash-empty": ("trash", "empty", "--yes"),
    "clear-purge": ("clear", "ctx", "--purge", "--yes"),
}
PURGES = {"remove-purge", "trash-empty", "clear-purge"}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("faults")
    make_template(base / "store", base / "imports")
    return base


def fresh(template: Path, tmp_path: Path, name: str) -> tuple[Path, list[str]]:
    root = tmp_path / name
    shutil.copytree(template / "store", root)
    return root, [a.replace("{imports}", str(template / "imports")) for a in OPERATIONS[name]]


def listing(root: Path) -> list[tuple[str, int, int]]:
    """(context, revision, step count) of every live context."""
    import json

    result = cli(root, "contexts", "list", "--json")
    assert result.exit_code == 0, result.stderr
    return [(c["name"], c["revision"], c["step_count"]) for c in json.loads(result.stdout)]


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_fault_at_every_call_changes_nothing(
    operation: str, template: Path, tmp_path: Path, faulty: Plan
) -> None:
    # A clean run: the calls the command makes, and the state it leads to.
    root, args = fresh(template, tmp_path, operation)
    before = state(root)
    result = cli(root, *args)
    assert result.exit_code == 0, result.stderr
    calls = list(faulty.calls)
    assert calls, "the fault proxy saw no call: it no longer sits where the store writes"
    after_ok = listing(root)
    shutil.rmtree(root)

    points = range(len(calls)) if STRESS or len(calls) <= 60 else _sample(len(calls))
    if operation == "import-50" and not STRESS:
        points = points[::2]  # (the first and last calls of each kind are in the sample)
    failures = successes = 0
    for at in points:
        for error in ERRNOS if STRESS else ERRNOS[at % 2 :: 2]:  # each errno on half the calls
            root, args = fresh(template, tmp_path, operation)
            faulty.at, faulty.error, faulty.calls[:] = at, error, []
            faulty.fired = None
            result = cli(root, *args)
            faulty.at = -1
            where = f"{operation}: {errno.errorcode[error]} at call {at} ({calls[at]})"
            assert result.exit_code in (0, 3), f"{where}: exit {result.exit_code}\n{result.stderr}"
            if result.exit_code == 3:
                failures += 1
                lines = result.stderr.splitlines()
                assert lines and lines[0].startswith("error: "), f"{where}: {result.stderr}"
                assert all(line.startswith("hint: ") for line in lines[1:]), where
                if operation not in PURGES:
                    assert state(root) == before, f"{where}: the store changed"
                else:  # the purge's tombstone may have landed: gone, and finishable
                    _finish_purge(root, where)
            else:
                successes += 1
                assert listing(root) == after_ok or operation in PURGES, where
                _repair_leaves_no_temp(root, where)
            assert temp_files(root) == [] or result.exit_code == 0, f"{where}: temp left"
            shutil.rmtree(root)
    print(f"\n{operation}: {len(calls)} calls, {failures} faults failed it, {successes} survived")
    assert failures > 0


def _sample(n: int) -> list[int]:
    """For long writes (import of 50): the first and last 30 calls and every 9th between."""
    return sorted(set(range(30)) | set(range(n - 30, n)) | set(range(30, n - 30, 9)))


def _repair_leaves_no_temp(root: Path, where: str) -> None:
    if not temp_files(root):
        return
    assert cli(root, "doctor", "--repair").exit_code == 0, where
    assert temp_files(root) == [], f"{where}: doctor --repair left temporary files"


def _finish_purge(root: Path, where: str) -> None:
    result = cli(root, "doctor", "--repair")
    assert result.exit_code in (0, 1), f"{where}: {result.stderr}"
    result = cli(root, "doctor")
    assert result.exit_code == 0, f"{where}: doctor unclean after a failed purge:\n{result.stdout}"


def test_an_import_of_50_files_onto_a_full_disk_registers_none(
    template: Path, tmp_path: Path, faulty: Plan
) -> None:
    """The disk fills up after k writes (every later write fails too), for several k."""
    root, args = fresh(template, tmp_path, "import-50")
    before = state(root)
    faulty.kinds = ("write",)
    assert cli(root, *args).exit_code == 0
    writes = len(faulty.calls)
    assert writes >= 50  # one spec object each, at least
    shutil.rmtree(root)
    # (the last write is the new revision's record, written after the change landed)
    for at in sorted({0, 1, 10, 25, 26, writes // 2, writes - 3, writes - 2}):
        root, args = fresh(template, tmp_path, "import-50")
        faulty.at, faulty.error, faulty.sticky, faulty.calls[:] = at, errno.ENOSPC, True, []
        faulty.fired = None
        result = cli(root, *args)
        faulty.at, faulty.sticky = -1, False
        assert result.exit_code == 3, (at, result.stderr)
        assert "disk space" in result.stderr
        assert state(root) == before, f"the disk filled at write {at}: the store changed"
        shown = cli(root, "contexts", "show", "ctx", "--json")
        assert "step00" not in shown.stdout
        shutil.rmtree(root)
