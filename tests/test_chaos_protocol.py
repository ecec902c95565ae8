"""The chaos server behaves as the real Realtime API where a client can tell (issue 13, item 1).

Raw websocket clients against a real server on 127.0.0.1; every event received is also
validated with the `openai` SDK's own models (GA, and beta on the legacy Azure path).
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp
import pytest
from pydantic import TypeAdapter

from realtime_supervisor.chaos import ChaosServer, records
from realtime_supervisor.chaos.protocol import CLIENT_EVENT_TYPES, Invalid, is_beta
from realtime_supervisor.chaos.settings import Settings
from tests.wire import Client, Event, connect

from .test_chaos_server import CHAOS_SERVER_DEFAULTS as CHAOS_SERVER_DEFAULTS
from .test_chaos_server import _no_extras

GA_SESSION = {"type": "realtime"}


def validate(events: list[Event], *, beta: bool) -> None:
    """Every event validates with the SDK's models and carries no field they do not declare."""
    if beta:
        from openai.types.beta.realtime import RealtimeServerEvent
    else:
        from openai.types.realtime import RealtimeServerEvent
    adapter: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
    for event in events:
        body = {k: v for k, v in event.items() if k != "_at"}
        model = adapter.validate_python(body)
        assert _no_extras(model) == [], (event["type"], _no_extras(model))


async def update(c: Client, **session: Any) -> Event:
    """Send a session.update; returns the `session.updated` or the `error` it got."""
    start = len(c.seen)
    await c.send(type="session.update", event_id="su", session=session)
    async with asyncio.timeout(5):
        while True:
            for e in c.seen[start:]:
                if e["type"] in ("session.updated", "error"):
                    return e
            await asyncio.sleep(0.01)


# -- session.update ------------------------------------------------------------------------


async def test_session_update_needs_its_type_and_refuses_unknown_fields_whole(
    open_client: Any,
) -> None:
    """No session.type, or an unknown field anywhere, and nothing of the update applies."""
    _, c = await open_client()
    await c.until("session.created")
    e = await update(c, instructions="A")
    assert e["type"] == "error"
    assert e["error"]["code"] == "missing_required_parameter"
    assert e["error"]["param"] == "session.type"
    assert e["error"]["message"] == "Missing required parameter: 'session.type'."
    assert e["error"]["event_id"] == "su"
    e = await update(c, **GA_SESSION, instructions="B", bogus=1)
    assert (e["error"]["code"], e["error"]["param"]) == ("unknown_parameter", "session.bogus")
    e = await update(c, **GA_SESSION, instructions="C", audio={"input": {"bogus": 1}})
    assert e["error"]["param"] == "session.audio.input.bogus"
    # a valid field beside an invalid one: the whole update is discarded
    bad_td = {"input": {"turn_detection": {"type": "server_vad", "threshold": "high"}}}
    e = await update(c, **GA_SESSION, instructions="D", audio=bad_td)
    assert (e["error"]["code"], e["error"]["param"]) == (
        "invalid_type",
        "session.audio.input.turn_detection.threshold",
    )
    e = await update(c, **GA_SESSION)
    assert e["type"] == "session.updated"
    assert e["session"]["instructions"] == ""  # none of A, B, C, D was applied
    assert e["session"]["audio"]["input"]["turn_detection"]["threshold"] == 0.5
    e = await update(c, **GA_SESSION, instructions="E", output_modalities=["text"])
    assert e["session"]["instructions"] == "E"
    assert e["session"]["output_modalities"] == ["text"]
    validate(c.seen, beta=False)


def test_settings_update_is_pure_and_whole() -> None:
    """Settings.updated returns new settings; a refused update leaves the old ones untouched."""
    s = Settings()
    t = s.updated({"type": "realtime", "instructions": "x"}, beta=False)
    assert (s.instructions, t.instructions) == ("", "x")
    with pytest.raises(Invalid, match=r"Unknown parameter: 'session\.nope'"):
        t.updated({"type": "realtime", "instructions": "y", "nope": 1}, beta=False)
    assert t.instructions == "x"
    beta = s.updated({"instructions": "z", "input_audio_transcription": {"model": "w"}}, beta=True)
    assert beta.transcription == {"model": "w"}
    assert s.transcription is None  # transcription is off by default


