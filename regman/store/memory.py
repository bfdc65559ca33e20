"""A backend that lives and dies with the process (``RegistryManager(":memory:")``)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Hashable

from regman.errors import StoreError
from regman.store.backend import Backend

MEMORY = ":memory:"


class MemoryBackend(Backend):
    """Dictionaries behind one lock; compare-and-swap is exact, as on every backend."""

    def __init__(self) -> None:
        self.location = MEMORY
        self._lock = threading.Lock()
        self._objects: dict[str, bytes] = {}
        self._heads: dict[str, tuple[bytes, str]] = {}
        self._caches: dict[str, bytes] = {}
        self._summary: tuple[bytes, str] | None = None
        self.marker_bytes: bytes | None = None

    def read_object(self, key: str, limit: int) -> bytes | None:
        data = self._objects.get(key)
        if data is not None and len(data) > limit:
            raise StoreError(f"object {key} is over {limit} bytes")
        return data

    def create_object(self, key: str, data: bytes) -> bool:
        with self._lock:
            if key in self._objects:
                return False
            self._objects[key] = bytes(data)
            return True

    def delete_object(self, key: str) -> bool:
        with self._lock:
            return self._objects.pop(key, None) is not None

    def list_objects(self, prefix: str) -> list[str]:
        start = prefix + "/"
        with self._lock:
            return sorted(k for k in self._objects if k.startswith(start))

    def list_object_contexts(self) -> list[str]:
        with self._lock:
            return sorted({k.split("/", 1)[0] for k in self._objects})

    def delete_prefix(self, prefix: str) -> None:
        start = prefix + "/"
        with self._lock:
            for key in [k for k in self._objects if k.startswith(start)]:
                del self._objects[key]

    def read_head(self, context: str, limit: int) -> tuple[bytes, str] | None:
        head = self._heads.get(context)
        if head is not None and len(head[0]) > limit:
            raise StoreError(f"the head of context {context} is over {limit} bytes")
        return head

    def swap_head(self, context: str, data: bytes | None, expected: str | None) -> bool:
        with self._lock:
            current = self._heads.get(context)
            if (current[1] if current else None) != expected:
                return False
            if data is None:
                self._heads.pop(context, None)
            else:
                self._heads[context] = (bytes(data), hashlib.sha256(data).hexdigest())
            return True

    def etag_of(self, data: bytes) -> str | None:
        return hashlib.sha256(data).hexdigest()

    def head_token(self, context: str) -> Hashable:
        head = self._heads.get(context)
        return None if head is None else head[1]

    def list_heads(self) -> list[str]:
        with self._lock:
            return list(self._heads)

    def read_cache(self, name: str, limit: int) -> bytes | None:
        data = self._caches.get(name)
        return None if data is None or len(data) > limit else data  # unusable, as on files

    def write_cache(self, name: str, data: bytes) -> None:
        self._caches[name] = data

    def read_summary(self, limit: int, *, local: bool = False) -> tuple[bytes, str] | None:
        found = self._summary
        if found is not None and len(found[0]) > limit:
            raise StoreError(f"the summary is over {limit} bytes")
        return found

    def swap_summary(self, data: bytes, expected: str | None) -> str | None:
        with self._lock:
            if (self._summary[1] if self._summary else None) != expected:
                return None
            version = hashlib.sha256(data).hexdigest()
            self._summary = (bytes(data), version)
            return version

    def read_marker(self) -> bytes | None:
        return self.marker_bytes

    def write_marker(self, data: bytes) -> None:
        self.marker_bytes = data
