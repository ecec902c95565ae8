"""agent.worker: settings fail fast, the supervised session, and livekit's real AgentServer wired to
the supervisor service (connection state, load, draining), against a fake LiveKit server.

Over the house limit on purpose: one fake LiveKit server and its fixtures serve every test of
the worker's wiring.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp import WSMsgType, web
from livekit.agents import AgentServer
from livekit.protocol import agent as lk_agent
from livekit.protocol import models as lk_models
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from realtime_supervisor.config import ServiceConfig, WatchdogConfig
from realtime_supervisor_agent import checks, worker
from realtime_supervisor_agent.config import AgentConfig

ROOT = Path(__file__).resolve().parents[1]
GUARD = 30.0  # seconds; a guard against hangs, never a pause

# Recognisable secrets: none of them may appear in any output.
SECRETS = {
    "OPENAI_API_KEY": "sk-testsecretOPENAI0123456789abcdef",
    "LIVEKIT_API_KEY": "APIkeyTESTSECRET42",
    "LIVEKIT_API_SECRET": "livekitSECRETvalue0123456789abcdefXYZ",
    "AZURE_OPENAI_API_KEY": "azureSECRETkey0123456789abcdef",
    "AZURE_OPENAI_AD_TOKEN": "entraSECRETtoken0123456789abcdef",
}
_OURS = ("AGENT_", "OPENAI_", "AZURE_OPENAI_", "LIVEKIT_", "REALTIME_SUPERVISOR_")


def base_env(**extra: str) -> dict[str, str]:
    """A minimal process environment: no variable of ours except those given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def metric_sum(text: str, name: str) -> float:
    """The sum of every sample called `name` in a Prometheus text exposition."""
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    )


