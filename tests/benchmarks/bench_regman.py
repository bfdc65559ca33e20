"""regman benchmark suite: builds synthetic stores in a temporary folder and prints a table.

Run from the repository root (not collected by pytest)::

    python tests/benchmarks/bench_regman.py            # full run, a few minutes
    python tests/benchmarks/bench_regman.py --quick    # skips the 10,000-context store

Every figure is a median of several runs and is shown with a ratio against a
baseline measured in the same run, because a shared machine is noisy: absolute
times move with the load, ratios much less. Cold-process rows start a fresh
interpreter per run with stdout and stderr on pipes; bytecode is cached in a
private ``PYTHONPYCACHEPREFIX`` (warmed up first) so that every process, regman
and baselines alike, runs from ``.pyc`` files as an installed tool would.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "training_pipeline"
STEPS_PER_CONTEXT = 20
SOURCE: str | None = None  # --source: a folder holding the regman package to measure

FLOOR_PROGRAM = '''\
import typer

app = typer.Typer()


@app.command()
def main(name: str = typer.Option("world", "--name", help="Who to greet.")) -> None:
    """Greet someone."""
    typer.echo(f"hello {name}")


if __name__ == "__main__":
    app()
'''

WRITER_PROGRAM = """\
import os, sys, time
import regman

root, context, prefix, count, gate, spec_path = sys.argv[1:7]
manager = regman.RegistryManager(root)
spec = regman.load_spec_file(spec_path)
registry = manager.get_registry(context)
open(os.path.join(gate, prefix), "w").close()  # ready
while not os.path.exists(os.path.join(gate, "go")):
    time.sleep(0.0005)
began = time.time()
for k in range(int(count)):
    registry.register_specification(f"{prefix}_{k}", spec)
