from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from realtime_supervisor._detector import Stall, StallKind
from realtime_supervisor._observations import (
    AgentAudioPlayed,
    AgentStateChanged,
    LivekitWarning,
    RealtimeError,
    ResponseCreated,
    ResponseDone,
    SessionReconnected,
    UserSpeechStarted,
    UserSpeechStopped,
    WarningKind,
)
from realtime_supervisor._policy import REPEAT_INSTRUCTIONS
from realtime_supervisor._watchdog import Watchdog
from realtime_supervisor.config import WatchdogConfig
from realtime_supervisor.errors import RecoveryError

# Short real timeouts keep each test well under a second.
FAST = WatchdogConfig(
    reply_timeout=0.05,
    audio_gap_timeout=0.05,
    warning_grace=0.03,
    recovery_timeout=0.05,
    budget_max_recoveries=3,
    budget_window=60.0,
)
AUDIO = AgentAudioPlayed()


class FakeActions:
    """Performs each action as scripted: speak (agent audio follows), silent, raise or block."""

    def __init__(
        self, reissue: list[str] | None = None, reconnect: list[str] | None = None
    ) -> None:
        self.script = {"reissue": list(reissue or []), "reconnect": list(reconnect or [])}
        self.calls: list[tuple[str, Any]] = []
        self.escalations: list[tuple[Stall, str]] = []
        self.escalate_raises = False
        self.watchdog: Watchdog | None = None
        self.asked = 0  # replies asked for that then played

    async def _do(self, action: str) -> bool | None:
        what = self.script[action].pop(0) if self.script[action] else "silent"
        if what == "caller":
            # the caller starts speaking while the action waits; the binding then asks may_speak
            assert self.watchdog is not None
            self.watchdog.observe(UserSpeechStarted())
            return self.watchdog.may_speak()
        if what == "resume":
            # the stalled reply resumes while the action waits for its cancel (a late resume
            # racing the verdict): a fragment our interrupt cuts, then the reply asked for
            assert self.watchdog is not None
            self.watchdog.observe(AUDIO)
            if not self.watchdog.may_speak():
                return False
            what = "speak"
        if what == "speak":
            # as on the wire: the reply asked for is a new response, then its audio plays
            assert self.watchdog is not None
            self.asked += 1
            reply = f"asked-{len(self.calls)}"
            loop = asyncio.get_running_loop()
            for obs in (ResponseCreated(reply), ResponseDone(reply, "completed"), AUDIO):
                loop.call_soon(self.watchdog.observe, obs)
        elif what == "raise":
            raise RuntimeError(f"{action} failed")
        elif what == "fail":  # what the binding raises when the world refuses the action
            raise RecoveryError(f"{action}: the connection is dead")
        elif what == "block":
            await asyncio.Event().wait()
        return None

    async def reissue(self, instructions: str | None) -> bool | None:
        self.calls.append(("reissue", instructions))
        return await self._do("reissue")

    async def reconnect(self) -> bool | None:
        self.calls.append(("reconnect", None))
        return await self._do("reconnect")

    async def escalate(self, stall: Stall, reason: str) -> None:
        self.escalations.append((stall, reason))
        if self.escalate_raises:
            raise RuntimeError("hook failed")

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class FakeMetrics:
    """Records every call of the SessionMetrics API; optionally one method raises."""

    def __init__(self, raising: str | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.raising = raising

    def _rec(self, *call: Any) -> None:
        self.calls.append(call)
        if call[0] == self.raising:
            raise RuntimeError(f"{call[0]} broke")

    def turn(self) -> None:
        self._rec("turn")

    def stall(self, kind: str) -> None:
        self._rec("stall", kind)

    def recovery(self, action: str, outcome: str, seconds: float | None) -> None:
        self._rec("recovery", action, outcome, seconds)

    def escalation(self, reason: str) -> None:
        self._rec("escalation", reason)

    def silence(self, kind: str, seconds: float) -> None:
        self._rec("silence", kind, seconds)

    def reply_latency(self, seconds: float) -> None:
        self._rec("reply_latency", seconds)

    def livekit_warning(self, kind: str) -> None:
        self._rec("livekit_warning", kind)

    def watchdog_error(self) -> None:
        self._rec("watchdog_error")

    def session_started(self) -> None:
        self._rec("session_started")

    def session_ended(self) -> None:
        self._rec("session_ended")

    def set_stalled(self, stalled: bool) -> None:
        self._rec("set_stalled", stalled)

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == name]


