"""The Prometheus rules, generated from parameters the way monitoring mixins are.

    python dashboards/rules.py           # writes dashboards/rules.yaml (the default parameters)
    python dashboards/rules.py --check   # exits 1 when rules.yaml is stale

One generator, two outputs. `render(params)` gives concrete rules for a parameter set (the
committed rules.yaml uses DEFAULTS; tests render scoped variants). `render_template()` gives the
same rules as a Go template over the parameters, which the Helm chart renders with its
`prometheusRule` values (scripts/sync-chart-files.py writes it into the chart): the chart passes
parameters, it never rewrites PromQL.

Parameters (the chart's `prometheusRule` values have the same names):
- selector: label matchers every raw series is read through (e.g. `job="voice"`), so each rule
  set reads only its own targets;
- scope: a label value put on every recorded series (`rules_scope`) and required by every alert,
  so two rule sets in one Prometheus never read each other's records ("" = no scope label);
- aggregationLabels: labels kept besides provider/model (namespace; add cluster for Thanos/Mimir);
- runbookBaseUrl, grafanaUrl: runbook_url and dashboard_url annotations;
- stallObjective, minTurnRate, minRecoveries: the stall-ratio SLO and the minimum volumes;
- alerts: per alert `enabled`, extra `labels`, and per severity (warning, critical) a threshold
  and a `for`. One alert name per condition: the severities share it, so Alertmanager's usual
  inhibition (equal: [namespace, alertname]) silences the warning while the critical fires.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "rules.yaml"
LEVEL = "namespace_provider_model"
# Multi-window, multi-burn-rate pairs (Google SRE workbook, chapter 5): (long, short, factor).
BURN = {
    "critical": (("1h", "5m", 14.4), ("6h", "30m", 6)),
    "warning": (("1d", "2h", 3), ("3d", "6h", 1)),
}
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def _alert(
    warning: dict[str, Any] | None, critical: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An alert's parameters: on, no extra labels, and per severity threshold and `for`."""
    return {"enabled": True, "labels": {}, "warning": warning, "critical": critical}


# The chart's prometheusRule values hold the same keys and defaults (tests/test_helm_monitoring.py).
DEFAULTS: dict[str, Any] = {
    "selector": 'job="realtime-supervisor"',
    "scope": "",
    "aggregationLabels": ["namespace"],
    "runbookBaseUrl": (
        "https://github.com/realtime-supervisor/realtime-supervisor/blob/main/dashboards/runbooks.md"
    ),
    "grafanaUrl": "",
    # One turn in 100 may stall: the error budget the burn-rate alerts spend.
    "stallObjective": 0.99,
    # About 6 turns in 5 minutes: one unlucky turn on an idle deployment does not page.
    "minTurnRate": 0.02,
    # A p95 or a failure share over fewer recoveries is noise.
    "minRecoveries": 5,
    "alerts": {
        "RealtimeSupervisorStallBudgetBurn": _alert({"for": "15m"}, {"for": "2m"}),
        # Attempts fail by design before the ladder's next rung succeeds: alert when most do.
        "RealtimeSupervisorRecoveryFailing": _alert(
            {"threshold": 0.5, "for": "10m"}, {"threshold": 0.8, "for": "10m"}
        ),
        # 8 s p95 means callers wait 13 s or more in silence (detection plus recovery).
        "RealtimeSupervisorRecoveryTimeHigh": _alert(
            {"threshold": 8, "for": "10m"}, {"threshold": 15, "for": "10m"}
        ),
        # Rare events that each hurt a caller: any one is worth a look, many are a page.
        "RealtimeSupervisorEscalations": _alert(
            {"threshold": 0, "for": "2m"}, {"threshold": 10, "for": "2m"}
        ),
        "RealtimeSupervisorReconnectStorm": _alert({"threshold": 0, "for": "2m"}),
        "RealtimeSupervisorWatchdogErrors": _alert({"threshold": 0, "for": "2m"}),
        "RealtimeSupervisorWorkerDrainingTooLong": _alert({"for": "15m"}),
        # livekit stops dispatching to a worker at 0.7: every worker there means no capacity.
        "RealtimeSupervisorWorkerFull": _alert(
            {"threshold": 0.7, "for": "5m"}, {"threshold": 0.95, "for": "5m"}
        ),
        "RealtimeSupervisorMetricsAbsent": _alert({"for": "10m"}),
        "RealtimeSupervisorMetricsMissingFromTarget": _alert({"for": "10m"}),
    },
}


