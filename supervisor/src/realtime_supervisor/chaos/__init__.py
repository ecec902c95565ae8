"""The chaos Realtime server: a local OpenAI/Azure Realtime stand-in that fails on cue.

    async with ChaosServer(faults="clean,stall_mid=3,drop_mid", seed=1) as server:
        model = RealtimeModel(base_url=server.url, api_key="k")

It never imports the watchdog: it must not know who is judged.
"""

from __future__ import annotations

from .faults import TABLE, Hook
from .pace import DEFAULT_PACE, parse_pace
from .schedule import (
    DEFAULTS,
    FAULT_KINDS,
    KINDS,
    NON_FAULTS,
    RECOVERABLE_KINDS,
    STICKY_KINDS,
    TOOL_NAME,
    Fault,
    Schedule,
    parse_schedule,
)
from .server import ChaosServer, Injection, ReceivedEvent, SessionRecord
from .tones import ANSWER_HZ, PREAMBLE_HZ, amplitude_for, sequence_of, tone, tone_of
from .vad import EnergyVad

__all__ = [
    "ANSWER_HZ",
    "DEFAULTS",
    "DEFAULT_PACE",
    "FAULT_KINDS",
    "KINDS",
    "NON_FAULTS",
    "PREAMBLE_HZ",
    "RECOVERABLE_KINDS",
    "STICKY_KINDS",
    "TABLE",
    "TOOL_NAME",
    "ChaosServer",
    "EnergyVad",
    "Fault",
    "Hook",
    "Injection",
    "ReceivedEvent",
    "Schedule",
    "SessionRecord",
    "amplitude_for",
    "parse_pace",
    "parse_schedule",
    "sequence_of",
    "tone",
    "tone_of",
]
