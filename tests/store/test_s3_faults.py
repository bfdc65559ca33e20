"""Faults at each request of a write on S3: the store is unchanged or the write completed.

An injected transport (botocore's ``before-send`` hook on the backend's own client, the
server being the real one) answers 412, 409, 500 or 503, or drops the connection,
at the n-th request of a register, for every n: once (botocore or regman retries and
the write completes), or from then on (the writer dies there: one error, and the
store is at the old revision or the new one, whole, never between). A connection
dropped *after* the server applied a request is the hard case: a head swap that
landed must not be taken for a lost race.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regman.errors import StoreError
from regman.store import S3Store
from tests.conftest import make_spec
from tests.s3server import S3Server

ERROR_CODES = {
    412: "PreconditionFailed",
    409: "ConditionalRequestConflict",
    500: "InternalError",
    503: "SlowDown",
}


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


class Faults:
    """Fail the ``at``-th request (0-based) of the backend, once or from then on."""

    def __init__(self, kind: str, at: int, *, sticky: bool, only_heads: bool = False) -> None:
        self.kind, self.at, self.sticky, self.only_heads = kind, at, sticky, only_heads
        self.seen = 0
        self.fired = 0
        self.log: list[str] = []

    def __call__(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from botocore.exceptions import ConnectionClosedError
        from botocore.httpsession import URLLib3Session

        n = self.seen
        self.seen += 1
        self.log.append(f"{request.method} {request.url}")
        if n < self.at or (not self.sticky and self.fired):
            return None
        if self.only_heads and ("/heads/" not in request.url or request.method != "PUT"):
            return None
        self.fired += 1
        if self.kind == "drop":
            raise ConnectionClosedError(endpoint_url=request.url)
        if self.kind == "drop-after":  # the server applies it; the answer is lost
            URLLib3Session().send(request)
            raise ConnectionClosedError(endpoint_url=request.url)
        status = int(self.kind)
        body = (
            f"<Error><Code>{ERROR_CODES[status]}</Code><Message>injected</Message></Error>"
        ).encode()
        return AWSResponse(request.url, status, {"Content-Type": "application/xml"}, _Raw(body))


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retries without their sleeps (up to seconds for 503): same decisions, faster."""
    import botocore.retries.standard

    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0.001
    )
    monkeypatch.setattr("regman.store.core.time.sleep", lambda s: None)


def prepare(server: S3Server, tmp_path: Path, name: str) -> str:
    url = server.url()
    S3Store(url, cache_dir=str(tmp_path / f"{name}-setup")).put_spec("ctx", "old", make_spec())
    return url


def register_with(faults: Faults | None, url: str, cache: str) -> S3Store:
    store = S3Store(url, cache_dir=cache)
    if faults is not None:
        store.backend.client.meta.events.register_first("before-send.s3", faults)  # type: ignore[attr-defined]
    store.put_spec("ctx", "new", make_spec("Changed"))
    return store


def state_of(url: str, cache: str) -> tuple[int, dict[str, str]]:
    """The revision and every step's type, read afresh; loading proves every object is there."""
    store = S3Store(url, cache_dir=cache)
    return store.revision("ctx"), {
        step: store.load_spec("ctx", step).step_type for step in store.step_names("ctx")
    }


def requests_of_a_register(server: S3Server, tmp_path: Path) -> int:
    url = prepare(server, tmp_path, "count")
    counter = Faults("500", 10**9, sticky=False)
    register_with(counter, url, str(tmp_path / "count"))
    return counter.seen


OLD = (1, {"old": "XGBoostTraining"})
NEW = (2, {"old": "XGBoostTraining", "new": "Changed"})


@pytest.mark.parametrize("kind", ["500", "503", "drop", "drop-after"])
def test_a_fault_once_is_retried_and_the_write_completes(
    s3_env: S3Server, tmp_path: Path, kind: str
) -> None:
    total = requests_of_a_register(s3_env, tmp_path)
    assert 3 <= total <= 9
    for at in range(total):
        url = prepare(s3_env, tmp_path, f"{kind}-{at}")
        faults = Faults(kind, at, sticky=False)
        register_with(faults, url, str(tmp_path / f"{kind}-{at}"))
        assert faults.fired == 1
        assert state_of(url, str(tmp_path / f"check-{kind}-{at}")) == NEW, (at, faults.log)


