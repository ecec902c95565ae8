"""The chaos Realtime server on the wire (supervisor/chaos/server.py, __main__.py).

Over the house limit on purpose: the server's wire behaviour, one test per behaviour. The raw
client is tests/wire.py's; the server and client fixtures are conftest's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import BaseModel, TypeAdapter

from realtime_supervisor.chaos import ChaosServer, tone_of
from realtime_supervisor.chaos.__main__ import main as cli_main
from tests.wire import API_VERSION, RATE, Event, connect, pcm_b64, silence

# The caller's defaults here: short replies, a prompt transcript (conftest's make_server).
CHAOS_SERVER_DEFAULTS = {"reply_seconds": 0.3, "transcription_delay": 0.2}


# -- 1. every server event validates with the openai SDK's own models ----------------------


def _no_extras(model: object, path: str = "") -> list[str]:
    """Fields the SDK model does not declare (its models accept extras silently)."""
    found: list[str] = []
    if isinstance(model, BaseModel):
        for name in model.model_extra or {}:
            found.append(f"{path}.{name}")
        for name in type(model).model_fields:
            found += _no_extras(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, list):
        for i, v in enumerate(model):
            found += _no_extras(v, f"{path}[{i}]")
    return found


async def _drive_everything(
    http: aiohttp.ClientSession, make_server: Any, beta: bool
) -> list[Event]:
    """A conversation through every client event and every fault; returns all server events."""
    seen: list[Event] = []
    server = await make_server(
        "clean,multi_message,multi_message_empty,stall_mid=1,slow_first_audio=0.2,"
        "long_answer=0.4,failed_response,error_event,no_response"
    )
    c = await connect(http, server, beta=beta)
    await c.until("session.created")
    # transcription is off unless configured: configure it, to see its event too
    if beta:
        await c.send(
            type="session.update",
            session={
                "instructions": "hi",
                "voice": "alloy",
                "input_audio_transcription": {"model": "whisper-1"},
            },
        )
    else:
        await c.send(
            type="session.update",
            session={
                "type": "realtime",
                "instructions": "hi",
                "audio": {
                    "input": {"transcription": {"model": "gpt-4o-mini-transcribe"}},
                    "output": {"voice": "marin"},
                },
            },
        )
    await c.until("session.updated")
    content_type = "input_text"
    await c.send(
        type="conversation.item.create",
        event_id="e1",
        previous_item_id="root",
        item={
            "id": "u1",
            "type": "message",
            "role": "user",
            "content": [{"type": content_type, "text": "x"}],
        },
    )
    await c.until("conversation.item.created" if beta else "conversation.item.added")
    await c.send(type="conversation.item.truncate", item_id="u1", content_index=0, audio_end_ms=0)
    await c.until("conversation.item.truncated")
    await c.send(type="conversation.item.delete", item_id="u1")
    await c.until("conversation.item.deleted")
    await c.send(type="input_audio_buffer.clear")
    await c.until("input_audio_buffer.cleared")
    await c.send(type="input_audio_buffer.commit")
    await c.until("error")
    await c.send(type="response.cancel")
    await c.until("error")
    await c.ws.send_str("{not json")
    await c.until("error")
    # turn 1, clean, by server VAD
    await c.speak()
    await c.until("response.done")
    await c.quiet(0.4)  # the transcription arrives asynchronously, after the reply began
    assert "conversation.item.input_audio_transcription.completed" in c.types()
    # turns 2, 3: multi_message, multi_message_empty
    for _ in range(2):
        await c.send(
            type="response.create", event_id="rc", response={"metadata": {"client_event_id": "rc"}}
        )
        await c.until("response.done")
    # turn 4: stall_mid=1, cancelled, then a clean retry
    await c.send(type="response.create")
    await c.until("response.audio.delta" if beta else "response.output_audio.delta")
    await c.send(type="response.cancel")
    await c.until("response.done")
    await c.send(type="response.create")
    await c.until("response.done")
    # turns 5, 6: slow first audio, long answer
    for _ in range(2):
        await c.send(type="response.create")
        await c.until("response.done")
    # turn 7: failed_response, then retry
    await c.send(type="response.create")
    await c.until("response.done")
    await c.send(type="response.create")
    await c.until("response.done")
    # turn 8: error_event, then retry; turn 9: no_response, then retry
    for _ in range(2):
        await c.send(type="response.create", event_id="rx")
        await c.send(type="response.create")
        await c.until("response.done")
    # turn 10 (clean) interrupted by speech: cancelled with turn_detected; turn 11 answers
    await c.send(type="response.create")
    await c.until("response.audio.delta" if beta else "response.output_audio.delta")
    await c.speak()
    await c.until("response.done")
    await c.until("response.done")
    seen += c.seen
    await c.close()
    for faults in (
        "drop_mid=1",
        "fatal_error",
        "flap",
        "tcp_drop=1",
        "fatal_close",
        "session_limit=1",
        "incomplete=1",
        "content_filter=1",
    ):
        server = await make_server(faults)
        c = await connect(http, server, beta=beta)
        await c.send(type="response.create")
        if faults == "fatal_error":
            await c.until("error")
        elif faults.startswith(("incomplete", "content_filter")):
            await c.until("rate_limits.updated")
        else:
            await asyncio.wait_for(c.ended.wait(), 5)
        seen += c.seen
        await c.close()
    return seen


@pytest.mark.parametrize("beta", [False, True], ids=["ga", "azure-beta"])
async def test_every_server_event_validates_with_the_sdk_models(
    http: aiohttp.ClientSession, make_server: Any, beta: bool
) -> None:
    """Every event sent in a conversation and in every fault validates against the SDK's models."""
    if beta:
        from openai.types.beta.realtime import RealtimeServerEvent
    else:
        from openai.types.realtime import RealtimeServerEvent
    adapter: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
    events = await _drive_everything(http, make_server, beta)
    types = set()
    for event in events:
        event.pop("_at")
        model = adapter.validate_python(event)
        assert _no_extras(model) == [], (event["type"], _no_extras(model))
        types.add(event["type"])
    audio = "response.audio" if beta else "response.output_audio"
    item_added = "conversation.item.created" if beta else "conversation.item.added"
    expected = {
        "session.created",
        "session.updated",
        "error",
        item_added,
        "conversation.item.deleted",
        "conversation.item.truncated",
        "conversation.item.input_audio_transcription.completed",
        "input_audio_buffer.cleared",
        "input_audio_buffer.committed",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        f"{audio}.delta",
        f"{audio}.done",
        f"{audio}_transcript.delta",
        f"{audio}_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    }
    if not beta:
        expected.add("conversation.item.done")
    assert expected <= types, expected - types
    if beta:
        assert not any(t.startswith("response.output_audio") for t in types)
        assert "conversation.item.added" not in types
    statuses = {e["response"]["status"] for e in events if e["type"] == "response.done"}
    assert statuses == {"completed", "cancelled", "failed", "incomplete"}


# -- 2. malformed client events ------------------------------------------------------------


async def test_malformed_events_get_errors_and_the_connection_survives(open_client: Any) -> None:
    """Bad JSON, a missing type, a wrong field type or an unknown type each get an `error`."""
    server, c = await open_client()
    await c.until("session.created")
    await c.ws.send_str("{nope")
    e1 = await c.until("error")
    await c.send(event_id="ev_missing", audio="x")
    e2 = await c.until("error")
    await c.send(type="response.create", event_id="ev_bad", response="not an object")
    e3 = await c.until("error")
    await c.send(type="bogus.event", event_id="ev_unknown")
    e4 = await c.until("error")
    await c.send(type="input_audio_buffer.append", event_id="ev_b64", audio="***")
    e5 = await c.until("error")
    await c.send(
        type="conversation.item.truncate",
        event_id="ev_t",
        item_id="x",
        content_index="0",
        audio_end_ms=1,
    )
    e6 = await c.until("error")
    for e in (e1, e2, e3, e4, e5, e6):
        assert e["error"]["type"] == "invalid_request_error"
        assert e["error"]["message"]
    assert e1["error"]["event_id"] is None
    assert [e["error"]["event_id"] for e in (e2, e3, e4, e5, e6)] == [
        "ev_missing",
        "ev_bad",
        "ev_unknown",
        "ev_b64",
        "ev_t",
    ]
    assert e3["error"]["param"] == "response"
    assert e6["error"]["param"] == "content_index"
    await c.send(
        type="response.create", event_id="ok", response={"metadata": {"client_event_id": "ok"}}
    )
    created = await c.until("response.created")
    assert created["response"]["metadata"] == {"client_event_id": "ok"}
    done = await c.until("response.done")
    assert done["response"]["status"] == "completed"
    rec = server.sessions["s1"]
    assert rec.received_types()[:3] == ["<invalid json>", "<missing type>", "response.create"]


# -- 3. VAD --------------------------------------------------------------------------------


async def test_vad_turn_gives_the_full_user_turn_and_a_server_response(open_client: Any) -> None:
    """A burst then 600 ms of silence: started, stopped, committed, item, transcript, response."""
    server, c = await open_client()
    await c.speak(500, 600)
    done = await c.until("response.done")
    order = [
        t
        for t in c.types()
        if t.startswith("input_audio_buffer")
        or t.startswith("conversation.item")
        or t in ("response.created", "response.done")
    ]
    assert order[:7] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
        "conversation.item.added",
    ]
    # transcription is off by default, as on the real API
    await c.quiet(0.4)
    assert "conversation.item.input_audio_transcription.completed" not in c.types()
    by_type = {e["type"]: e for e in c.seen}
    user_item = next(e for e in c.seen if e["type"] == "conversation.item.added")
    assert user_item["item"]["role"] == "user"
    assert by_type["input_audio_buffer.committed"]["item_id"] == user_item["item"]["id"]
    assert by_type["input_audio_buffer.speech_started"]["item_id"] == user_item["item"]["id"]
    assert by_type["input_audio_buffer.speech_stopped"]["audio_end_ms"] == 500
    assert by_type["response.created"]["response"]["metadata"] is None  # server-initiated
    assert done["response"]["status"] == "completed"
    assert server.sessions["s1"].turns == 1
    assert server.sessions["s1"].answered == 1


