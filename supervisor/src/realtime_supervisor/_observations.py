"""What the watchdog observes: plain facts about one agent session, with no livekit types.

The livekit binding turns livekit events, the audio reaching the output and livekit's log records
into these; the detector reads nothing else. Each is a frozen dataclass so that a test can build
one in a line and a detector can keep one without copying.
"""

from __future__ import annotations

from dataclasses import dataclass

from realtime_supervisor.kinds import WarningKind

__all__ = [
    "AgentAudioPlayed",
    "AgentStateChanged",
    "LivekitWarning",
    "MessageItemAdded",
    "Observation",
    "PlaybackFinished",
    "RealtimeError",
    "ReplyInterrupted",
    "ReplyRequested",
    "ReplySent",
    "ResponseCreated",
    "ResponseDone",
    "ServerIdleTimeout",
    "ServerProgress",
    "SessionClosed",
    "SessionReconnected",
    "ToolCallFinished",
    "ToolCallStarted",
    "TurnDeclined",
    "UserSpeechStarted",
    "UserSpeechStopped",
    "WarningKind",
]


@dataclass(frozen=True, slots=True)
class UserSpeechStarted:
    """The server's VAD heard the caller start speaking."""


@dataclass(frozen=True, slots=True)
class UserSpeechStopped:
    """The caller's turn ended: from here a reply is expected."""


@dataclass(frozen=True, slots=True)
class ReplyRequested:
    """Someone asked the model for a reply (`generate_reply`); `by_watchdog` for our own."""

    by_watchdog: bool = False


@dataclass(frozen=True, slots=True)
class ReplyInterrupted:
    """The watchdog is about to interrupt whatever reply is in progress, to recover: that reply's
    audio from here on is a fragment our interrupt cuts, not an answer (Rule 12)."""


@dataclass(frozen=True, slots=True)
class ReplySent:
    """A request for a reply (`response.create`) reached the socket: from here the server owes
    its acknowledgement. Later than `ReplyRequested` when the socket was (re)connecting."""


@dataclass(frozen=True, slots=True)
class ResponseCreated:
    """The server started a response."""

    response_id: str


@dataclass(frozen=True, slots=True)
class MessageItemAdded:
    """A message item (something to be spoken) was added to a response."""

    response_id: str
    item_id: str


@dataclass(frozen=True, slots=True)
class AgentAudioPlayed:
    """Agent audio reached the output: the only proof the caller heard something."""


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    """The output finished playing a segment (or was cleared, `interrupted`)."""

    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class ResponseDone:
    """The server closed a response; status is completed, cancelled, incomplete or failed."""

    response_id: str
    status: str
    error_code: str | None = None  # status_details.error.code of a failed response
    # the server sent audio for it: livekit plays what came even when the response was cut
    voiced: bool = False


@dataclass(frozen=True, slots=True)
class ServerProgress:
    """The server sent an event, any event: the connection is alive and working on something.

    Frequent (every audio delta): the binding stores its time and the watchdog feeds the latest
    one before each judgement, as it does for audio frames.
    """


@dataclass(frozen=True, slots=True)
class ServerIdleTimeout:
    """Server VAD's idle timeout fired (input_audio_buffer.timeout_triggered): the server will
    prompt the caller by itself, so a reply is owed without a caller's turn."""


@dataclass(frozen=True, slots=True)
class LivekitWarning:
    """livekit logged one of the messages that mean a reply was lost."""

    kind: WarningKind


@dataclass(frozen=True, slots=True)
class RealtimeError:
    """The realtime model reported an error; unrecoverable ones end the session in livekit."""

    recoverable: bool
    code: str | None = None


@dataclass(frozen=True, slots=True)
class SessionReconnected:
    """The realtime websocket was re-established (by livekit or by us)."""


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    """A function tool began running: silence while it runs is expected."""


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    """A function tool finished; a reply to its result is expected."""


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    """livekit's agent state: initializing, idle, listening, thinking or speaking."""

    state: str


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """The session is over; or closed in all but name (`zombie`: livekit emitted no close)."""

    zombie: bool = False


@dataclass(frozen=True, slots=True)
class TurnDeclined:
    """The application deliberately leaves the current turn unanswered."""


Observation = (
    UserSpeechStarted
    | UserSpeechStopped
    | ReplyInterrupted
    | ReplyRequested
    | ReplySent
    | ResponseCreated
    | MessageItemAdded
    | AgentAudioPlayed
    | PlaybackFinished
    | ResponseDone
    | ServerProgress
    | ServerIdleTimeout
    | LivekitWarning
    | RealtimeError
    | SessionReconnected
    | ToolCallStarted
    | ToolCallFinished
    | AgentStateChanged
    | SessionClosed
    | TurnDeclined
)