@pytest.mark.parametrize("kind", ["412", "409", "drop-after"])
def test_a_head_swap_answered_as_lost_is_retried(
    s3_env: S3Server, tmp_path: Path, kind: str
) -> None:
    url = prepare(s3_env, tmp_path, kind)
    faults = Faults(kind, 0, sticky=False, only_heads=True)
    store = register_with(faults, url, str(tmp_path / kind))
    assert faults.fired == 1
    assert state_of(url, str(tmp_path / "check")) == NEW
    assert store.history("ctx")[0].changes["new"].kind == "created"  # not "unchanged"


@pytest.mark.parametrize("kind", ["500", "503", "drop", "drop-after"])
def test_a_writer_cut_off_at_any_request_leaves_old_or_new(
    s3_env: S3Server, tmp_path: Path, kind: str
) -> None:
    total = requests_of_a_register(s3_env, tmp_path)
    outcomes = set()
    for at in range(total):
        url = prepare(s3_env, tmp_path, f"{kind}-{at}")
        faults = Faults(kind, at, sticky=True)
        try:
            register_with(faults, url, str(tmp_path / f"{kind}-{at}"))
            raised = None
        except StoreError as e:
            raised = str(e)
        state = state_of(url, str(tmp_path / f"check-{kind}-{at}"))
        assert state in (OLD, NEW), (at, state)
        # the summary may be behind (cut off before its update), the listing never is
        listed = S3Store(url, cache_dir=str(tmp_path / f"list-{kind}-{at}")).all_stats()["ctx"]
        assert (listed["revision"], listed["step_count"]) == (state[0], len(state[1])), at
        if raised is None:
            assert state == NEW  # acknowledged: it must be there
        else:
            assert "\n" not in raised and ("S3" in raised or "reach" in raised), raised
        outcomes.add(state == NEW)
        # the next writer proceeds
        S3Store(url, cache_dir=str(tmp_path / f"next-{kind}-{at}")).put_spec(
            "ctx", "later", make_spec("Later")
        )
        assert "later" in state_of(url, str(tmp_path / f"after-{kind}-{at}"))[1]
    assert False in outcomes  # some cut-offs came before the swap


def test_throttling_after_retries_is_one_clear_error(s3_env: S3Server, tmp_path: Path) -> None:
    url = prepare(s3_env, tmp_path, "slowdown")
    with pytest.raises(StoreError) as error:
        register_with(Faults("503", 0, sticky=True), url, str(tmp_path / "slowdown"))
    assert "503 SlowDown" in str(error.value) and "AWS_MAX_ATTEMPTS" in str(error.value)
    assert state_of(url, str(tmp_path / "check")) == OLD


def test_access_denied_names_the_permission(s3_env: S3Server, tmp_path: Path) -> None:
    from botocore.awsrequest import AWSResponse

    def deny(request: Any, **_: Any) -> Any:
        if request.method == "PUT":
            body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
            return AWSResponse(request.url, 403, {}, _Raw(body))
        return None

    url = prepare(s3_env, tmp_path, "denied")
    store = S3Store(url, cache_dir=str(tmp_path / "denied"))
    store.backend.client.meta.events.register_first("before-send.s3", deny)  # type: ignore[attr-defined]
    with pytest.raises(StoreError) as error:
        store.put_spec("ctx", "new", make_spec("Changed"))
    assert "access denied" in str(error.value) and "s3:PutObject" in str(error.value)


def test_a_server_without_conditional_writes_is_named(s3_env: S3Server, tmp_path: Path) -> None:
    from botocore.awsrequest import AWSResponse

    def refuse(request: Any, **_: Any) -> Any:
        if request.method == "PUT" and (
            request.headers.get("If-None-Match") or request.headers.get("If-Match")
        ):
            body = b"<Error><Code>NotImplemented</Code><Message>If-Match</Message></Error>"
            return AWSResponse(request.url, 501, {}, _Raw(body))
        return None

    url = prepare(s3_env, tmp_path, "old-server")
    store = S3Store(url, cache_dir=str(tmp_path / "old-server"))
    store.backend.client.meta.events.register_first("before-send.s3", refuse)  # type: ignore[attr-defined]
    with pytest.raises(StoreError) as error:
        store.put_spec("ctx", "new", make_spec("Changed"))
    assert "conditional writes" in str(error.value)


