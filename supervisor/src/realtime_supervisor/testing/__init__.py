"""Helpers for running an `AgentSession` without a LiveKit room, and the one call assembly.

`ScriptedCaller` is an audio input that speaks tone bursts (or makes short noises) on cue and
is silent otherwise, paced like a microphone; any server with voice detection hears it as a
person taking turns. `RecordingAudioOutput` is an audio sink that plays in real time (it holds
livekit back the way a room's audio source does) and records every frame that was actually
played, so a test can say what the caller heard and when. `LivekitLogs` captures livekit's
warnings. `SupervisedCall` builds, starts and closes a supervised call the same way everywhere
(the reference worker included).

    caller, speaker = ScriptedCaller(), RecordingAudioOutput()
    session = AgentSession(llm=model, **session_options(), **room_less_options())
    session.input.audio, session.output.audio = caller, speaker
    call = SupervisedCall(session, Supervisor(session, config), model=model)
    await call.start(agent)
    await caller.say(0.6)
    await speaker.wait_for_audio_after(t0)
    await call.aclose()

Names load lazily: the worker imports `testing.call` without the caller, the output and the chaos
server's tones.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .call import SupervisedCall, room_less_options, session_options
    from .caller import ScriptedCaller
    from .logs import LivekitLogs
    from .output import PlayedFrame, RecordingAudioOutput, classify_tone

__all__ = [
    "LivekitLogs",
    "PlayedFrame",
    "RecordingAudioOutput",
    "ScriptedCaller",
    "SupervisedCall",
    "classify_tone",
    "room_less_options",
    "session_options",
]

_WHERE = {
    "LivekitLogs": ".logs",
    "PlayedFrame": ".output",
    "RecordingAudioOutput": ".output",
    "ScriptedCaller": ".caller",
    "SupervisedCall": ".call",
    "classify_tone": ".output",
    "room_less_options": ".call",
    "session_options": ".call",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'realtime_supervisor.testing' has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)
