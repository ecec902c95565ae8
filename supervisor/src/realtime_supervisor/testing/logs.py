"""livekit's warnings and errors, captured whatever the application's log level.

A handler sees a record only if the logger's level let it be created, so livekit's loggers are
lowered to WARNING while any lowering capture is attached (counted across captures, restored by
the last one out). livekit logs on `livekit.agents` (1.8) or `livekit.plugins.openai` (1.5 and 1.2).

    with LivekitLogs() as logs:
        ...
    assert logs.saw("expected to receive only one message generation")
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final, Self

__all__ = ["LIVEKIT_LOGGERS", "LivekitLogs"]

LIVEKIT_LOGGERS: Final = ("livekit.agents", "livekit.plugins.openai")

_lowered = 0  # captures attached, across instances
_saved_levels: dict[str, int] = {}


def _lower() -> None:
    global _lowered
    if _lowered == 0:
        for name in LIVEKIT_LOGGERS:
            lg = logging.getLogger(name)
            _saved_levels[name] = lg.level
            if lg.getEffectiveLevel() > logging.WARNING:
                lg.setLevel(logging.WARNING)
    _lowered += 1


def _restore() -> None:
    global _lowered
    _lowered -= 1
    if _lowered == 0:
        for name in LIVEKIT_LOGGERS:
            logging.getLogger(name).setLevel(_saved_levels.pop(name, logging.NOTSET))


class LivekitLogs(logging.Handler):
    """Collects livekit's records at WARNING and above; `on_record` sees each as it comes.

    With `on_record`, records are handed on and not kept (a long run would keep them all).
    `lower=False` leaves livekit's levels alone: the capture then sees what the application's
    levels let through (what a test of the application's own output wants).
    Attaching is counted: one instance may be entered by several overlapping users.
    """

    def __init__(
        self,
        on_record: Callable[[logging.LogRecord], None] | None = None,
        *,
        lower: bool = True,
    ) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self._on_record = on_record
        self._lower = lower
        self._users = 0

    def emit(self, record: logging.LogRecord) -> None:
        if self._on_record is None:
            self.records.append(record)
            return
        try:
            self._on_record(record)
        except Exception:  # a capture must never break livekit's logging
            self.handleError(record)

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]

    def saw(self, text: str) -> bool:
        return any(text in m for m in self.messages())

    def attach(self) -> None:
        if self._users == 0:
            if self._lower:
                _lower()
            for name in LIVEKIT_LOGGERS:
                logging.getLogger(name).addHandler(self)
        self._users += 1

    def detach(self) -> None:
        self._users -= 1
        if self._users == 0:
            for name in LIVEKIT_LOGGERS:
                logging.getLogger(name).removeHandler(self)
            if self._lower:
                _restore()

    def __enter__(self) -> Self:
        self.attach()
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()
