"""The metrics contract, and the metric names and label matchers a PromQL expression reads.

Shared by tests/test_rules.py and tests/test_dashboards.py so that a rule or a panel naming a
metric, label or label value outside the contract fails a test. The contract is copied from the
project's metrics contract; tests cross-check it against supervisor.metrics when that imports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import promql_parser

KIND_STALL = frozenset(
    {"no_reply", "audio_gap", "post_warning_silence", "dead_session", "reconnect_storm"}
)
ACTION = frozenset({"reissue", "reconnect"})
OUTCOME = frozenset({"success", "failure"})
REASON = frozenset({"budget_exhausted", "ladder_exhausted", "dead_session", "reconnect_storm"})
KIND_WARNING = frozenset(
    {
        "multi_message",
        "generation_discarded",
        "reply_timeout",
        "scheduling_stopped",
        "text_with_audio",
        "event_failed",
        "unrecoverable_close",
        "aclose_error",
        "late_response",
        "connection_lost",
    }
)
PM = {"provider": None, "model": None}

# family -> {label: allowed values or None for any}; None = labels not ours to check.
COUNTERS: dict[str, dict[str, frozenset[str] | None]] = {
    "realtime_supervisor_turns_total": dict(PM),
    "realtime_supervisor_stalls_total": {**PM, "kind": KIND_STALL},
    "realtime_supervisor_recoveries_total": {**PM, "action": ACTION, "outcome": OUTCOME},
    "realtime_supervisor_escalations_total": {**PM, "reason": REASON},
    "realtime_supervisor_livekit_warnings_total": {"kind": KIND_WARNING},
    "realtime_supervisor_watchdog_errors_total": {},
}
HISTOGRAMS: dict[str, dict[str, frozenset[str] | None]] = {
    "realtime_supervisor_recovery_seconds": {**PM, "action": ACTION},
    "realtime_supervisor_silence_seconds": {**PM, "kind": KIND_STALL},
    "realtime_supervisor_reply_latency_seconds": dict(PM),
}
GAUGES: dict[str, dict[str, frozenset[str] | None]] = {
    "realtime_supervisor_sessions_active": {},
    "realtime_supervisor_sessions_stalled": {},
    "realtime_supervisor_build_info": {"version": None, "livekit_agents": None},
    "realtime_supervisor_ready": {},
    "realtime_supervisor_draining": {},
    "realtime_supervisor_window_escalations": {},
}
LIVEKIT = ("lk_agents_worker_load", "lk_agents_active_job_count", "lk_agents_child_process_count")
HISTOGRAM_BUCKETS = (0.25, 0.5, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 60)

# Labels Prometheus or Kubernetes service discovery attach to every scraped series (cluster: an
# external label of Thanos, Mimir or federation), and the
# synthetic `up` series.
TARGET_LABELS = frozenset(
    {"cluster", "namespace", "pod", "job", "instance", "container", "service"}
)
SYNTHETIC = {"up": {}}


def contract_series() -> dict[str, dict[str, frozenset[str] | None] | None]:
    """Every series name a query may read (histograms by their exposed suffixes)."""
    names: dict[str, dict[str, frozenset[str] | None] | None] = {}
    names.update(COUNTERS)
    names.update(GAUGES)
    names.update(SYNTHETIC)
    for family, labels in HISTOGRAMS.items():
        names[f"{family}_bucket"] = {**labels, "le": None}
        names[f"{family}_sum"] = dict(labels)
        names[f"{family}_count"] = dict(labels)
    for name in LIVEKIT:
        names[name] = None
    return names


@dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[tuple[str, str, str], ...] = field(default=())  # (label, op, value)


def selectors(expr: str) -> list[Selector]:
    """The vector selectors in a PromQL expression (raises on a parse error)."""
    found: list[Selector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = tuple(
                (m.name, str(m.op).rsplit(".", 1)[-1], m.value) for m in node.matchers.matchers
            )
            name = node.name or next((v for k, _, v in matchers if k == "__name__"), "")
            found.append(Selector(name, tuple(m for m in matchers if m[0] != "__name__")))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def problems(expr: str, recorded: Iterable[str] = ()) -> list[str]:
    """Why an expression reads outside the contract; empty when it does not.

    A name with a colon must be one of `recorded` (recording rules); any other name must be in
    the contract, and equality matchers on contract labels must use contract values.
    """
    contract = contract_series()
    recorded = set(recorded)
    out: list[str] = []
    for sel in selectors(expr):
        if ":" in sel.name:
            if sel.name not in recorded:
                out.append(f"{sel.name}: no such recording rule")
            continue
        if sel.name not in contract:
            out.append(f"{sel.name}: not in the metrics contract")
            continue
        labels = contract[sel.name]
        if labels is None:
            continue
        for label, op, value in sel.matchers:
            if label in TARGET_LABELS:
                continue
            if label not in labels:
                out.append(f"{sel.name}: no label {label!r} in the contract")
                continue
            allowed = labels[label]
            if allowed is not None and op in ("Equal", "NotEqual") and value not in allowed:
                out.append(f"{sel.name}: {label}={value!r} is not a contract value")
    return out


GRAFANA_INTERVAL = re.compile(
    r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}"
)
GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def substitute_grafana(expr: str) -> str:
    """A Grafana query as Prometheus would receive it: intervals 1m, variables `.*`."""
    return GRAFANA_VARIABLE.sub(".*", GRAFANA_INTERVAL.sub("1m", expr))


LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)\s*$")


def variable_selector(query: str) -> str | None:
    """The series selector inside a `label_values(selector, label)` variable query."""
    match = LABEL_VALUES.match(query)
    return match.group("selector") if match else None
