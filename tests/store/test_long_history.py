"""A history past the snapshot interval: every 100th record carries all steps, and
``manifest(at=n)`` starts from the snapshot below n. Checked against a replay of the
changes from revision 1 at every revision, on every backend, and after a doctor repair.
"""

from __future__ import annotations

import random

from regman.store import Store
from regman.store.core import apply_changes, spec_hash, stored_text
from regman.store.doctor import check_store
from regman.store.records import SNAPSHOT_EVERY, Entry
from tests.conftest import make_spec

SPECS = [make_spec(f"Type{i}") for i in range(4)]
HASHES = [spec_hash(stored_text(s, "x")) for s in SPECS]


def test_manifest_at_every_revision_past_the_snapshots(store: Store) -> None:
    rng = random.Random(100)
    model: list[dict[str, int]] = []
    current: dict[str, int] = {}
    steps = [f"s{i}" for i in range(6)]
    while len(model) < 2 * SNAPSHOT_EVERY + 17:
        step = rng.choice(steps)
        roll = rng.random()
        if roll < 0.15 and current:
            gone = rng.choice(sorted(current))
            store.delete_spec("ctx", gone)
            del current[gone]
        elif roll < 0.2 and current:
            store.delete_context("ctx")
            current = {}
        elif roll < 0.25 and model:
            to = rng.randint(1, len(model))
            result = store.rollback("ctx", to)
            if not result.changed:
                continue
            current = dict(model[to - 1])
        else:
            which = rng.randrange(len(SPECS))
            if current.get(step) == which:
                continue
            store.put_specs("ctx", {step: SPECS[which]})
            current[step] = which
        model.append(dict(current))
        assert store.revision("ctx") == len(model)

    top = len(model)
    replayed: dict[str, Entry] = {}
    for n in range(1, top + 1):
        record = store.record("ctx", n)
        assert record.revision == n
        if n % SNAPSHOT_EVERY == 0 and n != top:
            assert record.snapshot is not None
        apply_changes(replayed, record.changes)
        expected = {s: HASHES[i] for s, i in model[n - 1].items()}
        assert {s: e.spec for s, e in replayed.items()} == expected, n
        assert {s: e.spec for s, e in store.manifest("ctx", at=n).items()} == expected, n
    # a fresh Store (nothing cached) agrees, at the boundaries too
    fresh = Store(store.backend)
    for n in (1, 99, 100, 101, 199, 200, 201, top):
        expected = {s: HASHES[i] for s, i in model[n - 1].items()}
        assert {s: e.spec for s, e in fresh.manifest("ctx", at=n).items()} == expected, n
        for step, which in model[n - 1].items():
            assert fresh.load_spec("ctx", step, n) == SPECS[which]
    assert [r.revision for r in fresh.history("ctx", limit=20)] == list(range(top, top - 20, -1))
    report = check_store(fresh)
    assert report.healthy and report.revisions_checked == top
