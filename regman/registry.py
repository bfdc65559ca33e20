"""SpecificationRegistry: the specs of one context, cached in memory, backed by the store.

Reads check the context's change token (one ``stat`` of its index) and reload
only the specs whose files changed, so a registry held by a long-running
pipeline process sees what a command-line run did, at the cost of a stat.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Hashable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from regman.errors import NotFoundError, SpecError
from regman.names import validate_name
from regman.store import Store, open_store

if TYPE_CHECKING:
    from regman.spec import DependencySpec, OutputSpec, StepSpecification

_UNLOADED = object()
_HANDOFF_SECONDS = 0.001


class SpecificationRegistry:
    """Step specifications of one context; isolated from every other context."""

    def __init__(self, context_name: str = "default", store: Store | str | None = None) -> None:
        self._context = validate_name(context_name, "context")
        self._store = open_store(store if store is not None else ":memory:")
        self._lock = threading.RLock()
        self._token: Hashable | object = _UNLOADED
        self._handoff: tuple[Hashable, float] | None = None
        self._cache: dict[str, tuple[Hashable, StepSpecification]] = {}

    @property
    def context_name(self) -> str:
        return self._context

    @property
    def store(self) -> Store:
        return self._store

    def __repr__(self) -> str:
        return (
            f"SpecificationRegistry(context_name={self._context!r}, store={self._store.location!r})"
        )

    # -- freshness ---------------------------------------------------------------------
    def _specs(self) -> dict[str, tuple[Hashable, StepSpecification]]:
        token = self._current_token()
        if token == self._token:
            return self._cache
        with self._lock:
            if token == self._token:
                return self._cache
            fresh: dict[str, tuple[Hashable, StepSpecification]] = {}
            if token is not None:
                for step, signature in self._store.spec_signatures(self._context).items():
                    cached = self._cache.get(step)
                    if cached is not None and cached[0] == signature:
                        fresh[step] = cached
                        continue
                    try:
                        fresh[step] = (signature, self._store.load_spec(self._context, step))
                    except (NotFoundError, SpecError):
                        continue  # removed meanwhile, or damaged: 'regman doctor' reports it
            self._cache, self._token = fresh, token
            return fresh

    def confirm_exists(self) -> bool:
        """Whether the context is in the store now (one stat), for ``get_registry``.

        The token read here is handed to the very next read if it comes within
        ``_HANDOFF_SECONDS``, so ``get_registry(c).get_specification(s)`` costs one stat,
        not two; any later read checks afresh.
        """
        token = self._store.token(self._context)
        if token is None:
            return False
        self._handoff = (token, time.monotonic())
        return True

    def _current_token(self) -> Hashable:
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
    ) -> str:
        """Store ``specification`` under ``step_name``; returns created/updated/unchanged.

        A mapping may use any layout a spec file may use. With ``replace=False`` an
        existing, different spec is refused with ConflictError.
        """
        from regman.specfile import coerce_specification

        validate_name(step_name, "step")
        spec = coerce_specification(specification, source=f"<{step_name}>")
        return self._store.put_spec(self._context, step_name, spec, replace=replace)

    register = register_specification

    def remove_specification(self, step_name: str) -> bool:
        """Unregister a step (recoverable from the trash); False when it was not there."""
        validate_name(step_name, "step")
        return self._store.delete_spec(self._context, step_name)

    # -- reading -----------------------------------------------------------------------
    def get_specification(self, step_name: str) -> StepSpecification | None:
        # Hot path for pipeline code: the freshness check is inlined (one stat).
        cache = self._cache if self._current_token() == self._token else self._specs()
        entry = cache.get(step_name)
        return entry[1] if entry is not None else None

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
        from regman.scoring import score_candidate

        found = []
        for step, spec in self.list_specifications().items():
            for name, output in spec.outputs.items():
                score = score_candidate(
                    dependency_spec, output, provider_step=step, provider_spec=spec
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
        from regman.atomic import atomic_write
        from regman.errors import ConflictError, StoreError

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
        for step, spec in specs.items():
            atomic_write(paths[step], spec.to_yaml().encode())
        return list(paths.values())

    def require_all_readable(self) -> dict[str, StepSpecification]:
        """Every spec, or the error of the first one on disk that does not load.

        Reads skip a damaged spec file (so one bad file does not take a context down);
        an export or a comparison must not silently leave it out.
        """
        specs = self.list_specifications()
        for step in self._store.step_names(self._context):
            if step not in specs:
                self._store.load_spec(self._context, step)  # raises what is wrong with it
        return specs

    def stats(self) -> dict[str, Any]:
        index = self._store.read_index(self._context)
        if index is None:
            raise NotFoundError(f"context '{self._context}' does not exist")
        return index.stats()

    def __contains__(self, step_name: object) -> bool:
        return step_name in self._specs()

    def __len__(self) -> int:
        return len(self._specs())

    def __iter__(self) -> Iterator[str]:
        return iter(self.list_step_names())
