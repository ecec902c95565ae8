"""A whole conversation through the `openai` SDK's own realtime client, against the chaos server.

`AsyncOpenAI(...).realtime.connect(...)` (GA), `AsyncAzureOpenAI(api_version="2025-08-28")
.realtime.connect(...)` (Azure GA) and `AsyncAzureOpenAI(api_version="2024-10-01-preview")
.beta.realtime.connect(...)` (the legacy Azure path livekit uses with an api_version): the SDK
sends its own client events, and every server event it receives is validated with the SDK's
pydantic models (`validate_json`; the SDK itself only `construct`s them), GA or beta.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import TypeAdapter

from realtime_supervisor.chaos import ChaosServer, tone

from .test_chaos_server import _no_extras

pytest.importorskip("websockets", reason="the SDK's realtime client needs openai[realtime]")

pytestmark = [pytest.mark.compat, pytest.mark.timeout(60)]

RATE = 24000
DEPLOYMENT = "gpt-realtime"
# turn 1 clean; the VAD turn 2 calls a tool; turn 3 is cut short (incomplete), then retried
SCHEDULE = "clean,tool_call=1,incomplete=2"


def _pcm(ms: int, loud: bool) -> str:
    count = RATE * ms // 1000
    pcm = tone(300.0, start=0, count=count, amplitude=8000) if loud else b"\x00\x00" * count
    return base64.b64encode(pcm).decode()


class Conversation:
    """Reads raw frames from an SDK connection, validates each, and waits for types."""

    def __init__(self, conn: Any, *, beta: bool) -> None:
        if beta:
            from openai.types.beta.realtime import RealtimeServerEvent
        else:
            from openai.types.realtime import RealtimeServerEvent
        self.conn = conn
        self.adapter: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
        self.events: list[Any] = []
        self.extras: list[tuple[str, list[str]]] = []
        self._new = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            raw = await self.conn.recv_bytes()
            event = self.adapter.validate_json(raw)  # raises on any field the SDK rejects
            if extras := _no_extras(event):
                self.extras.append((event.type, extras))
            self.conn.parse_event(raw)  # and the SDK's own parse takes it
            self.events.append(event)
            self._new.set()

    async def until(self, type_: str, *, after: int = 0, within: float = 10.0) -> Any:
        async with asyncio.timeout(within):
            while True:
                for event in self.events[after:]:
                    if event.type == type_:
                        return event
                if self._task.done():
                    self._task.result()  # a validation error surfaces here, by name
                    raise AssertionError(f"the connection ended before {type_}")
                self._new.clear()
                await self._new.wait()

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    async def close(self) -> None:
        self._task.cancel()
        with pytest.raises((asyncio.CancelledError, Exception)):
            await self._task


@pytest.fixture
async def server() -> AsyncIterator[ChaosServer]:
    async with ChaosServer(faults=SCHEDULE, reply_seconds=1.0, transcription_delay=0.2) as s:
        yield s


async def _speak(conn: Any) -> None:
    """Half a second of tone then silence, in 100 ms appends, through the SDK."""
    for i in range(12):
        await conn.input_audio_buffer.append(audio=_pcm(100, loud=i < 5))


async def _hold_conversation(conn: Any, *, beta: bool) -> Conversation:
    c = Conversation(conn, beta=beta)
    await c.until("session.created")
    if beta:
        await conn.session.update(
            session={
                "instructions": "Be brief.",
                "voice": "alloy",
                "input_audio_transcription": {"model": "whisper-1"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
            }
        )
    else:
        await conn.session.update(
            session={
                "type": "realtime",
                "instructions": "Be brief.",
                "audio": {
                    "input": {
                        "transcription": {"model": "gpt-4o-mini-transcribe"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                    },
                    "output": {"voice": "marin"},
                },
            }
        )
    await c.until("session.updated")
    text = "input_text"
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": text, "text": "Hi"}]}
    )
    await c.until("conversation.item.created" if beta else "conversation.item.added")
    # turn 1: a clean reply asked for by the client, with its metadata echoed
    n = len(c.events)
    await conn.response.create(response={"metadata": {"client_event_id": "r1"}})
    done = await c.until("response.done", after=n)
    assert done.response.status == "completed" and done.response.metadata == {
        "client_event_id": "r1"
    }
    # turn 2 by server VAD: the response calls the tool; its output gets the answer
    n = len(c.events)
    await _speak(conn)
    call = await c.until("response.function_call_arguments.done", after=n)
    await c.until("response.done", after=n)
    await conn.conversation.item.create(
        item={"type": "function_call_output", "call_id": call.call_id, "output": "ok"}
    )
    n = len(c.events)
    await conn.response.create()
    assert (await c.until("response.done", after=n)).response.status == "completed"
    # turn 3 by server VAD: cut short (incomplete), retried, the retry cancelled mid-reply
    n = len(c.events)
    await _speak(conn)
    cut = await c.until("response.done", after=n)
    assert cut.response.status == "incomplete"
    assert cut.response.status_details.reason == "max_output_tokens"
    n = len(c.events)
    await conn.response.create()
    await c.until("response.audio.delta" if beta else "response.output_audio.delta", after=n)
    await conn.response.cancel()
    assert (await c.until("response.done", after=n)).response.status == "cancelled"
    # a text-only reply
    n = len(c.events)
    key = "modalities" if beta else "output_modalities"
    await conn.response.create(response={key: ["text"]})
    assert (await c.until("response.done", after=n)).response.status == "completed"
    await c.until("rate_limits.updated", after=n)
    # a refused event: an error the SDK parses, and the conversation goes on
    n = len(c.events)
    await conn.send({"type": "conversation.item.delete", "item_id": "nope"})
    err = await c.until("error", after=n)
    assert err.error.code == "item_delete_invalid_item_id"
    return c


def _check(c: Conversation, *, beta: bool) -> None:
    assert c.extras == [], c.extras
    types = set(c.types())
    audio = "response.audio" if beta else "response.output_audio"
    text = "response.text" if beta else "response.output_text"
    expected = {
        "session.created",
        "session.updated",
        "conversation.item.created" if beta else "conversation.item.added",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        f"{audio}.delta",
        f"{audio}.done",
        f"{audio}_transcript.delta",
        f"{audio}_transcript.done",
        f"{text}.delta",
        f"{text}.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
        "error",
    }
    if not beta:
        expected.add("conversation.item.done")
    assert expected <= types, expected - types
    statuses = {e.response.status for e in c.events if e.type == "response.done"}
    assert statuses == {"completed", "incomplete", "cancelled"}


async def test_a_conversation_through_the_openai_sdk_validates_every_event(
    server: ChaosServer,
) -> None:
    """AsyncOpenAI(...).realtime.connect: every event the server sends validates (GA)."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key="sk-test", base_url=f"http://127.0.0.1:{server.port}/v1")
    async with client.realtime.connect(
        model=DEPLOYMENT, extra_query={"chaos_session": "sdk"}
    ) as conn:
        c = await _hold_conversation(conn, beta=False)
        await c.close()
    _check(c, beta=False)
    rec = server.sessions["sdk"]
    assert rec.answered >= 2 and rec.injected_kinds() == ["tool_call", "incomplete"]
    assert "session.update" in rec.received_types()


