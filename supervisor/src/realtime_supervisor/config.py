"""Typed settings for the watchdog and the worker-side service.

Both are frozen dataclasses validated on construction, so a bad value fails where it is made and
names the field. The environment is read only by the `from_env` classmethods, from a mapping a test
can replace; a bad variable fails naming the VARIABLE and what it accepts, and an unknown
`REALTIME_SUPERVISOR_*` variable fails too, since a typo would otherwise silently keep a default.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from realtime_supervisor.errors import ConfigError
from realtime_supervisor.kinds import Rung

__all__ = ["LADDER_RUNGS", "LOG_FORMATS", "LOG_LEVELS", "ServiceConfig", "WatchdogConfig"]

PREFIX = "REALTIME_SUPERVISOR_"
LADDER_RUNGS = tuple(a.value for a in Rung)
LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_NO_LADDER = "none"

_T = TypeVar("_T")


# -- field checks (raise ConfigError naming `name`, a field or a variable) ------------------------


def _positive_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(name, f"expected a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(name, f"expected a finite number of seconds > 0, got {value!r}")
    return float(value)


def _int_in(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"expected an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        accepted = f">= {low}" if high is None else f"{low}..{high}"
        raise ConfigError(name, f"expected an integer {accepted}, got {value!r}")
    return value


def _ladder(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, tuple | list):
        raise ConfigError(name, f"expected a sequence of rungs from {LADDER_RUNGS}, got {value!r}")
    for rung in value:
        if rung not in LADDER_RUNGS:
            raise ConfigError(
                name, f"unknown ladder rung {rung!r}; accepted: {', '.join(LADDER_RUNGS)}"
            )
    return tuple(value)


def _choice(name: str, value: object, accepted: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in accepted:
        raise ConfigError(name, f"expected one of {', '.join(accepted)}, got {value!r}")
    return value


# -- environment parsing -------------------------------------------------------------------------


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected one of {', '.join(_TRUE + _FALSE)}")


def _parse_float(text: str) -> float:
    return float(text.strip())


def _parse_int(text: str) -> int:
    return int(text.strip())


def _parse_ladder(text: str) -> tuple[str, ...]:
    if text.strip().lower() == _NO_LADDER:
        return ()
    return tuple(part.strip() for part in text.split(","))


def _parse_str(text: str) -> str:
    return text.strip()


def _parse_level(text: str) -> str:
    return text.strip().upper()


def _env(
    env: Mapping[str, str] | None, variables: Mapping[str, tuple[str, Callable[[str], Any]]]
) -> tuple[Mapping[str, str], dict[str, Any]]:
    """Parse `variables` (VARIABLE -> (field, parser)) from `env`; return the mapping and kwargs.

    An empty value counts as unset: deployment templates often render an unset value as "".
    """
    source: Mapping[str, str] = os.environ if env is None else env
    _reject_unknown(source)
    kwargs: dict[str, Any] = {}
    for variable, (field, parse) in variables.items():
        raw = source.get(variable)
        if raw is None or not raw.strip():
            continue
        try:
            kwargs[field] = parse(raw)
        except ValueError as exc:
            raise ConfigError(variable, f"cannot parse {raw!r}: {exc}") from exc
    return source, kwargs


def _construct(cls: Callable[..., _T], kwargs: dict[str, Any], variables: Mapping[str, str]) -> _T:
    """Build `cls(**kwargs)`; re-raise a field's ConfigError under its variable's name."""
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        variable = variables.get(exc.field)
        if variable is None:
            raise
        message = str(exc).removeprefix(f"{exc.field}: ")
        raise ConfigError(variable, message) from exc


def _reject_unknown(source: Mapping[str, str]) -> None:
    known = set(_WATCHDOG_VARIABLES) | set(_SERVICE_VARIABLES)
    for name in sorted(source):
        if name.startswith(PREFIX) and name not in known:
            raise ConfigError(
                name, f"unknown variable (a typo?); known ones: {', '.join(sorted(known))}"
            )


# -- the settings ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchdogConfig:
    """How the watchdog judges silence and how hard it tries to recover it."""

    # On by default: the watchdog only acts on silence, so leaving it on costs nothing when healthy.
    enabled: bool = True
    # Turn end -> first agent audio. Healthy first-audio latency on gpt-realtime is about 0.5-1.5 s;
    # livekit gives up on a reply only after 10 s (5 s on 1.2), and the caller has hung up by then.
    reply_timeout: float = 5.0
    # A hole in an open response's audio. The API streams faster than real time and the output is
    # paced, so 2 s without a frame is far beyond network jitter: the server has stopped sending.
    audio_gap_timeout: float = 2.0
    # Silence after a livekit warning that means a reply was lost. The warning is itself evidence,
    # so a short grace (enough for a follow-on item to start playing) suffices.
    warning_grace: float = 1.0
    # Our own reply request -> first agent audio: the same latency as any reply.
    recovery_timeout: float = 5.0
    # Turn end (or any reply request, ours included) -> the server's response.created. The real
    # API acknowledges in about 0.3 s even when the reply itself is slow (a reasoning model, a
    # slow first audio); nothing by 1.5 s means the request was lost (or the socket is dead).
    ack_timeout: float = 1.5
    # Acknowledged, then no server event of any kind: the reply stopped making progress. Above
    # a slow but healthy first audio (about 4 s of nothing after the response's first events).
    progress_timeout: float = 5.0
    # Restart intensity, as an OTP supervisor's (whose default is 1 in 5 s): 3 actions a minute is
    # one full ladder plus one retry; beyond that the session is sick, not unlucky.
    budget_max_recoveries: int = 3
    budget_window: float = 60.0
    # livekit retries a dropped socket at most 3 times and then reconnects in a loop (about 10/s
    # against a server that accepts then closes): 5 in 30 s is no longer a network blip.
    storm_reconnects: int = 5
    storm_window: float = 30.0
    # Cheapest first: a reissue keeps the connection; a reconnect replays the conversation.
    ladder: tuple[str, ...] = ("reissue", "reconnect")
    # livekit's own connection retry count (conn_options.max_retry = 3).
    reconnect_attempts: int = 3
    # Waits 0.5, 1, 2 (+ jitter): all attempts fit well inside one recovery timeout's worth.
    reconnect_backoff_max: float = 4.0

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigError("enabled", f"expected a bool, got {self.enabled!r}")
        for name in (
            "reply_timeout",
            "audio_gap_timeout",
            "warning_grace",
            "recovery_timeout",
            "budget_window",
            "storm_window",
            "reconnect_backoff_max",
        ):
            object.__setattr__(self, name, _positive_float(name, getattr(self, name)))
        for name, low, high in (("ack_timeout", 0.2, 30.0), ("progress_timeout", 0.5, 120.0)):
            value = _positive_float(name, getattr(self, name))
            if not low <= value <= high:
                raise ConfigError(name, f"expected seconds in {low:g}..{high:g}, got {value!r}")
            object.__setattr__(self, name, value)
        for name in ("budget_max_recoveries", "storm_reconnects", "reconnect_attempts"):
            _int_in(name, getattr(self, name), 1)
        object.__setattr__(self, "ladder", _ladder("ladder", self.ladder))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WatchdogConfig:
        """Read the REALTIME_SUPERVISOR_* watchdog variables (default: os.environ)."""
        _, kwargs = _env(env, _WATCHDOG_VARIABLES)
        return _construct(cls, kwargs, _field_to_variable(_WATCHDOG_VARIABLES))


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """The worker-side HTTP service (metrics and health) and its draining rule."""

    # Every interface: Prometheus scrapes the pod from another pod.
    http_host: str = "0.0.0.0"
    # 9464 is the port registered for Prometheus exporters (OpenTelemetry's too). 0 picks a free
    # port and is accepted only here, for tests: a scraper could not find it.
    http_port: int = 9464
    # Drain the worker (stop taking jobs) after this many escalations in drain_window: a worker
    # whose sessions keep dying needs replacing; one bad session does not make it so.
    drain_escalations: int = 5
    drain_window: float = 300.0
    # JSON for log pipelines; console for people.
    log_format: str = "json"
    log_level: str = "INFO"
    # prometheus-client's multiprocess directory; None when the worker runs jobs in-process.
    multiproc_dir: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.http_host, str) or not self.http_host:
            raise ConfigError(
                "http_host", f"expected a host name or address, got {self.http_host!r}"
            )
        _int_in("http_port", self.http_port, 0, 65535)
        _int_in("drain_escalations", self.drain_escalations, 1)
        object.__setattr__(self, "drain_window", _positive_float("drain_window", self.drain_window))
        _choice("log_format", self.log_format, LOG_FORMATS)
        _choice("log_level", self.log_level, LOG_LEVELS)
        if self.multiproc_dir is not None and (
            not isinstance(self.multiproc_dir, str) or not self.multiproc_dir
        ):
            raise ConfigError(
                "multiproc_dir", f"expected a directory path or None, got {self.multiproc_dir!r}"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceConfig:
        """Read the REALTIME_SUPERVISOR_* service variables and PROMETHEUS_MULTIPROC_DIR."""
        source, kwargs = _env(env, _SERVICE_VARIABLES)
        port = kwargs.get("http_port")
        if port is not None and not 1 <= port <= 65535:
            raise ConfigError(PREFIX + "HTTP_PORT", f"expected an integer 1..65535, got {port!r}")
        multiproc = source.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
        if multiproc:
            kwargs["multiproc_dir"] = multiproc
        return _construct(cls, kwargs, _field_to_variable(_SERVICE_VARIABLES))


def _field_to_variable(
    variables: Mapping[str, tuple[str, Callable[[str], Any]]],
) -> dict[str, str]:
    return {field: variable for variable, (field, _) in variables.items()}


_WATCHDOG_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    PREFIX + "ENABLED": ("enabled", _parse_bool),
    PREFIX + "REPLY_TIMEOUT": ("reply_timeout", _parse_float),
    PREFIX + "AUDIO_GAP_TIMEOUT": ("audio_gap_timeout", _parse_float),
    PREFIX + "WARNING_GRACE": ("warning_grace", _parse_float),
    PREFIX + "RECOVERY_TIMEOUT": ("recovery_timeout", _parse_float),
    PREFIX + "ACK_TIMEOUT": ("ack_timeout", _parse_float),
    PREFIX + "PROGRESS_TIMEOUT": ("progress_timeout", _parse_float),
    PREFIX + "BUDGET_MAX_RECOVERIES": ("budget_max_recoveries", _parse_int),
    PREFIX + "BUDGET_WINDOW": ("budget_window", _parse_float),
    PREFIX + "STORM_RECONNECTS": ("storm_reconnects", _parse_int),
    PREFIX + "STORM_WINDOW": ("storm_window", _parse_float),
    PREFIX + "LADDER": ("ladder", _parse_ladder),
    PREFIX + "RECONNECT_ATTEMPTS": ("reconnect_attempts", _parse_int),
    PREFIX + "RECONNECT_BACKOFF_MAX": ("reconnect_backoff_max", _parse_float),
}

_SERVICE_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    PREFIX + "HTTP_HOST": ("http_host", _parse_str),
    PREFIX + "HTTP_PORT": ("http_port", _parse_int),
    PREFIX + "DRAIN_ESCALATIONS": ("drain_escalations", _parse_int),
    PREFIX + "DRAIN_WINDOW": ("drain_window", _parse_float),
    PREFIX + "LOG_FORMAT": ("log_format", _parse_str),
    PREFIX + "LOG_LEVEL": ("log_level", _parse_level),
}