class Rig:
    def __init__(self, config: WatchdogConfig = FAST, **kwargs: Any) -> None:
        self.actions = FakeActions(**kwargs)
        self.metrics = FakeMetrics()
        self.waits: list[float] = []
        self.wd = Watchdog(
            config,
            self.actions,
            metrics=self.metrics,
            context={"session_id": "s1"},
            sleep=self._sleep,
        )
        self.actions.watchdog = self.wd

    async def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
async def rig_factory() -> Any:
    rigs: list[Rig] = []

    def make(config: WatchdogConfig = FAST, **kwargs: Any) -> Rig:
        rig = Rig(config, **kwargs)
        rig.wd.start()
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        await rig.wd.aclose()


async def until(predicate: Callable[[], bool], limit: float = 2.0) -> None:
    """Poll `predicate` on the loop; the limit is only a guard against a hung watchdog."""
    async with asyncio.timeout(limit):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.005)


async def settle(seconds: float = 0.15) -> None:
    """Let timers that should NOT fire have ample time to (a negative check)."""
    await asyncio.sleep(seconds)


@pytest.fixture(autouse=True)
def logs() -> Iterator[list[dict[str, Any]]]:
    """Capture structlog events (and keep the default renderer out of the tests)."""
    with capture_logs() as captured:
        yield captured


async def test_no_action_without_a_stall(rig_factory: Any) -> None:
    """A turn answered in time records its latency and triggers nothing."""
    rig = rig_factory()
    rig.wd.observe(UserSpeechStopped())
    rig.wd.observe(AUDIO)
    await settle()
    assert rig.actions.calls == [] and rig.actions.escalations == []
    assert rig.wd.counters.stalls == 0 and not rig.wd.stalled
    assert [c[0] for c in rig.metrics.calls] == ["session_started", "turn", "reply_latency"]


async def test_reissue_then_success(rig_factory: Any, logs: list[dict[str, Any]]) -> None:
    """A silent turn is reissued; audio after it is a successful recovery."""
    rig = rig_factory(reissue=["speak"])
    rig.wd.observe(UserSpeechStopped())
    await until(lambda: rig.wd.counters.recoveries_succeeded == 1)
    assert rig.actions.calls == [("reissue", None)]
    assert not rig.wd.stalled
    m = rig.metrics
    assert m.named("stall") == [("stall", "no_reply")]
    [(_, action, outcome, seconds)] = m.named("recovery")
    assert (action, outcome) == ("reissue", "success") and 0 <= seconds < 1
    [(_, kind, silence)] = m.named("silence")
    assert kind == "no_reply" and silence >= 0.05
    [(_, latency)] = m.named("reply_latency")
    assert latency >= 0.05
    assert m.named("set_stalled") == [("set_stalled", True), ("set_stalled", False)]
    events = [e["event"] for e in logs]
    assert events == ["stall.detected", "recovery.started", "recovery.succeeded"]
    assert all(e["session_id"] == "s1" for e in logs)
    assert logs[0]["kind"] == "no_reply" and logs[0]["silence_seconds"] >= 0.05
    assert logs[2]["action"] == "reissue" and "recovery_seconds" in logs[2]


async def test_the_interrupted_reply_resuming_during_the_action_answers_nothing(
    rig_factory: Any,
) -> None:
    """A late resume racing the verdict: the stalled reply's frames play while the re-issue
    waits for its cancel. Our interrupt cuts them; they must neither count as the recovery's
    success nor stop the re-issue asking (before Rule 12 reached back to the interrupt, the
    fragment closed the incident, the re-issue was held back, and the turn was lost)."""
    rig = rig_factory(reissue=["resume"])
    rig.wd.observe(UserSpeechStopped())
    rig.wd.observe(ResponseCreated("r1"))
    rig.wd.observe(AUDIO)
    await until(lambda: rig.wd.counters.recoveries_succeeded == 1)
    assert rig.wd.counters.stalls_by_kind == {"audio_gap": 1}
    assert rig.actions.asked == 1  # the reply was asked for despite the fragment
    assert rig.actions.escalations == []


