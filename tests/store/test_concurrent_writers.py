"""Writers racing on one context through one backend: compare-and-swap alone (the
minimal backend has no lock) must land every acknowledged change in exactly one
revision, with revisions dense from 1."""

from __future__ import annotations

import sys
import threading

from regman.store import Store
from regman.store.backend import Backend
from tests.conftest import make_spec

WRITERS, EACH = 4, 15


def test_racing_writers_lose_nothing(backend: Backend) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(WRITERS)

    def writer(w: int) -> None:
        store = Store(backend)  # each thread its own Store, as separate processes would
        barrier.wait()
        try:
            for i in range(EACH):
                store.put_specs("ctx", {f"w{w}-s{i}": make_spec(f"T{w}")})
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads interleave inside commits, not between them
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    store = Store(backend)
    total = WRITERS * EACH
    assert store.revision("ctx") == total
    history = store.history("ctx")
    assert [r.revision for r in history] == list(range(total, 0, -1))
    created = [step for r in history for step in r.changes]
    assert sorted(created) == sorted(f"w{w}-s{i}" for w in range(WRITERS) for i in range(EACH))
    assert len(store.step_names("ctx")) == total
