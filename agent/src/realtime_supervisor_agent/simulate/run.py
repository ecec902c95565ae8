"""A `simulate` run: N calls at once against one server, summarised from what the callers heard."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .call import Tally, capture_livekit_warnings, process_metrics, run_call
from .caller import CallState, TurnRecord
from .judge import Stats
from .options import SimulateOptions, credential_keys, openai_base

__all__ = ["RunState", "Summary", "metrics_endpoint", "run"]

_log = logging.getLogger("realtime_supervisor_agent.simulate")


@dataclass(slots=True)
class Summary:
    """The result of a run; `to_dict()` is the JSON summary (add keys, never rename them)."""

    mode: str
    sessions: int
    turns: int
    turns_answered: int
    turns_unanswered: int
    stalls: dict[str, int]
    recoveries: dict[str, dict[str, int]]
    escalations: int
    silence_seconds: Stats
    recovery_seconds: Stats
    overlapping_replies: int
    faults: str | None
    seed: int
    faulted_turns: int | None
    by_fault: dict[str, dict[str, int]] | None
    livekit_agents: str
    duration_seconds: float
    endpoint: str  # "embedded" | "openai" | "azure"
    escalation_reasons: dict[str, int] = field(default_factory=dict)
    timer_fires: int = 0
    watchdog_errors: int = 0
    sessions_timed_out: int = 0
    livekit_warnings: dict[str, int] = field(default_factory=dict)
    turn_details: list[dict[str, Any]] = field(default_factory=list)
    escalated_sessions: int = 0  # sessions whose on_escalate hook was called at least once
    sessions_crashed: int = 0  # calls that ended with an exception (simulate then exits 1)
    noises: int = 0  # short loud noises the caller made (`noise`)
    # playback segments that ended interrupted (barge-in, noise heard as speech, recoveries)
    interrupted_replies: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class RunState:
    """A running simulation, as the live view reads it."""

    options: SimulateOptions
    calls: list[CallState]
    tally: Tally
    started: float

    def snapshot(self) -> dict[str, Any]:
        turns = [t for c in self.calls for t in c.turns]
        done = [t for t in turns if t.answered or t.silence > 0]
        return {
            "mode": self.options.mode,
            "sessions": len(self.calls),
            "sessions_done": sum(c.done for c in self.calls),
            "turns_total": self.options.sessions * self.options.turns,
            "turns_done": len(done),
            "turns_answered": sum(t.answered for t in turns),
            "stalls": dict(self.tally.stalls),
            "recoveries": {a: dict(c) for a, c in self.tally.recoveries.items()},
            "escalations": sum(c.escalations for c in self.calls),
            "recovery": Stats.of(self.tally.recovery_seconds),
            "timer_fires": sum(len(c.timer.fired) for c in self.calls if c.timer is not None),
            "elapsed": time.monotonic() - self.started,
        }


async def run(
    options: SimulateOptions,
    *,
    on_start: Callable[[RunState], None] | None = None,
) -> Summary:
    """Run one simulation and summarise it. `on_start` gets the live state (for a view)."""
    import livekit.agents as lk

    metrics = process_metrics() if options.mode == "watchdog" else None
    tally = Tally()
    started = time.monotonic()
    calls = [CallState(i, options.api_key.format(i=i)) for i in range(options.sessions)]
    state = RunState(options, calls, tally, started)
    if on_start is not None:
        on_start(state)
    async with contextlib.AsyncExitStack() as stack:
        server: Any = None
        url: str | None = options.realtime_url
        fallback_url: str | None = None
        if options.embedded:
            from realtime_supervisor.chaos import ChaosServer

            assert options.reply_seconds is not None
            server = await stack.enter_async_context(
                ChaosServer(
                    faults=options.faults, seed=options.seed, reply_seconds=options.reply_seconds
                )
            )
            url = server.url
            if options.fallback:
                # the fallback deployment: healthy, its own server (its sessions are not judged)
                fallback = await stack.enter_async_context(
                    ChaosServer(
                        faults="clean", seed=options.seed, reply_seconds=options.reply_seconds
                    )
                )
                fallback_url = openai_base(fallback.url)
        elif options.azure_endpoint is not None:
            url = None
        if url is not None:
            url = openai_base(url)
        stack.enter_context(capture_livekit_warnings())
        tasks = [
            asyncio.create_task(
                run_call(call, options, url, metrics, tally, fallback_url=fallback_url),
                name=f"simulate-session-{call.index}",
            )
            for call in calls
        ]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for call, result in zip(calls, results, strict=True):
            if isinstance(result, BaseException):
                call.crashed = True
                _log.error("simulate.session_failed session=%d error=%r", call.index, result)
        if server is not None:
            _attach_faults(calls, server, options)
        _attach_detections(calls)
    return _summarise(state, lk.__version__, time.monotonic() - started)


def _attach_faults(calls: Sequence[CallState], server: Any, options: SimulateOptions) -> None:
    for call in calls:
        record = None
        for key in credential_keys(call.key):
            record = server.sessions.get(key)
            if record is not None:
                break
        if record is None:
            continue
        by_turn: dict[int, Any] = {}
        for injection in record.injected:
            by_turn.setdefault(injection.turn, injection)
        for turn in call.turns:
            found = by_turn.get(turn.turn)
            turn.fault = found.kind if found is not None else None
            turn.fault_onset = found.onset if found is not None else None


def _attach_detections(calls: Sequence[CallState]) -> None:
    """Each watchdog verdict belongs to the turn whose end last preceded its silence."""
    for call in calls:
        for detection in call.detections:
            turn = _turn_at(call.turns, detection[1]) or _turn_at(call.turns, detection[2])
            if turn is not None:
                turn.detections.append(detection)


def _summarise(state: RunState, lk_version: str, duration: float) -> Summary:
    from realtime_supervisor.chaos.faults import FAULT_KINDS

    options, calls, tally = state.options, state.calls, state.tally
    turns = [t for c in calls for t in c.turns]
    answered = sum(t.answered for t in turns)
    by_fault: dict[str, dict[str, int]] | None = None
    faulted: int | None = None
    if options.embedded:
        by_fault = {}
        for t in turns:
            entry = by_fault.setdefault(t.fault or "clean", {"turns": 0, "answered": 0})
            entry["turns"] += 1
            entry["answered"] += int(t.answered)
        faulted = sum(t.fault in FAULT_KINDS for t in turns)
    recoveries = {
        action: {"success": c.get("success", 0), "failure": c.get("failure", 0)}
        for action, c in sorted(tally.recoveries.items())
    }
    recovery_seconds = list(tally.recovery_seconds)
    fires = [f for c in calls if c.timer is not None for f in c.timer.fired]
    if options.mode == "timer":
        ok = 0
        for c in calls:
            if c.timer is None:
                continue
            for at in c.timer.fired:
                turn = _turn_at(c.turns, at)
                if turn is not None and turn.answered and turn.answer_at is not None:
                    ok += 1
                    recovery_seconds.append(max(0.0, turn.answer_at - at))
        recoveries = {"generate_reply": {"success": ok, "failure": len(fires) - ok}}
    warnings: Counter[str] = Counter(w for c in calls for _, w in c.warnings)
    return Summary(
        mode=options.mode,
        sessions=len(calls),
        turns=len(turns),
        turns_answered=answered,
        turns_unanswered=len(turns) - answered,
        stalls=dict(sorted(tally.stalls.items())),
        recoveries=recoveries,
        escalations=sum(c.escalations for c in calls),
        silence_seconds=Stats.of([t.silence for t in turns]),
        recovery_seconds=Stats.of(recovery_seconds),
        overlapping_replies=sum(t.overlapping for t in turns),
        faults=options.faults if options.embedded else None,
        seed=options.seed,
        faulted_turns=faulted,
        by_fault=dict(sorted(by_fault.items())) if by_fault is not None else None,
        livekit_agents=lk_version,
        duration_seconds=round(duration, 3),
        endpoint="embedded" if options.embedded else options.provider,
        escalation_reasons=dict(sorted(tally.escalations.items())),
        timer_fires=len(fires),
        watchdog_errors=tally.errors,
        sessions_timed_out=sum(c.timed_out for c in calls),
        livekit_warnings=dict(sorted(warnings.items())),
        turn_details=[_turn_dict(t) for t in turns],
        escalated_sessions=sum(c.escalations > 0 for c in calls),
        sessions_crashed=sum(c.crashed for c in calls),
        noises=sum(c.noises for c in calls),
        interrupted_replies=sum(i for c in calls for _, i in c.finished.values()),
    )


def _turn_at(turns: Sequence[TurnRecord], at: float) -> TurnRecord | None:
    found = None
    for t in turns:
        if t.ended_at <= at:
            found = t
    return found


def _turn_dict(t: TurnRecord) -> dict[str, Any]:
    def rel(x: float | None) -> float | None:
        return None if x is None else round(x - t.ended_at, 3)

    return {
        "session": t.session,
        "turn": t.turn,
        "fault": t.fault,
        "answered": t.answered,
        "first_audio_seconds": rel(t.first_audio_at),
        # turn end -> the first agent audio of any kind, the hold cue included (the bench shows
        # it next to silence_seconds, turn end -> the answer: a cue is never the answer)
        "first_sound_seconds": rel(t.first_audio_at),
        "silence_seconds": round(t.silence, 3),
        # turn end -> the whole answer heard (None when never answered)
        "heard_seconds": rel(t.heard_at),
        "overlapping": t.overlapping,
        "gap_seconds": round(t.gap, 3),
        "interrupted": t.interrupted,
        "fault_onset_seconds": rel(t.fault_onset),
        # [kind, silence_since, detected_at], relative to the turn's end
        "detections": [[k, rel(since), rel(at)] for k, since, at in t.detections],
    }


# -- the metrics endpoint -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def metrics_endpoint(host: str, port: int) -> AsyncIterator[str]:
    """Serve prometheus_client's default registry at http://host:port/metrics; yields the URL."""
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    async def handle(_request: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = port
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            bound = int(sockets[0].getsockname()[1])
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{bound}/metrics"
    finally:
        await runner.cleanup()
