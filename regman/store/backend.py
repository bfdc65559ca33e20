"""The storage primitives every backend provides; all policy lives above them (``core``).

A backend stores three kinds of things, addressed by keys made only of validated
names joined with ``/`` (``<context>/specs/<step>/<hash>.yaml``,
``<context>/revisions/<n>.json``):

- **immutable objects**, written once (``create``: put-if-absent) and never changed;
- **one head per context**, the only mutable thing, moved by compare-and-swap
  against the version (an ETag) read before: a writer that lost a race learns it;
- **derived caches** (``read_cache``/``write_cache``), best effort, never the truth.

A backend with a real lock (files) may also serialise writers of a context with
``writer_lock``; a backend without one (S3) relies on compare-and-swap alone.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Hashable, Iterator

MAX_HEAD_BYTES = 64 * 1024 * 1024
MAX_RECORD_BYTES = 64 * 1024 * 1024
MAX_CACHE_BYTES = 64 * 1024 * 1024
MAX_MARKER_BYTES = 64 * 1024


class Backend(abc.ABC):
    """Where a store's bytes live."""

    location: str

    # -- immutable objects ---------------------------------------------------------------
    @abc.abstractmethod
    def read_object(self, key: str, limit: int) -> bytes | None:
        """The object's bytes, or None when there is none (StoreError when over ``limit``)."""

    @abc.abstractmethod
    def create_object(self, key: str, data: bytes) -> bool:
        """Write an object unless one exists; True when this call wrote it."""

    @abc.abstractmethod
    def delete_object(self, key: str) -> bool:
        """Delete an object (purge and repair only); True when it was there."""

    def where(self, key: str) -> str:
        """Where an object is, for messages (a path or a URL)."""
        return f"{self.location}/{key}"

    def remove_leftover(self, key: str) -> bool:
        """Delete what ``list_objects`` listed and doctor found no use for (temporary files too)."""
        return self.delete_object(key)

    def stray_temporaries(self) -> list[str]:
        """Temporary files outside the objects (the marker's, a cache's) a kill left."""
        return []

    def remove_stray_temporary(self, name: str) -> bool:
        """Delete one of ``stray_temporaries``; True when it was there."""
        return False

    @abc.abstractmethod
    def list_objects(self, prefix: str) -> list[str]:
        """Keys of the objects under ``prefix/`` (the caller validates each one it uses)."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> None:
        """Delete everything under ``prefix/`` (a purged context)."""

    # -- heads -----------------------------------------------------------------------------
    @abc.abstractmethod
    def read_head(self, context: str, limit: int) -> tuple[bytes, str] | None:
        """The context's head and its version (an ETag), or None when it has none."""

    @abc.abstractmethod
    def swap_head(self, context: str, data: bytes | None, expected: str | None) -> bool:
        """Replace the head if its version is still ``expected`` (None: there is no head).

        ``data`` None deletes the head. False, with nothing changed, when it moved.
        """

    def etag_of(self, data: bytes) -> str | None:
        """The ETag ``read_head`` would report for a head of ``data``, if computable here.

        A writer that knows it caches its own head and skips re-reading it; None (the
        default) means the backend's ETags are assigned elsewhere (a server).
        """
        return None

    @abc.abstractmethod
    def head_token(self, context: str) -> Hashable:
        """A cheap value that changes whenever the head changes (None when there is none).

        It is the hot path of every registry read, so it must cost about one syscall.
        """

    @abc.abstractmethod
    def list_heads(self) -> list[str]:
        """Names of the contexts that have a head (the caller validates them)."""

    @abc.abstractmethod
    def list_object_contexts(self) -> list[str]:
        """Names that have objects, with a head or not: doctor finds the objects of a
        first write that did not land by them (the caller validates them)."""

    # -- derived data ------------------------------------------------------------------
    def read_cache(self, name: str, limit: int) -> bytes | None:
        """A cache file written by ``write_cache``; None when absent or unusable."""
        return None

    def write_cache(self, name: str, data: bytes) -> None:  # noqa: B027 (optional)
        """Best effort: a cache that cannot be written is simply not used."""

    # -- the summary, where writers keep it (see ``summary``) -----------------------------
    # True where reading a head costs a request: writers then keep the summary current
    # under compare-and-swap (``read_summary``/``swap_summary``); False where a head
    # costs a stat, and readers rewrite it through ``write_cache``. Where True, a head's
    # ``head_token`` is the version ``read_head`` reports (both name what was written).
    writers_keep_summary = False
    # How long a listing may be reused by the process that made it (the head TTL).
    listing_ttl = 0.0

    def read_summary(self, limit: int, *, local: bool = False) -> tuple[bytes, str] | None:
        """The summary and its version (None: there is none yet; StoreError over ``limit``).

        ``local``: a copy this machine holds will do, if any; a swap against it fails
        when it is stale, which costs a writer one request instead of two.
        """
        raise NotImplementedError

    def swap_summary(self, data: bytes, expected: str | None) -> str | None:
        """Replace the summary if its version is still ``expected`` (None: there is none).

        The new version, or None, with nothing changed, when it moved.
        """
        raise NotImplementedError

    # -- coordination ------------------------------------------------------------------
    def writer_lock(self, context: str) -> contextlib.AbstractContextManager[None]:
        """Serialise writers of a context where the backend can (default: no lock)."""
        return contextlib.nullcontext()

    def store_lock(self) -> contextlib.AbstractContextManager[None]:
        """Serialise store-wide maintenance (format upgrade) where the backend can."""
        return contextlib.nullcontext()

    # -- the store as a whole ----------------------------------------------------------
    @abc.abstractmethod
    def read_marker(self) -> bytes | None:
        """The store's format marker (JSON), None for a new, empty store."""

    @abc.abstractmethod
    def write_marker(self, data: bytes) -> None:
        """Replace the format marker (when a store is first written, or upgraded)."""

    def exists(self) -> bool:
        """Whether anything of a store is here (reads never create one)."""
        return True

    def describe(self) -> dict[str, object]:
        """Backend-specific facts for ``regman info``."""
        return {}

    def warnings(self) -> list[str]:
        """Conditions a user should know about (e.g. a store folder others may write)."""
        return []

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Around one write: backends may prepare (e.g. create folders) here."""
        yield
