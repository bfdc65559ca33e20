"""Many processes changing one store at once: every acknowledged change is one revision.

- 16 processes x 50 registers into one context: revisions 1..800, dense, each
  acknowledged register in exactly one revision, none lost, none duplicated, every
  spec's stored bytes exactly what its writer gave;
- mixed writers (register, remove, clear, restore, rollback) on several contexts:
  revision numbers acknowledged to writers are unique per context and dense, and
  the history replays to the head;
- purge (``clear --purge`` or ``trash empty``) racing ``restore`` and a register on
  a big cleared context, many rounds: restore fails cleanly (exit 1, one error
  line) or brings back every spec (a ``trash empty`` never purges what a restore
  brought back); a later register works; doctor is clean.

Children are fresh interpreters that import everything, say they are ready, then
wait for one go file, so they really run together. ``REGMAN_STRESS=1`` runs the
sizes of issue 9 (a 4,000-step context, more rounds).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regman import RegistryManager
from regman.store import FileStore
from regman.store.core import apply_changes
from regman.store.doctor import check_store

ROOT = Path(__file__).resolve().parent.parent
STRESS = os.environ.get("REGMAN_STRESS") == "1"
WRITERS, REGISTERS = 16, 50
MIXED_WRITERS, MIXED_OPS = (8, 60) if STRESS else (6, 30)
BIG_STEPS = 4000 if STRESS else 300
PURGE_ROUNDS = 12 if STRESS else 6
TIMEOUT = 600.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name != "posix", reason="process-level race tests for POSIX"),
]


def spec_doc(tag: str) -> dict[str, Any]:
    return {
        "step_type": "CradleDataLoading",
        "node_type": "source",
        "description": f"written as {tag}",
        "outputs": [
            {
                "logical_name": "DATA",
                "output_type": "processing_output",
                "property_path": "properties.ProcessingOutputConfig.Outputs['DATA'].S3Output.S3Uri",
            }
        ],
    }


def make_spec(tag: str) -> Any:
    from regman.specfile import coerce_specification

    return coerce_specification(spec_doc(tag))


# -- children ------------------------------------------------------------------------------
def _barrier(go: str, name: str) -> None:
    Path(go).parent.joinpath(f"ready-{name}").touch()
    deadline = time.monotonic() + TIMEOUT
    while not Path(go).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("never got the go")
        time.sleep(0.002)


def _register_writer(store: str, writer: int, go: str) -> None:
    specs = [make_spec(f"w{writer}-s{i}") for i in range(REGISTERS)]
    manager = RegistryManager(store)
    _barrier(go, f"w{writer}")
    acknowledged = []
    for i, spec in enumerate(specs):
        result = manager.register_specs("shared", {f"w{writer:02d}-s{i:02d}": spec})
        acknowledged.append([f"w{writer:02d}-s{i:02d}", result.revision, result.outcomes])
    print(json.dumps(acknowledged))


def _mixed_writer(store: str, writer: int, go: str) -> None:
    import random

    from regman.errors import RegmanError

    rng = random.Random(writer)
    manager = RegistryManager(store)
    specs = [make_spec(f"m{writer}-{i}") for i in range(5)]
    _barrier(go, f"m{writer}")
    acknowledged: list[list[object] | None] = []  # [context, "clear" | "revision", revision]
    for _ in range(MIXED_OPS):
        context = rng.choice(("red", "green", "blue"))
        step = rng.choice(("a", "b", "c", "d"))
        roll = rng.random()
        try:
            if roll < 0.08:
                cleared = manager.store.delete_context(context)
                acknowledged.append([context, "clear", None] if cleared else None)
                continue
            if roll < 0.16:
                result = manager.restore(context)
            elif roll < 0.3:
                result = manager.register_specs(context, {step: None}, command="remove")
            elif roll < 0.38:
                rev = manager.revision(context)
                if rev < 2:
                    continue
                result = manager.rollback(context, rng.randint(1, rev - 1))
            else:
                result = manager.register_specs(context, {step: rng.choice(specs)})
        except RegmanError as e:
            assert e.exit_code == 1, f"writer {writer}: {e}"  # refusals only, never exit 3
            continue
        if result.changed:
            acknowledged.append([context, "revision", result.revision])
    print(json.dumps([a for a in acknowledged if a]))


def _cli(argv: list[str], go: str, name: str) -> None:
    from regman.cli.app import app

    _barrier(go, name)
    began = time.monotonic()
    try:
        app(argv, prog_name="regman")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    else:
        code = 0
    sys.stderr.write(f"\nelapsed {time.monotonic() - began:.3f}\n")
    sys.exit(code)


def _child_main(argv: list[str]) -> None:
    role, *args = argv
    if role == "register":
        _register_writer(args[0], int(args[1]), args[2])
    elif role == "mixed":
        _mixed_writer(args[0], int(args[1]), args[2])
    else:
        _cli(json.loads(args[0]), args[1], args[2])


# -- running children ------------------------------------------------------------------------
class Children:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *args: str, store: Path) -> subprocess.Popen[str]:
        env = {**os.environ, "REGMAN_HOME": str(store), "REGMAN_LOCK_TIMEOUT": str(TIMEOUT)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.pop("REGMAN_DEBUG", None)
        code = "import sys; from tests.test_races import _child_main; _child_main(sys.argv[1:])"
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    yield started
    started.kill_all()


def go_when_ready(folder: Path, names: list[str], procs: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not all((folder / f"ready-{n}").exists() for n in names):
        for proc in procs:
            if proc.poll() is not None:
                pytest.fail(f"a child ended before it was ready:\n{proc.communicate()[1]}")
        assert time.monotonic() < deadline, "the children never got ready"
        time.sleep(0.01)
    (folder / "go").touch()


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, out, err


def assert_history_replays(manager: RegistryManager, context: str) -> list[Any]:
    """Revisions dense from 1; replaying every record's changes gives the head's steps."""
    store = manager.store
    head = store.head(context)
    assert head is not None
    history = list(reversed(manager.history(context)))
    assert [r.revision for r in history] == list(range(1, head.revision + 1))
    steps: dict[str, Any] = {}
    for record in history:
        apply_changes(steps, record.changes)
    assert steps == head.steps, f"{context}: the history does not replay to the head"
    return history


def assert_doctor_clean(store: Path) -> None:
    report = check_store(FileStore(store))
    assert report.items == [], report.to_dict()["items"]


# -- tests -------------------------------------------------------------------------------------
def test_16_writers_x_50_registers_make_revisions_1_to_800(
    tmp_path: Path, children: Children
) -> None:
    store = tmp_path / "store"
    procs = [
        children.start("register", str(store), str(w), str(tmp_path / "go"), store=store)
        for w in range(WRITERS)
    ]
    go_when_ready(tmp_path, [f"w{w}" for w in range(WRITERS)], procs)
    began = time.monotonic()
    acknowledged: list[tuple[str, int]] = []
    for proc in procs:
        code, out, err = finish(proc)
        assert code == 0, err
        for step, revision, outcomes in json.loads(out):
            assert outcomes == {step: "created"}
            acknowledged.append((step, revision))
    print(f"\n{WRITERS} x {REGISTERS} registers in {time.monotonic() - began:.1f} s")
    total = WRITERS * REGISTERS
    revisions = sorted(r for _, r in acknowledged)
    assert revisions == list(range(1, total + 1)), "acknowledged revisions not 1..800 exactly"

    manager = RegistryManager(store)
    history = assert_history_replays(manager, "shared")
    assert len(history) == total
    by_revision = dict((r, s) for s, r in acknowledged)
    for record in history:  # each register is exactly the revision it was told
        assert record.command == "register"
        assert {s: c.kind for s, c in record.changes.items()} == {
            by_revision[record.revision]: "created"
        }
    registry = manager.get_registry("shared", create_if_missing=False)
    assert registry is not None
    assert len(registry) == total
    for w in range(WRITERS):
        for i in range(REGISTERS):
            text = manager.store.spec_text("shared", f"w{w:02d}-s{i:02d}")
            assert text == make_spec(f"w{w}-s{i}").to_yaml(), f"w{w}-s{i} holds other bytes"
    assert_doctor_clean(store)


def test_mixed_writers_on_several_contexts(tmp_path: Path, children: Children) -> None:
    store = tmp_path / "store"
    procs = [
        children.start("mixed", str(store), str(w), str(tmp_path / "go"), store=store)
        for w in range(MIXED_WRITERS)
    ]
    go_when_ready(tmp_path, [f"m{w}" for w in range(MIXED_WRITERS)], procs)
    told: dict[str, list[int]] = {}
    for proc in procs:
        code, out, err = finish(proc)
        assert code == 0, err
        for context, kind, revision in json.loads(out):
            if kind == "revision":
                told.setdefault(context, []).append(revision)
    manager = RegistryManager(store)
    assert told, "no writer changed anything"
    for context, revisions in told.items():
        assert len(revisions) == len(set(revisions)), f"{context}: a revision told twice"
        history = assert_history_replays(manager, context)
        assert set(revisions) <= {r.revision for r in history}
    assert_doctor_clean(store)


def test_purge_racing_restore_and_register_on_a_big_context(
    tmp_path: Path, children: Children
) -> None:
    store = tmp_path / "store"
    manager = RegistryManager(store)
    specs = {f"step{i:04d}": make_spec(f"big-{i}") for i in range(BIG_STEPS)}
    began = time.monotonic()
    outcomes: list[str] = []
    for round_ in range(PURGE_ROUNDS):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        go = str(folder / "go")
        manager.register_specs("big", specs, command="import")
        assert manager.clear_context("big")
        purge = (
            ["trash", "empty", "--yes"] if round_ % 2 == 0 else ["clear", "big", "--purge", "--yes"]
        )
        late = make_spec(f"late-{round_}")
        late_file = folder / "late.yaml"
        late_file.write_text(late.to_yaml())
        racers = {
            "purge": purge,
            "restore": ["restore", "big"],
            "register": ["register", "big", "late", str(late_file)],
        }
        if round_ % 3 == 2:
            del racers["register"]  # some rounds: purge against restore alone
        procs = {
            name: children.start("cli", json.dumps(argv), go, name, store=store)
            for name, argv in racers.items()
        }
        go_when_ready(folder, list(procs), list(procs.values()))
        results = {name: finish(proc) for name, proc in procs.items()}
        for name, (code, _, err) in results.items():
            assert code in (0, 1), f"round {round_}: {name} exit {code}:\n{err}"
            assert "Traceback" not in err, err
            if code == 1:
                lines = [x for x in err.splitlines() if x and not x.startswith("elapsed")]
                assert lines[0].startswith("error: "), err
                assert all(x.startswith("hint: ") for x in lines[1:]), err
        manager = RegistryManager(store)  # fresh: nothing cached from before the race
        head = manager.store.head("big")
        live = head is not None and not head.cleared and head.last.command != "purge"
        steps = set(head.steps) if live and head else set()
        restored = results["restore"][0] == 0
        kept = set(specs) & steps
        assert kept in (set(), set(specs)), (
            f"round {round_}: {len(kept)} of {len(specs)} specs are live: a purge and a "
            "restore interleaved"
        )
        if restored and (purge[0] == "trash" or results["purge"][0] != 0):
            # restore brought back every spec, and a 'trash empty' never purges what
            # is live again (only an explicit purge of the context may come after it)
            assert kept == set(specs), (
                f"round {round_}: restore said it restored 'big' but "
                f"{len(set(specs) - steps)} of {len(specs)} specs are gone "
                f"(purge {purge}: exit {results['purge'][0]})"
            )
        if kept:
            for step in list(specs)[:: max(1, len(specs) // 50)]:
                assert manager.store.spec_text("big", step) == specs[step].to_yaml()
        outcomes.append(
            f"{'restored' if restored else 'refused'}/{'live' if live else 'gone or cleared'}"
        )
        # a later register works, and the store is healthy
        result = manager.register_specs("big", {"after": make_spec(f"after-{round_}")})
        assert result.outcomes["after"] in ("created", "updated")
        assert_doctor_clean(store)
        if live or head is not None:
            assert_history_replays(manager, "big")
        manager.clear_context("big", purge=True)  # next round starts from nothing
    print(f"\n{PURGE_ROUNDS} rounds of {BIG_STEPS} steps in {time.monotonic() - began:.1f} s")
    print("outcomes: " + ", ".join(outcomes))
