"""Many processes writing one store at once, while others read it.

Writers are whole Python processes (one per writer, 100 registers each, through the
library), readers run the installed ``regman`` command and the library in a loop.
Readers must never fail nor see half a state; afterwards every spec is there with
the exact bytes written, the statistics are exact and no temporary file is left.

``REGMAN_STRESS=1`` runs 64 writers instead of 16.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from regman.index import STAT_KEYS
from regman.store import TMP_PREFIX

ROOT = Path(__file__).resolve().parent.parent
STRESS = os.environ.get("REGMAN_STRESS") == "1"
WRITERS = 64 if STRESS else 16
REGISTERS = 100
COMMON_EVERY = 10  # every 10th register of every writer goes to a step all writers share
READERS = 2
NO_REPLACE_RACERS = 32
TIMEOUT = 900.0  # generous: the machine is shared; only a hang should ever hit it
NODE_TYPES = ("source", "internal", "sink", "singular")
DEP_TYPES = ("training_data", "hyperparameters", "payload_samples", "custom_property")
OUT_TYPES = ("model_artifacts", "processing_output", "training_data", "custom_property")
COUNTER_KEYS = tuple(k for k in STAT_KEYS if k.endswith("_count"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name != "posix", reason="process-level stress test for POSIX"),
]


# ---------------------------------------------------------------------------------------
# What the writers write (deterministic, so readers and the test know every valid byte)
# ---------------------------------------------------------------------------------------
def context_for(mode: str, writer: int) -> str:
    return "shared" if mode == "one" else f"ctx{writer:02d}"


def step_for(writer: int, index: int) -> str:
    if index % COMMON_EVERY == COMMON_EVERY - 1:
        return f"common-{index // COMMON_EVERY}"
    return f"w{writer:02d}-s{index:03d}"


def document_for(writer: int, index: int) -> dict[str, Any]:
    """A valid spec document that differs for every (writer, index)."""
    node_type = NODE_TYPES[(writer + index) % 4]
    n_deps = 0 if node_type in ("source", "singular") else 1 + (writer + index) % 3
    n_outs = 0 if node_type in ("sink", "singular") else 1 + (writer * 3 + index) % 2
    return {
        "step_type": f"Type{(writer * 7 + index) % 13}",
        "node_type": node_type,
        "description": f"written by writer {writer} as register {index}",
        "dependencies": [
            {
                "logical_name": f"in_{d}",
                "dependency_type": DEP_TYPES[(index + d) % 4],
                "required": (writer + d) % 2 == 0,
            }
            for d in range(n_deps)
        ],
        "outputs": [
            {
                "logical_name": f"out_{o}",
                "output_type": OUT_TYPES[(writer + o) % 4],
                "property_path": f"properties.Out{o}.S3Uri",
            }
            for o in range(n_outs)
        ],
    }


def expected_versions(mode: str, writers: int) -> dict[tuple[str, str], dict[bytes, int]]:
    """(context, step) -> {stored bytes of each version a writer writes: writer}."""
    from regman.specfile import coerce_specification

    versions: dict[tuple[str, str], dict[bytes, int]] = {}
    for writer in range(writers):
        for index in range(REGISTERS):
            spec = coerce_specification(document_for(writer, index))
            key = (context_for(mode, writer), step_for(writer, index))
            versions.setdefault(key, {})[spec.to_yaml().encode()] = writer
    return versions


def recount(texts: Sequence[bytes]) -> dict[str, int]:
    """The statistics the index must hold for specs with these stored texts."""
    from regman.specfile import load_spec_text

    counts = dict.fromkeys(COUNTER_KEYS, 0)
    step_types: set[str] = set()
    for text in texts:
        spec = load_spec_text(text, "<recount>")
        counts["step_count"] += 1
        counts[f"{spec.node_type.value}_count"] += 1
        counts["dependency_count"] += len(spec.dependencies)
        counts["required_dependency_count"] += sum(d.required for d in spec.dependencies.values())
        counts["output_count"] += len(spec.outputs)
        step_types.add(spec.step_type)
    counts["step_type_count"] = len(step_types)
    return counts


def regman_executable() -> str:
    beside = Path(sys.executable).parent / "regman"
    found = str(beside) if beside.exists() else shutil.which("regman")
    if not found:
        raise RuntimeError("the regman command is not installed next to this Python")
    return found


# ---------------------------------------------------------------------------------------
# Child processes (run as ``python -c`` so that each is a fresh interpreter)
# ---------------------------------------------------------------------------------------
def _ready(go: str, name: str) -> None:
    (Path(go).parent / f"ready-{name}").touch()


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.005)


def _writer_main(store: str, mode: str, writer: int, go: str) -> None:
    from regman import RegistryManager
    from regman.specfile import coerce_specification

    specs = [coerce_specification(document_for(writer, i)) for i in range(REGISTERS)]
    manager = RegistryManager(store)
    _ready(go, f"writer-{writer}")
    _wait_for(Path(go))
    outcomes = []
    for index, spec in enumerate(specs):
        registry = manager.get_registry(context_for(mode, writer))
        assert registry is not None
        outcomes.append(registry.register_specification(step_for(writer, index), spec))
    print(json.dumps(outcomes))


class _Observer:
    """Checks every state a reader sees; collects failures instead of stopping."""

    def __init__(self, versions: dict[tuple[str, str], dict[bytes, int]]) -> None:
        self.versions = versions
        self.last_count: dict[str, int] = {}
        self.failures: list[str] = []
        self.observations = 0
        self.manager: Any = None

    def fail(self, text: str) -> None:
        if len(self.failures) < 50:
            self.failures.append(text)

    def check_stats(self, source: str, stats: dict[str, dict[str, Any]]) -> None:
        """One context's counters are one consistent state and never go back."""
        self.observations += 1
        for context, values in stats.items():
            count = values["step_count"]
            nodes = sum(values[f"{n}_count"] for n in NODE_TYPES)
            if nodes != count:
                self.fail(f"{source}: {context}: node counts {nodes} != step_count {count}")
            if not 0 <= values["required_dependency_count"] <= values["dependency_count"]:
                self.fail(f"{source}: {context}: dependency counters inconsistent: {values}")
            if values["step_type_count"] > count or (count and not values["step_type_count"]):
                self.fail(f"{source}: {context}: step_type_count inconsistent: {values}")
            if count < self.last_count.get(context, 0):
                self.fail(
                    f"{source}: {context}: step_count went back from "
                    f"{self.last_count[context]} to {count}"
                )
            self.last_count[context] = max(count, self.last_count.get(context, 0))
        for context in self.last_count:
            if context not in stats:
                self.fail(f"{source}: context {context} disappeared")

    def check_cli(self, executable: str, command: list[str]) -> None:
        result = subprocess.run(
            [executable, *command], capture_output=True, text=True, timeout=TIMEOUT
        )
        source = " ".join(command)
        if result.returncode != 0:
            self.fail(f"{source}: exit {result.returncode}: {result.stderr[-2000:]}")
            return
        try:
            data = json.loads(result.stdout)
        except ValueError as e:
            self.fail(f"{source}: output is not JSON ({e}): {result.stdout[:500]!r}")
            return
        if command[0] == "contexts":
            data = {item.pop("name"): item for item in data}
        self.check_stats(source, data)

    def check_library(self, store: str) -> None:
        from regman import RegistryManager, RegmanError

        if self.manager is None:  # one manager: its registries' caches must stay fresh
            self.manager = RegistryManager(store)
        manager = self.manager
        try:
            stats = manager.get_context_stats()
        except RegmanError as e:
            self.fail(f"get_context_stats raised {e!r}")
            return
        self.check_stats("get_context_stats", stats)
        for context, values in stats.items():
            indexed = values["step_count"]  # read before the files: files are written first
            self.check_context(manager, context, indexed)

    def check_context(self, manager: Any, context: str, indexed: int) -> None:
        from regman import RegmanError

        store = manager.store
        try:
            names = store.step_names(context)
            registry = manager.get_registry(context, create_if_missing=False)
            listed = registry.list_specifications() if registry is not None else {}
        except RegmanError as e:
            self.fail(f"{context}: reading raised {e!r}")
            return
        if len(names) < indexed:
            self.fail(f"{context}: index counted {indexed} steps before only {len(names)} existed")
        if len(listed) < indexed:
            self.fail(f"{context}: list_specifications gave {len(listed)} < indexed {indexed}")
        for name in set(names) | set(listed):
            if name.startswith(".") or TMP_PREFIX in name:
                self.fail(f"{context}: a temporary file is visible as step {name!r}")
                continue
            allowed = self.versions.get((context, name))
            if allowed is None:
                self.fail(f"{context}: unknown step {name!r}")
                continue
            if name in listed and listed[name].to_yaml().encode() not in allowed:
                self.fail(f"{context}/{name}: list_specifications gave a spec nobody wrote")
        for name in names:  # bytes of a version written imply a spec that loads
            allowed = self.versions.get((context, name), {})
            try:
                data = Path(store.spec_path(context, name)).read_bytes()
            except OSError as e:
                self.fail(f"{context}/{name}: listed but unreadable: {e!r}")
                continue
            if data not in allowed:
                self.fail(f"{context}/{name}: file holds bytes no writer wrote: {data[:200]!r}")


