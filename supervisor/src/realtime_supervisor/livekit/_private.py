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
- `RealtimeModelFallbackAdapter`'s session `_active` (the OpenAI session it holds, which emits
  the raw server events) and a realtime session's `_realtime_model` (1.5, where the public
  `realtime_model` is missing), for the model's `restart_session`.
- `AgentServer._connecting`, `_connection_failed`, `_closed` (1.5.11 and 1.8.9): whether the
  worker's connection to LiveKit is up now (the public `id` only says it registered once).
- `livekit.agents.worker._DefaultLoadCalc`: livekit's default load function (its CPU average).

Tested livekit range: `TESTED` below; `check_version` warns once per process outside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from typing import Any, Final

__all__ = [
    "TESTED",
    "activity_realtime_session",
    "check_version",
    "close_socket",
    "connection_loop_done",
    "default_load_calc",
    "live_socket",
    "openai_session",
    "realtime_model",
    "server_disconnected",
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


# The real API answers a close frame at once; a connection that died without one never does,
# and aiohttp would wait its whole close timeout (10 s) for the reply. Cancelling aiohttp's
# close() past this bound drops the connection instead (its documented cancel path).
CLOSE_HANDSHAKE_TIMEOUT = 1.0
DEAD_PEER_CLOSE = 0.05  # time to write the close frame; no reply is waited for


async def close_socket(ws: Any, *, dead: bool = False) -> None:
    """Close a websocket from our side; the plugin reads it as a drop and reconnects.

    Bounded: a peer's socket is dropped after CLOSE_HANDSHAKE_TIMEOUT without its reply, at once
    (after the close frame is written) when the peer is known `dead`.
    """
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ws.close(), DEAD_PEER_CLOSE if dead else CLOSE_HANDSHAKE_TIMEOUT)


def session_span(session: Any) -> Any | None:
    """livekit's `agent_session` span (1.8: `AgentSession._session_span`), while the session runs.

    Our spans are parented to it so that they sit on the session's trace; the watchdog's timers
    run outside the contexts where livekit makes it current.
    """
    return getattr(session, "_session_span", None)


def openai_session(rt: Any) -> Any:
    """The OpenAI session: `rt` itself, or the one a `RealtimeModelFallbackAdapter` holds."""
    return getattr(rt, "_active", rt)


def realtime_model(rt: Any) -> Any | None:
    """The realtime model of a session (public on 1.8, private on 1.5)."""
    return getattr(rt, "realtime_model", None) or getattr(rt, "_realtime_model", None)


def server_disconnected(server: Any) -> bool:
    """True while livekit's `AgentServer` is (re)connecting, has given up, or is closed."""
    return bool(
        getattr(server, "_connecting", False)
        or getattr(server, "_connection_failed", False)
        or getattr(server, "_closed", False)
    )


def default_load_calc() -> Any | None:
    """livekit's default load calculator (`get_load(worker)`), or None when it is gone."""
    try:
        return importlib.import_module("livekit.agents.worker")._DefaultLoadCalc
    except (ImportError, AttributeError):
        return None


TESTED: Final = ((1, 5, 11), (1, 9, 0))  # livekit-agents: from the first, up to (not incl.)
_warned: list[str] = []


def check_version(version: str | None = None) -> bool:
    """Whether livekit-agents `version` (default: installed) is in the tested range; warns once
    per process (logger `realtime_supervisor`) when it is not."""
    if version is None:
        import livekit.agents

        version = str(livekit.agents.__version__)
    try:
        parts = tuple(int(p) for p in version.split(".")[:3])
    except ValueError:
        parts = ()
    low, high = TESTED
    ok = bool(parts) and low <= parts < high
    if not ok and version not in _warned:
        _warned.append(version)
        logging.getLogger("realtime_supervisor").warning(
            "livekit-agents %s is outside the tested range (>=%s,<%s): the watchdog reads a few "
            "private livekit attributes (see realtime_supervisor/livekit/_private.py) and may "
            "not see or recover stalls",
            version,
            ".".join(map(str, low)),
            ".".join(map(str, high)),
        )
    return ok
