"""The asyncio shell around the detector and the policy, for one agent session.

The binding calls `observe` (synchronously, from livekit's event handlers). The watchdog feeds the
detector with `clock()`, keeps ONE timer at the detector's next deadline, and turns verdicts into
actions through the policy, one task per action. Agent audio is the one high-rate input: the binding
observes only a frame that follows a pause and writes the time of every frame to `audio_at`; the
watchdog reads that before every judgement and feeds it to the detector at the frame's own time,
so a speaking agent costs a store per frame, not a detector step. Server events (the detector's
progress, Rule 11) are handled the same way: the binding stores the time of each in
`progress_at`, and only the latest is fed, before a judgement.

It judges its own actions by the detector too: after acting it observes
`ReplyRequested(by_watchdog=True)`, so a recovery succeeded if agent audio comes within
recovery_timeout; otherwise the next stall of the same incident climbs the ladder.

It never makes the agent talk over itself or over the caller: every verdict that leads to a reissue
or a reconnect already means silence (no audio since a reply was owed, no frame for
audio_gap_timeout, or a whole warning_grace without audio), and the action task checks again, just
before each rung, that no audio has arrived since the verdict and that the caller is not speaking.
An action waits (for the interrupted response to close, for a reconnect), so the binding asks
`may_speak()` once more right before `generate_reply` and holds back when the answer is no; a
held-back action is skipped, not failed, and arms nothing (the caller's turn end arms no_reply
afresh). Dead sessions and reconnect storms only escalate.

It records each step once: a typed record (`_records.py`: StallDetected, RecoveryStarted, ...)
handed to its sinks in order, its counters, the metrics, the log, then those the application gave
(the Supervisor's events, traces).

Errors are contained: anything raised by its own code, an action or a sink is recorded as
`WatchdogErrored` (logged as `watchdog.error`, counted in `watchdog_error()`), and never raised
into livekit.

Over the house limit (about 650 lines) on purpose: the timer, the action runner and the
outcome checks share the session's state and its ordering guarantees; split, each part would
reach into the others' state.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt

from realtime_supervisor._detector import (
    INERT,
    Detector,
    Finding,
    Heard,
    ReplyExpected,
    Stall,
    StallKind,
)
from realtime_supervisor._learned import SessionLearning, TurnSampler
from realtime_supervisor._observations import (
    AgentAudioPlayed,
    LivekitWarning,
    Observation,
    ReplyInterrupted,
    ReplyRequested,
    ServerProgress,
    SessionReconnected,
    TurnDeclined,
)
from realtime_supervisor._policy import (
    Action,
    Escalate,
    Failover,
    Policy,
    Reconnect,
    Reissue,
    reconnect_wait,
)
from realtime_supervisor._records import (
    LogRecorder,
    MetricsRecorder,
    Record,
    RecoveryRetrying,
    RecoverySkipped,
    ReplyHeard,
    SessionEnded,
    SessionMetrics,
    SessionStarted,
    SilenceEnded,
    Sink,
    StalledChanged,
    TurnExpected,
    WarningSeen,
    WatchdogErrored,
)
from realtime_supervisor._window import SlidingWindow
from realtime_supervisor.config import WatchdogConfig
from realtime_supervisor.errors import RecoveryError
from realtime_supervisor.events import (
    Escalated,
    RecoveryFinished,
    RecoveryStarted,
    StallDetected,
)
from realtime_supervisor.kinds import Rung
from realtime_supervisor.logs import get_logger

__all__ = ["AUDIO_NEWS_GAP", "Actions", "MetricsSink", "Watchdog", "WatchdogCounters"]

# Per-stall samples kept in WatchdogCounters (recovery/silence seconds, detections).
COUNTER_SAMPLES = 1000
# The binding observes at once a frame that follows a pause at least this long (or the first of
# a playback); any other frame only moves `audio_at`, which is read before each judgement. So the
# frames stored since the last one fed played without such a pause: at any moment between the
# two, one had played at most this long before. Longer than a frame, or every frame would be news
# (sinks pace frames at their own length).
AUDIO_NEWS_GAP = 0.5
# A timer this late (seconds past its deadline) means the event loop stood still: a long garbage
# collection, a starved CPU. What arrived on the sockets meanwhile (the server's acknowledgement, a
# frame) waits behind this callback: asyncio runs the due timers of an iteration before the tasks
# the same iteration's I/O woke. Judged now, a silence already over could be a verdict. So a late
# timer looks again LATE_TIMER_RECHECK later, once, after the loop has caught up: a real stall
# costs that much more, only when the loop was stalled anyway.
LATE_TIMER = 0.1
LATE_TIMER_RECHECK = 0.02

_FALLBACK_LOG = logging.getLogger(__name__)
# Verdicts no recovery can fix: they cut short whatever recovery is running.
_HOPELESS = frozenset({StallKind.DEAD_SESSION, StallKind.RECONNECT_STORM})
_AUDIO = AgentAudioPlayed()
_PROGRESS = ServerProgress()


class Actions(Protocol):
    """What the watchdog can ask of the session; the livekit binding implements it."""

    async def reissue(self, instructions: str | None) -> bool | None:
        """Interrupt whatever is stuck, then ask for a reply; False if it held back (may_speak)."""

    async def reconnect(self) -> bool | None:
        """Open a fresh realtime connection keeping the conversation, then ask for a reply.

        Raises on failure; the watchdog retries with backoff, bounded by reconnect_attempts.
        False if it held back the reply (may_speak).
        """

    async def escalate(self, stall: Stall, reason: str) -> None:
        """Tell the application (its on_escalate hook) that the watchdog gives up."""

    # Optional (read with getattr; a binding without them escalates as before):
    #   def can_failover(self) -> bool: a fallback model is there to switch to
    #   async def failover(self) -> bool | None: switch to it keeping the conversation, then a
    #       reply (the policy's Failover; counted and logged as action="failover")


MetricsSink = SessionMetrics  # the per-session metrics the watchdog records (its old name)


@dataclass
class WatchdogCounters:
    """What the watchdog did in this session (for tests and `/status`)."""

    turns: int = 0
    stalls: int = 0
    recoveries_started: int = 0
    recoveries_succeeded: int = 0
    recoveries_failed: int = 0
    recoveries_skipped: int = 0
    escalations: int = 0
    errors: int = 0
    stalls_by_kind: dict[str, int] = field(default_factory=dict)
    # action -> {"success": n, "failure": n}
    recoveries: dict[str, dict[str, int]] = field(default_factory=dict)
    escalation_reasons: dict[str, int] = field(default_factory=dict)
    # The last COUNTER_SAMPLES of each (a session can last hours): the counts above stay exact.
    recovery_seconds: deque[float] = field(default_factory=lambda: deque(maxlen=COUNTER_SAMPLES))
    silence_seconds: deque[float] = field(default_factory=lambda: deque(maxlen=COUNTER_SAMPLES))
    # (kind, silence_since, detected_at) per stall, on the watchdog's clock: for benchmarks
    detections: deque[tuple[str, float, float]] = field(
        default_factory=lambda: deque(maxlen=COUNTER_SAMPLES)
    )

    def _outcome(self, action: str, outcome: str) -> None:
        by = self.recoveries.setdefault(action, {"success": 0, "failure": 0})
        by[outcome] += 1

    def __call__(self, record: Record) -> None:
        """The watchdog's first sink: what it did, counted."""
        match record:
            case TurnExpected():
                self.turns += 1
            case StallDetected():
                self.stalls += 1
                self.stalls_by_kind[record.kind] = self.stalls_by_kind.get(record.kind, 0) + 1
                self.detections.append((record.kind, record.silence_since, record.detected_at))
            case SilenceEnded(seconds=seconds):
                self.silence_seconds.append(seconds)
            case RecoveryStarted():
                self.recoveries_started += 1
            case RecoverySkipped():
                self.recoveries_skipped += 1
            case RecoveryFinished(outcome="success", seconds=seconds):
                self.recoveries_succeeded += 1
                self._outcome(record.action, "success")
                self.recovery_seconds.append(seconds or 0.0)
            case RecoveryFinished():
                self.recoveries_failed += 1
                self._outcome(record.action, "failure")
            case Escalated(reason=reason):
                self.escalations += 1
                self.escalation_reasons[reason] = self.escalation_reasons.get(reason, 0) + 1
            case WatchdogErrored():
                self.errors += 1
            case _:
                pass