@pytest.mark.parametrize(
    "turn_detection",
    [None, {"type": "server_vad", "create_response": False}],
    ids=["null", "create_response-false"],
)
async def test_turn_detection_settings_disable_auto_responses(
    turn_detection: dict[str, Any] | None, open_client: Any
) -> None:
    """turn_detection null (no VAD at all) or create_response false: no server response."""
    server, c = await open_client()
    await c.send(
        type="session.update",
        session={"type": "realtime", "audio": {"input": {"turn_detection": turn_detection}}},
    )
    updated = await c.until("session.updated")
    assert updated["session"]["audio"]["input"]["turn_detection"] == (
        None if turn_detection is None else {**turn_detection, "interrupt_response": True}
    )
    await c.speak()
    if turn_detection is None:
        await c.send(type="input_audio_buffer.commit")
    await c.until("conversation.item.done")
    later = await c.quiet(0.5)
    types = c.types()
    assert "response.created" not in types, later
    assert ("input_audio_buffer.speech_started" in types) == (turn_detection is not None)
    assert server.sessions["s1"].turns == 1
    # the client commit opened turn 1; its response.create is that turn's first response
    await c.send(type="response.create")
    await c.until("response.done")
    assert server.sessions["s1"].turns == 1
    assert server.sessions["s1"].answered == 1


