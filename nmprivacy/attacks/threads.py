"""Worker threads for the attack core that never meet at an OpenMP barrier.

Each worker runs torch on one thread with autograd off (both per-thread settings), so ATen ops
inside it stay serial; ATen releases the GIL inside ops, so workers run concurrently. On a shared
2-core machine a descheduled peer then delays only its own share of the work, where a
multi-threaded op would wait for it at every barrier (many times slower under load; README
"Benchmarks" has measured figures).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

import torch

Item = TypeVar("Item")
Result = TypeVar("Result")


def chunks(n: int, size: int) -> list[slice]:
    """Contiguous slices covering ``range(n)`` of at most ``size`` elements."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _serial_thread(started: list[int]) -> None:
    """Initializer of a worker thread: one torch thread and no autograd for its whole life."""
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    started.append(1)


class SerialPool:
    """Up to ``size`` worker threads (started on first use, kept between calls)."""

    def __init__(self, size: int, name: str = "nmprivacy-worker") -> None:
        self.size = max(1, int(size))
        self.name = name
        self._pool: ThreadPoolExecutor | None = None
        self._started: list[int] = []  # one entry per worker started (the workers hold this list, not the pool,
        # so a pool that is no longer used is garbage-collected and its workers end)

    def map(self, fn: Callable[[int, Item], Result], items: Sequence[Item]) -> list[Result]:
        """``[fn(i, item) for i, item in enumerate(items)]``, concurrently on the workers (inline
        for a single item)."""
        if len(items) == 1:
            return [fn(0, items[0])]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.size, thread_name_prefix=self.name, initializer=_serial_thread, initargs=(self._started,))
        started = len(self._started)
        out = list(self._pool.map(lambda i: fn(i, items[i]), range(len(items))))
        if len(self._started) != started:
            # torch.set_num_threads is per thread (OpenMP, MKL) except for the default that new threads
            # inherit: restore the caller's (once per new worker; toggling it per call recreates thread pools)
            torch.set_num_threads(torch.get_num_threads())
        return out

    def shutdown(self) -> None:
        """Stop the workers (they also end when the pool is garbage-collected)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def run_parts(fn: Callable[[int, slice], None], parts: Sequence[slice], barrier: threading.Barrier) -> None:
    """``fn(i, part)`` for every part at once, each on its own one-torch-thread worker, where the
    parts meet at ``barrier``: if one part fails, the barrier is broken so that the others stop
    instead of waiting for it, and its error is raised."""
    errors: list[BaseException | None] = [None] * len(parts)

    def guarded(i: int, part: slice) -> None:
        try:
            fn(i, part)
        except BaseException as error:  # handed to the caller below
            errors[i] = error
            barrier.abort()

    pool = SerialPool(len(parts), "nmprivacy-part")
    try:
        pool.map(guarded, parts)
    finally:
        pool.shutdown()
    failures = [e for e in errors if e is not None]
    if failures:  # the first that is not a consequence of another part's failure
        raise next((e for e in failures if not isinstance(e, threading.BrokenBarrierError)), failures[0])
