"""The worker's HTTP service: /metrics, /healthz, /readyz, /status, and draining by escalations.

It runs in the worker's main process. Sessions run in job processes, which write their metrics to
the prometheus multiprocess directory; this process reads them from there.

Draining: job processes count escalations in `realtime_supervisor_escalations_total`. Every
`poll_interval` (and on each /readyz) the service sums that counter over the directory and records
the increase since the last reading in an `EventWindow` at `clock()`. With `drain_escalations`
or more in the last `drain_window` seconds the worker drains: /readyz answers 503, `load()` reports
1.0 so LiveKit stops dispatching jobs here, and the draining gauge is 1. Nothing needs resetting:
when the window no longer holds enough escalations, the worker is ready again.

/healthz answers from the event loop, so an answer at all means the loop runs. A heartbeat task
ticks every 0.5 s and measures how late it woke (the loop lag); /healthz fails only when the last
tick is older than `loop_block_threshold` (30 s by default: a loop that busy cannot serve jobs'
IPC either) or the heartbeat task died. No session, LiveKit connection or stalled call affects it.

/metrics in multiprocess mode merges the directory's families with this process's own registry
(livekit's lk_agents_* live there, and the worker-level gauges). See `collect_families` for how
duplicates are avoided.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Protocol

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, values
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from realtime_supervisor.logs import lazy_logger
from realtime_supervisor.window import SlidingWindow

from .metrics import (
    PREFIX,
    Metrics,
    default_metrics,
    livekit_agents_version,
    supervisor_version,
    sweep_dead,
)

__all__ = [
    "EventWindow",
    "ServiceSettings",
    "SupervisorService",
    "Totals",
    "collect_families",
    "decide_load",
    "drain_reason",
    "livekit_default_load",
    "loop_health",
    "read_totals",
    "render_metrics",
]

_log = lazy_logger(__name__)  # stdlib `realtime_supervisor.service` (see logs.py)
_HEARTBEAT: Final = 0.5


# -- pure parts ---------------------------------------------------------------------------------


# The drain's window is the one sliding window of the pure core (its old name kept for callers).
EventWindow = SlidingWindow


def drain_reason(count: int, threshold: int, window: float) -> str | None:
    """Why the worker drains, or None: `threshold` or more escalations in the window."""
    if count >= threshold:
        return f"draining: {count} escalations in the last {window:g} s (threshold {threshold})"
    return None


def decide_load(draining: bool, base: float) -> float:
    """The load to report to LiveKit: full while draining, else the base load clamped to [0, 1]."""
    if draining:
        return 1.0
    if not math.isfinite(base):
        return 1.0
    return min(max(base, 0.0), 1.0)


def loop_health(since_heartbeat: float, heartbeat_running: bool, threshold: float) -> str | None:
    """Why the event loop is unhealthy, or None: the heartbeat stopped or is `threshold` late."""
    if not heartbeat_running:
        return "heartbeat task not running"
    if since_heartbeat > threshold:
        return f"event loop blocked: no heartbeat for {since_heartbeat:.1f} s"
    return None


def _fallback_load() -> float:
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:  # getloadavg is unavailable on some platforms
        return 0.0


def livekit_default_load(worker: object | None = None) -> float:
    """livekit's default load (its CPU average), or the 1-minute load average per core.

    livekit exposes its default only as the private `livekit.agents.worker._DefaultLoadCalc`
    (`get_load(worker)`, the same in 1.5.11 and 1.8.9; it ignores the worker); when that is
    gone, the fallback keeps the worker dispatchable.
    """
    from .livekit._private import default_load_calc

    calc = default_load_calc()
    if calc is None:
        return _fallback_load()
    return float(calc.get_load(worker))


def _is_file_backed() -> bool:
    # prometheus_client picks the value class once, at import, from PROMETHEUS_MULTIPROC_DIR.
    return values.ValueClass is not values.MutexValue


def _series_key(sample: Sample) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in sample.labels.items() if k not in ("le", "quantile")))


def _copy(metric: Metric, samples: Iterable[Sample]) -> Metric:
    out = Metric(metric.name, metric.documentation, metric.type, metric.unit)
    out.samples = list(samples)
    return out


def collect_families(
    registry: Collector | None, multiproc_dir: str | None, *, files: str = "*.db"
) -> list[Metric]:
    """The families to expose: the directory's (summed per multiprocess mode) and the registry's.

    A family in both is taken from the directory, because:
    - if this process is file-backed (the variable was set before prometheus_client was imported),
      its own values are in the directory already: the registry's copy would count them twice;
    - otherwise the registry's copy holds only this process's in-memory series; for the same
      label set the directory's series is the one the job processes wrote (this process only
      builds those families, e.g. the sessions gauges at 0). Its other series are kept.
    Families only the registry has (lk_agents_* set in memory, ready/draining, process_*) pass.
    """
    if multiproc_dir is None:
        return list(registry.collect()) if registry is not None else []
    paths = glob.glob(os.path.join(multiproc_dir, files))
    merged = MultiProcessCollector.merge(paths, accumulate=True)  # type: ignore[no-untyped-call]
    shared: dict[str, Metric] = {m.name: m for m in merged}
    out = list(shared.values())
    if registry is None:
        return out
    file_backed = _is_file_backed()
    for family in registry.collect():
        mine = shared.get(family.name)
        if mine is None:
            out.append(family)
            continue
        if file_backed or mine.type != family.type:
            continue
        seen = {_series_key(s) for s in mine.samples}
        extra = [
            s
            for s in family.samples
            if _series_key(s) not in seen and not s.name.endswith("_created")
        ]
        if extra:
            out[out.index(mine)] = _copy(mine, [*mine.samples, *extra])
    return out


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def render_metrics(
    registry: Collector | None, multiproc_dir: str | None, accept: str = ""
) -> tuple[bytes, str]:
    """The /metrics body and its content type, negotiated from the Accept header."""
    encoder, content_type = choose_encoder(accept)
    return encoder(_Families(collect_families(registry, multiproc_dir))), content_type


@dataclass(frozen=True, slots=True)
class Totals:
    """The supervisor's counters and gauges summed over every label but the ones kept here."""

    turns: float = 0.0
    escalations: float = 0.0
    stalls: Mapping[str, float] = field(default_factory=dict)
    recoveries: Mapping[str, float] = field(default_factory=dict)  # outcome -> n
    escalation_reasons: Mapping[str, float] = field(default_factory=dict)
    sessions_active: float = 0.0
    sessions_stalled: float = 0.0
    watchdog_errors: float = 0.0
    livekit_warnings: float = 0.0


