"""The detector, row by row and rule by rule, with times passed in (no sleeps).

Over the house limit on purpose: it mirrors _detector.py's table and rules one test per behaviour,
and is read next to it.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import pytest

from realtime_supervisor._detector import (
    TABLE,
    WARNING_EFFECTS,
    Detector,
    Finding,
    Heard,
    ReplyExpected,
    Stall,
    StallKind,
    Trigger,
    WarningEffect,
)
from realtime_supervisor._observations import (
    AgentAudioPlayed,
    AgentStateChanged,
    LivekitWarning,
    MessageItemAdded,
    Observation,
    PlaybackFinished,
    RealtimeError,
    ReplyRequested,
    ReplySent,
    ResponseCreated,
    ResponseDone,
    ServerIdleTimeout,
    ServerProgress,
    SessionClosed,
    SessionReconnected,
    ToolCallFinished,
    ToolCallStarted,
    TurnDeclined,
    UserSpeechStarted,
    UserSpeechStopped,
    WarningKind,
)
from realtime_supervisor.config import WatchdogConfig

# Distinct timeouts, so that a test can tell which one armed a row.
CONFIG = WatchdogConfig(
    reply_timeout=5.0,
    audio_gap_timeout=2.0,
    warning_grace=1.0,
    recovery_timeout=3.0,
    storm_reconnects=5,
    storm_window=30.0,
    # Rule 11's deadlines out of the way of the tests of the other rows; tested on their own
    ack_timeout=30.0,
    progress_timeout=120.0,
)
AUDIO = AgentAudioPlayed()


def detector(**overrides: Any) -> Detector:
    return Detector(dataclasses.replace(CONFIG, **overrides))


def feed(d: Detector, *events: tuple[float, Observation]) -> list[Finding]:
    out: list[Finding] = []
    for now, obs in events:
        out.extend(d.observe(obs, now))
    return out


def stalls(findings: list[Finding]) -> list[Stall]:
    return [f for f in findings if isinstance(f, Stall)]


def heard(findings: list[Finding]) -> list[Heard]:
    return [f for f in findings if isinstance(f, Heard)]


def row(kind: StallKind) -> Any:
    return next(r for r in TABLE if r.kind is kind)


# -- the table itself ------------------------------------------------------------------------


def test_table_has_a_row_for_every_verdict_and_unique_row_names() -> None:
    """Every stall kind has a row; no_reply has its three progress rows too (Rule 11)."""
    assert {r.kind for r in TABLE} == set(StallKind)
    keys = [r.key for r in TABLE]
    assert len(keys) == len(set(keys))
    assert [r.key for r in TABLE if r.kind is StallKind.NO_REPLY] == [
        "no_reply",
        "no_ack",
        "no_progress",
        "reply_failed",
    ]


def test_table_timeouts_name_config_fields() -> None:
    """Every timeout a row names is a WatchdogConfig field."""
    names = {f.name for f in dataclasses.fields(WatchdogConfig)}
    for r in TABLE:
        for field in r.armed_by.values():
            assert field is None or field in names


def test_no_trigger_both_arms_and_disarms_a_row() -> None:
    """Within a row a trigger has one meaning."""
    for r in TABLE:
        assert not set(r.armed_by) & r.disarmed_by, r.kind
        assert not r.refreshed_by & r.disarmed_by, r.kind


def test_every_warning_kind_has_an_effect() -> None:
    """No livekit warning kind is left unjudged."""
    assert set(WARNING_EFFECTS) == set(WarningKind)
    fatal = {k for k, e in WARNING_EFFECTS.items() if e is WarningEffect.FATAL}
    assert fatal == {WarningKind.UNRECOVERABLE_CLOSE, WarningKind.ACLOSE_ERROR}


def test_table_rows_read_as_specified() -> None:
    """The table says what the brief says, row by row."""
    no_reply = row(StallKind.NO_REPLY)
    assert no_reply.armed_by == {
        Trigger.USER_TURN_ENDED: "reply_timeout",
        Trigger.REPLY_REQUESTED: "reply_timeout",
        Trigger.TOOL_FINISHED: "reply_timeout",
        Trigger.SERVER_PROMPTED: "reply_timeout",
        Trigger.RECOVERY_REQUESTED: "recovery_timeout",
    }
    assert no_reply.disarmed_by == {
        Trigger.AGENT_AUDIO,
        Trigger.USER_SPEAKING,
        Trigger.TURN_DECLINED,
    }
    assert row(StallKind.AUDIO_GAP).armed_by == {Trigger.RESPONSE_AUDIO: "audio_gap_timeout"}
    [reply_cut] = [r for r in TABLE if r.key == "reply_cut"]
    assert reply_cut.armed_by == {Trigger.REPLY_CUT: "progress_timeout"}
    assert reply_cut.refreshed_by == {Trigger.PROGRESS}
    assert row(StallKind.DEAD_SESSION).armed_by == {Trigger.FATAL: None}
    assert row(StallKind.RECONNECT_STORM).armed_by == {Trigger.STORM: None}


# -- no_reply ----------------------------------------------------------------------------------


def test_no_reply_after_user_turn() -> None:
    """No agent audio within reply_timeout of the user's turn end is a no_reply stall."""
    d = detector()
    assert stalls(feed(d, (10.0, UserSpeechStopped()))) == []
    assert d.next_deadline() == 15.0
    assert d.poll(14.99) == []
    [stall] = d.poll(15.0)
    assert stall.kind is StallKind.NO_REPLY
    assert (stall.silence_since, stall.detected_at) == (10.0, 15.0)
    assert "user turn ended" in stall.detail


def test_no_reply_after_app_request() -> None:
    """A reply the application asked for is owed too."""
    d = detector()
    feed(d, (0.0, ReplyRequested()))
    assert [s.kind for s in d.poll(5.0)] == [StallKind.NO_REPLY]


def test_no_reply_after_watchdog_request_uses_recovery_timeout() -> None:
    """The watchdog's own request is judged by recovery_timeout."""
    d = detector()
    feed(d, (0.0, ReplyRequested(by_watchdog=True)))
    assert d.next_deadline() == 3.0
    assert [s.kind for s in d.poll(3.0)] == [StallKind.NO_REPLY]


