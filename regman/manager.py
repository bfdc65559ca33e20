"""RegistryManager, the global manager, and the seed's module-level functions.

The global ``registry_manager`` exists from import time but touches no disk until
first used; ``configure(store)`` points it at another store (tests, embedding)
while keeping its identity, so ``from regman import registry_manager`` stays valid.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from regman.errors import ContextNotFoundError
from regman.names import validate_name
from regman.registry import SpecificationRegistry
from regman.store import CommitResult, Store, TrashEntry, open_store
from regman.store.core import forcing, install_wiring_check, wiring_warnings

if TYPE_CHECKING:
    from regman.plan import ChangePlan
    from regman.spec import StepSpecification
    from regman.store.doctor import DoctorReport
    from regman.store.records import Record

T = TypeVar("T")


def _wiring_check(
    context: str,
    mode: str,
    current: Mapping[str, StepSpecification],
    after: Mapping[str, StepSpecification],
) -> list[str]:
    from regman.plan import compatibility_findings

    return compatibility_findings(context, mode, current, after)


# The store enforces each context's compatibility rule on every write; the rule is judged
# by the resolver, a layer above the store, so the check is handed down from here.
install_wiring_check(_wiring_check)


class RegistryManager:
    """Many isolated SpecificationRegistry instances, one per context, in one store.

    ``store``: None for the default on-disk store (``$REGMAN_HOME``, else the platform's
    user data folder), a folder path, ``":memory:"``, or a Store instance.
    """

    def __init__(self, store: Store | str | os.PathLike[str] | None = None) -> None:
        self._store_arg = store
        self._store: Store | None = None
        self._registries: dict[str, SpecificationRegistry] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        # cheap and never raising (a debugger calls it): one listing of the store's heads
        try:
            contexts: object = len(self.list_contexts())
            where: object = self.store.location
        except Exception:  # an unreadable store still gets a repr
            contexts, where = "?", self._store_arg or "<default>"
        return f"RegistryManager(contexts={contexts}, store={str(where)!r})"

    @property
    def store(self) -> Store:
        """The store, opened on first use (so creating a manager touches no disk)."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store(self._store_arg)
        return self._store

    def use_store(self, store: Store | str | os.PathLike[str] | None) -> None:
        """Point this manager at another store; registries handed out before stay on the old one."""
        with self._lock:
            self._store_arg = store
            self._store = None
            self._registries = {}

    def get_registry(
        self, context_name: str = "default", create_if_missing: bool = True
    ) -> SpecificationRegistry | None:
        """The registry of a context: the same object on every call for the same context.

        Creates the context in the store when missing, unless ``create_if_missing`` is
        False, in which case a missing context gives None.
        """
        if not isinstance(context_name, str):
            validate_name(context_name, "context")  # raises InvalidNameError
        registry = self._registries.get(context_name)
        # Another process may have cleared the context since: one stat says so, and
        # then it is created again, as for any missing context.
        if registry is not None and create_if_missing and registry.confirm_exists():
            return registry
        validate_name(context_name, "context")
        store = self.store
        if not store.context_exists(context_name):
            if not create_if_missing:
                return None
            store.create_context(context_name)
        with self._lock:
            registry = self._registries.get(context_name)
            if registry is None:
                registry = SpecificationRegistry(context_name, store)
                self._registries[context_name] = registry
            return registry

    def get_registry_at(self, context_name: str, revision: int | None) -> SpecificationRegistry:
        """The registry of a context now (``revision`` None), or a read-only view of revision N.

        Unlike ``get_registry`` this never creates anything: a missing context raises.
        """
        validate_name(context_name, "context")
        if revision is None:
            registry = self.get_registry(context_name, create_if_missing=False)
            if registry is None:
                raise ContextNotFoundError(
                    context_name, hint=self.store._missing_hint(context_name, None)
                )
            return registry
        return SpecificationRegistry(context_name, self.store).at(revision)

    def closest_context(self, name: str) -> str | None:
        """The existing context whose name is nearest ``name`` (for "did you mean")."""
        return self.store.closest_context(name)

    def has_context(self, context_name: str) -> bool:
        validate_name(context_name, "context")
        return self.store.context_exists(context_name)

    def create_context(self, context_name: str, *, message: str | None = None) -> bool:
        """Create an empty context (a revision); False when it already existed."""
        validate_name(context_name, "context")
        return self.store.create_context(context_name, message=message)

    # -- changes, each one revision ----------------------------------------------------
    def register_specs(
        self,
        context_name: str,
        specs: Mapping[str, StepSpecification | None],
        *,
        replace: bool = True,
        command: str = "register",
        message: str | None = None,
        if_revision: int | None = None,
        dry_run: bool = False,
        create: bool = True,
    ) -> CommitResult:
        """Register (spec) or remove (None) many steps as one revision, all or nothing."""
        return self.store.put_specs(
            context_name,
            specs,
            replace=replace,
            command=command,
            message=message,
            if_revision=if_revision,
            dry_run=dry_run,
            create=create,
        )

    # -- context settings: compatibility rules and read-only contexts ------------------
    def set_context_settings(
        self,
        context_name: str,
        *,
        compatibility: str | None = None,
        mode: str | None = None,
        message: str | None = None,
    ) -> CommitResult:
        """Set a context's compatibility rule (NONE, BACKWARD, FORWARD, FULL) or its mode
        (READWRITE, READONLY); a revision of its own. Every later write checks them."""
        validate_name(context_name, "context")
        return self.store.set_settings(
            context_name, compatibility=compatibility, mode=mode, message=message
        )

    def context_settings(self, context_name: str) -> dict[str, str]:
        """``{"compatibility": ..., "mode": ...}`` of a live context."""
        validate_name(context_name, "context")
        return self.store.settings(context_name)

    @staticmethod
    def forcing() -> Any:
        """``with manager.forcing():`` writes inside override compatibility rules; each
        such revision records the findings it overrode."""
        return forcing()

    @staticmethod
    def wiring_warnings() -> Any:
        """``with manager.wiring_warnings() as found:`` collects what writes inside break
        in contexts whose rule is NONE (of up to 200 steps), without refusing them."""
        return wiring_warnings()

    # -- plans: what a change does before it lands ------------------------------------
    def plan(
        self,
        context_name: str,
        specs: Mapping[str, StepSpecification],
        *,
        prune: bool = False,
        source: str | None = None,
    ) -> ChangePlan:
        """What making ``context_name`` hold ``specs`` would do (steps and wiring); no write.

        Steps of the context not in ``specs`` stay, unless ``prune``. A missing or
        cleared context plans from empty.
        """
        from regman.plan import plan_change

        validate_name(context_name, "context")
        for step in specs:
            validate_name(step, "step")
        registry = self.get_registry(context_name, create_if_missing=False)
        current = registry.require_all_readable() if registry is not None else {}
        mode = "NONE"
        if registry is not None:
            mode = self.store.settings(context_name)["compatibility"]
        base = self.store.revision(context_name)
        after = {} if prune else dict(current)
        after.update(specs)
        return plan_change(context_name, base, current, after, source=source, compatibility=mode)

    def apply(
        self,
        context_name: str,
        specs: Mapping[str, StepSpecification],
        *,
        prune: bool = False,
        message: str | None = None,
        if_revision: int | None = None,
        command: str = "apply",
        source: str | None = None,
        plan: ChangePlan | None = None,
        force: bool = False,
    ) -> tuple[ChangePlan, CommitResult]:
        """Make the context hold ``specs`` (and nothing else with ``prune``), as one revision.

        The revision lands only if the context is still at the plan's base revision, so
        what was planned (and shown) is exactly what lands; otherwise RevisionConflictError.
        """
        from regman.errors import RevisionConflictError

        plan = plan or self.plan(context_name, specs, prune=prune, source=source)
        if if_revision is not None and plan.base_revision != if_revision:
            raise RevisionConflictError(context_name, plan.base_revision, if_revision)
        proposed: dict[str, StepSpecification | None] = {
            s.step: specs[s.step] if s.action != "removed" else None
            for s in plan.steps
            if s.action != "unchanged"
        }
        if not proposed:
            return plan, CommitResult(context_name, plan.base_revision, False, {})
        import contextlib

        with forcing() if force else contextlib.nullcontext():
            result = self.store.put_specs(
                context_name,
                proposed,
                command=command,
                message=message,
                if_revision=plan.base_revision,
                source=plan.source,
            )
        return plan, result

    def promote(
        self,
        source_context: str,
        target_context: str,
        steps: list[str] | None = None,
        *,
        revision: int | None = None,
        prune: bool = False,
        message: str | None = None,
        if_revision: int | None = None,
        dry_run: bool = False,
        force: bool = False,
    ) -> tuple[ChangePlan, CommitResult | None]:
        """Copy steps (or all) of ``source_context`` (at ``revision``) into the target, as one
        revision of the target that records where it came from (``dev@12``).

        ``prune`` makes the target equal to the source; ``dry_run`` only plans.
        """
        from regman.errors import InvalidInputError, StepNotFoundError

        if prune and steps:
            raise InvalidInputError(
                "--prune makes the target equal to the whole source: name no steps"
            )
        source = self.get_registry_at(source_context, revision)
        specs = source.require_all_readable()
        if steps:
            for step in steps:
                if step not in specs:
                    raise StepNotFoundError(source_context, step)
            specs = {s: specs[s] for s in steps}
        label = f"{source_context}@{source.revision}"
        plan = self.plan(target_context, specs, prune=prune, source=label)
        if dry_run:
            return plan, None
        return self.apply(
            target_context,
            specs,
            prune=prune,
            message=message,
            if_revision=if_revision,
            command="promote",
            plan=plan,
            force=force,
        )

    def remove_step(
        self,
        context_name: str,
        step_name: str,
        *,
        purge: bool = False,
        message: str | None = None,
        if_revision: int | None = None,
    ) -> bool:
        """Remove one step (restorable unless ``purge``); False when it was not there."""
        return self.store.delete_spec(
            context_name, step_name, purge=purge, message=message, if_revision=if_revision
        )

    def restore(
        self,
        context_name: str,
        step_name: str | None = None,
        *,
        message: str | None = None,
        if_revision: int | None = None,
    ) -> CommitResult:
        """Bring back a cleared context, or one removed step, as a new revision."""
        result = self.store.restore(
            context_name, step_name, message=message, if_revision=if_revision
        )
        return result

    def rollback(
        self,
        context_name: str,
        to: int,
        steps: list[str] | None = None,
        *,
        message: str | None = None,
        if_revision: int | None = None,
    ) -> CommitResult:
        """A new revision whose content equals revision ``to`` (all steps, or those named)."""
        return self.store.rollback(
            context_name, to, steps, message=message, if_revision=if_revision
        )

    def history(
        self, context_name: str, step_name: str | None = None, limit: int | None = None
    ) -> list[Record]:
        """Revisions of a context (live or cleared), newest first."""
        return self.store.history(context_name, step_name, limit)

    def revision(self, context_name: str) -> int:
        validate_name(context_name, "context")
        return self.store.revision(context_name)

    def list_trash(self) -> list[TrashEntry]:
        """Cleared contexts and removed steps that ``restore`` can bring back."""
        return self.store.list_trash()

    def empty_trash(self, older_than_days: float | None = None) -> int:
        """Purge what ``list_trash`` shows (older than the given days): for good."""
        return self.store.empty_trash(older_than_days)

    def purge_context(self, context_name: str) -> bool:
        """Delete a context and all its history for good."""
        removed = self.store.purge_context(context_name)
        with self._lock:
            self._registries.pop(context_name, None)
        return removed

    def info(self) -> dict[str, Any]:
        """Where the store is and what it holds."""
        return self.store.info()

    def check_store(self, repair: bool = False) -> DoctorReport:
        """Check the store for damage (``regman doctor``); with ``repair``, fix what can be."""
        from regman.store.doctor import check_store

        return check_store(self.store, repair=repair)

    @property
    def location(self) -> str:
        """Where the store is (a folder path, or ``:memory:``)."""
        return str(self.store.location)

    def store_exists(self) -> bool:
        """Whether the store is there at all (reads never create it; the first write does)."""
        return self.store.backend.exists()

    def warnings(self) -> list[str]:
        """Conditions a user should know about (e.g. a store folder others can write)."""
        return self.store.warnings()

    def list_contexts(self) -> list[str]:
        """Names of all contexts in the store, sorted."""
        return self.store.list_contexts()

    def clear_context(
        self,
        context_name: str,
        *,
        purge: bool = False,
        message: str | None = None,
        if_revision: int | None = None,
    ) -> bool:
        """Clear a context (a revision; ``restore`` brings it back); False if it did not exist.

        ``purge`` deletes it and its whole history for good instead.
        """
        validate_name(context_name, "context")
        removed = self.store.delete_context(
            context_name, purge=purge, message=message, if_revision=if_revision
        )
        with self._lock:
            self._registries.pop(context_name, None)
        return removed

    def clear_all_contexts(self) -> None:
        """Remove every context (each recoverable from the trash)."""
        for name in self.list_contexts():
            self.store.delete_context(name)
        with self._lock:
            self._registries.clear()

    def step_types(self, context_name: str) -> list[str]:
        """The distinct step types of a context now, sorted (read from its head: no YAML)."""
        validate_name(context_name, "context")
        head = self.store.head(context_name)
        if head is None or head.cleared:
            raise ContextNotFoundError(context_name)
        return head.step_types()

    def get_context_stats(self, *, with_step_types: bool = False) -> dict[str, dict[str, Any]]:
        """``{context: {"step_count": n, "step_type_count": m, ...}}`` from the indexes.

        ``with_step_types``: each context's also has ``"step_types"``, its distinct step
        types sorted, from the same listing (one pass over a store of 10,000 contexts).
        """
        return self.store.all_stats(with_step_types=with_step_types)

    def distinct_step_types(self, context_names: Iterable[str] | None = None) -> list[str]:
        """The step types used across contexts (all live ones, or those named), each once.

        Dev and production share most step types, so summing each context's count
        overstates them. Read from the store's summary, not from every context's head.
        """
        names = None if context_names is None else list(context_names)
        for name in names or ():
            validate_name(name, "context")
        return self.store.step_types_across(names)


