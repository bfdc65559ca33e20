"""The one exception hierarchy of regman.

Every error a user can cause derives from :class:`RegmanError` and carries the
exit code the command line uses for it, so the CLI needs a single boundary.
Classes also inherit the matching builtin (``ValueError``, ``LookupError``,
``TimeoutError``) so callers can catch them the way they already do.
This module imports nothing from regman.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_NOT_FOUND = 1  # missing context/step, refused (--no-replace, declined), damage found
EXIT_BAD_INPUT = 2  # invalid spec, invalid name, unreadable file, usage
EXIT_STORE = 3  # the store cannot be used now: lock timeout, I/O failure, newer format


class RegmanError(Exception):
    """Base of every error regman raises on purpose."""

    exit_code: int = EXIT_NOT_FOUND

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}; {self.hint}"


class InvalidInputError(RegmanError, ValueError):
    """A setting or argument regman cannot use (e.g. a malformed environment variable)."""

    exit_code = EXIT_BAD_INPUT


class InvalidNameError(RegmanError, ValueError):
    """A context or step name breaks a naming rule (names become paths)."""

    exit_code = EXIT_BAD_INPUT


class SpecError(RegmanError, ValueError):
    """A spec (file or mapping) is unreadable or invalid.

    Keeps where the problem is: ``source`` (file or ``<stdin>``), ``line`` and
    ``column`` (1-based, when known) and ``field`` (dotted path inside the spec).
    """

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        problem: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.problem = problem
        self.source = source
        self.line = line
        self.column = column
        self.field = field
        where = source or "<spec>"
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        text = f"{where}: {field + ': ' if field else ''}{problem}"
        super().__init__(text, hint=hint)


class NotFoundError(RegmanError, LookupError):
    """Something asked for does not exist."""

    exit_code = EXIT_NOT_FOUND


class ContextNotFoundError(NotFoundError):
    def __init__(self, context: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"context '{context}' does not exist",
            hint=hint or "see 'regman contexts list'",
        )
        self.context = context


class StepNotFoundError(NotFoundError):
    def __init__(self, context: str, step: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"step '{step}' is not registered in context '{context}'",
            hint=hint or f"see 'regman contexts show {context}'",
        )
        self.context = context
        self.step = step


class ConflictError(RegmanError):
    """Refused because it would overwrite or collide with existing data."""

    exit_code = EXIT_NOT_FOUND


class RefusedError(RegmanError):
    """A destructive command was not confirmed (declined, or no terminal and no --yes)."""

    exit_code = EXIT_NOT_FOUND


class ReadOnlyContextError(RefusedError):
    """A write to a context whose mode is READONLY."""

    def __init__(self, context: str) -> None:
        super().__init__(
            f"context '{context}' is read-only",
            hint=f"unlock it with 'regman contexts set {context} --mode READWRITE'",
        )
        self.context = context


class CompatibilityError(RefusedError):
    """A change that breaks the context's compatibility rule (``findings`` says what)."""

    def __init__(self, context: str, mode: str, findings: list[str]) -> None:
        shown = "; ".join(findings[:5]) + (
            f"; and {len(findings) - 5} more" if len(findings) > 5 else ""
        )
        super().__init__(
            f"the change breaks {mode} compatibility of context '{context}': {shown}",
            hint="see 'regman plan', or pass --force to override (recorded in the revision)",
        )
        self.context, self.mode, self.findings = context, mode, findings


class StoreError(RegmanError):
    """The store cannot be read or written right now (I/O, permissions, space)."""

    exit_code = EXIT_STORE


class DamagedStoreError(StoreError):
    """A file of the store itself is damaged (not a spec the user gave): run doctor."""


class RevisionConflictError(ConflictError):
    """``--if-revision N`` when the context has moved on: optimistic concurrency."""

    def __init__(self, context: str, actual: int, expected: int) -> None:
        super().__init__(
            f"context '{context}' is at revision {actual}, not {expected}",
            hint=f"see 'regman history {context}', then retry with --if-revision {actual}",
        )
        self.context = context
        self.actual = actual
        self.expected = expected


class StoreVersionError(StoreError):
    """The store was written by a newer regman; refusing rather than misreading."""


class LockTimeoutError(StoreError, TimeoutError):
    """Another writer held a context's lock for longer than the timeout."""


class DependencyResolutionError(RegmanError):
    """Required dependencies could not be wired; ``report`` holds the full picture."""

    exit_code = EXIT_NOT_FOUND

    def __init__(self, message: str, *, report: Any = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report