async def test_speech_during_a_response_cancels_it(respond: Any) -> None:
    """Barge-in: speech_started while a reply plays ends it with response.done cancelled."""
    server, c = await respond(reply_seconds=2.0)
    await c.until("response.output_audio.delta")
    await c.speak(300, 0)
    done = await c.until("response.done")
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"]["reason"] == "turn_detected"
    assert server.sessions["s1"].cancelled == 1
    assert server.sessions["s1"].answered == 0


# -- replies -------------------------------------------------------------------------------


def _audio(events: list[Event], item_id: str | None = None) -> list[bytes]:
    return [
        base64.b64decode(e["delta"])
        for e in events
        if e["type"] == "response.output_audio.delta" and item_id in (None, e["item_id"])
    ]


@pytest.mark.parametrize(
    ("pace", "span"),
    [(None, (0.08, 0.3)), ("realtime", (0.35, 1.0))],
    ids=["default-faster-than-realtime", "realtime"],
)
async def test_a_reply_is_a_paced_marked_tone_with_transcript(
    http: aiohttp.ClientSession, make_server: Any, pace: str | None, span: tuple[float, float]
) -> None:
    """A clean reply: the full event sequence, 100 ms deltas of 440 Hz, paced, transcript.

    By default 0.5 s of audio streams in about 0.1 s (4x real time, as the real API produces
    audio faster than it plays); `pace="realtime"` streams it over its own length.
    """
    kw = {} if pace is None else {"pace": pace}
    server = await make_server(reply_seconds=0.5, **kw)
    c = await connect(http, server)
    await c.send(
        type="response.create", event_id="r1", response={"metadata": {"client_event_id": "r1"}}
    )
    done = await c.until("response.done")
    await c.until("rate_limits.updated")
    # the real API's order at the end of a reply
    assert c.types()[-7:] == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    resp = [
        e["type"]
        for e in c.seen
        if e["type"].startswith("response.") or e["type"] == "conversation.item.added"
    ]
    assert resp[:4] == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
    ]
    assert resp[-5:] == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
    ]
    chunks = _audio(c.seen)
    assert [len(x) for x in chunks] == [4800] * 5  # 100 ms of 24 kHz PCM16 each
    assert {tone_of(x, RATE) for x in chunks} == {"answer"}
    times = [e["_at"] for e in c.seen if e["type"] == "response.output_audio.delta"]
    assert span[0] <= times[-1] - times[0] <= span[1]  # paced, not a burst
    transcript = "".join(
        e["delta"] for e in c.seen if e["type"] == "response.output_audio_transcript.delta"
    )
    assert transcript == "answer t1"
    assert done["response"]["metadata"] == {"client_event_id": "r1"}
    assert done["response"]["output"][0]["content"] == [
        {"type": "output_audio", "transcript": "answer t1"}
    ]
    assert done["response"]["usage"]["total_tokens"] > 0