class FakeLiveKit:
    """Just enough of LiveKit's worker websocket (`/agent`) to register a worker and read what it
    reports: every `UpdateWorkerStatus` and `AvailabilityResponse` it sends."""

    def __init__(self) -> None:
        self.updates: asyncio.Queue[lk_agent.UpdateWorkerStatus] = asyncio.Queue()
        self.answers: asyncio.Queue[lk_agent.AvailabilityResponse] = asyncio.Queue()
        self.registered = asyncio.Event()
        self.connections = 0
        self.accepting = True
        self._ws: web.WebSocketResponse | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/agent", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def aclose(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.connections += 1
        if not self.accepting:
            return web.Response(status=503)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                continue
            message = lk_agent.WorkerMessage()
            message.ParseFromString(msg.data)
            which = message.WhichOneof("message")
            if which == "register":
                reply = lk_agent.ServerMessage(
                    register=lk_agent.RegisterWorkerResponse(
                        worker_id="AW_fake", server_info=lk_models.ServerInfo()
                    )
                )
                await ws.send_bytes(reply.SerializeToString())
                self.registered.set()
            elif which == "update_worker":
                self.updates.put_nowait(message.update_worker)
            elif which == "availability":
                self.answers.put_nowait(message.availability)
        return ws

    async def request_job(self, job_id: str) -> lk_agent.AvailabilityResponse:
        """Offer a job, as LiveKit does before dispatching; the worker's answer."""
        assert self._ws is not None
        job = lk_agent.Job(
            id=job_id,
            type=lk_agent.JobType.JT_ROOM,
            room=lk_models.Room(name="room-" + job_id, sid="RM_" + job_id),
        )
        request = lk_agent.ServerMessage(availability=lk_agent.AvailabilityRequest(job=job))
        await self._ws.send_bytes(request.SerializeToString())
        return await asyncio.wait_for(self.answers.get(), GUARD)

    async def drop(self) -> None:
        """Close the worker's connection and refuse new ones."""
        self.accepting = False
        if self._ws is not None:
            await self._ws.close()

    async def wait_update(self, predicate: Any) -> lk_agent.UpdateWorkerStatus:
        """The next status report that satisfies `predicate` (earlier ones are dropped)."""

        async def wait() -> lk_agent.UpdateWorkerStatus:
            while True:
                update = await self.updates.get()
                if predicate(update):
                    return update

        return await asyncio.wait_for(wait(), GUARD)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def restore_environ() -> Iterator[None]:
    """livekit's AgentServer.run() writes os.environ (LIVEKIT_*, PROMETHEUS_MULTIPROC_DIR)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
async def livekit() -> AsyncIterator[FakeLiveKit]:
    server = FakeLiveKit()
    await server.start()
    yield server
    await server.aclose()


def settings(**service: Any) -> worker.Settings:
    return worker.Settings(
        AgentConfig(openai_api_key=SECRETS["OPENAI_API_KEY"]),
        WatchdogConfig(),
        ServiceConfig(**{"http_host": "127.0.0.1", "http_port": 0, **service}),
    )


# -- settings fail fast -----------------------------------------------------------------------

VALID = {
    "OPENAI_API_KEY": SECRETS["OPENAI_API_KEY"],
    "LIVEKIT_URL": "ws://127.0.0.1:9",
    "LIVEKIT_API_KEY": SECRETS["LIVEKIT_API_KEY"],
    "LIVEKIT_API_SECRET": SECRETS["LIVEKIT_API_SECRET"],
}

BAD = [
    ("AGENT_PROVIDER", "bogus"),
    ("AGENT_VAD_THRESHOLD", "2"),
    ("AGENT_MODALITIES", "text"),
    ("OPENAI_API_KEY", " "),
    ("LIVEKIT_URL", ""),
    ("REALTIME_SUPERVISOR_REPLY_TIMEOUT", "-1"),
    ("REALTIME_SUPERVISOR_LADDER", "reissue,pray"),
    ("REALTIME_SUPERVISOR_ENABLED", "maybe"),
    ("REALTIME_SUPERVISOR_HTTP_PORT", "70000"),
    ("REALTIME_SUPERVISOR_DRAIN_WINDOW", "0"),
    ("REALTIME_SUPERVISOR_LOG_LEVEL", "loud"),
    ("REALTIME_SUPERVISOR_REPLY_TIMOUT", "5"),  # a typo is refused, not ignored
    ("OPENAI_API_VERSION", "2024-10-01-preview"),  # read by livekit's plugin behind our back
]


@pytest.mark.parametrize(("variable", "value"), BAD)
def test_a_bad_variable_exits_2_naming_it_before_anything_starts(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad variable makes `main(["start"])` print an error naming it and return 2 before the
    worker is built; no secret is printed."""
    for name in list(os.environ):
        if name.startswith(_OURS) or name == "PROMETHEUS_MULTIPROC_DIR":
            monkeypatch.delenv(name)
    for name, v in {**VALID, variable: value}.items():
        monkeypatch.setenv(name, v)

    def no_worker(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the worker was built despite a bad setting")

    monkeypatch.setattr(worker, "build_worker", no_worker)
    assert worker.main(["start"]) == 2
    out, err = capsys.readouterr()
    assert variable in err
    assert "configuration error" in err
    for secret in SECRETS.values():
        assert secret not in out + err


def test_every_problem_is_reported_at_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Problems in the agent, watchdog and service settings are listed together, one per line."""
    env = {
        **VALID,
        "AGENT_PROVIDER": "bogus",
        "REALTIME_SUPERVISOR_REPLY_TIMEOUT": "-1",
        "REALTIME_SUPERVISOR_LOG_LEVEL": "LOUD",
    }
    with pytest.raises(worker.SettingsError) as info:
        worker.load_settings(env, require_livekit=True)
    message = str(info.value)
    assert [line.split(":")[0] for line in message.splitlines()] == [
        "AGENT_PROVIDER",
        "REALTIME_SUPERVISOR_REPLY_TIMEOUT",
        "REALTIME_SUPERVISOR_LOG_LEVEL",
    ]
    assert info.value.field == "AGENT_PROVIDER"


def test_livekit_credentials_are_required_only_to_register() -> None:
    """start needs LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET; console does not."""
    env = {"OPENAI_API_KEY": SECRETS["OPENAI_API_KEY"]}
    assert worker.load_settings(env).agent.provider == "openai"
    with pytest.raises(worker.SettingsError, match="LIVEKIT_URL"):
        worker.load_settings(env, require_livekit=True)


def test_a_taken_service_port_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A port already listened on fails before livekit starts, naming its variable."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for name in list(os.environ):
            if name.startswith(_OURS) or name == "PROMETHEUS_MULTIPROC_DIR":
                monkeypatch.delenv(name)
        for name, v in {
            **VALID,
            "REALTIME_SUPERVISOR_HTTP_HOST": "127.0.0.1",
            "REALTIME_SUPERVISOR_HTTP_PORT": str(port),
        }.items():
            monkeypatch.setenv(name, v)
        assert worker.main(["start"]) == 2
    assert "REALTIME_SUPERVISOR_HTTP_PORT" in capsys.readouterr().err


def _main_env(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    for name in list(os.environ):
        if name.startswith(_OURS) or name == "PROMETHEUS_MULTIPROC_DIR":
            monkeypatch.delenv(name)
    for name, v in {**VALID, **extra}.items():
        monkeypatch.setenv(name, v)

    def no_worker(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the worker was built despite a bad setting")

    monkeypatch.setattr(worker, "build_worker", no_worker)


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("{tmp}/missing/parent/metrics", "does not exist"),
        ("/proc/realtime-supervisor-metrics", "not writable"),  # even root cannot create here
        ("/proc/self/fd", "not writable"),  # exists, not writable
        ("{tmp}/a-file", "not a directory"),
    ],
)
def test_an_unusable_multiproc_dir_exits_2_naming_it(
    path: str,
    why: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A PROMETHEUS_MULTIPROC_DIR the job processes could not write is a configuration error
    (exit 2, naming the variable and why), not a traceback or a worker that never gets healthy."""
    (tmp_path / "a-file").write_text("")
    _main_env(monkeypatch, PROMETHEUS_MULTIPROC_DIR=path.format(tmp=tmp_path))
    assert worker.main(["start"]) == 2
    err = capsys.readouterr().err
    assert "PROMETHEUS_MULTIPROC_DIR" in err and why in err
    assert "Traceback" not in err
    assert not (tmp_path / "missing").exists()


def test_a_creatable_multiproc_dir_is_accepted(tmp_path: Path) -> None:
    """The last level is created by the worker; an existing writable directory is fine."""
    checks.check_multiproc_dir(str(tmp_path / "metrics"))
    checks.check_multiproc_dir(str(tmp_path))


@pytest.mark.parametrize(
    "host",
    ["no-such-host.invalid", "192.0.2.1"],  # does not resolve; not this machine's
)
def test_a_bad_http_host_names_the_host_not_the_port(
    host: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host that does not resolve or is not an address here blames HTTP_HOST and shows it."""
    _main_env(monkeypatch, REALTIME_SUPERVISOR_HTTP_HOST=host)
    assert worker.main(["start"]) == 2
    err = capsys.readouterr().err
    assert "REALTIME_SUPERVISOR_HTTP_HOST" in err and host in err
    assert "REALTIME_SUPERVISOR_HTTP_PORT" not in err


def test_the_watchdog_is_built_once_at_start_and_a_failure_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """check_start builds a real Watchdog from the settings, as each job will; if that raises
    (here: a detector that overflows on a setting), start exits 2 naming the variable that
    differs from its default and makes it fail, before any call."""
    import realtime_supervisor._watchdog as watchdog_module

    built: list[object] = []
    real = watchdog_module.Watchdog

    class Overflowing(real):  # type: ignore[misc, valid-type]
        def __init__(self, config: WatchdogConfig, *args: Any, **kwargs: Any) -> None:
            built.append(config)
            if config.storm_reconnects != 5:
                raise OverflowError("cannot fit 'int' into an index-sized integer")
            super().__init__(config, *args, **kwargs)

    monkeypatch.setattr(watchdog_module, "Watchdog", Overflowing)
    _main_env(
        monkeypatch,
        REALTIME_SUPERVISOR_STORM_RECONNECTS="7",
        REALTIME_SUPERVISOR_REPLY_TIMEOUT="6",
    )
    assert worker.main(["start"]) == 2
    err = capsys.readouterr().err
    assert "REALTIME_SUPERVISOR_STORM_RECONNECTS" in err and "OverflowError" in err
    assert "REALTIME_SUPERVISOR_REPLY_TIMEOUT" not in err
    assert built, "no watchdog was built at start"


def test_the_watchdog_dry_run_passes_with_valid_settings() -> None:
    """The defaults and the extremes inside the bounds build a watchdog."""
    checks.check_watchdog(WatchdogConfig())
    checks.check_watchdog(
        WatchdogConfig(storm_reconnects=100, budget_max_recoveries=20, reconnect_attempts=10)
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AGENT_PROVIDER", "bogus"),
        ("REALTIME_SUPERVISOR_BUDGET_MAX_RECOVERIES", "0"),
        ("OPENAI_API_VERSION", "2024-10-01-preview"),
    ],
)
async def test_python_m_agent_start_with_a_bad_variable_fails_fast_without_connecting(
    variable: str, value: str, livekit: FakeLiveKit
) -> None:
    """`realtime-supervisor start` exits 2 naming the variable, prints no secret, and never opens a
    connection to LiveKit."""
    env = base_env(**{**VALID, "LIVEKIT_URL": livekit.url, variable: value})
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "realtime_supervisor_agent",
        "start",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), GUARD)
    text = (out + err).decode()
    assert proc.returncode == 2, text
    assert variable in err.decode()
    assert time.monotonic() - started < GUARD
    assert livekit.connections == 0
    for secret in SECRETS.values():
        assert secret not in text


# -- the supervised session ---------------------------------------------------------------------


@pytest.mark.livekit
async def test_build_session_and_supervise_answer_a_turn_through_the_chaos_server() -> None:
    """build_session's AgentSession, with supervise's Supervisor built before start, answers a
    caller's turn through the chaos server; the turn is counted under the model's labels."""
    from livekit.agents import Agent

    from realtime_supervisor.chaos.server import ChaosServer
    from realtime_supervisor.metrics import Metrics
    from realtime_supervisor.testing import RecordingAudioOutput, ScriptedCaller

    registry = CollectorRegistry()
    server = ChaosServer(reply_seconds=0.5)
    await server.start()
    session = worker.build_session(settings().agent, base_url=server.url)
    caller, speaker = ScriptedCaller(), RecordingAudioOutput()
    session.input.audio, session.output.audio = caller, speaker
    context = {"session_id": "s1", "room": "room-1", "job_id": "job-1"}
    sup = worker.supervise(session, settings(), context=context, metrics=Metrics(registry))
    try:
        await session.start(Agent(instructions="test"), record=False)
        await sup.start()
        t0 = time.monotonic()
        await caller.say(0.6)
        await asyncio.wait_for(speaker.wait_for_answer(t0, seconds=0.5), GUARD)
        assert sup.context == context
        turns = registry.get_sample_value(
            "realtime_supervisor_turns_total", {"provider": "openai", "model": "gpt-realtime"}
        )
        assert turns == 1.0
    finally:
        caller.close()
        await sup.aclose()
        await asyncio.wait_for(session.aclose(), GUARD)
        await session.llm.aclose()
        await speaker.aclose()
        await server.aclose()


@pytest.mark.livekit
async def test_the_entrypoint_supervises_the_session_it_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """prewarm then entrypoint, as a job process runs them: the Supervisor is built before
    session.start() and started after it, the job's identity is bound to the logs, and the
    supervisor is closed by the job's shutdown callback. (The room is the only fake: the session
    is pointed at the chaos server instead.)"""
    from realtime_supervisor.chaos.server import ChaosServer
    from realtime_supervisor.testing import RecordingAudioOutput, ScriptedCaller

    for name in list(os.environ):
        if name.startswith(_OURS) or name == "PROMETHEUS_MULTIPROC_DIR":
            monkeypatch.delenv(name)
    monkeypatch.setenv("OPENAI_API_KEY", SECRETS["OPENAI_API_KEY"])
    monkeypatch.setattr(worker, "_configure_logging", lambda service: None)
    server = ChaosServer(reply_seconds=0.5)
    await server.start()
    order: list[str] = []
    built: list[Any] = []
    caller, speaker = ScriptedCaller(), RecordingAudioOutput()
    real_build, real_supervise = worker.build_session, worker.supervise

    def build_session(cfg: AgentConfig, *, base_url: str | None = None, **kwargs: Any) -> Any:
        session = real_build(cfg, base_url=server.url, **kwargs)
        session.input.audio, session.output.audio = caller, speaker
        start = session.start

        async def start_without_room(agent: Any, *, room: Any) -> None:
            order.append("session.start")
            await start(agent, record=False)

        session.start = start_without_room
        built.append(session)
        return session

    def supervise(session: Any, settings: worker.Settings, **kwargs: Any) -> Any:
        order.append("Supervisor()")
        sup = real_supervise(session, settings, **kwargs)
        start = sup.start

        async def recorded_start() -> None:
            order.append("supervisor.start")
            await start()

        sup.start = recorded_start
        built.append(sup)
        return sup

    monkeypatch.setattr(worker, "build_session", build_session)
    monkeypatch.setattr(worker, "supervise", supervise)
    shutdown: list[Any] = []
    proc = SimpleNamespace(userdata={})
    ctx = SimpleNamespace(
        proc=proc,
        job=SimpleNamespace(id="AJ_1", room=SimpleNamespace(name="room-1")),
        room=object(),
        add_shutdown_callback=shutdown.append,
    )
    session: Any = None
    try:
        worker.prewarm(proc)  # type: ignore[arg-type]
        await asyncio.create_task(entrypoint_with_logs(ctx))
        session, sup = built
        assert order == ["Supervisor()", "session.start", "supervisor.start"]
        assert sup.context["room"] == "room-1" and sup.context["job_id"] == "AJ_1"
        t0 = time.monotonic()
        await caller.say(0.6)
        await asyncio.wait_for(speaker.wait_for_answer(t0, seconds=0.5), GUARD)
        # the shared call assembly's aclose: in a room it closes the supervisor alone
        assert [cb.__self__.supervisor for cb in shutdown] == [sup]
        await shutdown[0]()
        assert sup.watchdog.counters.turns == 1
    finally:
        caller.close()
        if session is not None:
            await asyncio.wait_for(session.aclose(), GUARD)
            await session.llm.aclose()
        await speaker.aclose()
        await server.aclose()


async def entrypoint_with_logs(ctx: Any) -> None:
    """Run the entrypoint in its own task (as livekit does) and check what it bound."""
    with capture_logs() as logs:
        await worker.entrypoint(ctx)
        bound = structlog.contextvars.get_contextvars()
    assert bound["room"] == "room-1" and bound["job_id"] == "AJ_1" and bound["session_id"]
    assert any(e["event"] == "session.supervised" for e in logs)


async def test_build_session_wraps_the_model_so_reconnect_keeps_the_conversation() -> None:
    """The session's LLM is the model wrapped by `reconnectable` (livekit's fallback adapter on
    1.8), so the watchdog's reconnect uses livekit's public restart."""
    from realtime_supervisor.livekit.binding import reconnectable

    session = worker.build_session(settings().agent)
    assert reconnectable(session.llm) is session.llm


def test_model_label_is_the_deployment_on_azure() -> None:
    """The model label is AGENT_MODEL on OpenAI and the deployment on Azure."""
    azure = AgentConfig(
        provider="azure",
        azure_endpoint="https://res.openai.azure.com",
        azure_deployment="prod-realtime",
        azure_api_key=SECRETS["AZURE_OPENAI_API_KEY"],
    )
    assert worker.model_label(azure) == "prod-realtime"
    assert worker.model_label(settings().agent) == "gpt-realtime"


@pytest.mark.livekit
async def test_the_default_escalation_hook_apologizes_through_the_session() -> None:
    """With no ladder, a reply that never comes escalates; the default hook logs at error and
    the agent speaks an apology (a reply the chaos server answers)."""
    from livekit.agents import Agent

    from realtime_supervisor.chaos.server import ChaosServer
    from realtime_supervisor.metrics import Metrics
    from realtime_supervisor.testing import RecordingAudioOutput, ScriptedCaller

    server = ChaosServer(faults="no_response", reply_seconds=0.5)
    await server.start()
    base = settings()
    quick = worker.Settings(base.agent, WatchdogConfig(reply_timeout=1.0, ladder=()), base.service)
    session = worker.build_session(quick.agent, base_url=server.url)
    caller, speaker = ScriptedCaller(), RecordingAudioOutput()
    session.input.audio, session.output.audio = caller, speaker
    sup = worker.supervise(session, quick, context={}, metrics=Metrics(CollectorRegistry()))
    try:
        await session.start(Agent(instructions="test"), record=False)
        await sup.start()
        with capture_logs() as logs:
            t0 = time.monotonic()
            await caller.say(0.6)
            await asyncio.wait_for(speaker.wait_for_answer(t0, seconds=0.5), GUARD)
        escalated = [e for e in logs if e["event"] == "supervisor.escalated"]
        assert escalated and escalated[0]["log_level"] == "error"
        assert escalated[0]["reason"] == "ladder_exhausted"
    finally:
        caller.close()
        await sup.aclose()
        await asyncio.wait_for(session.aclose(), GUARD)
        await session.llm.aclose()
        await speaker.aclose()
        await server.aclose()


async def test_the_default_escalation_hook_skips_the_apology_when_the_session_is_gone() -> None:
    """On a session that is not running, the hook logs the escalation and a warning, and raises
    nothing into the watchdog."""
    from realtime_supervisor.livekit.binding import Escalation

    session = worker.build_session(settings().agent)
    hook = worker.apologize_on_escalation(session)
    with capture_logs() as logs:
        hook(Escalation("dead_session", "dead_session", 1.0, 2.0))
    assert [e["event"] for e in logs] == ["supervisor.escalated", "supervisor.apology_skipped"]


# -- livekit's worker and the service -----------------------------------------------------------


@pytest.mark.compat
def test_canary_livekit_connection_flags() -> None:
    """livekit's AgentServer still has the id and the private flags `livekit_connected` reads."""
    server = AgentServer()
    assert server.id == "unregistered"
    for name in ("_connecting", "_connection_failed", "_closed"):
        assert isinstance(getattr(server, name), bool), name
    assert server._connecting is False and server._connection_failed is False
    assert worker.livekit_connected(server) is False