def test_only_preview_or_pre_ga_azure_versions_speak_beta() -> None:
    """api-version 2024-10-01-preview is the legacy protocol; 2025-08-28 and later are GA."""
    assert is_beta("2024-10-01-preview") and is_beta("2025-04-01-preview")
    assert is_beta("2024-12-17")
    assert not is_beta("2025-08-28") and not is_beta(None)


# -- transcription -------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [False, True], ids=["ga", "azure-beta"])
async def test_transcription_only_when_configured_and_after_the_reply_began(
    beta: bool, open_client: Any
) -> None:
    """Off by default; configured, it arrives transcription_delay after the commit."""
    _, c = await open_client(transcription_delay=0.6, beta=beta)
    await c.speak()
    await c.until("response.done")
    await c.quiet(0.8)
    assert "conversation.item.input_audio_transcription.completed" not in c.types()
    if beta:
        e = await update(c, input_audio_transcription={"model": "whisper-1"})
    else:
        transcription = {"input": {"transcription": {"model": "gpt-4o-mini-transcribe"}}}
        e = await update(c, **GA_SESSION, audio=transcription)
    assert e["type"] == "session.updated"
    await c.speak()
    committed = await c.until("input_audio_buffer.committed")
    created = await c.until("response.created")
    done = await c.until("conversation.item.input_audio_transcription.completed", within=3)
    assert done["transcript"] == "user t2"
    assert done["item_id"] == committed["item_id"]
    assert done["_at"] - committed["_at"] >= 0.55  # asynchronous, as the real one
    assert created["_at"] < done["_at"]
    validate(c.seen, beta=beta)


# -- modalities, tools, items --------------------------------------------------------------


async def test_text_only_responses_send_text_and_no_audio(open_client: Any) -> None:
    """output_modalities ["text"] (per session, or per response) gives text deltas, no audio."""
    _, c = await open_client()
    await c.send(type="response.create", response={"output_modalities": ["text"]})
    done = await c.until("response.done")
    types = c.types()
    assert "response.output_text.delta" in types and "response.output_text.done" in types
    assert not any(t.startswith("response.output_audio") for t in types)
    assert done["response"]["output"][0]["content"] == [
        {"type": "output_text", "text": "answer t1"}
    ]
    assert done["response"]["output_modalities"] == ["text"]
    await update(c, **GA_SESSION, output_modalities=["text"])
    n = len(c.seen)
    await c.send(type="response.create")
    await c.until("response.done")
    assert "response.output_audio.delta" not in [e["type"] for e in c.seen[n:]]
    validate(c.seen, beta=False)


@pytest.mark.parametrize("beta", [False, True], ids=["ga", "azure-beta"])
async def test_a_tool_call_names_its_function_where_the_protocol_has_the_field(
    beta: bool, open_client: Any
) -> None:
    """tool_call: arguments.done carries `name` on GA; every event validates."""
    _, c = await open_client("tool_call=2", beta=beta)
    await c.send(type="response.create")
    done = await c.until("response.function_call_arguments.done")
    await c.until("response.done")
    assert done["arguments"] == '{"seconds": 2.0}'
    assert ("name" in done) is (not beta)
    validate(c.seen, beta=beta)


@pytest.mark.parametrize(
    ("item", "param"),
    [
        ({"type": "message", "content": [{"type": "input_text", "text": "x"}]}, "item.role"),
        ({"type": "message", "role": "user"}, "item.content"),
        (
            {"type": "message", "role": "user", "content": [{"type": "output_text", "text": "x"}]},
            "item.content[0].type",
        ),
        (
            {"type": "message", "role": "user", "content": [{"type": "input_text", "x": 1}]},
            "item.content[0].x",
        ),
        ({"type": "message", "role": "robot", "content": []}, "item.role"),
        ({"type": "function_call", "name": "f"}, "item.arguments"),
        ({"type": "function_call_output", "call_id": "c"}, "item.output"),
        ({"type": "widget"}, "item.type"),
        ({"type": "message", "role": "user", "content": [], "extra": True}, "item.extra"),
    ],
)
async def test_a_malformed_item_is_refused_not_echoed(
    item: dict[str, Any], param: str, open_client: Any
) -> None:
    """A malformed item gets an error naming the field; a valid one is echoed valid."""
    _, c = await open_client()
    await c.send(type="conversation.item.create", event_id="ic", item=item)
    e = await c.until("error")
    assert e["error"]["param"] == param
    assert e["error"]["event_id"] == "ic"
    assert "conversation.item.added" not in c.types()
    good = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]}
    await c.send(type="conversation.item.create", item=good)
    added = await c.until("conversation.item.added")
    await c.until("conversation.item.done")
    assert added["item"]["status"] == "completed"
    validate(c.seen, beta=False)