async def test_second_create_while_active_is_refused(respond: Any) -> None:
    """A response.create during a running response gets an error naming the active response."""
    _, c = await respond(reply_seconds=1.0)
    created = await c.until("response.created")
    await c.send(type="response.create", event_id="second")
    err = await c.until("error")
    assert err["error"]["code"] == "conversation_already_has_active_response"
    assert err["error"]["event_id"] == "second"
    assert created["response"]["id"] in err["error"]["message"]


# -- 4. faults on the wire -----------------------------------------------------------------


async def test_multi_message_sends_preamble_then_answer(respond: Any) -> None:
    """multi_message: two message items in one response, 660 Hz preamble then 440 Hz answer."""
    server, c = await respond("multi_message")
    done = await c.until("response.done")
    items = [e["item"]["id"] for e in c.seen if e["type"] == "response.output_item.added"]
    assert len(items) == 2
    assert {tone_of(x, RATE) for x in _audio(c.seen, items[0])} == {"preamble"}
    assert {tone_of(x, RATE) for x in _audio(c.seen, items[1])} == {"answer"}
    assert [i["content"][0]["transcript"] for i in done["response"]["output"]] == [
        "preamble t1",
        "answer t1",
    ]
    assert server.sessions["s1"].injected_kinds() == ["multi_message"]
    assert server.sessions["s1"].items == 2


async def test_multi_message_empty_sends_an_empty_first_item(respond: Any) -> None:
    """multi_message_empty: the first item has no content and no audio; the second answers."""
    _, c = await respond("multi_message_empty")
    done = await c.until("response.done")
    items = [e["item"]["id"] for e in c.seen if e["type"] == "response.output_item.added"]
    assert len(items) == 2
    assert _audio(c.seen, items[0]) == []
    assert not any(
        e.get("item_id") == items[0] for e in c.seen if e["type"] == "response.content_part.added"
    )
    assert done["response"]["output"][0]["content"] == []
    assert {tone_of(x, RATE) for x in _audio(c.seen, items[1])} == {"answer"}


async def test_stall_mid_stops_audio_and_never_finishes_until_cancelled(respond: Any) -> None:
    """stall_mid=2: two deltas, then silence with the socket open; response.cancel ends it."""
    server, c = await respond("stall_mid=2", reply_seconds=1.0)
    await c.until("response.created")
    after = await c.quiet(0.8)
    assert len(_audio(c.seen)) == 2
    assert "response.done" not in [e["type"] for e in after]
    assert not c.ended.is_set()
    inj = server.sessions["s1"].injected
    assert [(i.kind, i.value, i.turn) for i in inj] == [("stall_mid", 2, 1)]
    last_delta = [e["_at"] for e in c.seen if e["type"] == "response.output_audio.delta"][-1]
    assert inj[0].onset >= last_delta - 0.05  # took effect when the third delta was due
    await c.send(type="response.cancel")
    done = await c.until("response.done")
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"]["reason"] == "client_cancelled"
    # the retry in the still-open turn is clean
    await c.send(type="response.create")
    done = await c.until("response.done")
    assert done["response"]["status"] == "completed"
    assert server.sessions["s1"].turns == 1


