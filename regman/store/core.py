"""The store's policy, written once above every backend: revisions, history, restore, purge.

Each context has a linear history of revisions 1, 2, 3, ... Every change is one
revision, made by one compare-and-swap of the context's head: spec objects (named
by their content's hash, so each distinct content is stored once per step) and the
previous revision's record are written first as immutable objects, then the head
moves. A failure or a kill before the swap leaves the old revision, whole; after
it, the new one. Nothing is ever changed in place; only a purge deletes.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import random
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regman.errors import (
    CompatibilityError,
    ConflictError,
    ContextNotFoundError,
    DamagedStoreError,
    InvalidInputError,
    InvalidNameError,
    NotFoundError,
    ReadOnlyContextError,
    RevisionConflictError,
    SpecError,
    StepNotFoundError,
    StoreError,
    StoreVersionError,
)
from regman.names import find_case_clash, is_valid_name, validate_name
from regman.store.backend import MAX_CACHE_BYTES, MAX_HEAD_BYTES, MAX_RECORD_BYTES, Backend
from regman.store.records import (
    FORMAT_VERSION,
    SNAPSHOT_EVERY,
    Change,
    Entry,
    Head,
    Record,
    Removed,
    load_json_object,
)
from regman.store.summary import (
    SUMMARY_NAME,
    SummaryEntry,
    entry_of,
    plain_token,
)
from regman.store.summary import dump as dump_summary
from regman.store.summary import parse as parse_summary
from regman.store.summary import with_entry as summary_with_entry
from regman.store.timefmt import now_iso, parse_iso

if TYPE_CHECKING:
    from regman.spec import StepSpecification

COMMIT_ATTEMPTS = 12  # compare-and-swap retries before a writer gives up
_CACHE_REWRITE_AFTER = 32  # heads read afresh before a listing rewrites the cache (folder)
_SUMMARY_ATTEMPTS = 16  # a writer's tries at its summary entry before leaving it to readers


@dataclass
class CommitResult:
    """What a write did: the context's revision after it, and each step's outcome."""

    context: str
    revision: int
    changed: bool
    outcomes: dict[str, str] = field(default_factory=dict)
    record: Record | None = None


@dataclass
class TrashEntry:
    """Something removed and restorable: a cleared context, or one removed step."""

    context: str
    step: str | None
    deleted_at: str
    revision: int

    @property
    def kind(self) -> str:
        return "context" if self.step is None else "step"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "context": self.context,
            "step": self.step,
            "deleted_at": self.deleted_at,
            "revision": self.revision,
        }


@dataclass
class _Plan:
    """A proposed change: step -> new entry (None removes), and the objects it needs."""

    steps: dict[str, Entry | None] = field(default_factory=dict)
    objects: dict[str, bytes] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    cleared: bool | None = None  # None: keep (a change to steps un-clears)
    force: bool = False  # a revision even when no step changes (create, purge)
    purge: set[str] = field(default_factory=set)
    source: str | None = None
    settings: dict[str, str] | None = None  # new settings ("set"); None keeps them
    created_at: str | None = None  # the context's creation time, when this creates it (upgrade)


# The wiring check behind compatibility modes needs the resolver, a layer above the store:
# the manager installs it (``install_wiring_check``). It takes (context, mode, specs now,
# specs after) and returns what the change breaks under that mode.
WiringCheck = Callable[
    [str, str, "Mapping[str, StepSpecification]", "Mapping[str, StepSpecification]"], list[str]
]
_wiring_check: WiringCheck | None = None
_forcing: contextvars.ContextVar[bool] = contextvars.ContextVar("regman_forcing", default=False)
_warnings_sink: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "regman_wiring_warnings", default=None
)
# Under NONE nothing is enforced, but a caller that asks (the command line) hears what a
# write breaks; judging it resolves the context twice, so only up to this many steps.
WARN_MAX_STEPS = 200


def install_wiring_check(check: WiringCheck) -> None:
    global _wiring_check
    _wiring_check = check


@contextlib.contextmanager
def wiring_warnings() -> Iterator[list[str]]:
    """Collect what writes inside the block break, under contexts whose rule is NONE."""
    found: list[str] = []
    token = _warnings_sink.set(found)
    try:
        yield found
    finally:
        _warnings_sink.reset(token)


@contextlib.contextmanager
def forcing() -> Iterator[None]:
    """Writes inside this block override compatibility rules (recorded in the revision)."""
    token = _forcing.set(True)
    try:
        yield
    finally:
        _forcing.reset(token)


def spec_hash(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()[:32]


def author() -> str:
    """``$REGMAN_AUTHOR``, else user@host."""
    name = os.environ.get("REGMAN_AUTHOR", "").strip()
    if name:
        return name[:200]
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment (containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def stored_text(spec: StepSpecification, step: str) -> bytes:
    """The YAML a spec is stored as; refused if regman could not read it back."""
    from regman.yamlsafe import MAX_SPEC_BYTES

    text = spec.to_yaml().encode()
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(
            f"the spec would be stored as {len(text) // 1024} KiB of YAML, more than "
            f"the {MAX_SPEC_BYTES // 1024} KiB a spec may have",
            source=f"<{step}>",
            hint="a spec is a few KB; move bulky data out of it",
        )
    return text


def entry_for(spec: StepSpecification, digest: str) -> Entry:
    deps = spec.dependencies.values()
    return Entry(
        spec=digest,
        step_type=spec.step_type,
        node_type=spec.node_type.value,
        dependencies=len(spec.dependencies),
        required_dependencies=sum(1 for d in deps if d.required),
        outputs=len(spec.outputs),
    )


def spec_key(context: str, step: str, digest: str) -> str:
    return f"{context}/specs/{step}/{digest}.yaml"


def record_key(context: str, revision: int) -> str:
    return f"{context}/revisions/{revision}.json"


class Store:
    """Contexts, their revisions and specs, on any backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.location = backend.location
        # context -> (token, head, etag or None): a head is parsed once per change
        self._heads: dict[str, tuple[Hashable, Head, str | None]] = {}
        self._records: dict[tuple[str, str, int], Record] = {}
        self._format_checked = False
        self._lock = threading.Lock()
        self._listing: tuple[float, dict[str, SummaryEntry]] | None = None  # see _summaries

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"

    # -- format --------------------------------------------------------------------------
    def check_format(self, *, writing: bool = False) -> None:
        """Refuse a newer store; upgrade an older one; mark a new one when first written."""
        if self._format_checked:
            return
        raw = self.backend.read_marker()
        if raw is None:
            if not writing:
                return  # a new or absent store: reads find nothing, and create nothing
            self.backend.write_marker(marker_bytes(FORMAT_VERSION))
            self._format_checked = True
            return
        version = marker_version(raw, f"{self.location}/regman-store.json")
        if version > FORMAT_VERSION:
            raise StoreVersionError(
                f"the store at {self.location} has format version {version}; this regman "
                f"reads format {FORMAT_VERSION}",
                hint="upgrade regman to use this store",
            )
        if version < FORMAT_VERSION:
            from regman.store.upgrade import upgrade_store

            upgrade_store(self, version)
        self._format_checked = True

    # -- heads -----------------------------------------------------------------------------
    def _read_head(self, context: str) -> tuple[Head, str] | None:
        found = self.backend.read_head(context, MAX_HEAD_BYTES)
        if found is None:
            return None
        data, etag = found
        return Head.from_json(data, f"{self.location}: head of context '{context}'", context), etag

    def head(self, context: str) -> Head | None:
        """The context's head (live or cleared), cached until its token changes."""
        token = self.backend.head_token(context)
        if token is None and not self._format_checked:
            self.check_format()  # a store of an older format has no heads until upgraded
            token = self.backend.head_token(context)
        if token is None:
            return None
        cached = self._heads.get(context)
        if cached is not None and cached[0] == token:
            return cached[1]
        self.check_format()
        found = self._read_head(context)
        if found is None:
            return None
        self._heads[context] = (token, found[0], found[1])
        return found[0]

    def _head_for_commit(self, context: str) -> tuple[Head, str] | None:
        """The head and its ETag, from the cache when unchanged (the swap re-checks it)."""
        cached = self._heads.get(context)
        if cached is not None and cached[2] is not None:
            token = self.backend.head_token(context)
            if token is not None and cached[0] == token:
                return cached[1], cached[2]
        found = self._read_head(context)
        if found is not None:
            self._heads[context] = (self.backend.head_token(context), found[0], found[1])
        return found

    def _live_head(self, context: str) -> Head:
        validate_name(context, "context")
        head = self.head(context)
        if head is None or head.cleared:
            raise ContextNotFoundError(context, hint=self._missing_hint(context, head))
        return head

    def _missing_hint(self, context: str, head: Head | None) -> str | None:
        if head is not None and head.cleared:
            return f"it was cleared; bring it back with 'regman restore {context}'"
        close = self.closest_context(context)
        return f"did you mean '{close}'?" if close else None

    def closest_context(self, name: str) -> str | None:
        """The live context whose name is nearest ``name`` (a typo's target), if any.

        One listing and the heads of a few candidates, not every context's statistics:
        it runs on every creation of a context, in stores of 10,000 of them.
        """
        import difflib

        names = [n for n in self.backend.list_heads() if n != name and is_valid_name(n)]
        for close in difflib.get_close_matches(name, names, n=3, cutoff=0.75):
            if self.context_exists(close):
                return close
        return None

    def token(self, context: str) -> Hashable:
        """A value that changes whenever the context changes (about one syscall)."""
        token = self.backend.head_token(context)
        if token is None and not self._format_checked:
            self.check_format()  # a store of an older format has no heads until upgraded
            token = self.backend.head_token(context)
        return token

    # -- listing and statistics ------------------------------------------------------------
    def list_contexts(self) -> list[str]:
        """Live contexts (cleared ones keep their history but are not listed)."""
        return sorted(n for n, e in self._summaries().items() if not e.cleared)

    def live_token(self, context: str) -> Hashable:
        """The context's token if it is live now, else None: one stat when its head is cached."""
        token = self.backend.head_token(context)
        if token is None:
            return None
        cached = self._heads.get(context)
        if cached is None or cached[0] != token:
            if self.head(context) is None:
                return None
            cached = self._heads.get(context)
            if cached is None:
                return None
        return None if cached[1].cleared else cached[0]

    def context_exists(self, context: str) -> bool:
        if not is_valid_name(context):
            return False
        head = self.head(context)
        return head is not None and not head.cleared

    def all_stats(self, *, with_step_types: bool = False) -> dict[str, dict[str, Any]]:
        entries = sorted(self._summaries().items())
        if with_step_types:
            return {
                name: {**e.stats, "step_types": list(e.step_types)}
                for name, e in entries
                if not e.cleared
            }
        return {name: dict(e.stats) for name, e in entries if not e.cleared}

    def step_types_across(self, contexts: Iterable[str] | None = None) -> list[str]:
        """The step types of live contexts (all, or ``contexts``), each once, from the summary."""
        entries = self._summaries()
        names = entries if contexts is None else contexts
        return sorted(
            {t for n in names if (e := entries.get(n)) and not e.cleared for t in e.step_types}
        )

    def stats(self, context: str) -> dict[str, Any]:
        return self._live_head(context).stats()

    def _summaries(self) -> dict[str, SummaryEntry]:
        """Every context's entry: the summary's where its token is the head's, else the head's.

        One listing and one summary read, plus a read of each head that changed without
        its entry following (on a folder a stat per context is the listing's cost). A
        listing is reused within the backend's ``listing_ttl`` unless this store wrote.
        """
        self.check_format()
        memo = self._listing
        if memo is not None and time.monotonic() - memo[0] < self.backend.listing_ttl:
            return memo[1]
        cached, version = self._read_summary()
        fresh: dict[str, SummaryEntry] = {}
        stale = 0
        for name in self.backend.list_heads():
            if not is_valid_name(name):
                continue  # not regman's: doctor reports it
            token = plain_token(self.backend.head_token(name))
            if token is None:
                continue
            entry = cached.get(name)
            if entry is None or entry.token != token:
                head = self.head(name)
                if head is None:
                    continue
                entry, stale = entry_of(token, head), stale + 1
            fresh[name] = entry
        self._refresh_summary(cached, fresh, stale, version)
        self._listing = (time.monotonic(), fresh)
        return fresh

    def _read_summary(self) -> tuple[dict[str, SummaryEntry], str | None]:
        if not self.backend.writers_keep_summary:
            return parse_summary(self.backend.read_cache(SUMMARY_NAME, MAX_CACHE_BYTES)), None
        try:
            found = self.backend.read_summary(MAX_CACHE_BYTES)
        except StoreError:
            return {}, None
        return ({}, None) if found is None else (parse_summary(found[0]), found[1])

    def _refresh_summary(
        self,
        cached: dict[str, SummaryEntry],
        fresh: dict[str, SummaryEntry],
        stale: int,
        version: str | None,
    ) -> None:
        """A reader that found the summary behind writes it back, best effort.

        Where writers keep it, once and only if nobody changed it meanwhile (a writer's
        newer entry is never overwritten); on a folder, after many fresh reads.
        """
        dropped = len(cached) > len(fresh)
        if self.backend.writers_keep_summary:
            if (stale or dropped) and self.backend.exists():
                with contextlib.suppress(StoreError):
                    self.backend.swap_summary(dump_summary(fresh), version)
        elif stale >= _CACHE_REWRITE_AFTER or (stale and dropped):
            self.backend.write_cache(SUMMARY_NAME, dump_summary(fresh))

    def _note_in_summary(self, context: str, written: tuple[Head, bytes] | None) -> None:
        """A writer's part where writers keep the summary: the entry of the head it wrote
        (None: it purged the context), under compare-and-swap, a few tries (a summary
        behind costs readers requests, never a wrong number)."""
        self._listing = None
        if not self.backend.writers_keep_summary:
            return
        entry = None
        if written is not None:
            # The entry is keyed by the head's version (its token on such a backend), read
            # back: if another writer moved the head on meanwhile, that writer notes its own.
            found = self.backend.read_head(context, MAX_HEAD_BYTES)
            if found is None or found[0] != written[1]:
                return
            entry = entry_of(found[1], written[0])
        local = True  # the copy this machine last saw: often current, and then one request
        with contextlib.suppress(StoreError):
            for attempt in range(_SUMMARY_ATTEMPTS):
                found = self.backend.read_summary(MAX_CACHE_BYTES, local=local)
                data = summary_with_entry(None if found is None else found[0], context, entry)
                if data is None:
                    return  # it already says this, or something later
                if self.backend.swap_summary(data, None if found is None else found[1]):
                    return
                local = False
                time.sleep(min(0.1, 0.002 * 2**attempt) * random.random())

    # -- revisions and history -------------------------------------------------------------
    def revision(self, context: str) -> int:
        """The context's current revision (0 when it has none)."""
        head = self.head(context)
        return 0 if head is None else head.revision

    def record(self, context: str, revision: int) -> Record:
        """The record of one revision (immutable, so cached)."""
        head = self.head(context)
        if head is None:
            raise ContextNotFoundError(context)
        if not 1 <= revision <= head.revision:
            raise NotFoundError(
                f"context '{context}' has no revision {revision} (it has 1 to {head.revision})",
                hint=f"see 'regman history {context}'",
            )
        if revision == head.revision:
            return head.last
        # Keyed by the context's creation too: a purged context created again numbers its
        # revisions from 1 anew, and another Store may still hold the old records.
        key = (context, head.created_at, revision)
        record = self._records.get(key)
        if record is None:
            where = f"{self.location}: revision {revision} of context '{context}'"
            raw = self.backend.read_object(record_key(context, revision), MAX_RECORD_BYTES)
            if raw is None:
                raise DamagedStoreError(f"{where} is missing", hint="run 'regman doctor'")
            record = Record.from_json(raw, where)
            if record.revision != revision:
                raise DamagedStoreError(f"{where} is damaged: it says revision {record.revision}")
            self._records[key] = record
        return record

    def history(
        self, context: str, step: str | None = None, limit: int | None = None
    ) -> list[Record]:
        """Revisions, newest first; only those that touched ``step`` when given."""
        validate_name(context, "context")
        if step is not None:
            validate_name(step, "step")
        head = self.head(context)
        if head is None:
            raise ContextNotFoundError(context, hint=self._missing_hint(context, None))
        found: list[Record] = []
        for revision in range(head.revision, 0, -1):
            if limit is not None and len(found) >= limit:
                break
            record = self.record(context, revision)
            if step is None or step in record.changes or step in record.purged:
                found.append(record)
        return found

    def manifest(self, context: str, at: int | None = None) -> dict[str, Entry]:
        """Step -> entry, now (a live context) or at revision ``at`` (any context)."""
        if at is None:
            return self._live_head(context).steps
        head = self.head(context)
        if head is None:
            raise ContextNotFoundError(context)
        if at == head.revision:
            return dict(head.steps)
        self.record(context, at)  # raises for a revision that does not exist
        base = at - at % SNAPSHOT_EVERY
        steps: dict[str, Entry] = {}
        if base:
            snapshot = self.record(context, base).snapshot
            if snapshot is None:
                raise DamagedStoreError(
                    f"revision {base} of context '{context}' lacks its snapshot",
                    hint="run 'regman doctor'",
                )
            steps = dict(snapshot)
        for revision in range(base + 1, at + 1):
            apply_changes(steps, self.record(context, revision).changes)
        return steps

    # -- specs -----------------------------------------------------------------------------
    def step_names(self, context: str, at: int | None = None) -> list[str]:
        return sorted(self.manifest(context, at))

    def spec_signatures(self, context: str) -> dict[str, Hashable]:
        """Step -> the hash of its spec: a registry reloads only what changed."""
        head = self.head(context)
        if head is None or head.cleared:
            return {}
        return {step: e.spec for step, e in head.steps.items()}

    def entry(self, context: str, step: str, at: int | None = None) -> Entry:
        validate_name(step, "step")
        entry = self.manifest(context, at).get(step)
        if entry is None:
            where = context if at is None else f"{context}@{at}"
            raise StepNotFoundError(where, step)
        return entry

    def spec_bytes(self, context: str, step: str, entry: Entry) -> bytes:
        """The stored YAML of one version, checked against its hash."""
        from regman.yamlsafe import MAX_SPEC_BYTES

        key = spec_key(context, step, entry.spec)
        data = self.backend.read_object(key, MAX_SPEC_BYTES)
        where = self.backend.where(key)
        if data is None:
            raise DamagedStoreError(
                f"the spec of step '{step}' in context '{context}' is gone ({where}; purged?)",
                hint="run 'regman doctor'",
            )
        if spec_hash(data) != entry.spec:
            raise DamagedStoreError(
                f"{where} does not match its hash: it was changed outside regman",
                hint="run 'regman doctor'; restore the step with 'regman rollback'",
            )
        return data

    def spec_text(self, context: str, step: str, at: int | None = None) -> str | None:
        """The stored text of a spec, or None when the step is not there."""
        try:
            entry = self.entry(context, step, at)
        except NotFoundError:
            return None
        return self.spec_bytes(context, step, entry).decode("utf-8", "replace")

    def load_spec(self, context: str, step: str, at: int | None = None) -> StepSpecification:
        from regman.specfile import load_spec_text

        entry = self.entry(context, step, at)
        data = self.spec_bytes(context, step, entry)
        return load_spec_text(data, self.backend.where(spec_key(context, step, entry.spec)))

    # -- writing -----------------------------------------------------------------------------
    def commit(
        self,
        context: str,
        command: str,
        decide: Callable[[Head | None], _Plan],
        *,
        message: str | None = None,
        if_revision: int | None = None,
    ) -> CommitResult:
        """Make one revision of ``context`` from what ``decide`` proposes for its head.

        ``decide`` may raise to refuse (nothing is written). A writer that loses a
        race re-reads the head and asks ``decide`` again, a bounded number of times.
        """
        validate_name(context, "context")
        if message is not None and len(message) > 4096:
            raise InvalidInputError("a message may have at most 4096 characters")
        if not self._format_checked and not self.backend.exists():
            decide(None)  # a new store: a refused change (it raises) must create nothing
        self.check_format(writing=True)
        # a backend without a lock (S3) lets every writer race: more tries, longer waits
        attempts = getattr(self.backend, "commit_attempts", COMMIT_ATTEMPTS)
        longest = getattr(self.backend, "commit_backoff", 0.2)
        with self.backend.writer_lock(context):
            for attempt in range(attempts):
                result = self._try_commit(context, command, decide, message, if_revision)
                if result is not None:
                    return result
                time.sleep(min(longest, 0.005 * 2**attempt) * (0.5 + random.random()))
        raise StoreError(
            f"context '{context}' was changed by other writers {attempts} times while "
            "this change was being made",
            hint="try again",
        )

    def _try_commit(
        self,
        context: str,
        command: str,
        decide: Callable[[Head | None], _Plan],
        message: str | None,
        if_revision: int | None,
    ) -> CommitResult | None:
        current = self._head_for_commit(context)
        head, etag = current if current else (None, None)
        at = head.revision if head else 0
        if if_revision is not None and at != if_revision:
            raise RevisionConflictError(context, at, if_revision)
        if head is not None and etag is not None and head.last.command == "purge":
            # A purge that was interrupted (or is running, where there is no lock):
            # finishing it is idempotent; then this change goes to a new context.
            self._finish_purge(context, etag)
            return None
        if head is None:
            self._refuse_context_case_clash(context)
        plan = decide(head)
        if head is not None and head.settings["mode"] == "READONLY" and command != "set":
            raise ReadOnlyContextError(context)
        old_steps = head.steps if head else {}
        changes = _changes(old_steps, plan.steps)
        overridden = self._check_compatibility(context, head, changes, plan.objects)
        cleared = (
            plan.cleared
            if plan.cleared is not None
            else (bool(head and head.cleared) and not changes)
        )
        if not (changes or plan.force or plan.purge) and (head is None or head.cleared == cleared):
            return CommitResult(context, at, False, plan.outcomes)
        if head is not None:  # the record of the previous revision, before it leaves the head
            self.backend.create_object(record_key(context, at), head.last.to_json())
        written = self._create_objects(plan.objects)
        data: bytes | None = None
        try:
            new = self._next_head(context, head, plan, changes, cleared, command, message)
            new.last.overridden = overridden
            data = new.to_json()
            if len(data) > MAX_HEAD_BYTES:
                raise InvalidInputError(f"context '{context}' would be too large to store")
            swapped = self.backend.swap_head(context, data, etag)
        except BaseException:
            if data is None or not self._head_is(context, data):
                self._forget(written)  # but never objects a head that landed names
            raise
        if not swapped:
            self._heads.pop(context, None)  # re-read it on the next attempt
            return None  # lost a race: the objects may be shared with the winner, keep them
        if getattr(self.backend, "serialises_writers", False):
            # nobody else moves the head while we hold the writer lock: its token now is
            # ours, and the next write need not parse back what we just wrote
            etag = self.backend.etag_of(data)
            self._heads[context] = (self.backend.head_token(context), new, etag)
        self._after_commit(context, new, plan.purge, data)
        return CommitResult(context, new.revision, True, plan.outcomes, new.last)

    def _check_compatibility(
        self,
        context: str,
        head: Head | None,
        changes: Mapping[str, Change],
        objects: Mapping[str, bytes],
    ) -> list[str]:
        """Refuse a change that breaks the context's compatibility mode (unless forcing).

        Returns the findings a forced change overrode, for its record.
        """
        mode = head.settings["compatibility"] if head is not None else "NONE"
        if head is None or not changes or _wiring_check is None:
            return []
        sink = _warnings_sink.get()
        if mode == "NONE" and (sink is None or len(head.steps) > WARN_MAX_STEPS):
            return []
        from regman.specfile import load_spec_text

        current = {step: self.load_spec(context, step) for step in head.steps}
        after = dict(current)
        for step, change in changes.items():
            if change.kind == "removed" or change.entry is None:
                after.pop(step, None)
                continue
            key = spec_key(context, step, change.entry.spec)
            text = objects.get(key) or self.spec_bytes(context, step, change.entry)
            after[step] = load_spec_text(text, self.backend.where(key))
        if mode == "NONE":
            assert sink is not None
            sink += [
                f"context '{context}': {f}" for f in _wiring_check(context, "FULL", current, after)
            ]
            return []
        findings = _wiring_check(context, mode, current, after)
        if findings and not _forcing.get():
            raise CompatibilityError(context, mode, findings)
        return findings

    def _create_objects(self, objects: Mapping[str, bytes]) -> list[str]:
        """Write a change's new objects; the keys actually written (not already there).

        Many objects go through a few threads: each write waits on its own fsync (or
        request), and those waits overlap. On any failure the ones written are taken
        back and the first error is raised.
        """
        if len(objects) <= 4:
            written: list[str] = []
            try:
                for key, data in objects.items():
                    if self.backend.create_object(key, data):
                        written.append(key)
            except BaseException:
                self._forget(written)
                raise
            return written
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = {
                key: pool.submit(self.backend.create_object, key, data)
                for key, data in objects.items()
            }
        written = [key for key, f in futures.items() if f.exception() is None and f.result()]
        errors = [e for f in futures.values() if (e := f.exception()) is not None]
        if errors:
            self._forget(written)
            raise errors[0]
        return written

    def _head_is(self, context: str, data: bytes) -> bool:
        """Whether the context's head is ``data`` (a swap that failed after it landed)."""
        try:
            current = self.backend.read_head(context, MAX_HEAD_BYTES)
        except StoreError:
            return True  # cannot tell: keep the objects (doctor removes them if unused)
        return current is not None and current[0] == data

    def _forget(self, keys: list[str]) -> None:
        """Take back objects written for a change that failed (only under a lock)."""
        if getattr(self.backend, "serialises_writers", False):
            for key in keys:
                with contextlib.suppress(StoreError):  # else unreferenced: doctor removes it
                    self.backend.delete_object(key)

    def _next_head(
        self,
        context: str,
        head: Head | None,
        plan: _Plan,
        changes: dict[str, Change],
        cleared: bool,
        command: str,
        message: str | None,
    ) -> Head:
        revision = (head.revision if head else 0) + 1
        stamp = now_iso()
        steps = dict(head.steps) if head else {}
        apply_changes(steps, changes)
        removed = dict(head.removed) if head else {}
        for step, change in changes.items():
            if change.kind == "removed" and change.previous is not None:
                removed[step] = Removed(revision, stamp, change.previous)
            else:
                removed.pop(step, None)
        for step in plan.purge:
            removed.pop(step, None)
        record = Record(
            revision=revision,
            created_at=stamp,
            author=author(),
            command=command,
            message=message,
            changes=changes,
            source=plan.source,
            purged=sorted(plan.purge),
            snapshot=dict(steps) if revision % SNAPSHOT_EVERY == 0 else None,
        )
        created = head.created_at if head else (plan.created_at or stamp)
        settings = plan.settings or (dict(head.settings) if head else None)
        new = Head(context, revision, created, cleared, steps, removed, record)
        if settings is not None:
            new.settings = settings
        return new

    def _after_commit(self, context: str, head: Head, purge: set[str], data: bytes) -> None:
        with contextlib.suppress(StoreError):  # else the next writer writes it from the head
            self.backend.create_object(record_key(context, head.revision), head.last.to_json())
        self._note_in_summary(context, (head, data))
        for step in sorted(purge):
            if step not in head.steps:
                self.backend.delete_prefix(f"{context}/specs/{step}")

    def _refuse_context_case_clash(self, context: str) -> None:
        names = [n for n in self.backend.list_heads() if is_valid_name(n)]
        # A listed name without a head holds objects of a first write that did not land.
        clash = next(
            (
                n
                for n in names
                if find_case_clash(context, [n]) and self.backend.head_token(n) is not None
            ),
            None,
        )
        if clash:
            raise InvalidNameError(
                f"context '{context}' differs only in case from existing context '{clash}'",
                hint=f"use '{clash}'",
            )

    # -- the changes users make ------------------------------------------------------------
    def create_context(self, context: str, *, message: str | None = None) -> bool:
        """Create an empty context (or bring back a cleared one, empty); False if it exists."""
        result = self.commit(
            context,
            "create",
            lambda head: _Plan(force=head is None or head.cleared, cleared=False),
            message=message,
        )
        return result.changed

    def put_specs(
        self,
        context: str,
        specs: Mapping[str, StepSpecification | None],
        *,
        replace: bool = True,
        command: str = "register",
        message: str | None = None,
        if_revision: int | None = None,
        dry_run: bool = False,
        create: bool = True,
        source: str | None = None,
        created_at: str | None = None,
    ) -> CommitResult:
        """Register (a spec) or remove (None) many steps as one revision.

        ``source`` records where the change came from (``dev@12`` for a promotion).

        Every refusal (an invalid name, a case clash, ``replace=False`` against a
        different spec) happens before anything is written.
        """
        prepared = {step: _prepare(context, step, spec) for step, spec in specs.items()}

        def decide(head: Head | None) -> _Plan:
            if (head is None or head.cleared) and not create:
                raise ContextNotFoundError(context, hint="drop --no-create to create it")
            plan = _plan_puts(context, head, prepared, replace)
            plan.source = source
            plan.created_at = created_at
            return plan

        if dry_run:
            validate_name(context, "context")
            self.check_format()  # an older store is upgraded first, as for any read
            head = self.head(context) if self.backend.exists() else None
            at = head.revision if head else 0
            if if_revision is not None and at != if_revision:
                raise RevisionConflictError(context, at, if_revision)
            if head is None:
                self._refuse_context_case_clash(context)
            return CommitResult(context, at, False, decide(head).outcomes)
        return self.commit(context, command, decide, message=message, if_revision=if_revision)

    def put_spec(
        self, context: str, step: str, spec: StepSpecification, *, replace: bool = True, **kw: Any
    ) -> str:
        """Store one spec; returns "created", "updated" or "unchanged"."""
        return self.put_specs(context, {step: spec}, replace=replace, **kw).outcomes[step]

    def delete_spec(
        self,
        context: str,
        step: str,
        *,
        purge: bool = False,
        message: str | None = None,
        if_revision: int | None = None,
    ) -> bool:
        """Remove a step (a revision; restorable unless ``purge``); False when absent."""
        validate_name(step, "step")

        def decide(head: Head | None) -> _Plan:
            if head is None or head.cleared:
                raise ContextNotFoundError(context)
            present = step in head.steps
            plan = _Plan(outcomes={step: "removed" if present else "absent"})
            if present:
                plan.steps[step] = None
            if purge and (present or step in head.removed):
                plan.purge.add(step)
            return plan

        result = self.commit(
            context,
            "remove --purge" if purge else "remove",
            decide,
            message=message,
            if_revision=if_revision,
        )
        return result.outcomes[step] == "removed"

    def delete_context(
        self,
        context: str,
        *,
        purge: bool = False,
        message: str | None = None,
        if_revision: int | None = None,
    ) -> bool:
        """Clear a context: a revision removing every step (restorable), or a purge."""
        validate_name(context, "context")
        if purge:
            return self.purge_context(context, if_revision=if_revision)

        def decide(head: Head | None) -> _Plan:
            if head is None or head.cleared:
                raise ContextNotFoundError(context)
            return _Plan(steps=dict.fromkeys(head.steps), cleared=True, force=True)

        try:
            self.commit(context, "clear", decide, message=message, if_revision=if_revision)
        except ContextNotFoundError:
            return False
        return True

    def set_settings(
        self,
        context: str,
        *,
        compatibility: str | None = None,
        mode: str | None = None,
        message: str | None = None,
    ) -> CommitResult:
        """Change a context's compatibility rule or access mode (a revision, no step changes)."""
        from regman.store.records import ACCESS_MODES, COMPATIBILITY_MODES

        if compatibility is not None and compatibility not in COMPATIBILITY_MODES:
            raise InvalidInputError(
                f"unknown compatibility mode {compatibility!r}",
                hint="use one of " + ", ".join(COMPATIBILITY_MODES),
            )
        if mode is not None and mode not in ACCESS_MODES:
            raise InvalidInputError(
                f"unknown mode {mode!r}", hint="use one of " + ", ".join(ACCESS_MODES)
            )

        def decide(head: Head | None) -> _Plan:
            if head is None or head.cleared:
                raise ContextNotFoundError(context)
            wanted = dict(head.settings)
            if compatibility is not None:
                wanted["compatibility"] = compatibility
            if mode is not None:
                wanted["mode"] = mode
            if wanted == head.settings:
                return _Plan()
            return _Plan(force=True, settings=wanted)

        changed = [
            f"{key} {value}"
            for key, value in (("compatibility", compatibility), ("mode", mode))
            if value is not None
        ]
        return self.commit(
            context, "set", decide, message=message or "set " + ", ".join(changed) or None
        )

    def settings(self, context: str) -> dict[str, str]:
        """The context's compatibility rule and access mode."""
        return dict(self._live_head(context).settings)

    def purge_context(self, context: str, *, if_revision: int | None = None) -> bool:
        """Delete a context and its whole history for good; False when there is none.

        The head first becomes a tombstone (so writers and restores that come later
        refuse, and one that raced loses its compare-and-swap), then every object
        goes, then the head.
        """
        validate_name(context, "context")
        self.check_format(writing=True)
        with self.backend.writer_lock(context):
            current = self._read_head(context)
            if current is None:
                return False
            head, etag = current
            if head.settings["mode"] == "READONLY":
                raise ReadOnlyContextError(context)
            if if_revision is not None and head.revision != if_revision:
                raise RevisionConflictError(context, head.revision, if_revision)
            if head.last.command != "purge":
                tomb = self._next_head(
                    context, head, _Plan(), {}, True, "purge", "purging the context"
                )
                tomb.steps, tomb.removed = {}, {}
                if not self.backend.swap_head(context, tomb.to_json(), etag):
                    raise ConflictError(f"context '{context}' changed meanwhile", hint="try again")
                current = self._read_head(context)
                if current is None:
                    return True
                etag = current[1]
            self._finish_purge(context, etag)
        return True

    def _finish_purge(self, context: str, etag: str) -> None:
        """Delete what a purge's tombstone (head ``etag``) stands for, then the head."""
        for prefix in ("specs", "revisions"):
            self.backend.delete_prefix(f"{context}/{prefix}")
        if self.backend.swap_head(context, None, etag):  # else another writer finished it
            self.backend.delete_prefix(context)  # and may have created the context again
            self._note_in_summary(context, None)
        self._heads.pop(context, None)
        self._records = {k: v for k, v in self._records.items() if k[0] != context}

    def restore(
        self,
        context: str,
        step: str | None = None,
        *,
        message: str | None = None,
        if_revision: int | None = None,
    ) -> CommitResult:
        """Bring back a cleared context's last steps, or one removed step, as a new revision."""
        validate_name(context, "context")
        if step is not None:
            validate_name(step, "step")

        def decide(head: Head | None) -> _Plan:
            if head is None or head.last.command == "purge":
                raise NotFoundError(
                    f"context '{context}' has nothing to restore", hint="see 'regman trash list'"
                )
            if step is not None:
                plan = _plan_restore_step(context, head, step)
                self._require_objects(context, {s: e for s, e in plan.steps.items() if e})
                return plan
            if not head.cleared:
                raise ConflictError(
                    f"context '{context}' is not cleared",
                    hint=f"restore single steps with 'regman restore {context} STEP', "
                    f"or go back with 'regman rollback {context} --to N'",
                )
            # The steps the clear removed: not those removed before it (a context
            # cleared while empty comes back empty).
            clear = head.last
            while clear.command != "clear" and clear.revision > 1:
                clear = self.record(context, clear.revision - 1)
            cleared_by = clear.revision
            back = {s: r.entry for s, r in head.removed.items() if r.revision == cleared_by}
            self._require_objects(context, back)
            return _Plan(
                steps=dict(back), cleared=False, force=True, outcomes=dict.fromkeys(back, "created")
            )

        return self.commit(context, "restore", decide, message=message, if_revision=if_revision)

    def rollback(
        self,
        context: str,
        to: int,
        steps: list[str] | None = None,
        *,
        message: str | None = None,
        if_revision: int | None = None,
    ) -> CommitResult:
        """A new revision whose content equals revision ``to`` (all steps, or those named)."""
        target = self.manifest(context, to)
        for step in steps or ():
            validate_name(step, "step")

        def decide(head: Head | None) -> _Plan:
            if head is None:
                raise ContextNotFoundError(context)
            names = set(steps) if steps else set(head.steps) | set(target)
            unknown = [s for s in sorted(names) if s not in head.steps and s not in target]
            if unknown:
                raise StepNotFoundError(f"{context}@{to}", unknown[0])
            proposed = {s: target.get(s) for s in sorted(names)}
            after = [s for s in head.steps if proposed.get(s, head.steps[s]) is not None]
            after += [s for s, e in proposed.items() if e is not None and s not in head.steps]
            for step in after:
                clash = find_case_clash(step, after)
                if clash and step not in head.steps:
                    raise InvalidNameError(
                        f"step '{step}' differs only in case from step '{clash}' in context "
                        f"'{context}'",
                        hint=f"roll back '{clash}' too, or remove it first",
                    )
            self._require_objects(context, {s: e for s, e in proposed.items() if e})
            plan = _Plan(steps=proposed, cleared=False, source=f"{context}@{to}")
            plan.outcomes = _outcomes(head.steps, proposed)
            return plan

        return self.commit(context, "rollback", decide, message=message, if_revision=if_revision)

    def _require_objects(self, context: str, entries: Mapping[str, Entry]) -> None:
        for step, entry in entries.items():
            self.spec_bytes(context, step, entry)  # raises when purged or damaged

    # -- trash: what can be restored, and purging it ---------------------------------------
    def list_trash(self) -> list[TrashEntry]:
        entries: list[TrashEntry] = []
        for name, summary in self._summaries().items():
            head = self.head(name)
            if head is None or head.last.command == "purge":
                continue
            if summary.cleared:
                entries.append(TrashEntry(name, None, head.updated_at, head.revision))
                continue
            for step, removed in head.removed.items():
                entries.append(TrashEntry(name, step, removed.removed_at, removed.revision))
        return sorted(entries, key=lambda e: (e.deleted_at, e.context, e.step or ""))

    def empty_trash(self, older_than_days: float | None = None) -> int:
        """Purge cleared contexts and removed steps (older than the given days); a count."""
        cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
        by_context: dict[str, list[TrashEntry]] = {}
        for entry in self.list_trash():
            if cutoff is None or parse_iso(entry.deleted_at) < cutoff:
                by_context.setdefault(entry.context, []).append(entry)
        purged = 0
        for context, entries in by_context.items():
            cleared = [e for e in entries if e.step is None]
            if cleared:
                # Only the cleared context that was listed: one restored (or changed)
                # since is live again and must not be purged.
                with contextlib.suppress(RevisionConflictError):
                    purged += self.purge_context(context, if_revision=cleared[0].revision)
                continue
            steps = {e.step for e in entries if e.step}

            def decide(head: Head | None, steps: set[str] = steps) -> _Plan:
                return _Plan(purge=steps & set(head.removed) if head else set())

            self.commit(context, "trash empty", decide)
            purged += len(steps)
        return purged

    # -- the store as a whole --------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        contexts = self._summaries()
        live = {name: e.stats for name, e in sorted(contexts.items()) if not e.cleared}
        return {
            "store": self.location,
            "format_version": FORMAT_VERSION,
            "contexts": len(live),
            "cleared_contexts": len(contexts) - len(live),
            "revisions": sum(e.revision for e in contexts.values()),
            "compatibility_rules": {
                name: s["compatibility"] for name, s in live.items() if s["compatibility"] != "NONE"
            },
            "read_only_contexts": [name for name, s in live.items() if s["mode"] == "READONLY"],
            **self.backend.describe(),
        }

    def warnings(self) -> list[str]:
        return self.backend.warnings()


