"""The private livekit attributes we cannot avoid, each in one place with a canary test.

tests/test_livekit_private.py fails loudly when livekit changes any of these shapes.

- `AgentSession._activity`: on 1.5 and 1.8 the realtime session of the current agent is read
  through it without raising while an agent is being swapped (the public
  `current_agent.realtime_llm_session` raises RuntimeError in that window).
- `RealtimeSession._main_atask`: the task that owns the connection loop (1.5.x and 1.8.x). Once
  it is done the session can never speak again, even if livekit did not close the
  `AgentSession` (a zombie). Its coroutine keeps the live websocket in its local `ws_conn`:
  closing that socket is the only way to make the plugin run its own reconnect (options, tools
  and chat context replayed) when the model is not wrapped in `RealtimeModelFallbackAdapter`.
- `AgentSession._session_span` (1.8): the `agent_session` span our trace spans hang under.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = [
    "activity_realtime_session",
    "close_socket",
    "connection_loop_done",
    "live_socket",
    "session_span",
]


_AWAIT_DEPTH = 6  # the connection loop sits one or two awaits below the task's coroutine


def activity_realtime_session(session: Any) -> Any | None:
    """The current agent's realtime session, or None (no agent yet, swapping, not realtime)."""
    activity = getattr(session, "_activity", None)
    if activity is None:
        return None
    return getattr(activity, "realtime_llm_session", None)


def live_socket(rt_session: Any) -> Any | None:
    """The websocket the plugin's connection loop is using now, if it is open."""
    task = getattr(rt_session, "_main_atask", None)
    if not isinstance(task, asyncio.Task) or task.done():
        return None
    # `_main_task` is wrapped by livekit's `log_exceptions`: walk down the awaits to its frame
    coro: Any = task.get_coro()
    for _ in range(_AWAIT_DEPTH):
        frame = getattr(coro, "cr_frame", None)
        if frame is not None and "ws_conn" in frame.f_locals:
            ws = frame.f_locals["ws_conn"]
            return None if ws is None or getattr(ws, "closed", True) else ws
        coro = getattr(coro, "cr_await", None)
        if coro is None:
            break
    return None


def connection_loop_done(rt_session: Any) -> bool:
    """True once the plugin's connection loop has ended (fatal error, retries exhausted)."""
    task = getattr(rt_session, "_main_atask", None)
    return isinstance(task, asyncio.Task) and task.done()


async def close_socket(ws: Any) -> None:
    """Close a websocket from our side; the plugin reads it as a drop and reconnects."""
    await ws.close()


def session_span(session: Any) -> Any | None:
    """livekit's `agent_session` span (1.8: `AgentSession._session_span`), while the session runs.

    Our spans are parented to it so that they sit on the session's trace; the watchdog's timers
    run outside the contexts where livekit makes it current.
    """
    return getattr(session, "_session_span", None)
