"""One simulated call: the shared call assembly with a scripted caller, and what it taps.

The session is built as the worker builds it (`models.session_kwargs`, whose settings
`realtime_supervisor.testing.session_options` ships too, plus what a room-less session must
change, `room_less_options`) and assembled by the same
`SupervisedCall`. Around it simulate taps what the judge needs: played frames and segments
(the recording output), the server's responses (the realtime session's raw events), livekit's
lost-reply warnings (routed to the call whose task logged them) and the watchdog's activity
(from its public events).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from realtime_supervisor.events import Escalated, RecoveryFinished, StallDetected
from realtime_supervisor.testing import LivekitLogs

from ..baseline import HandWrittenTimer
from .caller import CallState, TurnRecord, caller_loop
from .judge import Response, lost_reply
from .options import SimulateOptions, agent_config

if TYPE_CHECKING:
    from realtime_supervisor.livekit.binding import Escalation, Supervisor
    from realtime_supervisor.metrics import Metrics

__all__ = ["Tally", "capture_livekit_warnings", "process_metrics", "run_call"]

_log = logging.getLogger("realtime_supervisor_agent.simulate")

GUARD_EXTRA: Final = 20.0  # per turn, on top of patience, in the session's hard guard
_AUDIO_DELTAS: Final = ("response.output_audio.delta", "response.audio.delta")
_BYTES_PER_SECOND: Final = 2 * 24000  # the Realtime API's default output: PCM16 mono, 24 kHz


# -- what the watchdog did, tallied from its events -------------------------------------


@dataclass(slots=True)
class Tally:
    """The watchdog's activity by kind, action and outcome, across the run's sessions."""

    stalls: Counter[str] = field(default_factory=Counter)
    recoveries: dict[str, Counter[str]] = field(default_factory=dict)
    escalations: Counter[str] = field(default_factory=Counter)
    recovery_seconds: list[float] = field(default_factory=list)
    errors: int = 0


def _tally_events(supervisor: Supervisor, tally: Tally) -> None:
    """The watchdog's events, counted by kind, action, outcome and reason as they happen."""

    def stall(ev: StallDetected) -> None:
        tally.stalls[ev.kind] += 1

    def finished(ev: RecoveryFinished) -> None:
        tally.recoveries.setdefault(ev.action, Counter())[ev.outcome] += 1
        if ev.outcome == "success" and ev.seconds is not None:
            tally.recovery_seconds.append(ev.seconds)

    def escalated(ev: Escalated) -> None:
        tally.escalations[ev.reason] += 1

    supervisor.on("stall_detected", stall)
    supervisor.on("recovery_finished", finished)
    supervisor.on("escalated", escalated)


def process_metrics() -> Metrics:
    """The process's `realtime_supervisor.metrics.Metrics` on prometheus_client's default REGISTRY.

    One per process (prometheus_client refuses a second registration of the same names), shared
    with anything else in the process that asks for the default.
    """
    from realtime_supervisor.metrics import default_metrics

    return default_metrics()


# -- livekit's lost-reply warnings, per call ------------------------------------------------------

_CALL: contextvars.ContextVar[CallState | None] = contextvars.ContextVar(
    "simulate_call", default=None
)


def _route(record: logging.LogRecord) -> None:
    """To the call whose task logged it: livekit's tasks for a call are created inside the
    call's task, so they inherit its context variable."""
    call = _CALL.get()
    if call is None:
        return
    prefix = lost_reply(record.getMessage())
    if prefix is not None:
        call.warnings.append((time.monotonic(), prefix))
        call.changed.set()


_CAPTURE = LivekitLogs(on_record=_route)  # one for the process: runs may overlap


@contextlib.contextmanager
def capture_livekit_warnings() -> Iterator[None]:
    """Route livekit's lost-reply warnings to their calls while a run is going."""
    _CAPTURE.attach()
    try:
        yield
    finally:
        _CAPTURE.detach()


# -- the server's responses -----------------------------------------------------------------------


