"""The contract every storage backend keeps (memory, files; S3 joins by one fixture param).

Only the primitives of ``regman.store.backend.Backend`` are used here: immutable
objects (put-if-absent), one head per context moved by compare-and-swap, derived
caches, the format marker, locks. The store's policy (``core``) relies on nothing else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from regman.errors import StoreError
from regman.store.backend import Backend

LIMIT = 1 << 20

# Valid under regman's name rules, yet unusual: dots, dashes, digits only, one
# character, the longest allowed, mixed case, a Windows device name with a suffix.
UNUSUAL_NAMES = [
    "a",
    "0",
    "v1.2.3-rc.4",
    "Step_With.Dots-and_Dashes",
    "UPPER_lower",
    "x" * 128,
    "CONFIG",
    "LPT10",
    "a-b_c.d",
]


# -- immutable objects ---------------------------------------------------------------------
def test_reading_a_missing_object_gives_none(backend: Backend) -> None:
    assert backend.read_object("ctx/specs/s/abc.yaml", LIMIT) is None
    backend.create_object("ctx/specs/s/abc.yaml", b"x")
    assert backend.read_object("ctx/specs/s/abd.yaml", LIMIT) is None
    assert backend.read_object("ctx/specs/t/abc.yaml", LIMIT) is None
    assert backend.read_object("other/specs/s/abc.yaml", LIMIT) is None


def test_create_is_put_if_absent(backend: Backend) -> None:
    key = "ctx/revisions/1.json"
    assert backend.create_object(key, b"first") is True
    assert backend.read_object(key, LIMIT) == b"first"
    assert backend.create_object(key, b"second") is False
    assert backend.read_object(key, LIMIT) == b"first"  # never overwritten
    assert backend.create_object(key, b"first") is False  # even with equal bytes


def test_objects_keep_exact_bytes(backend: Backend) -> None:
    payloads = {
        "c/specs/empty/0.yaml": b"",
        "c/specs/binary/1.yaml": bytes(range(256)) * 3,
        "c/specs/crlf/2.yaml": b"a: 1\r\nb: 2\r\n",
        "c/specs/big/3.yaml": b"z" * (300 * 1024),
    }
    for key, data in payloads.items():
        assert backend.create_object(key, data)
    for key, data in payloads.items():
        assert backend.read_object(key, LIMIT) == data


def test_create_takes_a_copy_of_mutable_data(backend: Backend) -> None:
    data = bytearray(b"original")
    backend.create_object("c/specs/s/1.yaml", data)  # type: ignore[arg-type]
    data[:] = b"changed!"
    assert backend.read_object("c/specs/s/1.yaml", LIMIT) == b"original"


def test_delete_object(backend: Backend) -> None:
    key = "ctx/specs/s/1.yaml"
    assert backend.delete_object(key) is False
    backend.create_object(key, b"x")
    backend.create_object("ctx/specs/s/2.yaml", b"y")
    assert backend.delete_object(key) is True
    assert backend.read_object(key, LIMIT) is None
    assert backend.delete_object(key) is False
    assert backend.read_object("ctx/specs/s/2.yaml", LIMIT) == b"y"  # its sibling stays
    assert backend.create_object(key, b"again") is True  # a purged key can be reused
    assert backend.read_object(key, LIMIT) == b"again"


def test_read_over_the_limit_is_an_error(backend: Backend) -> None:
    key = "ctx/specs/s/1.yaml"
    backend.create_object(key, b"0123456789")
    assert backend.read_object(key, 10) == b"0123456789"  # exactly the limit is fine
    with pytest.raises(StoreError):
        backend.read_object(key, 9)
    with pytest.raises(StoreError):
        backend.read_object(key, 0)


def test_list_objects_by_prefix(backend: Backend) -> None:
    keys = [
        "ctx/specs/a/1.yaml",
        "ctx/specs/a/2.yaml",
        "ctx/specs/b/1.yaml",
        "ctx/revisions/1.json",
        "ctx2/specs/a/1.yaml",  # shares the string prefix "ctx", not the folder
        "ct/specs/a/1.yaml",
    ]
    for key in keys:
        backend.create_object(key, key.encode())
    assert backend.list_objects("ctx") == sorted(keys[:4])
    assert backend.list_objects("ctx/specs") == sorted(keys[:3])
    assert backend.list_objects("ctx/specs/a") == ["ctx/specs/a/1.yaml", "ctx/specs/a/2.yaml"]
    assert backend.list_objects("ctx2") == ["ctx2/specs/a/1.yaml"]
    assert backend.list_objects("missing") == []
    assert backend.list_objects("ctx/specs/c") == []
    # every listed key reads back as the object written under it
    for key in backend.list_objects("ctx"):
        assert backend.read_object(key, LIMIT) == key.encode()


def test_delete_prefix(backend: Backend) -> None:
    for key in ["ctx/specs/a/1.yaml", "ctx/specs/b/1.yaml", "ctx/revisions/1.json"]:
        backend.create_object(key, b"x")
    backend.create_object("ctx2/specs/a/1.yaml", b"y")
    backend.delete_prefix("ctx/specs/a")
    assert backend.list_objects("ctx") == ["ctx/revisions/1.json", "ctx/specs/b/1.yaml"]
    backend.delete_prefix("ctx")
    assert backend.list_objects("ctx") == []
    assert backend.list_objects("ctx2") == ["ctx2/specs/a/1.yaml"]  # not a folder prefix of it
    backend.delete_prefix("never-there")  # nothing to delete is not an error
    assert backend.create_object("ctx/specs/a/1.yaml", b"new") is True


def test_delete_prefix_leaves_the_head(backend: Backend) -> None:
    """Purge deletes a context's objects first; its head (tombstone) goes by compare-and-swap."""
    assert backend.swap_head("ctx", b"head", None)
    backend.create_object("ctx/specs/a/1.yaml", b"x")
    backend.delete_prefix("ctx/specs")
    found = backend.read_head("ctx", LIMIT)
    assert found is not None and found[0] == b"head"


