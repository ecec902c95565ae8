"""The service cannot hurt the worker: hammered /metrics and /status, idle and half-sent
connections, and more connections than the cap, all on loopback against the real service."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from realtime_supervisor.metrics import Metrics, prepare_multiproc_dir
from realtime_supervisor.service import SupervisorService
from tests.test_service import job_process

GUARD = 60.0

# 200 concurrent GETs (half /metrics, half /status) from another process, as an attacker in
# another pod would send them; prints the status codes it got, as JSON.
_HAMMER = r"""
import asyncio, json, sys
import aiohttp

async def main(base, n):
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        async def one(i):
            path = "/metrics" if i % 2 else "/status"
            try:
                async with http.get(base + path) as response:
                    await response.read()
                    return response.status
            except aiohttp.ClientError as exc:
                return type(exc).__name__
        print(json.dumps(await asyncio.gather(*(one(i) for i in range(n)))), flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


class CountingExecutor(ThreadPoolExecutor):
    """livekit's loop default executor, recording what is submitted to it."""

    def __init__(self) -> None:
        # What asyncio builds by default on a 2-core machine: min(32, cpu + 4) threads.
        super().__init__(max_workers=6)
        self.submitted: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted.append(getattr(fn, "__qualname__", repr(fn)))
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[SupervisorService]:
    directory = prepare_multiproc_dir(tmp_path / "prom")
    for n in range(3):  # a few job processes' files, so each render merges something
        job_process(directory, n)
    registry = CollectorRegistry()
    svc = SupervisorService(
        "127.0.0.1",
        0,
        is_connected=lambda: True,
        multiproc_dir=directory,
        registry=registry,
        metrics=Metrics(registry),
        default_load=lambda _worker: 0.25,
        idle_timeout=1.0,
    )
    await svc.start()
    yield svc
    await svc.aclose()


async def load_latencies(service: SupervisorService, n: int, pause: float) -> list[float]:
    """Call service.load the way livekit does (run_in_executor(None, ...)); the latencies."""
    loop = asyncio.get_running_loop()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        assert await loop.run_in_executor(None, service.load, None) == 0.25
        out.append(time.perf_counter() - started)
        await asyncio.sleep(pause)
    return out


async def test_livekits_load_function_answers_while_metrics_and_status_take_200_requests(
    service: SupervisorService,
) -> None:
    """While 200 concurrent /metrics and /status requests arrive, livekit's load function (on
    the loop's default executor, as livekit calls it) answers as it does at rest, the service
    puts none of its own work on that executor, and every request gets an answer: 200, or a
    fast 503 beyond the connection cap."""
    loop = asyncio.get_running_loop()
    executor = CountingExecutor()
    loop.set_default_executor(executor)
    try:
        at_rest = await load_latencies(service, 10, 0.02)
        executor.submitted.clear()
        hammer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _HAMMER,
            f"http://127.0.0.1:{service.port}",
            "200",
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ},
        )
        under_load: list[float] = []
        assert hammer.stdout is not None
        reading = asyncio.ensure_future(hammer.stdout.readline())
        async with asyncio.timeout(GUARD):
            while not reading.done():
                under_load += await load_latencies(service, 1, 0.01)
            statuses = json.loads(await reading)
            await hammer.wait()
    finally:
        loop.set_default_executor(ThreadPoolExecutor())
        executor.shutdown(wait=False)
    # Only livekit's own load calls went to its executor: the service used its own thread.
    assert set(executor.submitted) == {"SupervisorService.load"}, set(executor.submitted)
    assert len(statuses) == 200
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 64  # the connection cap's worth at least
    assert under_load, "the load function was never called during the hammer"
    # "Its normal time": the load function waits for no rendering. The old service queued the
    # renders on this executor and a load call waited 2.19 s; the bound is a generous guard for
    # a loaded CI machine, the median shows the typical call.
    assert max(under_load) < 1.0, (statistics.median(at_rest), sorted(under_load)[-5:])
    assert statistics.median(under_load) < 0.25, statistics.median(under_load)


async def _open(service: SupervisorService, send: bytes) -> tuple[asyncio.StreamReader, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    if send:
        writer.write(send)
        await writer.drain()
    return reader, writer


async def test_idle_and_half_sent_connections_are_closed(service: SupervisorService) -> None:
    """Connections that send nothing, or only part of a request head, are closed by the
    server after the idle timeout (1 s here), and the service holds no connection after."""
    conns = [await _open(service, b"") for _ in range(10)]
    conns += [await _open(service, b"GET /metrics HTTP/1.1\r\nHost: x\r\n") for _ in range(10)]
    assert service.connections == 20
    started = time.monotonic()
    async with asyncio.timeout(GUARD):
        for reader, _ in conns:
            assert await reader.read() == b""  # EOF: the server closed it
    assert time.monotonic() - started < 10 * 1.0
    for _, writer in conns:
        writer.close()
    async with asyncio.timeout(GUARD):
        while service.connections:  # noqa: ASYNC110  (the server's bookkeeping, no event)
            await asyncio.sleep(0.05)


async def test_a_connection_beyond_the_cap_gets_a_503_and_is_closed(tmp_path: Path) -> None:
    """With max_connections held open, the next connection is answered 503 and closed at once;
    once one closes, requests are served again."""
    registry = CollectorRegistry()
    svc = SupervisorService(
        "127.0.0.1",
        0,
        is_connected=lambda: True,
        registry=registry,
        metrics=Metrics(registry),
        default_load=lambda _worker: 0.0,
        max_connections=4,
    )
    async with svc:
        held = [await _open(svc, b"") for _ in range(4)]
        async with asyncio.timeout(GUARD):
            while svc.connections < 4:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            reader, writer = await _open(svc, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = await reader.read()
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert svc.refused_connections == 1
        writer.close()
        held[0][1].close()
        async with asyncio.timeout(GUARD):
            while svc.connections >= 4:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            reader, writer = await _open(
                svc, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            assert (await reader.read()).startswith(b"HTTP/1.1 200 ")
        writer.close()
        for _, w in held[1:]:
            w.close()


async def test_concurrent_scrapes_share_one_render(service: SupervisorService) -> None:
    """50 concurrent /metrics renders run once (single flight), then come from the 1 s cache."""
    import aiohttp

    renders = 0
    real = service._render

    def counting(accept: str) -> tuple[bytes, str]:
        nonlocal renders
        renders += 1
        time.sleep(0.2)  # a slow merge: the others must wait on this one, not start their own
        return real(accept)

    service._render = counting  # type: ignore[method-assign]
    service._rendered.clear()
    async with aiohttp.ClientSession() as http:

        async def one() -> int:
            async with http.get(f"http://127.0.0.1:{service.port}/metrics") as response:
                await response.read()
                return response.status

        async with asyncio.timeout(GUARD):
            assert await asyncio.gather(*(one() for _ in range(50))) == [200] * 50
    assert renders == 1
