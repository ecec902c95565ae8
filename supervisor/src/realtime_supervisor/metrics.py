"""The metrics contract: Prometheus families, their labels, and multiprocess-safe gauge modes.

Rules (the contract in one place):

1. Names, labels and buckets never change; no room, session or job id is ever a label.
2. Enumerated labels (kind, action, outcome, reason) accept only their listed values; anything else
   is recorded as "other" and counted as a watchdog error. Metrics never raise into the agent.
3. provider and model are free-form, so they are sanitized: lowercase, `[a-z0-9._-]`, 64 chars.
4. A session only ever undoes what it added: `set_stalled` moves the gauge on a change of state,
   `session_ended` takes back this session's share of both gauges.

Multiprocess (livekit runs each job in its own process; PROMETHEUS_MULTIPROC_DIR is set):

- Counters and histograms are summed over every process, dead ones included, which is what a
  counter means. A dead process's counters are folded into one archive file and its files
  removed (`telemetry.multiproc`), so the directory holds the live processes only.
- sessions_active and sessions_stalled are `livesum`: the sum over live processes only. A process
  is live until its files are folded; livekit never calls `mark_process_dead`, so the service
  sweeps dead pids (`sweep_dead`, zombies included), and the worker may call `mark_dead`.
- build_info is `max`: every process writes 1 with the same labels, so there is one series of 1.
- ready, draining and window_escalations belong to the worker's main process alone. They are not
  prometheus_client Gauges but a collector over three numbers (`_WorkerState`), registered like
  any family. A Gauge would be file-backed in every process that builds `Metrics` (each job does),
  so its value would depend on the merge mode: `liveall` shows a 0 series per job process (and an
  alert on `ready == 0` fires for each), `max` hides the main process's 0 behind nothing but works
  only while the main process is itself file-backed; when the worker sets the variable after
  prometheus_client was imported (livekit does, in `run()`), the main process keeps values in
  memory and the job files' zeros would collide with its real value. The collector is read only
  where /metrics is served, the main process, whatever the mode.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Iterable
from typing import Concatenate, Final, ParamSpec

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import mark_process_dead
from prometheus_client.registry import Collector

from realtime_supervisor.telemetry.multiproc import MultiprocDir, pid_alive, prepare_multiproc_dir

__all__ = [
    "ACTIONS",
    "BUCKETS",
    "ESCALATION_REASONS",
    "LEARNED_DEADLINES",
    "OUTCOMES",
    "PREFIX",
    "STALL_KINDS",
    "WARNING_KINDS",
    "Metrics",
    "SessionMetrics",
    "default_metrics",
    "livekit_agents_version",
    "mark_dead",
    "prepare_multiproc_dir",
    "sanitize_label",
    "supervisor_version",
    "sweep_dead",
]

from realtime_supervisor.kinds import (
    Deadline,
    EscalationReason,
    Outcome,
    Rung,
    StallKind,
    WarningKind,
)

_log = logging.getLogger(__name__)

PREFIX: Final = "realtime_supervisor_"
BUCKETS: Final = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 60.0)
# The label values, from the vocabulary (kinds.py): the series pre-created at zero, and the
# bound that keeps an unknown value from making a new series.
STALL_KINDS: Final = tuple(k.value for k in StallKind)
ACTIONS: Final = tuple(a.value for a in Rung)
OUTCOMES: Final = tuple(o.value for o in Outcome)
ESCALATION_REASONS: Final = tuple(r.value for r in EscalationReason)
WARNING_KINDS: Final = tuple(k.value for k in WarningKind)
# the timeout fields a learned threshold can govern (realtime_supervisor._learned.GOVERNS)
LEARNED_DEADLINES: Final = tuple(d.value for d in Deadline)
OTHER: Final = "other"
_MAX_LABEL: Final = 64
_INVALID = re.compile(r"[^a-z0-9._-]")


def sanitize_label(value: object) -> str:
    """A provider or model name as a bounded label value ("unknown" when nothing is left)."""
    text = _INVALID.sub("_", str(value).strip().lower())[:_MAX_LABEL]
    return text or "unknown"


def supervisor_version() -> str:
    """This package's installed version ("0+unknown" when it is not installed)."""
    try:
        return importlib.metadata.version("realtime-supervisor")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def livekit_agents_version() -> str:
    """The installed livekit-agents version ("none" when absent)."""
    try:
        return importlib.metadata.version("livekit-agents")
    except importlib.metadata.PackageNotFoundError:
        return "none"


class _WorkerState(Collector):
    """ready, draining and window_escalations: the main process's numbers, read at scrape."""

    def __init__(self) -> None:
        self.ready = 0.0
        self.draining = 0.0
        self.window_escalations = 0.0

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            PREFIX + "ready",
            "1 when the worker is connected to LiveKit and not draining (worker main process)",
            value=self.ready,
        )
        yield GaugeMetricFamily(
            PREFIX + "draining",
            "1 while the worker drains after too many escalations (worker main process)",
            value=self.draining,
        )
        yield GaugeMetricFamily(
            PREFIX + "window_escalations",
            "Escalations counted in the drain window (worker main process)",
            value=self.window_escalations,
        )

    def describe(self) -> Iterable[Metric]:
        return self.collect()


