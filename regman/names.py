"""Rules for context and step names.

Names become folder and file names, so they are checked before any path is
built: portable characters only, nothing that walks out of the store, nothing
Windows reserves, and no two names in one scope that differ only in case
(they would collide on case-insensitive filesystems).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from regman.errors import InvalidNameError

MAX_NAME_LENGTH = 128

_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\Z")
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"COM{i}" for i in "0123456789¹²³"]
    + [f"LPT{i}" for i in "0123456789¹²³"]
)


def validate_name(name: object, kind: str = "context") -> str:
    """Return ``name`` if it is a valid context/step name, else raise InvalidNameError."""
    if not isinstance(name, str):
        raise InvalidNameError(f"{kind} name must be a string, not {type(name).__name__}")
    shown = repr(name) if len(name) <= 60 else repr(name[:57] + "...")
    rule = _broken_rule(name)
    if rule:
        raise InvalidNameError(
            f"invalid {kind} name {shown}: {rule}",
            hint="use 1-128 ASCII letters, digits, '_', '-', '.', starting and ending "
            "with a letter or digit",
        )
    return name


def is_valid_name(name: object) -> bool:
    """Whether ``name`` passes every rule (for names read back from a store's files)."""
    if type(name) is str and len(name) <= MAX_NAME_LENGTH and _NAME_RE.match(name):
        # the common case in one regex (it admits only ASCII letters, digits, '._-')
        return ".." not in name and name.split(".", 1)[0].upper() not in _WINDOWS_RESERVED
    return isinstance(name, str) and _broken_rule(name) is None


def _broken_rule(name: str) -> str | None:
    if not name:
        return "it is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"it is {len(name)} characters long (at most {MAX_NAME_LENGTH})"
    if "\x00" in name:
        return "it contains a NUL character"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it contains a control character"
    if "/" in name or "\\" in name:
        return "it contains a path separator"
    if ".." in name:
        return "it contains '..'"
    if not name.isascii():
        return "it contains non-ASCII characters"
    if not _NAME_RE.match(name):
        bad = sorted({c for c in name if not (c.isalnum() or c in "._-")})
        if bad:
            return "it contains " + ", ".join(repr(c) for c in bad)
        return "it must start and end with a letter or digit"
    if name.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        return "it is a device name reserved on Windows"
    return None


def find_case_clash(name: str, existing: Iterable[str]) -> str | None:
    """Return an existing name equal to ``name`` ignoring case but not identical."""
    folded = name.casefold()
    for other in existing:
        if other != name and other.casefold() == folded:
            return other
    return None


def lock_key(name: str) -> str:
    """Names equal ignoring case share one lock, so a case clash cannot race."""
    return name.lower()
