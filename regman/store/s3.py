"""The S3 backend: a store shared by a team in a bucket (``s3://BUCKET/PREFIX``).

Layout under the prefix (every object plain JSON or YAML)::

    regman-store.json                        {"format_version": 2}
    heads/<ctx>.json                         a context's head: the only object ever replaced
    contexts/<ctx>/revisions/<n>.json        revision n (immutable)
    contexts/<ctx>/specs/<step>/<hash>.yaml  one version of a spec (immutable)
    cache/summary.json                       derived: every context's statistics by head ETag,
                                             kept current by writers (``regman.store.summary``)

S3 has no lock, so correctness comes from conditional writes alone, as Terraform's
S3 backend does it: objects are created with ``If-None-Match: *`` and a head moves
only with ``If-Match: <ETag it was read at>``. A writer that lost the race gets 412
(or 409 ConditionalRequestConflict) and ``swap_head`` answers False; the store above
re-reads and retries. A failed commit never deletes what it wrote (``serialises_writers``
is False): an object named by its content's hash may already be shared with the winner.

Reads are cheap in two ways. A context's change token is the head's ETag, trusted for
``head_ttl`` seconds (``REGMAN_S3_HEAD_TTL``, default 1 s) and then re-checked with one
conditional GET (``If-None-Match``: a 304 carries no body). A registry held by a
long-running service answers ``get_specification`` from memory and asks S3 at most once
a second per context, however hot; a change made elsewhere shows within that second;
writes are never affected, they compare-and-swap against the server. Heads and
immutable objects are also kept in a local cache keyed by ETag under the user cache
folder, so a new process re-reading an unchanged context pays 304s, not downloads,
and spec objects (named by their hash) are never downloaded twice. Listing contexts
is one LIST of ``heads/`` (it carries every head's ETag) plus one GET of the summary,
which each writer brings up to date under ``If-Match`` after its commit: a fixed number
of requests for 1,000 contexts, not one per context, even on a machine that never saw
the store.

The client is botocore (what boto3 is built on), chosen by measurement against boto3 and
obstore on the loopback SeaweedFS server (2 shared cores): import plus client creation
botocore 300-430 ms, boto3 370-620 ms, obstore 20-95 ms; GET 1.8-2.1 ms with botocore,
0.7-1.4 ms with obstore; put-if-absent 2.7-3.3 ms and 1.2-3.4 ms. obstore is faster to
start, but it reads no ``AWS_PROFILE``, shared config files or SSO without boto3 anyway,
has no conditional delete, and reports 409 and 412 alike behind its own exception types;
botocore gives the standard AWS configuration (environment, ``AWS_PROFILE``, shared files,
instance roles, ``AWS_ENDPOINT_URL_S3``), every status and error code (so each failure gets
its hint), standard retries, and request hooks (counting requests; injecting faults in
tests). Its start-up is paid only when an ``s3://`` store is opened, where round trips
dominate anyway; boto3 would add only its wrapper.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from regman.errors import InvalidInputError, StoreError
from regman.store.backend import MAX_HEAD_BYTES, MAX_MARKER_BYTES, Backend

MARKER = "regman-store.json"
DEFAULT_HEAD_TTL = 1.0
DEFAULT_LEFTOVER_GRACE = 3600.0  # doctor removes only unreferenced objects older than this
_LOST_RACE = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")
_MISSING = ("NoSuchKey", "404", "NotFound")
_CONFLICT_RETRIES = 6


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> (bucket, prefix without slashes at either end)."""
    if not url.lower().startswith("s3://"):
        raise InvalidInputError(f"'{url}' is not an s3:// location")
    rest = url[5:]
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    if not bucket or not all(c.isalnum() or c in ".-_" for c in bucket) or len(bucket) > 255:
        raise InvalidInputError(
            f"'{url}' does not name a bucket", hint="use s3://BUCKET or s3://BUCKET/PREFIX"
        )
    if any(p in ("", ".", "..") for p in prefix.split("/")) and prefix:
        raise InvalidInputError(f"the prefix of '{url}' has an empty, '.' or '..' part")
    return bucket, prefix


def _seconds_from_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1e9:
        raise InvalidInputError(f"{name}={raw!r} is not a number of seconds", hint=f"unset {name}")
    return value