async def test_stall_mid_zero_sends_no_audio(respond: Any) -> None:
    """stall_mid=0: response.created, then nothing at all."""
    _, c = await respond("stall_mid=0")
    await c.until("response.created")
    await c.quiet(0.5)
    assert _audio(c.seen) == []
    assert "response.done" not in c.types()


async def test_drop_mid_closes_the_socket_and_the_session_survives_reconnect(
    http: aiohttp.ClientSession, make_server: Any
) -> None:
    """drop_mid=1: the socket closes after one delta; a reconnect continues the same turn, clean."""
    server = await make_server("drop_mid=1")
    c = await connect(http, server, session=None, key="sk-one")
    await c.send(type="response.create")
    await asyncio.wait_for(c.ended.wait(), 5)
    assert len(_audio(c.seen)) == 1
    assert "response.done" not in c.types()
    (key,) = server.sessions
    assert key.startswith("cred-") and "sk-one" not in key
    c2 = await connect(http, server, session=None, key="sk-one")
    await c2.send(type="response.create")
    done = await c2.until("response.done")
    assert done["response"]["status"] == "completed"
    rec = server.sessions[key]
    assert rec.connections == 2
    assert rec.turns == 1 and rec.answered == 1
    assert rec.injected_kinds() == ["drop_mid"]
    # a retry after the answer is still that turn: clean
    await c2.send(type="response.create")
    done = await c2.until("response.done")
    assert done["response"]["status"] == "completed"
    # the caller's next turn faults again; another credential is another session
    await c2.speak()
    await asyncio.wait_for(c2.ended.wait(), 5)
    c3 = await connect(http, server, session=None, key="sk-two")
    await c3.send(type="response.create")
    await asyncio.wait_for(c3.ended.wait(), 5)
    assert len(server.sessions) == 2


async def test_no_response_never_creates_a_response(open_client: Any) -> None:
    """no_response: nothing answers the response.create; the onset is when it arrived."""
    server, c = await open_client("no_response")
    await c.until("session.created")
    before = time.monotonic()
    await c.send(type="response.create", event_id="rc1")
    got = await c.quiet(0.6)
    assert got == []
    (inj,) = server.sessions["s1"].injected
    assert inj.kind == "no_response" and before <= inj.onset <= before + 0.3
    await c.send(type="response.create")  # the retry in the open turn is clean
    assert (await c.until("response.done"))["response"]["status"] == "completed"


async def test_failed_response(respond: Any) -> None:
    """failed_response: response.created, then response.done failed with an error."""
    server, c = await respond("failed_response")
    await c.until("response.created")
    done = await c.until("response.done")
    assert done["response"]["status"] == "failed"
    assert done["response"]["status_details"]["error"]["type"] == "server_error"
    assert _audio(c.seen) == []
    assert server.sessions["s1"].answered == 0


async def test_error_event_replaces_the_response(open_client: Any) -> None:
    """error_event: an `error` (server_error) naming the response.create, and no response."""
    _, c = await open_client("error_event")
    await c.send(type="response.create", event_id="rc9")
    err = await c.until("error")
    assert err["error"]["type"] == "server_error"
    assert err["error"]["event_id"] == "rc9"
    assert "response.created" not in [e["type"] for e in await c.quiet(0.3)] + c.types()


async def test_fatal_error_is_insufficient_quota_and_sticks(open_client: Any) -> None:
    """fatal_error: response.done failed and an error, code insufficient_quota, for every retry."""
    server, c = await open_client("fatal_error")
    for _ in range(2):
        await c.send(type="response.create", event_id="rcf")
        done = await c.until("response.done")
        err = await c.until("error")
        assert done["response"]["status"] == "failed"
        assert done["response"]["status_details"]["error"]["code"] == "insufficient_quota"
        assert err["error"]["code"] == "insufficient_quota"
        assert err["error"]["event_id"] == "rcf"
    assert server.sessions["s1"].injected_kinds() == ["fatal_error", "fatal_error"]