def test_doctor_removes_what_a_killed_writer_left_once_it_is_old(
    s3_env: S3Server, tmp_path: Path
) -> None:
    """Killed just before its head moved: its spec object is unreferenced. A young one may
    belong to a write still in flight, so repair leaves it until it is older than the grace."""
    from regman.store.doctor import check_store

    url = prepare(s3_env, tmp_path, "killed")
    with pytest.raises(StoreError):
        register_with(Faults("drop", 0, sticky=True, only_heads=True), url, str(tmp_path / "k"))
    assert state_of(url, str(tmp_path / "check")) == OLD

    young = check_store(S3Store(url, cache_dir=str(tmp_path / "d1")), repair=True)
    leftovers = [i for i in young.items if "no revision refers to" in i.problem]
    assert len(leftovers) == 1 and not leftovers[0].repaired
    assert "/specs/new/" in leftovers[0].path

    old = S3Store(url, cache_dir=str(tmp_path / "d2"), leftover_grace=0)
    repaired = check_store(old, repair=True)
    assert [i.repaired for i in repaired.items] == [True]
    assert check_store(S3Store(url, cache_dir=str(tmp_path / "d3")), repair=False).healthy
    S3Store(url, cache_dir=str(tmp_path / "next")).put_spec("ctx", "new", make_spec("Changed"))
    assert state_of(url, str(tmp_path / "final")) == NEW


def test_doctor_finds_the_objects_of_a_first_write_that_did_not_land(
    s3_env: S3Server, tmp_path: Path
) -> None:
    """A new context's writer killed before its head existed: S3 has no folder to list, so
    doctor lists the objects' prefixes; it keeps young ones (a first write in flight)."""
    from regman.store.doctor import check_store

    url = prepare(s3_env, tmp_path, "first")
    store = S3Store(url, cache_dir=str(tmp_path / "k"))
    store.backend.client.meta.events.register_first(  # type: ignore[attr-defined]
        "before-send.s3", Faults("drop", 0, sticky=True, only_heads=True)
    )
    with pytest.raises(StoreError):
        store.put_spec("newctx", "new", make_spec("Changed"))
    fresh = S3Store(url, cache_dir=str(tmp_path / "r"))
    assert fresh.list_contexts() == ["ctx"] and fresh.backend.list_objects("newctx")

    young = check_store(S3Store(url, cache_dir=str(tmp_path / "d1")), repair=True)
    found = [i for i in young.items if "its first write did not land" in i.problem]
    assert len(found) == 1 and "newctx" in found[0].path and not found[0].repaired
    assert "kept, young enough" in found[0].problem

    old = check_store(S3Store(url, cache_dir=str(tmp_path / "d2"), leftover_grace=0), repair=True)
    assert [(i.repaired, "newctx" in i.path) for i in old.items] == [(True, True)]
    assert S3Store(url, cache_dir=str(tmp_path / "d3")).backend.list_objects("newctx") == []
    assert check_store(S3Store(url, cache_dir=str(tmp_path / "d4"))).healthy


def test_purge_works_on_a_server_without_conditional_deletes(
    s3_env: S3Server, tmp_path: Path
) -> None:
    from botocore.awsrequest import AWSResponse

    def refuse(request: Any, **_: Any) -> Any:
        if request.method == "DELETE" and request.headers.get("If-Match"):
            body = b"<Error><Code>NotImplemented</Code><Message>If-Match</Message></Error>"
            return AWSResponse(request.url, 501, {}, _Raw(body))
        return None

    url = prepare(s3_env, tmp_path, "purge")
    store = S3Store(url, cache_dir=str(tmp_path / "purge"))
    store.backend.client.meta.events.register_first("before-send.s3", refuse)  # type: ignore[attr-defined]
    assert store.purge_context("ctx") is True
    fresh = S3Store(url, cache_dir=str(tmp_path / "check"))
    assert fresh.revision("ctx") == 0 and fresh.backend.list_objects("ctx") == []
