"""A writer killed with SIGKILL at any file-system call leaves every context whole.

Each operation (register, import of 50 files, remove, clear, restore, rollback,
purge, trash empty, and the format-1 upgrade) runs in a forked child that kills
itself just before its k-th write-path call (``open`` for writing, ``write``,
``fsync``, ``link``, ``replace``, ``utime``, ``mkdir``, ``unlink``, ``rmdir``),
for k = 1, 2, ... until the operation completes (long operations: every few
points by default, all under ``REGMAN_STRESS=1``). After every kill:

- every context is whole at its state before the operation or after it (its
  revision, whether it is cleared, each step's exact stored bytes), never between;
  a purge may also leave the context gone (its tombstone landed);
- the next writer proceeds at once (a dead holder never blocks the lock) and makes
  the next revision;
- ``doctor`` finds nothing but leftovers of the interrupted write; after
  ``doctor --repair``, ``doctor`` is clean (no item at all) and the state is unchanged.

A second test kills writers at random moments, many times (bounded to ~40 s).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from regman import RegistryManager
from regman.specfile import load_spec_file
from regman.store import FileStore
from regman.store.core import iter_heads
from regman.store.doctor import check_store
from tests.conftest import EXAMPLES

STRESS = os.environ.get("REGMAN_STRESS") == "1"
TRAINING = EXAMPLES / "training_pipeline"
FORMAT1 = Path(__file__).resolve().parent / "corpus" / "format1-store"
LOCK_AT_ONCE = 2.0  # seconds: a lock held by a dead process never blocks
STRIDE_LONG = 1 if STRESS else 6  # kill points tried in long operations: every n-th
RANDOM_BUDGET = 240.0 if STRESS else 25.0
RANDOM_KILLS = 2000 if STRESS else 150
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"), reason="needs fork and SIGKILL"
    ),
]


def spec(name: str) -> Any:
    return load_spec_file(TRAINING / f"{name}.step.yaml")


def variant(i: int) -> Any:
    s = spec("data_loading_training")
    return s.model_copy(update={"description": f"variant {i}"})


# -- the state of a store ----------------------------------------------------------------
Context = tuple[int, bool, dict[str, bytes]]  # (revision, cleared, {step: stored bytes})
State = dict[str, Context | None]


def store_state(root: Path) -> State:
    """context -> (revision, cleared, {step: stored bytes}); None for a purge tombstone."""
    store = FileStore(root, lock_timeout=5.0)
    store.check_format()  # a format-1 store (or an interrupted upgrade) is upgraded first
    found: State = {}
    for name, head in iter_heads(store):
        if head is None:
            assert not (root / "contexts" / name / "head.json").exists(), f"{name}: bad head"
            continue  # a folder without a head: a first write that did not land
        if head.last.command == "purge":
            found[name] = None
            continue
        steps = {s: store.spec_bytes(name, s, e) for s, e in sorted(head.steps.items())}
        found[name] = (head.revision, head.cleared, steps)
    return found


def live(state: State) -> dict[str, Context]:
    return {k: v for k, v in state.items() if v is not None}


# -- operations (run in forked children) -----------------------------------------------------
def _import_50(m: RegistryManager) -> None:
    m.register_specs("ctx", {f"step{i:02d}": variant(i) for i in range(50)}, command="import")


OPERATIONS: dict[str, Callable[[RegistryManager], Any]] = {
    "register-new": lambda m: m.register_specs("ctx", {"extra": spec("packaging")}),
    "register-update": lambda m: m.register_specs("ctx", {"load": spec("training")}),
    "register-new-context": lambda m: m.register_specs("fresh", {"load": spec("payload")}),
    "import-50": _import_50,
    "remove": lambda m: m.remove_step("ctx", "train"),
    "clear": lambda m: m.clear_context("ctx"),
    "restore-context": lambda m: m.restore("gone"),
    "restore-step": lambda m: m.restore("ctx", "old"),
    "rollback": lambda m: m.rollback("ctx", 1),
    "purge": lambda m: m.clear_context("ctx", purge=True),
    "remove-purge": lambda m: m.remove_step("ctx", "train", purge=True),
    "trash-empty": lambda m: m.empty_trash(),
    "upgrade": lambda m: m.register_specs("production", {"extra": spec("payload")}),
}
LONG = {"import-50", "upgrade"}
PURGES = {"purge", "remove-purge", "trash-empty"}


def make_template(root: Path) -> None:
    """ctx: load, train (old removed: restorable), at revision 4; gone: cleared."""
    m = RegistryManager(FileStore(root))
    m.register_specs("ctx", {"load": spec("data_loading_training"), "old": spec("payload")})
    m.register_specs("ctx", {"train": spec("training")})
    m.register_specs("ctx", {"load": variant(99)})
    m.remove_step("ctx", "old")
    m.register_specs("gone", {"load": spec("payload")})
    m.clear_context("gone")
    assert check_store(m.store).items == []


def die_at_call(number: int) -> None:
    """Make this (forked) process SIGKILL itself just before its ``number``-th write call."""
    calls = [0]

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            if name != "open" or (len(args) > 1 and args[1] & _WRITE_FLAGS):
                calls[0] += 1
                if calls[0] == number:
                    os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)

        return counted

    for name in ("open", "write", "fsync", "link", "replace", "utime", "mkdir", "unlink", "rmdir"):
        setattr(os, name, wrap(name, getattr(os, name)))


def child(root: str, operation: str, die_at: int) -> None:
    manager = RegistryManager(FileStore(root, lock_timeout=30.0))
    if die_at:
        die_at_call(die_at)
    OPERATIONS[operation](manager)


def run_child(target: Callable[..., None], *args: Any, kill_after: float | None = None) -> int:
    proc = multiprocessing.get_context("fork").Process(target=target, args=args, daemon=True)
    proc.start()
    if kill_after is not None:
        time.sleep(kill_after)
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=120)
    assert proc.exitcode is not None, "the child did not end"
    return proc.exitcode


# -- what must hold after a kill ------------------------------------------------------------
LEFTOVERS = (
    "temporary file",
    "no revision refers to",
    "beyond the head",
    "only in the head",
    "has no revision",
    "interrupted purge",
    "purge of the context was interrupted",
)


def assert_after_kill(root: Path, operation: str, old: State, new: State, where: str) -> None:
    now = store_state(root)
    for context in set(old) | set(new) | set(now):
        got = now.get(context, "absent")
        allowed = [old.get(context, "absent"), new.get(context, "absent")]
        if operation in PURGES:
            allowed += [None, "absent"]
        if operation == "upgrade" and got == "absent":
            continue  # not upgraded yet: the next command does it
        assert got in allowed, f"{where}: context {context} is neither old nor new: {got!r:.300}"
    store = FileStore(root, lock_timeout=5.0)
    report = check_store(store)
    if operation != "upgrade" or report.items:
        for item in report.items:
            leftover = any(text in item.problem for text in LEFTOVERS)
            purging = operation in PURGES and item.severity == "error"
            assert leftover or purging, f"{where}: damage after a kill: {item}"
    # the next writer proceeds at once (the dead writer's lock is free)
    began = time.monotonic()
    with store.backend.writer_lock("ctx"):
        pass
    assert time.monotonic() - began < LOCK_AT_ONCE, f"{where}: the lock stayed held"
    repaired = check_store(store, repair=True)
    assert repaired.healthy, f"{where}: doctor --repair left {repaired.to_dict()}"
    again = check_store(FileStore(root))
    assert again.items == [], f"{where}: doctor after --repair: {again.to_dict()['items']}"
    temps = [p for p in root.rglob(".tmp-*") if "locks" not in p.parts]
    assert temps == [], f"{where}: temporary files left after doctor --repair: {temps}"
    after_repair = store_state(root)
    assert live(after_repair) == live(now) or operation == "upgrade", f"{where}: repair changed it"
    context = "production" if operation == "upgrade" else "ctx"
    manager = RegistryManager(FileStore(root, lock_timeout=5.0))
    before = manager.revision(context)
    head = manager.store.head(context)
    result = manager.register_specs(context, {"next": variant(7)})
    assert result.revision == (0 if head is None or head.last.command == "purge" else before) + 1
    assert check_store(FileStore(root)).items == [], f"{where}: the next write left damage"


def copy_template(template: Path, root: Path, operation: str) -> None:
    shutil.copytree(FORMAT1 if operation == "upgrade" else template, root)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_kill_at_every_call_leaves_old_or_new(operation: str, tmp_path: Path) -> None:
    template = tmp_path / "template"
    make_template(template)
    clean = tmp_path / "clean"
    copy_template(template, clean, operation)
    old = store_state(clean)  # (a format-1 store: upgraded, without the change)
    if operation == "upgrade":
        shutil.rmtree(clean)
        copy_template(template, clean, operation)
    assert run_child(child, str(clean), operation, 0) == 0
    new = store_state(clean)
    if operation == "upgrade":  # every spec of the format-1 store survives
        assert sorted(new) == ["dev", "production", "training_pipeline"]
        assert len(new["production"][2]) == 5  # type: ignore[index]
    kills, die_at = 0, 0
    while True:
        die_at += 1
        assert die_at < 5000, f"{operation} never completed"
        stride = STRIDE_LONG if operation in LONG else 1
        if (die_at - 1) % stride:
            continue
        root = tmp_path / f"run-{die_at}"
        copy_template(template, root, operation)
        code = run_child(child, str(root), operation, die_at)
        if code == 0:
            break  # past its last call: every point was tried
        assert code == -signal.SIGKILL, f"{operation} failed by itself at call {die_at}: {code}"
        kills += 1
        assert_after_kill(root, operation, old, new, f"{operation} killed at call {die_at}")
        if operation == "upgrade":
            assert live(store_state(root)).keys() == new.keys()
        shutil.rmtree(root)
    print(f"\n{operation}: {kills} kills, {die_at - 1} write calls")
    assert kills >= 3


# -- random kills -----------------------------------------------------------------------------
def random_writer(root: str, seed: int) -> None:
    rng = random.Random(seed)
    manager = RegistryManager(FileStore(root, lock_timeout=60.0))
    steps = ("load", "train", "score")
    from regman.errors import RegmanError

    while True:
        context, step = rng.choice(("alpha", "beta")), rng.choice(steps)
        roll = rng.random()
        try:
            if roll < 0.05:
                manager.clear_context(context)
            elif roll < 0.10:
                manager.restore(context)
            elif roll < 0.13:
                manager.clear_context(context, purge=True)
            elif roll < 0.30:
                manager.remove_step(context, step)
            elif roll < 0.36:
                revision = manager.revision(context)
                if revision > 1:
                    manager.rollback(context, rng.randint(1, revision - 1))
            else:
                manager.register_specs(context, {step: variant(rng.randrange(5))})
        except RegmanError as e:  # refusals (not cleared, not found) are fine; damage is not
            assert e.exit_code != 3, f"store error in a writer: {e}"


def test_random_kills_never_damage_the_store(tmp_path: Path) -> None:
    seed = int(os.environ.get("REGMAN_KILL_SEED", "20261203"))
    print(f"\nkill seed {seed} (REGMAN_KILL_SEED replays it)")
    rng = random.Random(seed)
    root = tmp_path / "store"
    texts = {variant(i).to_yaml().encode() for i in range(5)}
    began, kills = time.monotonic(), 0
    while kills < RANDOM_KILLS and time.monotonic() - began < RANDOM_BUDGET:
        code = run_child(
            random_writer, str(root), rng.getrandbits(32), kill_after=rng.uniform(0, 0.08)
        )
        assert code == -signal.SIGKILL, f"the writer failed by itself (exit {code})"
        kills += 1
        where = f"after random kill {kills} (seed {seed})"
        state = store_state(root) if root.exists() else {}
        for context, value in live(state).items():
            for step, data in value[2].items():
                assert data in texts, f"{where}: {context}/{step} holds bytes nobody wrote"
        store = FileStore(root, lock_timeout=5.0)
        for item in check_store(store).items:
            assert any(t in item.problem for t in LEFTOVERS) or (
                item.severity == "error" and (state.get(item.path.split(":")[0], 0) is None)
            ), f"{where}: {item}"
        assert check_store(store, repair=True).healthy, where
        assert check_store(FileStore(root)).items == [], where
        for context in ("alpha", "beta"):
            head = store.head(context)
            if head is not None and head.last.command != "purge":
                history = [r.revision for r in RegistryManager(store).history(context)]
                assert history == list(range(head.revision, 0, -1)), f"{where}: gaps {history}"
    print(f"{kills} random kills in {time.monotonic() - began:.1f} s")
    assert kills >= 30
    json.dumps(kills)