# -- planning (pure) ---------------------------------------------------------------------------
def _prepare(context: str, step: str, spec: StepSpecification | None) -> tuple[Entry, bytes] | None:
    validate_name(step, "step")
    if spec is None:
        return None
    text = stored_text(spec, step)
    return entry_for(spec, spec_hash(text)), text


def _plan_puts(
    context: str,
    head: Head | None,
    prepared: Mapping[str, tuple[Entry, bytes] | None],
    replace: bool,
) -> _Plan:
    current = head.steps if head else {}
    plan = _Plan(cleared=False if any(v is not None for v in prepared.values()) else None)
    names = list(current)
    for step, item in prepared.items():
        old = current.get(step)
        if item is None:
            plan.outcomes[step] = "removed" if old else "absent"
            if old:
                plan.steps[step] = None
            continue
        entry, text = item
        if old is None:
            clash = find_case_clash(step, names)
            if clash:
                raise InvalidNameError(
                    f"step '{step}' differs only in case from existing step '{clash}' "
                    f"in context '{context}'",
                    hint=f"use '{clash}'",
                )
            names.append(step)
            plan.outcomes[step] = "created"
        elif old.spec == entry.spec:
            plan.outcomes[step] = "unchanged"
            continue
        elif not replace:
            raise ConflictError(
                f"step '{step}' is already registered in context '{context}' with another spec",
                hint="drop --no-replace to overwrite it",
            )
        else:
            plan.outcomes[step] = "updated"
        plan.steps[step] = entry
        plan.objects[spec_key(context, step, entry.spec)] = text
    if (head is None or head.cleared) and (plan.cleared is False or not prepared):
        plan.force = True  # creating the context is a revision even with no steps
    return plan


