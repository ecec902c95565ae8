"""The livekit edge of realtime-supervisor: the only package that imports livekit."""

from .binding import Escalation, Supervisor, reconnectable

__all__ = ["Escalation", "Supervisor", "reconnectable"]
