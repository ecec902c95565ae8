"""Build the realtime-supervisor Grafana dashboard (Grafana 11.6) as JSON.

    python dashboards/build.py            # writes dashboards/realtime-supervisor.json
    python dashboards/build.py --check    # exits 1 with a diff if the committed JSON is stale

The output is deterministic (sorted keys, fixed panel ids, trailing newline) so the committed
file can be diffed in review. Alert thresholds drawn on panels are read from rules.yaml, the one
place they are defined.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "realtime-supervisor.json"
RULES = HERE / "rules.yaml"
UID = "realtime-supervisor"

DS = DataSourceRef(type_val="prometheus", uid="${datasource}")

# Label filters. Raw series carry the scrape target's namespace and pod; recording rules keep
# namespace (and provider/model) but sum the pod away, so they get no pod filter.
POD = 'namespace=~"$namespace", pod=~"$pod"'
PM = 'provider=~"$provider", model=~"$model"'
RAW = f"{POD}, {PM}"
REC = f'namespace=~"$namespace", {PM}'


def _rules() -> dict[str, Any]:
    with RULES.open() as f:
        loaded: dict[str, Any] = yaml.safe_load(f)
    return loaded


def alert_threshold(alert: str, rules: dict[str, Any] | None = None) -> float:
    """The first `> N` literal in the alert's expression: its threshold."""
    for group in (rules or _rules())["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                match = re.search(r">\s*([0-9.]+)", rule["expr"])
                if match:
                    return float(match.group(1))
    raise KeyError(f"no threshold for alert {alert} in {RULES}")


def _q(expr: str, legend: str, ref: str = "A", *, instant: bool = False) -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DS)
    return query.instant() if instant else query.range()


def _thresholds(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=v, color=c) for v, c in steps])
    )


def _ts(
    title: str,
    description: str,
    unit: str,
    targets: list[prometheus.Dataquery],
    *,
    span: int = 12,
    thresholds: dash.ThresholdsConfig | None = None,
    stacked: bool = False,
    max_val: float | None = None,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .unit(unit)
        .min(0)
        .span(span)
        .height(8)
        .fill_opacity(10)
        .line_width(1)
        .legend(
            common_b.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["mean", "max", "lastNotNull"])
        )
        .tooltip(
            common_b.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
        .targets(list(targets))
    )
    if max_val is not None:
        panel = panel.max(max_val)
    if stacked:
        panel = panel.stacking(common_b.StackingConfig().mode(common.StackingMode.NORMAL))
    if thresholds is not None:
        panel = panel.thresholds(thresholds).thresholds_style(
            common_b.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    return panel


def _stat(
    title: str,
    description: str,
    unit: str,
    target: prometheus.Dataquery,
    thresholds: dash.ThresholdsConfig,
    *,
    span: int = 4,
) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .unit(unit)
        .span(span)
        .height(4)
        .thresholds(thresholds)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .with_target(target)
    )


def _variables() -> list[Any]:
    def query_var(name: str, label: str, query: str, description: str) -> dash.QueryVariable:
        return (
            dash.QueryVariable(name)
            .label(label)
            .description(description)
            .datasource(DS)
            .query(query)
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )

    return [
        dash.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .description("The Prometheus that scrapes the agent workers."),
        query_var(
            "namespace",
            "Namespace",
            "label_values(realtime_supervisor_build_info, namespace)",
            "Kubernetes namespace of the agent workers.",
        ),
        query_var(
            "pod",
            "Pod",
            'label_values(realtime_supervisor_build_info{namespace=~"$namespace"}, pod)',
            "Agent worker pod. Recording-rule panels (ratios, p95) sum over pods.",
        ),
        query_var(
            "provider",
            "Provider",
            'label_values(realtime_supervisor_turns_total{namespace=~"$namespace"}, provider)',
            "Realtime model provider: openai or azure.",
        ),
        query_var(
            "model",
            "Model",
            "label_values(realtime_supervisor_turns_total"
            '{namespace=~"$namespace", provider=~"$provider"}, model)',
            "Realtime model (or Azure deployment) name.",
        ),
    ]


def _quantiles(metric: str, by: str, selector: str, qs: tuple[float, ...]) -> list[Any]:
    refs = "ABCDEF"
    return [
        _q(
            f"histogram_quantile({q}, sum by ({by}, le) "
            f"(rate({metric}_bucket{{{selector}}}[$__rate_interval])))",
            f"p{round(q * 100)} {{{{{by}}}}}",
            refs[i],
        )
        for i, q in enumerate(qs)
    ]