def _reader_main(store: str, mode: str, writers: int, reader: int, go: str, stop: str) -> None:
    """Two loops at once: the installed command (in a thread) and the library."""
    import threading

    versions = expected_versions(mode, writers)
    cli, library = _Observer(versions), _Observer(versions)  # each sees time go forward
    executable = regman_executable()
    commands = [["stats", "--json"], ["contexts", "list", "--json"]]
    counts = {"cli_calls": 0, "library_rounds": 0}

    def loop(round_: Callable[[], None], counter: str, pause: float) -> None:
        while True:
            stopping = Path(stop).exists()  # one more full round after the writers finished
            try:
                round_()
            except Exception as e:  # a reader must never fail: report it, keep reading
                library.fail(f"{counter}: {e!r}")
            counts[counter] += 1
            if stopping:
                break
            time.sleep(pause)  # leave the writers most of the two cores

    def cli_round() -> None:
        cli.check_cli(executable, commands[(counts["cli_calls"] + reader) % 2])

    _ready(go, f"reader-{reader}")
    _wait_for(Path(go))
    thread = threading.Thread(target=loop, args=(cli_round, "cli_calls", 0.05))
    thread.start()
    loop(lambda: library.check_library(store), "library_rounds", 0.05)
    thread.join()
    print(json.dumps({**counts, "failures": cli.failures + library.failures}))


