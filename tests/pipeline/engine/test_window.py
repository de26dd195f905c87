from pipeline.engine.window import CappedWindow


def test_keeps_only_the_newest_entries_that_reach_the_cap() -> None:
    window = CappedWindow()
    for ts in (10, 20, 30, 40):
        window.add(ts, 1, cap=3)
    assert list(window.times) == [20, 30, 40]
    assert window.total == 3


def test_weights_count_towards_the_cap() -> None:
    window = CappedWindow()
    window.add(10, 5, cap=6)
    window.add(20, 2, cap=6)
    window.add(30, 4, cap=6)  # 2 + 4 already reach 6: the 5 at t=10 is useless
    assert list(window.times) == [20, 30]
    assert window.total == 6


def test_a_late_entry_is_inserted_in_time_order() -> None:
    window = CappedWindow()
    window.add(10, 1, cap=5)
    window.add(30, 1, cap=5)
    window.add(20, 1, cap=5, extra=7)
    assert list(window.times) == [10, 20, 30]
    assert list(window.extras) == [0, 7, 0]


def test_a_late_entry_older_than_a_full_window_is_dropped_at_once() -> None:
    window = CappedWindow()
    window.add(20, 1, cap=2)
    window.add(30, 1, cap=2)
    window.add(5, 1, cap=2)
    assert list(window.times) == [20, 30]


def test_slide_forgets_entries_at_or_before_the_open_start() -> None:
    window = CappedWindow()
    for ts in (10, 20, 20, 30):
        window.add(ts, 2, cap=100)
    window.slide(20)  # the window is now (20, ...]
    assert list(window.times) == [30]
    assert window.total == 2