class _Answer(Exception):
    """An S3 answer that is part of the protocol: 304, a lost race, no such key."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _HeadState:
    etag: str | None  # None: the context has no head
    data: bytes | None  # None: not downloaded (only its ETag is known, from a listing)
    checked: float  # time.monotonic() when the ETag was last confirmed by the server


class LocalCache:
    """Copies of objects by key, each with the ETag it had: best effort, never the truth.

    A copy is used only after the server confirmed its ETag (a 304), except spec
    objects, which are named by their content's hash and checked against it.
    """

    def __init__(self, root: str) -> None:
        self.root = root

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/"))

    def get(self, key: str, limit: int) -> tuple[str, bytes] | None:
        try:
            with open(self._path(key), "rb") as f:
                raw = f.read(limit + 200)
        except (OSError, ValueError):
            return None
        etag, sep, data = raw.partition(b"\n")
        if not sep or len(data) > limit or not etag:
            return None
        return etag.decode("ascii", "replace"), data

    def put(self, key: str, etag: str, data: bytes) -> None:
        path = self._path(key)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(etag.encode("ascii", "replace") + b"\n" + data)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def drop(self, key: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self._path(key))


def default_cache_dir(location: str) -> str:
    import platformdirs

    digest = hashlib.sha256(location.encode()).hexdigest()[:16]
    return os.path.join(platformdirs.user_cache_dir("regman", appauthor=False), "s3", digest)


class S3Backend(Backend):
    """A store under a prefix of an S3 bucket (or of any server speaking S3)."""

    serialises_writers = False  # no lock: a failed commit keeps what it wrote (maybe shared)
    # Every writer of a context races for its head, with no lock to queue them: losers
    # back off exponentially up to 0.5 s (with jitter) so a crowd spreads out instead of
    # colliding again (measured: 16 writers on one context starve with a 0.25 s cap, and
    # 1 s leaves the server idle); 128 tries are about a minute of losing before an error
    # (32 writers on one context exhausted 64).
    commit_attempts = 128
    commit_backoff = 0.5
    writers_keep_summary = True  # a head read is a request: listings must not read them

    def __init__(
        self,
        url: str,
        *,
        client: Any = None,
        cache_dir: str | None = None,
        head_ttl: float | None = None,
        leftover_grace: float | None = None,
    ) -> None:
        self.bucket, self.prefix = parse_url(url)
        self.location = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self._base = f"{self.prefix}/" if self.prefix else ""
        self._client = client
        self._client_lock = threading.Lock()
        self.head_ttl = (
            _seconds_from_env("REGMAN_S3_HEAD_TTL", DEFAULT_HEAD_TTL)
            if head_ttl is None
            else head_ttl
        )
        self.leftover_grace = DEFAULT_LEFTOVER_GRACE if leftover_grace is None else leftover_grace
        self.listing_ttl = self.head_ttl  # a listing is as fresh as the heads it saw
        self.cache = LocalCache(cache_dir or default_cache_dir(self.location))
        self._heads: dict[str, _HeadState] = {}
        self._state_lock = threading.Lock()
        self._generation = 0  # moves on every head swap this process makes (see _install)
        self._marker: bytes | None = None
        self.requests: dict[str, int] = {}  # operation -> requests sent (retries included)

    # -- the client ----------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = _make_client()
        if not getattr(self._client, "_regman_counted", False):
            self._client.meta.events.register("request-created.s3", self._count)
            self._client._regman_counted = True
        return self._client

    def _count(self, operation_name: str = "?", **_: Any) -> None:
        name = operation_name
        self.requests[name] = self.requests.get(name, 0) + 1

    def _call(self, operation: str, key: str, **kw: Any) -> Any:
        """One S3 call; botocore's own retries cover throttling, 5xx and dropped connections.

        An answer that is part of the protocol (304, a lost race, no such key) comes back
        as ``_Answer``; every other failure as a StoreError.
        """
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, Key=key, **kw)
        except StoreError:
            raise
        except Exception as e:
            code = _code(e)
            if code == "304" or code in _LOST_RACE or code in _MISSING:
                raise _Answer(code) from e
            self._raise(e, operation, key)

    def _raise(self, e: Exception, operation: str, key: str) -> NoReturn:
        raise _store_error(e, operation, f"s3://{self.bucket}/{key}", self) from e

    def endpoint(self) -> str:
        return str(self.client.meta.endpoint_url)

    # -- keys ------------------------------------------------------------------------------
    def _object_key(self, key: str) -> str:
        parts = key.split("/")
        if any(not p or p.startswith(".") for p in parts):
            raise StoreError(f"refusing the object key {key!r}")  # names are validated above
        return f"{self._base}contexts/{key}"

    def _head_key(self, context: str) -> str:
        if not context or "/" in context or context.startswith("."):
            raise StoreError(f"refusing the context name {context!r}")
        return f"{self._base}heads/{context}.json"

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._base}contexts/{key}"

    # -- reading with the local cache ------------------------------------------------------
    def _get(self, full: str, limit: int, *, immutable_digest: str | None = None) -> Any:
        """(data, etag), or None when absent; a conditional GET when a copy is cached."""
        cached = self.cache.get(full, limit)
        if cached is not None and immutable_digest is not None:
            if hashlib.sha256(cached[1]).hexdigest()[:32] == immutable_digest:
                return cached[1], cached[0]
            cached = None
        kw: dict[str, Any] = {}
        if cached is not None:
            kw["IfNoneMatch"] = cached[0]
        try:
            found = self._call("get_object", full, **kw)
        except _Answer as e:
            if e.code == "304" and cached is not None:
                return cached[1], cached[0]
            if e.code in _MISSING:
                if cached is not None:
                    self.cache.drop(full)
                return None
            raise StoreError(f"S3 answered {e.code} to a read of s3://{self.bucket}/{full}") from e
        size = found.get("ContentLength")
        body = found["Body"]
        try:
            if isinstance(size, int) and size > limit:
                raise StoreError(f"s3://{self.bucket}/{full} is over {limit} bytes")
            data = body.read(limit + 1)
        except StoreError:
            raise
        except Exception as e:
            self._raise(e, "get_object", full)
        finally:
            with contextlib.suppress(Exception):
                body.close()
        if len(data) > limit:
            raise StoreError(f"s3://{self.bucket}/{full} is over {limit} bytes")
        etag = str(found.get("ETag", ""))
        if etag:
            self.cache.put(full, etag, data)
        return data, etag

    # -- immutable objects -----------------------------------------------------------------
    def read_object(self, key: str, limit: int) -> bytes | None:
        digest = None
        name = key.rsplit("/", 1)[-1]
        if "/specs/" in key and name.endswith(".yaml"):
            digest = name[:-5]  # named by its content's hash: a cached copy needs no request
        found = self._get(self._object_key(key), limit, immutable_digest=digest)
        return None if found is None else found[0]

    def create_object(self, key: str, data: bytes) -> bool:
        full = self._object_key(key)
        for attempt in range(_CONFLICT_RETRIES):
            try:
                answer = self._call("put_object", full, Body=data, IfNoneMatch="*")
            except _Answer as e:
                if e.code in ("PreconditionFailed", "412"):
                    return False  # there already (perhaps our own retried request)
                if e.code in ("ConditionalRequestConflict", "409"):
                    # another write of this key is in flight and may still fail: it is
                    # not there yet, so ask again rather than take it for written
                    time.sleep(0.01 * 2**attempt)
                    continue
                raise StoreError(f"S3 answered {e.code} to a write of {self.where(key)}") from e
            etag = str(answer.get("ETag", ""))
            if etag:  # what this process wrote it may read back without downloading it
                self.cache.put(full, etag, data)
            return True
        raise StoreError(
            f"S3 kept answering 409 ConditionalRequestConflict to a write of {self.where(key)}",
            hint="another writer is writing the same object; try again",
        )

    def delete_object(self, key: str) -> bool:
        full = self._object_key(key)
        return self._delete(full)

    def _delete(self, full: str) -> bool:
        try:
            self._call("head_object", full)
        except _Answer as e:
            if e.code in _MISSING:
                return False
            raise StoreError(f"S3 answered {e.code} about s3://{self.bucket}/{full}") from e
        self._call("delete_object", full)
        self.cache.drop(full)
        return True

    def remove_leftover(self, key: str) -> bool:
        """Delete an unreferenced object, unless it is young: a writer may still be committing."""
        full = self._object_key(key)
        try:
            found = self._call("head_object", full)
        except _Answer as e:
            if e.code in _MISSING:
                return False
            raise StoreError(f"S3 answered {e.code} about s3://{self.bucket}/{full}") from e
        modified = found.get("LastModified")
        if modified is not None and time.time() - modified.timestamp() < self.leftover_grace:
            return False
        self._call("delete_object", full)
        self.cache.drop(full)
        return True

    def list_objects(self, prefix: str) -> list[str]:
        start = self._object_key(prefix) + "/"
        strip = len(f"{self._base}contexts/")
        return sorted(key[strip:] for key, _ in self._list(start))

    def list_object_contexts(self) -> list[str]:
        """One LIST per 1,000 contexts: ``contexts/`` grouped by its next ``/``."""
        start = f"{self._base}contexts/"
        return [
            str(p["Prefix"])[len(start) : -1]
            for page in self._pages(start, Delimiter="/")
            for p in page.get("CommonPrefixes", ())
        ]

    def _list(self, start: str) -> Iterator[tuple[str, str]]:
        for page in self._pages(start):
            for item in page.get("Contents", ()):
                yield str(item["Key"]), str(item.get("ETag", ""))

    def _pages(self, start: str, **options: str) -> Iterator[dict[str, Any]]:
        """The pages of a listing of ``start`` (1,000 keys each)."""
        token: str | None = None
        while True:
            kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": start, **options}
            if token:
                kw["ContinuationToken"] = token
            try:
                page = self.client.list_objects_v2(**kw)
            except Exception as e:
                self._raise(e, "list_objects_v2", start)
            yield page
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def delete_prefix(self, prefix: str) -> None:
        start = self._object_key(prefix) + "/"
        keys = [key for key, _ in self._list(start)]
        for i in range(0, len(keys), 1000):
            batch = keys[i : i + 1000]
            try:
                answer = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            except Exception as e:
                self._raise(e, "delete_objects", start)
            if answer.get("Errors"):
                error = answer["Errors"][0]
                raise StoreError(
                    f"cannot delete s3://{self.bucket}/{error.get('Key')}: "
                    f"{error.get('Code')} {error.get('Message', '')}".rstrip(),
                    hint=_hint_for(str(error.get("Code")), "delete_objects", self),
                )
            for key in batch:
                self.cache.drop(key)

    # -- heads -----------------------------------------------------------------------------
    def _fetch_head(self, context: str, limit: int) -> _HeadState:
        since = self._generation
        full = self._head_key(context)
        found = self._get(full, limit)
        state = _HeadState(
            etag=None if found is None else found[1],
            data=None if found is None else found[0],
            checked=time.monotonic(),
        )
        self._install({context: state}, since)
        return state

    def _install(self, states: dict[str, _HeadState], since: int) -> None:
        """Remember what the server said, unless a swap by this process overlapped the
        request: what it answered may then be older than this process's own write."""
        with self._state_lock:
            if self._generation == since:
                self._heads.update(states)

    def _fresh(self, state: _HeadState | None) -> bool:
        return state is not None and time.monotonic() - state.checked < self.head_ttl

    def read_head(self, context: str, limit: int) -> tuple[bytes, str] | None:
        state = self._heads.get(context)
        if state is not None and self._fresh(state) and state.etag and state.data is None:
            cached = self.cache.get(self._head_key(context), limit)  # ETag known from a LIST
            if cached is not None and cached[0] == state.etag:
                state.data = cached[1]
        if state is None or not self._fresh(state) or (state.etag and state.data is None):
            state = self._fetch_head(context, limit)
        if state.etag is None or state.data is None:
            return None
        if len(state.data) > limit:
            raise StoreError(f"the head of context '{context}' is over {limit} bytes")
        return state.data, state.etag

    def swap_head(self, context: str, data: bytes | None, expected: str | None) -> bool:
        full = self._head_key(context)
        with self._state_lock:  # whatever happens, the next read asks the server
            self._generation += 1
            self._heads.pop(context, None)
        try:
            if data is None:
                return self._delete_head(context, full, expected)
            return self._put_head(context, full, data, expected)
        finally:
            with self._state_lock:
                self._generation += 1

    def _put_head(self, context: str, full: str, data: bytes, expected: str | None) -> bool:
        since = self._generation
        kw: dict[str, Any] = {"IfNoneMatch": "*"} if expected is None else {"IfMatch": expected}
        try:
            answer = self._call("put_object", full, Body=data, **kw)
        except _Answer:
            # Lost, or our own request landed and its answer was lost (botocore retried
            # it): the head now holding exactly our bytes means the swap happened.
            state = self._fetch_head(context, MAX_HEAD_BYTES)  # the next attempt reads it here
            return state.data == data
        etag = str(answer.get("ETag", ""))
        if etag:
            self._install({context: _HeadState(etag, bytes(data), time.monotonic())}, since)
            self.cache.put(full, etag, data)
        return True

    def _delete_head(self, context: str, full: str, expected: str | None) -> bool:
        if expected is None:
            return self._fetch_head(context, 1 << 30).etag is None
        try:
            self.client.delete_object(Bucket=self.bucket, Key=full, IfMatch=expected)
        except Exception as e:
            code = _code(e)
            if code in _LOST_RACE or code in _MISSING:
                return False
            if code not in ("NotImplemented", "501"):
                self._raise(e, "delete_object", full)
            # A server without conditional deletes: only a purge deletes a head, and it
            # made the head a tombstone first, which every writer refuses to build on.
            if self._fetch_head(context, MAX_HEAD_BYTES).etag != expected:
                return False
            self._call("delete_object", full)
        self._heads.pop(context, None)
        self.cache.drop(full)
        return True

    def head_token(self, context: str) -> Hashable:
        state = self._heads.get(context)
        if not self._fresh(state):
            state = self._fetch_head(context, MAX_HEAD_BYTES)
        assert state is not None
        return state.etag

    def list_heads(self) -> list[str]:
        """One LIST request per 1,000 contexts; each head's ETag comes with it."""
        start = f"{self._base}heads/"
        since = self._generation
        now = time.monotonic()
        listed: dict[str, str] = {}
        for key, etag in self._list(start):
            name = key[len(start) :]
            if name.endswith(".json") and "/" not in name:
                listed[name[:-5]] = etag
        states: dict[str, _HeadState] = {}
        for name, etag in listed.items():
            state = self._heads.get(name)
            keep = state.data if state is not None and state.etag == etag else None
            states[name] = _HeadState(etag or None, keep, now)
        for name, state in list(self._heads.items()):
            if name not in listed and state.checked < now:
                states[name] = _HeadState(None, None, now)
        self._install(states, since)
        return list(listed)

    # -- the summary and the marker -------------------------------------------------------
    def read_summary(self, limit: int, *, local: bool = False) -> tuple[bytes, str] | None:
        full = self._summary_key()
        if local and (copy := self.cache.get(full, limit)) is not None:
            return copy[1], copy[0]
        found = self._get(full, limit)
        return None if found is None or not found[1] else (found[0], found[1])

    def swap_summary(self, data: bytes, expected: str | None) -> str | None:
        full = self._summary_key()
        kw: dict[str, Any] = {"IfNoneMatch": "*"} if expected is None else {"IfMatch": expected}
        try:
            answer = self._call("put_object", full, Body=data, **kw)
        except _Answer:
            self.cache.drop(full)  # stale: the next try downloads it
            return None
        etag = str(answer.get("ETag", ""))
        if etag:
            self.cache.put(full, etag, data)
        return etag or None

    def _summary_key(self) -> str:
        return f"{self._base}cache/summary.json"

    def read_marker(self) -> bytes | None:
        if self._marker is None:
            found = self._get(f"{self._base}{MARKER}", MAX_MARKER_BYTES)
            self._marker = None if found is None else found[0]
        return self._marker

    def write_marker(self, data: bytes) -> None:
        full = f"{self._base}{MARKER}"
        try:
            self.client.put_object(Bucket=self.bucket, Key=full, Body=data)
        except Exception as e:
            self._raise(e, "put_object", full)
        self._marker = bytes(data)

    def exists(self) -> bool:
        return self.read_marker() is not None

    def describe(self) -> dict[str, object]:
        return {
            "backend": "s3",
            "bucket": self.bucket,
            "prefix": self.prefix,
            "endpoint": self.endpoint(),
            "region": self.client.meta.region_name,
        }