def test_no_reply_disarmed_by_agent_audio() -> None:
    """Agent audio within the timeout answers the turn; nothing fires later."""
    d = detector()
    findings = feed(d, (0.0, UserSpeechStopped()), (1.2, AUDIO))
    assert heard(findings) == [Heard(at=1.2, latency=pytest.approx(1.2), stall=None)]
    assert d.next_deadline() is None
    assert d.poll(100.0) == []
    assert not d.reply_expected


def test_no_reply_disarmed_by_user_speaking_and_rearmed_by_their_next_turn_end() -> None:
    """The caller speaking again takes the turn back; their next turn end owes a fresh reply."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()), (4.0, UserSpeechStarted()))
    assert d.poll(6.0) == []
    feed(d, (7.0, UserSpeechStopped()))
    assert d.poll(11.9) == []
    [stall] = d.poll(12.0)
    assert stall.silence_since == 7.0


def test_no_reply_disarmed_by_turn_declined() -> None:
    """A turn the application deliberately leaves unanswered is no stall."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()), (0.5, TurnDeclined()))
    assert d.poll(60.0) == []
    assert not d.reply_expected


def test_no_reply_suspended_while_a_tool_runs() -> None:
    """Silence while a tool runs is expected; its finish owes a reply within a fresh timeout."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()), (1.0, ToolCallStarted()))
    assert d.next_deadline() is None
    assert d.poll(100.0) == []
    feed(d, (100.0, ToolCallFinished()))
    assert d.next_deadline() == 105.0
    [stall] = d.poll(105.0)
    assert stall.silence_since == 0.0  # the caller has waited since their turn ended


def test_one_finish_ends_a_batch_of_tool_calls() -> None:
    """livekit reports a batch of tool calls finished once: that one finish resumes the clock."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()), (1.0, ToolCallStarted()), (1.0, ToolCallStarted()))
    assert d.next_deadline() is None
    feed(d, (20.0, ToolCallFinished()))
    assert d.next_deadline() == 25.0


def test_tool_finish_after_spoken_preamble_owes_a_reply() -> None:
    """The agent said "one moment" and ran a tool: the tool's result owes another reply."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()), (1.0, AUDIO), (1.5, ToolCallStarted()))
    assert not d.reply_expected
    feed(d, (9.0, ToolCallFinished()))
    [stall] = d.poll(14.0)
    assert (stall.kind, stall.silence_since) == (StallKind.NO_REPLY, 9.0)


# -- audio_gap -------------------------------------------------------------------------------


def speaking(d: Detector, start: float = 0.0) -> None:
    feed(d, (start, UserSpeechStopped()), (start + 0.5, ResponseCreated("r1")))
    feed(d, (start + 1.0, AUDIO), (start + 1.5, AUDIO))


def test_audio_gap_when_an_open_response_stops_sending_audio() -> None:
    """A reply that started playing and then stopped, with its response still open, is a gap."""
    d = detector()
    speaking(d)
    assert d.next_deadline() == 3.5
    assert d.poll(3.4) == []
    [stall] = d.poll(3.5)
    assert stall.kind is StallKind.AUDIO_GAP
    assert (stall.silence_since, stall.detected_at) == (1.5, 3.5)


def test_audio_gap_clock_moves_with_each_frame() -> None:
    """Frames only move a timestamp: the gap is measured from the last one."""
    d = detector()
    speaking(d)
    for i in range(100):
        assert stalls(feed(d, (2.0 + i * 0.02, AUDIO))) == []
    assert d.next_deadline() == pytest.approx(2.0 + 99 * 0.02 + 2.0)


def test_audio_without_an_open_response_arms_no_gap() -> None:
    """Audio the detector cannot tie to an open response (e.g. a greeting) arms no gap."""
    d = detector()
    feed(d, (0.0, AUDIO))
    assert d.next_deadline() is None


@pytest.mark.parametrize(
    "obs",
    [
        PlaybackFinished(interrupted=True),
        UserSpeechStarted(),
        ReplyRequested(by_watchdog=True),
    ],
)
def test_audio_gap_disarmed(obs: Observation) -> None:
    """Playback ending (however), a barge-in or our own request disarm the gap."""
    d = detector()
    speaking(d)
    feed(d, (2.0, obs))
    assert all(s.kind is not StallKind.AUDIO_GAP for s in d.poll(50.0))


def test_audio_gap_not_disarmed_by_another_responses_done() -> None:
    """Only the open response's own done closes it."""
    d = detector()
    speaking(d)
    feed(d, (2.0, ResponseDone("r0", "cancelled")))
    assert [s.kind for s in d.poll(3.5)] == [StallKind.AUDIO_GAP]


# -- post_warning_silence --------------------------------------------------------------------


def warn(kind: WarningKind) -> LivekitWarning:
    return LivekitWarning(kind)


