"""A chaos session: what survives its reconnects (`SessionState`) and what tests read (the records).

A session's received events are kept in a bounded window (`RECEIVED_LIMIT` newest), so a server
that runs for hours holds a fixed amount per session; `received_total` still counts them all.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from .schedule import Fault

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["RECEIVED_LIMIT", "Injection", "ReceivedEvent", "SessionRecord", "SessionState"]

# newest client events kept per session: about 3 minutes of 100 ms audio appends
RECEIVED_LIMIT: Final = 2000


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """A client event as received: its type (never its payload) and when it arrived."""

    at: float
    type: str
    connection: int


@dataclass(frozen=True, slots=True)
class Injection:
    """A fault the server injected; `onset` is the monotonic time it took effect."""

    kind: str
    turn: int
    onset: float
    value: float | None
    connection: int
    response_id: str | None = None


def _window() -> deque[ReceivedEvent]:
    return deque(maxlen=RECEIVED_LIMIT)


@dataclass(slots=True)
class SessionRecord:
    """Everything one chaos session received and injected, for tests and logs."""

    key: str
    connections: int = 0  # websockets accepted, flapped ones included
    received: deque[ReceivedEvent] = field(default_factory=_window)  # the newest only
    received_total: int = 0  # every client event, including those the window dropped
    injected: list[Injection] = field(default_factory=list)
    # the `error` events sent, as "code: message" (the newest RECEIVED_LIMIT)
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=RECEIVED_LIMIT))
    responses: int = 0  # response.created sent
    items: int = 0  # assistant output items sent
    turns: int = 0  # user turns opened
    answered: int = 0  # turns closed by a completed answer
    cancelled: int = 0  # responses ended as cancelled

    def receive(self, event: ReceivedEvent) -> None:
        """Keep `event` in the window and count it."""
        self.received.append(event)
        self.received_total += 1

    def received_types(self) -> list[str]:
        """Client event types in arrival order (the newest `RECEIVED_LIMIT`)."""
        return [r.type for r in self.received]

    def injected_kinds(self) -> list[str]:
        """Injected fault kinds in order."""
        return [i.kind for i in self.injected]


class SessionState:
    """State that survives reconnects: the turn counter, a sticky fault and the record."""

    def __init__(self, key: str) -> None:
        self.record = SessionRecord(key)
        self.turn = 0
        self.turn_open = False
        self.fault_taken = False  # the open turn's first response has started
        self.sticky: Fault | None = None  # fatal_error, fatal_close, flap: every time from now
        self.connections: set[Connection] = set()

    def open_turn(self) -> None:
        self.turn += 1
        self.turn_open = True
        self.fault_taken = False
        self.record.turns += 1