print(began, time.time())
"""


# ---------------------------------------------------------------------------------------
# Results and the table
# ---------------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the table: a median, its ratios against baselines, a target verdict."""

    section: str
    name: str
    value: str
    ratios: list[str] = field(default_factory=list)
    target: str = ""
    verdict: str = ""
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        flag = f"  [{row.verdict}]" if row.verdict else ""
        print(
            f"  {row.section} {row.name}: {row.value}  {'; '.join(row.ratios)}{flag}",
            file=sys.stderr,
            flush=True,
        )

    def render(self) -> str:
        head = ["#", "benchmark", "median", "ratio (baseline)", "target", "result"]
        ordered = sorted(self.rows, key=lambda r: r.section)  # stable: run order within
        body = [
            [r.section, r.name, r.value, "; ".join(r.ratios), r.target, r.verdict] for r in ordered
        ]
        widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]

        def fmt(line: list[str]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"

        rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        lines = [fmt(head), rule, *(fmt(line) for line in body)]
        notes = [f"{r.section} {r.name}: {r.note}" for r in ordered if r.note] + self.notes
        return "\n".join(lines + ([""] + [f"- {n}" for n in notes] if notes else []))


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.0995 else f"{seconds * 1e3:.1f} ms"


def ratio(value: float, base: float, label: str) -> str:
    return f"{value / base:.2f}x {label}"


def verdict(ok: bool, by: str = "") -> str:
    return "PASS" if ok else f"MISS{' by ' + by if by else ''}"


# ---------------------------------------------------------------------------------------
# Synthetic stores
# ---------------------------------------------------------------------------------------
class StoreBuilder:
    """Grows one file store to N contexts x 20 steps by cloning a template context.

    The template is written through the library (so its head, revision records and
    spec objects are exactly what regman writes); clones hard-link the template's
    immutable files (same bytes, no extra disk blocks) and get their own ``head.json``
    with the ``context`` rewritten, the only field that differs from the template's.
    """

    def __init__(self, root: Path) -> None:
        import regman
        from regman.specfile import load_spec_text

        self.root = root
        self.contexts = root / "contexts"
        template = "ctx00000"
        registry = regman.RegistryManager(root).get_registry(template)
        assert registry is not None
        self.spec_texts = template_specs()
        with registry.batch(message="the benchmark's template"):
            for step, text in self.spec_texts.items():
                registry.register_specification(step, load_spec_text(text, step))
        self.template_dir = self.contexts / template
        self.head_doc = json.loads((self.template_dir / "head.json").read_bytes())
        self.files = sorted(
            p.relative_to(self.template_dir)
            for p in self.template_dir.rglob("*")
            if p.is_file() and p.name != "head.json"
        )
        self.count = 1

    def grow_to(self, count: int) -> float:
        started = time.perf_counter()
        for i in range(self.count, count):
            name = f"ctx{i:05d}"
            folder = self.contexts / name
            for rel in self.files:
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(self.template_dir / rel, folder / rel)
                except OSError:
                    shutil.copyfile(self.template_dir / rel, folder / rel)
            doc = dict(self.head_doc, context=name)
            (folder / "head.json").write_text(json.dumps(doc, separators=(",", ":")) + "\n")
        self.count = max(self.count, count)
        return time.perf_counter() - started

    def verify(self, count: int) -> None:
        """The library must see exactly what was built (a fresh manager, no caches)."""
        import regman

        manager = regman.RegistryManager(self.root)
        names = manager.list_contexts()
        assert len(names) == count, (len(names), count)
        stats = manager.get_context_stats()
        assert len(stats) == count and all(
            s["step_count"] == STEPS_PER_CONTEXT for s in stats.values()
        ), "get_context_stats disagrees with the built store"
        last = manager.get_registry(names[-1], create_if_missing=False)
        assert last is not None and len(last) == STEPS_PER_CONTEXT
        template = manager.get_registry("ctx00000", create_if_missing=False)
        assert template is not None
        for step in self.spec_texts:
            assert last.get_specification(step) == template.get_specification(step)


def template_specs() -> dict[str, str]:
    """20 distinct, valid spec texts built from the shipped examples (steps renamed)."""
    import regman

    files = sorted(EXAMPLES.glob("*.step.yaml"))
    if not files:
        raise SystemExit(f"no example specs in {EXAMPLES}")
    texts: dict[str, str] = {}
    i = 0
    while len(texts) < STEPS_PER_CONTEXT:
        source = files[i % len(files)]
        spec = regman.load_spec_file(source)
        variant = spec.model_copy(update={"step_type": f"{spec.step_type}V{i // len(files)}"})
        texts[f"{source.name.removesuffix('.step.yaml')}_{i:02d}"] = variant.to_yaml()
        i += 1
    return texts


# ---------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------
def child_env(store: Path | None, pycache: Path) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("PYTHONDONTWRITEBYTECODE", "REGMAN_DEBUG", "REGMAN_LOCK_TIMEOUT"):
        env.pop(key, None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["NO_COLOR"] = "1"
    if store is not None:
        env["REGMAN_HOME"] = str(store)
    if SOURCE is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [SOURCE, env.get("PYTHONPATH")]))
    return env


