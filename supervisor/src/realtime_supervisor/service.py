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

Over the house limit (about 700 lines) on purpose: the HTTP handlers, the poll and the drain
rule share one bounded executor, one cache and one lifecycle; the directory work itself lives in
telemetry/multiproc.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Protocol, TypeVar

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, values
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from realtime_supervisor._window import SlidingWindow
from realtime_supervisor.logs import lazy_logger

from .metrics import (
    PREFIX,
    Metrics,
    default_metrics,
    livekit_agents_version,
    supervisor_version,
)
from .telemetry.multiproc import MultiprocDir

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
# Rendered /metrics bodies and the merged directory are shared for this long: a scrape every
# 15 s (the chart's monitors) never sees the cache, a burst of requests shares one render.
CACHE_TTL: Final = 1.0
# A connection has this long to send a request head (idle and slow clients alike): scrapers and
# probes send theirs at once.
IDLE_TIMEOUT: Final = 5.0
# Prometheus, the kubelet's probes and an operator's curl need a handful.
MAX_CONNECTIONS: Final = 64
_R = TypeVar("_R")


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
    registry: Collector | None,
    multiproc_dir: str | None,
    *,
    files: str = "*.db",
    shared: list[Metric] | None = None,
) -> list[Metric]:
    """The families to expose: the directory's (summed per multiprocess mode) and the registry's.

    A family in both is taken from the directory, because:
    - if this process is file-backed (the variable was set before prometheus_client was imported),
      its own values are in the directory already: the registry's copy would count them twice;
    - otherwise the registry's copy holds only this process's in-memory series; for the same
      label set the directory's series is the one the job processes wrote (this process only
      builds those families, e.g. the sessions gauges at 0). Its other series are kept.
    Families only the registry has (lk_agents_* set in memory, ready/draining, process_*) pass.
    `shared` is the directory already merged (`MultiprocDir.families`), to merge it only once.
    """
    if multiproc_dir is None:
        return list(registry.collect()) if registry is not None else []
    merged = MultiprocDir(multiproc_dir).families(files) if shared is None else shared
    by_name: dict[str, Metric] = {m.name: m for m in merged}
    out = list(by_name.values())
    if registry is None:
        return out
    file_backed = _is_file_backed()
    for family in registry.collect():
        mine = by_name.get(family.name)
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
    # the learned-deadline gauge's series (read_learned): what the watchdog waits for now
    learned: tuple[dict[str, Any], ...] = ()


def read_totals(families: Iterable[Metric]) -> Totals:
    """Sum the families of the metrics contract into `Totals`."""
    families = list(families)
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
        learned=tuple(read_learned(families)),
    )


