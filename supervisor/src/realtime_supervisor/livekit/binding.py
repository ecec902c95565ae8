"""The livekit edge: turns an `AgentSession` into observations and performs the watchdog's actions.

This is the only module (with `_private`) that imports livekit. It listens to
- the `AgentSession`'s events (state, speech created, tools, errors, close),
- the realtime session's events, including the raw server events the OpenAI session re-emits,
- the audio handed to the output (the time of each frame, and the end of each playback),
- livekit's own log records, for the warnings that mean a reply was lost,
and performs `reissue` (interrupt, then `generate_reply`), `reconnect` (a fresh websocket that
keeps the conversation, then a reply) and `escalate` (the application's hook). With a hold cue
(`realtime_supervisor.cue`) it plays the cue during a recovery; the audio tap skips the cue's
frames, so only the answer counts as the agent's audio.

About 800 lines, over the house limit on purpose this round: the taps (`_AudioTap`, `_LogTap`,
`_EmitHook`) are to move to `livekit/taps.py` in the planned consolidation; they stay here while
several people edit this file in parallel, so that the changes merge.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import inspect
import logging
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import AgentSession
from livekit.agents.voice.io import AudioOutput

from .._detector import Stall
from .._learned import LearnedDeadline, Learner, SessionLearning, default_learner
from .._observations import (
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
    SessionClosed,
    SessionReconnected,
    ToolCallFinished,
    ToolCallStarted,
    UserSpeechStarted,
    UserSpeechStopped,
    WarningKind,
)
from .._records import Sink
from .._watchdog import AUDIO_NEWS_GAP as _AUDIO_NEWS_GAP
from .._watchdog import Watchdog
from ..config import WatchdogConfig
from ..cue import CuePlayer, HoldCue
from ..errors import RecoveryError
from ..events import EventEmitter, EventType
from ..kinds import WARNING_PREFIXES
from . import _private

__all__ = ["Escalation", "Supervisor", "reconnectable"]

_log = logging.getLogger("realtime_supervisor")

# livekit's messages that mean a reply was lost (or the session is gone), by their start.
_WARNINGS = WARNING_PREFIXES
_LOGGERS = ("livekit.agents", "livekit.plugins.openai")

REISSUE_TIMEOUT = 5.0  # generous bound on interrupt() so a wedged session cannot hold an action
# How long a reissue waits for the server to close the response it interrupted. The real API
# confirms a cancel at once (response.done, cancelled) and refuses a new response while one is
# active; a server that has lost track of a stuck response may finish it late instead, and livekit
# lets that late response.done close whatever reply is current. So: wait for it, within reason.
CANCEL_CONFIRM_TIMEOUT = 1.5
# A frame after a pause at least this long (or the first of a playback) is observed at once: it
# may end a silence, and its time is the reply's latency. Any other frame only moves the tap's
# timestamp, which the watchdog reads before each judgement, so no verdict misses it. The
# watchdog's constant: it relies on it to judge server progress between two frames.
AUDIO_NEWS_GAP = _AUDIO_NEWS_GAP
CUE_SLACK = 1.0  # a hold cue that outlasts its own length by this much is stopped
_MAX_OPEN = 8  # open responses remembered at most (the real API has one at a time)
# An audio delta, GA and beta names: most of what the server sends (the hot path, see
# _on_server_event); a response that sent one is heard, even if then cut.
_AUDIO_DELTAS = frozenset({"response.output_audio.delta", "response.audio.delta"})


@dataclass(frozen=True, slots=True)
class Escalation:
    """What the application's `on_escalate` hook receives: the session could not be recovered."""

    reason: str
    stall_kind: str
    silence_since: float
    detected_at: float
    context: Mapping[str, str] = field(default_factory=dict)


EscalateHook = Callable[[Escalation], Awaitable[None] | None]

# Which Supervisor a log record belongs to: set where the Supervisor is built, so that every task
# the session spawns afterwards (activity, generation, the websocket loop) carries it.
_CURRENT: contextvars.ContextVar[Supervisor | None] = contextvars.ContextVar(
    "realtime_supervisor_current", default=None
)


def reconnectable(model: Any) -> Any:
    """Wrap a realtime model so `reconnect` uses livekit's public restart (1.8+); else as is."""
    try:
        from livekit.agents.llm import RealtimeModelFallbackAdapter
    except ImportError:  # 1.5 and older: reconnect closes the live socket instead
        return model
    if isinstance(model, RealtimeModelFallbackAdapter):
        return model
    return RealtimeModelFallbackAdapter([model])