async def test_a_conversation_through_the_azure_sdk_client_validates_every_event(
    server: ChaosServer,
) -> None:
    """AsyncAzureOpenAI(api_version="2025-08-28").realtime.connect: the Azure GA path."""
    from openai import AsyncAzureOpenAI

    client = AsyncAzureOpenAI(
        api_key="azure-test-key",
        api_version="2025-08-28",
        azure_endpoint=server.azure_endpoint,
        websocket_base_url=f"ws://127.0.0.1:{server.port}/openai",
    )
    async with client.realtime.connect(
        model=DEPLOYMENT, extra_query={"chaos_session": "azure"}
    ) as conn:
        c = await _hold_conversation(conn, beta=False)
        await c.close()
    _check(c, beta=False)


async def test_the_legacy_azure_path_validates_with_the_sdk_beta_models(
    server: ChaosServer,
) -> None:
    """AsyncAzureOpenAI(api_version=preview).beta.realtime.connect: the beta names and shapes."""
    from openai import AsyncAzureOpenAI

    client = AsyncAzureOpenAI(
        api_key="azure-test-key",
        api_version="2024-10-01-preview",
        azure_endpoint=server.azure_endpoint,
        websocket_base_url=f"ws://127.0.0.1:{server.port}/openai",
    )
    async with client.beta.realtime.connect(
        model=DEPLOYMENT, extra_query={"chaos_session": "beta"}
    ) as conn:
        c = await _hold_conversation(conn, beta=True)
        await c.close()
    _check(c, beta=True)
