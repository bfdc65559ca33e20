"""Per-context locks: a threading lock in-process plus an OS file lock across processes.

The file lock is filelock's (flock on Unix, so the kernel releases the lock of a
killed holder); it is imported on the write path only, as it costs start-up time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from regman.atomic import os_error
from regman.errors import StoreError

_THREAD_LOCKS: dict[tuple[str, str], threading.Lock] = {}


_THREAD_LOCKS_GUARD = threading.Lock()


def thread_lock_for(root: str, key: str) -> threading.Lock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault((root, key), threading.Lock())


def acquire_with_backoff(
    lock: Any, deadline: float, timeout_error: Callable[[], StoreError]
) -> None:
    """Try the lock, sleeping 0.5 ms, 1 ms, ... up to 25 ms (with jitter) between tries.

    A fixed short poll keeps a lone waiter quick but lets dozens of waiters burn
    both cores on one context (seen: 64 writers at 100 ms per register); backing off
    keeps the first retries fast and the crowd quiet.
    """
    import random

    import filelock

    delay = 0.0005
    while True:
        try:
            lock.acquire(blocking=False)
            return
        except filelock.Timeout:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise timeout_error() from None
            time.sleep(min(delay * (0.5 + random.random()), remaining))
            delay = min(delay * 2, 0.025)
        except OSError as e:
            raise os_error("lock", lock.lock_file, e) from e
