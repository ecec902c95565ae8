from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from realtime_supervisor.metrics import Metrics, prepare_multiproc_dir
from realtime_supervisor.service import (
    EventWindow,
    SupervisorService,
    collect_families,
    decide_load,
    drain_reason,
    livekit_default_load,
    loop_health,
    read_learned,
    read_totals,
    render_metrics,
)

P = "realtime_supervisor_"
SECRET = "Lk5ecretValueThatLooksLikeNothing42"


# -- pure parts ---------------------------------------------------------------------------------


def test_read_learned_lists_what_the_watchdog_waits_for() -> None:
    """The learned-deadline gauge's series, per deployment and timeout, for /status."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    assert read_learned(collect_families(registry, None)) == []
    s = metrics.session("OpenAI", "gpt-realtime")
    s.learned_deadline("reply_timeout", 1.75)
    s.learned_deadline("recovery_timeout", 1.75)
    got = read_learned(collect_families(registry, None))
    assert got == [
        {"provider": "openai", "model": "gpt-realtime", "deadline": d, "seconds": 1.75}
        for d in ("recovery_timeout", "reply_timeout")
    ]


def test_event_window_counts_only_the_last_window() -> None:
    """Events older than the window drop out; events at the horizon are outside it."""
    w = EventWindow(300.0)
    w.record(1000.0, 2)
    w.record(1100.0)
    w.record(1150.0, 0)
    assert w.count(1100.0) == 3
    assert w.count(1299.9) == 3
    assert w.count(1300.0) == 1
    assert w.count(1400.0) == 0
    with pytest.raises(ValueError):
        EventWindow(0)


def test_drain_reason_names_count_window_and_threshold() -> None:
    """Draining starts at the threshold and says why."""
    assert drain_reason(4, 5, 300.0) is None
    assert drain_reason(6, 5, 300.0) == "draining: 6 escalations in the last 300 s (threshold 5)"
    assert drain_reason(5, 5, 12.5) == "draining: 5 escalations in the last 12.5 s (threshold 5)"


def test_decide_load_is_full_while_draining_else_the_clamped_base() -> None:
    """load is 1.0 while draining; otherwise the base load within [0, 1]."""
    assert decide_load(True, 0.1) == 1.0
    assert decide_load(False, 0.3) == 0.3
    assert decide_load(False, 1.7) == 1.0
    assert decide_load(False, -0.2) == 0.0
    assert decide_load(False, float("nan")) == 1.0


def test_loop_health_fails_only_when_the_heartbeat_is_late_or_gone() -> None:
    """The loop is healthy while its heartbeat runs and is younger than the threshold."""
    assert loop_health(0.6, True, 30.0) is None
    assert loop_health(31.0, True, 30.0) == "event loop blocked: no heartbeat for 31.0 s"
    assert loop_health(0.1, False, 30.0) == "heartbeat task not running"


# -- job processes writing the multiprocess directory -------------------------------------------

CHILD = """
import sys
from realtime_supervisor.metrics import Metrics
escalations, hold = int(sys.argv[1]), sys.argv[2] == "hold"
m = Metrics()
s = m.session("openai", "gpt-realtime")
s.turn()
for _ in range(escalations):
    s.escalation("ladder_exhausted")
if hold:
    s.session_started()
    s.stall("no_reply")
    s.set_stalled(True)
    s.recovery("reissue", "failure", None)
    s.learned_deadline("reply_timeout", 2.5)
print("ok", flush=True)
if hold:
    sys.stdin.readline()
"""


def job_process(directory: Path, escalations: int, hold: bool = False) -> subprocess.Popen[bytes]:
    """A process writing through the real metrics into the directory; `hold` keeps it alive."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(escalations), "hold" if hold else "exit"],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == b"ok", proc.stderr.read() if proc.stderr else b""
    if not hold:
        assert proc.wait(timeout=60) == 0
    return proc


def write_escalations(directory: Path, n: int) -> None:
    job_process(directory, n)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def multiproc_dir(tmp_path: Path) -> Path:
    return prepare_multiproc_dir(tmp_path / "prom")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@pytest.fixture