def test_where_names_the_key(backend: Backend) -> None:
    where = backend.where("ctx/specs/step/abc.yaml")
    assert isinstance(where, str)
    for part in ("ctx", "step", "abc.yaml"):
        assert part in where


# -- heads ---------------------------------------------------------------------------------
def test_a_context_without_a_head(backend: Backend) -> None:
    assert backend.read_head("ctx", LIMIT) is None
    assert backend.head_token("ctx") is None
    assert "ctx" not in backend.list_heads()
    assert backend.swap_head("ctx", None, None) is True  # deleting nothing, as expected


def test_swap_creates_a_head_only_when_expected_is_none(backend: Backend) -> None:
    assert backend.swap_head("ctx", b"one", "not-an-etag") is False
    assert backend.read_head("ctx", LIMIT) is None
    assert backend.swap_head("ctx", b"one", None) is True
    found = backend.read_head("ctx", LIMIT)
    assert found is not None
    data, etag = found
    assert data == b"one" and isinstance(etag, str) and etag
    assert backend.swap_head("ctx", b"two", None) is False  # there is a head now
    assert backend.read_head("ctx", LIMIT) == (b"one", etag)


def test_swap_refuses_a_stale_etag(backend: Backend) -> None:
    assert backend.swap_head("ctx", b"one", None)
    found = backend.read_head("ctx", LIMIT)
    assert found is not None
    first = found[1]
    assert backend.swap_head("ctx", b"two", first) is True
    found = backend.read_head("ctx", LIMIT)
    assert found is not None and found[0] == b"two"
    second = found[1]
    assert second != first
    assert backend.swap_head("ctx", b"three", first) is False  # lost the race: nothing changes
    assert backend.read_head("ctx", LIMIT) == (b"two", second)
    assert backend.swap_head("ctx", None, first) is False  # nor is a stale delete applied
    assert backend.read_head("ctx", LIMIT) == (b"two", second)
    assert backend.swap_head("ctx", b"three", second) is True
    found = backend.read_head("ctx", LIMIT)
    assert found is not None and found[0] == b"three"


