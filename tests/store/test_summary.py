"""The summary (``cache/summary.json``): a round trip keeps every entry, junk gives none,
and a reader bringing it up to date never overwrites a writer's newer entry."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from regman.store import Store
from regman.store.memory import MemoryBackend
from regman.store.records import ACCESS_MODES, COMPATIBILITY_MODES, STAT_KEYS
from regman.store.summary import (
    SummaryEntry,
    dump,
    parse,
    plain_token,
    supersedes,
    with_entry,
)
from tests.conftest import make_spec

names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
stats = st.fixed_dictionaries(
    {
        k: (
            st.sampled_from(COMPATIBILITY_MODES)
            if k == "compatibility"
            else st.sampled_from(ACCESS_MODES)
            if k == "mode"
            else st.text(max_size=30)
            if k.endswith("_at")
            else st.integers(0, 2**53)
        )
        for k in STAT_KEYS
    }
)
entries = st.builds(
    SummaryEntry,
    token=st.one_of(st.text(max_size=70), st.lists(st.integers(0, 2**53), max_size=4)),
    cleared=st.booleans(),
    stats=stats,
    step_types=st.lists(names, unique=True, max_size=6).map(lambda t: tuple(sorted(t))),
)


@given(st.dictionaries(names, entries, max_size=8))
def test_a_round_trip_keeps_every_entry(found: dict[str, SummaryEntry]) -> None:
    assert parse(dump(found)) == found


@given(st.dictionaries(names, entries, max_size=6), names, entries | st.none())
def test_a_writer_changes_its_own_entry_and_no_other(
    found: dict[str, SummaryEntry], context: str, entry: SummaryEntry | None
) -> None:
    after = with_entry(dump(found), context, entry)
    expected = dict(found)
    if entry is None:
        expected.pop(context, None)
    else:
        expected[context] = entry
    if after is None:  # nothing to do: gone already, or it says that revision or later
        assert context not in found if entry is None else supersedes(found.get(context), entry)
    else:
        assert parse(after) == expected
        assert parse(dump(parse(after))) == expected  # a reader's rewrite keeps it


json_values: Any = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@given(st.dictionaries(names, entries, min_size=1, max_size=4), st.data())
def test_damage_anywhere_drops_entries_and_never_raises(
    found: dict[str, SummaryEntry], data: st.DataObject
) -> None:
    """Replace any one value of a sound summary with junk: parsing drops what is unsound."""
    doc = json.loads(dump(found))
    paths: list[list[Any]] = [[k] for k in doc] + [
        ["contexts", n, i] for n in doc["contexts"] for i in range(4)
    ]
    path = data.draw(st.sampled_from(paths))
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = data.draw(json_values)
    parsed = parse(json.dumps(doc).encode())
    assert set(parsed) <= set(found)
    for name, entry in parsed.items():  # what survives is sound, and describes a context
        assert set(entry.stats) == set(STAT_KEYS) and isinstance(entry.cleared, bool)
        assert name in found


@given(st.binary(max_size=200))
def test_bytes_that_are_not_a_summary_give_no_entries(raw: bytes) -> None:
    assert parse(raw) == {}


def test_a_later_revision_of_the_same_context_supersedes_an_earlier_one() -> None:
    base = {k: 0 for k in STAT_KEYS} | {"created_at": "t0", "updated_at": "t0"}
    base |= {"compatibility": "NONE", "mode": "READWRITE"}
    old = SummaryEntry("a", False, base | {"revision": 3}, ())
    new = SummaryEntry("b", False, base | {"revision": 4}, ())
    recreated = SummaryEntry("c", False, base | {"revision": 1, "created_at": "t1"}, ())
    assert supersedes(new, old) and supersedes(old, old) and not supersedes(old, new)
    assert not supersedes(new, recreated)  # purged and created again: a new context
    assert not supersedes(None, old)


def kept_by_writers() -> MemoryBackend:
    backend = MemoryBackend()
    backend.writers_keep_summary = True
    return backend


def summary_of(backend: MemoryBackend) -> dict[str, SummaryEntry]:
    found = backend.read_summary(1 << 30)
    return {} if found is None else parse(found[0])


def test_a_reader_never_overwrites_a_writers_newer_entry() -> None:
    """A reader that found the summary behind writes it back only at the version it read:
    a writer's entry landing in between wins, and the reader's write is dropped."""
    backend = kept_by_writers()
    writer, reader = Store(backend), Store(backend)
    writer.put_spec("a", "s", make_spec())
    backend.swap_summary(b"{}", summary_of_version(backend))  # writers' entries lost
    real_list = backend.list_heads

    def list_then_write(*args: Any) -> list[str]:
        listed = real_list()
        writer.put_spec("a", "t", make_spec("Other"))  # lands after the reader read it
        return listed

    swaps: list[str | None] = []
    real_swap = backend.swap_summary

    def recorded_swap(data: bytes, expected: str | None) -> str | None:
        swaps.append(real_swap(data, expected))
        return swaps[-1]

    backend.list_heads = list_then_write  # type: ignore[method-assign]
    backend.swap_summary = recorded_swap  # type: ignore[method-assign]
    assert reader.all_stats()["a"]["step_count"] == 2
    backend.list_heads = real_list  # type: ignore[method-assign]
    assert swaps[0] is not None and swaps[-1] is None  # the writer's landed; the reader's not
    entry = summary_of(backend)["a"]
    assert entry.revision == 2 and entry.token == plain_token(backend.head_token("a"))


def summary_of_version(backend: MemoryBackend) -> str | None:
    found = backend.read_summary(1 << 30)
    return None if found is None else found[1]


def test_a_purge_takes_its_entry_out() -> None:
    backend = kept_by_writers()
    store = Store(backend)
    store.put_spec("a", "s", make_spec())
    store.put_spec("b", "s", make_spec())
    assert set(summary_of(backend)) == {"a", "b"}
    store.purge_context("a")
    assert set(summary_of(backend)) == {"b"}


def test_writers_that_cannot_write_the_summary_still_commit() -> None:
    """The summary is derived: a writer whose every try fails has still committed."""
    backend = kept_by_writers()
    backend.swap_summary = lambda data, expected: None  # type: ignore[method-assign]
    store = Store(backend)
    store.put_spec("a", "s", make_spec())
    assert store.revision("a") == 1 and summary_of(backend) == {}
    assert Store(backend).all_stats()["a"]["step_count"] == 1
