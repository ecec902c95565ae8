"""`simulate`: many supervised voice calls in one process, against a fake (or real) Realtime server.

Each session is a real `AgentSession` with the real livekit OpenAI plugin. Its microphone is a
`ScriptedCaller` (tone bursts a server's voice detection hears as a person taking turns) and its
speaker a `RecordingAudioOutput` (plays in real time and records what was heard). By default the
server is an embedded `ChaosServer` injecting the `--faults` schedule; `--realtime-url` or
`--azure-endpoint` point the same calls at any Realtime endpoint.

The caller behaves like a person:
1. It speaks for 0.6 s; the turn ends when it stops speaking.
2. It then listens. A turn is answered when a whole answer has played at the output: against the
   chaos server, `reply_seconds` of answer tone (440 Hz) in one playback segment (a preamble alone,
   660 Hz, does not answer); against another server, a reply that played to its end, not
   interrupted, with no livekit warning that a reply was lost.
3. Once answered it waits for the reply to finish playing, pauses briefly, and takes the next turn.
   When it hears nothing for `patience` seconds it gives up on the turn and speaks again.

Modes: `watchdog` (the Supervisor attached), `none` (the same run unsupervised) and `timer` (the
hand-written timer a user would write instead, `HandWrittenTimer`). `run(options)` is the library
entry point; `main(argv)` the CLI behind `realtime-supervisor simulate`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import dataclasses
import hashlib
import itertools
import json
import logging
import math
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from realtime_supervisor.config import WatchdogConfig
from realtime_supervisor.errors import ConfigError

__all__ = [
    "MODES",
    "HandWrittenTimer",
    "SimulateOptions",
    "Stats",
    "Summary",
    "TurnRecord",
    "build_parser",
    "main",
    "metrics_endpoint",
    "run",
]

Mode = Literal["watchdog", "none", "timer"]
MODES: Final[tuple[Mode, ...]] = ("watchdog", "none", "timer")

_log = logging.getLogger("realtime_supervisor_agent.simulate")

SPEAK_SECONDS: Final = 0.6  # one caller utterance: long enough for any server VAD
PAUSE_SECONDS: Final = 0.5  # the caller's pause after a reply, before speaking again
GUARD_EXTRA: Final = 20.0  # per turn, on top of patience, in the session's hard guard
READY_TIMEOUT: Final = 15.0  # session.start() to the agent listening
CLOSE_TIMEOUT: Final = 10.0  # session.aclose(): a wedged session must not hold the run
ANSWER_TOLERANCE: Final = 1e-6
SAY_SLACK: Final = 2.0  # an utterance not consumed within this much longer: the session is gone

# livekit's messages that mean a reply was lost (logged on livekit.agents on 1.8, on
# livekit.plugins.openai on 1.5): the "not answered" evidence against a server we cannot read.
_LOST_REPLY: Final = (
    "expected to receive only one message generation",
    "in-progress generation discarded due to",
    "failed to generate a reply",
    "skipping new realtime generation",
    "Text message received from Realtime API with audio",
    "discarding response that arrived after it was timed out",
    "AgentSession is closing due to unrecoverable error",
)
_LIVEKIT_LOGGERS: Final = ("livekit.agents", "livekit.plugins.openai")


# -- options and results -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimulateOptions:
    """One simulation run. Validated on construction; errors name the CLI flag."""

    sessions: int = 4
    turns: int = 6
    mode: Mode = "watchdog"
    # the chaos schedule (embedded server only); see supervisor/chaos/faults.py
    faults: str = "clean"
    seed: int = 0
    # seconds of silence after which the caller gives up on a turn and speaks again
    patience: float = 15.0
    # embedded: the chaos server's answer length. Remote: the answer length to expect (None = a
    # reply that plays to its end answers, whatever its length).
    reply_seconds: float | None = 1.0
    # remote endpoints (at most one); None = the embedded chaos server
    realtime_url: str | None = None
    azure_endpoint: str | None = None
    azure_deployment: str | None = None
    api_version: str | None = None
    # per session; `{i}` is the session index. Distinct keys keep chaos sessions apart.
    api_key: str = "sk-simulate-{i}"
    model: str = "gpt-realtime"
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    # the hand-written timer's wait (mode timer)
    timer_seconds: float = 5.0
    # the caller speaks again this long into the agent's reply, on odd turns (None: never)
    barge_in: float | None = None
    # after its last turn the caller stays on the line, silent, this long before hanging up
    final_silence: float = 0.0

    def __post_init__(self) -> None:
        def positive_int(flag: str, value: object) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(flag, f"expected an integer >= 1, got {value!r}")

        def seconds(flag: str, value: object) -> None:
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ConfigError(flag, f"expected a number of seconds > 0, got {value!r}")

        positive_int("--sessions", self.sessions)
        positive_int("--turns", self.turns)
        if self.mode not in MODES:
            raise ConfigError("--mode", f"expected one of {', '.join(MODES)}, got {self.mode!r}")
        seconds("--patience", self.patience)
        seconds("--timer-seconds", self.timer_seconds)
        if self.barge_in is not None:
            seconds("--barge-in", self.barge_in)
        if self.final_silence != 0.0:
            seconds("--final-silence", self.final_silence)
        if self.reply_seconds is not None:
            seconds("--reply-seconds", self.reply_seconds)
        if self.embedded and self.reply_seconds is None:
            raise ConfigError("--reply-seconds", "the embedded chaos server needs a reply length")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError("--seed", f"expected an integer, got {self.seed!r}")
        if self.realtime_url is not None and self.azure_endpoint is not None:
            raise ConfigError("--realtime-url", "give either --realtime-url or --azure-endpoint")
        if self.realtime_url is not None:
            _check_url("--realtime-url", self.realtime_url, ("ws", "wss", "http", "https"))
        if self.azure_endpoint is not None:
            _check_url("--azure-endpoint", self.azure_endpoint, ("http", "https"))
            if not self.azure_deployment:
                raise ConfigError("--azure-deployment", "required with --azure-endpoint")
        elif self.azure_deployment is not None or self.api_version is not None:
            flag = "--azure-deployment" if self.azure_deployment is not None else "--api-version"
            raise ConfigError(flag, "applies only with --azure-endpoint")
        if self.embedded:
            from realtime_supervisor.chaos.faults import parse_schedule

            try:
                parse_schedule(self.faults, self.seed)
            except ConfigError as exc:
                raise ConfigError("--faults", str(exc).removeprefix("faults: ")) from exc
        try:
            keys = {self.api_key.format(i=i) for i in range(min(self.sessions, 2))}
        except (KeyError, IndexError, ValueError, AttributeError):
            # the template is not echoed: it may be a real key
            raise ConfigError(
                "--api-key", "expected a key, or a template whose only field is {i}"
            ) from None
        if not all(k.strip() for k in keys):
            raise ConfigError("--api-key", "expected a non-empty key")
        if not isinstance(self.watchdog, WatchdogConfig):
            raise ConfigError("watchdog", "expected a WatchdogConfig")

    @property
    def embedded(self) -> bool:
        """True when the run brings its own chaos server."""
        return self.realtime_url is None and self.azure_endpoint is None

    @property
    def provider(self) -> str:
        return "azure" if self.azure_endpoint is not None else "openai"

    @property
    def model_label(self) -> str:
        return self.azure_deployment or self.model


@dataclass(frozen=True, slots=True)
class Stats:
    """p50, p95 and max of a sample (nearest rank); None when there were no samples."""

    p50: float | None = None
    p95: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            return cls()
        ordered = sorted(values)

        def rank(p: float) -> float:
            return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)], 3)

        return cls(rank(0.50), rank(0.95), round(ordered[-1], 3))


@dataclass(slots=True)
class TurnRecord:
    """What the caller lived through in one turn."""

    session: int
    turn: int
    ended_at: float  # monotonic: the caller stopped speaking
    first_audio_at: float | None = None  # first agent audio played after the turn ended
    answer_at: float | None = None  # start of the answer audio that answered the turn
    heard_at: float | None = None  # when the whole answer had been heard (its playback ended)
    answered: bool = False
    silence: float = 0.0  # turn end -> answer_at, or patience when unanswered
    overlapping: bool = False  # two responses' audio interleaved at the output
    fault: str | None = None  # what the chaos server injected in this turn (embedded)
    # the longest stretch without agent audio from turn end until the answer had played (the
    # silence the caller lived through, gaps inside a reply included), or patience when unanswered
    gap: float = 0.0
    interrupted: bool = False  # the caller spoke again into the reply on purpose (barge_in)
    fault_onset: float | None = None  # monotonic: when the chaos server's fault took effect
    # the watchdog's verdicts in this turn: (kind, silence_since, detected_at), monotonic
    detections: list[tuple[str, float, float]] = field(default_factory=list)


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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -- the hand-written timer (the baseline a user would write) -------------------------------------


class HandWrittenTimer:
    """After a user turn, if the agent has not started speaking within `seconds`, ask for a reply.

    The baseline for benchmarks: the twenty lines a developer writes on the first dead call,
    using only AgentSession's public events. Attached like the Supervisor.
    """

    def __init__(self, session: Any, seconds: float = 5.0) -> None:
        self._session = session
        self._seconds = seconds
        self._task: asyncio.Task[None] | None = None
        self.fired: list[float] = []  # monotonic times it asked for a reply

    async def start(self) -> None:
        self._session.on("user_state_changed", self._on_user_state)
        self._session.on("agent_state_changed", self._on_agent_state)

    def _on_user_state(self, ev: Any) -> None:
        if ev.old_state == "speaking" and ev.new_state == "listening":
            self._cancel()
            self._task = asyncio.get_running_loop().create_task(self._fire())

    def _on_agent_state(self, ev: Any) -> None:
        if ev.new_state == "speaking":
            self._cancel()

    async def _fire(self) -> None:
        await asyncio.sleep(self._seconds)
        self.fired.append(time.monotonic())
        self._session.generate_reply()

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def aclose(self) -> None:
        self._session.off("user_state_changed", self._on_user_state)
        self._session.off("agent_state_changed", self._on_agent_state)
        self._cancel()


# -- what the watchdog did, tallied as it records its metrics -------------------------------------


@dataclass(slots=True)
class _Tally:
    """The watchdog's activity by kind, action and outcome, across the run's sessions."""

    stalls: Counter[str] = field(default_factory=Counter)
    recoveries: dict[str, Counter[str]] = field(default_factory=dict)
    escalations: Counter[str] = field(default_factory=Counter)
    recovery_seconds: list[float] = field(default_factory=list)
    errors: int = 0


class _TallySink:
    """A per-session metrics sink that records into the real one and into the run's tally.

    The watchdog's own counters are totals; the summary needs them by kind and action, exactly
    as the metrics see them, so the sink is teed rather than the tally recomputed.
    """

    def __init__(self, inner: Any, tally: _Tally) -> None:
        self._inner = inner
        self._tally = tally

    def stall(self, kind: str) -> None:
        self._tally.stalls[kind] += 1
        self._inner.stall(kind)

    def recovery(self, action: str, outcome: str, seconds: float | None) -> None:
        self._tally.recoveries.setdefault(action, Counter())[outcome] += 1
        if outcome == "success" and seconds is not None:
            self._tally.recovery_seconds.append(seconds)
        self._inner.recovery(action, outcome, seconds)

    def escalation(self, reason: str) -> None:
        self._tally.escalations[reason] += 1
        self._inner.escalation(reason)

    def watchdog_error(self) -> None:
        self._tally.errors += 1
        self._inner.watchdog_error()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _TallyMetrics:
    """`Metrics` as the Supervisor sees it, handing out teed per-session sinks."""

    def __init__(self, inner: Any, tally: _Tally) -> None:
        self._inner = inner
        self._tally = tally

    def session(self, provider: str, model: str) -> _TallySink:
        return _TallySink(self._inner.session(provider, model), self._tally)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def process_metrics() -> Any:
    """The process's `supervisor.metrics.Metrics` on prometheus_client's default REGISTRY.

    One per process (prometheus_client refuses a second registration of the same names), shared
    with anything else in the process that asks for the default.
    """
    from realtime_supervisor.metrics import default_metrics

    return default_metrics()


# -- per-session plumbing ------------------------------------------------------------------------


@dataclass(slots=True)
class _Call:
    """One simulated call's state, shared by its caller loop, its log capture and the view."""

    index: int
    key: str
    turns: list[TurnRecord] = field(default_factory=list)
    warnings: list[tuple[float, str]] = field(default_factory=list)
    # playback segments: number -> (finished at, interrupted)
    finished: dict[int, tuple[float, bool]] = field(default_factory=dict)
    segments_started: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    timer: HandWrittenTimer | None = None
    supervisor: Any = None
    escalations: int = 0
    timed_out: bool = False
    done: bool = False
    detections: list[tuple[str, float, float]] = field(default_factory=list)