def test_post_warning_silence_when_nothing_plays_after_a_cut_warning() -> None:
    """An empty first item: the warning comes and nothing plays for warning_grace."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()), (0.5, ResponseCreated("r1")))
    feed(d, (0.8, warn(WarningKind.MULTI_MESSAGE)))
    [stall] = d.poll(1.8)
    assert stall.kind is StallKind.POST_WARNING_SILENCE
    assert stall.warning is WarningKind.MULTI_MESSAGE
    assert stall.silence_since == 0.8
    assert "multi_message" in stall.detail


def test_post_warning_silence_measured_from_the_last_frame_of_the_cut_reply() -> None:
    """A warning during the first item's playback waits for its last frame, then the grace.

    The output's later PlaybackFinished does not restart it (after a drop livekit reports it
    only once reconnected).
    """
    d = detector()
    speaking(d)  # r1 playing since 1.0
    feed(d, (1.6, warn(WarningKind.MULTI_MESSAGE)))
    for i in range(1, 31):  # the first item keeps playing until 4.6
        feed(d, (1.6 + i * 0.1, AUDIO))
    assert d.poll(5.0) == []
    feed(d, (5.0, ResponseDone("r1", "completed")), (5.2, PlaybackFinished()))
    assert d.poll(5.59) == []
    [stall] = d.poll(5.6)
    assert stall.kind is StallKind.POST_WARNING_SILENCE
    assert stall.silence_since == pytest.approx(4.6)


def test_a_drop_is_timed_from_the_socket_not_the_reconnect() -> None:
    """connection_lost mid-reply arms the grace; the discarded-generation warning livekit logs
    after reconnecting is the same cut and does not restart it."""
    d = detector()
    speaking(d)  # r1 playing since 1.0
    feed(d, (1.5, AUDIO), (1.55, warn(WarningKind.CONNECTION_LOST)))
    feed(d, (1.9, warn(WarningKind.GENERATION_DISCARDED)), (1.9, SessionReconnected()))
    feed(d, (2.0, PlaybackFinished()))
    [stall] = d.poll(2.55)
    assert (stall.kind, stall.warning) == (
        StallKind.POST_WARNING_SILENCE,
        WarningKind.CONNECTION_LOST,
    )
    assert stall.silence_since == 1.55


def test_a_drop_while_a_reply_is_owed_loses_it() -> None:
    """connection_lost after the turn ended, before any response: the reply is lost."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()), (0.3, warn(WarningKind.CONNECTION_LOST)))
    assert [s.kind for s in d.poll(1.3)] == [StallKind.POST_WARNING_SILENCE]


def test_a_drop_with_nothing_said_or_owed_arms_nothing() -> None:
    """An idle socket dropping (a server's session limit, say) loses no reply."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()), (0.5, AUDIO), (2.0, PlaybackFinished()))
    feed(d, (2.5, ResponseDone("r1", "completed")), (10.0, warn(WarningKind.CONNECTION_LOST)))
    assert d.next_deadline() is None


def test_a_turn_ending_during_a_recovery_keeps_its_deadline() -> None:
    """The watchdog's request for an older silence does not postpone a newer turn's verdict."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()))
    [first] = d.poll(5.0)
    assert first.kind is StallKind.NO_REPLY  # the recovery for this one is under way
    feed(d, (6.0, UserSpeechStarted()), (7.0, UserSpeechStopped()))
    feed(d, (8.0, ReplyRequested(by_watchdog=True)))  # the older recovery's request lands
    assert d.next_deadline() == 12.0
    [second] = d.poll(12.0)
    assert (second.kind, second.silence_since) == (StallKind.NO_REPLY, 7.0)


def test_the_watchdogs_request_rearms_the_reply_it_recovers() -> None:
    """Its request for the same silence re-arms no_reply with recovery_timeout."""
    d = detector(recovery_timeout=4.0)
    feed(d, (0.0, UserSpeechStopped()))
    d.poll(5.0)
    feed(d, (5.5, ReplyRequested(by_watchdog=True)))
    assert d.next_deadline() == 9.5


def test_post_warning_silence_disarmed_by_a_new_replys_audio() -> None:
    """Audio of a response created after the warning is a new reply."""
    d = detector()
    speaking(d)
    feed(d, (1.6, warn(WarningKind.GENERATION_DISCARDED)), (2.0, ResponseCreated("r2")))
    feed(d, (2.5, AUDIO), (2.6, ResponseDone("r2", "completed")), (2.7, PlaybackFinished()))
    assert d.poll(30.0) == []


def test_lost_warning_while_a_reply_is_owed() -> None:
    """A lost-reply warning while a reply is owed fires after the grace, before no_reply."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()), (1.0, warn(WarningKind.REPLY_TIMEOUT)))
    [stall] = d.poll(2.0)
    assert (stall.kind, stall.warning) == (
        StallKind.POST_WARNING_SILENCE,
        WarningKind.REPLY_TIMEOUT,
    )


def test_lost_warning_disarmed_by_any_audio() -> None:
    """After a lost-reply warning any agent audio is the reply."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()), (0.5, warn(WarningKind.SCHEDULING_STOPPED)))
    feed(d, (1.0, AUDIO))
    assert d.poll(100.0) == []


def test_lost_warning_with_nothing_owed_is_stale() -> None:
    """A lost-reply warning after the turn was answered arms nothing."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()), (1.0, AUDIO), (3.0, PlaybackFinished()))
    feed(d, (10.0, warn(WarningKind.REPLY_TIMEOUT)), (10.0, warn(WarningKind.EVENT_FAILED)))
    assert d.next_deadline() is None


def test_late_response_warning_arms_nothing() -> None:
    """A late response was already given up on: its warning adds no verdict."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()), (0.5, warn(WarningKind.LATE_RESPONSE)))
    assert d.next_deadline() == 5.0


@pytest.mark.parametrize(
    "obs", [UserSpeechStarted(), TurnDeclined(), ReplyRequested(by_watchdog=True)]
)
def test_post_warning_silence_disarmed(obs: Observation) -> None:
    """A barge-in, a declined turn or our own request disarm the warning's verdict."""
    d = detector()
    feed(d, (0.0, ResponseCreated("r1")), (0.1, warn(WarningKind.TEXT_WITH_AUDIO)), (0.5, obs))
    assert all(s.kind is not StallKind.POST_WARNING_SILENCE for s in d.poll(0.1 + 50))


