"""The chaos server's production-shaped faults and pacing, on the wire (raw websocket clients).

dead_mid, tcp_drop, fatal_close, session_limit, incomplete / content_filter, late_resume's
one-response rule, server pings and the faster-than-real-time pace.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aiohttp
import pytest

from realtime_supervisor.chaos import DEFAULT_PACE, ChaosServer, parse_pace
from realtime_supervisor.errors import ConfigError
from tests import wire
from tests.wire import Client, Event

# conftest's make_server and respond: 1 s replies; pings are the server's here, the client
# counts and answers them itself.
CHAOS_SERVER_DEFAULTS = {"reply_seconds": 1.0}
CHAOS_CONNECT = {"autoping": False}


async def connect(http: aiohttp.ClientSession, server: ChaosServer, **kw: Any) -> Client:
    return await wire.connect(http, server, **CHAOS_CONNECT, **kw)


# -- pace ----------------------------------------------------------------------------------


async def test_response_done_arrives_while_most_of_the_reply_is_still_to_play(respond: Any) -> None:
    """Default pace: a 2 s reply is sent whole, response.done included, within about 0.5 s."""
    server, c = await respond(reply_seconds=2.0)
    created = await c.until("response.created")
    done = await c.until("response.done")
    audio_seconds = len(c.audio()) * server.delta_seconds
    assert audio_seconds == pytest.approx(2.0)
    assert done["_at"] - created["_at"] < audio_seconds / 2  # most of it still to be played
    assert done["response"]["status"] == "completed"


def test_pace_accepts_realtime_and_factors_and_names_itself_when_wrong() -> None:
    """'realtime' is 1.0, numbers are factors; anything else is refused naming `pace`."""
    assert parse_pace("realtime") == 1.0
    assert parse_pace("  RealTime ") == 1.0
    assert parse_pace(4) == 4.0 and parse_pace("2.5") == 2.5
    assert DEFAULT_PACE > 1
    for bad in ("fast", 0, -1, float("inf"), float("nan"), True, "0"):
        with pytest.raises(ConfigError, match="pace"):
            parse_pace(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="pace"):
        ChaosServer(pace="slow")


def test_cli_refuses_a_bad_pace_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """`--pace fast` exits 2 naming --pace."""
    from realtime_supervisor.chaos.__main__ import build_parser

    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--pace", "fast"])
    assert info.value.code == 2
    assert "--pace" in capsys.readouterr().err
    assert build_parser().parse_args(["--pace", "realtime"]).pace == 1.0


# -- pings ---------------------------------------------------------------------------------


async def test_the_server_pings_and_answers_pings(
    http: aiohttp.ClientSession, make_server: Any
) -> None:
    """Pings every ping_interval; a client heartbeat is answered, so the socket stays up."""
    server = await make_server(ping_interval=0.2)
    c = await connect(http, server, heartbeat=0.3)
    await asyncio.sleep(1.0)
    assert c.pings >= 3
    assert not c.ended.is_set()


# -- dead connections ----------------------------------------------------------------------


async def test_dead_mid_goes_silent_without_a_close_and_answers_nothing(
    http: aiohttp.ClientSession, make_server: Any
) -> None:
    """dead_mid=2: two deltas, then nothing: no pings, no pongs, no answer to cancel/create."""
    server = await make_server("dead_mid=2", ping_interval=0.2)
    # the client's heartbeat: a ping every 0.4 s, the socket closed if no pong within 0.2 s
    c = await connect(http, server, heartbeat=0.4)
    await c.send(type="response.create")
    await c.until("response.created")
    await asyncio.sleep(0.3)
    (inj,) = server.sessions["s1"].injected
    assert inj.kind == "dead_mid"
    pings, seen = c.pings, len(c.seen)
    assert len(c.audio()) == 2
    await c.send(type="response.cancel")
    await c.send(type="response.create")
    # only the client's own heartbeat notices: no pong came back
    await asyncio.wait_for(c.ended.wait(), 3)
    assert len(c.seen) == seen and c.pings == pings
    assert "response.done" not in c.types()
    assert c.ws.close_code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE  # no close frame ever came
    # the session survives: a new connection is served and the turn's retry is clean
    c2 = await connect(http, server)
    await c2.send(type="response.create")
    done = await c2.until("response.done")
    assert done["response"]["status"] == "completed"
    assert server.sessions["s1"].answered == 1


async def test_dead_mid_keeps_the_socket_open(respond: Any) -> None:
    """Without a client heartbeat, a dead connection just hangs: open, silent, unclosed."""
    _, c = await respond("dead_mid=1")
    await c.until("response.output_audio.delta")
    await asyncio.sleep(1.0)
    assert not c.ended.is_set()
    assert len(c.audio()) == 1
    assert c.types()[-1] == "response.output_audio.delta"


async def test_tcp_drop_ends_the_connection_without_a_close_frame(
    http: aiohttp.ClientSession, respond: Any
) -> None:
    """tcp_drop=2: two deltas, then the TCP connection is gone; no close frame, no done."""
    server, c = await respond("tcp_drop=2")
    await asyncio.wait_for(c.ended.wait(), 3)
    assert c.end != aiohttp.WSMsgType.CLOSE  # a close frame would arrive as CLOSE
    assert c.ws.close_code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE
    assert len(c.audio()) == 2
    assert "response.done" not in c.types()
    assert server.sessions["s1"].injected_kinds() == ["tcp_drop"]
    c2 = await connect(http, server)
    await c2.send(type="response.create")
    assert (await c2.until("response.done"))["response"]["status"] == "completed"


# -- fatal errors and the session limit -----------------------------------------------------


async def test_fatal_close_errors_and_closes_at_once_and_every_reconnect_too(
    http: aiohttp.ClientSession, open_client: Any
) -> None:
    """fatal_close: error insufficient_quota and the close together; each new socket the same."""
    server, c = await open_client("fatal_close")
    await c.until("session.created")
    await c.send(type="response.create", event_id="rc1")
    err = await c.until("error")
    await asyncio.wait_for(c.ended.wait(), 3)
    assert err["error"]["code"] == "insufficient_quota"
    assert err["error"]["event_id"] == "rc1"
    assert c.ws.close_code == 4000
    assert "response.created" not in c.types()
    for _ in range(2):
        again = await connect(http, server)
        await asyncio.wait_for(again.ended.wait(), 3)
        assert again.types() == ["session.created", "error"]
        assert again.seen[1]["error"]["code"] == "insufficient_quota"
        assert again.ws.close_code == 4000
    assert server.sessions["s1"].injected_kinds() == ["fatal_close"]
    other = await connect(http, server, session="s2")
    await other.until("session.created")
    await asyncio.sleep(0.2)
    assert not other.ended.is_set()


async def test_session_limit_closes_mid_reply_with_1001_and_a_reconnect_is_clean(
    http: aiohttp.ClientSession, respond: Any
) -> None:
    """session_limit=2: mid-reply, session_expired and a close 1001 naming the 60 minutes."""
    server, c = await respond("session_limit=2")
    err = await c.until("error")
    await asyncio.wait_for(c.ended.wait(), 3)
    assert err["error"]["code"] == "session_expired"
    assert "maximum duration of 60 minutes" in err["error"]["message"]
    assert c.ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
    assert len(c.audio()) == 2
    assert "response.done" not in c.types()
    c2 = await connect(http, server)
    await c2.send(type="response.create")
    assert (await c2.until("response.done"))["response"]["status"] == "completed"
    assert server.sessions["s1"].answered == 1


# -- incomplete responses ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("incomplete", "max_output_tokens"), ("content_filter", "content_filter")],
)
async def test_an_incomplete_response_cuts_the_answer_and_closes_every_part(
    kind: str, reason: str, open_client: Any
) -> None:
    """incomplete=1: one delta, then the *.done events and response.done incomplete."""
    server, c = await open_client(f"{kind}=1")
    await c.send(type="response.create")
    done = await c.until("response.done")
    assert len(c.audio()) == 1  # of ten
    tail = [t for t in c.types() if t.startswith("response.")][-5:]
    assert tail == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
    ]
    assert done["response"]["status"] == "incomplete"
    assert done["response"]["status_details"] == {"type": "incomplete", "reason": reason}
    assert done["response"]["output"][0]["status"] == "incomplete"
    rec = server.sessions["s1"]
    assert rec.answered == 0 and rec.injected_kinds() == [kind]
    await c.send(type="response.create")
    again = await c.until("response.done", after=len(c.seen))
    assert again["response"]["status"] == "completed"
    assert rec.answered == 1


# -- one response at a time ----------------------------------------------------------------


def _open_responses(events: list[Event]) -> int:
    """The most responses open at once on the wire (created and not yet done)."""
    open_, most = set(), 0
    for e in events:
        if e["type"] == "response.created":
            open_.add(e["response"]["id"])
        elif e["type"] == "response.done":
            open_.discard(e["response"]["id"])
        elif e["type"] == "response.output_audio.delta":
            assert e["response_id"] in open_, "audio for a response that is not open"
        most = max(most, len(open_))
    return most


async def test_late_resume_never_has_two_responses_open(respond: Any) -> None:
    """A cancel and a re-issue during late_resume's pause: the original ends before the next."""
    server, c = await respond("late_resume=0.8")
    await c.until("response.created")
    for _ in range(300):  # until the pause begins (a guard of 3 s)
        if server.sessions["s1"].injected:
            break
        await asyncio.sleep(0.01)
    await c.send(type="response.cancel")
    await c.send(type="response.create", event_id="again")
    first = await c.until("response.done")
    second = await c.until("response.done", after=c.seen.index(first) + 1)
    assert first["response"]["status"] == "cancelled"
    assert second["response"]["status"] == "completed"
    assert first["response"]["id"] != second["response"]["id"]
    assert _open_responses(c.seen) == 1
    # the pause held everything: nothing reached the client while it lasted
    onset = server.sessions["s1"].injected[0].onset
    assert all(not (onset + 0.05 < e["_at"] < onset + 0.75) for e in c.seen)


async def test_late_resume_resumes_the_original_when_nobody_cancels(respond: Any) -> None:
    """Left alone, the original resumes after the pause and completes."""
    _, c = await respond("late_resume=0.5")
    done = await c.until("response.done")
    assert done["response"]["status"] == "completed"
    assert len(c.audio()) == 10
    times = [e["_at"] for e in c.audio()]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) >= 0.45