async def test_flap_closes_every_new_connection(http: aiohttp.ClientSession, respond: Any) -> None:
    """flap: the faulted socket closes, then each new connection of the session closes at once."""
    server, c = await respond("flap")
    await asyncio.wait_for(c.ended.wait(), 5)
    for _ in range(3):
        again = await connect(http, server)
        await asyncio.wait_for(again.ended.wait(), 5)
        assert again.seen == []
    assert server.sessions["s1"].connections == 4
    other = await connect(http, server, session="s2")
    assert (await other.until("session.created"))["type"] == "session.created"
    assert not other.ended.is_set()


async def test_slow_first_audio_delays_the_first_delta(open_client: Any) -> None:
    """slow_first_audio=0.6: the first audio comes at least 0.6 s after response.created."""
    _, c = await open_client("slow_first_audio=0.6,clean")
    gaps = []
    for _ in range(2):
        await c.send(type="response.create")
        created = await c.until("response.created")
        first = await c.until("response.output_audio.delta")
        gaps.append(first["_at"] - created["_at"])
        assert (await c.until("response.done"))["response"]["status"] == "completed"
    assert gaps[0] >= 0.6
    assert gaps[1] < 0.3


async def test_long_answer_sets_the_answer_length(respond: Any) -> None:
    """long_answer=0.7: seven 100 ms deltas instead of the default length."""
    _, c = await respond("long_answer=0.7", delta_seconds=0.05)
    await c.until("response.done")
    assert len(_audio(c.seen)) == 14


async def test_schedule_rotates_per_session(http: aiohttp.ClientSession, make_server: Any) -> None:
    """clean,error_event: turns alternate, and each session has its own rotation."""
    server = await make_server("clean,error_event", reply_seconds=0.1)
    outcomes: dict[str, list[str]] = {}
    for name in ("a", "b"):
        c = await connect(http, server, session=name)
        for _ in range(3):
            await c.speak()  # a caller's turn: the server's VAD answers it
            ev = (
                await c.until("error")
                if len(outcomes.get(name, [])) % 2
                else await c.until("response.done")
            )
            outcomes.setdefault(name, []).append(ev["type"])
            if ev["type"] == "error":
                # a retry within the turn is clean
                await c.send(type="response.create")
                await c.until("response.done")
    assert outcomes == {"a": ["response.done", "error", "response.done"], "b": outcomes["a"]}
    assert server.sessions["a"].turns == 3


async def test_random_schedule_is_reproducible_with_the_seed(
    http: aiohttp.ClientSession, make_server: Any
) -> None:
    """random:0.5:error_event with the same seed injects on the same turns in two servers."""
    runs = []
    for _ in range(2):
        server = await make_server("random:0.5:error_event", seed=11, reply_seconds=0.1)
        c = await connect(http, server)
        for _ in range(8):
            await c.speak()
            ev = await c.quiet(0.25)
            if any(e["type"] == "error" for e in ev):
                await c.send(type="response.create")
                await c.until("response.done")
            elif not any(e["type"] == "response.done" for e in ev):
                await c.until("response.done")
        runs.append([i.turn for i in server.sessions["s1"].injected])
    assert runs[0] == runs[1]
    assert 0 < len(runs[0]) < 8


async def test_recording_and_json_log(
    http: aiohttp.ClientSession, make_server: Any, tmp_path: Path
) -> None:
    """Received types and injections are recorded and logged as JSON lines, never the credential."""
    log = tmp_path / "chaos.jsonl"
    server = await make_server("no_response", log_file=log)
    c = await connect(http, server, key="sk-secret-123")
    await c.send(type="session.update", session={"type": "realtime"})
    await c.until("session.updated")
    await c.send(type="input_audio_buffer.append", audio=pcm_b64(silence(100)))
    await c.send(type="response.create")
    await c.quiet(0.2)
    rec = server.sessions["s1"]
    assert rec.received_types() == [
        "session.update",
        "input_audio_buffer.append",
        "response.create",
    ]
    assert rec.responses == 0 and rec.turns == 1
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert {"event": "chaos.received", "type": "input_audio_buffer.append"}.items() <= lines[
        3
    ].items()
    (inj,) = [x for x in lines if x["event"] == "chaos.injected"]
    assert inj["kind"] == "no_response" and inj["turn"] == 1 and inj["session"] == "s1"
    assert "sk-secret-123" not in log.read_text()
    received = [x for x in lines if x["event"] == "chaos.received"]
    assert all(set(x) == {"event", "session", "connection", "type", "at"} for x in received)