@pytest.mark.compat
def test_build_worker_passes_our_options_to_livekit(tmp_path: Path) -> None:
    """The AgentServer gets our load function, prewarm, entrypoint, drain timeout, directory and
    agent name (1.5.11 and 1.8.9)."""
    s = settings(multiproc_dir=str(tmp_path))
    s = worker.Settings(
        AgentConfig(openai_api_key=SECRETS["OPENAI_API_KEY"], agent_name="support"),
        s.watchdog,
        s.service,
    )
    w = worker.build_worker(s)
    server = w.server
    assert server.setup_fnc is worker.prewarm
    assert server._entrypoint_fnc is worker.entrypoint
    assert server._agent_name == "support"
    assert server._drain_timeout == worker.DRAIN_TIMEOUT == 570
    assert server._prometheus_multiproc_dir == str(tmp_path)
    assert server._prometheus_port is None  # lk_agents_* are served on our port
    load = server.load_fnc
    assert load is not None
    assert 0.0 <= load(server) <= 1.0  # type: ignore[call-arg]


async def run_worker(w: worker.Worker) -> asyncio.Task[None]:
    task = asyncio.create_task(w.server.run(devmode=False))
    await asyncio.wait_for(w.wait_service(), GUARD)
    return task


async def stop_worker(w: worker.Worker, task: asyncio.Task[None]) -> None:
    await asyncio.wait_for(w.server.aclose(), GUARD)
    await asyncio.wait_for(task, GUARD)
    await w.aclose()


