"""The chaos Realtime server: a local stand-in for the OpenAI / Azure Realtime API, failing on cue.

The real livekit plugin connects to it (`RealtimeModel(base_url=server.url)` or
`RealtimeModel.with_azure(azure_endpoint=server.azure_endpoint, ...)`), converses with it, and
meets the faults the schedule names (see `faults.py`). It never looks at who is judging the
conversation: it only speaks the protocol and records what it received and what it injected.

Rules:
1. Paths ending in `/realtime` are accepted. A query with `api-version` is the legacy Azure
   path: server events then use the beta names (`response.audio.delta`,
   `conversation.item.created`, ...) and the beta session shape; otherwise GA names.
2. A websocket belongs to a chaos session keyed by the `chaos_session` query parameter, else by
   a hash of the credential header; the session's turn counter survives reconnects.
3. A turn opens on a user commit (server VAD or `input_audio_buffer.commit`) or on a
   `response.create` when none is open. The schedule's fault applies to the first response of
   a turn only; further responses in the same turn are clean. A turn closes when a response in
   it completes with its answer item played in full.
4. `fatal_error` and `flap` are sticky: from their turn on, every response fails with
   `insufficient_quota` (as an account out of quota does) / every connection is accepted then
   closed.
5. A reply runs as a task beside the receive loop, so `response.cancel` and barge-in can end
   it with `response.done` status `cancelled`, even when it is stalled.
6. Unknown or malformed client events get an `error` event; the connection survives.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from aiohttp import WSCloseCode, WSMsgType, web

from realtime_supervisor.errors import ConfigError

from .faults import LATE_RESUME_DELTAS, TOOL_NAME, Fault, Schedule, parse_schedule
from .pace import DEFAULT_PACE, Pace, parse_pace
from .vad import (
    ANSWER_HZ,
    PREAMBLE_HZ,
    EnergyVad,
    SpeechStarted,
    SpeechStopped,
    amplitude_for,
    tone,
)

__all__ = ["ChaosServer", "Injection", "ReceivedEvent", "SessionRecord"]

logger = logging.getLogger("realtime_supervisor.chaos")

SAMPLE_RATE: Final = 24000
_AUDIO_FORMAT: Final = {"type": "audio/pcm", "rate": SAMPLE_RATE}
_MIN_COMMIT_MS: Final = 100  # the real API refuses to commit less than 100 ms of audio
# the real API pings about every 20 s (livekit's client sets no heartbeat of its own)
DEFAULT_PING_INTERVAL: Final = 20.0
SESSION_LIMIT_MESSAGE: Final = "Your session hit the maximum duration of 60 minutes."
QUOTA_MESSAGE: Final = (
    "You exceeded your current quota, please check your plan and billing details."
)
# a fatal error's close: the capture shows a 3000/4000-range code with reason `type.code`
FATAL_CLOSE_CODE: Final = 4000

# GA name -> legacy (beta) name, the inverse of the plugin's _AZURE_EVENT_MAPPING
_BETA_NAMES: Final = {
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "conversation.item.added": "conversation.item.created",
}
_BETA_CONTENT: Final = {"output_audio": "audio", "output_text": "text"}

Clock = Callable[[], float]
# faults that bite after `Fault.deltas` audio deltas of the reply
_MID_REPLY: Final = frozenset(
    {
        "stall_mid",
        "drop_mid",
        "dead_mid",
        "tcp_drop",
        "session_limit",
        "incomplete",
        "content_filter",
    }
)
Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """A client event as received: its type (never its payload) and when it arrived."""

    at: float
    type: str
    connection: int


@dataclass(frozen=True, slots=True)
class Injection:
    """A fault the server injected; `onset` is the monotonic time it took effect."""

    kind: str
    turn: int
    onset: float
    value: float | None
    connection: int
    response_id: str | None = None


@dataclass(slots=True)
class SessionRecord:
    """Everything one chaos session received and injected, for tests and logs."""

    key: str
    connections: int = 0  # websockets accepted, flapped ones included
    received: list[ReceivedEvent] = field(default_factory=list)
    injected: list[Injection] = field(default_factory=list)
    responses: int = 0  # response.created sent
    items: int = 0  # assistant output items sent
    turns: int = 0  # user turns opened
    answered: int = 0  # turns closed by a completed answer
    cancelled: int = 0  # responses ended as cancelled

    def received_types(self) -> list[str]:
        """Client event types in arrival order."""
        return [r.type for r in self.received]

    def injected_kinds(self) -> list[str]:
        """Injected fault kinds in order."""
        return [i.kind for i in self.injected]


class _Invalid(Exception):
    """A client event the server refuses: becomes an `error` event, the connection lives on."""

    def __init__(self, message: str, *, code: str = "invalid_value", param: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param


class _Session:
    """State that survives reconnects: the turn counter, sticky faults and the record."""

    def __init__(self, key: str) -> None:
        self.record = SessionRecord(key)
        self.turn = 0
        self.turn_open = False
        self.fault_taken = False  # the open turn's first response has started
        self.flapping = False
        self.fatal = False
        self.fatal_close = False  # every connection gets the quota error and the close
        self.connections: set[_Connection] = set()

    def open_turn(self) -> None:
        self.turn += 1
        self.turn_open = True
        self.fault_taken = False
        self.record.turns += 1


@dataclass(slots=True)
class _Response:
    id: str
    turn: int
    fault: Fault | None
    metadata: dict[str, str] | None
    client_event_id: str | None
    sequence: int = 0  # response number in the session, marked in the tone's amplitude
    said: str = ""  # the transcript of the current item sent so far
    output: list[Json] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    finished: bool = False  # response.done was sent (or never will be, the socket dropped)


def _ids(prefix: str) -> Callable[[], str]:
    counter = itertools.count(1)
    stamp = hashlib.sha1(str(time.time_ns()).encode()).hexdigest()[:6]
    return lambda: f"{prefix}{stamp}{next(counter):06d}"


def _require(
    event: Json, name: str, kind: type | tuple[type, ...], *, optional: bool = False
) -> Any:
    if name not in event or event[name] is None:
        if optional:
            return None
        raise _Invalid(
            f"Missing required parameter: '{name}'.", code="missing_required_parameter", param=name
        )
    value = event[name]
    # bool is an int in Python; the protocol never accepts one for the other
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise _Invalid(f"Invalid type for '{name}'.", code="invalid_type", param=name)
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


class _Connection:
    """One websocket: its conversation, its session config and at most one running response."""

    def __init__(
        self,
        server: ChaosServer,
        session: _Session,
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
        # dead: the connection froze (dead_mid) or its TCP was aborted (tcp_drop); nothing is
        # sent, nothing is answered, and the socket is left as it is
        self.dead = False
        # cleared while late_resume freezes the connection: client events wait in the socket
        self.thawed = asyncio.Event()
        self.thawed.set()
        self.released = asyncio.Event()  # set by stop(): a dead connection may end
        self.index = index
        self.beta = beta
        self.model = model
        self.instructions = ""
        self.voice = "alloy"
        self.turn_detection: Json | None = {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
            "create_response": True,
            "interrupt_response": True,
        }
        self.vad = EnergyVad(threshold_rms=server.vad_threshold_rms)
        self.buffer_samples = 0
        self.speech_item: str | None = None  # item id announced with speech_started
        self.items: list[str] = []  # conversation order
        self.active: _Response | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.conversation_id = server._new_conv()
        self.session_id = server._new_sess()
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
        }

    # -- sending ----------------------------------------------------------------------------

    async def send(self, event: Json) -> None:
        if self.ws.closed or self.dead:
            return
        event = {"event_id": self.server._new_event(), **event}
        if self.beta:
            event = _to_beta(event)
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
        error: Json = {"type": type_, "code": code, "message": message, "param": param}
        error["event_id"] = event_id
        await self.send({"type": "error", "error": error})

    def session_object(self) -> Json:
        if self.beta:
            return {
                "id": self.session_id,
                "modalities": ["audio", "text"],
                "instructions": self.instructions,
                "voice": self.voice,
                "input_audio_format": "pcm16",
                "output_audio_format": "pcm16",
                "turn_detection": self.turn_detection,
                "tool_choice": "auto",
                "tools": [],
                "max_response_output_tokens": "inf",
            }
        return {
            "type": "realtime",
            "model": self.model,
            "output_modalities": ["audio"],
            "instructions": self.instructions,
            "audio": {
                "input": {"format": dict(_AUDIO_FORMAT), "turn_detection": self.turn_detection},
                "output": {"format": dict(_AUDIO_FORMAT), "voice": self.voice, "speed": 1.0},
            },
            "tool_choice": "auto",
            "tools": [],
            "max_output_tokens": "inf",
        }

    def response_object(self, r: _Response, status: str, details: Json | None = None) -> Json:
        obj: Json = {
            "object": "realtime.response",
            "id": r.id,
            "status": status,
            "status_details": details,
            "output": [dict(item) for item in r.output],
            "conversation_id": self.conversation_id,
            "max_output_tokens": "inf",
            "metadata": r.metadata,
            "usage": None,
        }
        if status != "in_progress":
            audio_tokens = 10 * sum(1 for item in r.output if item.get("content"))
            obj["usage"] = {
                "total_tokens": 20 + audio_tokens,
                "input_tokens": 20,
                "output_tokens": audio_tokens,
                "input_token_details": {"text_tokens": 10, "audio_tokens": 10, "cached_tokens": 0},
                "output_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
            }
        if self.beta:
            obj.update(modalities=["audio", "text"], voice=self.voice, output_audio_format="pcm16")
        else:
            obj.update(
                output_modalities=["audio"],
                audio={"output": {"format": dict(_AUDIO_FORMAT), "voice": self.voice}},
            )
        return obj

    # -- the receive loop -------------------------------------------------------------------

    async def run(self) -> None:
        await self.send({"type": "session.created", "session": self.session_object()})
        if self.session.fatal_close:
            # the account is out of quota: each new connection is torn down as it opens
            await self.fatal_teardown(event_id=None)
            return
        if self.server.ping_interval is not None:
            self._spawn(self._ping_loop(self.server.ping_interval), "chaos-ping")
        try:
            # autoping and autoclose are off, so that a dead connection answers nothing
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
                    await self.send_error("Binary frames are not supported; send JSON text.")
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

    def _spawn(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def fatal_teardown(self, *, event_id: str | None) -> None:
        """The real API's fatal error: an `error` event and the close in the same millisecond."""
        await self.send_error(
            QUOTA_MESSAGE, type_="insufficient_quota", code="insufficient_quota", event_id=event_id
        )
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close(
                code=FATAL_CLOSE_CODE, message=b"insufficient_quota.insufficient_quota"
            )

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
        at = self.server._clock()
        rec = self.session.record
        rec.received.append(ReceivedEvent(at, type_, self.index))
        self.server._log(
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
        except ValueError:
            self._record("<invalid json>")
            await self.send_error("The server could not parse the event: invalid JSON.")
            return
        if not isinstance(event, dict):
            self._record("<invalid>")
            await self.send_error("An event must be a JSON object.")
            return
        raw_id = event.get("event_id")
        event_id = raw_id if isinstance(raw_id, str) else None
        type_ = event.get("type")
        self._record(type_ if isinstance(type_, str) else "<missing type>")
        try:
            if not isinstance(type_, str):
                raise _Invalid(
                    "Missing required parameter: 'type'.",
                    code="missing_required_parameter",
                    param="type",
                )
            if raw_id is not None and event_id is None:
                raise _Invalid(
                    "Invalid type for 'event_id'.", code="invalid_type", param="event_id"
                )
            handler = self._handlers.get(type_)
            if handler is None:
                raise _Invalid(f"Invalid value: '{type_}'. Unknown event type.", param="type")
            await handler(event)
        except _Invalid as e:
            await self.send_error(e.message, code=e.code, param=e.param, event_id=event_id)

    # -- session ----------------------------------------------------------------------------

    async def _on_session_update(self, event: Json) -> None:
        session = _require(event, "session", dict)
        # GA nests turn detection under audio.input; beta (legacy Azure) keeps it flat
        found, td = False, None
        audio = session.get("audio")
        if isinstance(audio, dict) and isinstance(audio.get("input"), dict):
            if "turn_detection" in audio["input"]:
                found, td = True, audio["input"]["turn_detection"]
            output = audio.get("output")
            if isinstance(output, dict) and isinstance(output.get("voice"), str):
                self.voice = output["voice"]
        elif audio is not None and not isinstance(audio, dict):
            raise _Invalid(
                "Invalid type for 'session.audio'.", code="invalid_type", param="session.audio"
            )
        if "turn_detection" in session:
            found, td = True, session["turn_detection"]
        if found:
            self.turn_detection = self._parse_turn_detection(td)
        instructions = session.get("instructions")
        if instructions is not None:
            if not isinstance(instructions, str):
                raise _Invalid(
                    "Invalid type for 'session.instructions'.",
                    code="invalid_type",
                    param="session.instructions",
                )
            self.instructions = instructions
        if isinstance(session.get("voice"), str):
            self.voice = session["voice"]
        await self.send({"type": "session.updated", "session": self.session_object()})

    def _parse_turn_detection(self, td: object) -> Json | None:
        if td is None:
            self.vad.reset()
            return None
        param = "session.turn_detection"
        if not isinstance(td, dict):
            raise _Invalid(f"Invalid type for '{param}'.", code="invalid_type", param=param)
        kind = td.get("type", "server_vad")
        if kind not in ("server_vad", "semantic_vad"):
            raise _Invalid(f"Invalid value for '{param}.type': {kind!r}.", param=param)
        # the energy VAD stands in for both kinds; keep only the fields each kind has
        keys: dict[str, type | tuple[type, ...]] = {
            "create_response": bool,
            "interrupt_response": bool,
        }
        if kind == "server_vad":
            keys.update(threshold=(int, float), prefix_padding_ms=int, silence_duration_ms=int)
        else:
            keys.update(eagerness=str)
        out: Json = {"type": kind, "create_response": True, "interrupt_response": True}
        for key, types in keys.items():
            if td.get(key) is not None:
                out[key] = _require(td, key, types)
        self.vad.silence_ms = int(out.get("silence_duration_ms", 500))
        self.vad.prefix_padding_ms = int(out.get("prefix_padding_ms", 300))
        return out

    # -- input audio ------------------------------------------------------------------------

    async def _on_append(self, event: Json) -> None:
        audio = _require(event, "audio", str)
        try:
            pcm = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise _Invalid("Invalid 'audio': not base64.", param="audio") from None
        self.buffer_samples += len(pcm) // 2
        if self.turn_detection is None:
            return
        for vad_event in self.vad.feed(pcm):
            if isinstance(vad_event, SpeechStarted):
                await self._on_speech_started(vad_event)
            elif isinstance(vad_event, SpeechStopped):
                await self._on_speech_stopped(vad_event)

    async def _on_speech_started(self, ev: SpeechStarted) -> None:
        self.speech_item = self.server._new_item()
        await self.send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": ev.audio_start_ms,
                "item_id": self.speech_item,
            }
        )
        td = self.turn_detection or {}
        if td.get("interrupt_response", True):
            await self.cancel_active("turn_detected")

    async def _on_speech_stopped(self, ev: SpeechStopped) -> None:
        item_id = self.speech_item or self.server._new_item()
        self.speech_item = None
        await self.send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": ev.audio_end_ms,
                "item_id": item_id,
            }
        )
        await self._commit(item_id, event_id=None)
        td = self.turn_detection or {}
        if td.get("create_response", True):
            await self.begin_response(metadata=None, client_event_id=None)

    async def _on_commit(self, event: Json) -> None:
        await self._commit(self.server._new_item(), event_id=event.get("event_id"))

    async def _commit(self, item_id: str, *, event_id: object) -> None:
        ms = self.buffer_samples * 1000 // SAMPLE_RATE
        if ms < _MIN_COMMIT_MS:
            await self.send_error(
                f"Error committing input audio buffer: buffer too small. Expected at least "
                f"{_MIN_COMMIT_MS}ms of audio, but buffer only has {ms:.2f}ms of audio.",
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
        item = _require(event, "item", dict)
        previous = _require(event, "previous_item_id", str, optional=True)
        if not isinstance(item.get("type"), str):
            raise _Invalid("Missing required parameter: 'item.type'.", param="item.type")
        item_id = item.get("id")
        if item_id is None:
            item_id = self.server._new_item()
        elif not isinstance(item_id, str):
            raise _Invalid("Invalid type for 'item.id'.", code="invalid_type", param="item.id")
        if item_id in self.items:
            raise _Invalid(
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
            raise _Invalid(
                f"Previous item with id '{previous}' not found.",
                code="item_create_invalid_previous_item_id",
                param="previous_item_id",
            )
        self.items.insert(index, item_id)
        echoed = {**item, "id": item_id, "object": "realtime.item", "status": "completed"}
        await self.send(
            {
                "type": "conversation.item.added",
                "previous_item_id": self.items[index - 1] if index else None,
                "item": echoed,
            }
        )

    async def _on_item_delete(self, event: Json) -> None:
        item_id = _require(event, "item_id", str)
        if item_id not in self.items:
            raise _Invalid(
                f"Item with item_id '{item_id}' not found.",
                code="item_delete_invalid_item_id",
                param="item_id",
            )
        self.items.remove(item_id)
        await self.send({"type": "conversation.item.deleted", "item_id": item_id})

    async def _on_item_truncate(self, event: Json) -> None:
        item_id = _require(event, "item_id", str)
        content_index = _require(event, "content_index", int)
        audio_end_ms = _require(event, "audio_end_ms", int)
        if item_id not in self.items:
            raise _Invalid(
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
        params = _require(event, "response", dict, optional=True) or {}
        metadata = params.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
        ):
            raise _Invalid(
                "Invalid type for 'response.metadata': expected a map of strings.",
                code="invalid_type",
                param="response.metadata",
            )
        await self.begin_response(metadata=metadata, client_event_id=event.get("event_id"))

    async def _on_response_cancel(self, event: Json) -> None:
        response_id = _require(event, "response_id", str, optional=True)
        active = self.active
        if active is None or (response_id is not None and response_id != active.id):
            # the plugin ignores errors starting with "Cancellation failed", as the real API's
            raise _Invalid(
                "Cancellation failed: no active response found",
                code="response_cancel_not_active",
            )
        await self.cancel_active("client_cancelled")

    async def begin_response(
        self, *, metadata: dict[str, str] | None, client_event_id: object
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
        if s.fatal:
            fault = Fault("fatal_error")
        elif not s.fault_taken:
            s.fault_taken = True
            fault = self.server.schedule.fault_for(s.record.key, s.turn)
        kind = fault.kind if fault else None
        if kind == "no_response":
            self.inject(fault, None)
            return
        if kind == "error_event":
            self.inject(fault, None)
            await self.send_error(
                "The server had an error while processing your request. Sorry about that!",
                type_="server_error",
                code="server_error",
                event_id=event_id,
            )
            return
        if kind == "fatal_close":
            s.fatal_close = True
            self.inject(fault, None)
            await self.fatal_teardown(event_id=event_id)
            return
        if kind == "flap":
            s.flapping = True
            self.inject(fault, None)
            await self.ws.close(code=WSCloseCode.GOING_AWAY, message=b"chaos: flap")
            return
        s.record.responses += 1
        r = _Response(self.server._new_resp(), s.turn, fault, metadata, event_id)
        r.sequence = s.record.responses
        self.active = r
        await self.send(
            {"type": "response.created", "response": self.response_object(r, "in_progress")}
        )
        r.task = self._spawn(self._run_response(r), f"chaos-response-{r.id}")

    def inject(self, fault: Fault | None, r: _Response | None) -> None:
        assert fault is not None
        rec = self.session.record
        onset = self.server._clock()
        turn = r.turn if r else self.session.turn
        inj = Injection(fault.kind, turn, onset, fault.value, self.index, r.id if r else None)
        rec.injected.append(inj)
        self.server._log(
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

    async def cancel_active(self, reason: str) -> None:
        r = self.active
        if r is None:
            return
        self.active = None
        if r.task is not None and not r.task.done():
            r.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await r.task
        if r.finished:
            return
        r.finished = True
        for item in r.output:
            if item["status"] == "in_progress":
                item["status"] = "incomplete"
        self.session.record.cancelled += 1
        details = {"type": "cancelled", "reason": reason}
        await self.send(
            {"type": "response.done", "response": self.response_object(r, "cancelled", details)}
        )

    async def _finish(self, r: _Response, status: str, details: Json | None = None) -> None:
        r.finished = True
        if self.active is r:
            self.active = None
        await self.send(
            {"type": "response.done", "response": self.response_object(r, status, details)}
        )

    async def _cut(self, r: _Response, part: Json, reason: str) -> None:
        """End the response as `incomplete` mid-answer: the done events, then response.done."""
        item = r.output[-1]
        where = {"response_id": r.id, "output_index": part["output_index"]}
        said = r.said
        await self.send({"type": "response.output_audio.done", **part})
        await self.send(
            {"type": "response.output_audio_transcript.done", **part, "transcript": said}
        )
        await self.send(
            {
                "type": "response.content_part.done",
                **part,
                "part": {"type": "audio", "transcript": said},
            }
        )
        item["status"] = "incomplete"
        item["content"] = [{"type": "output_audio", "transcript": said}]
        await self.send({"type": "response.output_item.done", **where, "item": dict(item)})
        await self._finish(r, "incomplete", {"type": "incomplete", "reason": reason})

    async def _send_tool_call(self, r: _Response, seconds: float) -> None:
        """One function_call item calling TOOL_NAME with `{"seconds": seconds}`."""
        item_id = self.server._new_item()
        arguments = json.dumps({"seconds": seconds})
        item: Json = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "call_id": "call_" + item_id,
            "name": TOOL_NAME,
            "arguments": "",
        }
        r.output.append(item)
        previous = self.items[-1] if self.items else None
        self.items.append(item_id)
        where = {"response_id": r.id, "output_index": 0}
        await self.send({"type": "response.output_item.added", **where, "item": dict(item)})
        await self.send(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": dict(item)}
        )
        call = {**where, "item_id": item_id, "call_id": item["call_id"]}
        await self.send(
            {"type": "response.function_call_arguments.delta", **call, "delta": arguments}
        )
        await self.send(
            {"type": "response.function_call_arguments.done", **call, "arguments": arguments}
        )
        item.update(status="completed", arguments=arguments)
        self.session.record.items += 1
        await self.send({"type": "response.output_item.done", **where, "item": dict(item)})

    async def _run_response(self, r: _Response) -> None:
        fault = r.fault
        kind = fault.kind if fault else None
        s = self.session
        if kind == "failed_response":
            self.inject(fault, r)
            error = {
                "type": "server_error",
                "code": "server_error",
                "message": "The server had an error.",
            }
            await self._finish(r, "failed", {"type": "failed", "error": error})
            return
        if kind == "fatal_error":
            s.fatal = True
            self.inject(fault, r)
            message = "You exceeded your current quota, please check your plan and billing details."
            error = {"type": "insufficient_quota", "code": "insufficient_quota", "message": message}
            await self._finish(r, "failed", {"type": "failed", "error": error})
            await self.send_error(
                message,
                type_="insufficient_quota",
                code="insufficient_quota",
                event_id=r.client_event_id,
            )
            return
        if kind == "tool_call" and fault is not None:
            # not a fault: the turn stays open for the reply livekit asks for with the output
            self.inject(fault, r)
            await self._send_tool_call(r, fault.seconds)
            await self._finish(r, "completed")
            return

        server = self.server
        answer_seconds = fault.seconds if kind == "long_answer" and fault else server.reply_seconds
        plan: list[tuple[str, float | None, float]] = []
        if kind == "multi_message":
            plan.append(
                ("preamble", PREAMBLE_HZ, max(server.delta_seconds, server.reply_seconds / 2))
            )
        elif kind == "multi_message_empty":
            plan.append(("empty", None, 0.0))
        plan.append(("answer", ANSWER_HZ, answer_seconds))

        amplitude = amplitude_for(r.sequence)
        sent = 0  # audio deltas sent in this response
        loop = asyncio.get_running_loop()
        start: float | None = None  # loop time of the first delta, for real-time pacing
        first_delay = fault.seconds if kind == "slow_first_audio" and fault else 0.0

        async def fault_point(part: Json | None) -> bool:
            """Apply a mid-reply fault when its delta count is reached; True = stop."""
            if kind == "late_resume" and sent == LATE_RESUME_DELTAS and fault is not None:
                self.inject(fault, r)
                # the connection freezes both ways (a network hiccup): the response stays open,
                # what the client sends waits in the socket, and is handled once it thaws, so
                # a re-issue meets this response still open or already cancelled, never beside it
                self.thawed.clear()
                try:
                    await asyncio.sleep(fault.seconds)
                finally:
                    self.thawed.set()
                return False
            if fault is None or sent != fault.deltas or kind not in _MID_REPLY:
                return False
            self.inject(fault, r)
            if kind == "drop_mid":
                r.finished = True  # the socket goes; no response.done will ever follow
                await self.ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"chaos: drop")
                return True
            if kind == "tcp_drop":
                r.finished = True
                self.dead = True  # no close frame: the TCP connection is simply gone
                transport = self.request.transport
                if transport is not None:
                    transport.abort()
                return True
            if kind == "session_limit":
                r.finished = True
                await self.send_error(SESSION_LIMIT_MESSAGE, code="session_expired", event_id=None)
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self.ws.close(
                        code=WSCloseCode.GOING_AWAY, message=SESSION_LIMIT_MESSAGE.encode()
                    )
                return True
            if kind in ("incomplete", "content_filter") and part is not None:
                reason = "max_output_tokens" if kind == "incomplete" else "content_filter"
                await self._cut(r, part, reason)
                return True
            if kind == "dead_mid":
                self.dead = True  # nothing more is sent or answered; the socket stays open
            await asyncio.Event().wait()  # stalled: only response.cancel or close ends this
            return True

        for output_index, (name, hz, seconds) in enumerate(plan):
            item_id = server._new_item()
            item: Json = {
                "id": item_id,
                "object": "realtime.item",
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            r.output.append(item)
            if output_index == 1:
                self.inject(fault, r)  # the response turns multi-message here
            previous = self.items[-1] if self.items else None
            self.items.append(item_id)
            where = {"response_id": r.id, "output_index": output_index}
            await self.send({"type": "response.output_item.added", **where, "item": dict(item)})
            await self.send(
                {
                    "type": "conversation.item.added",
                    "previous_item_id": previous,
                    "item": dict(item),
                }
            )
            s.record.items += 1
            if hz is None:
                item["status"] = "completed"
                await self.send({"type": "response.output_item.done", **where, "item": dict(item)})
                continue
            part = {**where, "item_id": item_id, "content_index": 0}
            await self.send(
                {
                    "type": "response.content_part.added",
                    **part,
                    "part": {"type": "audio", "transcript": ""},
                }
            )
            transcript = f"{name} t{r.turn}"
            words = transcript.split(" ")
            samples = round(server.delta_seconds * SAMPLE_RATE)
            count = max(1, round(seconds / server.delta_seconds))
            for i in range(count):
                if await fault_point(part):
                    return
                if start is None:
                    if kind in ("slow_first_audio", "long_answer"):
                        self.inject(fault, r)
                    if first_delay > 0:
                        await asyncio.sleep(first_delay)
                    start = loop.time()
                else:
                    due = start + sent * server.delta_seconds / server.pace
                    await asyncio.sleep(max(0.0, due - loop.time()))
                if i < len(words):
                    delta = words[i] if i == 0 else " " + words[i]
                    r.said = (r.said + delta) if i else delta
                    await self.send(
                        {"type": "response.output_audio_transcript.delta", **part, "delta": delta}
                    )
                pcm = tone(hz, start=i * samples, count=samples, amplitude=amplitude)
                await self.send(
                    {
                        "type": "response.output_audio.delta",
                        **part,
                        "delta": base64.b64encode(pcm).decode("ascii"),
                    }
                )
                sent += 1
            for word in words[count:]:  # a reply shorter than its transcript still says it all
                await self.send(
                    {"type": "response.output_audio_transcript.delta", **part, "delta": " " + word}
                )
            if await fault_point(part):
                return
            await self.send({"type": "response.output_audio.done", **part})
            await self.send(
                {"type": "response.output_audio_transcript.done", **part, "transcript": transcript}
            )
            await self.send(
                {
                    "type": "response.content_part.done",
                    **part,
                    "part": {"type": "audio", "transcript": transcript},
                }
            )
            item["status"] = "completed"
            item["content"] = [{"type": "output_audio", "transcript": transcript}]
            await self.send({"type": "response.output_item.done", **where, "item": dict(item)})
        # the last plan step is always the answer, so the whole answer has now been sent
        if s.turn_open and s.turn == r.turn:
            s.turn_open = False
            s.record.answered += 1
        await self._finish(r, "completed")


def _to_beta(event: Json) -> Json:
    """Rename a GA event to the legacy (beta) protocol the old Azure api-versions speak."""
    out = dict(event)
    out["type"] = _BETA_NAMES.get(event["type"], event["type"])
    if isinstance(out.get("item"), dict):
        out["item"] = _beta_item(out["item"])
    response = out.get("response")
    if isinstance(response, dict) and isinstance(response.get("output"), list):
        out["response"] = {**response, "output": [_beta_item(i) for i in response["output"]]}
    return out


def _beta_item(item: Json) -> Json:
    content = item.get("content")
    if not isinstance(content, list):
        return item
    parts = [
        {**p, "type": _BETA_CONTENT.get(str(p.get("type")), p.get("type"))}
        if isinstance(p, dict)
        else p
        for p in content
    ]
    return {**item, "content": parts}


class ChaosServer:
    """A fake Realtime server on `host:port` that injects the faults `faults` schedules.

    async with ChaosServer(faults="clean,stall_mid=3") as server:
        model = RealtimeModel(base_url=server.url, api_key="k")
        ...
        server.sessions["..."].injected
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: str | Schedule = "clean",
        seed: int = 0,
        reply_seconds: float = 1.0,
        *,
        delta_seconds: float = 0.1,
        pace: Pace = DEFAULT_PACE,
        ping_interval: float | None = DEFAULT_PING_INTERVAL,
        vad_threshold_rms: float = 1000.0,
        log_file: str | Path | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.schedule = faults if isinstance(faults, Schedule) else parse_schedule(faults, seed)
        self.host = host
        self._port = port
        self.seed = seed
        self.reply_seconds = reply_seconds
        self.delta_seconds = delta_seconds
        self.pace = parse_pace(pace)
        if ping_interval is not None and not ping_interval > 0:
            raise ConfigError(
                "ping_interval", f"expected seconds > 0 or None, got {ping_interval!r}"
            )
        self.ping_interval = ping_interval
        self.vad_threshold_rms = vad_threshold_rms
        self._log_path = Path(log_file) if log_file is not None else None
        self._log_file: IO[str] | None = None
        self._clock = clock
        self.sessions: dict[str, SessionRecord] = {}
        self._sessions: dict[str, _Session] = {}
        self._runner: web.AppRunner | None = None
        self._new_event = _ids("event_")
        self._new_item = _ids("item_")
        self._new_resp = _ids("resp_")
        self._new_conv = _ids("conv_")
        self._new_sess = _ids("sess_")
        self._connection_index = itertools.count(1)

    @property
    def port(self) -> int:
        """The bound port (after `start()`)."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL for `RealtimeModel(base_url=...)`."""
        return f"ws://{self.host}:{self._port}/v1"

    @property
    def azure_endpoint(self) -> str:
        """Endpoint for `RealtimeModel.with_azure(azure_endpoint=...)`."""
        return f"http://{self.host}:{self._port}"

    def session(self, key: str) -> SessionRecord:
        """The record of session `key` (KeyError if it never connected)."""
        return self.sessions[key]

    async def start(self) -> None:
        """Bind and start serving."""
        if self._runner is not None:
            raise RuntimeError("ChaosServer already started")
        if self._log_path is not None:
            self._log_file = self._log_path.open("a", encoding="utf-8")
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port)
        await site.start()
        self._runner = runner
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self._port = int(sockets[0].getsockname()[1])
        self._log(
            "chaos.started", logging.INFO, url=self.url, faults=self.schedule.text, seed=self.seed
        )

    async def aclose(self) -> None:
        """Stop every response, close every websocket, then stop serving."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        connections = [c for s in self._sessions.values() for c in s.connections]
        for conn in connections:
            await conn.stop()
        closes = [
            c.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server closing") for c in connections
        ]
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*closes, return_exceptions=True), timeout=2.0)
        await runner.cleanup()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    async def __aenter__(self) -> ChaosServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- internals --------------------------------------------------------------------------

    def _log(self, event: str, level: int, **fields: Any) -> None:
        line = json.dumps({"event": event, **fields}, default=str)
        logger.log(level, line)
        if self._log_file is not None:
            self._log_file.write(line + "\n")
            self._log_file.flush()

    @staticmethod
    def _session_key(request: web.Request) -> str:
        named = request.query.get("chaos_session")
        if named:
            return named
        credential = request.headers.get("api-key") or request.headers.get("Authorization") or ""
        if not credential:
            return "anonymous"
        # a digest, so the credential itself is never stored or logged
        return "cred-" + hashlib.sha256(credential.encode()).hexdigest()[:12]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not request.path.rstrip("/").endswith("/realtime"):
            raise web.HTTPNotFound(text="chaos server: only */realtime websockets are served")
        key = self._session_key(request)
        beta = "api-version" in request.query
        model = request.query.get("model") or request.query.get("deployment") or "gpt-realtime"
        ws = web.WebSocketResponse(
            timeout=2.0,
            compress=False,
            max_msg_size=16 * 1024 * 1024,
            autoping=False,  # pings are answered by the connection, unless it is dead
            autoclose=False,  # a close frame too
        )
        if not ws.can_prepare(request).ok:
            raise web.HTTPBadRequest(text="chaos server: expected a websocket upgrade")
        await ws.prepare(request)
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = _Session(key)
            self.sessions[key] = session.record
        session.record.connections += 1
        index = next(self._connection_index)
        self._log(
            "chaos.connected",
            logging.INFO,
            session=key,
            connection=index,
            beta=beta,
            path=request.path,
            flapping=session.flapping,
        )
        if session.flapping:
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"chaos: flap")
            return ws
        conn = _Connection(self, session, ws, request, index=index, beta=beta, model=model)
        session.connections.add(conn)
        try:
            await conn.run()
        finally:
            session.connections.discard(conn)
        return ws
