"""The worker's load function: full when memory or calls reach their limit, whatever CPU says.

The cgroup files are written into a temporary directory laid out like /sys/fs/cgroup (v2, and
v1 for the fallback); the CPU part is a stub returning 0 (idle) so the other parts are what the
test sees. The wiring tests build the real livekit AgentServer through build_worker, the last one
runs it against the worker tests' fake LiveKit server: livekit's own load loop reports FULL.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from realtime_supervisor.errors import ConfigError
from realtime_supervisor_agent.config import AgentConfig, AgentConfigError
from realtime_supervisor_agent.load import (
    DEFAULT_MAX_CALLS,
    LOAD_THRESHOLD,
    CapacityLoad,
    memory_fraction,
)

# The fake LiveKit server of the worker tests, and its fixtures.
from tests.test_worker import (
    _OURS,
    GUARD,
    VALID,
    FakeLiveKit,
    livekit,  # noqa: F401  (fixture)
    restore_environ,  # noqa: F401  (fixture)
    running_worker,
)

GIB = 1 << 30
# Pure logic plus the real AgentServer wiring: runs on livekit-agents 1.5.11 as well.
pytestmark = pytest.mark.compat


def _v2(root: Path, *, limit: str, current: int, inactive_file: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "memory.max").write_text(f"{limit}\n")
    (root / "memory.current").write_text(f"{current}\n")
    (root / "memory.stat").write_text(f"anon {current}\ninactive_file {inactive_file}\n")
    return root


def _v1(root: Path, *, limit: int, usage: int, inactive_file: int = 0) -> Path:
    memory = root / "memory"
    memory.mkdir(parents=True)
    (memory / "memory.limit_in_bytes").write_text(f"{limit}\n")
    (memory / "memory.usage_in_bytes").write_text(f"{usage}\n")
    (memory / "memory.stat").write_text(f"cache 0\ntotal_inactive_file {inactive_file}\n")
    return root


def _server(calls: int) -> SimpleNamespace:
    """What the load function reads from livekit's AgentServer: its running jobs."""
    return SimpleNamespace(active_jobs=[object()] * calls)


def _idle_cpu(server: object | None) -> float:
    return 0.0


def test_full_when_memory_reaches_the_limit_with_cpu_idle(tmp_path: Path) -> None:
    """2 GiB used of a 2 GiB limit, CPU idle, one call: full (at or above the threshold)."""
    root = _v2(tmp_path, limit=str(2 * GIB), current=2 * GIB)
    load = CapacityLoad(20, cpu=_idle_cpu, cgroup_root=root)
    parts = load.parts(_server(1))
    assert parts.cpu == 0.0
    assert parts.memory == 1.0
    assert load(_server(1)) >= LOAD_THRESHOLD


def test_full_at_the_threshold_share_of_memory(tmp_path: Path) -> None:
    """LiveKit stops dispatching once the working set reaches 70% of the limit, not at 100%."""
    below = CapacityLoad(cpu=_idle_cpu, cgroup_root=_v2(tmp_path / "a", limit="1000", current=600))
    at = CapacityLoad(cpu=_idle_cpu, cgroup_root=_v2(tmp_path / "b", limit="1000", current=700))
    assert below(_server(0)) < LOAD_THRESHOLD <= at(_server(0))


def test_full_when_the_call_count_reaches_the_maximum_with_cpu_idle(tmp_path: Path) -> None:
    """AGENT_MAX_CALLS calls make the pod full; one fewer does not. Memory and CPU idle."""
    root = _v2(tmp_path, limit=str(2 * GIB), current=GIB // 10)
    load = CapacityLoad(8, cpu=_idle_cpu, cgroup_root=root)
    assert load(_server(7)) < LOAD_THRESHOLD
    assert load(_server(8)) == pytest.approx(LOAD_THRESHOLD)
    assert load(_server(8)) >= LOAD_THRESHOLD
    assert load(_server(50)) == 1.0  # capped


def test_cpu_still_counts(tmp_path: Path) -> None:
    """With memory and calls low, the load is livekit's CPU load."""
    root = _v2(tmp_path, limit="max", current=GIB)
    load = CapacityLoad(20, cpu=lambda server: 0.42, cgroup_root=root)
    assert load(_server(1)) == pytest.approx(0.42)


def test_reclaimable_page_cache_is_not_counted(tmp_path: Path) -> None:
    """memory.current at the limit, half of it inactive file cache: the working set is half."""
    root = _v2(tmp_path, limit="1000", current=1000, inactive_file=500)
    assert memory_fraction(root) == pytest.approx(0.5)


def test_no_limit_means_no_memory_part(tmp_path: Path) -> None:
    """cgroup v2 "max" and cgroup v1's huge number both mean no limit: memory reads 0."""
    assert memory_fraction(_v2(tmp_path / "v2", limit="max", current=GIB)) == 0.0
    assert memory_fraction(_v1(tmp_path / "v1", limit=(1 << 63) - 4096, usage=GIB)) == 0.0


def test_cgroup_v1_fallback(tmp_path: Path) -> None:
    """Without memory.max (cgroup v1), the v1 files give the same fraction."""
    root = _v1(tmp_path, limit=2 * GIB, usage=2 * GIB, inactive_file=GIB // 2)
    assert memory_fraction(root) == pytest.approx(0.75)
    assert CapacityLoad(cpu=_idle_cpu, cgroup_root=root)(_server(0)) >= LOAD_THRESHOLD


def test_unreadable_parts_never_raise(tmp_path: Path) -> None:
    """A broken CPU reading, missing cgroup files or a server without jobs: the rest holds."""

    def broken(server: object | None) -> float:
        raise RuntimeError("psutil gone")

    root = _v2(tmp_path, limit="1000", current=900)
    assert CapacityLoad(cpu=broken, cgroup_root=root)(object()) == pytest.approx(0.9)
    assert CapacityLoad(cpu=_idle_cpu, cgroup_root=tmp_path / "missing")(None) == 0.0
    assert memory_fraction(Path("/sys/fs/cgroup")) >= 0.0  # this machine's real cgroup


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("0", "got 0"),
        ("1001", "got 1001"),
        ("-3", "got -3"),
        ("9223372036854775807", "got 9223372036854775807"),
        ("twenty", "got 'twenty'"),
        ("2.5", "got '2.5'"),
    ],
)
def test_max_calls_bounds(raw: str, problem: str) -> None:
    """AGENT_MAX_CALLS outside 1..1000 is refused by the agent's settings reader, naming the
    variable, the accepted range and the value, together with the other settings' problems."""
    with pytest.raises(ConfigError) as info:
        AgentConfig.from_env({"OPENAI_API_KEY": "k", "AGENT_MAX_CALLS": raw})
    assert info.value.field == "AGENT_MAX_CALLS"
    assert "AGENT_MAX_CALLS: expected an integer 1..1000 (calls per pod)" in str(info.value)
    assert problem in str(info.value)
    # The collect-all-errors rule: one error lists every bad variable, in the variables' order.
    with pytest.raises(AgentConfigError) as both:
        AgentConfig.from_env({"AGENT_VOICE": "a b", "AGENT_MAX_CALLS": raw})
    assert [name for name, _ in both.value.problems] == [
        "OPENAI_API_KEY",
        "AGENT_VOICE",
        "AGENT_MAX_CALLS",
    ]


