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
