"""Python's garbage collector, set for a process that holds a large, long-lived heap.

The counting thread keeps hundreds of thousands of live objects (decoded
subjects, held entries, caches) and makes more for every record. With
CPython's default thresholds a full collection walks all of them every few
seconds: measured on ``bench_worker``, 26 full collections of ~280 ms each
in a 50 s run, stalls that showed as seconds of detection latency. Almost
none of this is cyclic garbage (reference counting frees it), so:

- what exists when counting starts (modules, the Faust app, pydantic's
  validators) is frozen: never scanned again;
- the young generation is collected after 100,000 allocations instead of 700,
  and the older ones rarely: cycles are still freed, later.

Measured with ``python -m tests.benchmarks.bench_worker`` (see the README).
"""

from __future__ import annotations

import gc

YOUNG = 100_000  # allocations between young collections (CPython's default: 700)
MIDDLE = 50  # young collections per middle one (default 10)
OLD = 100  # middle collections before a full one is considered (default 10)


def settle_for_counting() -> None:
    """Freeze today's objects and space collections out; call once, after start-up."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, MIDDLE, OLD)
