"""One websocket of the chaos server: the receive loop, the client events, at most one response.

Rules:
1. No frame can end a connection: bad JSON (deeply nested included), a binary frame, an unknown
   or malformed event each get one `error` event; a bug in a handler gets a `server_error`
   event and is logged; the connection lives on.
2. The receive loop handles pings itself (aiohttp's autoping and autoclose are off), so a dead
   connection (`go_dead`) can leave pings, pongs and the close frame unanswered.
3. A turn opens on a user commit (server VAD or `input_audio_buffer.commit`), or on a
   `response.create` before any commit. The schedule's fault applies to the first response of
   a turn only; a sticky fault (`SessionState.sticky`) to every response of the session.
4. One response at a time: a `response.create` while one is open gets
   `conversation_already_has_active_response`, as from the real API.
5. User audio items get `conversation.item.added` then `conversation.item.done`; their
   transcription, only when configured, arrives asynchronously (`transcription_delay` after the
   commit, as the real API's does, about 1.2 s).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from . import response as _response
from .faults import hook_for
from .items import validate_item
from .protocol import (
    FATAL_CLOSE_CODE,
    MIN_COMMIT_MS,
    QUOTA_MESSAGE,
    SAMPLE_RATE,
    Invalid,
    Json,
    missing,
    require,
    server_error_message,
    to_beta,
    unknown_type,
)
from .records import Injection, ReceivedEvent, SessionState
from .response import Response
from .schedule import Fault
from .settings import Settings, response_params
from .vad import EnergyVad, SpeechStarted, SpeechStopped

if TYPE_CHECKING:
    from .server import ChaosServer

__all__ = ["Connection", "SessionState"]  # SessionState re-exported from records

logger = logging.getLogger("realtime_supervisor.chaos")


class Connection:
    """One websocket: its conversation, its session settings and at most one response."""

    def __init__(
        self,
        server: ChaosServer,
        session: SessionState,
        ws: web.WebSocketResponse,
        request: web.Request,
        *,
        index: int,
        beta: bool,
        model: str,
    ) -> None:
        self.server = server
        self.session = session
        self.ws = ws
        self.request = request
        self.index = index
        self.beta = beta
        self.settings = Settings(model=model)
        self.vad = EnergyVad(threshold_rms=server.vad_threshold_rms)
        self.buffer_samples = 0
        self.speech_item: str | None = None  # item id announced with speech_started
        self.items: list[str] = []  # conversation order
        self.active: Response | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.conversation_id = server.ids.conversation()
        self.session_id = server.ids.session()
        # dead: frozen (dead_mid) or its TCP aborted (tcp_drop): nothing is sent or answered
        self.dead = False
        # cleared while late_resume freezes the connection: client events wait in the socket
        self.thawed = asyncio.Event()
        self.thawed.set()
        self.released = asyncio.Event()  # set by stop(): a dead connection may end
        self._handlers: dict[str, Callable[[Json], Awaitable[None]]] = {
            "session.update": self._on_session_update,
            "input_audio_buffer.append": self._on_append,
            "input_audio_buffer.commit": self._on_commit,
            "input_audio_buffer.clear": self._on_clear,
            "response.create": self._on_response_create,
            "response.cancel": self._on_response_cancel,
            "conversation.item.create": self._on_item_create,
            "conversation.item.delete": self._on_item_delete,
            "conversation.item.truncate": self._on_item_truncate,
            "conversation.item.retrieve": self._on_unsupported,
            "output_audio_buffer.clear": self._on_unsupported,
        }

    # -- sending ----------------------------------------------------------------------------

    async def send(self, event: Json) -> None:
        if self.ws.closed or self.dead:
            return
        event = {"event_id": self.server.ids.event(), **event}
        if self.beta:
            event = to_beta(event)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_str(json.dumps(event))

    async def send_error(
        self,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        event_id: str | None = None,
    ) -> None:
        error: Json = {
            "type": type_,
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        }
        self.session.record.errors.append(f"{code}: {message}")
        await self.send({"type": "error", "error": error})

    async def send_item_done(self, item: Json) -> None:
        """`conversation.item.done` (GA only: the beta protocol has no such event)."""
        if not self.beta:
            await self.send({"type": "conversation.item.done", "item": dict(item)})

    async def send_rate_limits(self) -> None:
        """The real API's `rate_limits.updated`, after each `response.done`."""
        limits = [
            {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
            {"name": "tokens", "limit": 800000, "remaining": 799000, "reset_seconds": 0.075},
        ]
        await self.send({"type": "rate_limits.updated", "rate_limits": limits})

    async def send_session_created(self) -> None:
        session = self.settings.to_json(beta=self.beta, session_id=self.session_id)
        await self.send({"type": "session.created", "session": session})

    @property
    def quota_message(self) -> str:
        return QUOTA_MESSAGE

    # -- what faults do to the connection ---------------------------------------------------

    async def close(self, code: int, reason: str) -> None:
        """Close with a close frame (`code`, `reason`)."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close(code=code, message=reason.encode())

    def abort(self) -> None:
        """Drop the TCP connection: no close frame, nothing more sent."""
        self.dead = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    def go_dead(self) -> None:
        """From now on send nothing and answer nothing; the socket stays open."""
        self.dead = True

    async def freeze(self, seconds: float) -> None:
        """Hold the connection both ways for `seconds`: client events wait in the socket."""
        self.thawed.clear()
        try:
            await asyncio.sleep(seconds)
        finally:
            self.thawed.set()

    async def fatal_teardown(self, *, event_id: str | None) -> None:
        """The real API's fatal error: an `error` event and the close in the same millisecond."""
        await self.send_error(
            QUOTA_MESSAGE, type_="insufficient_quota", code="insufficient_quota", event_id=event_id
        )
        await self.close(FATAL_CLOSE_CODE, "insufficient_quota.insufficient_quota")

    def inject(self, fault: Fault, r: Response | None) -> None:
        """Record (and log) that `fault` takes effect now."""
        rec = self.session.record
        onset = self.server.clock()
        turn = r.turn if r else self.session.turn
        inj = Injection(fault.kind, turn, onset, fault.value, self.index, r.id if r else None)
        rec.injected.append(inj)
        self.server.log(
            "chaos.injected",
            logging.INFO,
            session=rec.key,
            connection=self.index,
            kind=fault.kind,
            value=fault.value,
            turn=turn,
            onset=onset,
            response_id=inj.response_id,
        )

    # -- the receive loop -------------------------------------------------------------------

    async def run(self) -> None:
        sticky = self.session.sticky
        if sticky is not None and await hook_for(sticky).on_connect(self):
            return
        await self.send_session_created()
        if self.server.ping_interval is not None:
            self.spawn(self._ping_loop(self.server.ping_interval), "chaos-ping")
        try:
            while True:
                msg = await self.ws.receive()
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    if msg.type == WSMsgType.CLOSE and not self.dead:
                        await self.ws.close()
                    break
                if msg.type == WSMsgType.ERROR:
                    break
                if self.dead:
                    continue  # read and dropped, as a frozen peer would
                await self.thawed.wait()
                if msg.type == WSMsgType.TEXT:
                    await self._on_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._record("<binary>")
                    await self.send_error(
                        "Expected a text WebSocket message, got a binary one.",
                        code="invalid_event",
                    )
                elif msg.type == WSMsgType.PING:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await self.ws.pong(msg.data)
        finally:
            if self.dead:
                await self._hold_dead()
            await self.stop()

    async def _hold_dead(self) -> None:
        """Keep a dead socket open (returning would send a close frame) until its peer goes."""
        transport = self.request.transport
        while not self.released.is_set():
            if transport is None or transport.is_closing():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.released.wait(), 0.1)

    async def _ping_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.thawed.wait()
            if self.dead or self.ws.closed:
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.ping()

    def spawn(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        """A task of this connection: cancelled and awaited by `stop()`."""
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def stop(self) -> None:
        self.released.set()
        self.thawed.set()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.active = None

    def _record(self, type_: str) -> None:
        at = self.server.clock()
        rec = self.session.record
        rec.receive(ReceivedEvent(at, type_, self.index))
        self.server.log(
            "chaos.received",
            logging.DEBUG,
            session=rec.key,
            connection=self.index,
            type=type_,
            at=at,
        )

    async def _on_text(self, data: str) -> None:
        try:
            event = json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deeply
            self._record("<invalid json>")
            await self.send_error(
                "The server could not parse the event: invalid JSON.", code="invalid_json"
            )
            return
        if not isinstance(event, dict):
            self._record("<invalid>")
            await self.send_error("Invalid event: expected a JSON object.", code="invalid_event")
            return
        raw_id = event.get("event_id")
        event_id = raw_id if isinstance(raw_id, str) else None
        type_ = event.get("type")
        self._record(type_ if isinstance(type_, str) else "<missing type>")
        try:
            if not isinstance(type_, str):
                raise missing("type")
            if raw_id is not None and event_id is None:
                raise Invalid(
                    "Invalid type for 'event_id': expected a string.",
                    code="invalid_type",
                    param="event_id",
                )
            handler = self._handlers.get(type_)
            if handler is None:
                raise unknown_type(type_)
            await handler(event)
        except Invalid as e:
            await self.send_error(
                e.message, type_=e.type, code=e.code, param=e.param, event_id=event_id
            )
        except Exception as e:  # a bug in a handler must not end the connection
            logger.exception("chaos: handler failed for %s", type_)
            self.server.log("chaos.handler_failed", logging.ERROR, type=type_, error=repr(e))
            await self.send_error(
                server_error_message(self.session_id), type_="server_error", event_id=event_id
            )

    async def _on_unsupported(self, event: Json) -> None:
        raise Invalid(f"The chaos server does not implement '{event['type']}'.")

    # -- session ----------------------------------------------------------------------------

    async def _on_session_update(self, event: Json) -> None:
        session = require(event, "session", dict)
        settings = self.settings.updated(session, beta=self.beta)  # raises before any change
        self.settings = settings
        td = settings.turn_detection
        if td is None:
            self.vad.reset()
        else:
            self.vad.silence_ms = int(td.get("silence_duration_ms", 500))
            self.vad.prefix_padding_ms = int(td.get("prefix_padding_ms", 300))
        session_json = settings.to_json(beta=self.beta, session_id=self.session_id)
        await self.send({"type": "session.updated", "session": session_json})

    # -- input audio ------------------------------------------------------------------------

    async def _on_append(self, event: Json) -> None:
        audio = require(event, "audio", str)
        try:
            pcm = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid("Invalid 'audio': not base64.", param="audio") from None
        self.buffer_samples += len(pcm) // 2
        if self.settings.turn_detection is None:
            return
        for vad_event in self.vad.feed(pcm):
            if isinstance(vad_event, SpeechStarted):
                await self._on_speech_started(vad_event)
            elif isinstance(vad_event, SpeechStopped):
                await self._on_speech_stopped(vad_event)

    async def _on_speech_started(self, ev: SpeechStarted) -> None:
        self.speech_item = self.server.ids.item()
        await self.send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": ev.audio_start_ms,
                "item_id": self.speech_item,
            }
        )
        td = self.settings.turn_detection or {}
        if td.get("interrupt_response", True):
            await self.cancel_active("turn_detected")

    async def _on_speech_stopped(self, ev: SpeechStopped) -> None:
        item_id = self.speech_item or self.server.ids.item()
        self.speech_item = None
        await self.send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": ev.audio_end_ms,
                "item_id": item_id,
            }
        )
        await self._commit(item_id, event_id=None)
        td = self.settings.turn_detection or {}
        if td.get("create_response", True):
            await self.begin_response(metadata=None, client_event_id=None)

    async def _on_commit(self, event: Json) -> None:
        await self._commit(self.server.ids.item(), event_id=event.get("event_id"))

    async def _commit(self, item_id: str, *, event_id: object) -> None:
        ms = self.buffer_samples * 1000 // SAMPLE_RATE
        if ms < MIN_COMMIT_MS:
            await self.send_error(
                f"Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
                event_id=event_id if isinstance(event_id, str) else None,
            )
            return
        self.buffer_samples = 0
        previous = self.items[-1] if self.items else None
        self.items.append(item_id)
        # a user commit is a new turn: whatever the previous one was waiting for is moot
        self.session.open_turn()
        turn = self.session.turn
        await self.send(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": previous,
            }
        )
        item: Json = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self.send(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
        )
        await self.send_item_done(item)
        if self.settings.transcription is not None:
            self.spawn(self._transcribe(item_id, turn, ms), f"chaos-transcribe-{item_id}")

    async def _transcribe(self, item_id: str, turn: int, ms: int) -> None:
        """The user's transcript, asynchronously, as the real API's transcription model."""
        await asyncio.sleep(self.server.transcription_delay)
        await self.thawed.wait()
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": f"user t{turn}",
                "usage": {"type": "duration", "seconds": round(ms / 1000, 3)},
            }
        )

    async def _on_clear(self, event: Json) -> None:
        self.buffer_samples = 0
        self.vad.reset()
        self.speech_item = None
        await self.send({"type": "input_audio_buffer.cleared"})

    # -- conversation items -----------------------------------------------------------------

    async def _on_item_create(self, event: Json) -> None:
        item = require(event, "item", dict)
        previous = require(event, "previous_item_id", str, optional=True)
        echoed = validate_item(item, beta=self.beta)
        item_id = echoed.get("id")
        if item_id is None:
            item_id = echoed["id"] = self.server.ids.item()
        if item_id in self.items:
            raise Invalid(
                f"Item with item_id '{item_id}' already exists.",
                code="item_create_duplicate_item_id",
                param="item.id",
            )
        if previous is None:
            index = len(self.items)
        elif previous == "root":
            index = 0
        elif previous in self.items:
            index = self.items.index(previous) + 1
        else:
            raise Invalid(
                f"Previous item with id '{previous}' not found.",
                code="item_create_invalid_previous_item_id",
                param="previous_item_id",
            )
        self.items.insert(index, item_id)
        await self.send(
            {
                "type": "conversation.item.added",
                "previous_item_id": self.items[index - 1] if index else None,
                "item": echoed,
            }
        )
        await self.send_item_done(echoed)

    async def _on_item_delete(self, event: Json) -> None:
        item_id = require(event, "item_id", str)
        if item_id not in self.items:
            raise Invalid(
                f"Item with item_id '{item_id}' not found.",
                code="item_delete_invalid_item_id",
                param="item_id",
            )
        self.items.remove(item_id)
        await self.send({"type": "conversation.item.deleted", "item_id": item_id})

    async def _on_item_truncate(self, event: Json) -> None:
        item_id = require(event, "item_id", str)
        content_index = require(event, "content_index", int)
        audio_end_ms = require(event, "audio_end_ms", int)
        if item_id not in self.items:
            raise Invalid(
                f"Item with item_id '{item_id}' not found.",
                code="item_truncate_invalid_item_id",
                param="item_id",
            )
        await self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": content_index,
                "audio_end_ms": audio_end_ms,
            }
        )

    # -- responses --------------------------------------------------------------------------

    async def _on_response_create(self, event: Json) -> None:
        params = require(event, "response", dict, optional=True) or {}
        metadata, audio = response_params(params, beta=self.beta, audio=self.settings.audio_out)
        await self.begin_response(
            metadata=metadata, client_event_id=event.get("event_id"), audio=audio
        )

    async def _on_response_cancel(self, event: Json) -> None:
        response_id = require(event, "response_id", str, optional=True)
        active = self.active
        if active is None or (response_id is not None and response_id != active.id):
            # the plugin ignores errors starting with "Cancellation failed", as the real API's
            raise Invalid(
                "Cancellation failed: no active response found",
                code="response_cancel_not_active",
            )
        await self.cancel_active("client_cancelled")

    async def begin_response(
        self,
        *,
        metadata: dict[str, str] | None,
        client_event_id: object,
        audio: bool | None = None,
    ) -> None:
        event_id = client_event_id if isinstance(client_event_id, str) else None
        if self.active is not None:
            await self.send_error(
                f"Conversation already has an active response in progress: {self.active.id}. "
                "Wait until the response is finished before creating a new one.",
                code="conversation_already_has_active_response",
                event_id=event_id,
            )
            return
        s = self.session
        if s.turn == 0:
            # a reply before the caller ever spoke (a greeting) is turn 1; after that only the
            # caller's commits open turns, so a retry after an answer belongs to the same turn
            s.open_turn()
        fault: Fault | None = None
        if s.sticky is not None:
            fault = s.sticky
        elif not s.fault_taken:
            s.fault_taken = True
            fault = self.server.schedule.fault_for(s.record.key, s.turn)
        hook = hook_for(fault)
        if fault is not None and await hook.before_response(self, fault, event_id):
            return
        s.record.responses += 1
        r = Response(self.server.ids.response(), s.turn, fault, hook, metadata, event_id)
        r.sequence = s.record.responses
        r.audio = self.settings.audio_out if audio is None else audio
        self.active = r
        created = _response.response_object(self, r, "in_progress", None)
        await self.send({"type": "response.created", "response": created})
        r.task = self.spawn(_response.run(self, r), f"chaos-response-{r.id}")

    async def cancel_active(self, reason: str) -> None:
        r = self.active
        if r is not None:
            await _response.cancel(self, r, reason)