async def test_failed_reissue_climbs_to_reconnect(rig_factory: Any) -> None:
    """A reissue that brings no audio within recovery_timeout fails; a reconnect follows."""
    rig = rig_factory(reissue=["silent"], reconnect=["speak"])
    rig.wd.observe(UserSpeechStopped())
    await until(lambda: rig.wd.counters.recoveries_succeeded == 1)
    assert rig.actions.names == ["reissue", "reconnect"]
    outcomes = [(c[1], c[2]) for c in rig.metrics.named("recovery")]
    assert outcomes == [("reissue", "failure"), ("reconnect", "success")]
    assert [c[1] for c in rig.metrics.named("stall")] == ["no_reply", "no_reply"]
    assert len(rig.metrics.named("silence")) == 1  # once per incident


async def test_reconnect_retried_with_backoff(rig_factory: Any) -> None:
    """A reconnect that raises is retried after tenacity's backoff, then succeeds."""
    config = dataclasses.replace(FAST, ladder=("reconnect",), reconnect_attempts=3)
    rig = rig_factory(config, reconnect=["raise", "raise", "speak"])
    rig.wd.observe(UserSpeechStopped())
    await until(lambda: rig.wd.counters.recoveries_succeeded == 1)
    assert rig.actions.names == ["reconnect"] * 3
    assert len(rig.waits) == 2
    assert 0.5 <= rig.waits[0] <= 1.0 and 1.0 <= rig.waits[1] <= 1.5
    assert rig.wd.counters.errors == 0  # retried attempts are not errors; only a final failure


async def test_reconnect_exhausted_escalates(rig_factory: Any) -> None:
    """When every reconnect attempt raises and no rung is left, the watchdog escalates once."""
    config = dataclasses.replace(FAST, reconnect_attempts=2)
    rig = rig_factory(config, reissue=["silent"], reconnect=["raise", "raise"])
    rig.wd.observe(UserSpeechStopped())
    await until(lambda: len(rig.actions.escalations) == 1)
    assert rig.actions.names == ["reissue", "reconnect", "reconnect"]
    assert rig.actions.escalations[0][1] == "ladder_exhausted"
    assert rig.metrics.named("escalation") == [("escalation", "ladder_exhausted")]
    assert rig.wd.counters.errors == 1
    assert rig.metrics.named("watchdog_error") == [("watchdog_error",)]
    rig.wd.observe(UserSpeechStopped())  # the caller tries again: still no acting
    await settle()
    assert len(rig.actions.escalations) == 1 and len(rig.actions.calls) == 3
    assert rig.wd.stalled


async def test_ladder_run_out_while_livekit_reconnects_escalates_as_the_storm(
    rig_factory: Any,
) -> None:
    """A connection that keeps dropping escalates as the storm even when the ladder runs out
    before the storm count: livekit's own reconnect is in the detector's storm window."""
    config = dataclasses.replace(FAST, reconnect_attempts=2)
    rig = rig_factory(config, reissue=["silent"], reconnect=["raise", "raise"])
    rig.wd.observe(SessionReconnected())  # livekit reconnected by itself: not our rung
    rig.wd.observe(UserSpeechStopped())
    await until(lambda: len(rig.actions.escalations) == 1)
    assert rig.actions.names == ["reissue", "reconnect", "reconnect"]
    assert rig.actions.escalations[0][1] == "reconnect_storm"


async def test_an_action_the_world_refuses_is_a_failed_recovery_not_a_watchdog_error(
    rig_factory: Any,
) -> None:
    """A re-issue into a dead socket (RecoveryError) fails the recovery and climbs; the
    watchdog-errors counter (and its alert) stays for bugs of ours."""
    rig = rig_factory(reissue=["fail"], reconnect=["speak"])
    rig.wd.observe(UserSpeechStopped())
    await until(lambda: rig.wd.counters.recoveries_succeeded == 1)
    assert rig.actions.names == ["reissue", "reconnect"]
    assert rig.wd.counters.errors == 0
    assert rig.metrics.named("watchdog_error") == []
    assert [(c[1], c[2]) for c in rig.metrics.named("recovery")] == [
        ("reissue", "failure"),
        ("reconnect", "success"),
    ]


