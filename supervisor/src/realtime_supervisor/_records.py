"""What the watchdog emits: one typed record per event, handed to each sink in turn.

structlog's processors are the model: one value through a tuple of plain callables. A sink is
any `Callable[[Record], None]`. The watchdog's own are, in order: its counters (`/status`, tests),
the metrics (`MetricsRecorder`), the log (`LogRecorder`); then the application's: the
Supervisor's event emitter (the four public events), the trace sink, a test's `CountingSink`.
The watchdog calls them in order and contains each (an error is logged and counted, and the next
sink still runs).

The public events (`events.py`) are records themselves; the others below are the watchdog's
bookkeeping (turns, latencies, warnings, its own errors).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .events import Escalated, RecoveryFinished, RecoveryStarted, StallDetected, _Typed, record

__all__ = [
    "CountingSink",
    "LogRecorder",
    "MetricsRecorder",
    "Record",
    "RecoveryRetrying",
    "RecoverySkipped",
    "ReplyHeard",
    "SessionEnded",
    "SessionMetrics",
    "SessionStarted",
    "SilenceEnded",
    "Sink",
    "StalledChanged",
    "TurnExpected",
    "WarningSeen",
    "WatchdogErrored",
]


@record
class SessionStarted(_Typed):
    """The watchdog began watching a session."""


@record
class SessionEnded(_Typed):
    """The watched session closed (or the watchdog stopped)."""


@record
class TurnExpected(_Typed):
    """A reply became owed (a caller's turn ended, a tool finished)."""


@record
class ReplyHeard(_Typed):
    """Agent audio answered a turn `latency` seconds after it became owed."""

    latency: float


@record
class SilenceEnded(_Typed):
    """Agent audio ended a stall's silence, `seconds` after it began."""

    kind: str
    seconds: float


@record
class WarningSeen(_Typed):
    """livekit logged a warning that means a reply was lost."""

    kind: str


@record
class StalledChanged(_Typed):
    """The session entered (a stall found) or left (agent audio) the stalled state."""

    stalled: bool


@record
class RecoverySkipped(_Typed):
    """A decided recovery was not needed any more when its turn came (audio arrived)."""

    action: str
    kind: str


@record
class RecoveryRetrying(_Typed):
    """A reconnect attempt failed; the next one follows after `wait_seconds`."""

    action: str
    attempt: int
    wait_seconds: float
    error: str


@record
class WatchdogErrored(_Typed):
    """The watchdog contained an error of its own, an action's or a sink's."""

    where: str
    error: BaseException


Record = (
    StallDetected
    | RecoveryStarted
    | RecoveryFinished
    | Escalated
    | SessionStarted
    | SessionEnded
    | TurnExpected
    | ReplyHeard
    | SilenceEnded
    | WarningSeen
    | StalledChanged
    | RecoverySkipped
    | RecoveryRetrying
    | WatchdogErrored
)
Sink = Callable[[Record], None]


class SessionMetrics(Protocol):
    """The per-session metrics (realtime_supervisor.metrics.SessionMetrics)."""

    def turn(self) -> None: ...
    def stall(self, kind: str) -> None: ...
    def recovery(self, action: str, outcome: str, seconds: float | None) -> None: ...
    def escalation(self, reason: str) -> None: ...
    def silence(self, kind: str, seconds: float) -> None: ...
    def reply_latency(self, seconds: float) -> None: ...
    def livekit_warning(self, kind: str) -> None: ...
    def watchdog_error(self) -> None: ...
    def session_started(self) -> None: ...
    def session_ended(self) -> None: ...
    def set_stalled(self, stalled: bool) -> None: ...


class MetricsRecorder:
    """The metrics sink: each record as the SessionMetrics call that counts it."""

    def __init__(self, metrics: SessionMetrics) -> None:
        self.metrics = metrics

    def __call__(self, record: Record) -> None:
        m = self.metrics
        match record:
            case SessionStarted():
                m.session_started()
            case SessionEnded():
                m.session_ended()
            case TurnExpected():
                m.turn()
            case ReplyHeard(latency=latency):
                m.reply_latency(latency)
            case SilenceEnded(kind=kind, seconds=seconds):
                m.silence(kind, seconds)
            case WarningSeen(kind=kind):
                m.livekit_warning(kind)
            case StalledChanged(stalled=stalled):
                m.set_stalled(stalled)
            case StallDetected(kind=kind):
                m.stall(kind)
            case RecoveryFinished(action=action, outcome=outcome, seconds=seconds):
                m.recovery(action, outcome, seconds if outcome == "success" else None)
            case Escalated(reason=reason):
                m.escalation(reason)
            case WatchdogErrored():
                m.watchdog_error()
            case _:
                pass


class LogRecorder:
    """The log sink: the watchdog's events as structured log events (see logs.py)."""

    def __init__(self, logger: Any) -> None:
        self.log = logger

    def __call__(self, record: Record) -> None:
        log = self.log
        match record:
            case StallDetected():
                log.warning(
                    "stall.detected",
                    kind=record.kind,
                    silence_seconds=round(record.silence_seconds, 3),
                    detail=record.detail,
                )
            case RecoveryStarted():
                log.info(
                    "recovery.started", action=record.action, kind=record.kind, rung=record.rung
                )
            case RecoveryFinished(outcome="success", seconds=seconds):
                log.info(
                    "recovery.succeeded",
                    action=record.action,
                    kind=record.kind,
                    recovery_seconds=round(seconds or 0.0, 3),
                )
            case RecoveryFinished():
                log.warning(
                    "recovery.failed", action=record.action, kind=record.kind, reason=record.reason
                )
            case RecoverySkipped():
                log.info("recovery.skipped", action=record.action, kind=record.kind)
            case RecoveryRetrying():
                log.warning(
                    "recovery.retrying",
                    action=record.action,
                    attempt=record.attempt,
                    wait_seconds=round(record.wait_seconds, 3),
                    error=record.error,
                )
            case Escalated():
                log.error("escalation", reason=record.reason, kind=record.kind)
            case WatchdogErrored(where=where, error=error):
                log.error("watchdog.error", where=where, error=repr(error), exc_info=error)
            case _:
                pass


@dataclass
class CountingSink:
    """Keeps every record and counts them by type and by detail (for tests and simulate)."""

    records: list[Record] = field(default_factory=list)
    by_type: Counter[str] = field(default_factory=Counter)
    stalls: Counter[str] = field(default_factory=Counter)  # by stall kind
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (action, outcome)
    escalations: Counter[str] = field(default_factory=Counter)  # by reason

    def __call__(self, record: Record) -> None:
        self.records.append(record)
        self.by_type[record.type] += 1
        if isinstance(record, StallDetected):
            self.stalls[record.kind] += 1
        elif isinstance(record, RecoveryFinished):
            self.outcomes[(record.action, record.outcome)] += 1
        elif isinstance(record, Escalated):
            self.escalations[record.reason] += 1

    def types(self, *, public: bool = False) -> list[str]:
        """The record types in the order they came (only the four public events if `public`)."""
        kinds = (StallDetected, RecoveryStarted, RecoveryFinished, Escalated)
        return [r.type for r in self.records if not public or isinstance(r, kinds)]
