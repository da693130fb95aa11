"""The stages of a split evaluation overlapped: files read and decoded ahead by loader
threads, the network fed batches by the caller, scoring done behind it by a thread of its
own. OpenCV's decoding, torch and numpy release the GIL in their heavy loops, so on a
multi-core CPU reading, inference, upsampling and scoring run at the same time; order and
results are those of doing each step in turn.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

Item = TypeVar("Item")
Read = TypeVar("Read")


LOADERS = 2
"""Loader threads: the first batch is read while nothing else runs yet, so two decode it in
half the time; later, reading is a small share of the work and more threads would only
take turns with the network and the scoring."""


@contextmanager
def read_ahead(
    items: Iterable[Item], read: Callable[[Item], Read], depth: int, loaders: int = LOADERS
) -> Iterator[Iterator[Read]]:
    """An iterator over ``read(item)`` for each item in order, computed by ``loaders``
    threads at most ``depth`` items ahead of the consumer (a bound on the memory held)."""
    pool = ThreadPoolExecutor(max(1, loaders), thread_name_prefix="loader")
    try:
        yield _in_order(iter(items), read, max(1, depth), pool)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _in_order(
    items: Iterator[Item], read: Callable[[Item], Read], depth: int, pool: ThreadPoolExecutor
) -> Iterator[Read]:
    pending: deque[Future[Read]] = deque()
    for item in items:
        pending.append(pool.submit(read, item))
        if len(pending) > depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


class Behind:
    """Runs jobs one after another, in the order given, on a worker thread of its own, with
    at most ``depth`` waiting: the caller goes on with the next batch meanwhile. A job's
    exception is raised in the caller at the next :meth:`submit` or at :meth:`finish`."""

    def __init__(self, depth: int = 1) -> None:
        self.depth = max(1, depth)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="scoring")
        self._pending: deque[Future[None]] = deque()

    def submit(self, job: Callable[[], None]) -> None:
        while self._pending and (self._pending[0].done() or len(self._pending) >= self.depth):
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(job))

    def finish(self) -> None:
        """Wait for every job; raise the first failure."""
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Behind:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is None:
            self.finish()
        else:
            self._pool.shutdown(wait=True, cancel_futures=True)
