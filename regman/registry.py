"""SpecificationRegistry: the specs of one context, cached in memory, backed by the store.

Reads check the context's change token (one ``stat`` of its head) and reload
only the specs whose content changed, so a registry held by a long-running
pipeline process sees what a command-line run did, at the cost of a stat.
Every write is one revision of the context; ``batch()`` groups many into one.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Hashable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from regman.errors import (
    ConflictError,
    InvalidInputError,
    InvalidNameError,
    NotFoundError,
    SpecError,
    StoreError,
)
from regman.names import find_case_clash, validate_name
from regman.store import Store, open_store

if TYPE_CHECKING:
    from regman.spec import DependencySpec, OutputSpec, StepSpecification
    from regman.store import CommitResult
    from regman.store.records import Record

_UNLOADED = object()
_HANDOFF_SECONDS = 0.001


class SpecificationRegistry:
    """Step specifications of one context; isolated from every other context."""

    def __init__(
        self,
        context_name: str = "default",
        store: Store | str | None = None,
        *,
        revision: int | None = None,
    ) -> None:
        self._context = validate_name(context_name, "context")
        self._store = open_store(store if store is not None else ":memory:")
        self._pinned = revision
        self._lock = threading.RLock()
        self._token: Hashable | object = _UNLOADED
        self._handoff: tuple[Hashable, float] | None = None
        self._cache: dict[str, tuple[Hashable, StepSpecification]] = {}
        self._batches = threading.local()  # a batch belongs to the thread that opened it
        self.damaged: dict[str, str] = {}  # step -> why its stored spec could not be read

    @property
    def _batch(self) -> dict[str, StepSpecification | None] | None:
        batch: dict[str, StepSpecification | None] | None = getattr(self._batches, "pending", None)
        return batch

    @_batch.setter
    def _batch(self, value: dict[str, StepSpecification | None] | None) -> None:
        self._batches.pending = value

    @property
    def context_name(self) -> str:
        return self._context

    @property
    def store(self) -> Store:
        return self._store

    @property
    def pinned_revision(self) -> int | None:
        """The revision this registry shows, when it is a read-only view of the past."""
        return self._pinned

    def __repr__(self) -> str:
        # cheap and never raising (a debugger calls it): the step count comes from the
        # context's head, no spec is parsed
        at = "" if self._pinned is None else f", revision={self._pinned}"
        try:
            steps: object = len(self._store.step_names(self._context, self._pinned))
        except Exception:  # a damaged or missing store still gets a repr
            steps = "?"
        return f"SpecificationRegistry(context={self._context!r}, steps={steps}{at})"

    # -- freshness ---------------------------------------------------------------------
    def _specs(self) -> dict[str, tuple[Hashable, StepSpecification]]:
        token = self._current_token()
        if token == self._token:
            return self._cache
        with self._lock:
            if token == self._token:
                return self._cache
            fresh: dict[str, tuple[Hashable, StepSpecification]] = {}
            damaged: dict[str, str] = {}
            if token is not None:
                for step, signature in self._signatures().items():
                    cached = self._cache.get(step)
                    if cached is not None and cached[0] == signature:
                        fresh[step] = cached
                        continue
                    try:
                        spec = self._store.load_spec(self._context, step, self._pinned)
                        fresh[step] = (signature, spec)
                    except NotFoundError:
                        continue  # removed meanwhile
                    except (SpecError, StoreError) as e:
                        damaged[step] = str(e)  # 'regman doctor' reports it too
            self._cache, self._token, self.damaged = fresh, token, damaged
            return fresh

    def _signatures(self) -> dict[str, Hashable]:
        if self._pinned is None:
            return self._store.spec_signatures(self._context)
        return {s: e.spec for s, e in self._store.manifest(self._context, self._pinned).items()}

    def confirm_exists(self) -> bool:
        """Whether the context is in the store now (one stat), for ``get_registry``.

        The token read here is handed to the very next read if it comes within
        ``_HANDOFF_SECONDS``, so ``get_registry(c).get_specification(s)`` costs one stat,
        not two; any later read checks afresh.
        """
        token = self._store.live_token(self._context)
        if token is None:
            return False
        self._handoff = (token, time.monotonic())
        return True

    def _current_token(self) -> Hashable:
        if self._pinned is not None:
            return ("pinned", self._pinned)  # the past does not change
        handoff = self._handoff
        if handoff is not None:
            self._handoff = None
            if time.monotonic() - handoff[1] < _HANDOFF_SECONDS:
                return handoff[0]
        return self._store.token(self._context)

    def refresh(self) -> None:
        """Drop the cache; the next read reloads from the store."""
        with self._lock:
            self._token = _UNLOADED
            self._cache = {}

    # -- writing -----------------------------------------------------------------------
    def register_specification(
        self,
        step_name: str,
        specification: StepSpecification | Mapping[str, Any],
        *,
        replace: bool = True,
        message: str | None = None,
        if_revision: int | None = None,
    ) -> str:
        """Store ``specification`` under ``step_name`` as a new revision (unless unchanged).

        Returns created/updated/unchanged. A mapping may use any layout a spec file may
        use. With ``replace=False`` an existing, different spec is refused with
        ConflictError; ``if_revision`` refuses (RevisionConflictError) if the context
        moved on. Inside ``batch()`` the change waits for the batch's one revision.
        """
        from regman.specfile import coerce_specification

        self._writable()
        validate_name(step_name, "step")
        spec = coerce_specification(specification, source=f"<{step_name}>")
        if self._batch is not None:
            outcome = self._stage(self._batch, step_name, spec, replace)
            self._batch[step_name] = spec
            return outcome
        return self._store.put_spec(
            self._context,
            step_name,
            spec,
            replace=replace,
            message=message,
            if_revision=if_revision,
        )

    register = register_specification

    def _stage(
        self,
        batch: dict[str, StepSpecification | None],
        step_name: str,
        spec: StepSpecification,
        replace: bool,
    ) -> str:
        """The outcome of a register inside a batch, against the head plus the batch so far.

        Checked one step at a time (the head is cached), so a batch of n is O(n).
        """
        earlier = batch.get(step_name)
        if earlier is None:  # not in the batch yet, or removed by it: compare with the head
            clash = find_case_clash(step_name, [s for s, v in batch.items() if v is not None])
            if clash:
                raise InvalidNameError(
                    f"step '{step_name}' differs only in case from step '{clash}' "
                    f"in this batch for context '{self._context}'",
                    hint=f"use '{clash}'",
                )
            return self._store.put_specs(
                self._context, {step_name: spec}, replace=replace, dry_run=True
            ).outcomes[step_name]
        if earlier == spec:
            return "unchanged"
        if not replace:
            raise ConflictError(
                f"step '{step_name}' is already in this batch with another spec",
                hint="drop replace=False to overwrite it",
            )
        return "updated"

    def remove_specification(
        self,
        step_name: str,
        *,
        purge: bool = False,
        message: str | None = None,
        if_revision: int | None = None,
    ) -> bool:
        """Unregister a step (a revision; restorable unless ``purge``); False if absent."""
        self._writable()
        validate_name(step_name, "step")
        if self._batch is not None:
            if step_name in self._batch:  # registered or removed earlier in this batch
                present = self._batch[step_name] is not None
            else:
                present = step_name in self._specs()
            self._batch[step_name] = None
            return present
        return self._store.delete_spec(
            self._context, step_name, purge=purge, message=message, if_revision=if_revision
        )

    @contextlib.contextmanager
    def batch(
        self, *, message: str | None = None, if_revision: int | None = None
    ) -> Iterator[SpecificationRegistry]:
        """Group registers and removes into one revision, made when the block ends.

        If the block raises, nothing is written; if the commit is refused, nothing is.
        """
        self._writable()
        if self._batch is not None:
            raise InvalidInputError("batches do not nest")
        self._batch = {}
        try:
            yield self
            pending = self._batch
        finally:
            self._batch = None
        if pending:
            self._store.put_specs(
                self._context,
                pending,
                command="batch",
                message=message,
                if_revision=if_revision,
            )

    def rollback(
        self, to: int, steps: list[str] | None = None, *, message: str | None = None
    ) -> CommitResult:
        """A new revision whose content equals revision ``to`` (all steps, or those named)."""
        self._writable()
        return self._store.rollback(self._context, to, steps, message=message)

    def _writable(self) -> None:
        if self._pinned is not None:
            raise InvalidInputError(
                f"context '{self._context}' at revision {self._pinned} is read-only",
                hint="write to the current revision (rollback goes back)",
            )

    # -- revisions ---------------------------------------------------------------------
    @property
    def revision(self) -> int:
        """The context's current revision (0 before its first)."""
        return self._pinned if self._pinned is not None else self._store.revision(self._context)

    def history(self, step_name: str | None = None, limit: int | None = None) -> list[Record]:
        """Revisions, newest first (those that touched ``step_name`` when given)."""
        return self._store.history(self._context, step_name, limit)

    def at(self, revision: int) -> SpecificationRegistry:
        """A read-only view of this context as it was at ``revision``."""
        self._store.record(self._context, revision)  # raises when there is no such revision
        return SpecificationRegistry(self._context, self._store, revision=revision)

    def get_specification_at(self, step_name: str, revision: int) -> StepSpecification | None:
        """The spec ``step_name`` had at ``revision`` (None when it had none)."""
        from regman.errors import StepNotFoundError

        try:
            return self._store.load_spec(self._context, step_name, revision)
        except StepNotFoundError:
            return None  # the step was not there then; a missing revision or context raises

    # -- reading -----------------------------------------------------------------------
    def get_specification(self, step_name: str) -> StepSpecification | None:
        # Hot path for pipeline code: the freshness check is inlined (one stat).
        cache = self._cache if self._current_token() == self._token else self._specs()
        entry = cache.get(step_name)
        return entry[1] if entry is not None else None

    def require_spec(self, step_name: str) -> StepSpecification:
        """The spec of ``step_name``, or the error that says why there is none.

        Unlike ``get_specification`` (None when absent), a damaged stored spec raises
        what is wrong with it, and an absent step raises StepNotFoundError.
        """
        from regman.errors import StepNotFoundError

        validate_name(step_name, "step")
        spec = self.get_specification(step_name)
        if spec is not None:
            return spec
        if step_name in self._signatures():
            return self._store.load_spec(self._context, step_name, self._pinned)
        where = self._context if self._pinned is None else f"{self._context}@{self._pinned}"
        import difflib

        close = difflib.get_close_matches(step_name, self.list_step_names(), n=1, cutoff=0.75)
        hint = f"did you mean '{close[0]}'?" if close else f"see 'regman contexts show {where}'"
        raise StepNotFoundError(where, step_name, hint=hint)

    def list_specifications(self) -> dict[str, StepSpecification]:
        """Step name -> spec, sorted by step name."""
        return {name: entry[1] for name, entry in sorted(self._specs().items())}

    def list_step_names(self) -> list[str]:
        return sorted(self._specs())

    def list_step_types(self) -> list[str]:
        return sorted({entry[1].step_type for entry in self._specs().values()})

    def get_specifications_by_type(self, step_type: str) -> list[StepSpecification]:
        return [spec for spec in self.list_specifications().values() if spec.step_type == step_type]

    def find_compatible_outputs(
        self, dependency_spec: DependencySpec
    ) -> list[tuple[str, str, OutputSpec, float]]:
        """Outputs of this context that could feed ``dependency_spec``, best first.

        Each item is ``(step_name, output_name, output_spec, score)``; the score is the
        resolver's, so this agrees with what ``DependencyResolver`` would wire.
        """
        from regman.scoring import job_types_of, score_candidate

        found = []
        specs = self.list_specifications()
        jobs = job_types_of(specs)  # the providers' job types in this context, as resolving
        for step, spec in specs.items():
            for name, output in spec.outputs.items():
                score = score_candidate(
                    dependency_spec,
                    output,
                    provider_step=step,
                    provider_spec=spec,
                    provider_job=jobs[step],
                )
                if score is not None and score.total > 0:
                    found.append((step, name, output, score.total))
        found.sort(key=lambda item: (-item[3], item[0], item[1]))
        return found

    def export(self, directory: str | os.PathLike[str], *, overwrite: bool = False) -> list[str]:
        """Write every spec to ``directory`` as ``<step>.step.yaml``; returns the paths.

        The files are in the native layout and re-register as they are (``regman import``).
        Existing files are refused (ConflictError) unless ``overwrite``; then nothing is written.
        """
        from regman.errors import ConflictError
        from regman.store.safeio import Folder

        folder = os.path.abspath(os.fspath(directory))
        specs = self.require_all_readable()
        paths = {step: os.path.join(folder, f"{step}.step.yaml") for step in specs}
        existing = [p for p in paths.values() if os.path.exists(p)]
        if existing and not overwrite:
            raise ConflictError(
                f"{existing[0]} exists ({len(existing)} files would be overwritten)",
                hint="use another folder or --force",
            )
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create {folder}: {e.strerror or e}") from e
        out = Folder(folder)
        for step, spec in specs.items():
            out.write([f"{step}.step.yaml"], spec.to_yaml().encode())
        return list(paths.values())

    def export_bundle(
        self, path: str | os.PathLike[str] | None = None, *, overwrite: bool = False
    ) -> str:
        """Every spec in one bundle (a multi-document YAML stream); written to ``path`` too.

        ``regman import``, ``plan`` and ``apply`` read it back, losslessly. An existing
        file is refused (ConflictError) unless ``overwrite``; the write is atomic.
        """
        from regman.bundle import dump_bundle

        text = dump_bundle(self._context, self.revision, self.require_all_readable())
        if path is not None:
            from regman.errors import ConflictError
            from regman.store.safeio import Folder

            target = os.path.abspath(os.fspath(path))
            if os.path.exists(target) and not overwrite:
                raise ConflictError(f"{target} exists", hint="use another name or --force")
            folder, name = os.path.split(target)
            if not os.path.isdir(folder):
                raise StoreError(f"cannot write {target}: no folder {folder}")
            Folder(folder).write([name], text.encode())
        return text

    def require_all_readable(self) -> dict[str, StepSpecification]:
        """Every spec, or the error of the first one on disk that does not load.

        Reads skip a damaged spec file (so one bad file does not take a context down);
        an export or a comparison must not silently leave it out.
        """
        specs = self.list_specifications()
        for step in self._signatures():
            if step not in specs:
                self._store.load_spec(self._context, step, self._pinned)  # raises what is wrong
        return specs

    def stats(self) -> dict[str, Any]:
        return self._store.stats(self._context)

    def __contains__(self, step_name: object) -> bool:
        return step_name in self._specs()

    def __len__(self) -> int:
        return len(self._specs())

    def __iter__(self) -> Iterator[str]:
        return iter(self.list_step_names())
