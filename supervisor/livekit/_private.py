"""The private livekit attributes we cannot avoid, each in one place with a canary test.

tests/test_livekit_private.py fails loudly when livekit changes any of these shapes.

- `AgentSession._activity`: on 1.5 and 1.8 the realtime session of the current agent is read
  through it without raising while an agent is being swapped (the public
  `current_agent.realtime_llm_session` raises RuntimeError in that window).
- `RealtimeSession._create_ws_conn`: the OpenAI session opens each websocket through this method
  (1.5.x and 1.8.x). Wrapping it is the only way to reach the live socket, and closing the live
  socket is the only way to make the plugin run its own reconnect (chat context, tools and
  options replayed) when the model is not wrapped in `RealtimeModelFallbackAdapter`.
- `RealtimeSession._main_atask`: the task that owns the connection loop; once it is done the
  session can never speak again, even if livekit did not close the `AgentSession` (a zombie).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = [
    "activity_realtime_session",
    "connection_loop_done",
    "install_socket_tap",
    "live_socket",
]

_TAP_ATTR = "_realtime_supervisor_ws"


def activity_realtime_session(session: Any) -> Any | None:
    """The current agent's realtime session, or None (no agent yet, swapping, not realtime)."""
    activity = getattr(session, "_activity", None)
    if activity is None:
        return None
    return getattr(activity, "realtime_llm_session", None)


def install_socket_tap(rt_session: Any) -> bool:
    """Remember every websocket the plugin opens, so `live_socket` can find the current one."""
    original = getattr(rt_session, "_create_ws_conn", None)
    if original is None or getattr(original, "_realtime_supervisor", False):
        return original is not None

    async def _create_ws_conn(*args: Any, **kwargs: Any) -> Any:
        ws = await original(*args, **kwargs)
        setattr(rt_session, _TAP_ATTR, ws)
        return ws

    _create_ws_conn._realtime_supervisor = True  # type: ignore[attr-defined]
    rt_session._create_ws_conn = _create_ws_conn
    return True


def live_socket(rt_session: Any) -> Any | None:
    """The websocket the plugin is using now, if it is open."""
    ws = getattr(rt_session, _TAP_ATTR, None)
    if ws is None or getattr(ws, "closed", True):
        return None
    return ws


def connection_loop_done(rt_session: Any) -> bool:
    """True once the plugin's connection loop has ended (fatal error, retries exhausted)."""
    task = getattr(rt_session, "_main_atask", None)
    return isinstance(task, asyncio.Task) and task.done()


async def close_socket(ws: Any) -> None:
    close: Callable[[], Awaitable[Any]] = ws.close
    await close()