# -- dead_session and close --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obs", "warning"),
    [
        (RealtimeError(recoverable=False, code="insufficient_quota"), None),
        (warn(WarningKind.UNRECOVERABLE_CLOSE), WarningKind.UNRECOVERABLE_CLOSE),
        (warn(WarningKind.ACLOSE_ERROR), WarningKind.ACLOSE_ERROR),
        (SessionClosed(zombie=True), None),
    ],
)
def test_dead_session_is_immediate_and_final(obs: Observation, warning: WarningKind | None) -> None:
    """A dead session is a verdict at once, and the last one."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()))
    [stall] = stalls(feed(d, (2.0, obs)))
    assert (stall.kind, stall.detected_at, stall.warning) == (StallKind.DEAD_SESSION, 2.0, warning)
    assert stall.silence_since == 0.0
    assert d.ended
    assert d.next_deadline() is None
    assert feed(d, (3.0, UserSpeechStopped()), (4.0, SessionClosed(zombie=True))) == []
    assert d.poll(100.0) == []


def test_dead_session_detail_names_the_error_code() -> None:
    """The verdict says which error killed the session."""
    d = detector()
    [stall] = stalls(feed(d, (0.0, RealtimeError(recoverable=False, code="invalid_api_key"))))
    assert "invalid_api_key" in stall.detail


def test_recoverable_error_is_no_verdict() -> None:
    """livekit retries recoverable errors itself."""
    d = detector()
    assert feed(d, (0.0, RealtimeError(recoverable=True, code="server_error"))) == []
    assert not d.ended


def test_normal_close_ends_everything() -> None:
    """After a normal close nothing fires, even with a reply owed."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()), (1.0, SessionClosed()))
    assert d.ended
    assert d.poll(100.0) == []
    assert feed(d, (101.0, RealtimeError(recoverable=False))) == []


# -- reconnect_storm -----------------------------------------------------------------------------


def test_reconnect_storm_beyond_the_limit_in_the_window() -> None:
    """More than storm_reconnects reconnects within storm_window is a storm, at once."""
    d = detector()
    assert stalls(feed(d, *[(float(i), SessionReconnected()) for i in range(5)])) == []
    [stall] = stalls(feed(d, (5.0, SessionReconnected())))
    assert (stall.kind, stall.detected_at) == (StallKind.RECONNECT_STORM, 5.0)
    assert "6 reconnects" in stall.detail


def test_reconnects_spread_beyond_the_window_are_no_storm() -> None:
    """The window slides: old reconnects stop counting."""
    d = detector()
    findings = feed(d, *[(i * 7.0, SessionReconnected()) for i in range(50)])
    assert stalls(findings) == []


def test_reconnect_storm_fires_once_per_burst() -> None:
    """A storm fires once; a new one needs a new burst beyond the limit."""
    d = detector()
    first = feed(d, *[(i * 0.1, SessionReconnected()) for i in range(6)])
    assert len(stalls(first)) == 1
    more = feed(d, *[(1.0 + i * 0.1, SessionReconnected()) for i in range(5)])
    assert stalls(more) == []
    assert len(stalls(feed(d, (2.0, SessionReconnected())))) == 1


# -- once per incident, findings, ordering ----------------------------------------------------


def test_fires_once_per_incident_until_rearmed_by_the_watchdog() -> None:
    """A stall does not repeat on later polls; the watchdog's request re-arms it."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()))
    assert len(d.poll(5.0)) == 1
    assert d.poll(6.0) == [] and d.poll(60.0) == []
    assert d.next_deadline() is None
    feed(d, (60.0, ReplyRequested(by_watchdog=True)))
    [again] = d.poll(63.0)
    assert again.kind is StallKind.NO_REPLY
    assert again.silence_since == 0.0  # the caller's silence began at their turn end
    assert d.incident is not None and d.incident.detected_at == 5.0


def test_audio_gap_fires_once_until_audio_resumes() -> None:
    """A gap fires once; only a new frame re-arms it."""
    d = detector()
    speaking(d)
    assert len(d.poll(3.5)) == 1
    assert d.poll(10.0) == []


def test_heard_reports_latency_and_the_incident() -> None:
    """The first audio after a stall reports the turn's latency and the stall that opened it."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()))
    [stall] = d.poll(5.0)
    feed(d, (5.1, ReplyRequested(by_watchdog=True)))
    [h] = heard(feed(d, (6.0, AUDIO)))
    assert h == Heard(at=6.0, latency=6.0, stall=stall)
    assert d.incident is None
    assert heard(feed(d, (6.02, AUDIO))) == []


def test_heard_after_a_gap_has_no_turn_latency() -> None:
    """Audio resuming after a gap closes the incident; it is no turn's first audio."""
    d = detector()
    speaking(d)
    [stall] = d.poll(3.5)
    [h] = heard(feed(d, (4.0, AUDIO)))
    assert (h.latency, h.stall) == (None, stall)


def test_reply_expected_once_per_turn() -> None:
    """A turn end expects a reply; the app asking again for the same turn is not a new turn."""
    d = detector()
    findings = feed(d, (0.0, UserSpeechStopped()), (0.1, ReplyRequested()))
    assert [f for f in findings if isinstance(f, ReplyExpected)] == [ReplyExpected(since=0.0)]
    assert d.expected_since == 0.0
    findings = feed(d, (1.0, AUDIO), (5.0, ReplyRequested()))
    assert [f for f in findings if isinstance(f, ReplyExpected)] == [ReplyExpected(since=5.0)]


def test_watchdog_request_is_not_a_turn() -> None:
    """Our own request expects audio but counts no turn."""
    d = detector()
    findings = feed(d, (0.0, ReplyRequested(by_watchdog=True)))
    assert not [f for f in findings if isinstance(f, ReplyExpected)]
    [h] = heard(feed(d, (1.0, AUDIO)))
    assert h.latency is None


def test_observation_beats_a_late_timer() -> None:
    """Audio arriving just after the deadline but before the poll disarms instead of firing."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()))
    assert stalls(feed(d, (5.01, AUDIO))) == []


def test_observe_judges_expired_deadlines() -> None:
    """An unrelated observation after a deadline reports the stall."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()))
    assert [s.kind for s in stalls(feed(d, (5.5, AgentStateChanged("listening"))))] == [
        StallKind.NO_REPLY
    ]