async def test_action_raising_is_contained_and_climbs(rig_factory: Any) -> None:
    """A reissue that raises never reaches the caller; it is counted and the next rung runs."""
    rig = rig_factory(reissue=["raise"], reconnect=["speak"])
    rig.wd.observe(UserSpeechStopped())
    await until(lambda: rig.wd.counters.recoveries_succeeded == 1)
    assert rig.actions.names == ["reissue", "reconnect"]
    assert rig.wd.counters.errors == 1
    assert rig.metrics.named("watchdog_error") == [("watchdog_error",)]
    assert [(c[1], c[2]) for c in rig.metrics.named("recovery")] == [
        ("reissue", "failure"),
        ("reconnect", "success"),
    ]


async def test_budget_exhaustion_escalates(rig_factory: Any) -> None:
    """Beyond the recovery budget the next incident escalates instead of acting."""
    config = dataclasses.replace(FAST, budget_max_recoveries=1)
    rig = rig_factory(config, reissue=["speak"])
    rig.wd.observe(UserSpeechStopped())
    await until(lambda: rig.wd.counters.recoveries_succeeded == 1)
    rig.wd.observe(UserSpeechStopped())
    await until(lambda: len(rig.actions.escalations) == 1)
    assert rig.actions.escalations[0][1] == "budget_exhausted"
    assert rig.actions.names == ["reissue"]


async def test_dead_session_escalates_once(rig_factory: Any) -> None:
    """An unrecoverable error escalates at once, once, and nothing follows."""
    rig = rig_factory()
    rig.wd.observe(UserSpeechStopped())
    rig.wd.observe(RealtimeError(recoverable=False, code="insufficient_quota"))
    await until(lambda: len(rig.actions.escalations) == 1)
    stall, reason = rig.actions.escalations[0]
    assert (stall.kind, reason) == (StallKind.DEAD_SESSION, "dead_session")
    rig.wd.observe(SessionReconnected())
    await settle()
    assert rig.actions.calls == [] and len(rig.actions.escalations) == 1


async def test_fatal_stall_cuts_a_running_recovery_short(rig_factory: Any) -> None:
    """A dead session during a stuck reissue cancels it and escalates."""
    rig = rig_factory(reissue=["block"])
    rig.wd.observe(UserSpeechStopped())
    await until(lambda: rig.actions.calls != [])
    rig.wd.observe(LivekitWarning(WarningKind.UNRECOVERABLE_CLOSE))
    await until(lambda: len(rig.actions.escalations) == 1)
    assert rig.actions.escalations[0][1] == "dead_session"
    assert [(c[1], c[2]) for c in rig.metrics.named("recovery")] == [("reissue", "failure")]
    assert rig.metrics.named("livekit_warning") == [("livekit_warning", "unrecoverable_close")]
    await until(lambda: len(rig.wd._tasks) == 0)


async def test_multi_message_warning_asks_the_model_to_repeat(rig_factory: Any) -> None:
    """Silence after the multi-message warning reissues with the repeat instructions."""
    rig = rig_factory(reissue=["speak"])
    rig.wd.observe(UserSpeechStopped())
    rig.wd.observe(ResponseCreated("r1"))
    rig.wd.observe(AUDIO)
    rig.wd.observe(LivekitWarning(WarningKind.MULTI_MESSAGE))
    await until(lambda: rig.wd.counters.recoveries_succeeded == 1)
    assert rig.actions.calls == [("reissue", REPEAT_INSTRUCTIONS)]
    assert rig.metrics.named("stall") == [("stall", "post_warning_silence")]


async def test_escalation_hook_raising_is_contained(rig_factory: Any) -> None:
    """An on_escalate hook that raises is logged and counted, never propagated."""
    rig = rig_factory()
    rig.actions.escalate_raises = True
    rig.wd.observe(RealtimeError(recoverable=False))
    await until(lambda: rig.wd.counters.errors == 1)
    assert rig.metrics.named("escalation") == [("escalation", "dead_session")]


async def test_metrics_raising_never_reaches_the_caller(rig_factory: Any) -> None:
    """A broken metrics sink is contained: the watchdog keeps working and counts the error."""
    rig = rig_factory(reissue=["speak"])
    rig.metrics.raising = "turn"
    rig.wd.observe(UserSpeechStopped())  # must not raise
    await until(lambda: rig.wd.counters.recoveries_succeeded == 1)
    assert rig.wd.counters.errors == 1


