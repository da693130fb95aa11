"""A least-recently-used cache bounded by the bytes of what it holds, for the engine's
predictions and the app's image views: one large image must push out several small ones,
which a count of entries would not."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, Protocol, TypeVar


class Sized(Protocol):
    @property
    def nbytes(self) -> int: ...


Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value", bound=Sized)


class BoundedCache(Generic[Key, Value]):
    """Values kept, most recently used last, while their ``nbytes`` add up to at most
    ``limit``; thread-safe. A value larger than the whole limit is not kept."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.nbytes = 0
        self._items: OrderedDict[Key, Value] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Key) -> Value | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Key, value: Value) -> None:
        """Keep ``value`` (a key already held keeps its first value), evicting the least
        recently used past the limit."""
        if value.nbytes > self.limit:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self.nbytes += value.nbytes
            while self.nbytes > self.limit:
                _, evicted = self._items.popitem(last=False)
                self.nbytes -= evicted.nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.nbytes = 0

    def __iter__(self) -> Iterator[Key]:
        """The keys held, least recently used first (a snapshot)."""
        with self._lock:
            return iter(list(self._items))