def run_once(
    argv: Sequence[str], env: dict[str, str], check: bool = True, ok: Sequence[int] = (0,)
) -> float:
    """Wall time of one cold run; ``ok`` lists the exit codes that mean success."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if check and done.returncode not in ok:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}: "
            f"{done.stderr.decode(errors='replace')[-500:]}"
        )
    return elapsed


def cold_medians(
    commands: dict[str, tuple[Any, ...]],  # (argv, env[, check, ok exit codes])
    rounds: int,
    after: dict[str, Callable[[], None]] | None = None,
) -> dict[str, float]:
    """Median wall time per command; rounds interleave the commands to share the noise.

    A figure and its baseline are always measured in the same rounds, so a burst of
    load from other jobs hits both.
    """
    after = after or {}
    times: dict[str, list[float]] = {label: [] for label in commands}
    labels = list(commands)
    for label in labels:  # warm-up: fills the bytecode cache and the page cache
        run_once(*commands[label])
        if label in after:
            after[label]()
    for r in range(rounds):
        order = labels[r % len(labels) :] + labels[: r % len(labels)]
        for label in order:
            times[label].append(run_once(*commands[label]))
            if label in after:
                after[label]()
    return {label: statistics.median(values) for label, values in times.items()}


def per_call(funcs: Sequence[Callable[[int], None]], calls: int, repeats: int) -> list[float]:
    """Median seconds per call of each ``func(calls)``; repeats interleave the functions."""
    samples: list[list[float]] = [[] for _ in funcs]
    for func in funcs:
        func(min(calls, 1000))  # warm-up: loads the registry cache
    for _ in range(repeats):
        for func, mine in zip(funcs, samples, strict=True):
            started = time.perf_counter()
            func(calls)
            mine.append((time.perf_counter() - started) / calls)
    return [statistics.median(mine) for mine in samples]


@contextlib.contextmanager
def stage(title: str) -> Iterator[None]:
    print(f"[{time.strftime('%H:%M:%S')}] {title} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    yield
    print(f"    done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# The benchmarks
# ---------------------------------------------------------------------------------------
class Bench:
    def __init__(self, work: Path, quick: bool) -> None:
        self.work = work
        self.quick = quick
        self.rounds = 5 if quick else 7
        self.report = Report()
        self.pycache = work / "pycache"
        self.python = sys.executable
        regman_exe = Path(sys.executable).with_name("regman")
        found = shutil.which("regman")
        self.regman = str(regman_exe if regman_exe.exists() else found or "regman")
        self.floor = work / "typer_floor.py"
        self.floor.write_text(FLOOR_PROGRAM)
        self.writer = work / "writer.py"
        self.writer.write_text(WRITER_PROGRAM)
        self.store = work / "store"  # grows to 1,000 then 10,000 contexts
        self.small = work / "store-100"  # the 100-context baseline store
        self.empty = work / "store-0"  # initialised by the first register, then kept empty
        self.spec_file = work / "one.step.yaml"

    # -- helpers -----------------------------------------------------------------------
    def env(self, store: Path) -> dict[str, str]:
        return child_env(store, self.pycache)

    def register_new_context(self, store: Path) -> tuple[list[str], Callable[[], None]]:
        """argv registering into a fresh context, and the clean-up that removes it again."""
        name = "benchnew"

        def cleanup() -> None:
            shutil.rmtree(store / "contexts" / name, ignore_errors=True)

        return [self.regman, "register", name, "s1", str(self.spec_file)], cleanup

    # -- a. cold start -----------------------------------------------------------------
    def cold_start(self) -> dict[str, float]:
        register, cleanup = self.register_new_context(self.small)
        env = self.env(self.small)
        commands = {
            "python -c pass": ([self.python, "-c", "pass"], env),
            "typer floor": ([self.python, str(self.floor), "--name", "x"], env),
            "regman --version": ([self.regman, "--version"], env),
            "regman contexts list": ([self.regman, "contexts", "list"], env),
            "regman stats": ([self.regman, "stats"], env),
            "regman register (new context)": (register, env),
        }
        medians = cold_medians(
            commands, self.rounds, after={"regman register (new context)": cleanup}
        )
        base, floor = medians["python -c pass"], medians["typer floor"]
        self.report.add(Row("a", "python -c pass (baseline)", ms(base)))
        self.report.add(
            Row(
                "a",
                "minimal Typer app, 1 command (floor)",
                ms(floor),
                [ratio(floor, base, "python")],
            )
        )
        for label in list(commands)[2:]:
            value = medians[label]
            row = Row(
                "a",
                f"{label}, 100 ctx",
                ms(value),
                [ratio(value, base, "python"), ratio(value, floor, "floor")],
            )
            if label == "regman contexts list":
                row.target = "<= 1.2x floor"
                over = value / floor
                row.verdict = verdict(over <= 1.2, f"{over / 1.2 - 1:.0%}")
            self.report.add(row)
        return medians

    # -- b. stats/list growth, c. register flatness --------------------------------------
    def store_scaling(self, size: int) -> None:
        """b and c at one size, each round also running the baselines (100 ctx, 0 ctx)."""
        store = self.small if size == 100 else self.store
        register, cleanup = self.register_new_context(store)
        register0, cleanup0 = self.register_new_context(self.empty)
        commands = {
            "stats": ([self.regman, "stats"], self.env(store)),
            "contexts list": ([self.regman, "contexts", "list"], self.env(store)),
            "register": (register, self.env(store)),
            "register 0": (register0, self.env(self.empty)),
        }
        if size != 100:
            commands["stats 100"] = ([self.regman, "stats"], self.env(self.small))
            commands["contexts list 100"] = (
                [self.regman, "contexts", "list"],
                self.env(self.small),
            )
        rounds = 3 if size >= 10_000 else self.rounds
        medians = cold_medians(
            commands, rounds, after={"register": cleanup, "register 0": cleanup0}
        )
        assert not any((self.empty / "contexts").iterdir())  # really 0 contexts each time
        for label in ("stats", "contexts list"):
            value = medians[label]
            base = medians.get(f"{label} 100")
            row = Row(
                "b",
                f"regman {label}, {size:,} ctx x 20 steps",
                ms(value),
                [ratio(value, base, "100 ctx")] if base else [],
            )
            if label == "stats" and size == 10_000:
                row.target = "<= 0.5 s"
                row.verdict = verdict(value <= 0.5, f"{value / 0.5 - 1:.0%}")
            self.report.add(row)
        reg, reg0 = medians["register"], medians["register 0"]
        self.report.add(
            Row("c", f"regman register, new ctx, 0 ctx (baseline for {size:,})", ms(reg0))
        )
        row = Row(
            "c", f"regman register, new ctx, {size:,} ctx", ms(reg), [ratio(reg, reg0, "0 ctx")]
        )
        if size == 10_000:
            row.target = "<= 1.2x 0 ctx"
            row.verdict = verdict(reg / reg0 <= 1.2, f"{reg / reg0 / 1.2 - 1:.0%}")
        self.report.add(row)

    # -- d. in-process reads -----------------------------------------------------------
    def lookups(self) -> None:
        import regman

        regman.configure(self.small)
        try:
            steps = list(self.spec_texts)
            plain = {step: object() for step in steps}
            names = [steps[i % len(steps)] for i in range(20_000)]
            context = "ctx00042"
            held = regman.get_registry(context)
            assert held is not None

            def dict_get(n: int) -> None:
                get = plain.get
                for step in names[:n]:
                    get(step)

            def via_manager(n: int) -> None:
                get_registry = regman.get_registry
                for step in names[:n]:
                    get_registry(context).get_specification(step)  # type: ignore[union-attr]

            def via_held(n: int) -> None:
                get = held.get_specification
                for step in names[:n]:
                    get(step)

            base, through, direct = per_call([dict_get, via_manager, via_held], len(names), 9)
        finally:
            regman.configure(None)
        self.report.add(Row("d", "plain dict .get (baseline)", f"{1 / base:,.0f}/s"))
        self.report.add(
            Row(
                "d",
                "get_registry(ctx).get_specification(step)",
                f"{1 / through:,.0f}/s",
                [ratio(through, base, "dict time")],
                ">= 250,000/s",
                verdict(1 / through >= 250_000, f"{250_000 * through - 1:.0%}"),
            )
        )
        self.report.add(
            Row(
                "d",
                "registry.get_specification(step) (held)",
                f"{1 / direct:,.0f}/s",
                [ratio(direct, base, "dict time")],
                ">= 250,000/s",
                verdict(1 / direct >= 250_000, f"{250_000 * direct - 1:.0%}"),
            )
        )

    @property
    def spec_texts(self) -> dict[str, str]:
        return self.builder.spec_texts

    # -- e. resolution -----------------------------------------------------------------
    def resolution(self) -> None:
        if importlib.util.find_spec("regman.resolver") is None:
            self.report.add(
                Row(
                    "e",
                    "resolution of 100 / 1,000 / 5,000 steps",
                    "skipped",
                    note="regman.resolver does not exist yet in this checkout",
                )
            )
            return
        import regman

        clear_resolver_caches = resolver_cache_clearer()
        sizes = [100, 1_000] if self.quick else [100, 1_000, 5_000]
        per_step: float | None = None
        timed: dict[int, float] = {}
        for size in sizes:
            if size > 1_000 and timed.get(100) and timed.get(1_000):
                slope = math.log(timed[1_000] / timed[100]) / math.log(10)
                predicted = timed[1_000] * (size / 1_000) ** max(slope, 1.0)
                if predicted > 60:
                    self.report.add(
                        Row(
                            "e",
                            f"resolve_dependencies, {size:,} steps",
                            "skipped",
                            note=f"predicted {predicted:.0f} s from the growth "
                            f"from 100 to 1,000 steps (n^{slope:.2f})",
                        )
                    )
                    continue
            registry, pair_visit = pipeline_registry(size)
            names = registry.list_step_names()
            registry.list_specifications()  # load the registry's cache outside the timing
            samples: list[float] = []
            unresolved = ""
            for _ in range(3 if size <= 1_000 else 1):
                if samples and samples[0] > 2.0:
                    break  # slow enough that one run is a stable figure
                clear_resolver_caches()
                resolver = regman.DependencyResolver(registry)
                started = time.perf_counter()
                try:
                    resolver.resolve_dependencies(names)
                except regman.DependencyResolutionError as e:
                    unresolved = f"raised DependencyResolutionError: {str(e)[:70]}..."
                samples.append(time.perf_counter() - started)
            value = statistics.median(samples)
            timed[size] = value
            per_step = per_step or value / size
            ratios = [ratio(value / size, per_step, "100-step time per step")]
            if pair_visit is not None:
                ratios.insert(0, ratio(value, pair_visit, "visiting all dep x output pairs"))
            row = Row(
                "e", f"resolve_dependencies, {size:,} steps", ms(value), ratios, note=unresolved
            )
            if size == 1_000:
                row.target = "<= 1 s"
                row.verdict = verdict(value <= 1.0, f"{value - 1:.0%}")
            self.report.add(row)

    # -- f. concurrent writers -------------------------------------------------------------
    def writers(self) -> None:
        count = 12 if self.quick else 25
        single = statistics.median(self.writer_run(1, shared=True, count=count) for _ in range(3))
        one = statistics.median(self.writer_run(8, shared=True, count=count) for _ in range(3))
        many = statistics.median(self.writer_run(8, shared=False, count=count) for _ in range(3))
        self.report.add(Row("f", "1 writer process, 1 ctx (baseline)", f"{single:,.0f} reg/s"))
        self.report.add(
            Row(
                "f",
                "8 writer processes, 1 shared ctx",
                f"{one:,.0f} reg/s",
                [ratio(one, single, "1 writer")],
            )
        )
        self.report.add(
            Row(
                "f",
                "8 writer processes, 8 ctx",
                f"{many:,.0f} reg/s",
                [ratio(many, single, "1 writer")],
            )
        )

    def writer_run(self, processes: int, *, shared: bool, count: int) -> float:
        """Aggregate registers per second of ``processes`` writers started together."""
        root = Path(tempfile.mkdtemp(prefix="writers-", dir=self.work))
        gate = Path(tempfile.mkdtemp(prefix="gate-", dir=self.work))
        children = [
            subprocess.Popen(
                [
                    self.python,
                    str(self.writer),
                    str(root),
                    "shared" if shared else f"w{i}",
                    f"w{i}",
                    str(count),
                    str(gate),
                    str(self.spec_file),
                ],
                env=self.env(root),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for i in range(processes)
        ]
        deadline = time.monotonic() + 120
        while len(list(gate.iterdir())) < processes:  # all imported and contexts created
            if time.monotonic() > deadline or any(c.poll() is not None for c in children):
                break
            time.sleep(0.005)
        (gate / "go").touch()
        spans = []
        for child in children:
            out, err = child.communicate(timeout=300)
            if child.returncode != 0:
                raise RuntimeError(f"writer failed: {err.decode(errors='replace')[-500:]}")
            began, ended = map(float, out.split())
            spans.append((began, ended))
        shutil.rmtree(gate)
        import regman

        stats = regman.RegistryManager(root).get_context_stats()
        assert sum(s["step_count"] for s in stats.values()) == processes * count, stats
        shutil.rmtree(root)
        return processes * count / (max(e for _, e in spans) - min(b for b, _ in spans))

    # -- g. long histories ------------------------------------------------------------
    def histories(self) -> None:
        """A context with 10,000 revisions: register and ``history --limit 20`` stay flat."""
        revisions = 2_000 if self.quick else 10_000
        store = self.work / "store-history"
        took = build_history_store(store, revisions, self.spec_texts)
        self.report.notes.append(
            f"context of {revisions:,} revisions built through the library in {took:.1f} s"
        )
        env = self.env(store)
        fresh, cleanup_fresh = self.register_new_context(store)
        deep = [self.regman, "register", "deep", "bench_step", str(self.spec_file)]

        def cleanup_deep() -> None:
            import regman

            registry = regman.RegistryManager(store).get_registry("deep")
            assert registry is not None and registry.remove_specification("bench_step")

        commands = {
            "register fresh": (fresh, env),
            "register deep": (deep, env),
            "contexts list": ([self.regman, "contexts", "list"], env),
            "history": ([self.regman, "history", "deep", "--limit", "20"], env),
        }
        medians = cold_medians(
            commands,
            self.rounds,
            after={"register fresh": cleanup_fresh, "register deep": cleanup_deep},
        )
        reg0, reg = medians["register fresh"], medians["register deep"]
        self.report.add(Row("g", "regman register, fresh ctx (baseline)", ms(reg0)))
        self.report.add(
            Row(
                "g",
                f"regman register, ctx with {revisions:,} revisions",
                ms(reg),
                [ratio(reg, reg0, "fresh ctx")],
                "<= 1.2x fresh ctx",
                verdict(reg / reg0 <= 1.2, f"{reg / reg0 / 1.2 - 1:.0%}"),
            )
        )
        listing, history = medians["contexts list"], medians["history"]
        self.report.add(Row("g", "regman contexts list, same store (baseline)", ms(listing)))
        self.report.add(
            Row(
                "g",
                f"regman history --limit 20, {revisions:,} revisions",
                ms(history),
                [ratio(history, listing, "contexts list")],
                "<= 1.5x contexts list",
                verdict(history / listing <= 1.5, f"{history / listing / 1.5 - 1:.0%}"),
            )
        )

    # -- h. plans ----------------------------------------------------------------------
    def plans(self) -> None:
        """plan / apply of a 100-step folder into a 100-step context against import."""
        import regman
        from regman.sources import load_spec_sources

        store = self.work / "store-plans"
        registry = synthetic_pipeline_registry(100)
        before, after = self.work / "plan-before", self.work / "plan-after"
        registry.export(before)
        after.mkdir()
        for path in sorted(before.iterdir()):  # every step changes; the wiring stays
            text = path.read_text().replace("node_type:", "description: revised\nnode_type:", 1)
            (after / path.name).write_text(text)
        manager = regman.RegistryManager(store)
        for name in ("imp", "app"):
            manager.register_specs(name, load_spec_sources([str(before)])[0])
        env = self.env(store)

        def back(context: str) -> Callable[[], None]:
            def rollback() -> None:
                target = regman.RegistryManager(store).get_registry(context)
                assert target is not None and target.rollback(1).changed

            return rollback

        commands = {
            "import": ([self.regman, "import", "imp", str(after)], env),
            "plan": ([self.regman, "plan", "app", str(after)], env, True, (1,)),  # 1: changes
            "apply": ([self.regman, "apply", "app", str(after), "--yes"], env),
        }
        medians = cold_medians(
            commands, self.rounds, after={"import": back("imp"), "apply": back("app")}
        )
        base = medians["import"]
        self.report.add(Row("h", "regman import, 100 files into 100 steps (baseline)", ms(base)))
        for label in ("plan", "apply"):
            value = medians[label]
            self.report.add(
                Row(
                    "h",
                    f"regman {label}, 100 files into 100 steps, wiring checked",
                    ms(value),
                    [ratio(value, base, "import")],
                    "<= 2x import",
                    verdict(value / base <= 2.0, f"{value / base / 2 - 1:.0%}"),
                )
            )

    # -- driver ------------------------------------------------------------------------
    def check_with_doctor(self) -> None:
        """``regman doctor`` on the 100-context store, when this checkout has it."""
        env = self.env(self.small)
        probe = [self.regman, "doctor", "--help"]
        if subprocess.run(probe, env=env, capture_output=True, check=False).returncode != 0:
            self.report.notes.append(
                "regman doctor does not exist yet; the stores were "
                "verified through list_contexts, get_context_stats and "
                "get_specification"
            )
            return
        done = subprocess.run([self.regman, "doctor"], env=env, capture_output=True, check=False)
        verdict = (
            "healthy"
            if done.returncode == 0
            else f"exit {done.returncode}: "
            + (done.stdout + done.stderr).decode(errors="replace").strip()[-200:]
        )
        self.report.notes.append(f"regman doctor on the 100-context store: {verdict}")

    def run(self) -> None:
        with stage("building the 100-context store (template written through the library)"):
            small = StoreBuilder(self.small)
            took = small.grow_to(100)
            small.verify(100)
            self.builder = StoreBuilder(self.store)
            self.spec_file.write_text(next(iter(self.spec_texts.values())))
        self.report.notes.append(
            f"store of 100 contexts x 20 steps cloned in {took:.1f} s "
            "and verified through the library"
        )
        self.check_with_doctor()
        with stage("a: cold start on 100 contexts"):
            self.cold_start()
        with stage("d: in-process lookups"):
            self.lookups()
        for size in [100, 1_000] if self.quick else [100, 1_000, 10_000]:
            if size > 100:
                with stage(f"growing the store to {size:,} contexts"):
                    took = self.builder.grow_to(size)
                    self.builder.verify(size)
                self.report.notes.append(
                    f"store of {size:,} contexts x 20 steps cloned in "
                    f"{took:.1f} s and verified through the library"
                )
            with stage(f"b/c: stats, contexts list, register on {size:,} contexts"):
                self.store_scaling(size)
        with stage("e: resolution"):
            try:
                self.resolution()
            except Exception as e:  # the resolver is young; its failure must not hide the rest
                self.report.add(Row("e", "resolution", "failed", note=f"{type(e).__name__}: {e}"))
        with stage("f: concurrent writers"):
            self.writers()
        with stage("g: long histories"):
            self.histories()
        with stage("h: plans"):
            self.plans()


def build_history_store(store: Path, revisions: int, spec_texts: dict[str, str]) -> float:
    """A store whose context ``deep`` has ``revisions`` revisions (20 steps, updated in turn).

    Built through the library on a RAM disk when there is one (fsyncs there cost nothing,
    so 10,000 commits take seconds, not minutes), then copied to ``store``.
    """
    import regman
    from regman.specfile import load_spec_text

    started = time.perf_counter()
    shm = Path("/dev/shm")
    scratch = Path(tempfile.mkdtemp(prefix="regman-history-", dir=shm if shm.is_dir() else None))
    try:
        registry = regman.RegistryManager(scratch / "store").get_registry("deep")
        assert registry is not None
        steps = list(spec_texts)
        variants = [
            {s: load_spec_text(text, s) for s, text in spec_texts.items()},
            {
                s: load_spec_text(text.replace("step_type: ", "step_type: Alt", 1), s)
                for s, text in spec_texts.items()
            },
        ]
        with registry.batch():
            for step in steps:
                registry.register_specification(step, variants[0][step])
        current = dict.fromkeys(steps, 0)
        turn = 0
        while registry.revision < revisions:  # every register flips one step: one revision
            step = steps[turn % len(steps)]
            turn += 1
            current[step] ^= 1
            registry.register_specification(step, variants[current[step]][step])
        assert registry.revision == revisions
        shutil.copytree(scratch / "store", store, symlinks=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return time.perf_counter() - started


def pipeline_registry(steps: int) -> tuple[Any, float | None]:
    """An in-memory context of ``steps`` steps, and the pair-visiting baseline if known.

    Uses ``bench_resolver.build_context`` (the resolver issue's distinct pipelines, next
    to this script) when it is there, else :func:`synthetic_pipeline_registry`.
    """
    import regman

    try:
        from bench_resolver import baseline_seconds, build_context  # type: ignore[import-not-found]
    except ImportError:
        return synthetic_pipeline_registry(steps), None
    registry = regman.SpecificationRegistry(f"resolve{steps}", ":memory:")
    specs = build_context(steps)
    for step, spec in specs.items():
        registry.register_specification(step, spec)
    return registry, statistics.median(baseline_seconds(specs) for _ in range(3))


def resolver_cache_clearer() -> Callable[[], None]:
    """Clears the resolver's name caches, if it has any, so each timing starts cold."""
    import regman.scoring as scoring

    caches = [
        getattr(scoring, name)
        for name in dir(scoring)
        if hasattr(getattr(scoring, name), "cache_clear")
    ]

    def clear() -> None:
        for cache in caches:
            cache.cache_clear()

    return clear