_CALL: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("simulate_call", default=None)


class _LostReplyCapture(logging.Handler):
    """Routes livekit's lost-reply warnings to the call whose task logged them.

    Each call runs in its own task, and livekit's tasks for that call are created inside it, so
    they inherit the call's context variable.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        call = _CALL.get()
        if call is None:
            return
        try:
            message = record.getMessage()
        except Exception:
            return
        for prefix in _LOST_REPLY:
            if prefix in message:
                call.warnings.append((time.monotonic(), prefix))
                call.changed.set()
                return


_CAPTURE = _LostReplyCapture()
_capture_users = 0
_capture_levels: dict[str, int] = {}


@contextlib.contextmanager
def _capture_livekit_warnings() -> Iterator[None]:
    """Attach the capture while at least one run is going (runs may overlap in one process)."""
    global _capture_users
    if _capture_users == 0:
        for name in _LIVEKIT_LOGGERS:
            lg = logging.getLogger(name)
            _capture_levels[name] = lg.level
            # a handler only sees records the logger's level lets be created
            if lg.getEffectiveLevel() > logging.WARNING:
                lg.setLevel(logging.WARNING)
            lg.addHandler(_CAPTURE)
    _capture_users += 1
    try:
        yield
    finally:
        _capture_users -= 1
        if _capture_users == 0:
            for name in _LIVEKIT_LOGGERS:
                lg = logging.getLogger(name)
                lg.removeHandler(_CAPTURE)
                lg.setLevel(_capture_levels.pop(name, logging.NOTSET))


# -- judging what was heard -----------------------------------------------------------------------


def _sequence(level: int) -> int:
    from realtime_supervisor.chaos.vad import sequence_of

    return sequence_of(level)


def _overlapping(frames: Sequence[Any]) -> bool:
    """Two responses interleaved: A, then B, then A again; or two segments at the same time."""
    seen: list[int] = []
    for f in frames:
        if f.kind is None:
            continue
        seq = _sequence(f.level)
        if seen and seen[-1] == seq:
            continue
        if seq in seen:
            return True
        seen.append(seq)
    ordered = sorted(frames, key=lambda f: f.at)
    return any(
        b.segment != a.segment and b.at < a.at + a.duration - 1e-3
        for a, b in itertools.pairwise(ordered)
    )


def _answer_in(
    frames: Sequence[Any], call: _Call, after: float, reply_seconds: float | None
) -> tuple[float | None, int | None]:
    """(start of the answer audio, its segment) of the first whole answer after `after`."""
    by_segment: dict[int, list[Any]] = {}
    for f in frames:
        if f.at >= after:
            by_segment.setdefault(f.segment, []).append(f)
    for segment, seg_frames in sorted(by_segment.items()):
        answer = [f for f in seg_frames if f.kind == "answer"]
        tones = any(f.kind is not None for f in seg_frames)
        if tones and reply_seconds is not None:
            # the chaos server's marking: enough answer tone in one segment is a whole answer
            if sum(f.duration for f in answer) >= reply_seconds - ANSWER_TOLERANCE:
                return answer[0].at, segment
            continue
        finished = call.finished.get(segment)
        if finished is None or finished[1]:
            continue  # still playing, or interrupted
        if tones and not answer:
            continue  # a preamble alone
        if any(after <= at <= finished[0] for at, _ in call.warnings):
            continue  # livekit said a reply was lost while this one played
        first = answer[0] if answer else seg_frames[0]
        return first.at, segment
    return None, None


# -- one call --------------------------------------------------------------------------------------


async def _wait_changed(call: _Call, seconds: float) -> None:
    """Until something is heard or played out, at most `seconds`."""
    call.changed.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(call.changed.wait(), max(0.0, seconds))


async def _caller_loop(
    call: _Call, caller: Any, speaker: Any, session: Any, options: SimulateOptions
) -> None:
    await _until_listening(session)
    for number in range(1, options.turns + 1):
        with contextlib.suppress(TimeoutError):
            # nobody reads the microphone of a session livekit has torn down: the caller then
            # speaks into a dead line, and hears nothing for a whole patience
            await asyncio.wait_for(caller.say(SPEAK_SECONDS), SPEAK_SECONDS + SAY_SLACK)
        record = TurnRecord(call.index, number, ended_at=time.monotonic())
        call.turns.append(record)
        if options.barge_in is not None and number % 2 == 1 and number < options.turns:
            await _barge_in(call, speaker, record, options)
            continue
        await _listen(call, speaker, record, options)
        call.changed.set()
    if options.final_silence > 0:
        await asyncio.sleep(options.final_silence)


async def _barge_in(
    call: _Call, speaker: Any, record: TurnRecord, options: SimulateOptions
) -> None:
    """Wait for the reply to start, then let it play `barge_in` seconds: the caller cuts in."""
    assert options.barge_in is not None
    t = record.ended_at
    deadline = t + options.patience
    while not speaker.frames_after(t) and time.monotonic() < deadline:
        await _wait_changed(call, deadline - time.monotonic())
    frames = speaker.frames_after(t)
    record.interrupted = True
    if frames:
        record.first_audio_at = frames[0].at
        record.silence = record.gap = max(0.0, frames[0].at - t)
        await asyncio.sleep(max(0.0, frames[0].at + options.barge_in - time.monotonic()))
    else:
        record.silence = record.gap = options.patience


async def _until_listening(session: Any) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while str(getattr(session, "agent_state", "listening")) != "listening":
        if time.monotonic() > deadline:
            break  # speak anyway: a session that never listens is what the run measures
        await asyncio.sleep(0.05)


async def _listen(call: _Call, speaker: Any, record: TurnRecord, options: SimulateOptions) -> None:
    """Listen after a turn until it is answered and the reply has played, or patience runs out."""
    t = record.ended_at
    while True:
        frames = speaker.frames_after(t)
        if frames and record.first_audio_at is None:
            record.first_audio_at = frames[0].at
        answer_at, segment = _answer_in(frames, call, t, options.reply_seconds)
        now = time.monotonic()
        if answer_at is not None and segment is not None:
            record.answered = True
            record.answer_at = answer_at
            record.silence = max(0.0, answer_at - t)
            # up to the end of the answer heard so far: a pause inside the answer is lived too
            heard_until = max(f.at + f.duration for f in frames if f.segment == segment)
            record.gap = _longest_gap(frames, t, heard_until)
            await _until_played(call, speaker, segment, options)
            finished = call.finished.get(segment)
            record.heard_at = (
                finished[0]
                if finished is not None
                else max(f.at + f.duration for f in speaker.frames_after(t) if f.segment == segment)
            )
            break
        last_sound = max([t] + [f.at + f.duration for f in frames])
        if last_sound > now:
            await _wait_changed(call, last_sound - now + 0.05)
            continue
        give_up = last_sound + options.patience
        if now >= give_up:
            record.silence = record.gap = options.patience
            break
        await _wait_changed(call, give_up - now)
    record.overlapping = _overlapping(speaker.frames_after(t))


def _longest_gap(frames: Sequence[Any], start: float, end: float) -> float:
    """The longest stretch in [start, end] with no frame playing."""
    longest, covered = 0.0, start
    for f in sorted(frames, key=lambda f: f.at):
        if f.at >= end:
            break
        longest = max(longest, f.at - covered)
        covered = max(covered, f.at + f.duration)
    return round(max(longest, end - covered), 6)


async def _until_played(call: _Call, speaker: Any, segment: int, options: SimulateOptions) -> None:
    """The caller lets the reply finish (bounded by patience), then pauses before speaking."""
    deadline = time.monotonic() + options.patience
    while segment not in call.finished and time.monotonic() < deadline:
        frames = speaker.frames
        end = max((f.at + f.duration for f in frames[-1:]), default=0.0)
        await _wait_changed(
            call, min(deadline, max(end, time.monotonic() + 0.1)) - time.monotonic()
        )
    await asyncio.sleep(PAUSE_SECONDS)


def _credential_key(options: SimulateOptions, key: str) -> tuple[str, ...]:
    """The chaos server's session keys for this credential (it hashes the header it receives)."""
    values = (f"Bearer {key}", key)
    return tuple("cred-" + hashlib.sha256(v.encode()).hexdigest()[:12] for v in values)