class Supervisor:
    """Attach the watchdog to one `AgentSession`.

    Build it before `session.start()` (so livekit's log records can be told apart per session)
    and start it after:

        supervisor = Supervisor(session, WatchdogConfig.from_env(), on_escalate=transfer_call)
        await session.start(agent, room=ctx.room)
        await supervisor.start()

    `on` registers callbacks for the watchdog's events (`realtime_supervisor.events`); with
    livekit's tracer provider set (1.8), stalls and recoveries also appear on the session's trace.
    `hold_cue` (`HoldCue.chime()`, a WAV): a short sound played while a recovery runs, never
    counted as the answer (`realtime_supervisor.cue`).
    """

    def __init__(
        self,
        session: AgentSession[Any],
        config: WatchdogConfig | None = None,
        *,
        on_escalate: EscalateHook | None = None,
        provider: str = "openai",
        model: str = "unknown",
        metrics: Any | None = None,
        context: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        learner: Learner | None = None,
        hold_cue: HoldCue | None = None,
    ) -> None:
        self._session = session
        self._config = config or WatchdogConfig()
        self._on_escalate = on_escalate
        self._context = dict(context or {})
        self._context.setdefault("session_id", uuid.uuid4().hex[:12])
        if metrics is None:
            from ..metrics import default_metrics

            metrics = default_metrics()
        self._session_metrics = metrics.session(provider, model) if metrics is not None else None
        self._clock = clock
        # Learned thresholds: this process's learner (or the one given), for this deployment.
        self.learning = SessionLearning(
            learner if learner is not None else default_learner(self._config),
            provider,
            model,
            on_change=self._learned_changed,
            config=self._config,
        )
        self._events = EventEmitter(
            report=lambda where, exc: self.watchdog.report_error(where, exc)
        )
        self.watchdog = Watchdog(
            self._config,
            _Actions(self),
            metrics=self._session_metrics,
            clock=clock,
            context=self._context,
            sinks=(self._events.emit, *_trace_sinks(session, clock, self._context)),
            learning=self.learning,
        )
        self._rt: Any | None = None
        self._inner: Any | None = None  # the OpenAI session (rt, or the one an adapter holds)
        self._tap: _AudioTap | None = None
        self._own_request = False
        self._started = False
        self._closed = False
        self._reconnected = asyncio.Event()
        self._connection_lost = False  # livekit logged a drop and has not reconnected yet
        # Responses created on the server and not yet done, keyed by id; the newest plays. See
        # the detector's Rule 9: no malformed or unmatched event may leave a phantom open.
        self._open: dict[str, None] = {}
        self._closed_early: collections.deque[str] = collections.deque(maxlen=_MAX_OPEN)
        self._current: str | None = None
        self._voiced: str | None = None  # the last response that sent an audio delta
        self._response_closed = asyncio.Event()
        self._events_seen = 0  # raw server events heard: did the server answer anything since?
        # A cancel went unanswered: the socket is dead without a close frame (cleared on reconnect)
        self._socket_dead = False
        self._hooks: list[_EmitHook] = []
        self._failed_over = False  # switched to the fallback model (once per session)
        self.cue = CuePlayer(session, hold_cue) if hold_cue is not None else None
        if self.cue is not None:
            cue = self.cue
            self._events.on("recovery_started", lambda _ev: cue.arm())
            self._events.on("escalated", lambda _ev: cue.stop())
        _CURRENT.set(self)

    @property
    def context(self) -> Mapping[str, str]:
        return self._context

    def _learned_changed(self, deadlines: list[LearnedDeadline]) -> None:
        sink = self._session_metrics
        record = getattr(sink, "learned_deadline", None)
        if record is not None:
            for d in deadlines:
                record(d.deadline, d.seconds)

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Begin watching; call after `session.start()`."""
        if self._started or not self._config.enabled:
            return
        self._started = True
        _private.check_version()
        self._install_audio_tap()
        for name, handler in (
            ("agent_state_changed", self._on_agent_state),
            ("speech_created", self._on_speech_created),
            ("function_tools_executed", self._on_tools_executed),
            ("error", self._on_error),
            ("close", self._on_close),
        ):
            self._subscribe(self._session, name, handler)
        self._bind_realtime()
        _LOG_TAP.attach(self)
        self.watchdog.start()

    async def aclose(self) -> None:
        """Stop watching; the session is left as it is."""
        if self._closed:
            return
        self._closed = True
        _LOG_TAP.detach(self)
        for hook in self._hooks:
            hook.detach()
        self._hooks.clear()
        if self._tap is not None:
            self._tap.detach()
        await self.watchdog.aclose()

    def decline_turn(self) -> None:
        """The application deliberately leaves the current user turn unanswered."""
        self.watchdog.decline_turn()

    def on(self, event: EventType, callback: Callable[..., Any] | None = None) -> Any:
        """Call `callback(ev)` on `event` (stall_detected, recovery_started, recovery_finished,
        escalated); without a callback, a decorator. See `realtime_supervisor.events`."""
        return self._events.on(event, callback)

    def off(self, event: EventType, callback: Callable[..., Any]) -> None:
        """Stop calling `callback` on `event`."""
        self._events.off(event, callback)

    # -- observing -------------------------------------------------------------------------

    def observe(self, obs: Observation, at: float | None = None) -> None:
        if not self._closed:
            self.watchdog.observe(obs, at)

    def _subscribe(self, emitter: Any, name: str, handler: Callable[..., None]) -> None:
        hook = next((h for h in self._hooks if h.emitter is emitter), None)
        if hook is None:
            hook = _EmitHook(emitter, self.watchdog.report_error)
            self._hooks.append(hook)
        hook.handlers[name] = handler

    def _unsubscribe(self, emitter: Any) -> None:
        for hook in [h for h in self._hooks if h.emitter is emitter]:
            hook.detach()
            self._hooks.remove(hook)

    def _install_audio_tap(self) -> None:
        """Tap the session's output; again if the application or livekit replaced it."""
        out = self._session.output.audio
        tap = self._tap
        if out is None or (tap is not None and tap.out is out and tap.installed):
            return
        if tap is not None:
            tap.detach()
            self._unsubscribe(tap.out)
        try:
            self._tap = _AudioTap(out, self)
        except Exception as exc:  # an output we cannot time: never break the session for it
            self._tap = None
            self.watchdog.report_error("audio tap", exc)

    def _bind_realtime(self) -> None:
        rt = _private.activity_realtime_session(self._session)
        if rt is None or rt is self._rt:
            return
        for old in (self._rt, self._inner):
            if old is not None:
                self._unsubscribe(old)
        self._rt, self._inner = rt, None
        for name, handler in (
            ("input_speech_started", self._on_speech_started),
            ("input_speech_stopped", self._on_speech_stopped),
            ("session_reconnected", self._on_reconnected),
        ):
            self._subscribe(rt, name, handler)
        self._bind_server_events()

    def _bind_server_events(self) -> None:
        """Hear the raw server events where they are emitted: the OpenAI session itself.

        livekit's fallback adapter re-emits them only for handlers registered with its `on`,
        and swaps its OpenAI session on a restart, after which this binds the new one.
        """
        inner = _openai_session(self._rt)
        if inner is None or inner is self._inner:
            return
        if self._inner is not None and self._inner is not self._rt:
            self._unsubscribe(self._inner)
        self._inner = inner
        self._subscribe(inner, "openai_server_event_received", self._on_server_event)
        self._subscribe(inner, "openai_client_event_queued", self._on_client_event)

    def _on_agent_state(self, ev: Any) -> None:
        self._bind_realtime()  # a handoff to another agent brings another realtime session
        self._install_audio_tap()  # a new output (a room's reconnect, say) needs its own tap
        self.observe(AgentStateChanged(str(ev.new_state)))

    def _on_speech_created(self, ev: Any) -> None:
        self._install_audio_tap()  # before the reply's first frame, should the output be new
        # our own request is observed once, by the watchdog, when the action returns
        if ev.user_initiated and ev.source == "generate_reply" and not self._own_request:
            self.observe(ReplyRequested())

    def _on_tools_executed(self, _ev: Any) -> None:
        self.observe(ToolCallFinished())

    def _on_error(self, ev: Any) -> None:
        err = ev.error
        if getattr(err, "type", None) == "realtime_model_error":
            inner = getattr(err, "error", None)
            # livekit's APIError keeps the server's error object in `body`
            body = getattr(inner, "body", None)
            code = getattr(inner, "code", None) or getattr(body, "code", None)
            self.observe(RealtimeError(recoverable=bool(err.recoverable), code=_str_or_none(code)))
            self._check_zombie()

    def _on_close(self, _ev: Any) -> None:
        self.observe(SessionClosed())

    def _on_speech_started(self, _ev: Any) -> None:
        if self.cue is not None:
            self.cue.stop()  # never over the caller (livekit stops it too: allow_interruptions)
        self._install_audio_tap()
        self.observe(UserSpeechStarted())

    def _on_speech_stopped(self, _ev: Any) -> None:
        self.observe(UserSpeechStopped())

    def _on_reconnected(self, _ev: Any) -> None:
        self._bind_server_events()  # a restart through the adapter brings a new OpenAI session
        # the old connection's responses are gone with it
        self._open.clear()
        self._response_closed.set()
        self._connection_lost = False
        self._socket_dead = False
        self._reconnected.set()
        self.observe(SessionReconnected())

    def _on_server_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        self._events_seen += 1
        if kind in _AUDIO_DELTAS:
            # Most of what the server sends (the realistic server: ten a second of audio, four
            # times faster than it plays). Its progress is the frames it becomes, which the tap
            # times (`audio_at`, and agent audio disarms every progress deadline): no stamp here.
            # One store per delta (responses never overlap, so the last one voiced suffices).
            self._voiced = str(event.get("response_id", ""))
            return
        self.watchdog.progress_at = self._clock()  # any other event is progress: a store
        if kind == "response.created":
            rid = _field(event, "response", "id")
            if rid and rid not in self._closed_early:
                self._open[rid] = None
                self._current = rid
                if len(self._open) > _MAX_OPEN:
                    del self._open[next(iter(self._open))]
                self._response_closed.clear()
            self.observe(ResponseCreated(rid))
        elif kind == "response.output_item.added":
            item_type = _field(event, "item", "type")
            if item_type == "message":
                rid = str(event.get("response_id", ""))
                self.observe(MessageItemAdded(rid, _field(event, "item", "id")))
            elif item_type == "function_call":
                self.observe(ToolCallStarted())
        elif kind == "response.done":
            rid = _field(event, "response", "id")
            if rid in self._open:
                del self._open[rid]
                if self._open_response is None:
                    self._response_closed.set()
            elif rid:
                self._closed_early.append(rid)  # done before created: never open it later
            status = _field(event, "response", "status")
            code = _failure_code(event) if status else None
            self.observe(ResponseDone(rid, status, code, voiced=bool(rid) and rid == self._voiced))
        elif kind == "input_audio_buffer.timeout_triggered":
            self.observe(ServerIdleTimeout())

    def _on_client_event(self, event: dict[str, Any]) -> None:
        # emitted by livekit's send task right before the socket write: the request is out
        if event.get("type") == "response.create":
            self.observe(ReplySent())

    @property
    def _open_response(self) -> str | None:
        """The newest response created, if still open: the one playing."""
        current = self._current
        return current if current is not None and current in self._open else None

    def _on_log_record(self, kind: WarningKind) -> None:
        if kind is WarningKind.CONNECTION_LOST:
            self._connection_lost = True
            self._reconnected.clear()
        self.observe(LivekitWarning(kind))
        self._check_zombie()

    def _check_zombie(self) -> None:
        rt = self._rt
        if rt is not None and _private.connection_loop_done(_openai_session(rt)):
            self.observe(SessionClosed(zombie=True))

    # -- acting ----------------------------------------------------------------------------

    async def _reissue(self, instructions: str | None) -> bool:
        if self._rt is not None and _private.connection_loop_done(_openai_session(self._rt)):
            raise RecoveryError("the realtime connection loop has ended")
        if self._connection_lost:
            # livekit reconnects by itself; a reply asked for before that would be discarded
            # with the old socket's pending responses
            try:
                await asyncio.wait_for(self._reconnected.wait(), self._config.recovery_timeout)
            except TimeoutError as e:
                raise RecoveryError("the realtime connection did not come back") from e
        stuck = self._open_response
        seen = self._events_seen
        await asyncio.wait_for(self._session.interrupt(force=True), REISSUE_TIMEOUT)
        self._play_cue()  # after the interrupt, which would cut it
        if stuck is not None and self._open_response == stuck:
            # never re-ask while the interrupted response may still finish: see the constant
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._response_closed.wait(), CANCEL_CONFIRM_TIMEOUT)
            if self._open_response == stuck and self._events_seen == seen:
                # Not a word from the server about the cancel (the real API confirms at once):
                # the connection is dead without a close frame. A reply asked for into it is
                # lost too; the next rung (a reconnect) is the one that can help.
                self._socket_dead = True
                raise RecoveryError("the server did not answer the cancel: the connection is dead")
        await self._cue_played()
        return self._generate_reply(instructions)

    async def _reconnect(self) -> bool:
        rt = self._rt
        if rt is None:
            raise RecoveryError("no realtime session to reconnect")
        model = _private.realtime_model(rt)
        restart = getattr(model, "restart_session", None)
        self._reconnected.clear()
        if restart is not None:
            if self._socket_dead:
                # livekit's restart closes the old socket first and would wait aiohttp's whole
                # close timeout (10 s of dead air) for a reply a dead peer never sends: drop it
                ws = _private.live_socket(_openai_session(rt))
                if ws is not None:
                    await _private.close_socket(ws, dead=True)
            # livekit's public restart: interrupts, replays the chat context on a new socket
            await restart()
            self._play_cue()
        else:
            inner = _openai_session(rt)
            if _private.connection_loop_done(inner):
                raise RecoveryError("the realtime connection loop has ended")
            ws = _private.live_socket(inner)
            if ws is None:
                raise RecoveryError("no live realtime socket to recycle")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._session.interrupt(force=True), REISSUE_TIMEOUT)
            # the plugin sees the socket close, reconnects and replays the conversation
            await _private.close_socket(ws, dead=self._socket_dead)
            self._play_cue()
        try:
            await asyncio.wait_for(self._reconnected.wait(), self._config.recovery_timeout)
        except TimeoutError as e:
            raise RecoveryError("the realtime session did not reconnect") from e
        await self._cue_played()
        return self._generate_reply(None)

    def _adapter(self) -> Any:
        """livekit's RealtimeModelFallbackAdapter behind the session, if the model is one."""
        rt = self._rt
        model = getattr(rt, "realtime_model", None) or getattr(rt, "_realtime_model", None)
        return model if hasattr(model, "restart_session") else None

    def can_failover(self) -> bool:
        """A fallback model is configured: the adapter holds more than the primary (1.8+)."""
        if self._failed_over:
            return False
        models = getattr(self._adapter(), "_models", None)
        return isinstance(models, list | tuple) and len(models) > 1

    async def _failover(self) -> bool:
        """Switch the session to the fallback model keeping the conversation, then a reply.

        The speech in progress is interrupted first, so livekit's swap (which re-issues a reply
        only when the agent was speaking) leaves the one reply to ask for to us.
        """
        adapter = self._adapter()
        if adapter is None or not self.can_failover():
            raise RecoveryError("no fallback realtime model configured")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._session.interrupt(force=True), REISSUE_TIMEOUT)
        self._reconnected.clear()
        self._failed_over = True  # logged and counted by the watchdog (action="failover")
        await adapter.restart_session(switch_model=True)
        self._play_cue()
        try:
            await asyncio.wait_for(self._reconnected.wait(), self._config.recovery_timeout)
        except TimeoutError as e:
            raise RecoveryError("the fallback realtime session did not come up") from e
        await self._cue_played()
        return self._generate_reply(None)

    def _play_cue(self) -> None:
        """The hold cue, if one is armed by this recovery and the caller is silent."""
        if self.cue is not None:
            try:
                self.cue.play_if_due(may_speak=self.watchdog.may_speak())
            except Exception as exc:  # a cue is a courtesy: never fail the recovery for it
                self.watchdog.report_error("hold cue", exc)

    async def _cue_played(self) -> None:
        """Wait for the hold cue to end before asking for the reply (see `realtime_supervisor.cue`,
        rule 3): livekit would hold the request back behind it anyway, and the watchdog's
        acknowledgement deadline starts when the action returns."""
        if self.cue is not None and self.cue.playing:
            await self.cue.wait(self.cue.cue.seconds + CUE_SLACK)

    def _generate_reply(self, instructions: str | None) -> bool:
        """Ask for the watchdog's reply, unless the caller now speaks or the agent was heard.

        The last check before the request: the action may have waited seconds (a cancel to be
        confirmed, a reconnect) since the watchdog decided, and a silence is exactly when a
        caller says "hello?". Nothing awaits between this check and the request.
        """
        if not self.watchdog.may_speak():
            return False
        self._own_request = True
        try:
            if instructions:
                self._session.generate_reply(instructions=instructions)
            else:
                self._session.generate_reply()
        finally:
            self._own_request = False
        return True

    async def _escalate(self, stall: Stall, reason: str) -> None:
        if self._on_escalate is None:
            return
        result = self._on_escalate(
            Escalation(
                reason=reason,
                stall_kind=str(stall.kind),
                silence_since=stall.silence_since,
                detected_at=stall.detected_at,
                context=self._context,
            )
        )
        if inspect.isawaitable(result):
            await result