# -- errors --------------------------------------------------------------------------------


async def test_bad_frames_get_the_real_error_codes_and_the_connection_survives(
    open_client: Any,
) -> None:
    """invalid_json (even nested 100000 deep), invalid_event (binary), unknown types listed."""
    _, c = await open_client()
    await c.until("session.created")
    await c.ws.send_str("[" * 100_000 + "]" * 100_000)  # RecursionError in json.loads
    e1 = await c.until("error")
    await c.ws.send_str('{"type": ' + "[" * 100_000)  # nested and broken
    e2 = await c.until("error")
    await c.ws.send_bytes(b"\x00\x01")
    e3 = await c.until("error")
    await c.send(type="bogus.event", event_id="ev")
    e4 = await c.until("error")
    assert [e["error"]["code"] for e in (e1, e2, e3, e4)] == [
        "invalid_json",
        "invalid_json",
        "invalid_event",
        "invalid_value",
    ]
    assert "text WebSocket message" in e3["error"]["message"]
    assert e4["error"]["param"] == "type" and e4["error"]["event_id"] == "ev"
    assert all(f"'{t}'" in e4["error"]["message"] for t in CLIENT_EVENT_TYPES)
    await c.send(type="response.create")
    assert (await c.until("response.done"))["response"]["status"] == "completed"
    assert not c.ended.is_set()
    validate(c.seen, beta=False)


async def test_server_errors_have_a_null_code_and_the_session_id(open_client: Any) -> None:
    """error_event: type server_error, code null, a long message naming the session."""
    _, c = await open_client("error_event")
    created = await c.until("session.created")
    await c.send(type="response.create")
    e = await c.until("error")
    assert e["error"]["type"] == "server_error" and e["error"]["code"] is None
    assert "sess_" in e["error"]["message"]
    assert created["session"]["type"] == "realtime"
    validate(c.seen, beta=False)


# -- the end of a response -----------------------------------------------------------------


@pytest.mark.parametrize("beta", [False, True], ids=["ga", "azure-beta"])
async def test_a_cancelled_reply_closes_its_parts_before_response_done(
    beta: bool, open_client: Any
) -> None:
    """Cancelled mid-answer: the *.done events (item incomplete), response.done, rate limits."""
    _, c = await open_client(reply_seconds=3.0, pace="realtime", beta=beta)
    await c.send(type="response.create")
    await c.until("response.audio.delta" if beta else "response.output_audio.delta")
    await c.send(type="response.cancel")
    done = await c.until("response.done")
    await c.until("rate_limits.updated")
    audio = "response.audio" if beta else "response.output_audio"
    tail = [
        f"{audio}.done",
        f"{audio}_transcript.done",
        "response.content_part.done",
        *([] if beta else ["conversation.item.done"]),
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    assert c.types()[-len(tail) :] == tail
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["output"][0]["status"] == "incomplete"
    validate(c.seen, beta=beta)


# -- records -------------------------------------------------------------------------------


async def test_received_records_are_bounded_per_session(
    http: aiohttp.ClientSession,
    make_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the newest RECEIVED_LIMIT events are kept; the total still counts them all."""
    monkeypatch.setattr(records, "RECEIVED_LIMIT", 10)
    server = await make_server()
    c = await connect(http, server)
    pcm = base64.b64encode(b"\x00\x00" * 240).decode()
    for _ in range(25):
        await c.send(type="input_audio_buffer.append", audio=pcm)
    await c.send(type="input_audio_buffer.clear")
    await c.until("input_audio_buffer.cleared")
    rec = server.sessions["s1"]
    assert len(rec.received) == 10 and rec.received_total == 26
    assert rec.received_types()[-1] == "input_audio_buffer.clear"


def test_bad_server_settings_are_refused_by_name() -> None:
    """reply_seconds, ping_interval, transcription_delay and pace are checked at construction."""
    for name, value in (
        ("reply_seconds", 0),
        ("ping_interval", -1),
        ("transcription_delay", float("nan")),
    ):
        with pytest.raises(ValueError, match=name):
            ChaosServer(**{name: value})
    ChaosServer(ping_interval=None)  # None: no pings
