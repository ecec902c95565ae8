"""Build the realtime-supervisor Grafana dashboard (Grafana 11.6) as JSON.

(Over 600 lines on purpose: one dashboard, its panels in reading order with the text on-call
reads; splitting the rows across modules would scatter what is reviewed together.)

    python dashboards/build.py            # writes dashboards/realtime-supervisor.json
    python dashboards/build.py --check    # exits 1 with a diff if the committed JSON is stale

The output is deterministic (sorted keys, fixed panel ids, trailing newline) so the committed
file can be diffed in review. The stall objective drawn on panels and the runbook links come from
rules.py's DEFAULTS, the one place they are defined.

Conventions (tests/test_dashboards.py checks them on every panel):
- every query filters on each dashboard variable the series can carry: cluster, namespace and pod
  (target labels) everywhere, provider and model wherever the metric has them;
- a ratio is a sum over a sum of the same window (never an average of ratios);
- rare events (stalls, recoveries, escalations, errors, warnings) are counts per minute (`cpm`),
  drawn as bars; shares are `percentunit`; durations `s`;
- raw series only, no recording rules: the pod variable then applies to every panel.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import (
    heatmap,
    prometheus,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "realtime-supervisor.json"
UID = "realtime-supervisor"

sys.path.insert(0, str(HERE))
import rules  # noqa: E402  (dashboards/rules.py: the objective and the runbook base)

DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
RUNBOOKS = rules.DEFAULTS["runbookBaseUrl"]
BUDGET = round(1 - rules.DEFAULTS["stallObjective"], 6)
FAST_BURN = rules.BURN["critical"][0][2]

# Label filters: target labels on every series, provider/model where the metric has them.
TARGET = 'cluster=~"$cluster", namespace=~"$namespace", pod=~"$pod"'
PM = 'provider=~"$provider", model=~"$model"'
RAW = f"{TARGET}, {PM}"
STALLED = f'{RAW}, kind!="reconnect_storm"'
RATE = "[$__rate_interval]"


def alert_threshold(alert: str, severity: str = "warning") -> float:
    """An alert's threshold in rules.py's DEFAULTS."""
    value: float = rules.DEFAULTS["alerts"][alert][severity]["threshold"]
    return value


def _q(expr: str, legend: str, ref: str = "A", *, instant: bool = False) -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DS)
    return query.instant() if instant else query.range()


def _per_minute(metric: str, selector: str, by: str = "") -> str:
    grouping = f"sum by ({by}) " if by else "sum "
    return f"60 * {grouping}(rate({metric}{{{selector}}}{RATE}))"


def _ratio(numerator: str, denominator: str, by: str = "", window: str = RATE) -> str:
    """A share as a sum over a sum of the same window: failures over attempts, not an average."""
    grouping = f"sum by ({by}) " if by else "sum "
    fn = "increase" if window == "[$__range]" else "rate"
    return f"{grouping}({fn}({numerator}{window}))\n/\n{grouping}({fn}({denominator}{window}))"


def _thresholds(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=v, color=c) for v, c in steps])
    )


def _runbook(alert: str) -> dash.DashboardLink:
    return (
        dash.DashboardLink(f"Runbook: {alert}")
        .type(DashboardLinkType.LINK)
        .url(f"{RUNBOOKS}#{alert.lower()}")
        .target_blank(True)
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
    bars: bool = False,
    max_val: float | None = None,
    runbook: str | None = None,
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
        .fill_opacity(80 if bars else 10)
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
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS)
    if max_val is not None:
        panel = panel.max(max_val)
    if stacked:
        panel = panel.stacking(common_b.StackingConfig().mode(common.StackingMode.NORMAL))
    if thresholds is not None:
        panel = panel.thresholds(thresholds).thresholds_style(
            common_b.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    if runbook is not None:
        panel = panel.links([_runbook(runbook)])
    return panel


def _stat(
    title: str,
    description: str,
    unit: str,
    target: prometheus.Dataquery,
    thresholds: dash.ThresholdsConfig,
    *,
    span: int = 4,
    runbook: str | None = None,
) -> stat.Panel:
    panel = (
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
    if runbook is not None:
        panel = panel.links([_runbook(runbook)])
    return panel


def _heatmap(title: str, description: str, metric: str, selector: str) -> heatmap.Panel:
    """Buckets counted per interval, as Grafana draws a Prometheus histogram."""
    return (
        heatmap.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .span(12)
        .height(8)
        .calculate(False)
        .y_axis(heatmap.YAxisConfig().unit("s"))
        .cell_values(heatmap.CellValues().unit("short"))
        .with_target(
            _q(f"sum by (le) (increase({metric}_bucket{{{selector}}}{RATE}))", "{{le}}").format(
                PromQueryFormat.HEATMAP
            )
        )
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
            "cluster",
            "Cluster",
            "label_values(realtime_supervisor_build_info, cluster)",
            "Kubernetes cluster (the `cluster` external label of Thanos, Mimir or a federated "
            "Prometheus); All when the series carry none.",
        ),
        query_var(
            "namespace",
            "Namespace",
            'label_values(realtime_supervisor_build_info{cluster=~"$cluster"}, namespace)',
            "Kubernetes namespace of the agent workers.",
        ),
        query_var(
            "pod",
            "Pod",
            "label_values(realtime_supervisor_build_info"
            '{cluster=~"$cluster", namespace=~"$namespace"}, pod)',
            "Agent worker pod.",
        ),
        query_var(
            "provider",
            "Provider",
            "label_values(realtime_supervisor_turns_total"
            '{cluster=~"$cluster", namespace=~"$namespace"}, provider)',
            "Realtime model provider: openai or azure.",
        ),
        query_var(
            "model",
            "Model",
            "label_values(realtime_supervisor_turns_total"
            '{cluster=~"$cluster", namespace=~"$namespace", provider=~"$provider"}, model)',
            "Realtime model (or Azure deployment) name.",
        ),
    ]


def _quantiles(metric: str, by: str, selector: str, qs: tuple[float, ...]) -> list[Any]:
    refs = "ABCDEF"
    return [
        _q(
            f"histogram_quantile({q}, sum by ({by}, le) "
            f"(rate({metric}_bucket{{{selector}}}{RATE})))",
            f"p{round(q * 100)} {{{{{by}}}}}",
            refs[i],
        )
        for i, q in enumerate(qs)
    ]


def _annotations() -> list[dict[str, Any]]:
    """Escalations as annotations on every time panel (added to the JSON: the SDK's
    AnnotationQuery has no Prometheus expression field)."""
    return [
        {
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "enable": True,
            "hide": False,
            "iconColor": "red",
            "name": "Escalations",
            "expr": "sum by (namespace, reason) (increase(realtime_supervisor_escalations_total"
            f"{{{RAW}}}[1m])) > 0",
            "step": "1m",
            "titleFormat": "Escalation: {{reason}}",
            "textFormat": "{{namespace}}: a call handed to the escalation hook",
            "tagKeys": "namespace,reason",
        }
    ]


def build() -> dict[str, Any]:
    """The dashboard as a JSON-ready dict."""
    fail_warn = alert_threshold("RealtimeSupervisorRecoveryFailing")
    p95_warn = alert_threshold("RealtimeSupervisorRecoveryTimeHigh")
    ratio_steps = _thresholds((None, "green"), (BUDGET, "orange"), (FAST_BURN * BUDGET, "red"))
    success_steps = _thresholds((None, "red"), (1 - fail_warn, "green"))
    stalled = "realtime_supervisor_stalls_total"
    turns = "realtime_supervisor_turns_total"
    recoveries = "realtime_supervisor_recoveries_total"

    overview = (
        dash.Row("Overview")
        .with_panel(
            _stat(
                "Stalled turns (time range)",
                "Share of user turns where the agent went silent (no reply, audio gap, silence "
                "after a livekit warning, dead session) over the dashboard's time range: stalls "
                "over turns. Orange: above the objective's budget; red: at the fast burn rate.",
                "percentunit",
                _q(
                    _ratio(f"{stalled}{{{STALLED}}}", f"{turns}{{{RAW}}}", window="[$__range]"),
                    "stalled turns",
                    instant=True,
                ),
                ratio_steps,
                runbook="RealtimeSupervisorStallBudgetBurn",
            )
        )
        .with_panel(
            _stat(
                "Recovery success (time range)",
                "Recovery attempts (reissue the reply, reconnect the realtime session) after "
                "which the agent spoke again, over all attempts in the time range. Below the "
                "line, callers stay in dead air until the ladder escalates.",
                "percentunit",
                _q(
                    _ratio(
                        f'{recoveries}{{{RAW}, outcome="success"}}',
                        f"{recoveries}{{{RAW}}}",
                        window="[$__range]",
                    ),
                    "success",
                    instant=True,
                ),
                success_steps,
                runbook="RealtimeSupervisorRecoveryFailing",
            )
        )
        .with_panel(
            _stat(
                "Sessions active",
                "Agent sessions (calls) currently supervised, summed over worker processes.",
                "short",
                _q(f"sum(realtime_supervisor_sessions_active{{{TARGET}}})", "active"),
                _thresholds((None, "blue")),
            )
        )
        .with_panel(
            _stat(
                "Sessions stalled now",
                "Calls in a stall right now: the agent owes the caller a reply and has not "
                "spoken. Each is a caller hearing silence.",
                "short",
                _q(f"sum(realtime_supervisor_sessions_stalled{{{TARGET}}})", "stalled"),
                _thresholds((None, "green"), (1, "orange")),
            )
        )
        .with_panel(
            _stat(
                "Escalations (time range)",
                "Calls the supervisor gave up on in the time range (budget or ladder exhausted, "
                "dead session, reconnect storm) and handed to the escalation hook.",
                "short",
                _q(
                    f"sum(increase(realtime_supervisor_escalations_total{{{RAW}}}[$__range]))"
                    " or vector(0)",
                    "escalations",
                    instant=True,
                ),
                _thresholds((None, "green"), (1, "orange")),
                runbook="RealtimeSupervisorEscalations",
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
            .unit("short")
            .with_target(
                _q(
                    "count by (version, livekit_agents) "
                    f"(realtime_supervisor_build_info{{{TARGET}}})",
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
                "Turns and stalls per minute by kind",
                "User turns and stalls per minute, by stall kind. no_reply: nothing after "
                "the turn within the reply timeout; audio_gap: the reply stopped mid-way; "
                "post_warning_silence: livekit logged a warning and then nothing came; "
                "dead_session: the realtime session died; reconnect_storm: too many reconnects "
                "in the storm window.",
                "cpm",
                [
                    _q(_per_minute(turns, RAW), "turns"),
                    _q(_per_minute(stalled, RAW, "kind"), "stalls {{kind}}", "B"),
                ],
            )
        )
        .with_panel(
            _ts(
                "Stalled turns by provider/model",
                "Stalls (reconnect storms excluded) over turns, per provider/model: the SLI "
                "the stall budget alerts burn. Dashed lines: the objective's budget and the fast "
                "burn rate. One provider/model above the others points at the provider, all of "
                "them at our side.",
                "percentunit",
                [
                    _q(
                        _ratio(f"{stalled}{{{STALLED}}}", f"{turns}{{{RAW}}}", "provider, model"),
                        "{{provider}}/{{model}}",
                    )
                ],
                thresholds=ratio_steps,
                runbook="RealtimeSupervisorStallBudgetBurn",
            )
        )
        .with_panel(
            _ts(
                "Sessions active and stalled",
                "Calls supervised and calls currently stalled. Stalled rising with active flat "
                "means the model stopped answering; both dropping means calls are hanging up.",
                "short",
                [
                    _q(f"sum(realtime_supervisor_sessions_active{{{TARGET}}})", "active"),
                    _q(f"sum(realtime_supervisor_sessions_stalled{{{TARGET}}})", "stalled", "B"),
                ],
            )
        )
        .with_panel(
            _ts(
                "LiveKit warnings per minute by kind",
                "livekit-agents log warnings the supervisor turns into observations. "
                "multi_message with no_reply stalls is the preamble bug (livekit-agents "
                "< 1.5.12); reply_timeout and generation_discarded usually precede a stall; "
                "unrecoverable_close is the realtime session dying.",
                "cpm",
                [
                    _q(
                        _per_minute("realtime_supervisor_livekit_warnings_total", TARGET, "kind"),
                        "{{kind}}",
                    )
                ],
                bars=True,
            )
        )
    )

    recoveries_row = (
        dash.Row("Recoveries")
        .with_panel(
            _ts(
                "Recoveries per minute by action and outcome",
                "Recovery attempts per minute. reissue asks the model for the reply again; "
                "reconnect replaces the realtime session. A failed reissue followed by a "
                "successful reconnect is the ladder working.",
                "cpm",
                [_q(_per_minute(recoveries, RAW, "action, outcome"), "{{action}} {{outcome}}")],
                stacked=True,
                bars=True,
            )
        )
        .with_panel(
            _ts(
                "Recovery success by provider/model",
                "Successful recovery attempts over all attempts, per provider/model. The dashed "
                "line is where the recovery-failing warning fires.",
                "percentunit",
                [
                    _q(
                        _ratio(
                            f'{recoveries}{{{RAW}, outcome="success"}}',
                            f"{recoveries}{{{RAW}}}",
                            "provider, model",
                        ),
                        "{{provider}}/{{model}}",
                    )
                ],
                thresholds=success_steps,
                max_val=1,
                runbook="RealtimeSupervisorRecoveryFailing",
            )
        )
        .with_panel(
            _ts(
                "Escalations per minute by reason",
                "Calls handed to the escalation hook per minute, by reason. budget_exhausted: "
                "too many recoveries in the budget window; ladder_exhausted: every rung "
                "failed; dead_session / reconnect_storm: the session cannot be saved.",
                "cpm",
                [
                    _q(
                        _per_minute("realtime_supervisor_escalations_total", RAW, "reason"),
                        "{{reason}}",
                    )
                ],
                stacked=True,
                bars=True,
                runbook="RealtimeSupervisorEscalations",
            )
        )
        .with_panel(
            _ts(
                "Watchdog internal errors per minute",
                "Errors the watchdog caught inside itself. Any is a bug: the call is "
                "protected, but that stall may not have been detected or recovered.",
                "cpm",
                [
                    _q(
                        _per_minute("realtime_supervisor_watchdog_errors_total", TARGET, "pod"),
                        "{{pod}}",
                    )
                ],
                bars=True,
                runbook="RealtimeSupervisorWatchdogErrors",
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
                "default) on top. Dashed line: the recovery-time warning.",
                "s",
                _quantiles(
                    "realtime_supervisor_recovery_seconds", "action", RAW, (0.5, 0.95, 0.99)
                ),
                thresholds=_thresholds((None, "green"), (p95_warn, "orange")),
                runbook="RealtimeSupervisorRecoveryTimeHigh",
            )
        )
        .with_panel(
            _ts(
                "Caller silence p50/p95/p99 by stall kind",
                "How long callers actually sat in silence per stall: from when the agent "
                "should have spoken to when it did. This is what callers experience.",
                "s",
                _quantiles("realtime_supervisor_silence_seconds", "kind", RAW, (0.5, 0.95, 0.99)),
            )
        )
        .with_panel(
            _heatmap(
                "Caller silence heatmap",
                "Every stall's silence, counted per bucket and interval: the shape the "
                "percentiles hide (a second mode at the reply timeout, a long tail).",
                "realtime_supervisor_silence_seconds",
                RAW,
            )
        )
        .with_panel(
            _heatmap(
                "Reply latency heatmap",
                "Every turn's time from the end of the caller's speech to the agent's first "
                "audio, counted per bucket and interval.",
                "realtime_supervisor_reply_latency_seconds",
                RAW,
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
                span=24,
            )
        )
    )

    state = [
        ValueMap(
            {
                "0": ValueMappingResult(text="no", color="transparent"),
                "1": ValueMappingResult(text="yes", color="green"),
            }
        )
    ]
    worker = (
        dash.Row("Worker")
        .with_panel(
            statetimeline.Panel()
            .title("Worker ready and draining")
            .description(
                "Per worker pod over time: ready = connected to LiveKit and taking calls; "
                "draining = finishing its calls and taking no new ones (too many escalations "
                "in the drain window)."
            )
            .datasource(DS)
            .span(8)
            .height(8)
            .unit("short")
            .mappings(state)
            .targets(
                [
                    _q(f"max by (pod) (realtime_supervisor_ready{{{TARGET}}})", "ready {{pod}}"),
                    _q(
                        f"max by (pod) (realtime_supervisor_draining{{{TARGET}}})",
                        "draining {{pod}}",
                        "B",
                    ),
                ]
            )
        )
        .with_panel(
            _ts(
                "Worker load",
                "The load each worker reports to LiveKit (0..1): the highest of CPU, memory "
                "against the container limit and active calls against AGENT_MAX_CALLS. At "
                "livekit's threshold (70%) LiveKit stops dispatching calls to it.",
                "percentunit",
                [_q(f"max by (pod) (lk_agents_worker_load{{{TARGET}}})", "{{pod}}")],
                span=8,
                max_val=1,
                thresholds=_thresholds((None, "green"), (0.7, "red")),
                runbook="RealtimeSupervisorWorkerFull",
            )
        )
        .with_panel(
            _ts(
                "Active jobs and escalations in drain window",
                "Jobs (calls) running per worker, their child processes, and escalations "
                "counted in the drain window: when those reach the drain limit the worker "
                "drains itself.",
                "short",
                [
                    _q(f"sum by (pod) (lk_agents_active_job_count{{{TARGET}}})", "jobs {{pod}}"),
                    _q(
                        f"max by (pod) (realtime_supervisor_window_escalations{{{TARGET}}})",
                        "window escalations {{pod}}",
                        "B",
                    ),
                    _q(
                        f"max by (pod) (lk_agents_child_process_count{{{TARGET}}})",
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
            "supervisor's recoveries and escalations, latency and worker state. Alerts: "
            "dashboards/rules.py; runbooks: dashboards/runbooks.md."
        )
        .tags(["realtime-supervisor", "livekit", "voice"])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .links(
            [
                dash.DashboardLink("Runbooks")
                .type(DashboardLinkType.LINK)
                .url(RUNBOOKS)
                .icon("doc")
                .target_blank(True)
            ]
        )
        .variables(_variables())
        .with_row(overview)
        .with_row(stalls)
        .with_row(recoveries_row)
        .with_row(latency)
        .with_row(worker)
        .build()
    )
    data: dict[str, Any] = json.loads(json.dumps(board, cls=JSONEncoder))
    _expand_rows(data)
    data.setdefault("annotations", {}).setdefault("list", []).extend(_annotations())
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
