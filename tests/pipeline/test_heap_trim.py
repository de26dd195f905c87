"""Freed heap memory given back to the system, at most so often."""

from __future__ import annotations

import os

import pytest

from pipeline.heap_trim import HeapTrimmer
from tests.fixtures.processes import rss_mib


def test_trims_at_once_then_at_most_every_interval() -> None:
    calls: list[int] = []
    trimmer = HeapTrimmer(every_s=5.0, trim=lambda pad: calls.append(pad) or 1)
    assert trimmer.trim_if_due(100.0) is not None
    assert trimmer.trim_if_due(104.9) is None
    assert trimmer.trim_if_due(105.0) is not None
    assert calls == [0, 0]  # no padding kept at the top of the heap


def test_without_malloc_trim_nothing_happens() -> None:
    trimmer = HeapTrimmer()
    trimmer._trim = None  # as on a C library without malloc_trim (musl, macOS)
    assert not trimmer.available
    assert trimmer.trim_if_due(1.0) is None


def test_free_memory_inside_the_heap_goes_back_to_the_system() -> None:
    trimmer = HeapTrimmer()
    if not trimmer.available:
        pytest.skip("this C library has no malloc_trim")
    # 2 KiB blocks come from malloc's heap (past pymalloc's 512 bytes, below mmap's 128 KiB);
    # one in 32 kept, so the freed ones lie between live ones, not at the heap's top
    blocks = [os.urandom(8) * 256 for _ in range(60_000)]
    kept = blocks[::32]
    del blocks
    before = rss_mib(os.getpid())
    assert trimmer.trim_if_due(0.0) is not None
    after = rss_mib(os.getpid())
    assert len(kept) == 1_875
    assert before - after > 60, (before, after)  # of ~117 MiB freed