def _tap_responses(call: CallState, session: Any) -> None:
    """Hear the raw server events (rule 2 of the judge): responses, their audio, how they end."""
    try:
        rt = session.current_agent.realtime_llm_session
    except (RuntimeError, AttributeError):
        return  # not a realtime model: rule 2 has nothing to go on

    def on_event(event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "response.created":
            rid = str(event.get("response", {}).get("id", ""))
            call.responses[rid] = Response(rid, time.monotonic())
        elif kind in _AUDIO_DELTAS:
            found = call.responses.get(str(event.get("response_id", "")))
            delta = event.get("delta")
            if found is not None and isinstance(delta, str):
                size = len(delta) * 3 // 4 - delta[-2:].count("=")
                found.audio_seconds += size / _BYTES_PER_SECOND
        elif kind == "response.done":
            response = event.get("response", {})
            found = call.responses.get(str(response.get("id", "")))
            if found is not None:
                found.status = str(response.get("status"))
                call.changed.set()

    with contextlib.suppress(Exception):
        rt.on("openai_server_event_received", on_event)


# -- one call --------------------------------------------------------------------------------------


async def run_call(
    call: CallState,
    options: SimulateOptions,
    url: str | None,
    metrics: Metrics | None,
    tally: Tally,
    *,
    fallback_url: str | None = None,
) -> None:
    """One call, from building its session to hanging up; its turns are always all recorded."""
    _CALL.set(call)
    try:
        await _assemble_and_call(call, options, url, metrics, tally, fallback_url)
    finally:
        # turns never reached (the guard, a crash) are unanswered, silent for a whole patience
        while len(call.turns) < options.turns:
            call.turns.append(
                TurnRecord(
                    call.index,
                    len(call.turns) + 1,
                    time.monotonic(),
                    silence=options.patience,
                    gap=options.patience,
                )
            )
        call.done = True


async def _assemble_and_call(
    call: CallState,
    options: SimulateOptions,
    url: str | None,
    metrics: Metrics | None,
    tally: Tally,
    fallback_url: str | None = None,
) -> None:
    from livekit.agents import Agent, AgentSession

    from realtime_supervisor.testing import (
        RecordingAudioOutput,
        ScriptedCaller,
        SupervisedCall,
        room_less_options,
    )
    from realtime_supervisor_agent.models import build_llm, session_kwargs

    key = options.api_key.format(i=call.index)
    cfg = agent_config(options, key)
    # with a fallback, as the worker builds it with AGENT_FALLBACK_*: livekit's adapter over the
    # primary and the fallback (the same settings, another server); else the primary alone
    fallback = cfg if fallback_url is not None else None
    model = build_llm(cfg, fallback=fallback, base_url=url, fallback_base_url=fallback_url)
    # Not wrapped in `reconnectable`: its extra event layer is livekit's cost, not the watchdog's,
    # and the watchdog reconnects without it (it recycles the live socket).
    # room-less: no echo warm-up, as livekit sets for a simulated caller in a room (a warm-up
    # would mute a barge-in into the first reply whole, in every mode: see room_less_options)
    session: Any = AgentSession(**session_kwargs(cfg, llm=model), **room_less_options())

    def heard(_frame: Any) -> None:
        call.changed.set()

    caller = ScriptedCaller()
    speaker = RecordingAudioOutput(on_frame=heard)

    def started(_ev: Any) -> None:
        call.segments_started += 1

    def finished(ev: Any) -> None:
        call.finished[call.segments_started] = (time.monotonic(), bool(ev.interrupted))
        call.changed.set()

    speaker.on("playback_started", started)
    speaker.on("playback_finished", finished)
    session.input.audio = caller
    session.output.audio = speaker

    async def on_escalate(esc: Escalation) -> None:
        # the application's hook: here it only notes the escalation; the caller keeps calling
        call.escalations += 1
        _log.warning(
            "simulate.escalation session=%d reason=%s stall=%s",
            call.index,
            esc.reason,
            esc.stall_kind,
        )

    if options.mode == "watchdog":
        from realtime_supervisor.cue import HoldCue
        from realtime_supervisor.livekit.binding import Supervisor

        call.supervisor = Supervisor(
            session,
            options.watchdog,
            on_escalate=on_escalate,
            provider=options.provider,
            model=options.model_label,
            metrics=metrics,
            context={"simulate_session": str(call.index)},
            hold_cue=HoldCue.from_setting(options.hold_cue, field="--hold-cue"),
        )
        _tally_events(call.supervisor, tally)
    assembly = SupervisedCall(session, call.supervisor, model=model)
    guard = options.turns * (options.patience + GUARD_EXTRA) + options.final_silence
    try:
        async with asyncio.timeout(guard):
            await assembly.start(Agent(instructions=cfg.instructions, tools=_tools(options)))
            _tap_responses(call, session)
            if options.mode == "timer":
                call.timer = HandWrittenTimer(session, options.timer_seconds)
                await call.timer.start()
            await caller_loop(call, caller, speaker, session, options)
    except TimeoutError:
        call.timed_out = True
        _log.warning("simulate.session_guard session=%d after=%.0fs", call.index, guard)
    finally:
        caller.close()
        if call.timer is not None:
            await call.timer.aclose()
        await assembly.aclose()
        if call.supervisor is not None:
            tally.errors += _counter_total(call.supervisor.watchdog.counters, "errors")
            call.detections = list(getattr(call.supervisor.watchdog.counters, "detections", []))
        await speaker.aclose()


def _tools(options: SimulateOptions) -> list[Any]:
    """The chaos server's `tool_call` calls this function; it takes the seconds it is asked."""
    if not options.embedded or "tool_call" not in options.faults:
        return []
    from livekit.agents import function_tool

    from realtime_supervisor.chaos.faults import TOOL_NAME

    async def wait_for_backend(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "the backend answered"

    return [function_tool(wait_for_backend, name=TOOL_NAME, description="Wait for the backend.")]


def _counter_total(counters: Any, name: str) -> int:
    value = getattr(counters, name, 0)
    if isinstance(value, Mapping):
        return int(sum(value.values()))
    return int(value) if isinstance(value, int | float) else 0
