"""A writer killed with SIGKILL at any moment never damages the store nor blocks the next one.

Two tests:

- random kills: a child process (forked, so that it starts in milliseconds) runs
  register / remove / clear in a loop and is killed after a random delay, over and
  over (>= 100 kills by default, bounded in time; ``REGMAN_STRESS=1`` for hundreds
  more). The seed is printed; ``REGMAN_KILL_SEED`` replays a run's choices.
- every kill point: one operation is run in a child that kills itself just before
  its k-th file-system call (open, write, fsync, link, replace, unlink, mkdir), for
  every k, so each step of each kind of write is interrupted once, deterministically.

After each kill: the next writer gets the context's lock at once (< 1 s: a lock
held by a dead process never blocks); every context loads; every spec file (and
every spec in the trash) is byte for byte one of the versions written; no temporary
file is seen as a spec; ``check_store`` finds no damage except derived data (an
index, temporary files, an empty folder) and repairs it.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from regman import RegistryManager
from regman.doctor import check_store
from regman.store import CHANGING, INDEX, TMP_PREFIX, FileStore

STRESS = os.environ.get("REGMAN_STRESS") == "1"
KILLS = 3000 if STRESS else 300  # stop after this many kills ...
BUDGET = 300.0 if STRESS else 40.0  # ... or after this many seconds of killing
MIN_KILLS = 30  # a sanity floor even on a very slow machine (the usual run does KILLS)
MAX_DELAY = 0.06  # seconds between a writer's start and its kill
LOCK_AT_ONCE = 1.0  # seconds: the only timing assertion (a dead holder never blocks)
CONTEXTS = ("alpha", "beta")
STEPS = ("load", "train", "score")
VARIANTS = 3
COUNTERS = (
    "step_count",
    "step_types",
    "node_types",
    "dependency_count",
    "required_dependency_count",
    "output_count",
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"), reason="needs fork and SIGKILL"
    ),
]


@cache
def known_specs() -> dict[str, list[Any]]:
    """step -> the specs a writer may store under it (each variant differs in every count)."""
    from regman.specfile import coerce_specification

    specs: dict[str, list[Any]] = {}
    for s, step in enumerate(STEPS):
        specs[step] = []
        for v in range(VARIANTS):
            n_deps, n_outs = (s + v) % 3, 1 + v % 2
            specs[step].append(
                coerce_specification(
                    {
                        "step_type": f"{step.title()}Step{v}",
                        "node_type": "source" if n_deps == 0 else "internal",
                        "description": f"{step}, version {v}" + " padding" * 40 * v,
                        "dependencies": [
                            {
                                "logical_name": f"in_{d}",
                                "dependency_type": "training_data",
                                "required": d % 2 == 0,
                            }
                            for d in range(n_deps)
                        ],
                        "outputs": [
                            {
                                "logical_name": f"out_{o}",
                                "output_type": "model_artifacts",
                                "property_path": f"properties.Out{o}.S3Uri",
                            }
                            for o in range(n_outs)
                        ],
                    }
                )
            )
    return specs


@cache
def known_texts() -> dict[str, set[bytes]]:
    return {step: {s.to_yaml().encode() for s in specs} for step, specs in known_specs().items()}


def writer_store(root: str) -> FileStore:
    return FileStore(root, lock_timeout=120.0)


# ---------------------------------------------------------------------------------------
# Writers (run in forked children: the parent has already imported everything)
# ---------------------------------------------------------------------------------------
def random_writer(root: str, seed: int) -> None:
    """register / remove / clear at random, forever (until killed)."""
    rng = random.Random(seed)
    manager = RegistryManager(writer_store(root))
    specs = known_specs()
    while True:
        context, step = rng.choice(CONTEXTS), rng.choice(STEPS)
        roll = rng.random()
        if roll < 0.08:
            manager.clear_context(context)
            continue
        registry = manager.get_registry(context)
        assert registry is not None
        if roll < 0.35:
            registry.remove_specification(step)
        else:
            registry.register_specification(step, rng.choice(specs[step]))


_PATCHED = ("open", "write", "fsync", "link", "replace", "rename", "unlink", "mkdir", "rmdir")


def die_at_call(number: int) -> None:
    """Make this process SIGKILL itself just before its ``number``-th file-system call."""
    calls = [0]

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] == number:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)

        counted.__name__ = name
        return counted

    for name in _PATCHED:
        setattr(os, name, wrap(name, getattr(os, name)))


def one_operation(root: str, operation: str, die_at: int) -> None:
    manager = RegistryManager(writer_store(root))
    specs = known_specs()
    registry = manager.get_registry("alpha")
    assert registry is not None
    die_at_call(die_at)
    if operation == "register-new":
        registry.register_specification("score", specs["score"][0])
    elif operation == "register-update":
        registry.register_specification("train", specs["train"][2])
    elif operation == "remove":
        registry.remove_specification("load")
    elif operation == "clear":
        manager.clear_context("alpha")
    elif operation == "register-new-context":
        new = manager.get_registry("beta")
        assert new is not None
        new.register_specification("load", specs["load"][1])
    else:
        raise ValueError(operation)


def run_child(target: Callable[..., None], *args: Any, kill_after: float | None) -> int:
    """Fork a child running ``target``; SIGKILL it after ``kill_after`` s; its exit code."""
    child = multiprocessing.get_context("fork").Process(target=target, args=args, daemon=True)
    child.start()
    if kill_after is not None:
        time.sleep(kill_after)
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=600)
    assert child.exitcode is not None, "the child did not end"
    return child.exitcode


# ---------------------------------------------------------------------------------------
# What must hold after every kill
# ---------------------------------------------------------------------------------------
class Tally:
    def __init__(self) -> None:
        self.kills = 0
        self.stale_indexes = 0
        self.temp_files = 0
        self.empty_folders = 0
        self.slowest_lock = 0.0
        self.trash_seen: set[str] = set()


def assert_next_writer_gets_lock_at_once(root: str, tally: Tally) -> None:
    store = FileStore(root, lock_timeout=60.0)  # waiting would show as a slow acquire
    for context in CONTEXTS:
        began = time.monotonic()
        with store.locked(context):
            waited = time.monotonic() - began
        tally.slowest_lock = max(tally.slowest_lock, waited)
        assert waited < LOCK_AT_ONCE, f"the lock of '{context}' took {waited:.2f} s after a kill"


def spec_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.yaml") if not p.name.startswith("."))


def assert_store_sound(root: str, tally: Tally) -> None:
    texts = known_texts()
    manager = RegistryManager(FileStore(root, lock_timeout=60.0))
    store = manager.store
    assert isinstance(store, FileStore)
    contexts = manager.list_contexts()
    assert set(contexts) <= set(CONTEXTS), contexts
    manager.get_context_stats()  # every index reads (a damaged one is rebuilt, not raised)
    for context in contexts:
        names = store.step_names(context)
        assert set(names) <= set(STEPS), f"{context}: unexpected steps {names}"
        for step in names:
            data = Path(store.spec_path(context, step)).read_bytes()
            assert data in texts[step], f"{context}/{step} is no version ever written: {data!r}"
        registry = manager.get_registry(context, create_if_missing=False)
        assert registry is not None
        assert sorted(registry.list_specifications()) == names  # every spec loads
    # What a writer removed went to the trash whole, too.
    trash = Path(store.trash_dir)
    for path in spec_files(trash) if trash.exists() else []:
        key = str(path.relative_to(trash))
        if key in tally.trash_seen:
            continue
        tally.trash_seen.add(key)
        step = path.stem.rsplit("@", 1)[-1]
        assert path.read_bytes() in texts[step], f"trash entry {key} is no version written"

    report = check_store(store)
    for item in report.items:
        derived = (
            (item.path.endswith(INDEX) and "does not match" in item.problem)
            or os.path.basename(item.path).startswith(TMP_PREFIX)
            or os.path.basename(item.path) == CHANGING  # the interrupted-change mark
            or "no index and no specs" in item.problem
        )
        assert derived, f"damage beyond derived data after a kill: {item}"
        tally.stale_indexes += item.path.endswith(INDEX)
        tally.temp_files += os.path.basename(item.path).startswith(TMP_PREFIX)
        tally.empty_folders += "no index and no specs" in item.problem
    if report.items:
        repaired = check_store(store, repair=True)
        assert repaired.healthy, repaired.to_dict()
        again = check_store(store)
        assert again.items == [], again.to_dict()
        assert manager.list_contexts() == contexts


def recount_matches_index(root: str) -> list[str]:
    """Contexts whose index disagrees with a recount of their spec files."""
    store = FileStore(root)
    stale = []
    for context in store.list_contexts():
        index = store.read_index(context)
        assert index is not None
        rebuilt = store._rebuilt_index(context, index)
        if any(getattr(index, k) != getattr(rebuilt, k) for k in COUNTERS):
            stale.append(context)
    return stale


# ---------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------
def test_random_kills_never_damage_the_store(tmp_path: Path) -> None:
    seed = int(os.environ.get("REGMAN_KILL_SEED", "20240611"))
    print(f"\nkill test seed: {seed} (REGMAN_KILL_SEED={seed} replays its choices)")
    rng = random.Random(seed)
    root = str(tmp_path / "store")
    known_texts()  # built before forking, so every child starts writing at once
    tally = Tally()
    began = time.monotonic()
    while tally.kills < KILLS and time.monotonic() - began < BUDGET:
        delay = rng.uniform(0.0, MAX_DELAY)
        exit_code = run_child(random_writer, root, rng.getrandbits(32), kill_after=delay)
        assert exit_code == -signal.SIGKILL, f"the writer failed by itself (exit {exit_code})"
        tally.kills += 1
        try:
            assert_next_writer_gets_lock_at_once(root, tally)
            assert_store_sound(root, tally)
        except AssertionError as e:
            raise AssertionError(f"after kill {tally.kills} (seed {seed}): {e}") from e
    elapsed = time.monotonic() - began
    print(
        f"{tally.kills} kills in {elapsed:.1f} s; after them doctor repaired "
        f"{tally.stale_indexes} stale indexes, {tally.temp_files} temporary files and "
        f"{tally.empty_folders} empty context folders; slowest lock after a kill "
        f"{tally.slowest_lock * 1000:.1f} ms; {len(tally.trash_seen)} trash entries checked"
    )
    assert tally.kills >= MIN_KILLS
    assert recount_matches_index(root) == []


OPERATIONS = ("register-new", "register-update", "remove", "clear", "register-new-context")


def make_template(root: Path) -> None:
    """alpha: load (v0) and train (v1); no beta."""
    registry = RegistryManager(writer_store(str(root))).get_registry("alpha")
    assert registry is not None
    registry.register_specification("load", known_specs()["load"][0])
    registry.register_specification("train", known_specs()["train"][1])


def copy_store(template: Path, root: Path) -> None:
    import shutil

    shutil.copytree(template, root)


def assert_old_or_new(root: Path, operation: str) -> None:
    """The one step the operation touches holds its old or its new version, nothing else."""
    specs = known_specs()
    alpha = root / "contexts" / "alpha" / "specs"
    old_load, old_train = specs["load"][0].to_yaml(), specs["train"][1].to_yaml()

    def text(path: Path) -> str | None:
        return path.read_text() if path.exists() else None

    if operation == "register-new":
        assert text(alpha / "score.yaml") in (None, specs["score"][0].to_yaml())
    elif operation == "register-update":
        assert text(alpha / "train.yaml") in (old_train, specs["train"][2].to_yaml())
    elif operation == "remove":
        assert text(alpha / "load.yaml") in (None, old_load)
        trashed = list((root / "trash").glob("*@alpha@load.yaml"))
        assert (text(alpha / "load.yaml") is None) == (len(trashed) == 1)
    elif operation == "clear":
        exists = (alpha.parent / INDEX).exists()
        trashed = [p for p in (root / "trash").glob("*@alpha") if p.is_dir()]
        assert exists != bool(trashed), "alpha is both (or neither) in place and in the trash"
        where = alpha if exists else trashed[0] / "specs"
        assert text(where / "load.yaml") == old_load and text(where / "train.yaml") == old_train
    elif operation == "register-new-context":
        beta = root / "contexts" / "beta" / "specs"
        assert text(beta / "load.yaml") in (None, specs["load"][1].to_yaml())
    if operation != "clear":
        assert text(alpha / "train.yaml") in (old_train, specs["train"][2].to_yaml())


def test_a_kill_at_every_step_of_every_write(tmp_path: Path) -> None:
    template = tmp_path / "template"
    make_template(template)
    known_texts()
    tally = Tally()
    points: dict[str, int] = {}
    for operation in OPERATIONS:
        die_at = 0
        while True:
            die_at += 1
            assert die_at < 500, f"{operation} never completed"
            root = tmp_path / f"{operation}-{die_at}"
            copy_store(template, root)
            exit_code = run_child(one_operation, str(root), operation, die_at, kill_after=None)
            if exit_code == 0:
                break  # it got past its last file-system call: every point was tried
            assert exit_code == -signal.SIGKILL, f"{operation} failed by itself at call {die_at}"
            tally.kills += 1
            try:
                assert_next_writer_gets_lock_at_once(str(root), tally)
                assert_old_or_new(root, operation)
                assert_store_sound(str(root), tally)
            except AssertionError as e:
                raise AssertionError(f"{operation} killed before its call {die_at}: {e}") from e
        points[operation] = die_at - 1
    print(
        f"\nkill points per operation: {points}; doctor repaired {tally.stale_indexes} "
        f"stale indexes, {tally.temp_files} temporary files, {tally.empty_folders} empty folders"
    )
    assert all(n >= 3 for n in points.values()), points


def test_the_write_after_a_kill_leaves_a_correct_index(tmp_path: Path) -> None:
    """A kill between a spec's rename and its index's leaves the index stale; the next
    write through the library must not carry the error forward (stats would lie until
    someone runs 'regman doctor --repair')."""
    template = tmp_path / "template"
    make_template(template)
    stale_after: list[tuple[str, int]] = []
    carried: list[tuple[str, int]] = []
    for operation in ("register-new", "register-update", "remove"):
        for die_at in range(1, 200):
            root = tmp_path / f"{operation}-{die_at}"
            copy_store(template, root)
            if run_child(one_operation, str(root), operation, die_at, kill_after=None) == 0:
                break
            if not recount_matches_index(str(root)):
                continue
            stale_after.append((operation, die_at))
            registry = RegistryManager(writer_store(str(root))).get_registry("alpha")
            assert registry is not None
            registry.register_specification("extra", known_specs()["score"][1])
            if recount_matches_index(str(root)):
                carried.append((operation, die_at))
    assert stale_after, "no kill point left a stale index (the test no longer finds any)"
    assert carried == [], (
        f"after a kill at these (operation, call) points the next register left a wrong "
        f"index: {carried}"
    )