def test_swap_with_none_deletes_the_head(backend: Backend) -> None:
    backend.swap_head("ctx", b"one", None)
    found = backend.read_head("ctx", LIMIT)
    assert found is not None
    assert backend.swap_head("ctx", None, found[1]) is True
    assert backend.read_head("ctx", LIMIT) is None
    assert backend.head_token("ctx") is None
    assert backend.swap_head("ctx", b"again", None) is True  # and can be created again
    found = backend.read_head("ctx", LIMIT)
    assert found is not None and found[0] == b"again"


def test_heads_are_per_context(backend: Backend) -> None:
    backend.swap_head("a", b"head of a", None)
    backend.swap_head("b", b"head of b", None)
    found_a, found_b = backend.read_head("a", LIMIT), backend.read_head("b", LIMIT)
    assert found_a is not None and found_b is not None
    assert found_a[0] == b"head of a" and found_b[0] == b"head of b"
    assert backend.swap_head("a", b"a2", found_b[1]) is False  # another context's etag
    assert backend.swap_head("a", None, found_a[1])
    assert backend.read_head("b", LIMIT) == found_b


def test_head_token_changes_on_every_swap(backend: Backend) -> None:
    seen = [backend.head_token("ctx")]
    assert seen[0] is None
    expected = None
    for i in range(20):
        assert backend.swap_head("ctx", f"revision {i}".encode() * (i % 3 + 1), expected)
        token = backend.head_token("ctx")
        assert token is not None and token not in seen
        assert backend.head_token("ctx") == token  # stable while the head stays
        hash(token)
        seen.append(token)
        found = backend.read_head("ctx", LIMIT)
        assert found is not None
        expected = found[1]
    assert backend.swap_head("ctx", None, expected)
    assert backend.head_token("ctx") is None


def test_head_token_does_not_change_on_a_refused_swap(backend: Backend) -> None:
    backend.swap_head("ctx", b"one", None)
    token = backend.head_token("ctx")
    assert backend.swap_head("ctx", b"two", "stale") is False
    assert backend.head_token("ctx") == token


def test_read_head_over_the_limit_is_an_error(backend: Backend) -> None:
    backend.swap_head("ctx", b"0123456789", None)
    found = backend.read_head("ctx", 10)
    assert found is not None and found[0] == b"0123456789"
    with pytest.raises(StoreError):
        backend.read_head("ctx", 9)


def test_list_heads(backend: Backend) -> None:
    assert backend.list_heads() == []
    for name in ["b", "a", "c"]:
        backend.swap_head(name, name.encode(), None)
    assert sorted(backend.list_heads()) == ["a", "b", "c"]
    found = backend.read_head("b", LIMIT)
    assert found is not None
    backend.swap_head("b", None, found[1])
    backend.delete_prefix("b")  # a purge: the head, then everything of the context
    assert sorted(backend.list_heads()) == ["a", "c"]


def test_objects_alone_do_not_make_a_head(backend: Backend) -> None:
    backend.create_object("ctx/specs/s/1.yaml", b"x")
    assert backend.read_head("ctx", LIMIT) is None
    assert backend.head_token("ctx") is None
    # A backend may list such a context (doctor then finds its headless objects); the
    # store skips any listed name whose head token is None.


def test_list_object_contexts_names_contexts_with_objects_head_or_not(backend: Backend) -> None:
    assert backend.list_object_contexts() == []
    backend.create_object("headless/specs/s/1.yaml", b"x")
    backend.create_object("both/specs/s/1.yaml", b"x")
    backend.swap_head("both", b"head", None)
    assert sorted(backend.list_object_contexts()) == ["both", "headless"]
    backend.delete_prefix("headless")
    # SeaweedFS keeps listing an emptied folder as a prefix: a name may stay, its objects not
    listed = backend.list_object_contexts()
    assert "both" in listed and ("headless" not in listed or not backend.list_objects("headless"))