@contextlib.asynccontextmanager
async def running_worker(
    livekit: FakeLiveKit, s: worker.Settings | None = None, **service_options: Any
) -> AsyncIterator[tuple[worker.Worker, str]]:
    """A real worker (livekit's AgentServer and our service) registered against the fake
    LiveKit, no idle job processes: yields it and its service's base URL, stops it after."""
    w = build_test_worker(livekit, s, **service_options)
    task = await run_worker(w)
    try:
        service = await w.wait_service()
        yield w, f"http://127.0.0.1:{service.port}"
    finally:
        await stop_worker(w, task)


def build_test_worker(
    livekit: FakeLiveKit, s: worker.Settings | None = None, **service_options: Any
) -> worker.Worker:
    """`worker.build_worker` for the fake LiveKit: its URL and credentials, any livekit port."""
    return worker.build_worker(
        s or settings(),
        service_options=service_options,
        ws_url=livekit.url,
        api_key=SECRETS["LIVEKIT_API_KEY"],
        api_secret=SECRETS["LIVEKIT_API_SECRET"],
        port=0,
        num_idle_processes=0,
    )


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


@pytest.mark.compat
@pytest.mark.usefixtures("restore_environ")
async def test_readiness_follows_livekits_connection(livekit: FakeLiveKit) -> None:
    """/readyz is 503 until livekit's worker registers, 200 while registered, and 503 again once
    the connection drops and reconnection fails."""
    options = {"registry": CollectorRegistry(), "default_load": lambda _w: 0.1}
    async with running_worker(livekit, **options) as (w, base):
        await asyncio.wait_for(livekit.registered.wait(), GUARD)
        assert worker.livekit_connected(w.server)
        assert await get(base + "/readyz") == (200, "ready\n")
        await livekit.drop()
        deadline = time.monotonic() + GUARD
        while worker.livekit_connected(w.server):
            assert time.monotonic() < deadline, "still connected after the drop"
            await asyncio.sleep(0.05)
        assert await get(base + "/readyz") == (503, "not connected to LiveKit\n")