def test_simultaneous_stalls_come_in_deadline_order() -> None:
    """Two rows due by the same poll are reported earliest deadline first."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()), (3.0, warn(WarningKind.GENERATION_DISCARDED)))
    assert d.next_deadline() == 4.0  # post_warning at 4.0, no_reply at 5.0
    assert [s.kind for s in d.poll(10.0)] == [StallKind.POST_WARNING_SILENCE, StallKind.NO_REPLY]


def test_ignored_observations_change_nothing() -> None:
    """State changes and item events carry no verdict."""
    d = detector()
    assert feed(d, (0.0, AgentStateChanged("speaking")), (0.0, MessageItemAdded("r", "i"))) == []
    assert d.next_deadline() is None


def _size(obj: object) -> int:
    total = sys.getsizeof(obj)
    for value in vars(obj).values():
        total += sys.getsizeof(value)
        if isinstance(value, dict):  # the row clocks: fixed slots, one per row
            total += sum(sys.getsizeof(v) for v in value.values())
    return total


def test_state_does_not_grow_with_audio_frames() -> None:
    """100k audio frames leave the state the same size and return nothing."""
    d = detector()
    speaking(d)
    feed(d, (1.6, warn(WarningKind.MULTI_MESSAGE)))
    before = _size(d)
    now = 2.0
    for _ in range(100_000):
        now += 0.02
        assert d.observe(AUDIO, now) == []
    assert _size(d) == before
    assert d.next_deadline() == pytest.approx(now + 1.0)


def test_reconnect_window_is_bounded() -> None:
    """The reconnect window holds at most storm_reconnects + 1 times."""
    d = detector(storm_reconnects=3, storm_window=1000.0)
    for i in range(10_000):
        d.observe(SessionReconnected(), i * 1.0)
    assert len(d._reconnects._events) <= 4


def test_playback_finished_after_the_response_is_done_disarms_the_gap() -> None:
    """The normal end of a reply: the server closed it, then the output played it out."""
    d = detector()
    speaking(d)
    feed(d, (2.0, ResponseDone("r1", "completed")), (2.5, PlaybackFinished()))
    assert d.poll(50.0) == []


def test_reply_cut_short_by_the_client_is_an_audio_gap() -> None:
    """Playback ends while the server still has the response open: livekit cut the reply. Judged
    by the server's progress, not the audio clock (a reasoning model's preamble ends so too)."""
    d = detector(progress_timeout=2.0)
    speaking(d)
    feed(d, (2.0, PlaybackFinished()))
    assert d.next_deadline() == 4.0
    [stall] = d.poll(4.0)
    assert stall.kind is StallKind.AUDIO_GAP
    assert stall.silence_since == 2.0


def test_a_cut_reply_stays_a_gap_when_the_server_finishes_it_unheard() -> None:
    """The server closing the reply livekit cut does not end the silence."""
    d = detector(progress_timeout=2.0)
    speaking(d)
    feed(d, (2.0, PlaybackFinished()), (2.4, ResponseDone("r1", "completed")))
    assert d.poll(4.39) == []  # the done is progress, not audio
    assert [s.kind for s in d.poll(4.4)] == [StallKind.AUDIO_GAP]


def test_reconnect_forgets_the_open_response() -> None:
    """A response of a dropped connection never finishes; after a reconnect none is open."""
    d = detector()
    speaking(d)
    feed(d, (2.0, SessionReconnected()), (2.5, PlaybackFinished()))
    assert [s.kind for s in d.poll(50.0)] == []


# -- production timing: a reply is in progress until its playback ends (Rule 10) ---------------


def test_audio_gap_holds_after_response_done_until_the_playback_ends() -> None:
    """The real API closes the response long before its audio has played: a gap in the rest of
    the playback is still a gap, and only the playback's end disarms it."""
    d = detector()
    speaking(d)
    feed(d, (1.6, ResponseDone("r1", "completed")))  # all audio sent, most still to play
    for i in range(1, 11):
        feed(d, (1.6 + i * 0.1, AUDIO))  # playing until 2.6, then nothing
    assert d.reply_in_progress and not d.response_open
    [stall] = d.poll(4.6)
    assert stall.kind is StallKind.AUDIO_GAP
    assert stall.silence_since == pytest.approx(2.6)


def test_a_played_out_reply_arms_nothing() -> None:
    """response.done, the rest of the audio, then the playback's end: nothing fires."""
    d = detector()
    speaking(d)
    feed(d, (1.6, ResponseDone("r1", "completed")), (2.5, AUDIO), (2.9, PlaybackFinished()))
    assert not d.reply_in_progress
    assert d.next_deadline() is None and d.poll(60.0) == []


# -- open responses as a set (Rule 9) ---------------------------------------------------------


def test_a_created_event_without_an_id_opens_no_phantom() -> None:
    """response.created with no response object (read as id "") opens nothing: the reply that
    plays out completely is not taken for a cut one."""
    d = detector()
    speaking(d)
    feed(d, (1.6, ResponseCreated("")), (2.0, ResponseDone("r1", "completed")))
    feed(d, (2.5, AUDIO), (2.9, PlaybackFinished()))
    assert not d.response_open
    assert d.poll(60.0) == []


def test_done_before_created_opens_no_phantom() -> None:
    """A done for an id never created, then its created: the id is closed, not open for good."""
    d = detector()
    speaking(d)
    feed(d, (1.5, ResponseDone("rx", "completed")), (1.6, ResponseCreated("rx")))
    assert d.response_open  # r1 still is
    feed(d, (2.0, ResponseDone("r1", "completed")), (2.5, AUDIO), (2.9, PlaybackFinished()))
    assert not d.response_open
    assert d.poll(60.0) == []


def test_a_late_done_of_an_older_response_does_not_close_the_newest() -> None:
    """Two responses on the wire: the newest plays; the older one's done leaves it open."""
    d = detector(progress_timeout=2.0)
    speaking(d)
    feed(d, (1.6, ResponseCreated("r2")), (1.7, ResponseDone("r1", "completed")))
    assert d.response_open
    feed(d, (2.0, PlaybackFinished()))  # livekit ended r2's playback while r2 is still open
    assert [s.kind for s in d.poll(4.0)] == [StallKind.AUDIO_GAP]


def test_open_responses_are_bounded() -> None:
    """Responses whose done never comes do not grow the state without bound."""
    d = detector()
    for i in range(1000):
        d.observe(ResponseCreated(f"r{i}"), float(i))
        d.observe(ResponseDone(f"x{i}", "completed"), float(i))
    assert len(d._open) <= 8 and len(d._closed_early) <= 8


# -- never over the caller -------------------------------------------------------------------


