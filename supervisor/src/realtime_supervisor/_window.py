"""One sliding window: how many events happened in the last `window` seconds.

Used for the policy's recovery budget (per session, bounded by the budget), the detector's
reconnect-storm window (bounded by the storm limit) and the service's drain (escalations, stalls
and recoveries across the worker's job processes). Time is passed in, as
everywhere in the pure core, so tests need no clock.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SlidingWindow"]


class SlidingWindow:
    """Counts events in (now - window, now].

    `cap` bounds the memory when only "at least cap" matters (a budget of N needs the last N
    times): older entries are forgotten first. Times must not go backwards.
    """

    def __init__(self, window: float, *, cap: int | None = None) -> None:
        if not window > 0:
            raise ValueError(f"window must be positive, got {window!r}")
        if cap is not None and cap < 1:
            raise ValueError(f"cap must be at least 1, got {cap!r}")
        self.window = float(window)
        self._events: deque[tuple[float, int]] = deque(maxlen=cap)
        self._count = 0

    def record(self, now: float, n: int = 1) -> None:
        """`n` events happened at `now`."""
        if n <= 0:
            return
        if self._events.maxlen is not None and len(self._events) == self._events.maxlen:
            self._count -= self._events[0][1]  # the deque drops it on append
        self._events.append((now, n))
        self._count += n

    def count(self, now: float) -> int:
        """Events recorded in (now - window, now]."""
        horizon = now - self.window
        while self._events and self._events[0][0] <= horizon:
            self._count -= self._events.popleft()[1]
        return self._count

    def oldest(self, now: float) -> float | None:
        """The time of the oldest event still counted at `now` (None when none is)."""
        self.count(now)
        return self._events[0][0] if self._events else None

    def clear(self) -> None:
        """Forget every event: the burst they made has been acted on."""
        self._events.clear()
        self._count = 0