def _agent_config(options: SimulateOptions, key: str) -> Any:
    from realtime_supervisor_agent.config import AgentConfig

    if options.azure_endpoint is not None:
        return AgentConfig(
            provider="azure",
            azure_endpoint=options.azure_endpoint,
            azure_deployment=options.azure_deployment,
            azure_api_key=key,
            api_version=options.api_version,
            model=options.model_label,
        )
    return AgentConfig(provider="openai", openai_api_key=key, model=options.model)


async def _run_call(
    call: _Call,
    options: SimulateOptions,
    url: str | None,
    metrics: Any,
    tally: _Tally,
) -> None:
    from livekit.agents import Agent, AgentSession

    from realtime_supervisor.testing import RecordingAudioOutput, ScriptedCaller, session_options
    from realtime_supervisor_agent.models import build_realtime_model, session_kwargs

    _CALL.set(call)
    key = options.api_key.format(i=call.index)
    cfg = _agent_config(options, key)
    model = build_realtime_model(cfg, base_url=url)
    # Not wrapped in `reconnectable`: its extra event layer is livekit's cost, not the watchdog's,
    # and the watchdog reconnects without it (it recycles the live socket).
    llm: Any = model
    kwargs = session_kwargs(cfg, llm=llm)
    kwargs.update(session_options())
    session: Any = AgentSession(**kwargs)

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

    async def on_escalate(esc: Any) -> None:
        # the application's hook: here it only notes the escalation; the caller keeps calling
        call.escalations += 1
        _log.warning(
            "simulate.escalation session=%d reason=%s stall=%s",
            call.index,
            esc.reason,
            esc.stall_kind,
        )

    if options.mode == "watchdog":
        from realtime_supervisor.livekit.binding import Supervisor

        call.supervisor = Supervisor(
            session,
            options.watchdog,
            on_escalate=on_escalate,
            provider=options.provider,
            model=options.model_label,
            metrics=_TallyMetrics(metrics, tally),
            context={"simulate_session": str(call.index)},
        )
    guard = options.turns * (options.patience + GUARD_EXTRA) + options.final_silence
    try:
        async with asyncio.timeout(guard):
            agent = Agent(instructions=cfg.instructions, tools=_tools(options))
            await session.start(agent, record=False)
            if call.supervisor is not None:
                await call.supervisor.start()
            if options.mode == "timer":
                call.timer = HandWrittenTimer(session, options.timer_seconds)
                await call.timer.start()
            await _caller_loop(call, caller, speaker, session, options)
    except TimeoutError:
        call.timed_out = True
        _log.warning("simulate.session_guard session=%d after=%.0fs", call.index, guard)
    finally:
        caller.close()
        if call.timer is not None:
            await call.timer.aclose()
        if call.supervisor is not None:
            await call.supervisor.aclose()
            tally.errors += _counter_total(call.supervisor.watchdog.counters, "errors")
            call.detections = list(getattr(call.supervisor.watchdog.counters, "detections", []))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(session.aclose(), CLOSE_TIMEOUT)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(model.aclose(), CLOSE_TIMEOUT)
        await speaker.aclose()
        # turns never reached (the guard) are unanswered, silent for a whole patience
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