def _child_main(argv: list[str]) -> None:
    role, *args = argv
    if role == "writer":
        _writer_main(args[0], args[1], int(args[2]), args[3])
    else:
        _reader_main(args[0], args[1], int(args[2]), int(args[3]), args[4], args[5])


# ---------------------------------------------------------------------------------------
# Running them
# ---------------------------------------------------------------------------------------
def child_env(store: Path) -> dict[str, str]:
    env = {**os.environ, "REGMAN_HOME": str(store), "REGMAN_LOCK_TIMEOUT": str(TIMEOUT)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("REGMAN_DEBUG", None)
    return env


def start_child(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    code = "import sys; from tests.test_races import _child_main; _child_main(sys.argv[1:])"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], deadline: float) -> tuple[str, str]:
    out, err = proc.communicate(timeout=max(deadline - time.monotonic(), 1.0))
    assert proc.returncode == 0, f"child {proc.args[3:]} exited {proc.returncode}:\n{err}"
    return out, err


class Children:
    """Every process a test started, killed (by its own id) if the test fails early."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def add(self, proc: subprocess.Popen[str]) -> subprocess.Popen[str]:
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


def wait_until_ready(folder: Path, names: list[str], procs: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not all((folder / name).exists() for name in names):
        for proc in procs:
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(f"child {proc.args[3:]} ended before it was ready:\n{err}")
        assert time.monotonic() < deadline, "the children never got ready"
        time.sleep(0.02)


def stored_files(store: Path) -> list[Path]:
    return sorted(p for p in store.rglob("*") if p.is_file())


def run_race(tmp_path: Path, children: Children, mode: str) -> None:
    store = tmp_path / "store"
    go, stop = tmp_path / "go", tmp_path / "stop"
    env = child_env(store)
    writers = [
        children.add(start_child("writer", str(store), mode, str(w), str(go), env=env))
        for w in range(WRITERS)
    ]
    readers = [
        children.add(
            start_child(
                "reader", str(store), mode, str(WRITERS), str(r), str(go), str(stop), env=env
            )
        )
        for r in range(READERS)
    ]
    versions = expected_versions(mode, WRITERS)
    ready = [f"ready-writer-{w}" for w in range(WRITERS)] + [
        f"ready-reader-{r}" for r in range(READERS)
    ]
    wait_until_ready(tmp_path, ready, writers + readers)  # so that writers really run together
    go.touch()
    began = time.monotonic()
    deadline = time.monotonic() + TIMEOUT
    outcomes = [json.loads(finish(w, deadline)[0]) for w in writers]
    writing = time.monotonic() - began
    stop.touch()
    reports = [json.loads(finish(r, deadline)[0]) for r in readers]
    print(
        f"{mode}: {WRITERS} writers x {REGISTERS} registers in {writing:.1f} s; readers: "
        + "; ".join(f"{r['cli_calls']} CLI + {r['library_rounds']} library reads" for r in reports)
    )

    for report in reports:
        assert report["failures"] == [], "\n".join(report["failures"])
        assert report["cli_calls"] >= 1 and report["library_rounds"] >= 1

    # Each register reported the right outcome: a shared step is created exactly once.
    created: dict[tuple[str, str], int] = {}
    for writer, results in enumerate(outcomes):
        assert len(results) == REGISTERS
        for index, outcome in enumerate(results):
            key = (context_for(mode, writer), step_for(writer, index))
            assert outcome in ("created", "updated"), (key, outcome)
            created[key] = created.get(key, 0) + (outcome == "created")
    assert set(created) == set(versions)
    assert all(n == 1 for n in created.values()), {k: n for k, n in created.items() if n != 1}

    # Every spec is there with exactly the bytes one of its writers wrote.
    from regman import RegistryManager

    manager = RegistryManager(store)
    contexts = sorted({context for context, _ in versions})
    assert manager.list_contexts() == contexts
    stats = manager.get_context_stats()
    for context in contexts:
        expected_steps = sorted(step for ctx, step in versions if ctx == context)
        assert manager.store.step_names(context) == expected_steps
        texts = []
        for step in expected_steps:
            data = Path(manager.store.spec_path(context, step)).read_bytes()
            assert data in versions[(context, step)], f"{context}/{step} holds unknown bytes"
            texts.append(data)
        registry = manager.get_registry(context, create_if_missing=False)
        assert registry is not None
        assert sorted(registry.list_specifications()) == expected_steps
        counts = {key: stats[context][key] for key in COUNTER_KEYS}
        assert counts == recount(texts), f"{context}: index disagrees with the spec files"

    leftovers = [p for p in stored_files(store) if p.name.startswith(TMP_PREFIX)]
    assert leftovers == []


def test_writers_into_one_context_while_readers_read(tmp_path: Path, children: Children) -> None:
    run_race(tmp_path, children, "one")


def test_writers_into_their_own_contexts_while_readers_read(
    tmp_path: Path, children: Children
) -> None:
    run_race(tmp_path, children, "many")


def test_no_replace_race_has_exactly_one_winner(tmp_path: Path, children: Children) -> None:
    from regman.specfile import coerce_specification, load_spec_file

    store = tmp_path / "store"
    env = child_env(store)
    files = []
    for racer in range(NO_REPLACE_RACERS):
        path = tmp_path / f"spec{racer}.yaml"
        path.write_text(coerce_specification(document_for(racer, 0)).to_yaml())
        files.append(path)
    executable = regman_executable()
    procs = [
        children.add(
            subprocess.Popen(
                [executable, "register", "--no-replace", "race", "the-step", str(path)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        for path in files
    ]
    deadline = time.monotonic() + TIMEOUT
    results = []
    for proc in procs:
        _, err = proc.communicate(timeout=max(deadline - time.monotonic(), 1.0))
        results.append((proc.returncode, err))
    codes = [code for code, _ in results]
    winners = [i for i, code in enumerate(codes) if code == 0]
    assert len(winners) == 1, codes
    assert sorted(codes) == [0] + [1] * (NO_REPLACE_RACERS - 1), codes
    for code, err in results:
        assert "Traceback" not in err
        if code == 1:
            assert err.startswith("error: "), err
    stored = (store / "contexts" / "race" / "specs" / "the-step.yaml").read_bytes()
    assert stored == load_spec_file(files[winners[0]]).to_yaml().encode()
    from regman import RegistryManager

    stats = RegistryManager(store).get_context_stats()
    assert stats["race"]["step_count"] == 1
    assert [p for p in stored_files(store) if p.name.startswith(TMP_PREFIX)] == []
