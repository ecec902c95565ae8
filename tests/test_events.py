"""Events an application can react to (`Supervisor.on`), the records sinks, and trace spans."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from realtime_supervisor._observations import AgentAudioPlayed, UserSpeechStopped
from realtime_supervisor._records import CountingSink
from realtime_supervisor._watchdog import Watchdog
from realtime_supervisor.config import WatchdogConfig
from realtime_supervisor.errors import ConfigError
from realtime_supervisor.events import (
    EVENT_TYPES,
    Escalated,
    EventEmitter,
    RecoveryFinished,
    RecoveryStarted,
    StallDetected,
)

from .harness import LK_VERSION, start_call

FAST = WatchdogConfig(reply_timeout=0.2, recovery_timeout=0.2, reconnect_attempts=1)


async def until(check: Callable[[], bool], limit: float = 10.0) -> None:
    """Poll `check` on the loop; the limit is only a guard against a hung watchdog."""
    async with asyncio.timeout(limit):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)


class Silent:
    """Actions that never bring the agent back: every rung fails, then the watchdog escalates."""

    async def reissue(self, instructions: str | None) -> None:
        return None

    async def reconnect(self) -> None:
        raise RuntimeError("no socket")

    async def escalate(self, stall: Any, reason: str) -> None:
        return None


async def test_an_incident_that_escalates_emits_its_records_in_order() -> None:
    """stall, recovery started/finished (failure) per rung, then escalated; each typed."""
    sink = CountingSink()
    async with Watchdog(FAST, Silent(), sinks=[sink]) as wd:
        wd.observe(UserSpeechStopped())
        await until(lambda: sink.by_type["escalated"] == 1)
    assert sink.types(public=True) == [
        "stall_detected",
        "recovery_started",  # reissue
        "stall_detected",
        "recovery_finished",
        "recovery_started",  # reconnect, which raises
        "recovery_finished",
        "escalated",
    ]
    public = [r for r in sink.records if r.type in EVENT_TYPES]
    first = public[0]
    assert isinstance(first, StallDetected) and first.kind == "no_reply"
    assert first.silence_seconds >= 0.2
    started = [r for r in public if isinstance(r, RecoveryStarted)]
    assert [(r.action, r.rung) for r in started] == [("reissue", 1), ("reconnect", 2)]
    finished = [r for r in public if isinstance(r, RecoveryFinished)]
    assert [(r.action, r.outcome) for r in finished] == [
        ("reissue", "failure"),
        ("reconnect", "failure"),
    ]
    assert "no socket" in finished[1].reason
    last = public[-1]
    assert isinstance(last, Escalated) and last.reason == "ladder_exhausted"


async def test_a_sink_that_raises_is_contained_and_the_next_sink_still_runs() -> None:
    """A broken sink costs a counted watchdog error, never the watchdog or the other sinks."""

    def broken(record: Any) -> None:
        raise ValueError("sink down")

    sink = CountingSink()
    async with Watchdog(FAST, Silent(), sinks=[broken, sink]) as wd:
        wd.observe(UserSpeechStopped())
        await until(lambda: sink.by_type["escalated"] == 1)
    # one per record the broken sink refused (not its own error reports), plus the reconnect's
    refused = [r for r in sink.records if r.type != "watchdog_errored"]
    assert wd.counters.errors == len(refused) + 1
    assert sink.by_type["watchdog_errored"] == wd.counters.errors


def test_emitter_calls_callbacks_by_type_and_refuses_unknown_names() -> None:
    """`on` works as a call and as a decorator; `off` removes; a typo is a named ConfigError."""
    emitter = EventEmitter()
    seen: list[str] = []
    emitter.on("stall_detected", lambda ev: seen.append(f"a:{ev.kind}"))

    @emitter.on("stall_detected")
    def b(ev: StallDetected) -> None:
        seen.append(f"b:{ev.kind}")

    emitter.emit(StallDetected("no_reply", 1.0, 6.0))
    emitter.emit(Escalated("ladder_exhausted", "no_reply", 7.0))
    emitter.off("stall_detected", b)
    emitter.emit(StallDetected("audio_gap", 8.0, 9.0))
    assert seen == ["a:no_reply", "b:no_reply", "a:audio_gap"]
    with pytest.raises(ConfigError) as err:
        emitter.on("stall", print)  # type: ignore[arg-type]
    assert err.value.field == "event" and "stall_detected" in str(err.value)


async def test_emitter_contains_a_raising_callback_and_runs_coroutines() -> None:
    """A callback that raises is reported and the others still run; an async one is awaited."""
    reported: list[str] = []
    emitter = EventEmitter(report=lambda where, exc: reported.append(f"{where}: {exc}"))
    done = asyncio.Event()

    def bad(ev: Any) -> None:
        raise RuntimeError("boom")

    async def good(ev: Any) -> None:
        done.set()

    emitter.on("escalated", bad)
    emitter.on("escalated", good)
    emitter.emit(Escalated("dead_session", "dead_session", 1.0))
    await asyncio.wait_for(done.wait(), 5)
    assert reported == ["event callback escalated: boom"]


async def test_events_fire_in_order_for_a_faulted_turn() -> None:
    """A real session, a reply the server never starts: the application hears stall_detected,
    recovery_started, then recovery_finished with success, while the caller gets the answer."""
    async with start_call("no_response", supervised=True) as call:
        seen: list[Any] = []
        assert call.supervisor is not None
        for name in ("stall_detected", "recovery_started", "recovery_finished", "escalated"):
            call.supervisor.on(name, seen.append)
        await call.speak()
        onset = await call.fault_onset()
        assert await call.answered_after(onset, within=20)
        await until(lambda: len(seen) >= 3, limit=20)
    assert [ev.type for ev in seen] == ["stall_detected", "recovery_started", "recovery_finished"]
    assert seen[0].kind == "no_reply"
    assert (seen[1].action, seen[1].rung) == ("reissue", 1)
    assert (seen[2].action, seen[2].outcome) == ("reissue", "success")
    assert seen[2].seconds is not None and seen[2].seconds > 0


@pytest.mark.skipif(LK_VERSION < (1, 8, 0), reason="livekit's tracer arrived in 1.8")
async def test_stalls_and_recoveries_appear_on_the_session_trace() -> None:
    """With livekit's tracer provider set, the stall and the recovery are spans under the
    session's `agent_session` span, in its trace."""
    from livekit.agents import telemetry
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.set_tracer_provider(provider)
    try:
        async with start_call("no_response", supervised=True) as call:
            await call.speak()
            onset = await call.fault_onset()
            assert await call.answered_after(onset, within=20)
            await until(lambda: call.supervisor.watchdog.counters.recoveries_succeeded == 1)
            session_span = call.session._session_span
            assert session_span is not None
            session_trace = session_span.get_span_context().trace_id
    finally:
        telemetry.tracer.set_provider(trace.get_tracer_provider())
    spans = {s.name: s for s in exporter.get_finished_spans()}
    stall, recovery = spans["realtime_supervisor.stall"], spans["realtime_supervisor.recovery"]
    for span in (stall, recovery):
        assert span.context.trace_id == session_trace
        assert span.parent is not None
    assert stall.attributes["realtime_supervisor.kind"] == "no_reply"
    assert recovery.attributes["realtime_supervisor.outcome"] == "success"
    assert recovery.start_time >= stall.start_time
    assert recovery.end_time > recovery.start_time


async def test_a_recovered_turn_without_sinks_still_counts() -> None:
    """No sinks: the watchdog works as before (sinks are optional)."""
    actions = Silent()
    async with Watchdog(FAST, actions) as wd:
        wd.observe(UserSpeechStopped())
        await until(lambda: wd.counters.stalls >= 1)
        wd.observe(AgentAudioPlayed())
    assert wd.counters.stalls >= 1
