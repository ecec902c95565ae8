"""The LiveKit worker: livekit's own CLI (`start|dev|console`) with the watchdog in every job and
the supervisor service in the main process.

    realtime-supervisor start          # production: registers with LIVEKIT_URL, takes jobs
    realtime-supervisor dev            # development: devmode, no load threshold

Main process (`main`):
1. Every setting is read and validated before anything starts: `AgentConfig`, `WatchdogConfig`,
   `ServiceConfig` from the environment (bounds and cross-field checks included), then
   `check_start`: a dry build of the session's models (it catches the variables livekit's plugin
   reads behind our back), a dry build of the watchdog as every job will build it, the service's
   host and port, and a writable PROMETHEUS_MULTIPROC_DIR. A bad variable prints one error per
   problem, naming the variable, and exits 2; secrets are never printed. Nothing has connected or
   forked by then.
2. Logging is redacted (livekit's CLI installs the handlers: one JSON shape, livekit's), and
   PROMETHEUS_MULTIPROC_DIR is created and emptied (`prepare_multiproc_dir`).
3. `build_worker` makes livekit's `AgentServer` with our `load_fnc`, `setup_fnc` (prewarm),
   entrypoint, `drain_timeout` and multiprocess directory, and `cli.run_app` runs it.
4. livekit's `AgentServer.run()` empties the directory again, starts the job process pool, and
   emits `worker_started` from inside its event loop. There `Worker` builds the
   `SupervisorService` and starts it in that same loop:
   - its metrics are built only now, after livekit's wipe: a process keeps writing to the files
     it opened, so anything built before the wipe would vanish from /metrics;
   - /healthz measures the loop that also runs livekit's worker (a thread of its own would stay
     healthy while livekit's loop is blocked);
   - the service lives in one task; livekit cancels every task of its loop at shutdown, and the
     task's `finally` closes the service there, before the loop closes. Until then (the whole
     drain) /metrics, /healthz and /readyz keep answering.

Load and draining: `load_fnc` is `Worker.load`, which is the service's `load` once it exists
(1.0 while the service drains after too many escalations, else `load.CapacityLoad`: the highest
of livekit's CPU load, memory against the container limit, and calls against AGENT_MAX_CALLS).
livekit calls it every 0.5 s and before answering each job request, and reports FULL to LiveKit
when the load reaches `load_threshold` (0.7 in production), so LiveKit stops dispatching here.

Metrics: livekit registers its lk_agents_* families in this process's default registry at import
and updates them from its load loop (the child-process count only in multiprocess mode, hence
`prometheus_multiproc_dir`). `prometheus_port` stays unset: the service's /metrics serves them
with ours, on one port (REALTIME_SUPERVISOR_HTTP_PORT, 9464).

Drain on SIGTERM: livekit marks the worker FULL and waits up to `drain_timeout` for running calls
to end, then closes. Without livekit's own flag (`realtime-supervisor start --drain-timeout N`)
that is 570 s (`DRAIN_TIMEOUT`). The chart always passes the flag (drainTimeoutSeconds, 1800 by
default) and refuses a terminationGracePeriodSeconds below it + 30 s: time for livekit to close
the job processes (10 s each, in parallel) and for the service to stop before Kubernetes kills
the pod.

Job processes (`prewarm`, `entrypoint`): each configures logging and builds its metrics once
(prewarm), then per job builds the realtime model, wraps it with `reconnectable`, builds the
`AgentSession`, attaches a `Supervisor` before `session.start()` and starts it after.

Connection state for /readyz: `livekit_connected` reads the server's public `id` and two private
flags (see there); the only private livekit access here, with a canary in tests/test_worker.py.

livekit (about 2 s to import) is imported only once the settings are valid, so a bad variable
fails at once; job processes import it through the entrypoint.

The settings and the start-up checks are in `checks.py` (re-exported here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import structlog

from realtime_supervisor.config import ServiceConfig
from realtime_supervisor.errors import ConfigError
from realtime_supervisor.logs import LOGGER_NAME, bind_session, redact_logging
from realtime_supervisor_agent.checks import Settings, SettingsError, check_start, load_settings
from realtime_supervisor_agent.config import AgentConfig

if TYPE_CHECKING:
    from livekit.agents import AgentServer, AgentSession, JobContext, JobProcess

    from realtime_supervisor.livekit.binding import EscalateHook, Escalation, Supervisor
    from realtime_supervisor.metrics import Metrics
    from realtime_supervisor.service import SupervisorService

__all__ = [
    "APOLOGY_INSTRUCTIONS",
    "DRAIN_TIMEOUT",
    "Settings",
    "SettingsError",
    "Worker",
    "apologize_on_escalation",
    "build_session",
    "build_worker",
    "entrypoint",
    "livekit_connected",
    "load_settings",
    "main",
    "model_label",
    "prewarm",
    "supervise",
]

_log = structlog.get_logger("realtime_supervisor_agent.worker")

# Used when no --drain-timeout is given (the chart gives one): see the module docstring.
DRAIN_TIMEOUT: Final = 570
# Commands that run an agent (and so need its settings); livekit's other commands
# (download-files, --help) run without them.
_AGENT_COMMANDS: Final = frozenset({"start", "dev", "console", "connect"})
# Commands that register with a LiveKit server, which livekit reads from LIVEKIT_* itself.
_LIVEKIT_COMMANDS: Final = frozenset({"start", "dev", "connect"})
_SETTINGS_KEY: Final = "realtime_supervisor.settings"
_UNREGISTERED: Final = "unregistered"  # AgentServer.id until the server answers the register

APOLOGY_INSTRUCTIONS: Final = (
    "Apologize briefly to the caller: there was a technical problem and you did not catch the "
    "last thing they said. Ask them to repeat it. One short sentence."
)


def _configure_logging(service: ServiceConfig) -> None:
    """Logs in livekit's shape: livekit's CLI installs the handlers (JSON for `start`, colored
    for `dev`, `--log-level`); we scrub every record reaching them and route structlog through
    stdlib. Called before livekit's handlers exist (main), when they do (worker started) and in
    each job process (its handler forwards records to the main process)."""
    redact_logging()
    logging.getLogger(LOGGER_NAME).setLevel(service.log_level)


# -- the job process ------------------------------------------------------------------------------


def model_label(cfg: AgentConfig) -> str:
    """The `model` metrics label: the deployment on Azure (it decides the model), else the model."""
    if cfg.provider == "azure" and cfg.azure_deployment:
        return cfg.azure_deployment
    return cfg.model


def build_session(
    cfg: AgentConfig,
    *,
    base_url: str | None = None,
    fallback: AgentConfig | None = None,
    fallback_base_url: str | None = None,
) -> AgentSession[Any]:
    """The `AgentSession` for one call: the realtime model from `cfg`, made reconnectable.

    `base_url` replaces the provider's URL (the chaos server in tests and simulations).
    `fallback` (AGENT_FALLBACK_*): a second model the watchdog can fail over to (1.8).
    """
    from livekit.agents import AgentSession

    from realtime_supervisor.livekit.binding import reconnectable
    from realtime_supervisor_agent.models import build_llm, session_kwargs

    llm = reconnectable(
        build_llm(cfg, fallback=fallback, base_url=base_url, fallback_base_url=fallback_base_url)
    )
    return AgentSession(**session_kwargs(cfg, llm=llm))


def apologize_on_escalation(session: AgentSession[Any]) -> EscalateHook:
    """The default `on_escalate`: log at error and have the agent apologize, if it still can.

    An escalation means the watchdog gave up on a stall: the caller has heard silence for
    several seconds. An application replaces this hook (transfer the call, end it, page someone)
    by passing `on_escalate` to `supervise`.
    """

    def on_escalate(escalation: Escalation) -> None:
        _log.error(
            "supervisor.escalated",
            reason=escalation.reason,
            stall_kind=escalation.stall_kind,
        )
        try:
            session.generate_reply(instructions=APOLOGY_INSTRUCTIONS)
        except RuntimeError:  # livekit raises it when the session is no longer running
            _log.warning("supervisor.apology_skipped", reason="the session is not running")

    return on_escalate


def supervise(
    session: AgentSession[Any],
    settings: Settings,
    *,
    context: Mapping[str, str],
    on_escalate: EscalateHook | None = None,
    metrics: Metrics | None = None,
) -> Supervisor:
    """Attach a `Supervisor` to `session`. Call BEFORE `session.start()`, start it after.

    Built first so that livekit's log records from the session's tasks (which copy the context
    at creation) can be told apart per session.
    """
    from realtime_supervisor.cue import HoldCue
    from realtime_supervisor.livekit.binding import Supervisor

    cfg = settings.agent
    return Supervisor(
        session,
        settings.watchdog,
        on_escalate=on_escalate if on_escalate is not None else apologize_on_escalation(session),
        provider=cfg.provider,
        model=model_label(cfg),
        metrics=metrics,
        context=context,
        # AGENT_HOLD_CUE: validated with the settings; None when off
        hold_cue=HoldCue.from_setting(cfg.hold_cue, field="AGENT_HOLD_CUE"),
    )


def prewarm(proc: JobProcess) -> None:
    """livekit's setup_fnc, once per job process: logging, metrics, settings."""
    from realtime_supervisor.metrics import default_metrics

    # The main process validated the same environment; the job process inherits it.
    settings = load_settings()
    _configure_logging(settings.service)
    # Built now, not on the first call: the process's series (build_info, the zeros that let
    # increase() see a first event) exist from its start.
    default_metrics()
    from realtime_supervisor.cue import HoldCue

    HoldCue.from_setting(settings.agent.hold_cue)  # the chime is synthesised once, here
    proc.userdata[_SETTINGS_KEY] = settings