def read_learned(families: Iterable[Metric]) -> list[dict[str, Any]]:
    """What the watchdog currently waits for: the learned-deadline gauge's series, sorted.

    In a multiprocess worker it is the longest wait any live job process uses (the gauge's
    livemax mode); before any session has run there is none.
    """
    out = []
    for family in families:
        if family.name != PREFIX + "learned_deadline_seconds":
            continue
        for s in family.samples:
            out.append(
                {
                    "provider": s.labels.get("provider", ""),
                    "model": s.labels.get("model", ""),
                    "deadline": s.labels.get("deadline", ""),
                    "seconds": round(s.value, 3),
                }
            )
    return sorted(out, key=lambda d: (d["provider"], d["model"], d["deadline"]))


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

    It cannot starve livekit (rules):
    1. Directory work (sweep, fold, merge, render) runs on the service's OWN executor, one thread,
       never on the loop's default executor: livekit runs its load function there before answering
       each job request.
    2. Each kind of work runs once at a time; concurrent requests share the run in flight
       (single flight) and the result for `cache_ttl` seconds: 200 scrapes cost one render.
    3. /status answers from the poll's totals; it never merges the directory itself.
    4. At most `max_connections` connections; a connection that sends no complete request head
       within `idle_timeout` seconds (idle, or half-sent) is closed.
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
        cache_ttl: float = CACHE_TTL,
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if drain_escalations < 1:
            raise ValueError(f"drain_escalations must be >= 1, got {drain_escalations!r}")
        self._host = host
        self._requested_port = port
        self._is_connected = is_connected
        self._dir = None if multiproc_dir is None else os.fspath(multiproc_dir)
        self._files = None if self._dir is None else MultiprocDir(self._dir)
        self._registry: CollectorRegistry = REGISTRY if registry is None else registry
        if metrics is None:
            metrics = default_metrics() if registry is None else Metrics(registry)
        self._metrics = metrics
        self._threshold = drain_escalations
        self._clock = clock
        self._default_load = default_load
        self._poll_interval = poll_interval
        self._block_threshold = loop_block_threshold
        self._cache_ttl = cache_ttl
        self._idle_timeout = idle_timeout
        self._max_connections = max_connections
        self._escalations = EventWindow(drain_window)
        self._stalls = EventWindow(drain_window)
        self._recoveries: dict[str, EventWindow] = {
            "success": EventWindow(drain_window),
            "failure": EventWindow(drain_window),
        }
        self._last: Totals | None = None
        self._shared: tuple[float, list[Metric]] | None = None  # (monotonic, merged directory)
        self._rendered: dict[str, tuple[float, bytes]] = {}  # content type -> (monotonic, body)
        self._in_flight: dict[str, asyncio.Future[Any]] = {}
        self._executor: ThreadPoolExecutor | None = None
        # Read from livekit's executor thread by load(): a bool swap is atomic.
        self._draining = False
        self._reason: str | None = None
        self._connected = False
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_beat = 0.0
        self._lag = 0.0
        self.refused_connections = 0

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
        if self._listener is not None:
            for sock in self._listener.sockets:
                return int(sock.getsockname()[1])
        return self._requested_port

    @property
    def connections(self) -> int:
        """Open HTTP connections."""
        return len(self._runner.server.connections) if self._runner and self._runner.server else 0

    async def start(self) -> None:
        """Read the counters' baseline, bind the HTTP server, start the heartbeat and the poll."""
        if self._runner is not None:
            raise RuntimeError("SupervisorService already started")
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="realtime-supervisor-service")
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
        # keepalive_timeout: aiohttp (3.10+) arms it at connect and closes a connection whose
        # request head has not arrived by then, idle or half-sent alike (rule 4).
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=self._idle_timeout)
        await runner.setup()
        try:
            self._listener = await asyncio.get_running_loop().create_server(
                self._protocol, self._host, self._requested_port, reuse_address=True
            )
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

    def _protocol(self) -> asyncio.BaseProtocol:
        """A connection's protocol: aiohttp's handler, or a refusal beyond the cap (rule 4)."""
        assert self._runner is not None and self._runner.server is not None
        if len(self._runner.server.connections) >= self._max_connections:
            self.refused_connections += 1
            return _Refuse()
        return self._runner.server()

    async def aclose(self) -> None:
        """Stop the tasks, then the server, then the executor (reverse order of start)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

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

    async def _single(self, key: str, work: Callable[[], _R]) -> _R:
        """Run `work` on the service's executor, once at a time per key (rules 1 and 2)."""
        running = self._in_flight.get(key)
        if running is None:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="realtime-supervisor")
            loop = asyncio.get_running_loop()
            running = asyncio.ensure_future(loop.run_in_executor(self._executor, work))
            self._in_flight[key] = running
            running.add_done_callback(lambda _: self._in_flight.pop(key, None))
        # shield: a client that hangs up must not cancel the run the others wait on
        result: _R = await asyncio.shield(running)
        return result

    def _snapshot(self) -> tuple[list[Metric], Totals]:
        # Service thread: fold the dead processes, merge the rest once, sum the totals.
        shared: list[Metric] | None = None
        if self._files is not None:
            try:
                dead = self._files.sweep()
                if dead:
                    _log.info("service.dead_processes_folded", count=len(dead), pids=dead[:20])
                shared = self._files.families()
            except OSError:
                _log.exception("service.directory_unreadable", multiproc_dir=self._dir)
                shared = []
        self._shared = (time.monotonic(), shared or [])
        families = collect_families(self._registry, self._dir, shared=shared)
        return shared or [], read_totals(families)

    async def refresh(self) -> None:
        """Read the counters, record what increased since the last reading, update the gauges."""
        _, totals = await self._single("snapshot", self._snapshot)
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

    def _render(self, accept: str) -> tuple[bytes, str]:
        # Service thread: the directory as merged within cache_ttl (by the poll, say), else now.
        encoder, content_type = choose_encoder(accept)
        shared = self._shared
        if self._dir is not None and (
            shared is None or time.monotonic() - shared[0] > self._cache_ttl
        ):
            shared = (time.monotonic(), self._snapshot()[0])
        families = collect_families(
            self._registry, self._dir, shared=None if shared is None else shared[1]
        )
        body = encoder(_Families(families))
        self._rendered[content_type] = (time.monotonic(), body)
        return body, content_type

    async def _handle_metrics(self, request: web.Request) -> web.Response:
        accept = request.headers.get("Accept", "")
        _, content_type = choose_encoder(accept)
        cached = self._rendered.get(content_type)
        if cached is not None and time.monotonic() - cached[0] <= self._cache_ttl:
            body = cached[1]
        else:
            body, content_type = await self._single(
                "render:" + content_type, lambda: self._render(accept)
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
        # The poll's totals (rule 3): at most poll_interval old, and free to serve.
        totals = self._last or Totals()
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
            # learned thresholds: what the watchdog currently waits for, per deployment
            "learned_deadlines": list(totals.learned),
            "versions": {
                "realtime_supervisor": supervisor_version(),
                "livekit_agents": livekit_agents_version(),
            },
            "multiprocess": self._dir is not None,
            "http": {
                "connections": self.connections,
                "refused_connections": self.refused_connections,
            },
        }
        return web.Response(
            text=json.dumps(body, indent=2, sort_keys=True) + "\n",
            content_type="application/json",
        )


class _Refuse(asyncio.Protocol):
    """A connection beyond the cap: a short 503 and close, before reading anything."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        transport.close()


def _increase(before: float, after: float) -> int:
    """A counter's increase; a drop means the files were reset, so everything after is new."""
    delta = after - before if after >= before else after
    return max(0, round(delta))