def synthetic_pipeline_registry(steps: int) -> Any:
    """An in-memory context of ``steps`` steps made of distinct 5-step pipelines.

    Each pipeline has its own step types and wires data loading -> preprocessing ->
    training -> evaluation -> packaging; about 2 dependencies and 1.6 outputs per
    step on average, with shared logical names so candidates compete across pipelines
    and only compatible_sources and keywords tell them apart.
    """
    import regman
    from regman.specfile import coerce_specification

    registry = regman.SpecificationRegistry(f"resolve{steps}", ":memory:")
    out = "processing_output"

    def output(name: str, kind: str, keywords: list[str]) -> dict[str, object]:
        return {
            "logical_name": name,
            "output_type": kind,
            "semantic_keywords": keywords,
            "property_path": f"properties.Outputs['{name}'].S3Uri",
        }

    def dep(
        name: str, kind: str, sources: list[str], keywords: list[str], required: bool = True
    ) -> dict[str, object]:
        return {
            "logical_name": name,
            "dependency_type": kind,
            "compatible_sources": sources,
            "semantic_keywords": keywords,
            "required": required,
        }

    for index in range(steps):
        p, role = divmod(index, 5)
        t = f"P{p:04d}"
        specs = [
            {
                "step_type": f"DataLoading{t}",
                "node_type": "source",
                "dependencies": [],
                "outputs": [
                    output("DATA", out, ["data", "raw"]),
                    output("METADATA", out, ["metadata"]),
                ],
            },
            {
                "step_type": f"Preprocessing{t}",
                "node_type": "internal",
                "dependencies": [
                    dep("DATA", out, [f"DataLoading{t}"], ["data", "raw"]),
                    dep("METADATA", out, [f"DataLoading{t}"], ["metadata"], False),
                ],
                "outputs": [output("processed_data", out, ["processed", "training"])],
            },
            {
                "step_type": f"Training{t}",
                "node_type": "internal",
                "dependencies": [
                    dep(
                        "input_path",
                        "training_data",
                        [f"Preprocessing{t}"],
                        ["processed", "training", "data"],
                    ),
                    dep(
                        "hyperparameters_s3_uri", "hyperparameters", [], ["hyperparameters"], False
                    ),
                ],
                "outputs": [output("model_output", "model_artifacts", ["model"])],
            },
            {
                "step_type": f"Evaluation{t}",
                "node_type": "internal",
                "dependencies": [
                    dep("model_input", "model_artifacts", [f"Training{t}"], ["model"]),
                    dep("processed_data", out, [f"Preprocessing{t}"], ["processed", "data"]),
                ],
                "outputs": [output("metrics_output", out, ["metrics", "evaluation"])],
            },
            {
                "step_type": f"Packaging{t}",
                "node_type": "sink",
                "dependencies": [
                    dep("model_input", "model_artifacts", [f"Training{t}"], ["model"]),
                    dep("metrics_input", out, [f"Evaluation{t}"], ["metrics"]),
                    dep("processed_data", out, [f"Preprocessing{t}"], ["data"], False),
                ],
                "outputs": [],
            },
        ]
        spec = coerce_specification(specs[role], source=f"<synthetic {index}>")
        registry.register_specification(f"{spec.step_type}_step", spec)
    return registry


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="skip the 10,000-context store and the 5,000-step resolution",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--source",
        metavar="DIR",
        help="measure the regman package in DIR instead of the installed one, e.g. a "
        "'git archive HEAD regman | tar -x -C DIR' snapshot to compare two versions",
    )
    args = parser.parse_args(argv)
    global SOURCE
    if args.source:
        SOURCE = os.path.abspath(args.source)
        sys.path.insert(0, SOURCE)
    import regman

    measured = Path(regman.__file__).parent
    sys.path.insert(1, str(Path(__file__).parent))  # bench_resolver, when present
    load_before = os.getloadavg()
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="regman-bench-"))
    try:
        bench = Bench(work, args.quick)
        bench.run()
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    print()
    print(
        f"regman benchmarks ({'--quick' if args.quick else 'full'}), "
        f"{time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f} -> {load_after[0]:.2f} "
        f"(a shared machine: other jobs may run at the same time), "
        f"total {time.perf_counter() - started:.0f} s"
    )
    print(f"measured: {measured} (baselines and the Typer floor run on the same interpreter)")
    print(
        f"medians of {bench.rounds} cold runs per command (3 on 10,000 contexts), "
        "interleaved, output to pipes"
    )
    print()
    print(bench.report.render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