class _Actions:
    """The watchdog's view of the binding: the three things it can ask for."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._sup = weakref.proxy(supervisor)

    async def reissue(self, instructions: str | None) -> bool:
        return bool(await self._sup._reissue(instructions))

    async def reconnect(self) -> bool:
        return bool(await self._sup._reconnect())

    def can_failover(self) -> bool:
        return bool(self._sup.can_failover())

    async def failover(self) -> bool:
        return bool(await self._sup._failover())

    async def escalate(self, stall: Stall, reason: str) -> None:
        await self._sup._escalate(stall, reason)


class _EmitHook:
    """Hears an emitter's events without registering handlers with it.

    livekit's EventEmitter calls `inspect.signature` on each handler at every emit; for the raw
    server events (dozens a second while the agent speaks) that machinery cost more than all the
    watchdog's own work. An instance attribute over the emitter's `emit` hands the events we
    watch to our handlers, contained, and then to livekit's `emit` as before.
    """

    def __init__(self, emitter: Any, report: Callable[[str, BaseException], None]) -> None:
        self.emitter = emitter
        self.handlers: dict[str, Callable[..., None]] = {}
        self._report = report
        self._emit_original = emitter.emit
        self._hook = self._emit  # one bound method, so that `detach` can compare identity
        setattr(emitter, "emit", self._hook)  # noqa: B010

    def detach(self) -> None:
        if vars(self.emitter).get("emit") is self._hook:
            del self.emitter.emit

    def _emit(self, event: str, *args: Any) -> Any:
        handler = self.handlers.get(event)
        if handler is not None:
            # livekit emits from its own event loop paths: nothing may escape into them
            try:
                handler(*args)
            except Exception as exc:
                self._report(f"event {event}", exc)
        return self._emit_original(event, *args)


def _trace_sinks(
    session: AgentSession[Any], clock: Callable[[], float], context: Mapping[str, str]
) -> tuple[Sink, ...]:
    """Spans on livekit's tracer (1.8), under the session's span; none without OpenTelemetry."""
    try:
        from livekit.agents.telemetry import tracer

        from ..telemetry.traces import TraceSink
    except ImportError:  # livekit before 1.8, or no opentelemetry-api
        return ()
    sink = TraceSink(
        tracer,
        parent=lambda: _private.session_span(session),
        clock=clock,
        attributes={"realtime_supervisor.session_id": context.get("session_id", "")},
    )
    return (sink,)


_openai_session = _private.openai_session


def _field(event: dict[str, Any], obj: str, key: str) -> str:
    """`event[obj][key]` as a string, "" when the server sent something else (never raises)."""
    inner = event.get(obj)
    return str(inner.get(key, "")) if isinstance(inner, dict) else ""


def _failure_code(event: dict[str, Any]) -> str | None:
    """`response.status_details.error.code` of a response.done, if the server gave one."""
    details = event.get("response")
    for key in ("status_details", "error"):
        details = details.get(key) if isinstance(details, dict) else None
    code = details.get("code") if isinstance(details, dict) else None
    return code if isinstance(code, str) else None


def _str_or_none(v: object) -> str | None:
    return None if v is None else str(v)


class _AudioTap:
    """Times the frames the session's output is given, and hears its playback end.

    Not a layer of the output chain: an `AudioOutput` layer costs livekit per-frame work and
    event forwarding in the layer and in the proxy livekit 1.8 puts under it, which was most of
    what supervising cost. The instance attribute over the top output's `capture_frame` returns
    livekit's own coroutine, so a frame costs a timestamp. Frames are timed as they are handed to
    the chain; sinks hold livekit back to real time, so this is when the caller hears them (within
    the sink's small buffer). Only a frame after a pause (or the first of a playback) is an
    observation; see AUDIO_NEWS_GAP.
    """

    def __init__(self, out: AudioOutput, supervisor: Supervisor) -> None:
        self.out = out
        self._sup: Supervisor | None = supervisor
        self._clock = supervisor._clock
        self._capture_original = out.capture_frame
        self.last_frame_at: float | None = None
        self._playing = False
        self._cue_segment = False  # the playback in progress is the hold cue's
        # shadows the class's method on this instance only; `detach` removes it
        self._hook = self._capture  # one bound method, so that `installed` can compare identity
        setattr(out, "capture_frame", self._hook)  # noqa: B010
        supervisor._subscribe(out, "playback_finished", self._on_playback_finished)

    @property
    def installed(self) -> bool:
        return vars(self.out).get("capture_frame") is self._hook

    def detach(self) -> None:
        self._sup = None
        if self.installed:
            del self.out.capture_frame

    def _capture(self, frame: Any) -> Awaitable[None]:
        sup = self._sup
        if sup is not None and sup.cue is not None and sup.cue.is_current():
            # the hold cue is not the answer: no audio_at, no AgentAudioPlayed, and its
            # playback's end is not the reply's
            self._cue_segment = True
            return self._capture_original(frame)
        now = self._clock()
        last, self.last_frame_at = self.last_frame_at, now
        if sup is not None:
            if not self._playing or last is None or now - last >= AUDIO_NEWS_GAP:
                self._playing = True
                # observed before its time is stored: the watchdog then still reads the frame
                # before the pause in `audio_at`, and judges what came between by it
                sup.observe(AgentAudioPlayed(), now)
            sup.watchdog.audio_at = now
        return self._capture_original(frame)

    def _on_playback_finished(self, ev: Any) -> None:
        if self._cue_segment:
            # the cue's playback ended (the action's interrupt ended the stuck reply's before
            # the cue started: the cue plays after it)
            self._cue_segment = False
            return
        self._playing = False  # the next reply's first frame is news
        if self._sup is not None:
            self._sup.observe(PlaybackFinished(interrupted=bool(getattr(ev, "interrupted", False))))


class _LogTap(logging.Filter):
    """Reads livekit's log records for the warnings that mean a reply was lost.

    A handler sees a record only if the logger's level let it be created, so the livekit
    loggers are lowered to WARNING while we watch; this filter, sitting on those loggers,
    then passes on only what the application's own level would have let through, so its
    output does not change.
    """

    def __init__(self) -> None:
        super().__init__()
        self._supervisors: weakref.WeakSet[Supervisor] = weakref.WeakSet()
        self._own_levels: dict[str, int] = {}  # each logger's level before we lowered it
        self._levels: dict[str, int] = {}  # the effective level the application had set
        self.failures = 0  # records the tap could not route (also counted per session)

    def attach(self, sup: Supervisor) -> None:
        if not self._supervisors:
            for name in _LOGGERS:
                lg = logging.getLogger(name)
                self._own_levels[name] = lg.level
                self._levels[name] = lg.getEffectiveLevel()
                if lg.getEffectiveLevel() > logging.WARNING:
                    lg.setLevel(logging.WARNING)
                lg.addFilter(self)
        self._supervisors.add(sup)

    def detach(self, sup: Supervisor) -> None:
        self._supervisors.discard(sup)
        if not self._supervisors and self._levels:
            for name in _LOGGERS:
                lg = logging.getLogger(name)
                lg.removeFilter(self)
                lg.setLevel(self._own_levels[name])
            self._own_levels.clear()
            self._levels.clear()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            try:
                self._route(record)
            except Exception as exc:  # never let the watchdog break livekit's logging
                self._failed(exc)
        return record.levelno >= self._levels.get(record.name, logging.NOTSET)

    def _failed(self, exc: Exception) -> None:
        """Count a tap failure as a watchdog error of the session(s) it may have been about."""
        self.failures += 1
        sup = _CURRENT.get()
        targets = [sup] if sup is not None and sup in self._supervisors else list(self._supervisors)
        for target in targets:
            with contextlib.suppress(Exception):
                target.watchdog.report_error("log tap", exc)

    def _route(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        kind = next((kind for prefix, kind in _WARNINGS if prefix in message), None)
        if kind is None:
            return
        sup = _CURRENT.get()
        if sup is None or sup not in self._supervisors:
            live = list(self._supervisors)
            if len(live) != 1:
                return  # cannot tell which session this is about
            sup = live[0]
        sup._on_log_record(kind)


_LOG_TAP = _LogTap()
