"""The worker's garbage-collector settings: small young collections, full ones on a timer."""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import Iterator

import pytest

from pipeline import gc_tuning


@pytest.fixture
def restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc_tuning._next_full[0] = float("inf")


def test_settling_sets_small_young_collections_and_no_automatic_full_ones(
        restored: None) -> None:
    gc_tuning.settle()
    young, middle, old = gc.get_threshold()
    assert (young, middle) == (gc_tuning.YOUNG, gc_tuning.MIDDLE)
    assert old >= 1 << 30
    assert gc.get_freeze_count() > 0


def test_the_full_collection_runs_when_due_and_frees_cycles(
        restored: None, caplog: pytest.LogCaptureFixture) -> None:
    assert not gc_tuning.collect_if_due()  # never before settling
    gc_tuning.settle()
    start = gc_tuning._next_full[0] - gc_tuning.FULL_EVERY_S
    assert not gc_tuning.collect_if_due(start + gc_tuning.FULL_EVERY_S - 1)

    class Node:
        other: object = None

    for _ in range(1_000):  # cyclic garbage: only a collection frees it
        a, b = Node(), Node()
        a.other, b.other = b, a
    del a, b
    before = gc.get_stats()[2]["collections"]
    with caplog.at_level(logging.INFO, logger="floodgate.worker"):
        assert gc_tuning.collect_if_due(start + gc_tuning.FULL_EVERY_S)
    assert gc.get_stats()[2]["collections"] == before + 1
    freed = re.search(r"full garbage collection: (\d+) objects freed", caplog.text)
    assert freed is not None and int(freed.group(1)) >= 2_000  # the 1,000 pairs at least
    assert not gc_tuning.collect_if_due(start + gc_tuning.FULL_EVERY_S + 1)  # next one later
    assert gc_tuning.collect_if_due(start + 2 * gc_tuning.FULL_EVERY_S + 1)
