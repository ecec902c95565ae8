"""The exceptions realtime-supervisor raises.

SupervisorError
├── ConfigError      a setting, variable, flag or schedule is invalid (also a ValueError)
└── RecoveryError    an action could not be performed (the watchdog contains these)
"""

from __future__ import annotations

__all__ = ["ConfigError", "RecoveryError", "SupervisorError"]


class SupervisorError(Exception):
    """Base class of every error realtime-supervisor raises."""


class ConfigError(SupervisorError, ValueError):
    """An invalid setting; the message names the field and what it accepts."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class RecoveryError(SupervisorError):
    """A recovery action failed (for example the reconnect attempts ran out)."""