def params(**overrides: Any) -> dict[str, Any]:
    """DEFAULTS with top-level overrides (alerts merged per alert and key)."""
    out = copy.deepcopy(DEFAULTS)
    for key, value in overrides.items():
        if key == "alerts":
            for name, changes in value.items():
                out["alerts"][name].update(changes)
        else:
            out[key] = value
    return out


class Literal:
    """Writes the rules for one concrete parameter set."""

    def __init__(self, p: dict[str, Any]) -> None:
        self.p = p

    def sel(self, *fixed: str) -> str:
        return "{" + ", ".join(m for m in (*fixed, self.p["selector"]) if m) + "}"

    def scoped(self) -> str:
        return f'{{rules_scope="{self.p["scope"]}"}}' if self.p["scope"] else ""

    def by(self, *extra: str) -> str:
        return ", ".join([*self.p["aggregationLabels"], *extra])

    def value(self, *path: str) -> str:
        node: Any = self.p
        for key in path:
            if node is None:
                return ""  # a severity switched off: its alert is not written
            node = node[key]
        return _number(node) if isinstance(node, (int, float)) else str(node)

    def text(self, text: str) -> str:
        return text

    def scope_labels(self, indent: str) -> list[str]:
        return [f"{indent}labels:", f"{indent}  rules_scope: {self.p['scope']}"] * (
            1 if self.p["scope"] else 0
        )

    def alert(self, name: str, severity: str, body: Callable[[], list[str]]) -> list[str]:
        spec = self.p["alerts"][name]
        if not spec["enabled"] or spec.get(severity) is None:
            return []
        return body()

    def extra_labels(self, name: str, indent: str) -> list[str]:
        labels = self.p["alerts"][name]["labels"]
        return [f"{indent}{k}: {_quote(v)}" for k, v in sorted(labels.items())]

    def runbook(self, name: str) -> str:
        return f"{self.p['runbookBaseUrl']}#{name.lower()}"

    def dashboard(self, indent: str, query: str) -> list[str]:
        if not self.p["grafanaUrl"]:
            return []
        url = f"{self.p['grafanaUrl']}/d/realtime-supervisor" + (f"?{query}" if query else "")
        return [f"{indent}dashboard_url: {_quote(url)}"]


class Template(Literal):
    """Writes the rules as a Go template over the parameters (the chart's `tpl` context `.`)."""

    def __init__(self) -> None:
        super().__init__(DEFAULTS)

    def sel(self, *fixed: str) -> str:
        if not fixed:
            return '{{ printf "{%s}" .selector }}'
        return "{" + ", ".join(fixed) + "{{ with .selector }}, {{ . }}{{ end }}}"

    def scoped(self) -> str:
        return '{{ with .scope }}{rules_scope="{{ . }}"}{{ end }}'

    def by(self, *extra: str) -> str:
        return '{{ join ", " .aggregationLabels }}' + "".join(f", {e}" for e in extra)

    def value(self, *path: str) -> str:
        return "{{ ." + ".".join(path) + " }}"

    def text(self, text: str) -> str:
        # Prometheus's own {{ $labels.x }} must reach the PrometheusRule unrendered.
        return text.replace("{{", "\x00").replace("}}", "{{`}}`}}").replace("\x00", "{{`{{`}}")

    def scope_labels(self, indent: str) -> list[str]:
        return [
            "{{- with .scope }}",
            f"{indent}labels:",
            f"{indent}  rules_scope: {{{{ . | quote }}}}",
            "{{- end }}",
        ]

    def alert(self, name: str, severity: str, body: Callable[[], list[str]]) -> list[str]:
        a = f".alerts.{name}"
        return [f"{{{{- if and {a}.enabled {a}.{severity} }}}}", *body(), "{{- end }}"]

    def extra_labels(self, name: str, indent: str) -> list[str]:
        return [
            f"{{{{- range $k, $v := .alerts.{name}.labels }}}}",
            f"{indent}{{{{ $k }}}}: {{{{ $v | quote }}}}",
            "{{- end }}",
        ]

    def runbook(self, name: str) -> str:
        return f"{{{{ .runbookBaseUrl }}}}#{name.lower()}"

    def dashboard(self, indent: str, query: str) -> list[str]:
        url = "{{ . }}/d/realtime-supervisor" + (f"?{self.text(query)}" if query else "")
        return ["{{- with .grafanaUrl }}", f'{indent}dashboard_url: "{url}"', "{{- end }}"]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _record(r: Literal, name: str, expr: str) -> list[str]:
    return [
        f"      - record: {name}",
        "        expr: >-",
        *_block(expr, 10),
        *r.scope_labels("        "),
    ]