def test_the_watchdogs_request_while_the_caller_speaks_does_not_fire() -> None:
    """A recovery request that lands while the caller talks is not judged by the clock; the
    caller's turn end arms the row with the full reply_timeout."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()))
    assert [s.kind for s in d.poll(5.0)] == [StallKind.NO_REPLY]
    feed(d, (5.5, UserSpeechStarted()), (5.6, ReplyRequested(by_watchdog=True)))
    assert d.caller_speaking
    assert d.next_deadline() is None
    assert d.poll(30.0) == []
    feed(d, (31.0, UserSpeechStopped()))
    assert not d.caller_speaking
    assert d.next_deadline() == 36.0


def test_a_reconnect_forgets_the_callers_speech() -> None:
    """The new connection's VAD starts afresh: a start whose stop was lost cannot blind no_reply."""
    d = detector()
    feed(d, (0.0, UserSpeechStarted()), (1.0, SessionReconnected()))
    assert not d.caller_speaking
    feed(d, (1.5, ReplyRequested()))
    assert d.next_deadline() == 6.5


# -- Rule 11: acknowledgement and progress ------------------------------------------------------

PROGRESS_CONFIG = dict(ack_timeout=1.5, progress_timeout=4.5)


def test_an_unacknowledged_turn_is_a_no_reply_at_the_ack_deadline() -> None:
    """The server commits the turn and never creates a response: no_reply at ack_timeout."""
    d = detector(**PROGRESS_CONFIG)
    feed(d, (0.0, UserSpeechStopped()), (0.1, ServerProgress()))  # the commit is not an ack
    assert d.next_deadline() == 1.5
    [stall] = d.poll(1.5)
    assert stall.kind is StallKind.NO_REPLY and "acknowledge" in stall.detail
    assert stall.silence_since == 0.0
    assert d.poll(60.0) == []  # one verdict: the patient row fired with it (Rule 6)


def test_an_acknowledged_slow_first_audio_is_left_alone() -> None:
    """Created at once, then 4 s of nothing, then audio: no verdict (the clean corpus)."""
    d = detector(**PROGRESS_CONFIG)
    feed(d, (0.0, UserSpeechStopped()), (0.3, ResponseCreated("r1")), (0.4, ServerProgress()))
    assert d.poll(4.3) == []
    feed(d, (4.4, ServerProgress()), (4.45, AUDIO), (4.6, ResponseDone("r1", "completed")))
    feed(d, (5.5, AUDIO), (5.7, PlaybackFinished()))
    assert d.poll(60.0) == []


def test_an_acknowledged_reply_that_stops_progressing_is_a_no_reply() -> None:
    """Created, then no event of any kind for progress_timeout: the reply stopped."""
    d = detector(**PROGRESS_CONFIG, reply_timeout=8.0)
    feed(d, (0.0, UserSpeechStopped()), (0.3, ResponseCreated("r1")), (0.5, ServerProgress()))
    assert d.next_deadline() == 5.0  # progress from 0.5, before the patient reply_timeout
    [stall] = d.poll(5.0)
    assert stall.kind is StallKind.NO_REPLY and "no server event" in stall.detail


def test_a_progressing_silent_reply_keeps_the_patient_timeout() -> None:
    """Events keep coming (a reasoning model's items, say) but no audio: reply_timeout."""
    d = detector(**PROGRESS_CONFIG, reply_timeout=8.0)
    feed(d, (0.0, UserSpeechStopped()), (0.3, ResponseCreated("r1")))
    for i in range(1, 16):
        feed(d, (0.5 * i, ServerProgress()))
    assert d.poll(7.99) == []
    [stall] = d.poll(8.0)
    assert "no agent audio 8 s" in stall.detail


@pytest.mark.parametrize("status", ["failed", "incomplete"])
def test_a_response_ending_without_audio_is_a_no_reply_at_once(status: str) -> None:
    """failed_response: created then done(failed) and nothing more: no waiting for a clock."""
    d = detector(**PROGRESS_CONFIG)
    feed(d, (0.0, UserSpeechStopped()), (0.3, ResponseCreated("r1")))
    [stall] = stalls(feed(d, (0.4, ResponseDone("r1", status))))
    assert stall.kind is StallKind.NO_REPLY and status in stall.detail
    assert stall.silence_since == 0.0


def test_a_completed_response_or_one_after_the_audio_fires_nothing_at_once() -> None:
    """A function-call response completes with no audio (a tool runs next): no verdict."""
    d = detector(**PROGRESS_CONFIG)
    feed(d, (0.0, UserSpeechStopped()), (0.3, ResponseCreated("r1")), (0.4, ToolCallStarted()))
    assert stalls(feed(d, (0.5, ResponseDone("r1", "completed")))) == []
    assert d.poll(15.0) == []  # the tool runs 15 s: suspended
    feed(d, (15.0, ToolCallFinished()), (15.3, ResponseCreated("r2")), (15.6, AUDIO))
    feed(d, (16.0, ResponseDone("r2", "completed")), (16.7, PlaybackFinished()))
    assert d.poll(60.0) == []


def test_the_watchdogs_unacknowledged_request_is_judged_at_the_ack_deadline() -> None:
    """A re-issue into a dead socket is never acknowledged: the next stall comes at ack_timeout,
    not recovery_timeout."""
    d = detector(**PROGRESS_CONFIG)
    feed(d, (0.0, UserSpeechStopped()))
    [first] = d.poll(1.5)
    feed(d, (2.0, ReplyRequested(by_watchdog=True)), (2.01, ReplySent()))
    [second] = d.poll(3.6)
    assert second.kind is StallKind.NO_REPLY and "the request sent" in second.detail
    assert d.incident is first


