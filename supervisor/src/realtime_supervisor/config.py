"""Typed settings for the watchdog and the worker-side service.

Rules:
1. Both are frozen dataclasses validated on construction; a bad value fails where it is made and
   names the field, and ALL problems are reported at once (`ConfigProblems`).
2. Every number has a ceiling (no value can overflow a deque, a timer or a retry loop), checked
   on construction whatever the source.
3. Floors and contradicting combinations (`_cross_problems`) are checked where a deployment's
   settings come from, the environment (`from_env`), and by `deployment_problems()` for settings
   built in code: a floor is a fact about real networks and callers (a 1 ms reply timeout re-asks
   every healthy turn), while tests and simulations legitimately compress time (the watchdog's
   tests run at 50 ms timeouts, often leaving the other settings at their defaults).
4. The environment is read only by the `from_env` classmethods, through the shared reader
   (`_env`), from a mapping a test can replace; a bad variable fails naming the VARIABLE and what
   it accepts, and an unknown `REALTIME_SUPERVISOR_*` variable fails too (Kubernetes' service
   links excepted).

Adding a setting: one field with `_seconds(...)`/`_count(...)` and its reason in a comment; its
variable (`REALTIME_SUPERVISOR_<FIELD>`), parser and bounds follow from the field. Document it in
docs/configuration.md (a test checks the table lists every variable with its bounds).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Final, Literal, TypeVar

from realtime_supervisor import _env
from realtime_supervisor._env import ConfigProblems, Problem, Variable
from realtime_supervisor.kinds import Rung

__all__ = [
    "BOUNDS",
    "LADDER_RUNGS",
    "LOG_LEVELS",
    "MAX_RECONNECT_SECONDS",
    "Bound",
    "ConfigProblems",
    "ServiceConfig",
    "WatchdogConfig",
]

PREFIX: Final = "REALTIME_SUPERVISOR_"
# the rungs a ladder may be configured with (failover is decided, not configured)
LADDER_RUNGS: Final = tuple(a.value for a in Rung if a is not Rung.FAILOVER)
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_NO_LADDER: Final = "none"
_C = TypeVar("_C")
# The longest one reconnect action may keep the caller in silence, worst case (every attempt
# waiting its recovery_timeout, every backoff at its maximum): a caller hangs up well before.
MAX_RECONNECT_SECONDS: Final = 120.0
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


@dataclass(frozen=True, slots=True)
class Bound:
    """What a number setting accepts: `floor` (deployments) and `ceiling` (always), inclusive."""

    kind: Literal["seconds", "count", "factor"]
    floor: float
    ceiling: float

    def describe(self) -> str:
        if self.kind == "seconds":
            return f"a number of seconds {self.floor:g}..{self.ceiling:g}"
        if self.kind == "factor":
            return f"a factor {self.floor:g}..{self.ceiling:g}"
        return f"an integer {self.floor:g}..{self.ceiling:g}"


def _seconds(default: float, floor: float, ceiling: float) -> Any:
    return field(default=default, metadata={"bound": Bound("seconds", floor, ceiling)})


def _factor(default: float, floor: float, ceiling: float) -> Any:
    return field(default=default, metadata={"bound": Bound("factor", floor, ceiling)})


def _count(default: int, floor: int, ceiling: int) -> Any:
    return field(default=default, metadata={"bound": Bound("count", floor, ceiling)})


# -- field checks (problems name the field) --------------------------------------------------


def _number_problem(name: str, value: object, bound: Bound) -> str | None:
    """What is wrong with `value` at any time scale (type, finite, > 0, ceiling), or None."""
    if bound.kind == "count":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected an integer, got {value!r}"
        if not 1 <= value <= bound.ceiling:
            return f"expected an integer 1..{bound.ceiling:g}, got {_short(value)}"
        return None
    unit = "a number of seconds" if bound.kind == "seconds" else "a factor"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected {unit}, got {value!r}"
    try:
        number = float(value)
    except OverflowError:
        return f"expected {unit}, finite and > 0, got {_short(value)}"
    if not math.isfinite(number) or number <= 0:
        return f"expected {unit}, finite and > 0, got {value!r}"
    if number > bound.ceiling:
        return f"expected {unit} at most {bound.ceiling:g}, got {value!r}"
    return None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:20] + "..."


def _ladder_problem(value: object) -> str | None:
    if isinstance(value, str) or not isinstance(value, tuple | list):
        return f"expected a sequence of rungs from {LADDER_RUNGS}, got {value!r}"
    if len(value) > 10:
        return f"expected at most 10 rungs, got {len(value)}"
    for rung in value:
        if rung not in LADDER_RUNGS:
            return f"unknown ladder rung {rung!r}; accepted: {', '.join(LADDER_RUNGS)}"
    return None


def _bounded_fields(cls: type) -> list[tuple[str, Bound]]:
    return [(f.name, f.metadata["bound"]) for f in fields(cls) if "bound" in f.metadata]


def _check_numbers(obj: object, problems: list[Problem]) -> None:
    """Check every bounded field of `obj`; normalise seconds to float."""
    for name, bound in _bounded_fields(type(obj)):
        value = getattr(obj, name)
        problem = _number_problem(name, value, bound)
        if problem is not None:
            problems.append((name, problem))
        elif bound.kind != "count":
            object.__setattr__(obj, name, float(value))


def _floor_problems_of(cls: Any, values: Mapping[str, object]) -> list[Problem]:
    """Fields of `values` below their floor (rule 3); other problems are the constructor's."""
    problems = [
        (name, f"expected {bound.describe()}; below {bound.floor:g} it breaks real calls")
        for name, bound in _bounded_fields(cls)
        if isinstance(value := values.get(name), int | float)
        and not isinstance(value, bool)
        and 0 < value < bound.floor
    ]
    if values.get("http_port") == 0 and cls is ServiceConfig:
        problems.append(("http_port", "expected an integer 1..65535, got 0"))
    return problems