def _block(text: str, indent: int) -> list[str]:
    return [" " * indent + line if line else "" for line in text.strip("\n").split("\n")]


def _recording(r: Literal) -> Iterator[str]:
    agg = r.by("provider", "model")
    for w in WINDOWS:
        turns = f"{LEVEL}:realtime_supervisor_turns:rate{w}"
        stalls = f"{LEVEL}:realtime_supervisor_stalls:rate{w}"
        yield from _record(
            r, turns, f"sum by ({agg}) (rate(realtime_supervisor_turns_total{r.sel()}[{w}]))"
        )
        # reconnect_storm is counted on top of the turn stalls that caused the reconnects.
        sel = r.sel('kind!="reconnect_storm"')
        yield from _record(
            r, stalls, f"sum by ({agg}) (rate(realtime_supervisor_stalls_total{sel}[{w}]))"
        )
        # 0 (not absent) with turns but no stalls, absent without turns (no division by zero).
        yield from _record(
            r,
            f"{LEVEL}:realtime_supervisor_stall_ratio:rate{w}",
            f"({stalls}{r.scoped()} or {turns}{r.scoped()} * 0)\n/ ({turns}{r.scoped()} > 0)",
        )
    for w in ("5m", "30m"):
        recoveries = f"{LEVEL}:realtime_supervisor_recoveries:rate{w}"
        yield from _record(
            r,
            recoveries,
            f"sum by ({agg}) (rate(realtime_supervisor_recoveries_total{r.sel()}[{w}]))",
        )
        failed = r.sel('outcome="failure"')
        yield from _record(
            r,
            f"{LEVEL}:realtime_supervisor_recovery_failure_ratio:rate{w}",
            f"(sum by ({agg}) (rate(realtime_supervisor_recoveries_total{failed}[{w}]))\n"
            f"or {recoveries}{r.scoped()} * 0)\n/ ({recoveries}{r.scoped()} > 0)",
        )
    yield from _record(
        r,
        f"{LEVEL}_action:realtime_supervisor_recovery_seconds:p95_30m",
        f"histogram_quantile(0.95, sum by ({r.by('provider', 'model', 'action', 'le')})\n"
        f"(rate(realtime_supervisor_recovery_seconds_bucket{r.sel()}[30m])))",
    )


def _alert(
    r: Literal,
    name: str,
    severity: str,
    expr: str,
    summary: str,
    description: str,
    dashboard_query: str = "var-namespace={{ $labels.namespace }}",
) -> list[str]:
    def body() -> list[str]:
        lines = [
            f"      - alert: {name}",
            "        expr: >-",
            *_block(expr, 10),
            f"        for: {r.value('alerts', name, severity, 'for')}",
            "        labels:",
            f"          severity: {severity}",
            *r.extra_labels(name, "          "),
            "        annotations:",
            f"          summary: {_quote(r.text(summary))}",
            "          description: >-",
            *_block(r.text(description), 12),
            f"          runbook_url: {r.runbook(name)}",
            *r.dashboard("          ", dashboard_query),
        ]
        return lines

    return r.alert(name, severity, body)


def _threshold(r: Literal, name: str, severity: str) -> str:
    return r.value("alerts", name, severity, "threshold")