async def entrypoint(ctx: JobContext) -> None:
    """livekit's entrypoint, once per job (call), in its job process."""
    from livekit.agents import Agent

    from realtime_supervisor.testing.call import SupervisedCall

    settings = ctx.proc.userdata.get(_SETTINGS_KEY)
    if not isinstance(settings, Settings):  # an executor that skipped prewarm
        settings = load_settings()
    context = {
        "session_id": uuid.uuid4().hex[:12],
        "room": ctx.job.room.name,
        "job_id": ctx.job.id,
    }
    bind_session(**context)
    session = build_session(settings.agent, fallback=settings.fallback)
    # the shared call assembly: supervisor built before start, started after, closed first
    call = SupervisedCall(session, supervise(session, settings, context=context))
    ctx.add_shutdown_callback(call.aclose)
    await call.start(Agent(instructions=settings.agent.instructions), room=ctx.room)
    _log.info("session.supervised", provider=settings.agent.provider)


# -- the main process -----------------------------------------------------------------------------


def livekit_connected(server: AgentServer) -> bool:
    """Whether livekit's worker holds a registered connection to the LiveKit server now.

    `id` (public) leaves "unregistered" at the first registration and keeps its value across
    reconnections. Whether the connection is up now is only in private flags of AgentServer
    (1.5.11 and 1.8.9): `_connecting`, True from each (re)connection attempt until the server
    answers the register (the first retry after a drop starts at once), `_connection_failed`
    after the retries ran out, and `_closed`. If livekit drops them, this degrades to "has
    registered once" (and the canary test fails).
    """
    if server.id == _UNREGISTERED:
        return False
    from realtime_supervisor.livekit import _private

    return not _private.server_disconnected(server)


