"""The events an application can react to, and the emitter `Supervisor.on` registers with.

livekit's style (`rtc.EventEmitter`, `AgentStateChangedEvent`): a frozen dataclass per event with
a `type` literal, and `on(type, callback)` usable as a decorator:

    @supervisor.on("stall_detected")
    def _(ev: StallDetected) -> None:
        analytics.track("agent_silent", kind=ev.kind)

Order within one incident: `stall_detected`, then `recovery_started` and `recovery_finished`
(outcome "success" when agent audio came, "failure" when it did not), possibly again one rung up,
and `escalated` when the watchdog gives up. Times are on the watchdog's clock (monotonic).

Callbacks run on the event loop, synchronously, from the watchdog; a callback that raises is
logged and counted, never raised into the watchdog or livekit; a coroutine it returns is run as
a task. Keep them short (start a task for anything slow).
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar, dataclass_transform, get_args

from .errors import ConfigError

__all__ = [
    "EVENT_TYPES",
    "Escalated",
    "EventEmitter",
    "EventType",
    "RecoveryFinished",
    "RecoveryStarted",
    "StallDetected",
    "SupervisorEvent",
]

EventType = Literal["stall_detected", "recovery_started", "recovery_finished", "escalated"]
EVENT_TYPES: Final[tuple[str, ...]] = get_args(EventType)
_R = TypeVar("_R", bound="_Typed")


class _Typed:
    """What every record has: `type`, its class name in snake case (set by `record`)."""

    __slots__ = ()
    type: str


def _type_name(cls: type) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[_R]) -> type[_R]:
    """A record class (the public events here, the watchdog's own in `_records`): a frozen,
    slotted dataclass whose last field `type` is its name in snake case, so the name is written
    once (`StallDetected` -> "stall_detected") and every record has the same shape."""
    name = _type_name(cls)
    cls.__annotations__ = {**inspect.get_annotations(cls), "type": str}
    setattr(cls, "type", field(default=name, init=False))  # noqa: B010 (the field, not a str)
    return dataclass(frozen=True, slots=True)(cls)


@record
class StallDetected(_Typed):
    """The agent went silent where it owed the caller audio."""

    kind: str  # no_reply | audio_gap | post_warning_silence | dead_session | reconnect_storm
    silence_since: float
    detected_at: float
    detail: str = ""

    @property
    def silence_seconds(self) -> float:
        return self.detected_at - self.silence_since


@record
class RecoveryStarted(_Typed):
    """The watchdog is acting: `action` is reissue or reconnect; `rung` counts from 1."""

    action: str
    kind: str
    rung: int
    at: float


@record
class RecoveryFinished(_Typed):
    """A recovery ended: `outcome` success (agent audio came) or failure (`reason` says why)."""

    action: str
    kind: str
    outcome: Literal["success", "failure"]
    at: float
    seconds: float | None = None  # from the stall's detection to the agent's audio (success)
    reason: str = ""


@record
class Escalated(_Typed):
    """The watchdog gave up on this incident; the application's `on_escalate` is called too."""

    reason: str  # budget_exhausted | ladder_exhausted | dead_session | reconnect_storm
    kind: str
    at: float


SupervisorEvent = StallDetected | RecoveryStarted | RecoveryFinished | Escalated
# EventType spells the four names for `on()`'s signature; they are the classes' own.
assert tuple(map(_type_name, get_args(SupervisorEvent))) == EVENT_TYPES, EVENT_TYPES
_C = TypeVar("_C", bound=Callable[..., Any])


class EventEmitter:
    """`on`/`off`/`emit` for the four event types (livekit's `EventEmitter`, typed names)."""

    def __init__(self, report: Callable[[str, BaseException], None] | None = None) -> None:
        self._handlers: dict[str, list[Callable[[Any], Any]]] = {t: [] for t in EVENT_TYPES}
        self._report = report
        self._tasks: set[asyncio.Future[Any]] = set()

    def on(self, event: EventType, callback: _C | None = None) -> Any:
        """Call `callback(ev)` on each `event`; without a callback, a decorator."""
        handlers = self._handlers_for(event)
        if callback is None:

            def decorator(cb: _C) -> _C:
                handlers.append(cb)
                return cb

            return decorator
        handlers.append(callback)
        return callback

    def off(self, event: EventType, callback: Callable[..., Any]) -> None:
        """Stop calling `callback` on `event` (no error if it was not registered)."""
        handlers = self._handlers_for(event)
        if callback in handlers:
            handlers.remove(callback)

    def emit(self, ev: Any) -> None:
        """Call every callback of `ev.type`, each contained (a records sink: other records,
        the watchdog's bookkeeping, have no callbacks and pass)."""
        for callback in list(self._handlers.get(getattr(ev, "type", ""), ())):
            try:
                result = callback(ev)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._tasks.add(task)
                    task.add_done_callback(self._done)
            except Exception as exc:
                self._contained(ev.type, exc)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            self._contained("callback task", exc)

    def _contained(self, where: str, exc: BaseException) -> None:
        if self._report is not None:
            self._report(f"event callback {where}", exc)

    def _handlers_for(self, event: str) -> list[Callable[[Any], Any]]:
        handlers = self._handlers.get(event)
        if handlers is None:
            raise ConfigError("event", f"expected one of {', '.join(EVENT_TYPES)}, got {event!r}")
        return handlers