def read_totals(families: Iterable[Metric]) -> Totals:
    """Sum the families of the metrics contract into `Totals`."""
    sums: dict[str, float] = {}
    by: dict[str, dict[str, float]] = {"stalls": {}, "recoveries": {}, "escalations": {}}
    label_of = {"stalls": "kind", "recoveries": "outcome", "escalations": "reason"}
    for family in families:
        if not family.name.startswith(PREFIX):
            continue
        short = family.name.removeprefix(PREFIX)
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            sums[short] = sums.get(short, 0.0) + s.value
            if short in by:
                key = s.labels.get(label_of[short], "other")
                by[short][key] = by[short].get(key, 0.0) + s.value
    return Totals(
        turns=sums.get("turns", 0.0),
        escalations=sums.get("escalations", 0.0),
        stalls=by["stalls"],
        recoveries=by["recoveries"],
        escalation_reasons=by["escalations"],
        sessions_active=sums.get("sessions_active", 0.0),
        sessions_stalled=sums.get("sessions_stalled", 0.0),
        watchdog_errors=sums.get("watchdog_errors", 0.0),
        livekit_warnings=sums.get("livekit_warnings", 0.0),
    )


# -- the service --------------------------------------------------------------------------------


class ServiceSettings(Protocol):
    """What the service reads from `supervisor.config.ServiceConfig`."""

    @property
    def http_host(self) -> str: ...
    @property
    def http_port(self) -> int: ...
    @property
    def drain_escalations(self) -> int: ...
    @property
    def drain_window(self) -> float: ...
    @property
    def multiproc_dir(self) -> str | None: ...