# -- the run ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class RunState:
    """A running simulation, as the live view reads it."""

    options: SimulateOptions
    calls: list[_Call]
    tally: _Tally
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
    tally = _Tally()
    started = time.monotonic()
    calls = [_Call(i, options.api_key.format(i=i)) for i in range(options.sessions)]
    state = RunState(options, calls, tally, started)
    if on_start is not None:
        on_start(state)
    async with contextlib.AsyncExitStack() as stack:
        server: Any = None
        url: str | None = options.realtime_url
        if options.embedded:
            from realtime_supervisor.chaos import ChaosServer

            assert options.reply_seconds is not None
            server = await stack.enter_async_context(
                ChaosServer(
                    faults=options.faults, seed=options.seed, reply_seconds=options.reply_seconds
                )
            )
            url = server.url
        elif options.azure_endpoint is not None:
            url = None
        if url is not None:
            url = _openai_base(url)
        stack.enter_context(_capture_livekit_warnings())
        tasks = [
            asyncio.create_task(
                _run_call(call, options, url, metrics, tally),
                name=f"simulate-session-{call.index}",
            )
            for call in calls
        ]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for call, result in zip(calls, results, strict=True):
            if isinstance(result, BaseException):
                _log.error("simulate.session_failed session=%d error=%r", call.index, result)
        if server is not None:
            _attach_faults(calls, server, options)
        _attach_detections(calls)
    return _summarise(state, lk.__version__, time.monotonic() - started)