async def test_aclose_cancels_everything(rig_factory: Any) -> None:
    """aclose cancels the timer and a stuck action, awaits them, and ends the session."""
    rig = rig_factory(reissue=["block"])
    rig.wd.observe(UserSpeechStopped())
    await until(lambda: rig.actions.calls != [])
    tasks = set(rig.wd._tasks)
    assert tasks
    rig.wd.observe(AgentStateChanged("listening"))
    await rig.wd.aclose()
    assert all(t.done() for t in tasks)
    assert rig.wd._tasks == set() and rig.wd._timer is None
    assert rig.metrics.calls[-2:] == [("set_stalled", False), ("session_ended",)]
    rig.wd.observe(UserSpeechStopped())  # after close: ignored
    await settle(0.1)
    assert rig.wd.counters.stalls == 1


async def test_declined_turn_is_not_a_stall(rig_factory: Any) -> None:
    """decline_turn leaves the current turn unanswered without a verdict."""
    rig = rig_factory()
    rig.wd.observe(UserSpeechStopped())
    rig.wd.decline_turn()
    await settle()
    assert rig.wd.counters.stalls == 0 and rig.actions.calls == []


async def test_disabled_watchdog_is_inert(rig_factory: Any) -> None:
    """With enabled=False the watchdog records and does nothing."""
    rig = rig_factory(dataclasses.replace(FAST, enabled=False))
    rig.wd.observe(UserSpeechStopped())
    await settle()
    assert rig.metrics.calls == [] and rig.actions.calls == []


async def test_no_reissue_once_audio_arrived_after_the_verdict() -> None:
    """Audio between the verdict and the action cancels the action: never talk over the agent."""
    now = [0.0]
    actions = FakeActions()
    wd = Watchdog(FAST, actions, clock=lambda: now[0])
    async with wd:
        wd.observe(UserSpeechStopped())
        now[0] = 0.05
        wd._on_timer()  # the timer comes due: a stall
        assert wd.counters.stalls == 1
        now[0] = 0.06
        wd.observe(AUDIO)  # before the action task ran
        await until(lambda: wd.counters.recoveries_skipped == 1)
    assert actions.calls == []
    assert not wd.stalled


async def test_audio_frames_do_not_reschedule_the_timer(rig_factory: Any) -> None:
    """Frames only move the detector's deadline; the one timer stays and re-arms lazily."""
    rig = rig_factory(dataclasses.replace(FAST, audio_gap_timeout=5.0))
    rig.wd.observe(ResponseCreated("r1"))
    rig.wd.observe(AUDIO)
    timer = rig.wd._timer
    assert timer is not None
    for _ in range(1000):
        rig.wd.observe(AUDIO)
    assert rig.wd._timer is timer


async def test_logger_and_context_are_bound_once() -> None:
    """The context is bound to the given logger, and events carry it."""
    with capture_logs() as logs:
        logger = structlog.get_logger("test")
        wd = Watchdog(FAST, FakeActions(), logger=logger, context={"room": "r", "job_id": "j"})
        async with wd:
            wd.observe(UserSpeechStopped())
            await until(lambda: wd.counters.stalls == 1)
    detected = next(e for e in logs if e["event"] == "stall.detected")
    assert (detected["room"], detected["job_id"]) == ("r", "j")


async def test_audio_time_read_at_the_deadline_keeps_a_playing_reply_alive() -> None:
    """Frames the binding only timestamped move the gap deadline when the timer comes due."""
    now = [0.0]
    actions = FakeActions()
    config = dataclasses.replace(FAST, audio_gap_timeout=1.0)
    wd = Watchdog(config, actions, clock=lambda: now[0])
    async with wd:
        wd.observe(ResponseCreated("r1"))
        wd.observe(AUDIO)  # the first frame is observed; the rest only move `heard`
        for t in (0.4, 0.8, 1.2, 1.6):
            wd.audio_at = t
        now[0] = 1.0
        wd._on_timer()  # due at 1.0 by the first frame alone
        assert wd.counters.stalls == 0
        assert wd.detector.last_audio_at == 1.6
        assert wd._timer_at == pytest.approx(2.6)
        now[0] = 2.6
        wd._on_timer()  # no frame since 1.6: the gap is real
        assert wd.counters.stalls_by_kind == {"audio_gap": 1}
        assert wd.detector.incident is not None
        assert wd.detector.incident.silence_since == 1.6