# -- the client and its errors ----------------------------------------------------------------
_LOADER: Any = None
_LOADER_LOCK = threading.Lock()


def _make_client() -> Any:
    try:
        import botocore.config
        import botocore.session
    except ImportError as e:
        raise StoreError(
            "an s3:// store needs the S3 client library, which is not installed",
            hint="pip install 'regman-steps[s3]'",
        ) from e
    global _LOADER
    # A new session per client, so credentials and configuration are read afresh, but one
    # loader: it parses botocore's S3 model (about 150 ms) once per process.
    session = botocore.session.get_session()
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = session.get_component("data_loader")
        else:
            session.register_component("data_loader", _LOADER)
    model = session.get_service_model("s3")
    if "IfMatch" not in model.operation_model("PutObject").input_shape.members:
        raise StoreError(
            "the installed botocore is too old for S3 conditional writes",
            hint="pip install -U 'regman-steps[s3]'",
        )
    config = botocore.config.Config(
        retries={"mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        max_pool_connections=16,
    )
    region = session.get_config_variable("region") or "us-east-1"
    try:
        return session.create_client("s3", region_name=region, config=config)
    except Exception as e:
        raise _store_error(e, "connect", "S3", None) from e


def _code(e: BaseException) -> str:
    """The S3 error code of a botocore ClientError ("" for anything else)."""
    response = getattr(e, "response", None)
    if not isinstance(response, dict):
        return ""
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in ("", "None") and status is not None:
        return str(status)
    if code == "NotModified":
        return "304"
    return code


def _status(e: BaseException) -> int | None:
    response = getattr(e, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


_PERMISSIONS = {
    "get_object": "s3:GetObject",
    "head_object": "s3:GetObject",
    "put_object": "s3:PutObject",
    "delete_object": "s3:DeleteObject",
    "delete_objects": "s3:DeleteObject",
    "list_objects_v2": "s3:ListBucket",
}


def _hint_for(code: str, operation: str, backend: S3Backend | None) -> str | None:
    where = f"s3://{backend.bucket}" if backend else "the bucket"
    if code in ("AccessDenied", "AllAccessDisabled", "403"):
        permission = _PERMISSIONS.get(operation, "s3:GetObject, s3:PutObject and s3:ListBucket")
        return f"the credentials need {permission} on {where}; check AWS_PROFILE and the policy"
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
        return "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
    if code == "NoSuchBucket":
        return (
            f"create it (aws s3 mb {where}) or check the name, AWS_REGION and AWS_ENDPOINT_URL_S3"
        )
    if code in ("SlowDown", "503", "ServiceUnavailable", "RequestLimitExceeded"):
        return "S3 asks clients to slow down; try again later, or raise AWS_MAX_ATTEMPTS"
    if code in ("NotImplemented", "501"):
        return (
            "regman needs conditional writes (If-None-Match/If-Match); use AWS S3 or a server "
            "that supports them (SeaweedFS, MinIO)"
        )
    return None


def _store_error(
    e: BaseException, operation: str, where: str, backend: S3Backend | None
) -> StoreError:
    """A botocore failure as one line with a hint; never a botocore exception to callers."""
    name = type(e).__name__
    code = _code(e)
    if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
        return StoreError(
            f"no AWS credentials to reach {where}",
            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, "
            "or run 'aws configure'",
        )
    if name in ("NoRegionError",):
        return StoreError(f"no AWS region for {where}", hint="set AWS_REGION")
    if name in (
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ProxyConnectionError",
        "SSLError",
    ) or isinstance(e, ConnectionError):
        endpoint = backend.endpoint() if backend is not None and backend._client else "S3"
        return StoreError(
            f"cannot reach {endpoint} for {where} ({name}, after retries)",
            hint="check the network and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL",
        )
    if code:
        message = ""
        response = getattr(e, "response", None)
        if isinstance(response, dict):
            message = str(response.get("Error", {}).get("Message", "") or "")
        what = {
            "NoSuchBucket": f"the bucket of {where} does not exist",
            "AccessDenied": f"access denied to {where} ({operation})",
            "SlowDown": f"S3 throttled {operation} on {where} (503 SlowDown) after retries",
            "NotImplemented": f"the S3 server refused {operation} on {where}: {message}",
        }.get(code)
        status = _status(e)
        if what is None:
            what = f"S3 refused {operation} on {where}: {code}" + (f" ({status})" if status else "")
            if message:
                what += f" {message}"
        return StoreError(what, hint=_hint_for(code, operation, backend))
    if name == "ParamValidationError":
        return StoreError(f"S3 refused {operation} on {where}: {e}")
    return StoreError(f"S3 {operation} on {where} failed: {name}: {e}")


def count_requests(backend: S3Backend) -> Callable[[], int]:
    """A function giving the requests sent since this call (benchmarks, tests)."""
    start = sum(backend.requests.values())
    return lambda: sum(backend.requests.values()) - start
