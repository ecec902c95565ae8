"""One call assembly: how a supervised `AgentSession` is built, started and closed.

The reference worker (in a LiveKit room), `simulate`, the bench and the tests (room-less, with a
scripted caller) all go through `SupervisedCall`, so the order that matters is written once:
1. The `Supervisor` is built BEFORE `session.start()`: livekit's tasks copy the context at
   creation, which is how its log records are told apart per session.
2. `start()` starts the session, then the supervisor.
3. `aclose()` undoes it in reverse: the supervisor, then (room-less only: a room's job closes
   its session itself) the session and the model, each bounded so a wedged session cannot hold
   the caller.

`session_options()` are the `AgentSession` settings the worker ships; tests use them unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from livekit.agents import AgentSession

if TYPE_CHECKING:
    from livekit import rtc
    from livekit.agents import Agent

    from ..livekit.binding import Supervisor

__all__ = ["CLOSE_TIMEOUT", "SupervisedCall", "room_less_options", "session_options"]

CLOSE_TIMEOUT: Final = 10.0  # session.aclose() / model.aclose(): a wedged session must not hold


def session_options() -> dict[str, Any]:
    """`AgentSession` keyword arguments besides the model: what the reference worker ships.

    Turn detection is the realtime model's own (`realtime_llm`), `vad=None` (1.8 would load its
    bundled local VAD only to leave it unused), and livekit's interruption defaults stand
    (`resume_false_interruption` on, 2 s). `agent/models.py` `session_kwargs` builds the same
    (tests/test_judge.py holds them equal).

    What a room-less test must change: not these; it adds `room_less_options()` (livekit's
    echo warm-up, which a room sets per caller), sets `session.input.audio` and
    `session.output.audio` itself (`ScriptedCaller`, `RecordingAudioOutput`, which can pause as
    a room's output can, so livekit keeps its false-interruption resume) and starts with
    `record=False` (`SupervisedCall.start` without a room), as there is no room to record.
    """
    opts: dict[str, Any] = {"turn_handling": {"turn_detection": "realtime_llm"}}
    if "vad" in inspect.signature(AgentSession.__init__).parameters:
        opts["vad"] = None
    return opts


def room_less_options() -> dict[str, Any]:
    """What an `AgentSession` without a room adds to `session_options()`: no echo warm-up.

    livekit (1.5 and 1.8) feeds the realtime model silence instead of the caller's audio during
    the first `aec_warmup_duration` seconds (3 s) the agent speaks, so the echo of its first
    words cannot interrupt it before the room's echo cancellation has adapted. In a room 1.8
    sets it when the caller's participant joins: 3 s for a person on a microphone, none for an
    outbound SIP call or livekit's own simulator ("a simulator publishes synthesized audio, so
    the agent's speech never echoes back"). A room-less session never sees a participant join,
    so the 3 s would stand although a scripted caller hears no echo, and a caller who cuts into
    the first reply (`simulate --barge-in`) would be muted whole whenever that reply was still
    playing when the caller stopped: the turn lost, by timing, with or without a watchdog.
    Room-less sessions take livekit's simulator setting. Not for the worker: in a room livekit
    decides (1.8), or the application does.
    """
    if "aec_warmup_duration" in inspect.signature(AgentSession.__init__).parameters:
        return {"aec_warmup_duration": None}
    return {}


@dataclass(slots=True)
class SupervisedCall:
    """An `AgentSession`, optionally the model it alone uses, and the `Supervisor` watching it."""

    session: AgentSession[Any]
    supervisor: Supervisor | None = None
    model: Any | None = None  # closed with the call (room-less); None when shared or not ours
    close_timeout: float = CLOSE_TIMEOUT
    _in_room: bool = field(default=False, init=False)

    async def start(self, agent: Agent, *, room: rtc.Room | None = None) -> None:
        """Start the session (in `room`, or room-less), then the supervisor."""
        if room is not None:
            self._in_room = True
            await self.session.start(agent, room=room)
        else:
            await self.session.start(agent, record=False)
        if self.supervisor is not None:
            await self.supervisor.start()

    async def aclose(self) -> None:
        """Stop the supervisor, then (room-less) close the session and the model."""
        if self.supervisor is not None:
            await self.supervisor.aclose()
        if self._in_room:
            return  # livekit's job closes a session it started in a room
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.session.aclose(), self.close_timeout)
        if self.model is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.model.aclose(), self.close_timeout)