async def test_a_late_timer_judges_server_progress_by_the_frames_played_up_to_it() -> None:
    """On a busy loop the timer runs late, after a server event and a newer frame, both past the
    gap deadline. The frames only timestamped since the last one fed came without a pause (the
    first after one is observed at once), so the event is judged with the audio that had played
    by then: a healthy reply is no audio_gap (the bench's 12 s answer was, on livekit 1.8.9).
    A reply that then really stops is still judged from its last frame."""
    now = [0.0]
    config = dataclasses.replace(FAST, audio_gap_timeout=1.0)
    wd = Watchdog(config, FakeActions(), clock=lambda: now[0])
    async with wd:
        wd.observe(ResponseCreated("r1"))
        wd.observe(AUDIO)  # the first frame, at 0.0: the gap deadline is 1.0
        for t in (0.3, 0.6, 0.9):
            wd.audio_at = t  # frames the tap only timestamped
        wd.progress_at = 1.03125  # a server event after the deadline...
        wd.audio_at = 1.0625  # ...and a frame after it, both before the late timer runs
        now[0] = 1.08  # late, though less than LATE_TIMER: judged at once
        wd._on_timer()
        assert wd.counters.stalls == 0
        assert wd.detector.last_audio_at == 1.0625
        wd.progress_at = 1.5  # the server still talks; no frame reaches the output any more
        now[0] = 2.0625
        wd._on_timer()
        assert wd.counters.stalls_by_kind == {"audio_gap": 1}
        assert wd.detector.incident is not None
        assert wd.detector.incident.silence_since == 1.0625


@pytest.mark.parametrize("stored_first", [False, True], ids=["observed-first", "stored-first"])
async def test_a_frame_after_a_pause_does_not_vouch_for_the_pause(stored_first: bool) -> None:
    """The first frame after a pause is observed at once; progress during the pause is judged by
    the frame before it, so a real gap still fires, whether the binding stores the frame's time
    after observing it (as the tap does) or before."""
    now = [0.0]
    config = dataclasses.replace(FAST, audio_gap_timeout=1.0)
    wd = Watchdog(config, FakeActions(), clock=lambda: now[0])
    async with wd:
        wd.observe(ResponseCreated("r1"))
        wd.observe(AUDIO)  # at 0.0; then silence
        wd.progress_at = 1.2  # the server talks during the silence
        now[0] = 1.4  # the late timer has not run: a frame after a 1.4 s pause
        if stored_first:
            wd.audio_at = 1.4
        wd.observe(AUDIO, 1.4)
        wd.audio_at = 1.4
        assert wd.counters.stalls_by_kind == {"audio_gap": 1}
        assert [d[:2] for d in wd.counters.detections] == [("audio_gap", 0.0)]


@pytest.mark.parametrize("arrived", [True, False], ids=["ack-queued", "nothing"])
async def test_a_timer_late_by_a_stalled_loop_looks_again_before_judging(arrived: bool) -> None:
    """A collection stalls the loop 0.5 s past the ack deadline; the server's response.created
    came meanwhile and waits behind the timer. The late timer looks again once the loop caught
    up: the acknowledgement counts and no reply is judged lost. Nothing queued: the stall."""
    from realtime_supervisor._watchdog import LATE_TIMER_RECHECK

    now = [0.0]
    config = dataclasses.replace(FAST, reply_timeout=30.0, ack_timeout=1.0, recovery_timeout=30.0)
    wd = Watchdog(config, FakeActions(), clock=lambda: now[0])
    async with wd:
        wd.observe(UserSpeechStopped())
        assert wd._timer_at == pytest.approx(1.0)
        now[0] = 1.5
        wd._on_timer()  # late: looks again shortly instead of judging
        assert wd.counters.stalls == 0 and wd._timer_at == pytest.approx(1.0)
        if arrived:
            wd.observe(ResponseCreated("r1"))  # the I/O the stall held back
        now[0] = 1.5 + LATE_TIMER_RECHECK
        wd._on_timer()
        assert wd.counters.stalls == (0 if arrived else 1)


