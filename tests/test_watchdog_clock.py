"""The watchdog's timer survives a clock or an observation time that is not a number."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from realtime_supervisor._observations import AgentAudioPlayed, UserSpeechStopped
from realtime_supervisor._watchdog import COUNTER_SAMPLES, Watchdog, WatchdogCounters
from tests.test_watchdog import FAST, FakeActions


async def test_a_nan_observation_time_does_not_spin_the_timer() -> None:
    """A NaN `at` is counted as an error and replaced by the clock: the timer fires a handful of
    times in half a second, not tens of thousands (the issue measured 37,000)."""
    actions = FakeActions()
    wd = Watchdog(FAST, actions)
    actions.watchdog = wd
    fires = 0
    real = wd._on_timer

    def counting() -> None:
        nonlocal fires
        fires += 1
        real()

    wd._on_timer = counting  # type: ignore[method-assign]
    async with wd:
        wd.observe(UserSpeechStopped(), at=math.nan)
        wd.observe(AgentAudioPlayed(), at=math.inf)
        await asyncio.sleep(0.5)
    assert wd.counters.errors >= 2
    assert fires < 50, fires


async def test_a_nan_clock_arms_no_timer() -> None:
    """A clock that returns NaN leaves no timer armed (and errors counted), never a spinning one."""
    actions = FakeActions()
    wd = Watchdog(FAST, actions, clock=lambda: math.nan)
    actions.watchdog = wd
    async with wd:
        wd.observe(UserSpeechStopped())
        await asyncio.sleep(0.2)
        assert wd._timer is None
    assert wd.counters.errors >= 1


def test_per_stall_samples_are_bounded() -> None:
    """The per-stall lists keep the last COUNTER_SAMPLES entries: a week-long call stays small."""
    counters = WatchdogCounters()
    for i in range(COUNTER_SAMPLES + 500):
        counters.silence_seconds.append(float(i))
        counters.detections.append(("no_reply", 0.0, float(i)))
    assert len(counters.silence_seconds) == COUNTER_SAMPLES
    assert counters.silence_seconds[-1] == COUNTER_SAMPLES + 499
    assert len(counters.detections) == COUNTER_SAMPLES


def test_log_tap_failures_are_counted(monkeypatch: Any) -> None:
    """A livekit log record the tap fails to route is counted (tap and session), and the record
    still passes to livekit's own handlers."""
    import logging

    from realtime_supervisor.livekit import binding

    reported: list[str] = []

    class Session:
        class watchdog:
            @staticmethod
            def report_error(where: str, exc: BaseException) -> None:
                reported.append(where)

    tap = binding._LogTap()
    session = Session()
    tap._supervisors.add(session)  # type: ignore[arg-type]

    def broken(record: logging.LogRecord) -> None:
        raise RuntimeError("tap broke")

    monkeypatch.setattr(tap, "_route", broken)
    record = logging.LogRecord("livekit.agents", logging.WARNING, __file__, 1, "x", None, None)
    assert tap.filter(record) is True
    assert tap.failures == 1
    assert reported == ["log tap"]