async def make_service(multiproc_dir: Path, clock: FakeClock) -> AsyncIterator[Callable[..., Any]]:
    started: list[SupervisorService] = []

    async def make(**kwargs: Any) -> SupervisorService:
        registry = CollectorRegistry()
        options: dict[str, Any] = {
            "is_connected": lambda: True,
            "multiproc_dir": multiproc_dir,
            "registry": registry,
            "metrics": Metrics(registry),
            "drain_escalations": 3,
            "drain_window": 300.0,
            "clock": clock,
            "default_load": lambda worker: 0.25,
            # Only /readyz refreshes, unless a test asks for the poll.
            "poll_interval": 3600.0,
            # Each /metrics renders afresh: these tests write the directory, then read it.
            "cache_ttl": 0.0,
        }
        options.update(kwargs)
        service = SupervisorService("127.0.0.1", 0, **options)
        await service.start()
        started.append(service)
        return service

    yield make
    for service in reversed(started):
        await service.aclose()


async def get(
    http: aiohttp.ClientSession, service: SupervisorService, path: str
) -> tuple[int, str]:
    async with http.get(f"http://127.0.0.1:{service.port}{path}") as response:
        return response.status, await response.text()


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def type_lines(text: str) -> list[str]:
    return [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]


# -- HTTP -----------------------------------------------------------------------------------------


