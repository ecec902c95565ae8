"""agent.worker across processes: job processes running supervised sessions write one
PROMETHEUS_MULTIPROC_DIR, and the worker main process's /metrics and /status sum them."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from realtime_supervisor.chaos.server import ChaosServer
from tests.test_worker import (
    GUARD,
    ROOT,
    FakeLiveKit,
    base_env,
    get,
    metric_sum,
    start_worker_process,
    stop_worker_process,
)

# One call, as a livekit job process runs it: build_session + supervise, the realtime model
# pointed at the chaos server, a scripted caller. It speaks its turns, says "ready", and ends
# its session when told (or is killed).
JOB = """
import asyncio, sys, time
from livekit.agents import Agent
from realtime_supervisor_agent.config import AgentConfig
from realtime_supervisor_agent.worker import Settings, build_session, supervise
from realtime_supervisor.config import ServiceConfig, WatchdogConfig
from realtime_supervisor.testing import RecordingAudioOutput, ScriptedCaller

async def main(url, turns):
    settings = Settings(AgentConfig(openai_api_key="sk-job-process-key"), WatchdogConfig(),
                        ServiceConfig())
    session = build_session(settings.agent, base_url=url)
    caller, speaker = ScriptedCaller(), RecordingAudioOutput()
    session.input.audio, session.output.audio = caller, speaker
    context = {"session_id": "s", "room": "r", "job_id": "j"}
    sup = supervise(session, settings, context=context)
    await session.start(Agent(instructions="test"), record=False)
    await sup.start()
    for _ in range(turns):
        t0 = time.monotonic()
        await caller.say(0.6)
        await asyncio.wait_for(speaker.wait_for_answer(t0, seconds=0.5), 30)
        await asyncio.sleep(0.3)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    caller.close()
    await sup.aclose()
    await session.aclose()
    await session.llm.aclose()
    await speaker.aclose()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


@pytest.fixture
async def chaos() -> AsyncIterator[ChaosServer]:
    server = ChaosServer(reply_seconds=0.5)
    await server.start()
    yield server
    await server.aclose()


@pytest.fixture
async def livekit() -> AsyncIterator[FakeLiveKit]:
    server = FakeLiveKit()
    await server.start()
    yield server
    await server.aclose()


async def start_job(chaos: ChaosServer, directory: Path, turns: int) -> asyncio.subprocess.Process:
    env = base_env(PROMETHEUS_MULTIPROC_DIR=str(directory))
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        JOB,
        chaos.url,
        str(turns),
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )


async def wait_ready(job: asyncio.subprocess.Process) -> None:
    assert job.stdout is not None
    line = await asyncio.wait_for(job.stdout.readline(), 60.0)
    assert line == b"ready\n", f"the job process ended early (exit {job.returncode})"


async def scrape(base: str) -> str:
    status, text = await get(base + "/metrics")
    assert status == 200
    return text


@pytest.mark.livekit
async def test_metrics_sum_job_processes_and_forget_the_ones_that_ended(
    chaos: ChaosServer, livekit: FakeLiveKit, tmp_path: Path
) -> None:
    """Two job processes' turns add up on the worker's /metrics and /status, their sessions count
    as active while they run, and go back to 0 once one ends its session and the other is killed;
    livekit's lk_agents_* from the main process are there too."""
    directory = tmp_path / "metrics"
    # The worker first: livekit empties the directory when it starts.
    worker, base = await start_worker_process(livekit, directory)
    jobs: list[asyncio.subprocess.Process] = []
    try:
        jobs = [await start_job(chaos, directory, 2), await start_job(chaos, directory, 3)]
        await asyncio.gather(*(wait_ready(job) for job in jobs))

        # /metrics is served from a render at most the service's cache TTL old and /status from
        # the last poll: both reach the jobs' totals within a poll or two, and never pass them.
        deadline = time.monotonic() + GUARD
        while True:
            text = await scrape(base)
            status = json.loads((await get(base + "/status"))[1])
            assert metric_sum(text, "realtime_supervisor_turns_total") <= 5.0
            assert status["totals"]["turns"] <= 5.0
            if (
                metric_sum(text, "realtime_supervisor_turns_total") == 5.0
                and status["totals"]["turns"] == 5.0
            ):
                break
            assert time.monotonic() < deadline, "the jobs' 5 turns never added up"
            await asyncio.sleep(0.2)
        assert metric_sum(text, "realtime_supervisor_sessions_active") == 2.0
        assert "lk_agents_worker_load" in text
        assert metric_sum(text, "lk_agents_child_process_count") >= 1
        assert status["sessions"]["active"] == 2.0

        # One ends its call normally, the other dies without ending it.
        ended, killed = jobs
        assert ended.stdin is not None
        ended.stdin.write(b"exit\n")
        await ended.stdin.drain()
        assert await asyncio.wait_for(ended.wait(), GUARD) == 0
        killed.send_signal(signal.SIGKILL)
        await asyncio.wait_for(killed.wait(), GUARD)

        # The service sweeps dead processes from the live gauges every second.
        deadline = time.monotonic() + GUARD
        while metric_sum(text := await scrape(base), "realtime_supervisor_sessions_active"):
            assert time.monotonic() < deadline, "sessions_active never went back to 0"
            await asyncio.sleep(0.2)
        assert metric_sum(text, "realtime_supervisor_turns_total") == 5.0  # counters stay
    finally:
        for job in jobs:
            if job.returncode is None:
                job.kill()
                await job.wait()
        code, logs = await stop_worker_process(worker)
    assert code == 0, logs
