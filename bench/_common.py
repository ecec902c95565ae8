"""What every benchmark shares: percentiles, the machine and versions, JSON out, tables."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gc
import importlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from realtime_supervisor._cli import count

# The flags' integer type (>= 1): the library's command lines' own.
positive_int = count

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PLOTS = ROOT / "bench" / "plots"


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (the same rule as simulate's Stats); None for no samples."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def stats(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """n, p50, p95 and max of a sample, rounded."""

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, digits)

    return {
        "n": len(values),
        "p50": r(percentile(values, 0.50)),
        "p95": r(percentile(values, 0.95)),
        "max": r(max(values) if values else None),
    }


def _package_version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """The machine and the versions a result was measured with."""
    model = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": memory,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": {
            name: _package_version(name)
            for name in (
                "realtime-supervisor",
                "livekit-agents",
                "livekit-plugins-openai",
                "openai",
                "prometheus-client",
                "aiohttp",
            )
        },
    }


def write_json(name: str, doc: dict[str, Any], directory: Path | None = None) -> Path:
    """Write `doc` (with the machine and a timestamp) to bench/results/<name>.json."""
    out = (directory or RESULTS) / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    full = {
        "benchmark": name,
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": _command(),
        "machine": machine(),
        **doc,
    }
    out.write_text(json.dumps(full, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return out


def _command() -> str:
    exe = Path(sys.executable)
    with contextlib.suppress(ValueError):
        exe = exe.relative_to(ROOT)
    args = list(sys.argv)
    if args and args[0].endswith(".py"):
        with contextlib.suppress(ValueError):
            module = Path(args[0]).resolve().relative_to(ROOT).with_suffix("")
            args[0] = "-m " + ".".join(module.parts)
    return " ".join([str(exe), *args])


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table (printed by the benchmarks, reused in RESULTS.md)."""

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 0.01 and v != 0 else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


class LoopLag:
    """Measures how late the event loop wakes a 50 ms ticker: a loaded machine shows up here."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + 0.05
            await asyncio.sleep(0.05)
            self.lags.append(max(0.0, loop.time() - expected))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[LoopLag]:
        self._task = asyncio.create_task(self._tick())
        try:
            yield self
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def summary(self) -> dict[str, Any]:
        return {
            "p50": round(percentile(self.lags, 0.5) or 0.0, 4),
            "p99": round(percentile(self.lags, 0.99) or 0.0, 4),
            "max": round(max(self.lags, default=0.0), 4),
        }


class GcPauses:
    """Times the cyclic collector's full (generation 2) collections while installed.

    They run inside whatever callback allocated last, so the event loop stands still for their
    length: with livekit's and openai's modules in the heap, about 0.1 s each on these machines.
    """

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started: float | None = None

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.pauses.append(time.perf_counter() - self._started)
            self._started = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[GcPauses]:
        gc.callbacks.append(self._callback)
        try:
            yield self
        finally:
            gc.callbacks.remove(self._callback)

    def summary(self) -> dict[str, Any]:
        return {
            "full_collections": len(self.pauses),
            "max": round(max(self.pauses, default=0.0), 4),
            "total": round(sum(self.pauses), 3),
        }


# What a job process has loaded before its session starts.
JOB_MODULES = (
    "realtime_supervisor_agent.models",
    "realtime_supervisor_agent.simulate",
    "realtime_supervisor.chaos",
)


def freeze_startup_heap() -> int:
    """Load a job's modules, then move everything alive out of the collector's reach.

    livekit-agents 1.8 runs `gc.collect(); gc.freeze()` in its forkserver after preloading
    (livekit/agents/ipc/_preload_freeze.py), so a job process never rescans the modules it
    inherited. A benchmark process that imported the same modules itself does the same, or each
    full collection stalls its event loop for a scan of objects no real job process scans.
    Returns the number of objects frozen.
    """
    for module in JOB_MODULES:
        importlib.import_module(module)
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def cpu_seconds() -> float:
    """This process's CPU time (user + system), all threads."""
    return time.process_time()