def test_a_request_queued_behind_a_connecting_socket_is_timed_from_the_wire() -> None:
    """After a reconnect or failover livekit may hand over a socket still connecting: our request
    waits in its queue, and the connect is not the server's silence. The acknowledgement
    deadline starts when response.create is written; until then the patient row guards it."""
    d = detector(**PROGRESS_CONFIG)  # ack_timeout 1.5 s, recovery_timeout 3 s
    feed(d, (0.0, UserSpeechStopped()))
    [_first] = d.poll(1.5)
    feed(d, (2.0, ReplyRequested(by_watchdog=True)))
    assert d.poll(3.9) == []  # 1.9 s queued: not judged by the ack deadline
    feed(d, (3.9, ReplySent()), (4.3, ResponseCreated("r1")), (4.6, AUDIO))
    feed(d, (4.7, ResponseDone("r1", "completed")), (5.2, PlaybackFinished()))
    assert d.poll(20.0) == [] and d.incident is None


def test_a_request_that_never_reaches_the_wire_is_judged_by_the_recovery_deadline() -> None:
    d = detector(**PROGRESS_CONFIG)
    feed(d, (0.0, UserSpeechStopped()))
    [first] = d.poll(1.5)
    feed(d, (2.0, ReplyRequested(by_watchdog=True)))
    assert d.poll(4.9) == []
    [second] = d.poll(5.0)
    assert second.kind is StallKind.NO_REPLY and d.incident is first


def test_our_request_on_the_wire_does_not_postpone_a_turn_that_ended_during_the_recovery() -> None:
    d = detector(**PROGRESS_CONFIG)
    feed(d, (0.0, UserSpeechStopped()))
    [_first] = d.poll(1.5)
    feed(d, (2.0, UserSpeechStarted()), (2.5, UserSpeechStopped()))  # the caller: "hello?"
    feed(d, (2.6, ReplyRequested(by_watchdog=True)), (3.2, ReplySent()))
    [second] = d.poll(4.0)  # the turn's own deadline (2.5 + 1.5), not the send's (3.2 + 1.5)
    assert second.kind is StallKind.NO_REPLY


def test_the_caller_talking_on_suspends_the_ack_deadline() -> None:
    """A caller who keeps talking: each pause re-arms, their speech never lets it fire."""
    d = detector(**PROGRESS_CONFIG)
    feed(d, (0.0, UserSpeechStopped()), (0.4, UserSpeechStarted()))
    assert d.poll(10.0) == []
    feed(d, (10.0, UserSpeechStopped()), (10.3, ResponseCreated("r1")), (10.5, AUDIO))
    assert d.poll(11.9) == []


def test_server_idle_timeout_owes_a_reply() -> None:
    """input_audio_buffer.timeout_triggered: the server will prompt by itself; if it never
    acknowledges, that is a no_reply like any other (not counted as a caller's turn)."""
    d = detector(**PROGRESS_CONFIG)
    findings = feed(d, (0.0, ServerIdleTimeout()))
    assert [f for f in findings if isinstance(f, ReplyExpected)] == []
    assert d.reply_expected
    [stall] = d.poll(1.5)
    assert stall.kind is StallKind.NO_REPLY


@pytest.mark.parametrize("recoverable", [True, False])
def test_fatal_codes_are_a_dead_session_whatever_livekit_calls_them(recoverable: bool) -> None:
    """livekit 1.5 reports insufficient_quota as recoverable and retries forever."""
    d = detector()
    [stall] = stalls(
        feed(d, (0.0, RealtimeError(recoverable=recoverable, code="insufficient_quota")))
    )
    assert stall.kind is StallKind.DEAD_SESSION


def test_a_recoverable_error_with_another_code_is_no_verdict() -> None:
    d = detector()
    assert stalls(feed(d, (0.0, RealtimeError(recoverable=True, code="server_error")))) == []


def test_an_incomplete_response_mid_answer_is_a_post_warning_silence() -> None:
    """max_output_tokens cuts the answer: its audio plays out, then warning_grace of silence."""
    d = detector()
    speaking(d)  # r1 playing since 1.0
    feed(d, (1.6, ResponseDone("r1", "incomplete")))
    feed(d, (2.0, AUDIO), (2.3, PlaybackFinished()))
    assert d.poll(2.99) == []
    [stall] = d.poll(3.0)
    assert stall.kind is StallKind.POST_WARNING_SILENCE and "incomplete" in stall.detail
    assert stall.silence_since == 2.0


def test_an_incomplete_response_cut_before_its_audio_played_waits_for_that_audio() -> None:
    """The server sent audio, then cut the response (max_output_tokens) before livekit played a
    frame (audio comes faster than real time): not a lost reply to re-ask at once (the fragment
    would then play over the re-ask, hold it back and pass for the answer), but a cut reply:
    the fragment plays, then warning_grace of silence is the verdict."""
    d = detector(**PROGRESS_CONFIG)
    feed(d, (0.0, UserSpeechStopped()), (0.3, ResponseCreated("r1")))
    assert stalls(feed(d, (0.4, ResponseDone("r1", "incomplete", voiced=True)))) == []
    feed(d, (0.6, AUDIO), (0.9, AUDIO), (1.0, PlaybackFinished()))
    assert d.poll(1.89) == []
    [stall] = d.poll(1.9)
    assert stall.kind is StallKind.POST_WARNING_SILENCE and "incomplete" in stall.detail
    assert stall.silence_since == 0.9


def test_a_voiced_incomplete_response_whose_audio_plays_late_is_judged_after_it() -> None:
    """livekit under load plays the fragment 1.5 s after the cut: no verdict before it (the
    re-ask would race it), warning_grace after its last frame."""
    d = detector(**PROGRESS_CONFIG)
    feed(d, (0.0, UserSpeechStopped()), (0.3, ResponseCreated("r1")))
    feed(d, (0.4, ResponseDone("r1", "incomplete", voiced=True)))
    assert d.poll(1.9) == []
    feed(d, (1.9, AUDIO), (2.2, AUDIO))
    assert d.poll(3.19) == []
    [stall] = d.poll(3.2)
    assert stall.kind is StallKind.POST_WARNING_SILENCE and stall.silence_since == 2.2


def test_a_voiced_incomplete_response_whose_audio_never_plays_is_still_owed() -> None:
    d = detector(**PROGRESS_CONFIG)
    feed(d, (0.0, UserSpeechStopped()), (0.3, ResponseCreated("r1")))
    feed(d, (0.4, ResponseDone("r1", "incomplete", voiced=True)))
    [stall] = d.poll(6.0)
    assert stall.kind is StallKind.NO_REPLY and stall.silence_since == 0.0