def build() -> dict[str, Any]:
    """The dashboard as a JSON-ready dict."""
    rules = _rules()
    stall_warn = alert_threshold("RealtimeSupervisorStallRatioHigh", rules)
    stall_crit = alert_threshold("RealtimeSupervisorStallRatioCritical", rules)
    fail_warn = alert_threshold("RealtimeSupervisorRecoveryFailing", rules)
    p95_warn = alert_threshold("RealtimeSupervisorRecoveryTimeHigh", rules)
    ratio_steps = _thresholds(
        (None, "green"), (100 * stall_warn, "orange"), (100 * stall_crit, "red")
    )

    overview = (
        dash.Row("Overview")
        .with_panel(
            _stat(
                "Stalls per 100 turns (5m)",
                "User turns where the agent went silent (no reply, audio gap, silence after a "
                "livekit warning, dead session), per 100 turns, over the last 5 minutes. "
                "Orange and red are the warning and critical alert thresholds.",
                "none",
                _q(
                    "100 * (sum(namespace_provider_model:realtime_supervisor_stalls:rate5m"
                    f"{{{REC}}}) or vector(0))"
                    f" / sum(namespace_provider_model:realtime_supervisor_turns:rate5m{{{REC}}})",
                    "stalls per 100 turns",
                ),
                ratio_steps,
            )
        )
        .with_panel(
            _stat(
                "Recovery success ratio (5m)",
                "Share of recovery attempts (reissue the reply, reconnect the realtime session) "
                "after which the agent spoke again. Below the line, callers stay in dead air "
                "until the ladder escalates.",
                "percentunit",
                _q(
                    "1 - avg(namespace_provider_model:realtime_supervisor_recovery_failure_ratio"
                    f":rate5m{{{REC}}})",
                    "success ratio",
                ),
                _thresholds((None, "red"), (1 - fail_warn, "green")),
            )
        )
        .with_panel(
            _stat(
                "Sessions active",
                "Agent sessions (calls) currently supervised, summed over worker processes.",
                "none",
                _q(f"sum(realtime_supervisor_sessions_active{{{POD}}})", "active"),
                _thresholds((None, "blue")),
            )
        )
        .with_panel(
            _stat(
                "Sessions stalled now",
                "Calls in a stall right now: the agent owes the caller a reply and has not "
                "spoken. Each is a caller hearing silence.",
                "none",
                _q(f"sum(realtime_supervisor_sessions_stalled{{{POD}}})", "stalled"),
                _thresholds((None, "green"), (1, "orange")),
            )
        )
        .with_panel(
            _stat(
                "Escalations (1h)",
                "Calls the supervisor gave up on in the last hour (budget or ladder exhausted, "
                "dead session, reconnect storm) and handed to the escalation hook.",
                "none",
                _q(
                    f"sum(increase(realtime_supervisor_escalations_total{{{RAW}}}[1h]))"
                    " or vector(0)",
                    "escalations",
                ),
                _thresholds((None, "green"), (1, "orange")),
            )
        )
        .with_panel(
            table.Panel()
            .title("Versions")
            .description(
                "Supervisor and livekit-agents versions per worker count. livekit-agents "
                "below 1.5.12 emits preamble replies (multi_message) that look answered but "
                "are not: compare with the livekit warnings panel."
            )
            .datasource(DS)
            .span(4)
            .height(4)
            .with_target(
                _q(
                    f"count by (version, livekit_agents) (realtime_supervisor_build_info{{{POD}}})",
                    "",
                    instant=True,
                ).format(PromQueryFormat.TABLE)
            )
        )
    )

    stalls = (
        dash.Row("Stalls")
        .with_panel(
            _ts(
                "Turns and stalls by kind",
                "User turns per second and stalls per second by kind. no_reply: nothing after "
                "the turn within the reply timeout; audio_gap: the reply stopped mid-way; "
                "post_warning_silence: livekit logged a warning and then nothing came; "
                "dead_session: the realtime session died; reconnect_storm: too many reconnects "
                "in the storm window.",
                "reqps",
                [
                    _q(
                        f"sum(rate(realtime_supervisor_turns_total{{{RAW}}}[$__rate_interval]))",
                        "turns",
                    ),
                    _q(
                        "sum by (kind) "
                        f"(rate(realtime_supervisor_stalls_total{{{RAW}}}[$__rate_interval]))",
                        "stalls {{kind}}",
                        "B",
                    ),
                ],
            )
        )
        .with_panel(
            _ts(
                "Stalls per 100 turns by provider/model (5m)",
                "The number the stall-ratio alerts watch (reconnect storms excluded), per 100 "
                "turns. Dashed lines: warning and critical thresholds. One provider/model "
                "above the others points at the provider, all of them at our side.",
                "none",
                [
                    _q(
                        "100 * namespace_provider_model:realtime_supervisor_stall_ratio:rate5m"
                        f"{{{REC}}}",
                        "{{provider}}/{{model}} {{namespace}}",
                    )
                ],
                thresholds=ratio_steps,
            )
        )
        .with_panel(
            _ts(
                "Sessions active and stalled",
                "Calls supervised and calls currently stalled. Stalled rising with active flat "
                "means the model stopped answering; both dropping means calls are hanging up.",
                "none",
                [
                    _q(f"sum(realtime_supervisor_sessions_active{{{POD}}})", "active"),
                    _q(f"sum(realtime_supervisor_sessions_stalled{{{POD}}})", "stalled", "B"),
                ],
            )
        )
        .with_panel(
            _ts(
                "LiveKit warnings by kind",
                "livekit-agents log warnings the supervisor turns into observations. "
                "multi_message with no_reply stalls is the preamble bug (livekit-agents "
                "< 1.5.12); reply_timeout and generation_discarded usually precede a stall; "
                "unrecoverable_close is the realtime session dying.",
                "reqps",
                [
                    _q(
                        "sum by (kind) (rate(realtime_supervisor_livekit_warnings_total"
                        f"{{{POD}}}[$__rate_interval]))",
                        "{{kind}}",
                    )
                ],
            )
        )
    )

    recoveries = (
        dash.Row("Recoveries")
        .with_panel(
            _ts(
                "Recoveries by action and outcome",
                "Recovery attempts per second. reissue asks the model for the reply again; "
                "reconnect replaces the realtime session. A failed reissue followed by a "
                "successful reconnect is the ladder working.",
                "reqps",
                [
                    _q(
                        "sum by (action, outcome) (rate(realtime_supervisor_recoveries_total"
                        f"{{{RAW}}}[$__rate_interval]))",
                        "{{action}} {{outcome}}",
                    )
                ],
                stacked=True,
            )
        )
        .with_panel(
            _ts(
                "Recovery success ratio by provider/model (5m)",
                "Share of recovery attempts that got the agent speaking again. The dashed line "
                "is where the recovery-failing alert fires.",
                "percentunit",
                [
                    _q(
                        "1 - namespace_provider_model:realtime_supervisor_recovery_failure_ratio"
                        f":rate5m{{{REC}}}",
                        "{{provider}}/{{model}} {{namespace}}",
                    )
                ],
                thresholds=_thresholds((None, "red"), (1 - fail_warn, "green")),
                max_val=1,
            )
        )
        .with_panel(
            _ts(
                "Escalations by reason",
                "Calls handed to the escalation hook per second, by reason. budget_exhausted: "
                "too many recoveries in the budget window; ladder_exhausted: every rung "
                "failed; dead_session / reconnect_storm: the session cannot be saved.",
                "reqps",
                [
                    _q(
                        "sum by (reason) (rate(realtime_supervisor_escalations_total"
                        f"{{{RAW}}}[$__rate_interval]))",
                        "{{reason}}",
                    )
                ],
                stacked=True,
            )
        )
        .with_panel(
            _ts(
                "Watchdog internal errors",
                "Errors the watchdog caught inside itself. Any is a bug: the call is "
                "protected, but that stall may not have been detected or recovered.",
                "reqps",
                [
                    _q(
                        "sum by (pod) (rate(realtime_supervisor_watchdog_errors_total"
                        f"{{{POD}}}[$__rate_interval]))",
                        "{{pod}}",
                    )
                ],
            )
        )
    )

    latency = (
        dash.Row("Latency")
        .with_panel(
            _ts(
                "Recovery time p50/p95/p99 by action",
                "From stall detection to the agent's first audio after the recovery. The "
                "caller's total silence adds the detection timeout (reply timeout 5 s by "
                "default) on top.",
                "s",
                _quantiles(
                    "realtime_supervisor_recovery_seconds", "action", POD, (0.5, 0.95, 0.99)
                ),
                span=8,
            )
        )
        .with_panel(
            _ts(
                "Recovery time p95 (5m, alerting)",
                "The recorded p95 the recovery-time alert watches; dashed line at its threshold.",
                "s",
                [
                    _q(
                        "namespace_action:realtime_supervisor_recovery_seconds:p95_5m"
                        '{namespace=~"$namespace"}',
                        "{{action}} {{namespace}}",
                    )
                ],
                span=4,
                thresholds=_thresholds((None, "green"), (p95_warn, "orange")),
            )
        )
        .with_panel(
            _ts(
                "Caller silence p50/p95/p99 by stall kind",
                "How long callers actually sat in silence per stall: from when the agent "
                "should have spoken to when it did. This is what callers experience.",
                "s",
                _quantiles("realtime_supervisor_silence_seconds", "kind", POD, (0.5, 0.95, 0.99)),
            )
        )
        .with_panel(
            _ts(
                "Reply latency p50/p95 by provider/model",
                "From the end of the user's turn to the agent's first audio, over all turns "
                "(stalled or not). A rising p95 with no stalls is a slow provider, not a dead "
                "one.",
                "s",
                _quantiles(
                    "realtime_supervisor_reply_latency_seconds", "provider, model", RAW, (0.5, 0.95)
                ),
                span=12,
            )
        )
        .with_panel(
            _ts(
                "What the watchdog waits for (learned deadlines)",
                "Per provider/model and timeout: the deadline the watchdog currently uses, "
                "learned as a margin above the p99 of recent healthy turns, never below the "
                "floor nor above the configured timeout (which it shows while still learning). "
                "The longest any live job process uses.",
                "s",
                [
                    _q(
                        "max by (provider, model, deadline) "
                        f"(realtime_supervisor_learned_deadline_seconds{{{RAW}}})",
                        "{{deadline}} {{provider}}/{{model}}",
                    )
                ],
                span=12,
            )
        )
    )

    worker = (
        dash.Row("Worker")
        .with_panel(
            _ts(
                "Worker ready and draining",
                "Per worker pod: ready = connected to LiveKit and taking calls; draining = "
                "finishing its calls and taking no new ones (shutdown, or too many escalations "
                "in the drain window).",
                "none",
                [
                    _q(f"max by (pod) (realtime_supervisor_ready{{{POD}}})", "ready {{pod}}"),
                    _q(
                        f"max by (pod) (realtime_supervisor_draining{{{POD}}})",
                        "draining {{pod}}",
                        "B",
                    ),
                ],
                span=8,
                max_val=1,
            )
        )
        .with_panel(
            _ts(
                "Worker load",
                "livekit's load per worker (0..1); at its load threshold the worker stops "
                "accepting jobs. The supervisor raises it while draining.",
                "percentunit",
                [_q(f"max by (pod) (lk_agents_worker_load{{{POD}}})", "{{pod}}")],
                span=8,
                max_val=1,
            )
        )
        .with_panel(
            _ts(
                "Active jobs and escalations in drain window",
                "Jobs (calls) running per worker, their child processes, and escalations "
                "counted in the drain window: when those reach the drain limit the worker "
                "drains itself.",
                "none",
                [
                    _q(
                        f"sum by (pod) (lk_agents_active_job_count{{{POD}}})",
                        "jobs {{pod}}",
                    ),
                    _q(
                        f"max by (pod) (realtime_supervisor_window_escalations{{{POD}}})",
                        "window escalations {{pod}}",
                        "B",
                    ),
                    _q(
                        f"max by (pod) (lk_agents_child_process_count{{{POD}}})",
                        "job processes {{pod}}",
                        "C",
                    ),
                ],
                span=8,
            )
        )
    )

    board = (
        dash.Dashboard("Realtime supervisor")
        .uid(UID)
        .description(
            "Dead calls on LiveKit realtime voice agents: stalls after user turns, the "
            "supervisor's recoveries and escalations, latency and worker state. Alerts and "
            "runbooks: dashboards/rules.yaml and dashboards/runbooks.md."
        )
        .tags(["realtime-supervisor", "livekit", "voice"])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .variables(_variables())
        .with_row(overview)
        .with_row(stalls)
        .with_row(recoveries)
        .with_row(latency)
        .with_row(worker)
        .build()
    )
    data: dict[str, Any] = json.loads(json.dumps(board, cls=JSONEncoder))
    _expand_rows(data)
    return data


def _expand_rows(data: dict[str, Any]) -> None:
    """Open every row and number the panels in layout order.

    The SDK nests a row's panels inside it, which is Grafana's form for a collapsed row; on-call
    should see everything on load, and an expanded row keeps its panels at the top level.
    """
    flat: list[dict[str, Any]] = []
    for panel in data["panels"]:
        children = panel.pop("panels", []) if panel["type"] == "row" else []
        if panel["type"] == "row":
            panel["collapsed"] = False
            panel["panels"] = []
        flat.append(panel)
        flat.extend(children)
    for number, panel in enumerate(flat, start=1):
        panel["id"] = number
    data["panels"] = flat


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="fail with a diff if the committed JSON is stale"
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        committed = OUTPUT.read_text() if OUTPUT.exists() else ""
        if committed != text:
            sys.stdout.writelines(
                difflib.unified_diff(
                    committed.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    f"{OUTPUT.name} (committed)",
                    f"{OUTPUT.name} (built)",
                )
            )
            print(f"{OUTPUT} is stale: run python dashboards/build.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
