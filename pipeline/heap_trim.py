"""Freed heap memory given back to the system, for the worker.

The C allocator (glibc's malloc) keeps what the process frees for reuse, and gives back
only what lies at the top of its heap. The worker frees in bursts scattered over the heap:
a checkpoint's encoded states and RocksDB write batch, the decoded subjects its commit
drops, RocksDB's flushed memtables. That memory stayed resident: on ``bench_worker
--subjects 1000000`` glibc's ``mallinfo2`` counted 340 MiB free inside the heap while 130
MiB were in use. ``malloc_trim(0)`` returns every free page wherever it lies: run after
checkpoints, the run's peak RSS was 759-885 MiB (median 802) against 850-890 without.

A trim took 1-40 ms there (ctypes lets other threads run meanwhile), so it runs at most
every ``TRIM_EVERY_S``: 0.1-0.2% of the counting thread's time. Where the C library has no
``malloc_trim`` (musl, macOS) nothing happens.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable

TRIM_EVERY_S = 1.0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


class HeapTrimmer:
    """``trim_if_due`` returns the free heap to the system at most every ``every_s``."""

    def __init__(self, every_s: float = TRIM_EVERY_S,
                 trim: Callable[[int], int] | None = None) -> None:
        self._trim = trim if trim is not None else _malloc_trim()
        self._every_s = every_s
        self._due = 0.0

    @property
    def available(self) -> bool:
        return self._trim is not None

    def trim_if_due(self, now: float) -> float | None:
        """Trim when due (``now``: monotonic seconds); the seconds it took, None when it did
        not run."""
        if self._trim is None or now < self._due:
            return None
        began = time.perf_counter()
        self._trim(0)
        self._due = now + self._every_s
        return time.perf_counter() - began
