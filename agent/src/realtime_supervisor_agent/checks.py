"""The worker's start-up: its settings, read from the environment, and the checks that need
more than the values (moved out of worker.py as is; `worker` re-exports what it used).

`load_settings` reads AgentConfig, WatchdogConfig, ServiceConfig and the fallback model, all
problems at once. `check_start` then builds the session's models and a watchdog once, without
network, and checks the service's host and port and PROMETHEUS_MULTIPROC_DIR: a value that passed
validation but still cannot run fails at start, naming its variable, not in every call.
"""

from __future__ import annotations

import errno
import os
import socket
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from realtime_supervisor._env import ConfigProblems, Problem
from realtime_supervisor.config import WATCHDOG_VARIABLES, ServiceConfig, WatchdogConfig
from realtime_supervisor.errors import ConfigError
from realtime_supervisor_agent.config import AgentConfig

__all__ = [
    "Settings",
    "SettingsError",
    "check_models",
    "check_multiproc_dir",
    "check_start",
    "check_watchdog",
    "load_settings",
]


# -- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the worker reads from the environment, validated."""

    agent: AgentConfig
    watchdog: WatchdogConfig
    service: ServiceConfig
    # AGENT_FALLBACK_*: the second realtime model the watchdog fails over to; None = none
    fallback: AgentConfig | None = None


class SettingsError(ConfigProblems):
    """Every problem in the worker's settings, one "VARIABLE: what is accepted" line each."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        super().__init__([problem for error in errors for problem in _problems(error)])
        self.errors: tuple[ConfigError, ...] = tuple(errors)


def _problems(error: ConfigError) -> tuple[Problem, ...]:
    if isinstance(error, ConfigProblems):
        return error.problems
    return ((error.field, str(error).removeprefix(f"{error.field}: ")),)


def load_settings(
    env: Mapping[str, str] | None = None, *, require_livekit: bool = False
) -> Settings:
    """Read the three configurations from `env` (default os.environ); raise one SettingsError.

    All three are read even when one fails, so a deploy fails once with the whole list.
    """
    source: Mapping[str, str] = os.environ if env is None else env
    errors: list[ConfigError] = []
    agent_cfg: AgentConfig | None = None
    watchdog: WatchdogConfig | None = None
    service: ServiceConfig | None = None
    try:
        agent_cfg = AgentConfig.from_env(source, require_livekit=require_livekit)
    except ConfigError as exc:
        errors.append(exc)
    try:
        watchdog = WatchdogConfig.from_env(source)
    except ConfigError as exc:
        errors.append(exc)
    try:
        # The unknown-variable problems are the watchdog's to report (the same list twice helps
        # nobody); the service's own problems are kept.
        service = ServiceConfig.from_env(source)
    except ConfigError as exc:
        known = {p for e in errors for p in _problems(e)}
        fresh = [p for p in _problems(exc) if p not in known]
        if fresh:
            errors.append(ConfigProblems(fresh))
    fallback: AgentConfig | None = None
    if agent_cfg is not None:
        from realtime_supervisor_agent.fallback import fallback_from_env

        try:
            fallback = fallback_from_env(agent_cfg, source)
        except ConfigError as exc:
            errors.append(exc)
    if errors:
        raise SettingsError(errors)
    assert agent_cfg is not None and watchdog is not None and service is not None
    return Settings(agent_cfg, watchdog, service, fallback)


def check_watchdog(config: WatchdogConfig) -> None:
    """Build a watchdog (detector, policy, backoff) once, as every job will: a value that passed
    validation but still cannot run fails here, naming its variable, not in every call."""
    try:
        _dry_run(config)
    except Exception as whole:
        default = WatchdogConfig()
        changed = [
            f.name for f in fields(config) if getattr(config, f.name) != getattr(default, f.name)
        ]
        culprits = []
        for name in changed:
            try:
                _dry_run(replace(default, **{name: getattr(config, name)}))
            except Exception:
                culprits.append(name)
        variables = {var.field: var.name for var in WATCHDOG_VARIABLES}
        named = [variables[name] for name in (culprits or changed)] or [
            var.name for var in WATCHDOG_VARIABLES
        ]
        raise ConfigProblems(
            [(name, f"the watchdog cannot be built with this value ({whole!r})") for name in named]
        ) from whole


def _dry_run(config: WatchdogConfig) -> None:
    from realtime_supervisor._policy import reconnect_waits
    from realtime_supervisor._watchdog import Watchdog

    class _Inert:
        async def reissue(self, instructions: str | None) -> None: ...
        async def reconnect(self) -> None: ...
        async def escalate(self, stall: object, reason: str) -> None: ...

    Watchdog(config, _Inert())
    reconnect_waits(config)


def check_multiproc_dir(path: str | None) -> None:
    """PROMETHEUS_MULTIPROC_DIR must be a writable directory, or one we can create in an existing
    writable parent: otherwise every job process fails to initialise, over and over."""
    if path is None:
        return
    target = Path(path)
    where = target if target.exists() else target.parent
    problem: str | None = None
    if target.exists() and not target.is_dir():
        problem = "exists and is not a directory"
    elif not where.is_dir():
        problem = f"its parent {str(where)!r} does not exist (only the last level is created)"
    else:
        try:
            with tempfile.TemporaryFile(dir=where):
                pass
        except OSError as exc:
            problem = f"{str(where)!r} is not writable ({exc.strerror or exc})"
    if problem is not None:
        raise ConfigError(
            "PROMETHEUS_MULTIPROC_DIR",
            f"{path!r} cannot hold the job processes' metrics: {problem}",
        )


def check_models(cfg: AgentConfig) -> None:
    """Build the session's models once, without network, so their ConfigErrors surface here."""
    from realtime_supervisor_agent.models import session_kwargs

    session_kwargs(cfg)


def _check_port_free(host: str, port: int) -> None:
    """Fail before livekit starts when the service cannot listen (aiohttp would fail later).

    A host that does not resolve or is not an address of this machine names HTTP_HOST; a taken
    port names HTTP_PORT.
    """
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(
            "REALTIME_SUPERVISOR_HTTP_HOST",
            f"cannot resolve host {host!r} ({getattr(exc, 'strerror', None) or exc}); "
            "expected an address of this machine or a name that resolves to one",
        ) from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As aiohttp binds: a socket in TIME_WAIT does not count as taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    "REALTIME_SUPERVISOR_HTTP_PORT",
                    f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose a free port",
                ) from exc
            raise ConfigError(
                "REALTIME_SUPERVISOR_HTTP_HOST",
                f"cannot listen on host {host!r} ({exc.strerror or exc}); expected an address "
                "of this machine (0.0.0.0 for every interface)",
            ) from exc


def check_start(settings: Settings) -> None:
    """Every check that needs more than the values: models, watchdog, port, metrics directory.

    All run, and their problems are reported together (one SettingsError).
    """
    errors: list[ConfigError] = []
    checks: tuple[Callable[[], None], ...] = (
        lambda: check_models(settings.agent),
        lambda: check_watchdog(settings.watchdog),
        lambda: _check_port_free(settings.service.http_host, settings.service.http_port),
        lambda: check_multiproc_dir(settings.service.multiproc_dir),
    )
    for check in checks:
        try:
            check()
        except ConfigError as exc:
            errors.append(exc)
    if errors:
        raise SettingsError(errors)
