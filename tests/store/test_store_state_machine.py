"""The store, with revisions and history, against a plain model, on every backend.

Random sequences of register / remove (and ``--purge``) / clear / restore (context or
step) / rollback (all or some steps) / batch (committed or failing) / purge / trash
empty run through two Store instances over the same data (as a pipeline process and a
command-line run would). The model keeps every revision's content; after each step:

- revision numbers are dense from 1, and each acknowledged change is in exactly one
  revision (the record of revision n holds exactly what the model changed at n);
- replaying ``history`` from nothing gives the current steps;
- ``manifest(at=n)`` and ``get_specification_at`` agree with the model at past revisions;
- listing, statistics and the trash agree with the model.

``REGMAN_STRESS=1`` runs many more and longer sequences.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from regman import SpecificationRegistry, StepSpecification
from regman.errors import (
    ConflictError,
    ContextNotFoundError,
    DamagedStoreError,
    InvalidNameError,
    NotFoundError,
    StepNotFoundError,
)
from regman.store import Store
from regman.store.core import spec_hash, stored_text
from regman.store.files import FileBackend
from regman.store.memory import MemoryBackend
from regman.store.summary import parse as parse_summary
from regman.store.summary import plain_token
from tests.conftest import make_spec
from tests.store.conftest import MinimalBackend

STRESS = os.environ.get("REGMAN_STRESS") == "1"

CONTEXT_NAMES = ["training", "production"]
STEP_NAMES = ["load", "prep", "train", "Train", "eval"]  # "Train"/"train": a case clash
CONTEXTS = st.sampled_from(CONTEXT_NAMES)
STEPS = st.sampled_from(STEP_NAMES)
SPECS: list[StepSpecification] = [
    make_spec("CradleDataLoading", outs={"DATA": "processing_output"}),
    make_spec("CradleDataLoading", outs={"DATA": "processing_output", "META": "custom_property"}),
    make_spec(
        "TabularPreprocessing",
        deps={"DATA": "processing_output"},
        outs={"processed_data": "processing_output"},
    ),
    make_spec("XGBoostTraining", deps={"input_path": "training_data"}, outs={}),
    make_spec("Notify", deps={}, outs={}),
]
HASHES = [spec_hash(stored_text(spec, "s")) for spec in SPECS]
SPEC_INDEXES = st.integers(min_value=0, max_value=len(SPECS) - 1)
BATCH_OPS = st.lists(st.tuples(STEPS, st.none() | SPEC_INDEXES), min_size=1, max_size=4)
MESSAGES = st.none() | st.sampled_from(["", "hotfix", "release 1.2 — ünïcode"])


class Boom(Exception):
    """Raised inside a batch to abandon it."""


@dataclass
class Ctx:
    """What the model knows of one context (live or cleared; purged ones are forgotten)."""

    revisions: list[dict[str, int]] = field(default_factory=list)  # content after rev n+1
    changes: list[dict[str, str]] = field(default_factory=list)  # step -> kind, per revision
    commands: list[str] = field(default_factory=list)
    purged: list[list[str]] = field(default_factory=list)
    cleared: bool = False
    removed: dict[str, int] = field(default_factory=dict)  # restorable step -> spec index
    available: set[tuple[str, int]] = field(default_factory=set)  # spec objects kept

    @property
    def steps(self) -> dict[str, int]:
        return self.revisions[-1] if self.revisions else {}

    def commit(
        self,
        command: str,
        new: dict[str, int],
        *,
        cleared: bool = False,
        purged: list[str] | None = None,
    ) -> None:
        """Record one revision from the current steps to ``new``."""
        old = self.steps
        kinds: dict[str, str] = {}
        for step in sorted(set(old) | set(new)):
            if step not in new:
                kinds[step] = "removed"
                self.removed[step] = old[step]
            elif step not in old:
                kinds[step] = "created"
                self.removed.pop(step, None)
            elif old[step] != new[step]:
                kinds[step] = "updated"
                self.removed.pop(step, None)
        for step, index in new.items():
            self.available.add((step, index))
        for step in purged or []:
            self.removed.pop(step, None)
            if step not in new:
                self.available = {(s, i) for s, i in self.available if s != step}
        self.revisions.append(dict(new))
        self.changes.append(kinds)
        self.commands.append(command)
        self.purged.append(sorted(purged or []))
        self.cleared = cleared


def clash(step: str, names: dict[str, int]) -> bool:
    return any(other != step and other.casefold() == step.casefold() for other in names)


class StoreMachine(RuleBasedStateMachine):
    backend_kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="regman-sm-")
        if self.backend_kind in ("memory", "minimal", "summary"):
            shared = MinimalBackend() if self.backend_kind == "minimal" else MemoryBackend()
            # "summary": writers keep the summary, as on S3 (a head read is a request there)
            shared.writers_keep_summary = self.backend_kind == "summary"
            self.stores = [Store(shared), Store(shared)]
        else:
            root = os.path.join(self.folder, "store")
            self.stores = [Store(FileBackend(root)), Store(FileBackend(root))]
        self.turn = 0
        self.model: dict[str, Ctx] = {}
        # Registries held for the whole run, one per context on each store, as a
        # long-running pipeline process holds them: they must follow every change.
        self.held = {
            (i, name): SpecificationRegistry(name, store)
            for i, store in enumerate(self.stores)
            for name in CONTEXT_NAMES
        }

    def teardown(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def store(self) -> Store:
        """Operations alternate between the two stores over the same data."""
        self.turn += 1
        return self.stores[self.turn % 2]

    def registry(self, context: str) -> SpecificationRegistry:
        return SpecificationRegistry(context, self.store())

    def live(self, context: str) -> Ctx | None:
        ctx = self.model.get(context)
        return ctx if ctx is not None and not ctx.cleared else None

    # -- changes -----------------------------------------------------------------------
    @rule(context=CONTEXTS, step=STEPS, which=SPEC_INDEXES, message=MESSAGES)
    def register(self, context: str, step: str, which: int, message: str | None) -> None:
        registry = self.registry(context)
        ctx = self.model.get(context)
        steps = ctx.steps if ctx is not None and not ctx.cleared else {}
        if clash(step, steps):
            with pytest.raises(InvalidNameError):
                registry.register_specification(step, SPECS[which], message=message)
            return
        outcome = registry.register_specification(step, SPECS[which], message=message)
        old = steps.get(step)
        expected = "created" if old is None else "unchanged" if old == which else "updated"
        assert outcome == expected
        if outcome == "unchanged":
            return
        ctx = self.model.setdefault(context, Ctx())
        ctx.commit("register", {**steps, step: which})

    @rule(context=CONTEXTS, step=STEPS, purge=st.booleans())
    def remove(self, context: str, step: str, purge: bool) -> None:
        registry = self.registry(context)
        ctx = self.live(context)
        if ctx is None:
            with pytest.raises(ContextNotFoundError):
                registry.remove_specification(step, purge=purge)
            return
        present = step in ctx.steps
        assert registry.remove_specification(step, purge=purge) is present
        new = {s: i for s, i in ctx.steps.items() if s != step}
        if present or (purge and step in ctx.removed):
            ctx.commit("remove --purge" if purge else "remove", new, purged=[step] if purge else [])

    @rule(context=CONTEXTS, message=MESSAGES)
    def clear(self, context: str, message: str | None) -> None:
        ctx = self.live(context)
        assert self.store().delete_context(context, message=message) is (ctx is not None)
        if ctx is not None:
            ctx.commit("clear", {}, cleared=True)

    @rule(context=CONTEXTS)
    def restore_context(self, context: str) -> None:
        ctx = self.model.get(context)
        store = self.store()
        if ctx is None:
            with pytest.raises(NotFoundError):
                store.restore(context)
            return
        if not ctx.cleared:
            with pytest.raises(ConflictError):
                store.restore(context)
            return
        back = {s: ctx.removed[s] for s, kind in ctx.changes[-1].items() if kind == "removed"}
        result = store.restore(context)
        assert result.changed and result.outcomes == dict.fromkeys(back, "created")
        ctx.commit("restore", back)

    @rule(context=CONTEXTS, step=STEPS)
    def restore_step(self, context: str, step: str) -> None:
        ctx = self.model.get(context)
        store = self.store()
        if ctx is None:
            with pytest.raises(NotFoundError):
                store.restore(context, step)
            return
        if step in ctx.removed and not clash(step, ctx.steps):
            result = store.restore(context, step)
            assert result.outcomes == {step: "created"}
            ctx.commit("restore", {**ctx.steps, step: ctx.removed[step]})
            return
        error: type[Exception] = (
            InvalidNameError
            if step in ctx.removed
            else ConflictError
            if step in ctx.steps
            else NotFoundError
        )
        with pytest.raises(error):
            store.restore(context, step)

    @rule(data=st.data(), context=CONTEXTS, some=st.booleans())
    def rollback(self, data: st.DataObject, context: str, some: bool) -> None:
        ctx = self.model.get(context)
        store = self.store()
        if ctx is None:
            with pytest.raises(ContextNotFoundError):
                store.rollback(context, 1)
            return
        top = len(ctx.revisions)
        to = data.draw(st.integers(min_value=0, max_value=top + 1), label="to")
        if not 1 <= to <= top:
            with pytest.raises(NotFoundError):
                store.rollback(context, to)
            return
        target = ctx.revisions[to - 1]
        steps = data.draw(st.lists(STEPS, min_size=1, max_size=3, unique=True)) if some else None
        names = set(steps) if steps else set(ctx.steps) | set(target)
        if any(s not in ctx.steps and s not in target for s in names):
            with pytest.raises(StepNotFoundError):
                store.rollback(context, to, steps)
            return
        new = {s: i for s, i in ctx.steps.items() if s not in names}
        new.update({s: target[s] for s in names if s in target})
        if any(clash(s, new) for s in new):  # some steps only: 'Train' beside 'train'
            with pytest.raises(InvalidNameError):
                store.rollback(context, to, steps)
            return
        if any((s, target[s]) not in ctx.available for s in names if s in target):
            with pytest.raises(DamagedStoreError):  # a version purged since
                store.rollback(context, to, steps)
            return
        result = store.rollback(context, to, steps)
        if new == ctx.steps and not ctx.cleared:
            assert not result.changed and result.revision == top
            return
        assert result.changed and result.revision == top + 1
        ctx.commit("rollback", new)

    def _plan_batch(
        self, context: str, ops: list[tuple[str, int | None]]
    ) -> tuple[dict[str, int], dict[str, int], bool]:
        """(steps now, steps after the batch, whether a register in it is a case clash).

        A register clashes with the steps the context has now (even those the batch
        removes) or with those the batch registers.
        """
        ctx = self.model.get(context)
        steps = dict(ctx.steps) if ctx is not None and not ctx.cleared else {}
        pending: dict[str, int | None] = {}
        for step, which in ops:
            if which is not None:
                others = set(steps) | {s for s, w in pending.items() if w is not None}
                if any(o != step and o.casefold() == step.casefold() for o in others):
                    return steps, steps, True
            pending[step] = which
        new = dict(steps)
        for step, which in pending.items():
            if which is None:
                new.pop(step, None)
            else:
                new[step] = which
        return steps, new, False

    def _run_batch(
        self,
        registry: SpecificationRegistry,
        ops: list[tuple[str, int | None]],
        message: str | None,
    ) -> None:
        with registry.batch(message=message):
            for step, which in ops:
                if which is None:
                    registry.remove_specification(step)
                else:
                    registry.register_specification(step, SPECS[which])

    @rule(context=CONTEXTS, ops=BATCH_OPS, message=MESSAGES)
    def batch_that_fails(
        self, context: str, ops: list[tuple[str, int | None]], message: str | None
    ) -> None:
        """An exception inside the block (ours, or a refused register) commits nothing."""
        registry = self.registry(context)
        _, _, clashes = self._plan_batch(context, ops)
        before = [s.revision(context) for s in self.stores]
        with pytest.raises(InvalidNameError if clashes else Boom), registry.batch(message=message):
            for step, which in ops:
                if which is None:
                    registry.remove_specification(step)
                else:
                    registry.register_specification(step, SPECS[which])
            raise Boom
        assert [s.revision(context) for s in self.stores] == before

    @rule(context=CONTEXTS, ops=BATCH_OPS, message=MESSAGES)
    def batch(self, context: str, ops: list[tuple[str, int | None]], message: str | None) -> None:
        registry = self.registry(context)
        steps, new, clashes = self._plan_batch(context, ops)
        if clashes:
            with pytest.raises(InvalidNameError):
                self._run_batch(registry, ops, message)
            return
        self._run_batch(registry, ops, message)
        if new == steps:  # only the net change counts: none, no revision
            return
        ctx = self.model.setdefault(context, Ctx())
        ctx.commit("batch", new)
        record = registry.history(limit=1)[0]
        assert record.command == "batch" and record.message == message

    @rule(context=CONTEXTS)
    def purge(self, context: str) -> None:
        ctx = self.model.pop(context, None)
        assert self.store().delete_context(context, purge=True) is (ctx is not None)
        time.sleep(0.002)  # a context created again is told apart by its creation time (ms)

    @rule()
    def empty_trash(self) -> None:
        expected = 0
        for name, ctx in list(self.model.items()):
            if ctx.cleared:
                del self.model[name]
                expected += 1
            elif ctx.removed:
                expected += len(ctx.removed)
                ctx.commit("trash empty", dict(ctx.steps), purged=sorted(ctx.removed))
        assert self.store().empty_trash() == expected
        time.sleep(0.002)

    # -- reads ---------------------------------------------------------------------------
    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def past_specs(self, data: st.DataObject) -> None:
        """get_specification_at and registry.at(n) agree with the model at revision n."""
        context = data.draw(st.sampled_from(sorted(self.model)), label="context")
        ctx = self.model[context]
        n = data.draw(st.integers(1, len(ctx.revisions)), label="revision")
        content = ctx.revisions[n - 1]
        registry = SpecificationRegistry(context, self.store())
        for step in STEP_NAMES:
            which = content.get(step)
            if which is None:
                assert registry.get_specification_at(step, n) is None
            elif (step, which) in ctx.available:
                assert registry.get_specification_at(step, n) == SPECS[which]
            else:
                with pytest.raises(DamagedStoreError):
                    registry.get_specification_at(step, n)
        view = registry.at(n)
        assert view.revision == n
        assert view.list_step_names() == sorted(
            s for s, i in content.items() if (s, i) in ctx.available
        )
        with pytest.raises(NotFoundError):
            registry.at(len(ctx.revisions) + 1)

    @rule(context=CONTEXTS)
    def current_specs(self, context: str) -> None:
        ctx = self.live(context)
        registry = SpecificationRegistry(context, self.store())
        expected = {s: SPECS[i] for s, i in sorted(ctx.steps.items())} if ctx else {}
        assert registry.list_specifications() == expected
        known = self.model.get(context)
        assert registry.revision == (len(known.revisions) if known else 0)
        if ctx is None:
            assert not registry.store.context_exists(context)

    # -- invariants ----------------------------------------------------------------------
    @invariant()
    def contexts_and_stats_agree(self) -> None:
        self.writers_kept_the_summary_current()  # first: a listing brings it up to date
        for store in self.stores:
            live = sorted(n for n, c in self.model.items() if not c.cleared)
            assert store.list_contexts() == live
            stats = store.all_stats()
            assert sorted(stats) == live
            for name in live:
                steps = self.model[name].steps
                assert stats[name]["step_count"] == len(steps)
                assert stats[name]["revision"] == len(self.model[name].revisions)
                assert stats[name]["step_type_count"] == len(
                    {SPECS[i].step_type for i in steps.values()}
                )
                assert stats[name]["output_count"] == sum(
                    len(SPECS[i].outputs) for i in steps.values()
                )
            assert store.step_types_across() == sorted(
                {SPECS[i].step_type for n in live for i in self.model[n].steps.values()}
            )

    def writers_kept_the_summary_current(self) -> None:
        """Where writers keep it, every head's entry is current after every change (one
        writer at a time: its compare-and-swap never loses), so readers read no head."""
        backend = self.stores[0].backend
        if not backend.writers_keep_summary:
            return
        found = backend.read_summary(1 << 30)
        entries = parse_summary(found[0]) if found else {}
        for name in backend.list_heads():
            assert entries[name].token == plain_token(backend.head_token(name)), name

    @invariant()
    def history_is_dense_and_replays(self) -> None:
        store = self.stores[self.turn % 2]
        for name in CONTEXT_NAMES:
            ctx = self.model.get(name)
            if ctx is None:
                assert store.revision(name) == 0
                continue
            top = len(ctx.revisions)
            assert store.revision(name) == top
            history = store.history(name)
            assert [r.revision for r in history] == list(range(top, 0, -1))
            replayed: dict[str, str] = {}
            for record in reversed(history):
                n = record.revision
                got = {s: c.kind for s, c in record.changes.items()}
                assert got == ctx.changes[n - 1], f"revision {n} of {name}"
                assert record.command == ctx.commands[n - 1]
                assert sorted(record.purged) == ctx.purged[n - 1]
                for step, change in record.changes.items():
                    if change.entry is None:
                        replayed.pop(step)
                    else:
                        replayed[step] = change.entry.spec
                assert replayed == {s: HASHES[i] for s, i in ctx.revisions[n - 1].items()}
                manifest = store.manifest(name, at=n)
                assert {s: e.spec for s, e in manifest.items()} == replayed
            if not ctx.cleared:
                current = store.manifest(name)
                assert {s: e.spec for s, e in current.items()} == replayed

    @invariant()
    def held_registries_follow(self) -> None:
        for (_, name), registry in self.held.items():
            ctx = self.live(name)
            expected = {s: SPECS[i] for s, i in sorted(ctx.steps.items())} if ctx else {}
            assert registry.list_specifications() == expected, name
            for step in STEP_NAMES:
                assert registry.get_specification(step) == expected.get(step)

    @invariant()
    def trash_agrees(self) -> None:
        expected: set[tuple[str, str | None]] = set()
        for name, ctx in self.model.items():
            if ctx.cleared:
                expected.add((name, None))
            else:
                expected |= {(name, step) for step in ctx.removed}
        got = [(e.context, e.step) for e in self.stores[0].list_trash()]
        assert len(got) == len(set(got))
        assert set(got) == expected


class FileStoreMachine(StoreMachine):
    backend_kind = "files"


class MinimalStoreMachine(StoreMachine):
    backend_kind = "minimal"


class SummaryStoreMachine(StoreMachine):
    backend_kind = "summary"


SETTINGS = settings(
    max_examples=400 if STRESS else 40,
    stateful_step_count=60 if STRESS else 25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
StoreMachine.TestCase.settings = SETTINGS
FileStoreMachine.TestCase.settings = SETTINGS
MinimalStoreMachine.TestCase.settings = SETTINGS
SummaryStoreMachine.TestCase.settings = SETTINGS
TestMemoryStoreAgainstModel = StoreMachine.TestCase
TestFileStoreAgainstModel = FileStoreMachine.TestCase
TestMinimalBackendStoreAgainstModel = MinimalStoreMachine.TestCase
TestWritersKeepTheSummaryAgainstModel = SummaryStoreMachine.TestCase
