"""Stalls and recoveries on the session's OpenTelemetry trace (optional: opentelemetry-api).

A sink of the watchdog's records (see `_records.py`). With livekit's tracer (1.8:
`livekit.agents.telemetry.tracer`, live once the application calls
`telemetry.set_tracer_provider`), each record becomes part of the session's trace, under
livekit's `agent_session` span:

- `stall_detected`: a span event `realtime_supervisor.stall` on the session span, and a zero-length
  span of that name (so a trace viewer lists it) starting when the silence began;
- `recovery_started` .. `recovery_finished`: a span `realtime_supervisor.recovery` over the
  action, with its outcome (an ERROR status on failure);
- `escalated`: a span event and a zero-length span `realtime_supervisor.escalation`, ERROR status.

The watchdog's clock is monotonic; spans need wall time, so times are converted through the
offset between the two, taken once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .._records import Record
from ..events import Escalated, RecoveryFinished, RecoveryStarted, StallDetected

__all__ = ["TraceSink"]


class TraceSink:
    """A records sink that writes spans with `tracer`, parented to `parent()` when it is a span."""

    def __init__(
        self,
        tracer: Any,
        parent: Callable[[], Any] = lambda: None,
        *,
        clock: Callable[[], float] = time.monotonic,
        attributes: dict[str, str] | None = None,
    ) -> None:
        from opentelemetry import trace  # optional: imported only when traces are wanted

        self._trace = trace
        self._tracer = tracer
        self._parent = parent
        self._attributes = dict(attributes or {})
        self._offset_ns = time.time_ns() - int(clock() * 1e9)
        self._recovery: Any = None

    def _ns(self, at: float) -> int:
        return self._offset_ns + int(at * 1e9)

    def _context(self) -> Any:
        parent = self._parent()
        if parent is None:
            return None  # the current context's span, if any
        return self._trace.set_span_in_context(parent)

    def _instant(self, name: str, at: float, attrs: dict[str, Any], error: bool = False) -> None:
        parent = self._parent()
        if parent is not None and parent.is_recording():
            parent.add_event(name, attributes=attrs, timestamp=self._ns(at))
        span = self._tracer.start_span(
            name, context=self._context(), attributes=attrs, start_time=self._ns(at)
        )
        if error:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, attrs.get("reason")))
        span.end(end_time=self._ns(at))

    def __call__(self, record: Record) -> None:
        base = {**self._attributes}
        if isinstance(record, StallDetected):
            attrs = {
                **base,
                "realtime_supervisor.kind": record.kind,
                "realtime_supervisor.silence_seconds": record.silence_seconds,
                "realtime_supervisor.detail": record.detail,
            }
            self._instant("realtime_supervisor.stall", record.detected_at, attrs)
        elif isinstance(record, RecoveryStarted):
            self._end_recovery(None)
            self._recovery = self._tracer.start_span(
                "realtime_supervisor.recovery",
                context=self._context(),
                start_time=self._ns(record.at),
                attributes={
                    **base,
                    "realtime_supervisor.action": record.action,
                    "realtime_supervisor.kind": record.kind,
                    "realtime_supervisor.rung": record.rung,
                },
            )
        elif isinstance(record, RecoveryFinished):
            self._end_recovery(record)
        elif isinstance(record, Escalated):
            attrs = {
                **base,
                "realtime_supervisor.reason": record.reason,
                "realtime_supervisor.kind": record.kind,
            }
            self._instant("realtime_supervisor.escalation", record.at, attrs, error=True)

    def _end_recovery(self, finished: RecoveryFinished | None) -> None:
        span, self._recovery = self._recovery, None
        if span is None:
            return
        if finished is None:
            span.end()
            return
        span.set_attribute("realtime_supervisor.outcome", finished.outcome)
        if finished.seconds is not None:
            span.set_attribute("realtime_supervisor.recovery_seconds", finished.seconds)
        if finished.outcome == "failure":
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, finished.reason))
        span.end(end_time=self._ns(finished.at))
