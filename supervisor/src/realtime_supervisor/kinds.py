"""The vocabulary, once: what the watchdog finds, does and reports, as the metric labels spell it.

Metrics labels (and the series pre-created at zero), configuration (`ladder`), the policy, the
watchdog, the livekit binding (warning prefixes), the events, dashboards and the bench derive
from these enums; a new kind is added here and nowhere else.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "WARNING_PREFIXES",
    "Deadline",
    "EscalationReason",
    "Outcome",
    "Rung",
    "StallKind",
    "WarningKind",
]


class StallKind(StrEnum):
    """What kind of silence was found; the metric label `kind`."""

    NO_REPLY = "no_reply"
    AUDIO_GAP = "audio_gap"
    POST_WARNING_SILENCE = "post_warning_silence"
    DEAD_SESSION = "dead_session"
    RECONNECT_STORM = "reconnect_storm"


class WarningKind(StrEnum):
    """livekit log messages that mean a reply was lost; the metric label `kind`."""

    MULTI_MESSAGE = "multi_message"
    GENERATION_DISCARDED = "generation_discarded"
    REPLY_TIMEOUT = "reply_timeout"
    SCHEDULING_STOPPED = "scheduling_stopped"
    TEXT_WITH_AUDIO = "text_with_audio"
    EVENT_FAILED = "event_failed"
    UNRECOVERABLE_CLOSE = "unrecoverable_close"
    ACLOSE_ERROR = "aclose_error"  # the zombie marker on 1.5 and 1.2
    LATE_RESPONSE = "late_response"
    CONNECTION_LOST = "connection_lost"  # the socket went; livekit retries


# How each warning starts (or a distinctive part of it), matched on the formatted message, so the
# logger name does not matter (livekit.agents on 1.8, livekit.plugins.openai on 1.5 and 1.2).
WARNING_PREFIXES: Final[tuple[tuple[str, WarningKind], ...]] = (
    ("expected to receive only one message generation", WarningKind.MULTI_MESSAGE),
    ("in-progress generation discarded due to", WarningKind.GENERATION_DISCARDED),
    ("failed to generate a reply", WarningKind.REPLY_TIMEOUT),
    ("skipping new realtime generation", WarningKind.SCHEDULING_STOPPED),
    ("Text message received from Realtime API with audio", WarningKind.TEXT_WITH_AUDIO),
    ("failed to handle event", WarningKind.EVENT_FAILED),
    ("AgentSession is closing due to unrecoverable error", WarningKind.UNRECOVERABLE_CLOSE),
    ("Error in _aclose_impl", WarningKind.ACLOSE_ERROR),
    ("discarding response that arrived after it was timed out", WarningKind.LATE_RESPONSE),
    ("connection failed, retrying in", WarningKind.CONNECTION_LOST),
)


class Rung(StrEnum):
    """A recovery the watchdog performs (a rung of the ladder); the metric label `action`.

    (Named for the ladder: `policy.Action` is the decided action object.)
    """

    REISSUE = "reissue"
    RECONNECT = "reconnect"
    # Not a configurable rung: the switch to the fallback model, decided instead of escalating
    # (config.LADDER_RUNGS leaves it out)
    FAILOVER = "failover"


class Outcome(StrEnum):
    """How a recovery ended; the metric label `outcome`."""

    SUCCESS = "success"
    FAILURE = "failure"


class EscalationReason(StrEnum):
    """Why the watchdog gave up; the metric label `reason`."""

    BUDGET_EXHAUSTED = "budget_exhausted"
    LADDER_EXHAUSTED = "ladder_exhausted"
    DEAD_SESSION = "dead_session"
    RECONNECT_STORM = "reconnect_storm"
    FAILOVER_FAILED = "failover_failed"  # the fallback model did not answer either


class Deadline(StrEnum):
    """A timeout a learned threshold can govern (realtime_supervisor._learned); the metric label
    `deadline`, named as the WatchdogConfig field it replaces."""

    ACK_TIMEOUT = "ack_timeout"
    REPLY_TIMEOUT = "reply_timeout"
    RECOVERY_TIMEOUT = "recovery_timeout"