ESCALATE = (
    "import sys\n"
    "from realtime_supervisor.metrics import Metrics\n"
    "session = Metrics().session('openai', 'gpt-realtime')\n"
    "for _ in range(int(sys.argv[1])):\n"
    "    session.escalation('budget_exhausted')\n"
)


async def escalate_in_a_job_process(directory: Path, n: int) -> None:
    """Count `n` escalations the way a job process does: real Metrics, file-backed."""
    env = base_env(PROMETHEUS_MULTIPROC_DIR=str(directory))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ESCALATE, str(n), cwd=ROOT, env=env
    )
    assert await asyncio.wait_for(proc.wait(), GUARD) == 0


@pytest.mark.compat
@pytest.mark.usefixtures("restore_environ")
async def test_escalations_drain_the_worker_through_livekits_load_reporting(
    livekit: FakeLiveKit, tmp_path: Path
) -> None:
    """Escalations past the threshold make livekit's own load loop report load 1.0 and FULL to
    LiveKit, refuse offered jobs, and /readyz answer 503 with the reason; once the window has
    passed (fake clock) the worker reports itself available again."""
    clock = FakeClock()
    directory = tmp_path / "metrics"
    s = settings(multiproc_dir=str(directory), drain_escalations=3, drain_window=60.0)
    async with running_worker(
        livekit,
        s,
        registry=CollectorRegistry(),
        clock=clock,
        poll_interval=3600.0,  # refreshed by /readyz only: the test decides when
        default_load=lambda _w: 0.1,
    ) as (_, base):
        await asyncio.wait_for(livekit.registered.wait(), GUARD)
        assert await get(base + "/readyz") == (200, "ready\n")
        await livekit.wait_update(
            lambda u: (
                u.status == lk_agent.WorkerStatus.WS_AVAILABLE and u.load == pytest.approx(0.1)
            )
        )

        await escalate_in_a_job_process(directory, 2)
        assert (await get(base + "/readyz"))[0] == 200  # 2 < 3
        await escalate_in_a_job_process(directory, 1)
        status, body = await get(base + "/readyz")
        assert status == 503
        assert body == "draining: 3 escalations in the last 60 s (threshold 3)\n"

        full = await livekit.wait_update(lambda u: u.status == lk_agent.WorkerStatus.WS_FULL)
        assert full.load == 1.0
        answer = await livekit.request_job("AJ_drained")
        assert answer.job_id == "AJ_drained" and answer.available is False

        clock.now += 61.0
        assert await get(base + "/readyz") == (200, "ready\n")
        back = await livekit.wait_update(lambda u: u.status == lk_agent.WorkerStatus.WS_AVAILABLE)
        assert back.load == pytest.approx(0.1)