def test_an_incomplete_response_followed_by_a_new_reply_is_left_alone() -> None:
    d = detector()
    speaking(d)
    feed(d, (1.6, ResponseDone("r1", "incomplete")), (1.8, ResponseCreated("r2")))
    feed(d, (1.9, AUDIO), (2.5, ResponseDone("r2", "completed")), (3.0, PlaybackFinished()))
    assert d.poll(60.0) == []


def test_a_response_failed_with_a_fatal_code_is_a_dead_session_at_once() -> None:
    """The failed response.done names insufficient_quota before the error event comes: the
    verdict is dead_session, not a no_reply the watchdog would try to recover first."""
    d = detector()
    feed(d, (0.0, UserSpeechStopped()), (0.3, ResponseCreated("r1")))
    [stall] = stalls(feed(d, (0.4, ResponseDone("r1", "failed", "insufficient_quota"))))
    assert stall.kind is StallKind.DEAD_SESSION


def test_a_tool_call_does_not_leave_a_stale_progress_clock() -> None:
    """The function-call response is acknowledged, then a 15 s tool runs with no server event:
    when it finishes, the reply to its result gets its own acknowledgement deadline; the old
    progress clock does not fire on resuming."""
    d = detector(ack_timeout=1.5, progress_timeout=4.5, reply_timeout=5.0)
    feed(d, (0.0, UserSpeechStopped()), (0.3, ResponseCreated("r1")), (0.4, ToolCallStarted()))
    feed(d, (0.5, ResponseDone("r1", "completed")))
    assert d.poll(15.0) == []
    assert stalls(feed(d, (15.0, ToolCallFinished()))) == []
    assert d.next_deadline() == 16.5
    feed(d, (15.3, ResponseCreated("r2")), (15.8, AUDIO))
    assert d.poll(16.5) == []


def test_a_preamble_then_seconds_of_reasoning_then_the_answer_is_left_alone() -> None:
    """gpt-realtime-2: a preamble item plays and ends, the response stays open while the model
    reasons (a few events), then the final answer item plays: no verdict."""
    d = detector(progress_timeout=4.5)
    speaking(d)  # the preamble, r1, playing since 1.0
    feed(d, (1.8, PlaybackFinished()))  # the preamble's playback ends; r1 still open
    for t in (3.0, 5.5):
        feed(d, (t, ServerProgress()))
    assert d.poll(9.9) == []
    feed(d, (9.9, ServerProgress()), (10.0, AUDIO), (10.5, ResponseDone("r1", "completed")))
    feed(d, (11.0, AUDIO), (11.2, PlaybackFinished()))
    assert d.poll(60.0) == []


def test_a_malformed_created_still_acknowledges_the_turn() -> None:
    """response.created without an id opens nothing, but the server did answer the turn."""
    d = detector(ack_timeout=1.5, progress_timeout=4.5)
    feed(d, (0.0, UserSpeechStopped()), (0.3, ResponseCreated("")))
    assert not d.response_open
    assert d.poll(2.0) == []
    assert d.next_deadline() == pytest.approx(4.8)


# -- Rule 12: the interrupted reply's own audio answers nothing ----------------------------------


def resumed_after_recovery(d: Detector) -> Stall:
    """late_resume: r1 plays, stops (a frozen connection), the gap is found, the watchdog
    interrupts and asks; the connection thaws and a few frames of r1 play before the server
    confirms the cancel."""
    speaking(d)  # r1 plays from 1.0 to 1.5
    [gap] = d.poll(3.5)
    assert gap.kind is StallKind.AUDIO_GAP
    feed(d, (3.6, ReplyRequested(by_watchdog=True)), (3.6, ReplySent()))
    return gap


def test_a_fragment_of_the_interrupted_reply_does_not_answer_the_watchdog() -> None:
    """r1's last frames after our request, then its cancel: nothing answers the request, so
    the ack deadline judges it (without Rule 12 the fragment closed the incident and the turn
    was left unanswered)."""
    d = detector(**PROGRESS_CONFIG)
    gap = resumed_after_recovery(d)
    findings = feed(d, (3.8, AUDIO), (3.9, AUDIO), (4.0, ResponseDone("r1", "cancelled")))
    assert heard(findings) == []
    assert d.incident is gap and d.reply_expected
    [stall] = d.poll(3.6 + 1.5)
    assert stall.kind is StallKind.NO_REPLY and "the request sent" in stall.detail


def test_the_watchdogs_own_reply_answers_after_a_fragment() -> None:
    """Once a newer response is created, its audio is the answer: heard, the incident closed,
    no verdict."""
    d = detector(**PROGRESS_CONFIG)
    gap = resumed_after_recovery(d)
    feed(d, (3.8, AUDIO), (4.0, ResponseDone("r1", "cancelled")), (4.1, ResponseCreated("r2")))
    [h] = heard(feed(d, (4.4, AUDIO)))
    assert h.stall is gap and d.incident is None
    feed(d, (4.6, ResponseDone("r2", "completed")), (5.4, PlaybackFinished()))
    assert d.poll(60.0) == []


def test_stale_audio_is_a_trigger_that_disarms_nothing() -> None:
    """Rule 12 in the table: no row is disarmed (nor refreshed) by stale audio."""
    assert all(Trigger.STALE_AUDIO not in r.disarmed_by | r.refreshed_by for r in TABLE)
    d = detector(**PROGRESS_CONFIG)
    resumed_after_recovery(d)
    assert d._triggers(AUDIO, 3.8)[0] is Trigger.STALE_AUDIO


def test_after_the_caller_speaks_audio_is_no_longer_stale() -> None:
    """The caller talked: the request is void, and what plays next is heard as usual."""
    d = detector(**PROGRESS_CONFIG)
    resumed_after_recovery(d)
    feed(d, (3.7, UserSpeechStarted()))
    assert heard(feed(d, (3.8, AUDIO))) != []
    assert d.incident is None
