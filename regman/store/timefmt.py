"""Times as regman writes them: ISO 8601 UTC with milliseconds (``2026-11-28T01:23:17.989Z``).

time.strftime, not datetime: datetime costs start-up time on every command.
"""

from __future__ import annotations

import calendar
import time


def iso_utc(seconds: float, *, milliseconds: bool = True) -> str:
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{int(seconds * 1000) % 1000:03d}Z" if milliseconds else f"{text}Z"


def now_iso() -> str:
    return iso_utc(time.time())


def parse_iso(text: str) -> float:
    """Seconds since the epoch of a time regman wrote (0.0 when it is not one)."""
    try:
        whole, _, rest = text.rstrip("Z").partition(".")
        seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        return seconds + (int(rest[:3].ljust(3, "0")) / 1000 if rest.isdigit() else 0.0)
    except (ValueError, OverflowError):
        return 0.0