registry_manager = RegistryManager()


def configure(store: Store | str | os.PathLike[str] | None = None) -> RegistryManager:
    """Point the global manager (and the module-level functions) at ``store``.

    None restores the default (``$REGMAN_HOME`` or the platform data folder).
    """
    registry_manager.use_store(store)
    return registry_manager


def get_registry(
    context_name: str = "default", create_if_missing: bool = True
) -> SpecificationRegistry | None:
    return registry_manager.get_registry(context_name, create_if_missing)


def list_contexts() -> list[str]:
    return registry_manager.list_contexts()


def clear_context(context_name: str) -> bool:
    return registry_manager.clear_context(context_name)


def get_context_stats() -> dict[str, dict[str, Any]]:
    return registry_manager.get_context_stats()


def get_pipeline_registry(pipeline_name: str) -> SpecificationRegistry:
    """Legacy name for ``get_registry(pipeline_name)``."""
    registry = registry_manager.get_registry(pipeline_name)
    assert registry is not None  # create_if_missing=True always gives one
    return registry


def get_default_registry() -> SpecificationRegistry:
    """Legacy name for ``get_registry("default")``."""
    return get_pipeline_registry("default")


DEFAULT_PIPELINE_CONTEXT = "default_pipeline"


@overload
def integrate_with_pipeline_builder(cls: type[T]) -> type[T]: ...
@overload
def integrate_with_pipeline_builder(
    cls: None = None, *, manager: RegistryManager | None = None
) -> Any: ...
def integrate_with_pipeline_builder(
    cls: type[T] | None = None, *, manager: RegistryManager | None = None
) -> Any:
    """Give a pipeline builder ``self.registry`` scoped to its config's ``pipeline_name``.

    Use bare (``@integrate_with_pipeline_builder``) or with a manager
    (``@integrate_with_pipeline_builder(manager=m)``). The builder's first argument is
    its ``base_config``; without a ``pipeline_name`` the context is "default_pipeline".
    """

    def decorate(builder: type[T]) -> type[T]:
        original_init: Any = builder.__init__

        @functools.wraps(original_init)
        def __init__(self: Any, base_config: Any = None, *args: Any, **kwargs: Any) -> None:
            name = getattr(base_config, "pipeline_name", None) or DEFAULT_PIPELINE_CONTEXT
            self.registry = (manager or registry_manager).get_registry(name)
            if original_init is object.__init__:
                self.base_config = base_config
            else:
                original_init(self, base_config, *args, **kwargs)

        setattr(builder, "__init__", __init__)  # noqa: B010 (mypy forbids assigning a method)
        return builder

    if cls is not None:
        return decorate(cls)
    return decorate
