"""realtime-supervisor: a watchdog for LiveKit voice agents on realtime models.

It notices when the agent goes silent after the caller's turn (a lost, stalled or never-started
reply) and recovers: re-ask for the reply, reconnect keeping the conversation, or escalate to the
application. Attach it to an `AgentSession` in three lines:

    supervisor = Supervisor(session, WatchdogConfig.from_env(), on_escalate=transfer_call)
    await session.start(agent, room=ctx.room)
    await supervisor.start()

The pure core (config, detector, policy) imports neither asyncio nor livekit; `Supervisor` and
`reconnectable` are imported from livekit's side only when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import ServiceConfig, WatchdogConfig
from .detector import Detector, Stall, StallKind
from .errors import ConfigError, RecoveryError, SupervisorError
from .policy import Escalate, Policy, Reconnect, Reissue

if TYPE_CHECKING:
    from .livekit.binding import Escalation, Supervisor, reconnectable
    from .logs import configure_logging
    from .metrics import Metrics

__all__ = [
    "ConfigError",
    "Detector",
    "Escalate",
    "Escalation",
    "Metrics",
    "Policy",
    "Reconnect",
    "RecoveryError",
    "Reissue",
    "ServiceConfig",
    "Stall",
    "StallKind",
    "Supervisor",
    "SupervisorError",
    "WatchdogConfig",
    "configure_logging",
    "reconnectable",
]

_LAZY = {
    "Supervisor": ".livekit.binding",
    "Escalation": ".livekit.binding",
    "reconnectable": ".livekit.binding",
    "Metrics": ".metrics",
    "configure_logging": ".logs",
}


def __getattr__(name: str) -> Any:
    # livekit takes ~2 s to import: only the livekit-facing names pay for it, when first used
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'realtime_supervisor' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module, __name__), name)
