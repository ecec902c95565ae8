"""Benchmark 5: a worker that serves thousands of calls keeps a small metrics directory.

    .venv/bin/python -m bench.soak                    # 3,000 job processes, about a minute
    .venv/bin/python -m bench.soak --processes 600    # quicker

Real processes, real prometheus_client multiprocess files: a spawner process (with
PROMETHEUS_MULTIPROC_DIR set, as livekit's forkserver) forks short job processes in batches;
each records one call through `realtime_supervisor.metrics` (turns, a stall, a recovery, an
escalation, the reply-latency histogram, a session started and, for one in four, never ended, as
a crashed job leaves it) and exits. The spawner reaps each batch only after the next has run, so
the service also meets zombies. This process runs the real `SupervisorService` (poll every
second) and scrapes its /metrics over HTTP.

At every checkpoint (all forked processes so far have exited) it records: the directory's file
count, /metrics time (median of 5 scrapes, each past the 1 s cache), this process's CPU per
second since the last checkpoint (the service's poll, folds and the scrapes), and whether
turns, escalations, the histogram count and sessions_active equal what the spawner wrote. A
scraper every 0.2 s throughout checks that turns_total never goes backwards (Prometheus would
read a reset) nor above what was written (a process counted twice while being folded).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

from bench._common import positive_int, table, write_json

# The spawner: forks `batch` job processes at a time; prints a line per checkpoint and waits for
# a line on stdin before going on (so the reader measures a directory that is standing still).
_SPAWNER = r"""
import os, sys
from prometheus_client import CollectorRegistry
from realtime_supervisor.metrics import Metrics

total, batch, every = (int(x) for x in sys.argv[1:4])
metrics = Metrics(CollectorRegistry())   # built before the forks, as in a prewarmed process
turns = escalations = calls = crashed = 0
pending = []
for n in range(total):
    k = 1 + n % 5
    pid = os.fork()
    if pid == 0:
        s = metrics.session("openai", "gpt-realtime")
        s.session_started()
        for _ in range(k):
            s.turn()
            s.reply_latency(0.7)
        s.stall("no_reply")
        s.recovery("reissue", "success", 1.2)
        s.escalation("ladder_exhausted")
        if n % 4:
            s.session_ended()
        os._exit(0)
    turns += k
    escalations += 1
    calls += 1
    crashed += 0 if n % 4 else 1
    pending.append(pid)
    if len(pending) >= 2 * batch:       # reap the older batch only: the newer ones stay zombies
        for old in pending[:batch]:
            os.waitpid(old, 0)
        del pending[:batch]
    if (n + 1) % every == 0 or n + 1 == total:
        for old in pending:
            os.waitpid(old, 0)
        pending.clear()
        print(f"checkpoint {n + 1} {turns} {escalations} {calls}", flush=True)
        sys.stdin.readline()
"""


async def _scrape(url: str) -> tuple[float, str]:
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        started = time.perf_counter()
        async with http.get(url) as response:
            text = await response.text()
        return time.perf_counter() - started, text


def _sum(text: str, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    )


async def soak(processes: int, batch: int = 25, checkpoints: int = 6) -> dict[str, Any]:
    """Run the soak; return its checkpoints (see the module docstring)."""
    from prometheus_client import CollectorRegistry

    from realtime_supervisor.metrics import Metrics, prepare_multiproc_dir
    from realtime_supervisor.service import SupervisorService

    every = max(1, processes // checkpoints)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rs-soak-") as tmp:
        directory = prepare_multiproc_dir(Path(tmp) / "metrics")
        registry = CollectorRegistry()
        service = SupervisorService(
            "127.0.0.1",
            0,
            is_connected=lambda: True,
            multiproc_dir=directory,
            registry=registry,
            metrics=Metrics(registry),
            default_load=lambda _worker: 0.0,
        )
        await service.start()
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
        spawner = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _SPAWNER,
            str(processes),
            str(batch),
            str(every),
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert spawner.stdin is not None and spawner.stdout is not None
        url = f"http://127.0.0.1:{service.port}/metrics"
        cpu, wall = time.process_time(), time.monotonic()
        seen: list[float] = []  # turns_total as scraped while processes run and are folded

        async def watch() -> None:
            while True:
                seen.append(_sum((await _scrape(url))[1], "realtime_supervisor_turns_total"))
                await asyncio.sleep(0.2)

        watcher = asyncio.create_task(watch())
        try:
            while True:
                line = (await asyncio.wait_for(spawner.stdout.readline(), 600)).decode()
                if not line.startswith("checkpoint"):
                    break
                done, turns, escalations, calls = (int(x) for x in line.split()[1:])
                await asyncio.sleep(1.5)  # one poll: every exited process folded
                times = []
                for _ in range(5):
                    await asyncio.sleep(1.05)  # past the shared cache: each scrape renders
                    seconds, text = await _scrape(url)
                    times.append(seconds)
                now_cpu, now_wall = time.process_time(), time.monotonic()
                files = sum(1 for p in directory.iterdir() if p.suffix == ".db")
                rows.append(
                    {
                        "processes": done,
                        "files": files,
                        "metrics_ms": round(sorted(times)[2] * 1000, 2),
                        "cpu_per_s": round((now_cpu - cpu) / (now_wall - wall), 4),
                        "exact": (
                            _sum(text, "realtime_supervisor_turns_total") == turns
                            and _sum(text, "realtime_supervisor_escalations_total") == escalations
                            and _sum(text, "realtime_supervisor_reply_latency_seconds_count")
                            == turns
                            and _sum(text, "realtime_supervisor_sessions_active") == 0
                        ),
                        "turns": turns,
                        "calls": calls,
                    }
                )
                cpu, wall = now_cpu, now_wall
                spawner.stdin.write(b"go\n")
                await spawner.stdin.drain()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            if spawner.returncode is None:
                spawner.stdin.close()
                await asyncio.wait_for(spawner.wait(), 60)
            await service.aclose()
    final = rows[-1]["turns"] if rows else 0
    monotonic = all(a <= b for a, b in itertools.pairwise(seen)) and max(seen, default=0) <= final
    return {
        "processes": processes,
        "batch": batch,
        "checkpoints": rows,
        # Never backwards (a reset to Prometheus) nor above what was written (a double count),
        # however the scrapes fell against the folds.
        "scrapes_while_running": len(seen),
        "monotonic": monotonic,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=positive_int, default=3000)
    parser.add_argument("--batch", type=positive_int, default=25)
    parser.add_argument("--checkpoints", type=positive_int, default=6)
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    result = asyncio.run(soak(args.processes, args.batch, args.checkpoints))
    rows = result["checkpoints"]
    print(
        table(
            ["job processes", "files", "/metrics ms", "CPU s/s", "every counter exact"],
            [
                [
                    r["processes"],
                    r["files"],
                    r["metrics_ms"],
                    r["cpu_per_s"],
                    r["exact"],
                ]
                for r in rows
            ],
        )
    )
    print(
        f"turns_total never went backwards nor above the truth over "
        f"{result['scrapes_while_running']} scrapes: {result['monotonic']}"
    )
    path = write_json("soak", result)
    print(f"written: {path}")
    return 0 if all(r["exact"] for r in rows) and result["monotonic"] else 1


if __name__ == "__main__":
    sys.exit(main())
