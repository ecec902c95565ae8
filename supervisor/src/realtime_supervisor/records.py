"""What the watchdog emits: one typed record per event, handed to each sink in turn.

structlog's processors are the model: one value through a tuple of plain callables. A sink is
any `Callable[[Record], None]`: the Supervisor's event emitter, the trace sink, a test's
`CountingSink`. The watchdog calls them in order and contains each (an error is logged and
counted, and the next sink still runs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from .events import Escalated, RecoveryFinished, RecoveryStarted, StallDetected, SupervisorEvent

__all__ = ["CountingSink", "Record", "Sink"]

Record = SupervisorEvent
Sink = Callable[[Record], None]


@dataclass
class CountingSink:
    """Keeps every record and counts them by type and by detail (for tests and simulate)."""

    records: list[Record] = field(default_factory=list)
    by_type: Counter[str] = field(default_factory=Counter)
    stalls: Counter[str] = field(default_factory=Counter)  # by stall kind
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (action, outcome)
    escalations: Counter[str] = field(default_factory=Counter)  # by reason

    def __call__(self, record: Record) -> None:
        self.records.append(record)
        self.by_type[record.type] += 1
        if isinstance(record, StallDetected):
            self.stalls[record.kind] += 1
        elif isinstance(record, RecoveryFinished):
            self.outcomes[(record.action, record.outcome)] += 1
        elif isinstance(record, Escalated):
            self.escalations[record.reason] += 1
        elif isinstance(record, RecoveryStarted):
            pass

    @property
    def types(self) -> list[str]:
        """The record types in the order they came."""
        return [r.type for r in self.records]
