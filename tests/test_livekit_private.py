"""Canaries: the private livekit shapes supervisor/livekit/_private.py relies on.

If one of these fails after a livekit upgrade, the binding's reconnect or zombie detection has
silently stopped working: fix `_private.py` before anything else.
"""

from __future__ import annotations

import asyncio

import pytest

from realtime_supervisor.livekit import _private

from .harness import start_call

pytestmark = [pytest.mark.livekit, pytest.mark.compat, pytest.mark.timeout(60)]


async def test_activity_exposes_its_realtime_session() -> None:
    """`AgentSession._activity.realtime_llm_session` is the realtime session of the agent."""
    async with start_call("clean") as call:
        rt = _private.activity_realtime_session(call.session)
        assert rt is not None
        assert rt is call.session.current_agent.realtime_llm_session


async def test_the_live_socket_is_found_and_closing_it_makes_livekit_reconnect() -> None:
    """The connection loop's `ws_conn` is the open socket; closing it replays the session."""
    async with start_call("clean") as call:
        rt = _private.activity_realtime_session(call.session)
        t = await call.speak()
        assert await call.answered_after(t, within=10)
        ws = _private.live_socket(rt)
        assert ws is not None and not ws.closed
        assert _private.connection_loop_done(rt) is False
        reconnected = asyncio.Event()
        rt.on("session_reconnected", lambda _ev: reconnected.set())
        await _private.close_socket(ws)
        await asyncio.wait_for(reconnected.wait(), 10)
        assert call.chaos_record().connections == 2
        new_ws = _private.live_socket(rt)
        assert new_ws is not None and new_ws is not ws
        # the conversation goes on over the new socket
        t = await call.speak()
        assert await call.answered_after(t, within=10)


async def test_the_connection_loop_task_ends_when_the_session_closes() -> None:
    """`_main_atask` is a task that is done once the realtime session is closed."""
    async with start_call("clean") as call:
        rt = _private.activity_realtime_session(call.session)
        assert isinstance(rt._main_atask, asyncio.Task)
        await call.session.aclose()
        await asyncio.sleep(0.2)
        assert _private.connection_loop_done(rt)


async def test_the_adapter_session_holds_the_openai_session_and_the_model_restarts() -> None:
    """`_active` of the fallback adapter's session is the OpenAI session (it emits the raw server
    events); the session's model (public or `_realtime_model`) is where `restart_session` is."""
    from .harness import LK_VERSION

    async with start_call("clean", wrap_model=True) as call:
        rt = _private.activity_realtime_session(call.session)
        inner = _private.openai_session(rt)
        model = _private.realtime_model(rt)
        assert model is not None
        if LK_VERSION >= (1, 6, 5):  # the adapter exists: its session wraps the OpenAI one
            assert inner is not rt and hasattr(model, "restart_session")
            assert type(inner).__name__ == "RealtimeSession"
        else:  # reconnectable() leaves the model as it is
            assert inner is rt
        assert callable(inner.emit)


async def test_the_session_span_is_there_while_the_session_runs() -> None:
    """`AgentSession._session_span` is the `agent_session` span (1.5.11 and 1.8.9; a
    non-recording one without a tracer provider), None once the session is closed."""
    async with start_call("clean") as call:
        span = _private.session_span(call.session)
        assert span is not None and span.get_span_context() is not None
        await call.session.aclose()
        assert _private.session_span(call.session) is None


def test_livekit_server_flags_default_load_and_version_range(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A fresh AgentServer (not running: `_closed`) counts as disconnected, and its flags are
    booleans; livekit's default load calculator is found; the installed livekit is in the tested
    range and one outside it warns once."""
    from livekit.agents import AgentServer

    server = AgentServer()
    for name in ("_connecting", "_connection_failed", "_closed"):
        assert isinstance(getattr(server, name), bool), name
    assert _private.server_disconnected(server) is True
    calc = _private.default_load_calc()
    assert calc is not None and callable(calc.get_load)
    assert _private.check_version() is True
    with caplog.at_level("WARNING", logger="realtime_supervisor"):
        assert _private.check_version("1.9.0") is False
        assert _private.check_version("1.9.0") is False
        assert _private.check_version("1.4.2") is False
    warned = [m for r in caplog.records if "outside the tested" in (m := r.getMessage())]
    assert len(warned) == 2 and "1.9.0" in warned[0] and "1.4.2" in warned[1]


@pytest.mark.compat
@pytest.mark.parametrize("dead", [False, True])
async def test_closing_a_socket_whose_peer_never_answers_does_not_wait_for_it(dead: bool) -> None:
    """A connection that died without a close frame never answers ours either: aiohttp would wait
    its whole close timeout (10 s) for the reply, dead air on the call. `close_socket` drops the
    connection after CLOSE_HANDSHAKE_TIMEOUT (at once when the peer is known dead)."""
    import time

    import aiohttp
    from aiohttp import web

    release = asyncio.Event()

    async def frozen(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoclose=False)
        await ws.prepare(request)
        await release.wait()  # reads nothing, answers nothing: a frozen peer
        return ws

    app = web.Application()
    app.router.add_get("/", frozen)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"http://127.0.0.1:{port}/")
            started = time.monotonic()
            await _private.close_socket(ws, dead=dead)
            took = time.monotonic() - started
            assert ws.closed
            # generous against a loaded machine; unbounded, this is aiohttp's 10 s
            assert took < _private.CLOSE_HANDSHAKE_TIMEOUT + 4.0, took
    finally:
        release.set()
        await runner.cleanup()