class Metrics:
    """Every family of the contract, on one registry (prometheus_client's REGISTRY by default).

    One instance per registry: prometheus_client refuses a second registration of the same names.
    In a process that may already have one on REGISTRY, use `default_metrics()`.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        global _default
        reg = REGISTRY if registry is None else registry
        self.registry = reg
        pm = ("provider", "model")
        self.turns = Counter(PREFIX + "turns", "User turns observed", pm, registry=reg)
        self.stalls = Counter(
            PREFIX + "stalls", "Stalls detected, by kind", (*pm, "kind"), registry=reg
        )
        self.recoveries = Counter(
            PREFIX + "recoveries",
            "Recovery actions finished, by action and outcome",
            (*pm, "action", "outcome"),
            registry=reg,
        )
        self.escalations = Counter(
            PREFIX + "escalations",
            "Stalls the watchdog gave up on, by reason",
            (*pm, "reason"),
            registry=reg,
        )
        self.recovery_seconds = Histogram(
            PREFIX + "recovery_seconds",
            "From stall detected to the first agent audio after it",
            ("action", *pm),
            buckets=BUCKETS,
            registry=reg,
        )
        self.silence_seconds = Histogram(
            PREFIX + "silence_seconds",
            "From when the agent should have spoken to when it did, per stall",
            ("kind", *pm),
            buckets=BUCKETS,
            registry=reg,
        )
        self.reply_latency_seconds = Histogram(
            PREFIX + "reply_latency_seconds",
            "From the end of a user turn to the first agent audio, every turn",
            pm,
            buckets=BUCKETS,
            registry=reg,
        )
        self.sessions_active = Gauge(
            PREFIX + "sessions_active",
            "Sessions being watched",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.sessions_stalled = Gauge(
            PREFIX + "sessions_stalled",
            "Watched sessions currently stalled",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.livekit_warnings = Counter(
            PREFIX + "livekit_warnings",
            "livekit log records that mean a reply was lost, by kind",
            ("kind",),
            registry=reg,
        )
        self.watchdog_errors = Counter(
            PREFIX + "watchdog_errors", "Errors the watchdog contained", registry=reg
        )
        # What the watchdog currently waits for, per deployment and timeout field (learned
        # thresholds). livemax: each job process learns on its own; the longest wait any live
        # process uses is the one a dashboard must show (a dead process's value vanishes).
        self.learned_deadline_seconds = Gauge(
            PREFIX + "learned_deadline_seconds",
            "The deadline the watchdog currently uses, learned from healthy turns (or the fixed "
            "timeout while it is still learning), by timeout field",
            (*pm, "deadline"),
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.build_info = Gauge(
            PREFIX + "build_info",
            "Versions of realtime-supervisor and livekit-agents; always 1",
            ("version", "livekit_agents"),
            registry=reg,
            multiprocess_mode="max",
        )
        self.build_info.labels(supervisor_version(), livekit_agents_version()).set(1)
        self._worker = _WorkerState()
        reg.register(self._worker)
        # Series that exist from the start make `increase()` see the first event: a series born
        # at 1 has no earlier sample to increase from.
        for kind in WARNING_KINDS:
            self.livekit_warnings.labels(kind)
        if reg is REGISTRY and _default is None:
            _default = self

    def session(self, provider: str, model: str) -> SessionMetrics:
        """The recorder for one session (label values sanitized)."""
        return SessionMetrics(self, sanitize_label(provider), sanitize_label(model))

    def watchdog_error(self) -> None:
        """Count an error some supervisor code contained."""
        self.watchdog_errors.inc()

    def set_ready(self, ready: bool) -> None:
        """Worker main process: connected to LiveKit and not draining."""
        self._worker.ready = 1.0 if ready else 0.0

    def set_draining(self, draining: bool) -> None:
        """Worker main process: draining after too many escalations."""
        self._worker.draining = 1.0 if draining else 0.0

    def set_window_escalations(self, n: int) -> None:
        """Worker main process: escalations in the drain window."""
        self._worker.window_escalations = float(n)

    def bounded(self, value: str, allowed: tuple[str, ...], label: str) -> str:
        """`value` if it is one of `allowed`, else "other" (logged and counted as an error)."""
        if value in allowed:
            return value
        _log.warning("unknown %s label value %r recorded as %r", label, value, OTHER)
        self.watchdog_errors.inc()
        return OTHER


_default: Metrics | None = None
_default_lock = threading.Lock()


def default_metrics() -> Metrics:
    """The process's `Metrics` on REGISTRY, created on first use (or the first one built there)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Metrics()
        return _default


_P = ParamSpec("_P")


