"""The one sliding window (policy budget, service drain)."""

from __future__ import annotations

import pytest

from realtime_supervisor._window import SlidingWindow


def test_counts_events_in_the_half_open_window() -> None:
    """An event at now - window has left; one just inside still counts; batches count n."""
    w = SlidingWindow(10.0)
    w.record(0.0)
    w.record(5.0, 3)
    assert w.count(5.0) == 4
    assert w.count(9.999) == 4
    assert w.count(10.0) == 3  # the event at 0.0 is exactly window old: gone
    assert w.count(15.0) == 0
    w.record(16.0, 0)  # nothing happened
    assert w.count(16.0) == 0


def test_cap_keeps_the_latest_entries_only() -> None:
    """With a cap of N the window remembers the last N events: enough for a budget of N."""
    w = SlidingWindow(100.0, cap=2)
    for t in (1.0, 2.0, 3.0):
        w.record(t)
    assert w.count(3.0) == 2
    assert w.count(101.5) == 2  # 1.0 would still count, but was forgotten at the third record
    assert w.count(102.0) == 1


def test_oldest_and_clear() -> None:
    """The oldest event still counted (for a message: "N events in S seconds"); clear forgets."""
    w = SlidingWindow(10.0)
    assert w.oldest(0.0) is None
    w.record(1.0)
    w.record(4.0)
    assert w.oldest(5.0) == 1.0
    assert w.oldest(11.0) == 4.0  # 1.0 has left the window
    w.clear()
    assert (w.count(11.0), w.oldest(11.0)) == (0, None)
    w.record(12.0)
    assert w.count(12.0) == 1


@pytest.mark.parametrize(("window", "cap"), [(0.0, None), (-1.0, None), (1.0, 0)])
def test_bad_arguments_are_refused(window: float, cap: int | None) -> None:
    with pytest.raises(ValueError):
        SlidingWindow(window, cap=cap)