def _floor_problems(obj: object) -> list[Problem]:
    return _floor_problems_of(type(obj), {f.name: getattr(obj, f.name) for f in fields(obj)})  # type: ignore[arg-type]


def _raise(problems: list[Problem], order: list[str]) -> None:
    if problems:
        rank = {name: i for i, name in enumerate(order)}
        problems.sort(key=lambda p: rank.get(p[0].split("/")[0], len(rank)))
        raise ConfigProblems(problems)


# -- the settings ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchdogConfig:
    """How the watchdog judges silence and how hard it tries to recover it."""

    # On by default: the watchdog only acts on silence, so leaving it on costs nothing when healthy.
    enabled: bool = True
    # Turn end -> first agent audio. Healthy first-audio latency on gpt-realtime is about 0.5-1.5 s;
    # livekit gives up on a reply only after 10 s (5 s on 1.2), and the caller has hung up by then.
    # Floor 1.5 s: below the slowest healthy first audio every clean turn would be re-asked.
    # Ceiling 60 s: a caller does not wait a minute in silence.
    reply_timeout: float = _seconds(5.0, 1.5, 60.0)
    # A hole in an open response's audio. The API streams faster than real time and the output is
    # paced, so seconds without a frame are far beyond network jitter. 3 s, not less: a network
    # hiccup that freezes the socket for ~2.5 s and then resumes is worth waiting for (re-asking
    # restarts the answer from its first word: measured, the whole answer came 0.6 s later than
    # stock's with 2 s), and livekit's false-interruption pause is 2 s (it resumes the reply by
    # itself). A reply that stopped for good is found 1 s later than with 2 s.
    # Floor 0.5 s: the jitter buffer and a slow network hold frames back a few hundred ms.
    audio_gap_timeout: float = _seconds(3.0, 0.5, 30.0)
    # Silence after a livekit warning that means a reply was lost. The warning is itself evidence,
    # so a short grace (enough for a follow-on item to start playing) suffices. Floor 0.2 s: a
    # follow-on item needs that long to reach the output. At most reply_timeout (cross-field).
    warning_grace: float = _seconds(1.0, 0.2, 30.0)
    # Our own reply request -> first agent audio: the same latency as any reply (same floor).
    recovery_timeout: float = _seconds(5.0, 1.5, 60.0)
    # Turn end (or any reply request, ours included) -> the server's response.created. The real
    # API acknowledges in about 0.3 s even when the reply itself is slow (a reasoning model, a
    # slow first audio); nothing by 1 s (three times that) means the request was lost (or the
    # socket is dead). Not learned in most calls: livekit runs each call in its own process, and
    # a process learns only after learned_min_samples turns, so the fixed value is what a caller
    # usually gets; 1 s keeps a lost reply under 2 s of silence. A late acknowledgement costs a
    # re-ask, never a second reply (the API refuses a response while one is open).
    # Floor 0.2 s (a loaded network's round trip), ceiling 30 s.
    ack_timeout: float = _seconds(1.0, 0.2, 30.0)
    # Acknowledged, then no server event of any kind: the reply stopped making progress. Above
    # a slow but healthy first audio (about 4 s of nothing after the response's first events).
    progress_timeout: float = _seconds(5.0, 0.5, 120.0)
    # Restart intensity, as an OTP supervisor's (whose default is 1 in 5 s): 3 recoveries
    # (incidents, each up to a full ladder) a minute; beyond that the session is sick, not unlucky.
    budget_max_recoveries: int = _count(3, 1, 20)
    # Floor 10 s, ceiling one hour; it must hold one stall and its recovery (cross-field).
    budget_window: float = _seconds(60.0, 10.0, 3600.0)
    # livekit retries a dropped socket at most 3 times and then reconnects in a loop (about 10/s
    # against a server that accepts then closes): 5 in 30 s is no longer a network blip.
    storm_reconnects: int = _count(5, 1, 100)
    storm_window: float = _seconds(30.0, 1.0, 3600.0)
    # Cheapest first: a reissue keeps the connection; a reconnect replays the conversation.
    ladder: tuple[str, ...] = ("reissue", "reconnect")
    # livekit's own connection retry count (conn_options.max_retry = 3). Ceiling 10.
    reconnect_attempts: int = _count(3, 1, 10)
    # Waits 0.5, 1, 2 (+ jitter): all attempts fit well inside one recovery timeout's worth.
    # Floor 0.5 s, the first wait: a smaller cap turns the backoff into a tight loop.
    reconnect_backoff_max: float = _seconds(4.0, 0.5, 60.0)
    # Learned thresholds (realtime_supervisor._learned): wait `learned_margin` x the p99 of the
    # deployment's recent healthy latencies, never below `learned_floor` nor above the fixed
    # timeouts above. On by default for the acknowledgement deadline (ack_timeout) only;
    # `learned_reply` also shortens the patient reply_timeout and recovery_timeout from the
    # first-audio latency (off: it would cut a deployment's rare slow but healthy replies). x2
    # over p99: an acknowledgement twice as late as the slowest of a hundred is not jitter. The
    # floor (0.6 s, twice the real API's usual 0.3 s) keeps a fast deployment on a loaded
    # machine from being judged on scheduling noise. 200 turns is a few minutes of one busy
    # worker: recent enough to follow a deployment that slows down, large enough for p99 to be
    # the second slowest; 20 before trusting it (p99 is then the slowest). At most
    # learned_window (cross-field).
    learned_enabled: bool = True
    learned_reply: bool = False
    learned_margin: float = _factor(2.0, 1.0, 10.0)
    learned_floor: float = _seconds(0.6, 0.2, 30.0)
    learned_window: int = _count(200, 20, 10_000)
    learned_min_samples: int = _count(20, 1, 10_000)

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        for name in ("enabled", "learned_enabled", "learned_reply"):
            if not isinstance(getattr(self, name), bool):
                problems.append((name, f"expected a bool, got {getattr(self, name)!r}"))
        _check_numbers(self, problems)
        ladder = _ladder_problem(self.ladder)
        if ladder is not None:
            problems.append(("ladder", ladder))
        else:
            object.__setattr__(self, "ladder", tuple(self.ladder))
        _raise(problems, [f.name for f in fields(self)])

    def _cross_problems(self, bad: frozenset[str] = frozenset()) -> list[Problem]:
        """Combinations that contradict each other (rule 3).

        A check runs only when each field it reads is valid on its own (else it cannot compute).
        """
        problems: list[Problem] = []

        def check(names: tuple[str, ...], ok: Callable[[], bool], why: Callable[[], str]) -> None:
            if not bad.intersection(names) and not ok():
                problems.append(("/".join(names), why()))

        check(
            ("warning_grace", "reply_timeout"),
            lambda: self.warning_grace <= self.reply_timeout,
            lambda: (
                f"warning_grace ({self.warning_grace:g} s) must not exceed reply_timeout "
                f"({self.reply_timeout:g} s): the grace after a lost-reply warning is the "
                "shorter wait, the warning being evidence already"
            ),
        )
        check(
            ("budget_window", "reply_timeout", "recovery_timeout"),
            lambda: self.budget_window >= self.reply_timeout + self.recovery_timeout,
            lambda: (
                f"budget_window ({self.budget_window:g} s) must hold one stall and its "
                f"recovery (reply_timeout + recovery_timeout = "
                f"{self.reply_timeout + self.recovery_timeout:g} s); a shorter window never fills, "
                "so the budget would never stop a recovery loop"
            ),
        )
        check(
            ("learned_min_samples", "learned_window"),
            lambda: self.learned_min_samples <= self.learned_window,
            lambda: (
                f"learned_min_samples ({self.learned_min_samples}) must not exceed learned_window "
                f"({self.learned_window}): the window could never hold enough samples to trust"
            ),
        )
        check(
            ("reconnect_attempts", "reconnect_backoff_max", "recovery_timeout"),
            lambda: self.reconnect_worst_case() <= MAX_RECONNECT_SECONDS,
            lambda: (
                f"one reconnect could keep the caller silent for "
                f"{self.reconnect_worst_case():g} s (reconnect_attempts x recovery_timeout + "
                f"(reconnect_attempts - 1) x reconnect_backoff_max); at most "
                f"{MAX_RECONNECT_SECONDS:g} s is accepted"
            ),
        )
        return problems

    def reconnect_worst_case(self) -> float:
        """Seconds one reconnect action may take: every attempt times out, every wait is maximal."""
        attempts = self.reconnect_attempts
        return attempts * self.recovery_timeout + (attempts - 1) * self.reconnect_backoff_max

    def deployment_problems(self) -> list[Problem]:
        """Fields below their floor and contradicting combinations (rule 3); empty when these
        settings can run real calls."""
        return _floor_problems(self) + self._cross_problems()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WatchdogConfig:
        """Read the REALTIME_SUPERVISOR_* watchdog variables (default: os.environ)."""
        return _from_env(cls, env, WATCHDOG_VARIABLES)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """The worker-side HTTP service (metrics and health) and its draining rule."""

    # Every interface: Prometheus scrapes the pod from another pod.
    http_host: str = "0.0.0.0"
    # 9464 is the port registered for Prometheus exporters (OpenTelemetry's too). 0 picks a free
    # port and is accepted only here, for tests: a scraper could not find it.
    http_port: int = 9464
    # Drain the worker (stop taking jobs) after this many escalations in drain_window: a worker
    # whose sessions keep dying needs replacing; one bad session does not make it so.
    drain_escalations: int = _count(5, 1, 10_000)
    # Floor 10 s (shorter and a drain ends before LiveKit has seen it); ceiling one day.
    drain_window: float = _seconds(300.0, 10.0, 86_400.0)
    # The worker's log format is livekit's CLI's (`start`: JSON lines, `dev`: console), so its
    # lines and ours have one shape; there is no setting of ours to disagree with it.
    log_level: str = "INFO"
    # prometheus-client's multiprocess directory; None when the worker runs jobs in-process.
    multiproc_dir: str | None = None

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        host = _host_problem(self.http_host)
        if host is not None:
            problems.append(("http_host", host))
        port = self.http_port
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            problems.append(("http_port", f"expected an integer 1..65535, got {_short(port)}"))
        _check_numbers(self, problems)
        if not isinstance(self.log_level, str) or self.log_level not in LOG_LEVELS:
            problems.append(
                ("log_level", f"expected one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
            )
        if self.multiproc_dir is not None and (
            not isinstance(self.multiproc_dir, str) or not self.multiproc_dir
        ):
            problems.append(
                ("multiproc_dir", f"expected a directory path or None, got {self.multiproc_dir!r}")
            )
        _raise(problems, [f.name for f in fields(self)])

    def deployment_problems(self) -> list[Problem]:
        """Fields below their floor, and port 0 (a scraper could not find it)."""
        return _floor_problems(self)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceConfig:
        """Read the REALTIME_SUPERVISOR_* service variables and PROMETHEUS_MULTIPROC_DIR."""
        return _from_env(cls, env, SERVICE_VARIABLES)


def _host_problem(host: object) -> str | None:
    if not isinstance(host, str) or not host:
        return f"expected a host name or IP address to listen on, got {host!r}"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if _HOSTNAME.fullmatch(host) is None:
            return f"expected a host name or IP address to listen on, got {host!r}"
    return None


def _from_env(
    cls: Callable[..., _C], env: Mapping[str, str] | None, variables: tuple[Variable, ...]
) -> _C:
    """Read `variables`, refuse unknown ones and values below their floor; one ConfigProblems."""
    source = _env.source_of(env)
    kwargs, problems = _env.read(source, variables)
    problems += _env.unknown(source, PREFIX, _KNOWN)
    to_variable = {var.field: var.name for var in variables}
    floors = _floor_problems_of(cls, kwargs)
    problems += [(to_variable[name], text) for name, text in floors]
    cross: Callable[[_C], list[Problem]] | None = getattr(cls, "_cross_problems", None)
    return _env.construct(cls, kwargs, variables, problems, also=cross)


# -- the variables -------------------------------------------------------------------------------


def _parse_ladder(text: str) -> tuple[str, ...]:
    if text.strip().lower() == _NO_LADDER:
        return ()
    return tuple(part.strip() for part in text.split(","))


def _parse_for(cls: type, name: str) -> Callable[[str], object]:
    bound = next((b for n, b in _bounded_fields(cls) if n == name), None)
    if bound is not None:
        return _env.parse_int if bound.kind == "count" else _env.parse_float
    special: dict[str, Callable[[str], object]] = {
        "enabled": _env.parse_bool,
        "learned_enabled": _env.parse_bool,
        "learned_reply": _env.parse_bool,
        "ladder": _parse_ladder,
        "http_port": _env.parse_int,
        "log_level": _env.parse_upper,
    }
    return special.get(name, _env.parse_str)


def _variables(cls: type, names: Mapping[str, str] | None = None) -> tuple[Variable, ...]:
    names = names or {}
    return tuple(
        Variable(names.get(f.name, PREFIX + f.name.upper()), f.name, _parse_for(cls, f.name))
        for f in fields(cls)
        if f.default is not MISSING
    )


WATCHDOG_VARIABLES: Final = _variables(WatchdogConfig)
SERVICE_VARIABLES: Final = _variables(ServiceConfig, {"multiproc_dir": "PROMETHEUS_MULTIPROC_DIR"})
_KNOWN: Final = frozenset(v.name for v in (*WATCHDOG_VARIABLES, *SERVICE_VARIABLES))
# Every bounded setting by variable (the docs table and the chart's schema follow it).
BOUNDS: Final = {
    var.name: bound
    for cls, variables in ((WatchdogConfig, WATCHDOG_VARIABLES), (ServiceConfig, SERVICE_VARIABLES))
    for var in variables
    for name, bound in _bounded_fields(cls)
    if name == var.field
}
# The old shape (VARIABLE -> (field, parser)), kept for readers such as tests/test_helm.py.
_WATCHDOG_VARIABLES: Final = {v.name: (v.field, v.parse) for v in WATCHDOG_VARIABLES}
_SERVICE_VARIABLES: Final = {
    v.name: (v.field, v.parse) for v in SERVICE_VARIABLES if v.name.startswith(PREFIX)
}
