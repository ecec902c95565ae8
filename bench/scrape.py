"""Benchmark 4: /metrics response time with 200 job processes' files in the multiprocess directory.

    .venv/bin/python -m bench.scrape          # about 30 seconds

The directory is filled the way job processes fill it: `supervisor.metrics.Metrics` on
prometheus_client's multiprocess value class, in a subprocess with PROMETHEUS_MULTIPROC_DIR set,
once per job with that job's pid as the process identifier (one subprocess writes all 200, via
the same code path; the pids are live `sleep` processes, so the live gauges stay live and the
service's dead-pid sweep keeps them). Each job records a few calls' worth of series: turns,
stalls of every kind, recoveries, escalations, the three histograms, warnings, the session
gauges. Then `SupervisorService` serves /metrics on 127.0.0.1 and is scraped over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import ROOT, positive_int, stats, table, write_json

_WRITER = r"""
import sys
from prometheus_client import CollectorRegistry, values
from realtime_supervisor.metrics import ACTIONS, STALL_KINDS, WARNING_KINDS, Metrics

for pid in map(int, sys.argv[1:]):
    values.ValueClass = values.MultiProcessValue(lambda pid=pid: pid)
    metrics = Metrics(CollectorRegistry())
    for call in range(3):
        s = metrics.session("openai", "gpt-realtime")
        s.session_started()
        for turn in range(20):
            s.turn()
            s.reply_latency(0.4 + 0.05 * turn)
        for kind in STALL_KINDS[:3]:
            s.stall(kind)
            s.silence(kind, 5.5)
        for action in ACTIONS:
            s.recovery(action, "success", 0.3)
        s.recovery("reissue", "failure", None)
        s.escalation("budget_exhausted")
        for kind in WARNING_KINDS[:3]:
            s.livekit_warning(kind)
        s.set_stalled(call == 0)
        if call:
            s.session_ended()
"""


def fill(directory: Path, pids: list[int]) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", _WRITER, *map(str, pids)], cwd=ROOT, env=env, check=True)


async def scrape(directory: Path, requests: int) -> dict[str, Any]:
    import aiohttp
    from prometheus_client import CollectorRegistry

    from realtime_supervisor.service import SupervisorService

    service = SupervisorService(
        "127.0.0.1",
        0,
        is_connected=lambda: True,
        multiproc_dir=directory,
        registry=CollectorRegistry(),
        poll_interval=3600.0,
    )
    times: list[float] = []
    async with service, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{service.port}/metrics"
        body = b""
        for i in range(requests + 5):
            start = time.perf_counter()
            async with http.get(url) as resp:
                body = await resp.read()
                assert resp.status == 200, resp.status
            if i >= 5:  # the first few warm caches
                times.append(time.perf_counter() - start)
    return {
        "requests": requests,
        "seconds": stats(times, 4),
        "body_bytes": len(body),
        "series": sum(1 for line in body.decode().splitlines() if line and line[0] != "#"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.scrape", description=__doc__)
    p.add_argument(
        "--jobs", type=positive_int, default=200, help="job processes' files (default 200)"
    )
    p.add_argument("--requests", type=positive_int, default=100, help="timed scrapes (default 100)")
    args = p.parse_args(argv)
    sleepers = [subprocess.Popen(["sleep", "600"]) for _ in range(args.jobs)]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scrape-") as tmp:
            directory = Path(tmp)
            fill(directory, [s.pid for s in sleepers])
            files = sorted(directory.glob("*.db"))
            result = asyncio.run(scrape(directory, args.requests))
            result["jobs"] = args.jobs
            result["files"] = len(files)
            result["directory_bytes"] = sum(f.stat().st_size for f in files)
    finally:
        for s in sleepers:
            s.kill()
        for s in sleepers:
            s.wait()
    path = write_json("scrape", result)
    s = result["seconds"]
    print(
        table(
            ("jobs", "files", "series", "body KB", "p50 ms", "p95 ms", "max ms"),
            [
                (
                    result["jobs"],
                    result["files"],
                    result["series"],
                    round(result["body_bytes"] / 1024, 1),
                    round(1000 * s["p50"], 1),
                    round(1000 * s["p95"], 1),
                    round(1000 * s["max"], 1),
                )
            ],
        )
    )
    print(f"\nwrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