def test_max_calls_default_and_value() -> None:
    assert AgentConfig.from_env({"OPENAI_API_KEY": "k"}).max_calls == DEFAULT_MAX_CALLS == 20
    assert AgentConfig.from_env({"OPENAI_API_KEY": "k", "AGENT_MAX_CALLS": " 12 "}).max_calls == 12
    with pytest.raises(ValueError, match="max_calls"):
        CapacityLoad(0)


def test_worker_reports_the_capacity_load(tmp_path: Path) -> None:
    """build_worker wires the capacity load into livekit's AgentServer: before the service
    exists the worker reports it, and the service gets it as its default load."""
    from realtime_supervisor_agent.worker import build_worker, load_settings

    settings = load_settings({"OPENAI_API_KEY": "fake", "AGENT_MAX_CALLS": "4"})
    worker = build_worker(settings, port=0, num_idle_processes=0)
    meter = worker._service_options["default_load"]
    assert isinstance(meter, CapacityLoad) and meter.max_calls == 4
    full = CapacityLoad(4, cpu=_idle_cpu, cgroup_root=_v2(tmp_path, limit="10", current=10))
    worker = build_worker(
        settings, port=0, num_idle_processes=0, service_options={"default_load": full}
    )
    assert worker.load(worker.server) == 1.0
    assert worker.server.load_fnc is not None
    assert worker.server.load_fnc(worker.server) == 1.0


# -- end to end: livekit's own load loop reports what the capacity load says --------------------


@pytest.mark.usefixtures("restore_environ")
async def test_livekit_reports_full_from_memory_with_cpu_idle(
    livekit: FakeLiveKit,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A real worker, CPU idle, no calls: with the working set at the container limit livekit
    reports FULL to LiveKit and refuses an offered job; memory freed, it is available again."""
    from livekit.protocol import agent as lk_agent

    root = _v2(tmp_path / "cgroup", limit=str(2 * GIB), current=2 * GIB)
    async with running_worker(
        livekit, default_load=CapacityLoad(4, cpu=_idle_cpu, cgroup_root=root)
    ):
        await asyncio.wait_for(livekit.registered.wait(), GUARD)
        full = await livekit.wait_update(lambda u: u.status == lk_agent.WorkerStatus.WS_FULL)
        assert full.load == 1.0
        answer = await livekit.request_job("AJ_memory_full")
        assert answer.job_id == "AJ_memory_full" and answer.available is False
        _v2(root, limit=str(2 * GIB), current=GIB // 4)
        back = await livekit.wait_update(lambda u: u.status == lk_agent.WorkerStatus.WS_AVAILABLE)
        assert back.load == pytest.approx(0.125)


@pytest.mark.parametrize("value", ["0", "1001", "lots"])
def test_a_bad_max_calls_exits_2_before_the_worker_is_built(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`realtime-supervisor start` with AGENT_MAX_CALLS out of bounds: exit 2 naming it, nothing
    built or connected."""
    from realtime_supervisor_agent import worker

    for name in list(os.environ):
        if name.startswith(_OURS) or name == "PROMETHEUS_MULTIPROC_DIR":
            monkeypatch.delenv(name)
    for name, v in {**VALID, "AGENT_MAX_CALLS": value}.items():
        monkeypatch.setenv(name, v)

    def no_worker(*args: object, **kwargs: object) -> object:
        raise AssertionError("the worker was built despite a bad setting")

    monkeypatch.setattr(worker, "build_worker", no_worker)
    assert worker.main(["start"]) == 2
    err = capsys.readouterr().err
    assert "AGENT_MAX_CALLS" in err and "1..1000" in err
