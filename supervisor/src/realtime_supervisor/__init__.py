"""realtime-supervisor: a watchdog for LiveKit voice agents on realtime models.

It notices when the agent goes silent after the caller's turn (a lost, stalled or never-started
reply) and recovers: re-ask for the reply, reconnect keeping the conversation, or escalate to the
application. Attach it to an `AgentSession`:

    from realtime_supervisor import Supervisor, WatchdogConfig, reconnectable

    session = AgentSession(llm=reconnectable(openai.realtime.RealtimeModel()))
    supervisor = Supervisor(session, WatchdogConfig.from_env(), on_escalate=transfer_call,
                            provider="openai", model="gpt-realtime")
    supervisor.on("stall_detected", lambda ev: print("silent:", ev.kind))
    # optional: Supervisor(..., hold_cue=HoldCue.chime()) plays "one moment" during a recovery
    await session.start(agent, room=ctx.room)
    await supervisor.start()
    ctx.add_shutdown_callback(supervisor.aclose)

The public face is the names below; modules stay importable for the tests and the reference
worker but are not promised. `Supervisor`, `reconnectable` and `Escalation` come from livekit's
side and are imported on first use (livekit takes about 2 s to import).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .config import WatchdogConfig
from .cue import HoldCue
from .errors import ConfigError, RecoveryError, SupervisorError
from .events import Escalated, RecoveryFinished, RecoveryStarted, StallDetected, SupervisorEvent

if TYPE_CHECKING:
    from .livekit.binding import Escalation, Supervisor, reconnectable

__all__ = [
    "ConfigError",
    "Escalated",
    "Escalation",
    "HoldCue",
    "RecoveryError",
    "RecoveryFinished",
    "RecoveryStarted",
    "StallDetected",
    "Supervisor",
    "SupervisorError",
    "SupervisorEvent",
    "WatchdogConfig",
    "__version__",
    "reconnectable",
]

_LAZY = {
    "Supervisor": ".livekit.binding",
    "Escalation": ".livekit.binding",
    "reconnectable": ".livekit.binding",
}


def __getattr__(name: str) -> Any:
    # livekit takes ~2 s to import: only the livekit-facing names pay for it, when first used
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'realtime_supervisor' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module, __name__), name)