def _contained(
    method: Callable[Concatenate[SessionMetrics, _P], None],
) -> Callable[Concatenate[SessionMetrics, _P], None]:
    """Metrics must never break the agent: log, count, and carry on."""

    @functools.wraps(method)
    def wrapper(self: SessionMetrics, /, *args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            method(self, *args, **kwargs)
        except Exception:
            _log.exception("recording metric %s failed", method.__name__)
            # The counter itself broken: already logged above.
            with contextlib.suppress(Exception):
                self._m.watchdog_errors.inc()

    return wrapper


class SessionMetrics:
    """What one session records; every method is safe to call from livekit's callbacks."""

    def __init__(self, metrics: Metrics, provider: str, model: str) -> None:
        self._m = metrics
        self.provider = provider
        self.model = model
        self._active = False
        self._stalled = False
        self._turns = metrics.turns.labels(provider, model)
        self._latency = metrics.reply_latency_seconds.labels(provider, model)
        for kind in STALL_KINDS:
            metrics.stalls.labels(provider, model, kind)
            # provider/model on the histograms too, so dashboards can filter them.
            metrics.silence_seconds.labels(kind, provider, model)
        for action in ACTIONS:
            metrics.recovery_seconds.labels(action, provider, model)
            for outcome in OUTCOMES:
                metrics.recoveries.labels(provider, model, action, outcome)
        for reason in ESCALATION_REASONS:
            metrics.escalations.labels(provider, model, reason)

    def _seconds(self, seconds: float) -> float | None:
        if math.isfinite(seconds) and seconds >= 0:
            return float(seconds)
        _log.warning("invalid duration %r not recorded", seconds)
        self._m.watchdog_errors.inc()
        return None

    @_contained
    def turn(self) -> None:
        self._turns.inc()

    @_contained
    def stall(self, kind: str) -> None:
        kind = self._m.bounded(kind, STALL_KINDS, "kind")
        self._m.stalls.labels(self.provider, self.model, kind).inc()

    @_contained
    def recovery(self, action: str, outcome: str, seconds: float | None) -> None:
        action = self._m.bounded(action, ACTIONS, "action")
        outcome = self._m.bounded(outcome, OUTCOMES, "outcome")
        self._m.recoveries.labels(self.provider, self.model, action, outcome).inc()
        if seconds is not None and (value := self._seconds(seconds)) is not None:
            self._m.recovery_seconds.labels(action, self.provider, self.model).observe(value)

    @_contained
    def escalation(self, reason: str) -> None:
        reason = self._m.bounded(reason, ESCALATION_REASONS, "reason")
        self._m.escalations.labels(self.provider, self.model, reason).inc()

    @_contained
    def silence(self, kind: str, seconds: float) -> None:
        kind = self._m.bounded(kind, STALL_KINDS, "kind")
        if (value := self._seconds(seconds)) is not None:
            self._m.silence_seconds.labels(kind, self.provider, self.model).observe(value)

    @_contained
    def reply_latency(self, seconds: float) -> None:
        if (value := self._seconds(seconds)) is not None:
            self._latency.observe(value)

    @_contained
    def livekit_warning(self, kind: str) -> None:
        kind = self._m.bounded(kind, WARNING_KINDS, "kind")
        self._m.livekit_warnings.labels(kind).inc()

    @_contained
    def watchdog_error(self) -> None:
        self._m.watchdog_errors.inc()

    @_contained
    def learned_deadline(self, deadline: str, seconds: float) -> None:
        """The deadline the watchdog now uses for the timeout field `deadline`."""
        deadline = self._m.bounded(deadline, LEARNED_DEADLINES, "deadline")
        if (value := self._seconds(seconds)) is not None:
            self._m.learned_deadline_seconds.labels(self.provider, self.model, deadline).set(value)

    @_contained
    def session_started(self) -> None:
        if not self._active:
            self._active = True
            self._m.sessions_active.inc()

    @_contained
    def session_ended(self) -> None:
        if self._stalled:
            self._stalled = False
            self._m.sessions_stalled.dec()
        if self._active:
            self._active = False
            self._m.sessions_active.dec()

    @_contained
    def set_stalled(self, stalled: bool) -> None:
        if stalled == self._stalled:
            return
        self._stalled = stalled
        if stalled:
            self._m.sessions_stalled.inc()
        else:
            self._m.sessions_stalled.dec()


# -- multiprocess directory (realtime_supervisor.telemetry.multiproc) ---------------------------


def mark_dead(pid: int, path: str | os.PathLike[str] | None = None) -> None:
    """Drop a finished process from the live gauges (prometheus_client's mark_process_dead)."""
    mark_process_dead(pid, None if path is None else os.fspath(path))  # type: ignore[no-untyped-call]


def sweep_dead(
    path: str | os.PathLike[str], *, alive: Callable[[int], bool] = pid_alive
) -> list[int]:
    """Fold every process that has files but no longer runs (zombies included); their pids.

    livekit never calls mark_process_dead, so a job process that crashed before its sessions ended
    would keep them in sessions_active forever, and every finished job's files would stay. Job
    processes are the worker's children, in the same pid namespace, so "no such pid" is reliable.
    See `telemetry.multiproc` for the fold (counters kept exact in one archive).
    """
    return MultiprocDir(path, alive=alive).sweep()