class Worker:
    """livekit's `AgentServer` plus the `SupervisorService` started inside its event loop."""

    def __init__(
        self,
        settings: Settings,
        server: AgentServer,
        *,
        service_options: Mapping[str, Any] | None = None,
        exit_on_service_failure: bool = False,
    ) -> None:
        self.settings = settings
        self.server = server
        self.service: SupervisorService | None = None
        # Why the service could not start, if it could not.
        self.error: BaseException | None = None
        self._service_options = dict(service_options or {})
        self._exit_on_failure = exit_on_service_failure
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        server.on("worker_started", self._on_worker_started)

    def load(self, server: AgentServer) -> float:
        """livekit's load_fnc (called from its executor thread): the service's load once built."""
        service = self.service
        if service is None:
            default_load = self._service_options.get("default_load")
            if default_load is not None:
                return float(default_load(server))
            from realtime_supervisor.service import livekit_default_load

            return livekit_default_load(server)
        return service.load(server)

    def _on_worker_started(self) -> None:
        _configure_logging(self.settings.service)  # livekit's CLI has installed its handlers
        # In livekit's loop, inside AgentServer.run(): the directory has been wiped.
        from realtime_supervisor.service import SupervisorService

        server = self.server
        self.service = SupervisorService.from_config(
            self.settings.service,
            is_connected=lambda: livekit_connected(server),
            **self._service_options,
        )
        self._task = asyncio.get_running_loop().create_task(
            self._serve(self.service), name="realtime-supervisor-service"
        )

    async def _serve(self, service: SupervisorService) -> None:
        try:
            await service.start()
        except Exception as exc:
            self.error = exc
            self._started.set()
            _log.error(
                "service.start_failed",
                host=self.settings.service.http_host,
                port=self.settings.service.http_port,
                error=str(exc),
            )
            if self._exit_on_failure:
                # livekit's own graceful path: drain (nothing runs yet), close, exit.
                os.kill(os.getpid(), signal.SIGTERM)
            return
        self._started.set()
        try:
            await asyncio.Event().wait()  # until livekit cancels its loop's tasks at shutdown
        finally:
            await service.aclose()

    async def wait_service(self) -> SupervisorService:
        """The service once it listens (raises what stopped it from starting)."""
        await self._started.wait()
        if self.error is not None:
            raise self.error
        assert self.service is not None
        return self.service

    async def aclose(self) -> None:
        """Close the service (livekit's CLI does it by cancelling the loop's tasks)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def build_worker(
    settings: Settings,
    *,
    service_options: Mapping[str, Any] | None = None,
    exit_on_service_failure: bool = False,
    **server_options: Any,
) -> Worker:
    """livekit's `AgentServer` for these settings, with the service attached (nothing started).

    `server_options` override AgentServer's arguments (tests: `port=0`, `num_idle_processes=0`,
    `ws_url=...`); `service_options` go to `SupervisorService` (tests: `clock`, `default_load`).
    """
    from livekit.agents import AgentServer

    from realtime_supervisor_agent.load import CapacityLoad

    # The service's load is the capacity load (CPU, memory, calls) unless a caller sets its own.
    service_options = {
        "default_load": CapacityLoad(settings.agent.max_calls),
        **(service_options or {}),
    }
    holder: list[Worker] = []

    def load(server: AgentServer) -> float:
        return holder[0].load(server)

    options: dict[str, Any] = {
        "load_fnc": load,
        "setup_fnc": prewarm,
        "drain_timeout": DRAIN_TIMEOUT,
        # livekit then counts its child processes; PROMETHEUS_MULTIPROC_DIR is set already.
        "prometheus_multiproc_dir": settings.service.multiproc_dir,
    }
    options.update(server_options)
    server = AgentServer(**options)
    server.rtc_session(entrypoint, agent_name=settings.agent.agent_name)
    worker = Worker(
        settings,
        server,
        service_options=service_options,
        exit_on_service_failure=exit_on_service_failure,
    )
    holder.append(worker)
    return worker


def _fail(command: str, error: ConfigError) -> int:
    print(f"python -m realtime_supervisor_agent {command}: configuration error", file=sys.stderr)
    for line in str(error).splitlines():
        print(f"  {line}", file=sys.stderr)
    return 2


def main(
    argv: Sequence[str] | None = None, *, server_options: Mapping[str, Any] | None = None
) -> int:
    """Validate every setting, then run livekit's CLI (`start|dev|console|...`); the exit code.

    `server_options` override AgentServer's arguments (for embedding and tests).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else ""
    if command not in _AGENT_COMMANDS or "--help" in args:
        # --help, download-files: livekit's CLI, with no agent to run
        return _run_cli(args, None)
    try:
        settings = load_settings(require_livekit=command in _LIVEKIT_COMMANDS)
        check_start(settings)
        if settings.service.multiproc_dir is not None:
            from realtime_supervisor.metrics import prepare_multiproc_dir

            try:
                prepare_multiproc_dir(settings.service.multiproc_dir)
            except OSError as exc:
                raise ConfigError(
                    "PROMETHEUS_MULTIPROC_DIR",
                    f"cannot prepare {settings.service.multiproc_dir!r}: {exc.strerror or exc}",
                ) from exc
    except ConfigError as exc:
        return _fail(command, exc)
    _configure_logging(settings.service)
    worker = build_worker(settings, exit_on_service_failure=True, **(server_options or {}))
    code = _run_cli(args, worker.server)
    return 1 if worker.error is not None else code


def _run_cli(args: list[str], server: AgentServer | None) -> int:
    from livekit.agents import AgentServer, cli

    if server is None:
        server = AgentServer()
        server.rtc_session(entrypoint)
    # livekit's CLI (typer) reads sys.argv and ends with SystemExit.
    sys.argv = [sys.argv[0] if sys.argv else "agent", *args]
    try:
        cli.run_app(server)
    except SystemExit as exc:
        return _exit_code(exc.code)
    return 0


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
