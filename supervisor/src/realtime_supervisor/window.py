"""One sliding window: how many events happened in the last `window` seconds, time passed in.

Pure (no clock, no asyncio): the service's drain rule uses it; the detector's reconnect storm and
the policy's budget count the same way and can use it too.
"""

from __future__ import annotations

from collections import deque

__all__ = ["EventWindow"]


class EventWindow:
    """Counts events in the last `window` seconds; time is passed in."""

    def __init__(self, window: float) -> None:
        if not window > 0:
            raise ValueError(f"window must be positive, got {window!r}")
        self.window = float(window)
        self._events: deque[tuple[float, int]] = deque()
        self._count = 0

    def record(self, now: float, n: int = 1) -> None:
        """`n` events happened at `now` (times must not go backwards)."""
        if n > 0:
            self._events.append((now, n))
            self._count += n

    def count(self, now: float) -> int:
        """Events recorded in (now - window, now]."""
        horizon = now - self.window
        while self._events and self._events[0][0] <= horizon:
            self._count -= self._events.popleft()[1]
        return self._count
