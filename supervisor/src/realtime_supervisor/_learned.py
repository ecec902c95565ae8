"""Learned thresholds: each process learns its deployment's healthy latencies and waits for them.

Rule 1: Pure. Nothing here reads the clock, sleeps, logs or calls out: samples come in with their
        seconds measured by the caller, deadlines go out as numbers.
Rule 2: A latency is learned per (provider, model) in a bounded window: a ring of the most recent
        `learned_window` healthy samples, kept sorted beside the ring. Memory is O(window) per
        deployment; a sample is a bisect and a C-level insert/remove (no re-sort), a quantile an
        index: a turn's samples and the deadlines read at every arming cost microseconds.
Rule 3: A deadline is `learned_margin` times the window's p99 (nearest rank), never below
        `learned_floor` and never above the configured fixed timeout. Learning only ever shortens
        a wait the operator configured; it cannot make the watchdog less patient than configured.
Rule 4: Cold start uses the fixed value: until `learned_min_samples` healthy samples are in the
        window, a deadline is the configured timeout.
Rule 5: Only healthy turns teach. A turn is a sample when the caller heard the agent without any
        stall in between; a turn the caller talked over, a turn with a tool call (its latency is
        the tool's, not the model's) or a turn whose reply the watchdog had to recover is not.

What is learned (`LATENCIES`), and which timeout field each governs (`GOVERNS`):
- `ack`: turn end (or the watchdog's own request) to the server's first acknowledgement of it
  (`response.created`): no_reply's acknowledgement deadline (`ack_timeout`). Applied whenever
  learning is enabled: however slow a healthy reply is, its acknowledgement is prompt, so a
  margin above the deployment's own p99 cuts only lost requests.
- `first_audio`: turn end to the first agent audio: the patient no_reply deadline
  (`reply_timeout`) and the re-issue's (`recovery_timeout`). Applied only with `learned_reply`:
  those deadlines are the patience left for a reply that is acknowledged and progressing but
  silent (a reasoning model, a tool's preamble, a slow first audio), and a deployment's p99 over
  its common fast turns would cut its rare slow healthy ones (one in a hundred is then
  interrupted, the opposite of "never act on a slow but healthy reply"). Learned and shown
  either way, so an operator can see what it would be before turning it on.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from realtime_supervisor._detector import Finding, Heard, ReplyExpected, Stall
from realtime_supervisor._observations import (
    Observation,
    ResponseCreated,
    ToolCallStarted,
    TurnDeclined,
    UserSpeechStarted,
)
from realtime_supervisor.config import WatchdogConfig
from realtime_supervisor.kinds import Deadline

__all__ = [
    "GOVERNS",
    "LATENCIES",
    "LearnedDeadline",
    "Learner",
    "QuantileWindow",
    "SessionLearning",
    "TurnSampler",
    "default_learner",
]

LATENCIES = ("ack", "first_audio")
# timeout field -> the latency that bounds it. A field the config does not have is skipped, so a
# detector without an acknowledgement deadline simply never asks for `ack_timeout`.
GOVERNS: Mapping[str, str] = {
    Deadline.ACK_TIMEOUT: "ack",
    Deadline.REPLY_TIMEOUT: "first_audio",
    Deadline.RECOVERY_TIMEOUT: "first_audio",
}
P99 = 0.99


class QuantileWindow:
    """The most recent `size` samples; nearest-rank quantiles over them."""

    __slots__ = ("_ring", "_sorted")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"window size must be >= 1, got {size}")
        self._ring: deque[float] = deque(maxlen=size)
        self._sorted: list[float] = []  # the ring's samples, in order (Rule 2)

    def __len__(self) -> int:
        return len(self._ring)

    def add(self, value: float) -> None:
        if not math.isfinite(value) or value < 0:
            return  # a clock that went backwards or a broken measure teaches nothing
        ring, ordered = self._ring, self._sorted
        if len(ring) == ring.maxlen:
            del ordered[bisect.bisect_left(ordered, ring[0])]  # the sample the ring drops
        ring.append(value)
        bisect.insort(ordered, value)

    def quantile(self, q: float) -> float | None:
        """Nearest-rank quantile (the bench's rule); None when empty."""
        ordered = self._sorted
        if not ordered:
            return None
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class LearnedDeadline:
    """One deadline as the watchdog currently uses it (for /status and the gauge)."""

    provider: str
    model: str
    deadline: str  # the timeout field, e.g. "reply_timeout"
    latency: str  # what is learned for it, e.g. "first_audio"
    seconds: float  # what the watchdog waits for now
    fixed: float  # the configured timeout (the ceiling, and the cold-start value)
    p99: float | None
    samples: int
    learned: bool  # warm and enabled: `seconds` comes from the samples


class Learner:
    """Healthy latencies of every (provider, model) this process has served; see module rules."""

    def __init__(self, config: WatchdogConfig) -> None:
        self._config = config
        self._windows: dict[tuple[str, str, str], QuantileWindow] = {}

    @property
    def config(self) -> WatchdogConfig:
        return self._config

    def record(self, provider: str, model: str, latency: str, seconds: float) -> None:
        """One healthy sample of `latency` (one of LATENCIES)."""
        if latency not in LATENCIES:
            raise ValueError(f"unknown latency {latency!r}; accepted: {', '.join(LATENCIES)}")
        key = (provider, model, latency)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = QuantileWindow(self._config.learned_window)
        window.add(seconds)

    def deadline(self, provider: str, model: str, field: str, fixed: float) -> float:
        """The timeout to use for `field` whose configured value is `fixed` (Rules 3 and 4)."""
        latency = GOVERNS.get(field)
        if latency is None or not self._applied(latency):
            return fixed
        window = self._windows.get((provider, model, latency))
        if window is None or len(window) < self._config.learned_min_samples:
            return fixed
        p99 = window.quantile(P99)
        assert p99 is not None  # the window is not empty
        return min(fixed, max(self._config.learned_floor, p99 * self._config.learned_margin))

    def _applied(self, latency: str) -> bool:
        config = self._config
        return config.learned_enabled and (latency == "ack" or config.learned_reply)

    def snapshot(self, fields: Mapping[str, float] | None = None) -> list[LearnedDeadline]:
        """Every learned deadline of every deployment seen, sorted; `fields` defaults to the
        config's timeouts that a latency governs."""
        if fields is None:
            fields = self._fields()
        deployments = sorted({(p, m) for p, m, _ in self._windows})
        return [
            self._entry(provider, model, field, fixed)
            for provider, model in deployments
            for field, fixed in sorted(fields.items())
        ]

    def deadlines(self, provider: str, model: str, latency: str) -> list[LearnedDeadline]:
        """The deadlines `latency` governs for one deployment (what a new sample of it moved)."""
        return [
            self._entry(provider, model, field, fixed)
            for field, fixed in sorted(self._fields().items())
            if GOVERNS[field] == latency
        ]

    def _fields(self) -> dict[str, float]:
        return {f: float(getattr(self._config, f)) for f in GOVERNS if _has(self._config, f)}

    def _entry(self, provider: str, model: str, field: str, fixed: float) -> LearnedDeadline:
        latency = GOVERNS[field]
        window = self._windows.get((provider, model, latency))
        samples = len(window) if window is not None else 0
        return LearnedDeadline(
            provider=provider,
            model=model,
            deadline=field,
            latency=latency,
            seconds=self.deadline(provider, model, field, fixed),
            fixed=fixed,
            p99=window.quantile(P99) if window is not None else None,
            samples=samples,
            learned=self._applied(latency) and samples >= self._config.learned_min_samples,
        )


def _has(config: WatchdogConfig, field: str) -> bool:
    return hasattr(config, field)


class SessionLearning:
    """A session's view of the learner: its deployment bound, timeouts resolved through it.

    `on_change` (the metrics gauge) is called with the deadlines after a sample changed them.
    """

    def __init__(
        self,
        learner: Learner,
        provider: str,
        model: str,
        on_change: Callable[[list[LearnedDeadline]], None] | None = None,
        config: WatchdogConfig | None = None,
    ) -> None:
        self._learner = learner
        self.provider = provider
        self.model = model
        self._on_change = on_change
        # the session's own fixed timeouts (the learner may serve sessions configured otherwise)
        self._config = config if config is not None else learner.config

    def timeout(self, field: str) -> float:
        """The timeout the detector arms for `field` (the config's value, or the learned one)."""
        fixed = float(getattr(self._config, field))
        return self._learner.deadline(self.provider, self.model, field, fixed)

    def record(self, latency: str, seconds: float) -> None:
        self._learner.record(self.provider, self.model, latency, seconds)
        if self._on_change is not None:
            self._on_change(self._learner.deadlines(self.provider, self.model, latency))


class TurnSampler:
    """Follows one session's turns and teaches the learner the healthy ones (Rule 5).

    Fed by the watchdog: every observation (`observe`) and every detector finding (`finding`),
    each with its time. A turn starts at its ReplyExpected; its acknowledgement is the first
    ResponseCreated after that; it is committed when its first audio is Heard with no stall.
    """

    __slots__ = ("_acked_at", "_learning", "_since", "_tainted")

    def __init__(self, learning: SessionLearning) -> None:
        self._learning = learning
        self._since: float | None = None
        self._acked_at: float | None = None
        self._tainted = False

    def observe(self, obs: Observation, at: float) -> None:
        if self._since is None:
            return
        if isinstance(obs, ResponseCreated):
            if self._acked_at is None:
                self._acked_at = at
        elif isinstance(obs, ToolCallStarted | UserSpeechStarted | TurnDeclined):
            self._tainted = True

    def finding(self, finding: Finding) -> None:
        if isinstance(finding, ReplyExpected):
            self._since, self._acked_at, self._tainted = finding.since, None, False
        elif isinstance(finding, Stall):
            self._tainted = True
        elif isinstance(finding, Heard):
            since, acked, tainted = self._since, self._acked_at, self._tainted
            self._since, self._acked_at, self._tainted = None, None, False
            if since is None or tainted or finding.stall is not None or finding.latency is None:
                return
            if acked is not None:
                self._learning.record("ack", acked - since)
            self._learning.record("first_audio", finding.latency)


_learners: dict[tuple[object, ...], Learner] = {}


def default_learner(config: WatchdogConfig) -> Learner:
    """The process's learner for `config`'s learning settings, created on first use.

    One per process (and settings): sessions of one deployment in one job process teach each
    other; a session configured otherwise learns apart.
    """
    key = tuple(
        getattr(config, f)
        for f in (
            "learned_enabled",
            "learned_reply",
            "learned_margin",
            "learned_floor",
            "learned_window",
            "learned_min_samples",
        )
    )
    learner = _learners.get(key)
    if learner is None:
        learner = _learners[key] = Learner(config)
    return learner