# -- concurrency ---------------------------------------------------------------------------
def _race(n: int, action: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = action(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_creates_of_one_key_one_wins(backend: Backend) -> None:
    results = _race(8, lambda i: backend.create_object("c/specs/s/1.yaml", f"w{i}".encode()))
    assert results.count(True) == 1
    winner = results.index(True)
    assert backend.read_object("c/specs/s/1.yaml", LIMIT) == f"w{winner}".encode()


def test_concurrent_swaps_from_one_etag_one_wins(backend: Backend) -> None:
    backend.swap_head("ctx", b"base", None)
    found = backend.read_head("ctx", LIMIT)
    assert found is not None
    etag = found[1]
    results = _race(8, lambda i: backend.swap_head("ctx", f"w{i}".encode(), etag))
    assert results.count(True) == 1
    found = backend.read_head("ctx", LIMIT)
    assert found is not None and found[0] == f"w{results.index(True)}".encode()


def test_concurrent_creates_of_a_head_one_wins(backend: Backend) -> None:
    results = _race(8, lambda i: backend.swap_head("ctx", f"w{i}".encode(), None))
    assert results.count(True) == 1


# -- caches, marker, locks -----------------------------------------------------------------
def test_caches(backend: Backend) -> None:
    backend.write_marker(b'{"format_version": 2}\n')  # a store exists to cache for
    assert backend.read_cache("stats.json", LIMIT) is None
    backend.write_cache("stats.json", b"one")
    cached = backend.read_cache("stats.json", LIMIT)
    assert cached in (None, b"one")  # best effort: a backend may not cache at all
    if cached is None:
        return
    backend.write_cache("stats.json", b"two")
    assert backend.read_cache("stats.json", LIMIT) == b"two"
    assert backend.read_cache("other.json", LIMIT) is None
    # a cache over the limit is unusable, never an error
    backend.write_cache("stats.json", b"x" * 100)
    assert backend.read_cache("stats.json", 99) is None
    assert backend.read_cache("stats.json", 100) == b"x" * 100


def test_caches_are_not_objects_or_heads(backend: Backend) -> None:
    backend.write_marker(b'{"format_version": 2}\n')
    backend.write_cache("stats.json", b"{}")
    assert backend.list_heads() == []
    assert backend.read_head("stats.json", LIMIT) is None


def summary_keeping(backend: Backend) -> Backend | None:
    """The backend if it has the summary primitives (S3, memory), else None, once it is
    clear it has neither of them and its writers do not count on them."""
    try:
        backend.read_summary(LIMIT)
    except NotImplementedError:
        with pytest.raises(NotImplementedError):
            backend.swap_summary(b"x", None)
        assert not backend.writers_keep_summary
        return None
    return backend


def test_summary_swap_is_compare_and_swap(backend: Backend) -> None:
    b = summary_keeping(backend)
    if b is None:
        return
    assert b.read_summary(LIMIT) is None
    assert b.swap_summary(b"x" * 99, "no-such-version") is None
    first = b.swap_summary(b"x" * 99, None)
    assert first is not None
    assert b.swap_summary(b"y", None) is None  # there is one now
    assert b.read_summary(LIMIT) == (b"x" * 99, first)
    with pytest.raises(StoreError):
        b.read_summary(98)
    second = b.swap_summary(b"z", first)
    assert second is not None and second != first
    assert b.swap_summary(b"w", first) is None  # stale
    assert b.read_summary(LIMIT) == (b"z", second)
    assert b.read_summary(LIMIT, local=True) in ((b"z", second), None)


def test_summary_swaps_race_one_wins(backend: Backend) -> None:
    b = summary_keeping(backend)
    if b is None:
        return
    start = b.swap_summary(b"start", None)
    won = _race(8, lambda i: b.swap_summary(f"w{i}".encode(), start))
    assert sum(1 for w in won if w is not None) == 1


def test_a_head_token_is_its_version_where_writers_keep_the_summary(backend: Backend) -> None:
    if not backend.writers_keep_summary:
        pytest.skip("only writers keeping the summary key entries by versions")
    backend.swap_head("ctx", b"one", None)
    found = backend.read_head("ctx", LIMIT)
    assert found is not None and backend.head_token("ctx") == found[1]


def test_marker(backend: Backend) -> None:
    assert backend.read_marker() is None
    backend.write_marker(b'{"format_version": 2}\n')
    assert backend.read_marker() == b'{"format_version": 2}\n'
    backend.write_marker(b'{"format_version": 3}\n')  # replaced, not appended
    assert backend.read_marker() == b'{"format_version": 3}\n'
    assert backend.exists()


def test_reads_create_nothing(backend_factory: Callable[[], Backend]) -> None:
    backend = backend_factory()
    existed = backend.exists()
    backend.read_marker()
    backend.read_object("c/specs/s/1.yaml", LIMIT)
    backend.read_head("c", LIMIT)
    backend.head_token("c")
    backend.list_heads()
    backend.list_objects("c")
    backend.read_cache("stats.json", LIMIT)
    backend.write_cache("stats.json", b"{}")  # a cache is never worth creating a store
    assert backend.exists() == existed
    assert backend.read_marker() is None and backend.list_heads() == []


def test_separate_backends_share_nothing(backend_factory: Callable[[], Backend]) -> None:
    one, two = backend_factory(), backend_factory()
    one.create_object("c/specs/s/1.yaml", b"x")
    one.swap_head("c", b"h", None)
    one.write_marker(b"{}")
    assert two.read_object("c/specs/s/1.yaml", LIMIT) is None
    assert two.read_head("c", LIMIT) is None and two.list_heads() == []
    assert two.read_marker() is None


def test_locks_are_context_managers_and_reentrant(backend: Backend) -> None:
    with backend.writer_lock("ctx"), backend.writer_lock("ctx"), backend.writer_lock("other"):
        assert backend.swap_head("ctx", b"under the lock", None)  # swap takes it again
    with backend.store_lock(), backend.store_lock():
        backend.write_marker(b"{}")
    with backend.session():
        assert backend.create_object("ctx/specs/s/1.yaml", b"x")
    # released: another thread gets them
    done = threading.Event()

    def other() -> None:
        with backend.writer_lock("ctx"), backend.store_lock():
            done.set()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(10)
    assert done.is_set()


def test_facts(backend: Backend) -> None:
    assert isinstance(backend.location, str) and backend.location
    assert isinstance(backend.describe(), dict)
    assert all(isinstance(w, str) for w in backend.warnings())


# -- names ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", UNUSUAL_NAMES)
def test_unusual_valid_names(backend: Backend, name: str) -> None:
    key = f"{name}/specs/{name}/{'ab' * 16}.yaml"
    assert backend.create_object(key, name.encode())
    assert backend.read_object(key, LIMIT) == name.encode()
    assert backend.list_objects(name) == [key]
    assert backend.swap_head(name, b"h", None)
    assert name in backend.list_heads()
    assert backend.head_token(name) is not None
    found = backend.read_head(name, LIMIT)
    assert found is not None and found[0] == b"h"
    assert backend.read_head(name.swapcase(), LIMIT) is None or name == name.swapcase()
    with backend.writer_lock(name):
        pass
    backend.delete_prefix(name)
    assert backend.list_objects(name) == []


def test_names_equal_but_for_case_are_distinct_keys(backend: Backend) -> None:
    """Case clashes are refused by the store's policy; a backend must not merge them itself."""
    backend.create_object("ctx/specs/Step/1.yaml", b"upper")
    backend.create_object("ctx/specs/Step2/1.yaml", b"other")
    assert backend.read_object("ctx/specs/Step/1.yaml", LIMIT) == b"upper"
    assert backend.list_objects("ctx/specs/Step") == ["ctx/specs/Step/1.yaml"]