async def test_beta_path_uses_beta_names(http: aiohttp.ClientSession, make_server: Any) -> None:
    """On the legacy Azure path, events use beta names and the beta session shape."""
    server = await make_server()
    c = await connect(http, server, beta=True)
    created = await c.until("session.created")
    assert created["session"]["input_audio_format"] == "pcm16"
    await c.send(type="response.create")
    done = await c.until("response.done")
    types = c.types()
    assert "response.audio.delta" in types and "conversation.item.created" in types
    assert "response.output_audio.delta" not in types
    assert "conversation.item.done" not in types  # no such event in the beta protocol
    assert done["response"]["output"][0]["content"][0]["type"] == "audio"


async def test_unknown_paths_are_not_found(http: aiohttp.ClientSession, make_server: Any) -> None:
    """Only */realtime is served."""
    server = await make_server()
    async with http.get(f"{server.azure_endpoint}/v1/models") as resp:
        assert resp.status == 404


async def test_aclose_is_prompt_with_a_stalled_response(http: aiohttp.ClientSession) -> None:
    """Closing stops stalled responses and websockets at once."""
    server = ChaosServer(faults="stall_mid=1")
    async with server:
        c = await connect(http, server)
        await c.send(type="response.create")
        await c.until("response.output_audio.delta")
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 2.5
    await asyncio.wait_for(c.ended.wait(), 3)


# -- CLI -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--port", "http"], "--port"),
        (["--port", "70000"], "--port"),
        (["--faults", "stall"], "--faults"),
        (["--seed", "x"], "--seed"),
        (["--reply-seconds", "-1"], "--reply-seconds"),
        (["--bogus"], "--bogus"),
    ],
)
def test_cli_bad_flags_name_the_flag(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad flag exits with status 2 and a message naming it."""
    with pytest.raises(SystemExit) as info:
        cli_main(argv)
    assert info.value.code == 2
    assert flag in capsys.readouterr().err


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    """The CLI prints its URL, serves, and exits 0 on SIGTERM."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "realtime_supervisor.chaos",
            "--port",
            "0",
            "--faults",
            "clean,stall_mid=2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("chaos server on ws://127.0.0.1:")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- 5. the real livekit plugin ------------------------------------------------------------


@pytest.mark.livekit
@pytest.mark.compat
@pytest.mark.parametrize("azure", [False, True], ids=["openai", "azure-legacy"])
async def test_real_plugin_generates_a_reply_with_audio(
    http: aiohttp.ClientSession, make_server: Any, azure: bool
) -> None:
    """The real RealtimeModel connects and a generate_reply completes with answer audio."""
    from livekit.plugins.openai.realtime import RealtimeModel

    server = await make_server(reply_seconds=0.3)
    if azure:
        model = RealtimeModel.with_azure(
            azure_deployment="gpt-realtime",
            azure_endpoint=server.azure_endpoint,
            api_key="k",
            api_version=API_VERSION,
            http_session=http,
        )
    else:
        model = RealtimeModel(base_url=server.url, api_key="k", http_session=http)
    session = model.session()
    try:
        gen = await asyncio.wait_for(session.generate_reply(), 5)
        assert gen.user_initiated
        kinds = []
        async with asyncio.timeout(5):
            async for message in gen.message_stream:
                async for frame in message.audio_stream:
                    kinds.append(tone_of(bytes(frame.data), frame.sample_rate))
        assert kinds and set(kinds) == {"answer"}
        (rec,) = server.sessions.values()
        assert rec.received_types()[:2] == ["session.update", "response.create"]
        assert rec.answered == 1
        assert [c.connection for c in rec.received] == [1] * len(rec.received)
        # the plugin's session.update passed the real API's validation: no error was sent
        assert list(rec.errors) == []
    finally:
        await session.aclose()
        await model.aclose()
