"""Wall-clock and peak-memory measurement of a piece of work (fastest of several runs)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable


class PeakRSS:
    """Peak resident-set growth (MB) of this process inside a ``with`` block (sampled by a thread)."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()

    @staticmethod
    def rss_bytes() -> int:
        """Current resident set size of this process in bytes."""
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self.rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> "PeakRSS":
        self._base = self._peak = self.rss_bytes()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self.rss_bytes())
        self.peak_mb = (self._peak - self._base) / 2**20


@dataclass(frozen=True)
class Timing:
    """Seconds (of one run, or per iteration) and the largest peak RSS growth in MB."""

    seconds: float
    peak_mb: float


def timed(fn: Callable[[], Any], repeats: int = 1, warmup: bool = False) -> Timing:
    """Fastest wall seconds of ``repeats`` calls of ``fn()`` (after one untimed call if ``warmup``)
    and the largest peak RSS growth (MB)."""
    if warmup:
        fn()
    best, peak = float("inf"), 0.0
    for _ in range(max(1, repeats)):
        with PeakRSS() as mem:
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        peak = max(peak, mem.peak_mb)
    return Timing(best, peak)