async def test_audio_time_read_before_acting_prevents_a_talk_over() -> None:
    """A frame that only moved the timestamp after the verdict still cancels the action."""
    now = [0.0]
    actions = FakeActions()
    wd = Watchdog(FAST, actions, clock=lambda: now[0])
    async with wd:
        wd.observe(UserSpeechStopped())
        now[0] = 0.05
        wd._on_timer()  # the deadline has passed: a stall
        assert wd.counters.stalls == 1
        wd.audio_at = 0.06  # a frame reached the output, not (yet) observed
        await until(lambda: wd.counters.recoveries_skipped == 1)
    assert actions.calls == []
    assert not wd.stalled


async def test_the_first_frame_of_a_reply_brings_the_timer_forward() -> None:
    """A reply that starts early and stops is judged at audio_gap_timeout, not at the older and
    later no_reply deadline the timer was set for."""
    now = [0.0]
    config = dataclasses.replace(
        FAST, reply_timeout=5.0, audio_gap_timeout=1.0, ack_timeout=30.0, progress_timeout=120.0
    )
    wd = Watchdog(config, FakeActions(), clock=lambda: now[0])
    async with wd:
        wd.observe(UserSpeechStopped())
        assert wd._timer_at == 5.0
        now[0] = 0.5
        wd.observe(ResponseCreated("r1"))
        wd.observe(AUDIO, 0.6)  # the tap observes a frame after a pause, then stores its time
        wd.audio_at = 0.6
        assert wd._timer_at == pytest.approx(1.6)


async def test_a_recovery_held_back_for_the_caller_is_skipped_and_arms_nothing(
    rig_factory: Any,
) -> None:
    """The caller starts speaking while the re-issue waits: the binding holds back (may_speak is
    False), nothing is judged and no rung is climbed while they speak; their turn end re-arms."""
    rig = rig_factory(reissue=["caller"], reconnect=["speak"])
    rig.wd.observe(UserSpeechStopped())
    await until(lambda: rig.wd.counters.recoveries_skipped == 1)
    assert rig.wd.may_speak() is True  # no recovery running: not ours to judge
    await asyncio.sleep(FAST.recovery_timeout * 6)
    assert rig.actions.names == ["reissue"]
    assert rig.wd.counters.recoveries_failed == 0 and rig.actions.escalations == []
    rig.wd.observe(UserSpeechStopped())  # the caller's turn is not answered either: next rung
    await until(lambda: rig.wd.counters.recoveries_succeeded == 1)
    assert rig.actions.names == ["reissue", "reconnect"]


async def test_no_rung_starts_while_the_caller_speaks(rig_factory: Any) -> None:
    """A verdict decided just as the caller starts speaking is skipped before acting."""
    rig = rig_factory(reissue=["silent"])
    rig.wd.observe(UserSpeechStopped())
    await until(lambda: rig.actions.names == ["reissue"])
    rig.wd.observe(UserSpeechStarted())  # before recovery_timeout: disarms, and suspends
    await asyncio.sleep(FAST.recovery_timeout * 6)
    assert rig.actions.names == ["reissue"] and rig.actions.escalations == []


async def test_server_progress_stored_by_the_binding_postpones_the_progress_deadline() -> None:
    """The binding only stores the time of each server event; the watchdog gives the latest to
    the detector before judging, so a reply that keeps progressing is not a stall."""
    now = [0.0]
    config = dataclasses.replace(
        FAST, reply_timeout=30.0, ack_timeout=1.0, progress_timeout=2.0, recovery_timeout=30.0
    )
    actions = FakeActions()
    wd = Watchdog(config, actions, clock=lambda: now[0])
    async with wd:
        wd.observe(UserSpeechStopped())
        now[0] = 0.3
        wd.observe(ResponseCreated("r1"))
        assert wd.detector.next_deadline() == pytest.approx(2.3)
        now[0] = 1.0
        wd._on_timer()  # the timer armed for the ack deadline: nothing due, re-armed for 2.3
        now[0] = 2.0
        wd.progress_at = 2.0  # an event, stored
        now[0] = 2.3
        wd._on_timer()  # the timer runs at the old deadline: catches up, nothing due
        assert wd.counters.stalls == 0
        assert wd.detector.next_deadline() == pytest.approx(4.0)
        now[0] = 4.0
        wd._on_timer()
        assert wd.counters.stalls_by_kind == {"no_reply": 1}