@dataclass(frozen=True, slots=True)
class _Pending:
    """A recovery whose outcome (agent audio) is awaited."""

    action: str
    stall: Stall


class Watchdog:
    """Detects agent silence in one session and recovers it; see the module docstring."""

    def __init__(
        self,
        config: WatchdogConfig,
        actions: Actions,
        *,
        metrics: MetricsSink | None = None,
        logger: Any = None,
        clock: Callable[[], float] = time.monotonic,
        context: Mapping[str, str] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        sinks: Sequence[Sink] = (),
        learning: SessionLearning | None = None,
    ) -> None:
        self._config = config
        self._actions = actions
        base = logger if logger is not None else get_logger()
        self._log: Any = base.bind(**dict(context or {}))
        self.counters = WatchdogCounters()
        # One record per event, through every sink in order: see _records.py.
        own: list[Sink] = [self.counters]
        if metrics is not None:
            own.append(MetricsRecorder(metrics))
        own.append(LogRecorder(self._log))
        self._sinks: tuple[Sink, ...] = (*own, *sinks)
        self._clock = clock
        self._sleep = sleep
        # When agent audio last reached the output, on `clock`: the binding writes it per frame.
        self.audio_at: float | None = None
        self._audio_fed = float("-inf")  # the latest agent audio the detector has been given
        # When the server last sent any event, on `clock`: the binding writes it per event, and
        # the detector is given the latest before each judgement (it only postpones deadlines).
        self.progress_at: float | None = None
        self._progress_fed = float("-inf")
        # Learned thresholds: the detector's timeouts resolved through the deployment's healthy
        # latencies, which the sampler teaches from this session's turns.
        self._sampler = TurnSampler(learning) if learning is not None else None
        self._timeouts = learning.timeout if learning is not None else None
        self._detector = Detector(config, self._timeouts)
        self._policy = Policy(config)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._rechecking = False  # the timer was late once: this run judges (LATE_TIMER)
        self._tasks: set[asyncio.Task[None]] = set()
        self._recovery: asyncio.Task[None] | None = None
        self._pending: _Pending | None = None
        self._acting: Stall | None = None  # the stall the running action answers
        self._escalated = False
        # The reconnects livekit made by itself (not during the ladder's reconnect or failover),
        # in the storm window: a ladder run out among them is the storm (the policy).
        self._livekit_reconnects = SlidingWindow(config.storm_window, cap=1)
        self._reconnecting = False  # our reconnect or failover runs: its reconnect is ours
        self._stalled = False
        self._started = False
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin a session (counts it active). Call from the event loop."""
        if self._started or self._closed or not self._config.enabled:
            return
        self._started = True
        self._publish(SessionStarted())

    async def aclose(self) -> None:
        """Stop: cancel the timer and every task started, await them, end the session."""
        if self._closed:
            return
        self._closed = True
        self._cancel_timer()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._stalled:
            self._set_stalled(False)
        if self._started:
            self._publish(SessionEnded())

    async def __aenter__(self) -> Watchdog:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- facts ---------------------------------------------------------------------------------

    @property
    def stalled(self) -> bool:
        """A stall was found and no agent audio has come since."""
        return self._stalled

    @property
    def detector(self) -> Detector:
        """The detector (read its facts; do not feed it directly)."""
        return self._detector

    @property
    def policy(self) -> Policy:
        return self._policy

    # -- input ---------------------------------------------------------------------------------

    def observe(self, obs: Observation, at: float | None = None) -> None:
        """Take one observation, made at `at` (default: now) on the watchdog's clock. Never raises.

        `at` lets the binding pass the time a frame reached the output; observations must come in
        the order they were made.
        """
        if self._closed or not self._config.enabled or type(obs) in INERT:
            return
        try:
            if isinstance(obs, LivekitWarning):
                self._publish(WarningSeen(obs.kind.value))
            when = self._clock() if at is None else at
            if not math.isfinite(when):
                # A NaN time would make every deadline NaN and the timer fire at once, forever.
                self._error("observe", ValueError(f"observation time is not finite: {when!r}"))
                when = self._clock()
                if not math.isfinite(when):
                    return
            if type(obs) is SessionReconnected and not self._reconnecting:
                self._livekit_reconnects.record(when)
            self._feed(obs, when)
        except Exception as exc:
            self._error("observe", exc)

    def may_speak(self) -> bool:
        """The running recovery may ask for a reply now: still needed, and the caller is silent.

        The binding asks this right before `generate_reply`; an action waits (for a cancel to be
        confirmed, for a reconnect) and the caller may have started speaking, or the agent may
        have been heard, in the meantime. Never raises.
        """
        stall = self._acting
        if stall is None:
            return True  # not ours to judge: no recovery is running
        try:
            return self._still_needed(stall)
        except Exception as exc:
            self._error("may speak", exc)
            return True

    def decline_turn(self) -> None:
        """The application deliberately leaves the current user turn unanswered."""
        self.observe(TurnDeclined())

    def report_error(self, where: str, exc: BaseException) -> None:
        """Log and count an error the binding contained (a malformed event, say)."""
        self._error(where, exc)

    # -- the loop of judgement -----------------------------------------------------------------

    def _feed(self, obs: Observation, at: float) -> None:
        self._catch_up(news=at if isinstance(obs, AgentAudioPlayed) else None)
        if self._sampler is not None:
            self._sampler.observe(obs, at)
        if not isinstance(obs, AgentAudioPlayed):
            self._handle(self._detector.observe(obs, at), at)
        elif at > self._audio_fed:  # else the catch-up has just fed this very frame
            self._audio_fed = at
            self._handle(self._detector.observe(obs, at), at)
        self._rearm()

    def _catch_up(self, news: float | None = None) -> None:
        """Give the detector the latest agent audio and server progress the binding saw, each at
        the time it was seen, the older first (observations come in the order they were made).

        Progress newer than the last frame fed but older than the last frame stored is judged
        with the audio that had played by then: the stored frames came without a pause of
        AUDIO_NEWS_GAP, so one had played at most that long before the server's event. Judged
        against the last frame fed, a timer that comes due late on a busy loop (after a server
        event and a newer frame) would see an audio gap the caller never heard, in the middle of
        a healthy reply. `news`: the frame being observed now, when it is one (a frame stored at
        or after it says nothing about the moments before it: a pause came first).
        """
        progress = self.progress_at
        if progress is not None and progress > self._progress_fed:
            audio = self.audio_at
            if audio is not None and audio > self._audio_fed and (news is None or audio < news):
                heard = audio if audio <= progress else progress - AUDIO_NEWS_GAP
                if heard > self._audio_fed:
                    self._audio_fed = heard
                    self._handle(self._detector.observe(_AUDIO, heard), heard)
            self._progress_fed = progress
            self._handle(self._detector.observe(_PROGRESS, progress), progress)
        at = self.audio_at
        if at is not None and at > self._audio_fed:
            self._audio_fed = at
            self._handle(self._detector.observe(_AUDIO, at), at)

    def _on_timer(self) -> None:
        due = self._timer_at
        self._timer = None
        self._timer_at = None
        if self._closed:
            return
        if due is not None and not self._rechecking and self._clock() - due > LATE_TIMER:
            self._rechecking = True
            self._timer = asyncio.get_running_loop().call_later(LATE_TIMER_RECHECK, self._on_timer)
            self._timer_at = due  # kept: no earlier deadline replaces it (`_rearm`)
            return
        self._rechecking = False
        try:
            self._catch_up()  # audio since the last observation moves the deadline, not a verdict
            now = self._clock()
            self._handle(list(self._detector.poll(now)), now)
        except Exception as exc:
            self._error("timer", exc)
        finally:
            self._rearm()

    def _rearm(self) -> None:
        """Keep one timer at the next deadline; a later deadline keeps an earlier timer.

        Audio keeps pushing deadlines later; rescheduling for each push would churn timers. An
        early timer instead catches up, finds nothing due and re-arms itself once.
        """
        if self._closed:
            return
        try:
            deadline = self._detector.next_deadline()
            if deadline is None:
                self._cancel_timer()
                return
            if self._timer is not None and self._timer_at is not None:
                if self._timer_at <= deadline:
                    return
                self._cancel_timer()
            delay = deadline - self._clock()
            if not math.isfinite(delay):
                # NaN compares false with everything: max(0.0, nan) is 0.0, a timer that fires
                # at once and re-arms itself forever. No timer is better than a spinning one.
                self._cancel_timer()
                self._error("timer", ValueError(f"deadline is not finite: {deadline!r}"))
                return
            delay = max(0.0, delay)
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)
            self._timer_at = deadline
        except Exception as exc:
            self._error("timer", exc)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _handle(self, findings: list[Finding], now: float) -> None:
        for finding in findings:
            try:
                if self._sampler is not None:
                    self._sampler.finding(finding)
                if isinstance(finding, ReplyExpected):
                    self._publish(TurnExpected())
                elif isinstance(finding, Heard):
                    self._heard(finding)
                else:
                    self._stall(finding, now)
            except Exception as exc:
                self._error("handle", exc)

    def _heard(self, heard: Heard) -> None:
        latency, stall, pending = heard.latency, heard.stall, self._pending
        if latency is not None:
            self._publish(ReplyHeard(latency))
        if stall is not None:
            self._publish(SilenceEnded(stall.kind.value, heard.at - stall.silence_since))
        if pending is not None:
            seconds = heard.at - pending.stall.detected_at
            kind = pending.stall.kind.value
            self._publish(RecoveryFinished(pending.action, kind, "success", heard.at, seconds))
        self._pending = None
        self._escalated = False
        if self._policy.incident_open:
            self._policy.resolved(heard.at)
        if self._stalled:
            self._set_stalled(False)

    def _stall(self, stall: Stall, now: float) -> None:
        if self._escalated:
            # the incident is in the application's hands; later verdicts are the same silence
            return
        self._publish(
            StallDetected(stall.kind.value, stall.silence_since, stall.detected_at, stall.detail)
        )
        if not self._stalled:
            self._set_stalled(True)
        running = self._recovery is not None and not self._recovery.done()
        if running:
            if stall.kind not in _HOPELESS:
                return  # the running recovery is judged when it finishes
            assert self._recovery is not None
            self._recovery.cancel()
        if self._pending is not None:
            self._failed(self._pending, "the agent stayed silent" if not running else stall.detail)
        self._decide(stall)

    def _can_failover(self) -> bool:
        """The binding has a fallback model to switch to (optional in `Actions`: a binding
        without `can_failover`/`failover` escalates as before)."""
        can = getattr(self._actions, "can_failover", None)
        try:
            return bool(can()) if can is not None else False
        except Exception as exc:
            self._error("can_failover", exc)
            return False

    def _decide(self, stall: Stall) -> None:
        if self._closed:
            return
        now = self._clock()
        action = self._policy.decide(
            stall,
            now,
            can_failover=self._can_failover(),
            reconnects=self._livekit_reconnects.count(now),
        )
        if isinstance(action, Escalate):
            self._escalated = True
            reason = action.reason
            self._publish(Escalated(reason, stall.kind.value, self._clock()))
            self._spawn(self._escalate(stall, reason))
        else:
            self._recovery = self._spawn(self._recover(action, stall))

    def _failed(self, pending: _Pending, why: str) -> None:
        self._pending = None
        kind = pending.stall.kind.value
        self._publish(RecoveryFinished(pending.action, kind, "failure", self._clock(), reason=why))

    # -- acting --------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _still_needed(self, stall: Stall) -> bool:
        """The incident is open, no agent audio came since the verdict, the caller is silent."""
        try:
            self._catch_up()
        except Exception as exc:
            self._error("catch up", exc)
        finally:
            self._rearm()
        return (
            not self._closed
            and self._policy.incident_open
            and not self._detector.heard_since(stall.detected_at)
            and not self._detector.caller_speaking
        )

    async def _recover(self, action: Action, stall: Stall) -> None:
        name = (
            Rung.RECONNECT
            if isinstance(action, Reconnect)
            else Rung.FAILOVER
            if isinstance(action, Failover)
            else Rung.REISSUE
        )
        if not self._still_needed(stall):
            self._publish(RecoverySkipped(name, stall.kind.value))
            return
        self._pending = pending = _Pending(name, stall)
        self._acting = stall
        self._publish(RecoveryStarted(name, stall.kind.value, self._policy.rung, self._clock()))
        # every action interrupts first: what the reply in progress plays from here is a fragment
        self.observe(ReplyInterrupted())
        try:
            if isinstance(action, Reissue):
                asked = await self._actions.reissue(action.instructions)
            else:
                self._reconnecting = True
                try:
                    if isinstance(action, Failover):
                        asked = await self._failover(stall)
                    else:
                        asked = await self._reconnect(stall)
                finally:
                    self._reconnecting = False
        except asyncio.CancelledError:
            if self._pending is pending:
                self._failed(pending, "cancelled")
            raise
        except Exception as exc:
            if isinstance(exc, RecoveryError):
                # The action could not be performed (a dead socket, a reconnect refused): a
                # failed recovery, the world's fault and not the watchdog's, so it is not counted
                # as a watchdog error (whose alert means a bug of ours).
                why = str(exc)
            else:
                self._error(name, exc)
                why = repr(exc)
            if self._pending is pending:
                self._failed(pending, why)
                if not self._escalated and self._policy.incident_open:
                    self._decide(stall)  # the same incident, the next rung
            return
        finally:
            if self._acting is stall:
                self._acting = None
        if asked is False and self._pending is pending:
            # held back right before asking (the caller spoke, or the agent was heard): nothing
            # was asked, so nothing is judged; a new turn arms no_reply by itself
            self._pending = None
            self._publish(RecoverySkipped(name, stall.kind.value))
            return
        if self._pending is pending and not self._closed:
            # Judge the action by the detector: agent audio within recovery_timeout, or a stall.
            self.observe(ReplyRequested(by_watchdog=True))

    async def _reconnect(self, stall: Stall) -> bool | None:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._config.reconnect_attempts),
            wait=reconnect_wait(self._config),
            sleep=self._sleep,
            reraise=True,
            before_sleep=self._retrying,
        )
        asked: bool | None = None
        async for attempt in retrying:
            with attempt:
                if not self._still_needed(stall):
                    return False
                asked = await self._actions.reconnect()
        return asked

    async def _failover(self, stall: Stall) -> bool | None:
        """Switch to the fallback model; the session on it is new, so is the detector."""
        try:  # besides recovery.started (action=failover): the switch of model, at warning
            self._log.warning("failover", kind=stall.kind.value, reason=stall.detail)
        except Exception as exc:
            self._error("log", exc)
        asked: bool | None = await self._actions.failover()  # type: ignore[attr-defined]
        if self._detector.ended:
            # the primary's dead_session ended the old detector (Rule 7); the fallback's session
            # is alive and judged afresh, its reply by the recovery deadline as any other
            self._detector = Detector(self._config, self._timeouts)
            self._audio_fed = float("-inf")
            self._progress_fed = float("-inf")
        return asked

    def _retrying(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        self._publish(
            RecoveryRetrying(
                Rung.RECONNECT, state.attempt_number, state.upcoming_sleep, repr(error)
            )
        )

    async def _escalate(self, stall: Stall, reason: str) -> None:
        try:
            await self._actions.escalate(stall, reason)
        except Exception as exc:
            self._error("escalate", exc)

    # -- recording, contained ------------------------------------------------------------------

    def _set_stalled(self, stalled: bool) -> None:
        self._stalled = stalled
        self._publish(StalledChanged(stalled))

    def _publish(self, record: Record) -> None:
        """Hand `record` to every sink in order, each contained."""
        for sink in self._sinks:
            try:
                sink(record)
            except Exception as exc:
                if isinstance(record, WatchdogErrored):
                    # a sink failing on an error report: the stdlib, and no further report
                    _FALLBACK_LOG.error("watchdog.error in %s: %r", record.where, record.error)
                else:
                    self._error(f"sink {type(sink).__name__}", exc)

    def _error(self, where: str, exc: BaseException) -> None:
        """Log and count an error the watchdog contained; never raises."""
        try:
            self._publish(WatchdogErrored(where, exc))
        except Exception:  # pragma: no cover - _publish contains every sink already
            _FALLBACK_LOG.exception("watchdog.error in %s", where)