def _alerts(r: Literal) -> Iterator[str]:
    pm = r.by("provider", "model")
    on = f"on ({pm})"
    budget = f"(1 - {r.value('stallObjective')})"
    name = "RealtimeSupervisorStallBudgetBurn"
    for severity, pairs in BURN.items():
        factors = " or ".join(f"{factor}x" for _, _, factor in pairs)
        ratio = f"{LEVEL}:realtime_supervisor_stall_ratio:rate"
        conditions = "\nor\n".join(
            f"(\n  {ratio}{long}{r.scoped()} > ({factor} * {budget})\n  and {on}\n"
            f"  {ratio}{short}{r.scoped()} > ({factor} * {budget})\n)"
            for long, short, factor in pairs
        )
        # Volume on the first pair's short window: a long window's rate() is diluted until the
        # series are that old.
        gate = pairs[0][1]
        yield from _alert(
            r,
            name,
            severity,
            f"(\n{conditions}\n)\nand {on}\n"
            f"{LEVEL}:realtime_supervisor_turns:rate{gate}{r.scoped()} > {r.value('minTurnRate')}",
            "Stalls on {{ $labels.provider }}/{{ $labels.model }} burn the error budget "
            + ("fast" if severity == "critical" else "steadily"),
            "{{ $value | humanizePercentage }} of user turns on {{ $labels.provider }}/{{ "
            "$labels.model }} in {{ $labels.namespace }} stalled (callers heard silence after "
            f"speaking), burning the stall budget at {factors} the objective's rate. Check the "
            "Stalls row for the kind and the Recoveries row "
            "for whether the supervisor brings the calls back.",
        )
    name = "RealtimeSupervisorRecoveryFailing"
    for severity in ("warning", "critical"):
        yield from _alert(
            r,
            name,
            severity,
            f"{LEVEL}:realtime_supervisor_recovery_failure_ratio:rate30m{r.scoped()}"
            f" > {_threshold(r, name, severity)}\nand {on}\n"
            f"{LEVEL}:realtime_supervisor_recoveries:rate30m{r.scoped()} * 1800"
            f" >= {r.value('minRecoveries')}",
            "Stall recoveries on {{ $labels.provider }}/{{ $labels.model }} mostly fail",
            "{{ $value | humanizePercentage }} of recovery attempts (reissue, reconnect) on {{ "
            "$labels.provider }}/{{ $labels.model }} in {{ $labels.namespace }} failed over "
            "the last 30 minutes: stalled callers stay silent until the ladder escalates.",
        )
    name = "RealtimeSupervisorRecoveryTimeHigh"
    pma = r.by("provider", "model", "action")
    for severity in ("warning", "critical"):
        yield from _alert(
            r,
            name,
            severity,
            f"{LEVEL}_action:realtime_supervisor_recovery_seconds:p95_30m{r.scoped()}"
            f" > {_threshold(r, name, severity)}\nand on ({pma})\n"
            f"sum by ({pma}) (increase(realtime_supervisor_recovery_seconds_count{r.sel()}[30m]))"
            f" >= {r.value('minRecoveries')}",
            "Recovering a stalled call ({{ $labels.action }}) takes too long",
            "The 95th percentile time from stall detection to the agent's first audio after a "
            "{{ $labels.action }} on {{ $labels.provider }}/{{ $labels.model }} is {{ $value | "
            "humanizeDuration }} in {{ $labels.namespace }} (last 30 minutes); callers wait "
            "that long on top of the detection timeout.",
        )
    counts = (
        (
            "RealtimeSupervisorEscalations",
            f"sum by ({r.by('provider', 'model', 'reason')})"
            f" (increase(realtime_supervisor_escalations_total{r.sel()}[30m]))",
            "The supervisor gave up on calls ({{ $labels.reason }})",
            "Escalations ({{ $labels.reason }}) on {{ $labels.provider }}/{{ $labels.model }} in "
            "{{ $labels.namespace }} in the last 30 minutes: {{ $value | humanize }}. Each is a "
            "call the supervisor could not bring back and handed to the escalation hook.",
        ),
        (
            "RealtimeSupervisorReconnectStorm",
            f"sum by ({pm}) (increase(realtime_supervisor_stalls_total"
            f"{r.sel('kind=' + chr(34) + 'reconnect_storm' + chr(34))}[30m]))",
            "Sessions on {{ $labels.provider }}/{{ $labels.model }} reconnect in a loop",
            "Reconnect storms on {{ $labels.provider }}/{{ $labels.model }} in {{ "
            "$labels.namespace }} in the last 30 minutes: {{ $value | humanize }}. Sessions "
            "reconnected to the realtime API repeatedly and were escalated; usually the "
            "provider (outage, quota) rather than the agent.",
        ),
        (
            "RealtimeSupervisorWatchdogErrors",
            f"sum by ({r.by('pod')}) (increase(realtime_supervisor_watchdog_errors_total"
            f"{r.sel()}[30m]))",
            "The watchdog on {{ $labels.pod }} hit internal errors",
            "Internal watchdog errors on {{ $labels.pod }} in {{ $labels.namespace }} in the "
            "last 30 minutes: {{ $value | humanize }}. The watchdog contains them to protect "
            "the call, but stalls may go undetected or unrecovered meanwhile.",
        ),
    )
    for name, expr, summary, description in counts:
        for severity in ("warning", "critical"):
            yield from _alert(
                r, name, severity, f"{expr} > {_threshold(r, name, severity)}", summary,
                description,
            )  # fmt: skip
    name = "RealtimeSupervisorWorkerDrainingTooLong"
    yield from _alert(
        r,
        name,
        "warning",
        f"max by ({r.by('pod')}) (realtime_supervisor_draining{r.sel()}) == 1",
        "Worker {{ $labels.pod }} has been draining for a long time",
        "Worker {{ $labels.pod }} in {{ $labels.namespace }} has been draining (taking no new "
        "calls) after too many escalations in the drain window; capacity is reduced until it "
        "restarts.",
    )
    name = "RealtimeSupervisorWorkerFull"
    for severity in ("warning", "critical"):
        yield from _alert(
            r,
            name,
            severity,
            f"min by ({r.by()}) (lk_agents_worker_load{r.sel()}) > {_threshold(r, name, severity)}",
            "Every agent worker in {{ $labels.namespace }} is (nearly) full",
            "The least loaded worker in {{ $labels.namespace }} reports a load of {{ $value | "
            "humanizePercentage }} (the highest of CPU, memory against its limit and calls "
            "against AGENT_MAX_CALLS). At livekit's threshold (70%) LiveKit dispatches no new "
            "call to a worker: add workers (autoscaling.maxReplicas) before callers wait.",
        )
    up = f"up{r.sel()} == 1"
    info = f"realtime_supervisor_build_info{r.sel()}"
    yield from _alert(
        r,
        "RealtimeSupervisorMetricsAbsent",
        "warning",
        f"absent({up})\nand on ()\nabsent({info})",
        "Prometheus is not scraping realtime-supervisor",
        "No realtime-supervisor scrape target matching the rules' selector is up and no "
        "realtime_supervisor_build_info series exists: dead calls are neither measured nor "
        "alerted on.",
        "",
    )
    yield from _alert(
        r,
        "RealtimeSupervisorMetricsMissingFromTarget",
        "warning",
        f"absent({info})\nunless on ()\nabsent({up})",
        "realtime-supervisor targets are scraped but export none of our metrics",
        "A realtime-supervisor scrape target is up, yet no realtime_supervisor_build_info "
        "series exists: the scrape reaches the wrong port or path, or the metrics endpoint is "
        "broken. Dead calls are not measured meanwhile.",
        "",
    )


def _lines(r: Literal, header: list[str]) -> list[str]:
    return [
        *header,
        "groups:",
        "  - name: realtime-supervisor.recording",
        "    rules:",
        *_recording(r),
        "  - name: realtime-supervisor.alerts",
        "    rules:",
        *_alerts(r),
    ]


_HEADER = [
    "# Generated by dashboards/rules.py with its default parameters; do not edit (run",
    "# `python dashboards/rules.py`). Runbooks: dashboards/runbooks.md, one section per alert.",
    "# Recording rules are level:metric:operations; the level names the labels kept",
    "# (namespace_provider_model: the aggregation labels and provider/model, the pod summed away).",
]


def render(p: dict[str, Any] | None = None) -> str:
    """The rules file for a parameter set (DEFAULTS when None)."""
    return "\n".join(_lines(Literal(p or DEFAULTS), _HEADER)) + "\n"


def render_template() -> str:
    """The rule groups as a Go template over the parameters (the chart's tpl context)."""
    return "\n".join(_lines(Template(), [])) + "\n"


def load(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if rules.yaml is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run python dashboards/rules.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