@pytest.mark.compat
@pytest.mark.usefixtures("restore_environ")
async def test_the_service_serves_livekits_metrics_on_its_port(livekit: FakeLiveKit) -> None:
    """livekit's lk_agents_worker_load, set by its load loop in this process, is on our /metrics
    next to ours; livekit opens no Prometheus port of its own."""
    async with running_worker(livekit, default_load=lambda _w: 0.25) as (_, base):
        await livekit.wait_update(lambda u: u.load == pytest.approx(0.25))
        status, text = await get(base + "/metrics")
        assert status == 200
        assert metric_sum(text, "lk_agents_worker_load") == pytest.approx(0.25)
        assert "realtime_supervisor_build_info" in text


@pytest.mark.compat
@pytest.mark.usefixtures("restore_environ")
async def test_a_service_that_cannot_listen_is_reported(livekit: FakeLiveKit) -> None:
    """When the service's port is taken after the check, the worker records why (main exits 1)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        w = build_test_worker(livekit, settings(http_port=port), registry=CollectorRegistry())
        task = asyncio.create_task(w.server.run(devmode=False))
        try:
            with pytest.raises(OSError):
                await asyncio.wait_for(w.wait_service(), GUARD)
            assert isinstance(w.error, OSError)
        finally:
            await stop_worker(w, task)


# -- the whole worker, as a process -------------------------------------------------------------

RUN_WORKER = (
    "import sys\n"
    "from realtime_supervisor_agent.worker import main\n"
    "sys.exit(main(['start'], server_options={'port': 0}))\n"  # livekit's health port: any
)


async def start_worker_process(
    livekit: FakeLiveKit, directory: Path, **extra: str
) -> tuple[asyncio.subprocess.Process, str]:
    """`main(["start"])` in its own process against the fake LiveKit; returns it once ready."""
    port = free_port()
    env = base_env(
        **{
            **VALID,
            "LIVEKIT_URL": livekit.url,
            "REALTIME_SUPERVISOR_HTTP_HOST": "127.0.0.1",
            "REALTIME_SUPERVISOR_HTTP_PORT": str(port),
            "PROMETHEUS_MULTIPROC_DIR": str(directory),
            "NUM_CPUS": "1",  # one prewarmed job process
            **extra,
        }
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RUN_WORKER,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60.0
    while True:
        assert proc.returncode is None, "the worker exited early"
        try:
            if (await get(base + "/readyz"))[0] == 200:
                return proc, base
        except aiohttp.ClientError:
            pass
        assert time.monotonic() < deadline, "the worker never became ready"
        await asyncio.sleep(0.1)


async def stop_worker_process(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    """SIGTERM (livekit drains, then exits); the exit code and everything it printed."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), GUARD)
    except TimeoutError:
        proc.kill()
        raise
    return int(proc.returncode or 0), (out + err).decode()