async def test_binds_a_free_port_and_healthz_reports_loop_lag(
    make_service: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    """Port 0 binds a real port; /healthz answers 200 with the measured loop lag."""
    service = await make_service()
    assert service.port > 0
    status, body = await get(http, service, "/healthz")
    assert status == 200
    data = json.loads(body)
    assert data["status"] == "ok"
    assert data["loop_lag_seconds"] >= 0
    assert data["since_heartbeat_seconds"] < data["threshold_seconds"]


async def test_readyz_is_503_while_not_connected(
    make_service: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    """/readyz is 503 "not connected to LiveKit" until is_connected() says so, then 200."""
    connected = False
    service = await make_service(is_connected=lambda: connected)
    assert await get(http, service, "/readyz") == (503, "not connected to LiveKit\n")
    _, metrics = await get(http, service, "/metrics")
    assert parse(metrics)[(P + "ready", frozenset())] == 0
    connected = True
    assert await get(http, service, "/readyz") == (200, "ready\n")
    _, metrics = await get(http, service, "/metrics")
    assert parse(metrics)[(P + "ready", frozenset())] == 1


async def test_drains_after_n_escalations_and_recovers_when_the_window_clears(
    make_service: Callable[..., Any],
    http: aiohttp.ClientSession,
    multiproc_dir: Path,
    clock: FakeClock,
) -> None:
    """3 escalations within 300 s drain the worker (503, load 1.0); it recovers as they age out."""
    service = await make_service()
    write_escalations(multiproc_dir, 2)
    assert await get(http, service, "/readyz") == (200, "ready\n")
    assert service.load() == 0.25

    clock.now += 100
    write_escalations(multiproc_dir, 1)
    status, text = await get(http, service, "/readyz")
    assert (status, text) == (503, "draining: 3 escalations in the last 300 s (threshold 3)\n")
    assert service.draining
    assert service.load(object()) == 1.0
    _, metrics = await get(http, service, "/metrics")
    samples = parse(metrics)
    assert samples[(P + "draining", frozenset())] == 1
    assert samples[(P + "ready", frozenset())] == 0
    assert samples[(P + "window_escalations", frozenset())] == 3

    # The first two escalations (at t=1000) leave the window at t=1300; the third stays.
    clock.now = 1300.0
    assert await get(http, service, "/readyz") == (200, "ready\n")
    assert service.load() == 0.25
    _, metrics = await get(http, service, "/metrics")
    samples = parse(metrics)
    assert samples[(P + "draining", frozenset())] == 0
    assert samples[(P + "window_escalations", frozenset())] == 1


async def test_escalations_before_start_are_not_counted(
    make_service: Callable[..., Any], http: aiohttp.ClientSession, multiproc_dir: Path
) -> None:
    """Counters already in the directory at start are the baseline, not new escalations."""
    write_escalations(multiproc_dir, 5)
    service = await make_service()
    assert await get(http, service, "/readyz") == (200, "ready\n")
    assert not service.draining


async def test_the_poll_drains_without_a_readyz_request(
    make_service: Callable[..., Any], multiproc_dir: Path
) -> None:
    """The background poll notices escalations by itself and reports full load."""
    service = await make_service(poll_interval=0.05)
    write_escalations(multiproc_dir, 3)
    async with asyncio.timeout(20):
        # The poll under test offers no event to wait on: watch its effect.
        while not service.draining:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert service.load() == 1.0


async def test_load_falls_back_when_the_default_load_fails(
    make_service: Callable[..., Any],
) -> None:
    """A failing default load function never raises into livekit's load loop."""

    def broken(worker: object | None) -> float:
        raise RuntimeError("psutil gone")

    service = await make_service(default_load=broken)
    assert 0.0 <= service.load() <= 1.0


async def test_status_reports_sessions_and_windows_without_secrets(
    make_service: Callable[..., Any],
    http: aiohttp.ClientSession,
    multiproc_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """/status shows live sessions, recent stalls, recoveries and escalations, and no secret."""
    monkeypatch.setenv("LIVEKIT_API_SECRET", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-" + "A" * 40)
    service = await make_service()
    held = job_process(multiproc_dir, 1, hold=True)
    try:
        status, body = await get(http, service, "/readyz")
        assert status == 200
        status, body = await get(http, service, "/status")
        assert status == 200
        data = json.loads(body)
        assert data["sessions"] == {"active": 1.0, "stalled": 1.0}
        assert data["window"]["escalations"] == 1
        assert data["window"]["stalls"] == 1
        assert data["window"]["recoveries"] == {"success": 0, "failure": 1}
        assert data["totals"]["stalls"]["no_reply"] == 1
        assert data["totals"]["turns"] == 1
        assert data["draining"] is False
        assert data["ready"] is True
        assert data["learned_deadlines"] == [
            {"provider": "openai", "model": "gpt-realtime", "deadline": "reply_timeout",
             "seconds": 2.5}
        ]  # fmt: skip
        assert data["versions"]["realtime_supervisor"]
        assert data["versions"]["livekit_agents"].startswith("1.")
        assert SECRET not in body
        assert "sk-proj-" not in body
    finally:
        assert held.stdin is not None
        held.stdin.close()
        held.wait(timeout=60)
    # The job process is gone without ending its session: the sweep drops its live gauges.
    await get(http, service, "/readyz")
    _, body = await get(http, service, "/status")
    assert json.loads(body)["sessions"] == {"active": 0.0, "stalled": 0.0}


async def test_metrics_merges_directory_and_own_registry_without_duplicates(
    make_service: Callable[..., Any], http: aiohttp.ClientSession, multiproc_dir: Path
) -> None:
    """/metrics has the job processes' sums and this process's gauges, each family once."""
    service = await make_service()
    write_escalations(multiproc_dir, 1)
    write_escalations(multiproc_dir, 1)
    async with http.get(f"http://127.0.0.1:{service.port}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    names = type_lines(text)
    assert len(names) == len(set(names)), sorted(names)
    samples = parse(text)
    pm = {("provider", "openai"), ("model", "gpt-realtime")}
    assert samples[(P + "turns_total", frozenset(pm))] == 2
    assert samples[(P + "escalations_total", frozenset({*pm, ("reason", "ladder_exhausted")}))] == 2
    assert samples[(P + "sessions_active", frozenset())] == 0
    assert samples[(P + "ready", frozenset())] == 1
    info = [k for k in samples if k[0] == P + "build_info"]
    assert len(info) == 1


async def test_metrics_includes_livekits_own_families(
    make_service: Callable[..., Any], http: aiohttp.ClientSession, multiproc_dir: Path
) -> None:
    """With the default registry, livekit's lk_agents_* families are served alongside ours."""
    from livekit.agents.telemetry import metrics as lk_metrics

    lk_metrics._update_worker_load(0.25)
    registry = CollectorRegistry()
    service = await make_service(registry=None, metrics=Metrics(registry))
    write_escalations(multiproc_dir, 1)
    _, text = await get(http, service, "/metrics")
    names = type_lines(text)
    assert len(names) == len(set(names))
    for name in (
        "lk_agents_worker_load",
        "lk_agents_active_job_count",
        "lk_agents_child_process_count",
        "lk_agents_proc_initialize_duration_seconds",
    ):
        assert name in names, name
    assert [v for (n, _), v in parse(text).items() if n == "lk_agents_worker_load"] == [0.25]
    assert P + "turns_total" in text


MAIN = """
import sys
from prometheus_client import REGISTRY
from realtime_supervisor.metrics import Metrics
from realtime_supervisor.service import render_metrics
m = Metrics()
m.set_ready(True)
s = m.session("openai", "gpt-realtime")
s.turn()
s.session_started()
body, _ = render_metrics(REGISTRY, sys.argv[1])
sys.stdout.write(body.decode())
"""


def test_a_file_backed_main_process_is_not_counted_twice(multiproc_dir: Path) -> None:
    """When the main process also writes the directory, its series appear once, summed."""
    write_escalations(multiproc_dir, 1)
    write_escalations(multiproc_dir, 1)
    out = subprocess.run(
        [sys.executable, "-c", MAIN, str(multiproc_dir)],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)},
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    names = type_lines(out)
    assert len(names) == len(set(names)), sorted(names)
    samples = parse(out)
    assert samples[(P + "turns_total", frozenset({("provider", "openai"),
                                                  ("model", "gpt-realtime")}))] == 3  # fmt: skip
    assert samples[(P + "sessions_active", frozenset())] == 1
    assert samples[(P + "ready", frozenset())] == 1
    assert len([k for k in samples if k[0] == P + "build_info"]) == 1
    assert "process_cpu_seconds_total" in names or "process_cpu_seconds" in names


def test_collect_families_without_a_directory_is_the_registry() -> None:
    """Without a multiprocess directory the registry is exposed as it is."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.session("openai", "m").escalation("dead_session")
    totals = read_totals(collect_families(registry, None))
    assert totals.escalations == 1
    assert totals.escalation_reasons == {
        "budget_exhausted": 0,
        "ladder_exhausted": 0,
        "dead_session": 1,
        "reconnect_storm": 0,
        "failover_failed": 0,
    }
    body, content_type = render_metrics(registry, None)
    assert b"realtime_supervisor_escalations_total" in body
    assert content_type.startswith("text/plain")


@pytest.mark.compat
def test_livekit_default_load_calls_livekits_calculator() -> None:
    """livekit's private default load calculator is found and gives a load within [0, 1]."""
    import livekit.agents.worker as lk_worker

    assert hasattr(lk_worker, "_DefaultLoadCalc"), "livekit moved its default load function"
    assert 0.0 <= livekit_default_load(None) <= 1.0
    assert lk_worker._DefaultLoadCalc._instance is not None


async def test_load_passes_the_worker_to_the_default_load(
    make_service: Callable[..., Any],
) -> None:
    """load(worker) hands livekit's worker to the default load function."""
    seen: list[object | None] = []

    def default(worker: object | None) -> float:
        seen.append(worker)
        return 0.5

    service = await make_service(default_load=default)
    worker = object()
    assert service.load(worker) == 0.5
    assert seen == [worker]


@dataclass(frozen=True)
class _Settings:
    http_host: str = "127.0.0.1"
    http_port: int = 0
    drain_escalations: int = 2
    drain_window: float = 60.0
    multiproc_dir: str | None = None


async def test_from_config_reads_the_service_settings(http: aiohttp.ClientSession) -> None:
    """from_config takes host, port, drain rule and directory from a ServiceConfig-like object."""
    registry = CollectorRegistry()
    service = SupervisorService.from_config(
        _Settings(), is_connected=lambda: False, registry=registry, metrics=Metrics(registry)
    )
    async with service:
        assert service.port > 0
        assert (await get(http, service, "/readyz"))[0] == 503
        _, body = await get(http, service, "/status")
        assert json.loads(body)["window"]["drain_threshold"] == 2
        assert json.loads(body)["multiprocess"] is False


@pytest.fixture
def promtool() -> Iterator[str]:
    path = shutil.which("promtool")
    assert path, "promtool is not on PATH: run scripts/install-tools.sh (apt prometheus)"
    yield path


@pytest.mark.tools
async def test_promtool_accepts_the_metrics_body(
    make_service: Callable[..., Any],
    http: aiohttp.ClientSession,
    multiproc_dir: Path,
    promtool: str,
) -> None:
    """`promtool check metrics` finds nothing wrong with /metrics (ours and livekit's)."""
    import livekit.agents.telemetry.metrics  # noqa: F401  (registers lk_agents_* on REGISTRY)

    registry = CollectorRegistry()
    service = await make_service(registry=None, metrics=Metrics(registry))
    job_process(multiproc_dir, 2)
    _, text = await get(http, service, "/metrics")
    assert P + "escalations_total" in text
    proc = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        output, _ = await proc.communicate(text.encode())
    assert proc.returncode == 0, output.decode()
