"""The livekit binding against the real plugin: what it hears, and that it never breaks livekit."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
import structlog

from realtime_supervisor.config import WatchdogConfig

from .harness import LK_VERSION, start_call

pytestmark = [pytest.mark.livekit, pytest.mark.timeout(60)]


@pytest.mark.compat
async def test_malformed_server_events_are_contained_and_counted() -> None:
    """A raw server event of the wrong shape neither raises into livekit nor stops the watchdog."""
    async with start_call("no_response", supervised=True) as call:
        rt = call.session.current_agent.realtime_llm_session
        rt.emit("openai_server_event_received", ["not", "an", "event"])
        rt.emit("openai_server_event_received", {"type": "response.created", "response": None})
        rt.emit("openai_server_event_received", {"type": "response.done", "response": 42})
        watchdog = call.supervisor.watchdog
        assert watchdog.counters.errors == 1  # the list; the odd shapes are read as empty
        # and the watchdog still does its job
        await call.speak()
        onset = await call.fault_onset()
        assert await call.answered_after(onset, within=20)
        assert watchdog.counters.recoveries_succeeded == 1


@pytest.mark.compat
async def test_livekit_warnings_reach_the_watchdog_whatever_the_application_log_level() -> None:
    """With livekit's logger at ERROR the warning is still seen, and the app's output unchanged."""
    lk_logger = logging.getLogger("livekit.agents")
    saved = lk_logger.level
    lk_logger.setLevel(logging.ERROR)
    try:
        async with start_call("multi_message,clean", supervised=True) as call:
            t = await call.speak()
            assert await call.answered_after(t, within=20)
            counters = call.supervisor.watchdog.counters
            if LK_VERSION < (1, 5, 12):
                assert counters.stalls_by_kind == {"post_warning_silence": 1}
                # the application asked for ERROR and above: our tap let no warning through
                assert not call.logs.saw("expected to receive only one message generation")
            assert lk_logger.level == logging.WARNING  # lowered while we watch
        assert lk_logger.level == logging.ERROR  # and restored after
    finally:
        lk_logger.setLevel(saved)


async def test_stall_and_recovery_are_logged_with_context_and_durations() -> None:
    """One structlog event per stall and recovery step, with ids, kind and durations, no keys."""
    with structlog.testing.capture_logs() as logs:
        async with start_call("no_response", supervised=True) as call:
            await call.speak()
            onset = await call.fault_onset()
            assert await call.answered_after(onset, within=20)
    events = {e["event"]: e for e in logs}
    assert {"stall.detected", "recovery.started", "recovery.succeeded"} <= set(events)
    stall = events["stall.detected"]
    assert stall["kind"] == "no_reply"
    # the acknowledgement deadline (ack_timeout), not earlier
    assert stall["silence_seconds"] >= WatchdogConfig().ack_timeout - 0.1
    assert stall["session_id"]
    assert events["recovery.succeeded"]["action"] == "reissue"
    assert events["recovery.succeeded"]["recovery_seconds"] >= 0
    assert "sk-test-key" not in repr(logs)


@pytest.mark.compat
async def test_the_tap_adds_no_output_layer_and_follows_a_replaced_output() -> None:
    """The output chain livekit plays through is the application's own; a new output is tapped.

    Replacing the output mid-call (a room output rebuilt, say) must not blind the watchdog: the
    next stall on the new output is still found and recovered.
    """
    from realtime_supervisor.testing import RecordingAudioOutput

    async with start_call("clean,stall_mid", supervised=True) as call:
        assert call.session.output.audio is call.speaker
        t = await call.speak()
        assert await call.answered_after(t, within=20)
        assert call.supervisor.watchdog.detector.last_audio_at is not None
        await call.until_state("listening")

        replacement = RecordingAudioOutput(label="replacement")
        call.session.output.audio = replacement
        call.speaker = replacement
        t = await call.speak()
        onset = await call.fault_onset()
        assert await call.answered_after(onset, within=20)
        assert call.supervisor.watchdog.counters.stalls_by_kind == {"audio_gap": 1}
        assert any(f.at > t for f in replacement.frames)
    # detached: the application's session and outputs are as they were
    assert "capture_frame" not in vars(replacement)
    assert "emit" not in vars(call.session) and "emit" not in vars(replacement)


async def _when(predicate: Any, *, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within the guard")


@pytest.mark.compat
async def test_a_recovery_never_asks_for_a_reply_while_the_caller_speaks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The caller says "hello?" while the re-issue waits for the stuck response to close: the
    watchdog holds its request back, and the caller's own turn is answered.

    The server has lost track of the stalled response and ignores the cancel (the case the
    re-issue's cancel-confirm wait exists for), so the wait ends only when the caller's speech
    makes the server cancel it: the moment a request would land over their words.
    """
    from realtime_supervisor.chaos.connection import Connection

    speech: list[tuple[str, float]] = []  # the server's VAD, on the same clock as `received`
    started, stopped = (
        Connection._on_speech_started,
        (Connection._on_speech_stopped),
    )

    async def on_started(self: Any, ev: Any) -> None:
        speech.append(("started", time.monotonic()))
        await started(self, ev)

    async def on_stopped(self: Any, ev: Any) -> None:
        speech.append(("stopped", time.monotonic()))
        await stopped(self, ev)

    async def lost_track(self: Any, event: Any) -> None:
        self._record("response.cancel (ignored)")

    monkeypatch.setattr(Connection, "_on_speech_started", on_started)
    monkeypatch.setattr(Connection, "_on_speech_stopped", on_stopped)
    monkeypatch.setattr(Connection, "_on_response_cancel", lost_track)
    async with start_call("stall_mid=3,clean", supervised=True) as call:
        await call.speak()
        watchdog = call.supervisor.watchdog
        await _when(lambda: watchdog.counters.stalls >= 1, within=20)
        await call.speak(2.0)
        assert await call.answered_after(time.monotonic(), within=20)
        # every stretch the server's VAD heard the caller (it may split an utterance in two)
        spans = [
            (t, speech[i + 1][1]) for i, (what, t) in enumerate(speech[:-1]) if what == "started"
        ]
        over_caller = [
            r.at
            for r in call.chaos_record().received
            if r.type == "response.create" and any(a <= r.at <= b for a, b in spans)
        ]
        assert over_caller == [], "the watchdog asked for a reply while the caller spoke"
        assert watchdog.counters.recoveries_skipped >= 1
        assert call.escalations == []