def _openai_base(url: str) -> str:
    """The plugin's base_url: it appends `/realtime`, so a URL given with it is trimmed."""
    url = url.rstrip("/")
    return url.removesuffix("/realtime")


def _attach_faults(calls: Sequence[_Call], server: Any, options: SimulateOptions) -> None:
    for call in calls:
        record = None
        for key in _credential_key(options, call.key):
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


def _attach_detections(calls: Sequence[_Call]) -> None:
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


# -- the CLI ---------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _check_url(flag: str, value: str, schemes: tuple[str, ...]) -> None:
    try:
        parts = urlsplit(value)
        ok = (
            parts.scheme in schemes
            and bool(parts.hostname)
            and parts.username is None
            and not parts.query
            and not parts.fragment
        )
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        ok = False
    if not ok:
        # the value is not echoed: a URL may carry credentials
        accepted = ", ".join(s + "://" for s in schemes)
        raise ConfigError(flag, f"expected a URL with a host and no query ({accepted})")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _seconds(*, zero: bool = False) -> Callable[[str], float]:
    what = ">= 0" if zero else "> 0"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected seconds {what}, got {text!r}") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(f"expected seconds {what}, got {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The `realtime-supervisor simulate` argument parser."""
    p = _Parser(
        prog="realtime-supervisor simulate",
        description="Run N supervised voice calls against the chaos server (or a Realtime "
        "endpoint) and summarise what the callers heard.",
    )
    p.add_argument("--sessions", type=_count, default=4, help="concurrent calls (default 4)")
    p.add_argument("--turns", type=_count, default=6, help="caller turns per call (default 6)")
    p.add_argument(
        "--faults",
        default=None,
        help="chaos schedule for the embedded server (default clean), e.g. "
        "clean,multi_message,stall_mid,drop_mid,no_response",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for random:P faults (default 0)")
    modes = p.add_mutually_exclusive_group()
    modes.add_argument(
        "--mode", choices=MODES, default=None, help="watchdog (default), none, or timer"
    )
    modes.add_argument(
        "--no-watchdog", action="store_true", help="the same run unsupervised (--mode none)"
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="run unsupervised, then with --mode (default watchdog), and print both",
    )
    p.add_argument(
        "--patience",
        type=_seconds(),
        default=15.0,
        help="seconds of silence before the caller speaks again (default 15)",
    )
    p.add_argument(
        "--reply-seconds",
        type=_seconds(),
        default=None,
        help="chaos server answer length (default 1.0); remote: the answer length to expect",
    )
    p.add_argument(
        "--timer-seconds",
        type=_seconds(),
        default=5.0,
        help="--mode timer: seconds without agent audio before generate_reply (default 5)",
    )
    remote = p.add_mutually_exclusive_group()
    remote.add_argument("--realtime-url", help="an OpenAI-style Realtime URL (ws/wss/http/https)")
    remote.add_argument("--azure-endpoint", help="an Azure OpenAI endpoint (http/https)")
    p.add_argument("--azure-deployment", help="the Azure realtime deployment")
    p.add_argument(
        "--api-version", help="Azure api-version (the legacy path), e.g. 2024-10-01-preview"
    )
    p.add_argument(
        "--api-key",
        default="sk-simulate-{i}",
        help="API key per call; {i} is the call index (default sk-simulate-{i})",
    )
    p.add_argument("--model", default="gpt-realtime", help="model name (default gpt-realtime)")
    p.add_argument("--metrics-port", type=_port, default=None, help="serve /metrics on this port")
    p.add_argument(
        "--metrics-host", default="127.0.0.1", help="metrics address (default 127.0.0.1)"
    )
    p.add_argument(
        "--hold",
        type=_seconds(zero=True),
        default=0.0,
        help="keep /metrics up this long after the run (default 0)",
    )
    p.add_argument("--json", dest="json_path", default=None, help="write the summary here")
    p.add_argument(
        "--log-level",
        default="WARNING",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
        help="log level on stderr (default WARNING)",
    )
    return p


def options_from_args(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> list[SimulateOptions]:
    """The runs the arguments ask for (two with --compare); ConfigError names the flag."""
    watchdog = WatchdogConfig.from_env(env)
    remote = args.realtime_url is not None or args.azure_endpoint is not None
    if remote and args.faults is not None:
        raise ConfigError("--faults", "applies only to the embedded chaos server")
    mode: Mode = "none" if args.no_watchdog else (args.mode or "watchdog")
    if args.compare and mode == "none":
        raise ConfigError("--compare", "compares none with --mode watchdog or timer")
    if not args.metrics_host.strip():
        raise ConfigError("--metrics-host", "expected a host name or address")
    if args.hold and args.metrics_port is None:
        raise ConfigError("--hold", "applies only with --metrics-port")
    reply: float | None = args.reply_seconds
    if reply is None and not remote:
        reply = 1.0
    base = SimulateOptions(
        sessions=args.sessions,
        turns=args.turns,
        mode=mode,
        faults=args.faults or "clean",
        seed=args.seed,
        patience=args.patience,
        reply_seconds=reply,
        realtime_url=args.realtime_url,
        azure_endpoint=args.azure_endpoint,
        azure_deployment=args.azure_deployment,
        api_version=args.api_version,
        api_key=args.api_key,
        model=args.model,
        watchdog=watchdog,
        timer_seconds=args.timer_seconds,
    )
    if args.compare:
        return [dataclasses.replace(base, mode="none"), base]
    return [base]


def preflight(options: SimulateOptions) -> None:
    """Build one session's model (no network) so a conflicting environment fails before a run."""
    from realtime_supervisor_agent.models import build_realtime_model

    url = options.realtime_url or ("ws://127.0.0.1:1/v1" if options.embedded else None)
    model = build_realtime_model(
        _agent_config(options, options.api_key.format(i=0)),
        base_url=_openai_base(url) if url is not None else None,
    )
    del model


def _fmt_stats(s: Stats) -> str:
    if s.p50 is None:
        return "-"
    return f"{s.p50:.2f} / {s.p95:.2f} / {s.max:.2f}"


def _fmt_map(m: Mapping[str, Any], sep: str = ", ") -> str:
    return sep.join(f"{k} {v}" for k, v in m.items()) or "-"


def _fmt_recoveries(r: Mapping[str, Mapping[str, int]], sep: str = ", ") -> str:
    return (
        sep.join(
            f"{a} {c.get('success', 0)} ok / {c.get('failure', 0)} failed" for a, c in r.items()
        )
        or "-"
    )


def _summary_rows(s: Summary) -> list[tuple[str, str]]:
    rows = [
        ("turns answered", f"{s.turns_answered} / {s.turns}"),
        ("turns unanswered", str(s.turns_unanswered)),
        ("stalls", _fmt_map(s.stalls, "\n")),
        ("recoveries", _fmt_recoveries(s.recoveries, "\n")),
        ("escalations", str(s.escalations)),
        ("silence p50/p95/max s", _fmt_stats(s.silence_seconds)),
        ("recovery p50/p95/max s", _fmt_stats(s.recovery_seconds)),
        ("overlapping replies", str(s.overlapping_replies)),
    ]
    if s.by_fault is not None:
        for kind, entry in s.by_fault.items():
            rows.append((f"  {kind}", f"{entry['answered']} / {entry['turns']} answered"))
    if s.mode == "timer":
        rows.append(("timer fires", str(s.timer_fires)))
    rows.append(("duration (s)", f"{s.duration_seconds:.1f}"))
    return rows


def render_summaries(summaries: Sequence[Summary]) -> Any:
    """A rich table of one summary, or several side by side (--compare)."""
    from rich.table import Table

    table = Table()
    table.add_column("")
    for s in summaries:
        table.add_column("unsupervised" if s.mode == "none" else s.mode)
    rows = [_summary_rows(s) for s in summaries]
    labels = [label for label, _ in max(rows, key=len)]
    for label in labels:
        values = [dict(r).get(label, "-") for r in rows]
        table.add_row(label, *values)
    return table


def summary_title(s: Summary) -> str:
    """One line naming what was run."""
    per = s.turns // max(s.sessions, 1)
    title = f"simulate: {s.sessions} sessions x {per} turns"
    if s.faults is not None:
        title += f", faults {s.faults}, seed {s.seed}"
    else:
        title += f", {s.endpoint} endpoint"
    return title + f", livekit-agents {s.livekit_agents}"


def _live_table(state: RunState) -> Any:
    from rich.table import Table

    snap = state.snapshot()
    table = Table(
        title=f"simulate ({snap['mode']}), {snap['elapsed']:.0f} s",
        title_justify="left",
        show_header=False,
    )
    table.add_column("")
    table.add_column("")
    table.add_row("sessions", f"{snap['sessions_done']} / {snap['sessions']} done")
    table.add_row(
        "turns answered",
        f"{snap['turns_answered']} of {snap['turns_done']} done ({snap['turns_total']} planned)",
    )
    table.add_row("stalls", _fmt_map(snap["stalls"]))
    table.add_row("recoveries", _fmt_recoveries(snap["recoveries"]))
    table.add_row("escalations", str(snap["escalations"]))
    table.add_row("recovery p50/p95/max s", _fmt_stats(snap["recovery"]))
    if snap["mode"] == "timer":
        table.add_row("timer fires", str(snap["timer_fires"]))
    return table


def _progress_line(state: RunState) -> str:
    snap = state.snapshot()
    stalls = sum(snap["stalls"].values())
    ok = sum(c.get("success", 0) for c in snap["recoveries"].values())
    return (
        f"[{snap['mode']}] {snap['elapsed']:.0f}s sessions {snap['sessions_done']}/"
        f"{snap['sessions']} turns answered {snap['turns_answered']}/{snap['turns_done']} "
        f"(of {snap['turns_total']}) stalls {stalls} recovered {ok} "
        f"escalations {snap['escalations']}"
    )


async def _run_with_view(options: SimulateOptions, console: Any, live: bool) -> Summary:
    holder: dict[str, RunState] = {}

    def on_start(state: RunState) -> None:
        holder["state"] = state

    task = asyncio.create_task(run(options, on_start=on_start))
    if live:
        from rich.live import Live

        with Live(console=console, refresh_per_second=4, transient=True) as view:
            while not task.done():
                if "state" in holder:
                    view.update(_live_table(holder["state"]))
                await asyncio.wait({task}, timeout=0.25)
    else:
        while not task.done():
            await asyncio.wait({task}, timeout=5.0)
            if not task.done() and "state" in holder:
                print(_progress_line(holder["state"]), flush=True)
    return task.result()


def _configure_logging(level: str, runs: Sequence[SimulateOptions]) -> None:
    """Logs go to stderr (stdout carries the view and the summary), at `level`, keys scrubbed."""
    from realtime_supervisor.logs import configure_logging, secrets_from_env

    keys = {o.api_key.format(i=i) for o in runs for i in range(o.sessions)}
    configure_logging(
        format="console", level=level, stream=sys.stderr, secrets=[*secrets_from_env(), *keys]
    )
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    for h in root.handlers:
        h.setLevel(level)
    # livekit's loggers at WARNING at least, so its lost-reply warnings reach the capture
    root.setLevel(min(logging.getLevelName(level), logging.WARNING))


async def _main_async(runs: Sequence[SimulateOptions], args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console()
    live = sys.stdout.isatty()
    summaries: list[Summary] = []
    async with contextlib.AsyncExitStack() as stack:
        if args.metrics_port is not None:
            process_metrics()  # the series exist from the first scrape on
            try:
                url = await stack.enter_async_context(
                    metrics_endpoint(args.metrics_host, args.metrics_port)
                )
            except OSError as exc:
                print(
                    f"realtime-supervisor simulate: error: argument --metrics-port: cannot bind "
                    f"{args.metrics_host}:{args.metrics_port}: {exc.strerror or exc}",
                    file=sys.stderr,
                )
                return 2
            print(f"metrics on {url}", file=sys.stderr, flush=True)
        for options in runs:
            summaries.append(await _run_with_view(options, console, live))
        console.print(summary_title(summaries[0]), highlight=False, soft_wrap=True)
        console.print(render_summaries(summaries))
        if args.json_path is not None:
            if len(summaries) == 1:
                doc: dict[str, Any] = summaries[0].to_dict()
            else:
                doc = {"compare": True, **{s.mode: s.to_dict() for s in summaries}}
            text = json.dumps(doc, indent=2) + "\n"
            await asyncio.to_thread(_write, args.json_path, text)
        if args.metrics_port is not None and args.hold > 0:
            print(f"holding /metrics for {args.hold:g} s", file=sys.stderr, flush=True)
            await asyncio.sleep(args.hold)
    return 0


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main(argv: Sequence[str] | None = None) -> int:
    """`realtime-supervisor simulate ...`: the exit status (2 for bad flags or environment)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        runs = options_from_args(args, os.environ)
    except ConfigError as exc:
        flag = exc.field
        message = str(exc).removeprefix(f"{flag}: ")
        where = f"argument {flag}" if flag.startswith("--") else f"environment {flag}"
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {where}: {message}", file=sys.stderr)
        return 2
    if args.json_path is not None:
        directory = os.path.dirname(os.path.abspath(args.json_path))
        if not os.path.isdir(directory):
            parser.error(f"argument --json: no such directory: {directory}")
    try:
        preflight(runs[-1])
    except ConfigError as exc:
        # livekit's plugin reads some variables itself (agent/models.py refuses a conflict)
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: environment {exc}", file=sys.stderr)
        return 2
    _configure_logging(args.log_level, runs)
    try:
        return asyncio.run(_main_async(runs, args))
    except KeyboardInterrupt:
        return 130