async def test_the_worker_process_serves_health_status_and_metrics_without_secrets(
    livekit: FakeLiveKit, tmp_path: Path
) -> None:
    """A real `start` against the fake LiveKit registers, answers /healthz, /readyz, /status and
    /metrics (ours and livekit's lk_agents_* on one port), drains on SIGTERM and exits 0; no
    secret appears in any of it or in the logs."""
    proc, base = await start_worker_process(livekit, tmp_path / "metrics")
    try:
        health = await get(base + "/healthz")
        status = await get(base + "/status")
        metrics = await get(base + "/metrics")
    finally:
        code, logs = await stop_worker_process(proc)
    assert health[0] == 200 and status[0] == 200 and metrics[0] == 200
    assert '"connected": true' in status[1] and '"draining": false' in status[1]
    text = metrics[1]
    assert metric_sum(text, "realtime_supervisor_ready") == 1.0
    assert metric_sum(text, "realtime_supervisor_build_info") == 1.0
    assert "lk_agents_worker_load" in text
    assert metric_sum(text, "lk_agents_child_process_count") >= 1  # the prewarmed job process
    assert code == 0, logs
    assert '"service.started"' in logs
    assert '"timeout": 570' in logs  # livekit drained with our drain timeout
    for name, secret in SECRETS.items():
        for where, body in (("status", status[1]), ("metrics", text), ("logs", logs)):
            assert secret not in body, f"{name} leaked in {where}"