@pytest.mark.compat
@pytest.mark.parametrize(
    "events",
    [
        [{"type": "response.created"}],
        [{"type": "response.created", "response": None}],
        [
            {"type": "response.done", "response": {"id": "resp_phantom", "status": "completed"}},
            {"type": "response.created", "response": {"id": "resp_phantom"}},
        ],
    ],
    ids=["created-without-response", "created-with-null-response", "done-before-created"],
)
async def test_unmatched_response_events_leave_no_phantom_and_no_second_answer(
    events: list[dict[str, Any]],
) -> None:
    """Malformed or unmatched lifecycle events arriving mid-reply cannot make a complete answer
    look cut: the caller hears one answer, and the watchdog does nothing."""
    async with start_call("clean", supervised=True) as call:
        t = await call.speak()
        await call.speaker.wait_for_audio_after(t)
        rt = call.session.current_agent.realtime_llm_session
        for event in events:
            rt.emit("openai_server_event_received", event)
        assert await call.answered_after(t, within=20)
        await call.until_state("listening")
        # audio_gap_timeout and recovery, had a phantom stayed open
        await asyncio.sleep(WatchdogConfig().audio_gap_timeout + 2.0)
        counters = call.supervisor.watchdog.counters
        assert counters.stalls == 0 and counters.recoveries_started == 0, counters
        assert call.chaos_record().responses == 1
        assert not call.supervisor.watchdog.detector.response_open


@pytest.mark.compat
async def test_a_request_is_observed_when_it_reaches_the_socket() -> None:
    """`generate_reply` sends response.create; the binding hears livekit write it (the client
    event) and observes ReplySent before the server's response.created: the acknowledgement
    deadline runs from there (detector Rule 11), not from the ask."""
    from realtime_supervisor._observations import ReplySent, ResponseCreated

    async with start_call("clean", supervised=True) as call:
        seen: list[type] = []
        observe = call.supervisor.observe

        def spy(obs: Any, *rest: Any) -> None:
            seen.append(type(obs))
            observe(obs, *rest)

        call.supervisor.observe = spy  # type: ignore[method-assign]
        t = time.monotonic()
        call.session.generate_reply()
        assert await call.answered_after(t, within=20)
        assert ReplySent in seen
        assert seen.index(ReplySent) < seen.index(ResponseCreated)