def _plan_restore_step(context: str, head: Head, step: str) -> _Plan:
    removed = head.removed.get(step)
    if removed is None:
        if step in head.steps:
            raise ConflictError(
                f"step '{step}' is registered in context '{context}'",
                hint=f"see 'regman history {context} {step}'; 'regman rollback' goes back",
            )
        raise NotFoundError(
            f"step '{step}' of context '{context}' has nothing to restore",
            hint="see 'regman trash list'",
        )
    clash = find_case_clash(step, head.steps)
    if clash:
        raise InvalidNameError(
            f"step '{step}' differs only in case from existing step '{clash}' in context "
            f"'{context}'"
        )
    return _Plan(steps={step: removed.entry}, cleared=False, outcomes={step: "created"})


def _changes(old: Mapping[str, Entry], proposed: Mapping[str, Entry | None]) -> dict[str, Change]:
    changes: dict[str, Change] = {}
    for step, entry in proposed.items():
        before = old.get(step)
        if entry == before:
            continue
        if entry is None:
            changes[step] = Change("removed", None, before)
        elif before is None:
            changes[step] = Change("created", entry, None)
        else:
            changes[step] = Change("updated", entry, before)
    return changes


def _outcomes(old: Mapping[str, Entry], proposed: Mapping[str, Entry | None]) -> dict[str, str]:
    changes = _changes(old, proposed)
    return {s: changes[s].kind if s in changes else "unchanged" for s in proposed}


def apply_changes(steps: dict[str, Entry], changes: Mapping[str, Change]) -> None:
    for step, change in changes.items():
        if change.entry is None:
            steps.pop(step, None)
        else:
            steps[step] = change.entry


def marker_bytes(version: int) -> bytes:
    return f'{{"format_version": {version}}}\n'.encode()


def marker_version(raw: bytes, where: str) -> int:
    doc = load_json_object(raw, where)
    version = doc.get("format_version")
    if type(version) is not int or version < 1:
        raise DamagedStoreError(
            f"{where} is damaged: its format version is {version!r:.40}",
            hint="run 'regman doctor --repair'",
        )
    return version


def iter_heads(store: Store) -> Iterator[tuple[str, Head | None]]:
    """Every context head in the store (None for one that cannot be read)."""
    for name in sorted(store.backend.list_heads()):
        if is_valid_name(name):
            try:
                yield name, store.head(name)
            except StoreError:
                yield name, None