class SupervisorService:
    """The worker main process's HTTP endpoints and drain state. `start()`, then `aclose()`.

    `registry` is this process's own registry (prometheus_client's REGISTRY by default, where
    livekit registers lk_agents_*); `multiproc_dir` the job processes' directory, or None when
    jobs run in this process. `is_connected` says whether the worker holds its LiveKit
    connection; it is called from the event loop.
    """

    def __init__(
        self,
        host: str = "0.0.0.0",
        port: int = 9464,
        *,
        is_connected: Callable[[], bool],
        multiproc_dir: str | os.PathLike[str] | None = None,
        registry: CollectorRegistry | None = None,
        metrics: Metrics | None = None,
        drain_escalations: int = 5,
        drain_window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        default_load: Callable[[object | None], float] = livekit_default_load,
        poll_interval: float = 1.0,
        loop_block_threshold: float = 30.0,
    ) -> None:
        if drain_escalations < 1:
            raise ValueError(f"drain_escalations must be >= 1, got {drain_escalations!r}")
        self._host = host
        self._requested_port = port
        self._is_connected = is_connected
        self._dir = None if multiproc_dir is None else os.fspath(multiproc_dir)
        self._registry: CollectorRegistry = REGISTRY if registry is None else registry
        if metrics is None:
            metrics = default_metrics() if registry is None else Metrics(registry)
        self._metrics = metrics
        self._threshold = drain_escalations
        self._clock = clock
        self._default_load = default_load
        self._poll_interval = poll_interval
        self._block_threshold = loop_block_threshold
        self._escalations = EventWindow(drain_window)
        self._stalls = EventWindow(drain_window)
        self._recoveries: dict[str, EventWindow] = {
            "success": EventWindow(drain_window),
            "failure": EventWindow(drain_window),
        }
        self._last: Totals | None = None
        self._refresh_lock = asyncio.Lock()
        # Read from livekit's executor thread by load(): a bool swap is atomic.
        self._draining = False
        self._reason: str | None = None
        self._connected = False
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_beat = 0.0
        self._lag = 0.0

    @classmethod
    def from_config(
        cls, config: ServiceSettings, *, is_connected: Callable[[], bool], **kwargs: Any
    ) -> SupervisorService:
        """Build from a `ServiceConfig` (or anything with its fields)."""
        return cls(
            config.http_host,
            config.http_port,
            is_connected=is_connected,
            multiproc_dir=config.multiproc_dir,
            drain_escalations=config.drain_escalations,
            drain_window=config.drain_window,
            **kwargs,
        )

    # -- lifecycle

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        if self._runner is not None:
            for address in self._runner.addresses:
                if isinstance(address, tuple) and len(address) >= 2:
                    return int(address[1])
        return self._requested_port

    async def start(self) -> None:
        """Read the counters' baseline, bind the HTTP server, start the heartbeat and the poll."""
        if self._runner is not None:
            raise RuntimeError("SupervisorService already started")
        await self.refresh()
        app = web.Application()
        app.add_routes(
            [
                web.get("/metrics", self._handle_metrics),
                web.get("/healthz", self._handle_healthz),
                web.get("/readyz", self._handle_readyz),
                web.get("/status", self._handle_status),
            ]
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._requested_port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        loop = asyncio.get_running_loop()
        self._last_beat = loop.time()
        self._tasks = [
            asyncio.create_task(self._heartbeat(), name="supervisor-service-heartbeat"),
            asyncio.create_task(self._poll(), name="supervisor-service-poll"),
        ]
        _log.info("service.started", host=self._host, port=self.port, multiproc_dir=self._dir)

    async def aclose(self) -> None:
        """Stop the tasks, then the server (reverse order of start)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> SupervisorService:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- state

    @property
    def draining(self) -> bool:
        return self._draining

    def load(self, worker: object | None = None) -> float:
        """livekit's `load_fnc`: 1.0 while draining, else `default_load(worker)`.

        livekit (1.5.11 and 1.8.9) inspects the signature: with one parameter it passes the
        AgentServer. It calls from an executor thread; this reads only the drain flag the event
        loop maintains.
        """
        try:
            base = self._default_load(worker)
        except Exception:
            _log.exception("service.load_failed")
            self._metrics.watchdog_error()
            base = _fallback_load()
        return decide_load(self._draining, base)

    async def refresh(self) -> None:
        """Read the counters, record what increased since the last reading, update the gauges."""
        async with self._refresh_lock:
            totals = await asyncio.to_thread(self._read_counters)
            now = self._clock()
            last, self._last = self._last, totals
            if last is not None:
                self._escalations.record(now, _increase(last.escalations, totals.escalations))
                self._stalls.record(
                    now, _increase(sum(last.stalls.values()), sum(totals.stalls.values()))
                )
                for outcome, window in self._recoveries.items():
                    window.record(
                        now,
                        _increase(
                            last.recoveries.get(outcome, 0.0), totals.recoveries.get(outcome, 0.0)
                        ),
                    )
                if totals.escalations > last.escalations:
                    _log.info(
                        "service.escalations",
                        new=int(totals.escalations - last.escalations),
                        in_window=self._escalations.count(now),
                    )
            self._update(now)

    def _read_counters(self) -> Totals:
        # Thread: reads the directory's counter files only, the cheap part of a scrape.
        if self._dir is not None:
            with contextlib.suppress(OSError):
                dead = sweep_dead(self._dir)
                if dead:
                    _log.info("service.dead_processes_swept", pids=dead)
        return read_totals(collect_families(self._registry, self._dir, files="counter_*.db"))

    def _update(self, now: float) -> None:
        count = self._escalations.count(now)
        reason = drain_reason(count, self._threshold, self._escalations.window)
        if (reason is not None) != self._draining:
            _log.warning("service.draining" if reason else "service.drain_ended", escalations=count)
        self._draining = reason is not None
        self._reason = reason
        try:
            self._connected = bool(self._is_connected())
        except Exception:
            _log.exception("service.is_connected_failed")
            self._metrics.watchdog_error()
            self._connected = False
        self._metrics.set_draining(self._draining)
        self._metrics.set_window_escalations(count)
        self._metrics.set_ready(self._connected and not self._draining)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                await self.refresh()
            except Exception:
                _log.exception("service.poll_failed")
                self._metrics.watchdog_error()

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + _HEARTBEAT
            await asyncio.sleep(_HEARTBEAT)
            self._last_beat = loop.time()
            self._lag = max(0.0, self._last_beat - expected)

    # -- handlers

    async def _handle_metrics(self, request: web.Request) -> web.Response:
        body, content_type = await asyncio.to_thread(
            render_metrics, self._registry, self._dir, request.headers.get("Accept", "")
        )
        return web.Response(body=body, headers={"Content-Type": content_type})

    def _loop_state(self) -> tuple[bool, dict[str, Any]]:
        since = asyncio.get_running_loop().time() - self._last_beat
        running = bool(self._tasks) and not self._tasks[0].done()
        reason = loop_health(since, running, self._block_threshold)
        body: dict[str, Any] = {
            "loop_lag_seconds": round(self._lag, 4),
            "since_heartbeat_seconds": round(since, 4),
            "threshold_seconds": self._block_threshold,
        }
        if reason is not None:
            body["reason"] = reason
        return reason is None, body

    async def _handle_healthz(self, request: web.Request) -> web.Response:
        ok, body = self._loop_state()
        body = {"status": "ok" if ok else "unhealthy", **body}
        return web.json_response(body, status=200 if ok else 503)

    async def _handle_readyz(self, request: web.Request) -> web.Response:
        try:
            await self.refresh()
        except Exception:
            _log.exception("service.refresh_failed")
            self._metrics.watchdog_error()
        if not self._connected:
            return web.Response(status=503, text="not connected to LiveKit\n")
        if self._reason is not None:
            return web.Response(status=503, text=self._reason + "\n")
        return web.Response(status=200, text="ready\n")

    async def _handle_status(self, request: web.Request) -> web.Response:
        totals = await asyncio.to_thread(
            lambda: read_totals(collect_families(self._registry, self._dir))
        )
        now = self._clock()
        _, loop = self._loop_state()
        window = self._escalations.window
        body = {
            "ready": self._connected and not self._draining,
            "connected": self._connected,
            "draining": self._draining,
            "reason": self._reason,
            "sessions": {"active": totals.sessions_active, "stalled": totals.sessions_stalled},
            "window": {
                "seconds": window,
                "escalations": self._escalations.count(now),
                "drain_threshold": self._threshold,
                "stalls": self._stalls.count(now),
                "recoveries": {k: w.count(now) for k, w in self._recoveries.items()},
            },
            "totals": {
                "turns": totals.turns,
                "stalls": dict(totals.stalls),
                "recoveries": dict(totals.recoveries),
                "escalations": dict(totals.escalation_reasons),
                "livekit_warnings": totals.livekit_warnings,
                "watchdog_errors": totals.watchdog_errors,
            },
            "loop": loop,
            "versions": {
                "realtime_supervisor": supervisor_version(),
                "livekit_agents": livekit_agents_version(),
            },
            "multiprocess": self._dir is not None,
        }
        return web.Response(
            text=json.dumps(body, indent=2, sort_keys=True) + "\n",
            content_type="application/json",
        )


def _increase(before: float, after: float) -> int:
    """A counter's increase; a drop means the files were reset, so everything after is new."""
    delta = after - before if after >= before else after
    return max(0, round(delta))
