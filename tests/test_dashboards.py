"""dashboards/build.py and realtime-supervisor.json: stable, complete, and every query valid."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "dashboards"
JSON_PATH = DASHBOARDS / "realtime-supervisor.json"

sys.path.insert(0, str(DASHBOARDS))
import metric_names  # noqa: E402


def _load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboards_build", DASHBOARDS / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(JSON_PATH.read_text())
    return loaded


def _records() -> list[str]:
    doc = yaml.safe_load((DASHBOARDS / "rules.yaml").read_text())
    return [r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r]


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every non-row panel, whether a row holds it or it sits at the top level."""
    out = []
    for panel in board["panels"]:
        out.extend(panel.get("panels", []))
        if panel["type"] != "row":
            out.append(panel)
    return out


def exprs(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) for every query target."""
    return [(p["title"], t["expr"]) for p in panels(board) for t in p.get("targets", [])]


def test_build_check_passes() -> None:
    """The committed JSON is exactly what build.py generates (`build.py --check` exits 0)."""
    result = subprocess.run(
        [sys.executable, str(DASHBOARDS / "build.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_fails_with_a_diff_on_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--check` exits non-zero and prints a diff when the committed JSON differs."""
    build = _load_build()
    stale = tmp_path / "realtime-supervisor.json"
    stale.write_text(JSON_PATH.read_text().replace('"Realtime supervisor"', '"Old title"'))
    build.OUTPUT = stale
    assert build.main(["--check"]) == 1
    out = capsys.readouterr().out
    assert '-  "title": "Old title"' in out
    assert '+  "title": "Realtime supervisor"' in out
    assert build.main([]) == 0
    assert build.main(["--check"]) == 0


def test_render_is_deterministic() -> None:
    """Two builds give identical text with sorted keys and a trailing newline."""
    build = _load_build()
    first, second = build.render(), build.render()
    assert first == second
    assert first.endswith("}\n")
    assert first == json.dumps(json.loads(first), indent=2, sort_keys=True) + "\n"


def test_uid_title_and_schema_are_stable(board: dict[str, Any]) -> None:
    """The dashboard keeps uid realtime-supervisor and the Grafana 11.6 schema version."""
    assert board["uid"] == "realtime-supervisor"
    assert board["schemaVersion"] == 41
    assert board["title"] == "Realtime supervisor"


def test_variables_exist(board: dict[str, Any]) -> None:
    """datasource (prometheus) and cluster, namespace, pod, provider, model label_values."""
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("cluster", "namespace", "pod", "provider", "model"):
        var = variables[name]
        assert var["type"] == "query"
        assert var["datasource"]["uid"] == "${datasource}"
        assert var["query"].startswith("label_values(")
        assert var["query"].rstrip(")").endswith(name)
        assert var["includeAll"] and var["allValue"] == ".*"


def test_variable_queries_read_contract_metrics(board: dict[str, Any]) -> None:
    """Each label_values variable reads a contract metric that carries that label."""
    contract = metric_names.contract_series()
    for var in board["templating"]["list"]:
        if var["type"] != "query":
            continue
        selector = metric_names.variable_selector(var["query"])
        assert selector is not None, var["query"]
        substituted = metric_names.substitute_grafana(selector)
        assert metric_names.problems(substituted) == [], var["name"]
        (sel,) = metric_names.selectors(substituted)
        labels = contract[sel.name]
        assert labels is not None
        assert var["name"] in labels or var["name"] in metric_names.TARGET_LABELS


def test_rows_group_the_panels(board: dict[str, Any]) -> None:
    """Rows Overview, Stalls, Recoveries, Latency, Worker, in that order, each with panels."""
    rows = [p for p in board["panels"] if p["type"] == "row"]
    assert [r["title"] for r in rows] == ["Overview", "Stalls", "Recoveries", "Latency", "Worker"]
    kinds = [p["type"] for p in board["panels"]]
    assert kinds[0] == "row"
    assert "row,row" not in ",".join(kinds)
    assert kinds[-1] != "row"


def test_panel_ids_unique_and_descriptions_present(board: dict[str, Any]) -> None:
    """Every panel has a unique id, a description for on-call, and at least one query."""
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        assert len(panel.get("description", "")) > 40, panel["title"]
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"


def test_panel_exprs_parse_as_promql(board: dict[str, Any]) -> None:
    """Every target parses as PromQL once Grafana's variables are substituted."""
    assert len(exprs(board)) >= 20
    for title, expr in exprs(board):
        try:
            metric_names.selectors(metric_names.substitute_grafana(expr))
        except Exception as exc:  # the parser raises a bare ValueError-like error
            pytest.fail(f"{title}: {expr!r} does not parse: {exc}")


def test_substitution_makes_unparseable_grafana_parseable() -> None:
    """Grafana intervals and variables are replaced, so a raw Grafana query would not parse."""
    raw = 'rate(realtime_supervisor_turns_total{pod=~"$pod"}[$__rate_interval])'
    assert metric_names.substitute_grafana(raw) == (
        'rate(realtime_supervisor_turns_total{pod=~".*"}[1m])'
    )
    with pytest.raises(Exception):  # noqa: B017 - the parser's own error type
        metric_names.selectors("rate(realtime_supervisor_turns_total[$__rate_interval])")


def test_panel_metrics_exist_in_contract(board: dict[str, Any]) -> None:
    """Every metric, label and value a panel reads is in the contract or a recording rule."""
    records = _records()
    for title, expr in exprs(board):
        problems = metric_names.problems(metric_names.substitute_grafana(expr), records)
        assert problems == [], title


def test_panels_read_raw_series(board: dict[str, Any]) -> None:
    """No panel reads a recording rule: those sum the pod away (the pod variable would not
    apply) and exist only where the chart's rules are installed."""
    used = {
        sel.name
        for _, expr in exprs(board)
        for sel in metric_names.selectors(metric_names.substitute_grafana(expr))
        if ":" in sel.name
    }
    assert used == set()


VARIABLES = ("cluster", "namespace", "pod", "provider", "model")


def _honours(expr: str) -> list[str]:
    """The variables a query ignores although its series carry the label."""
    contract = metric_names.contract_series()
    missing = []
    parsed = metric_names.selectors(metric_names.substitute_grafana(expr))
    raw = re.findall(r"(\w+)\{([^}]*)\}", expr)
    assert len(parsed) == len(raw), expr
    for sel, (_, matchers) in zip(parsed, raw, strict=True):
        labels = contract.get(sel.name) or {}
        carried = set(labels) | metric_names.TARGET_LABELS
        for var in VARIABLES:
            if var in carried and f'{var}=~"${var}"' not in matchers:
                missing.append(f"{sel.name} ignores ${var}")
    return missing


def test_every_query_honours_the_variables(board: dict[str, Any]) -> None:
    """Each selector filters on every dashboard variable its series can carry (provider/model
    wherever the metric has them, cluster/namespace/pod everywhere), annotations included."""
    for title, expr in exprs(board):
        assert _honours(expr) == [], title
    for annotation in board["annotations"]["list"]:
        assert _honours(annotation["expr"]) == [], annotation["name"]
    assert _honours('rate(realtime_supervisor_silence_seconds_bucket{pod=~"$pod"}[1m])') != []


def _divisions(expr: str) -> list[tuple[Any, Any]]:
    import promql_parser

    found: list[tuple[Any, Any]] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.BinaryExpr) and str(node.op) == "/":
            found.append((node.lhs, node.rhs))

    promql_parser.walk(promql_parser.parse(metric_names.substitute_grafana(expr)), visit)
    return found


def _is_sum(node: Any) -> bool:
    import promql_parser

    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    return isinstance(node, promql_parser.AggregateExpr) and str(node.op) == "sum"


def test_ratios_are_sums_over_sums(board: dict[str, Any]) -> None:
    """Every ratio divides a sum by a sum (failures over attempts), never averages ratios."""
    ratios = 0
    for title, expr in exprs(board):
        assert "avg(" not in expr and "avg by" not in expr, title
        for lhs, rhs in _divisions(expr):
            ratios += 1
            assert _is_sum(lhs) and _is_sum(rhs), title
    assert ratios >= 4
    assert not all(_is_sum(s) for s in _divisions("1 - avg(x) / sum(y)")[0])


def _unit(panel: dict[str, Any]) -> str | None:
    if panel["type"] == "heatmap":
        unit: str | None = panel["options"]["yAxis"]["unit"]
        return unit
    return panel.get("fieldConfig", {}).get("defaults", {}).get("unit")


def test_every_panel_has_a_fitting_unit(board: dict[str, Any]) -> None:
    """Shares in percentunit, events per minute in cpm, quantiles and heatmaps in seconds,
    counts and gauges in short; never reqps for rare events."""
    for panel in panels(board):
        texts = [t["expr"] for t in panel["targets"]]
        unit = _unit(panel)
        assert unit is not None, panel["title"]
        if any(_divisions(e) for e in texts) or any("worker_load" in e for e in texts):
            assert unit == "percentunit", panel["title"]
        elif any(e.startswith("60 * sum") for e in texts):
            assert unit == "cpm", panel["title"]
            assert all(e.startswith("60 * sum") for e in texts), panel["title"]
        elif any("histogram_quantile" in e for e in texts) or panel["type"] == "heatmap":
            assert unit == "s", panel["title"]
        else:
            assert unit == "short", panel["title"]
            assert not any("rate(" in e for e in texts), panel["title"]


def test_histograms_have_heatmaps_and_worker_state_a_timeline(board: dict[str, Any]) -> None:
    """Heatmaps of reply latency and caller silence; a state timeline for ready/draining."""
    heatmaps = {
        sel.name
        for p in panels(board)
        if p["type"] == "heatmap"
        for t in p["targets"]
        for sel in metric_names.selectors(metric_names.substitute_grafana(t["expr"]))
    }
    assert heatmaps == {
        "realtime_supervisor_reply_latency_seconds_bucket",
        "realtime_supervisor_silence_seconds_bucket",
    }
    for p in panels(board):
        if p["type"] == "heatmap":
            assert p["targets"][0]["format"] == "heatmap"
            assert p["options"]["calculate"] is False
    (timeline,) = [p for p in panels(board) if p["type"] == "state-timeline"]
    assert {"realtime_supervisor_ready", "realtime_supervisor_draining"} <= {
        sel.name
        for t in timeline["targets"]
        for sel in metric_names.selectors(metric_names.substitute_grafana(t["expr"]))
    }


def test_escalation_annotations_and_runbook_links(board: dict[str, Any]) -> None:
    """Escalations are annotated; the dashboard and alert panels link to existing runbooks."""
    (annotation,) = [a for a in board["annotations"]["list"] if a["name"] == "Escalations"]
    assert "realtime_supervisor_escalations_total" in annotation["expr"]
    assert annotation["datasource"]["uid"] == "${datasource}"
    from tests.test_rules import github_anchors

    anchors = github_anchors((DASHBOARDS / "runbooks.md").read_text())
    build = _load_build()
    assert board["links"][0]["url"] == build.RUNBOOKS
    linked = [link["url"] for p in panels(board) for link in p.get("links", [])]
    assert len(linked) >= 6
    for url in linked:
        assert url.startswith(build.RUNBOOKS + "#"), url
        assert url.split("#", 1)[1] in anchors, url


def test_every_contract_metric_has_a_panel(board: dict[str, Any]) -> None:
    """Each contract family appears in at least one panel."""
    names = {
        sel.name
        for _, expr in exprs(board)
        for sel in metric_names.selectors(metric_names.substitute_grafana(expr))
    }
    histograms = {h for h in metric_names.HISTOGRAMS if f"{h}_bucket" in names}
    read = names | histograms
    families = (
        set(metric_names.COUNTERS)
        | set(metric_names.GAUGES)
        | set(metric_names.HISTOGRAMS)
        | set(metric_names.LIVEKIT)
    )
    assert families - read == set()


def test_range_windows_use_rate_interval(board: dict[str, Any]) -> None:
    """Rates use $__rate_interval, totals over the time range $__range: no fixed window."""
    for title, expr in exprs(board):
        for window in re.findall(r"\[([^\]]+)\]", expr):
            assert window in {"$__rate_interval", "$__range"}, f"{title}: [{window}]"
    assert any("$__rate_interval" in expr for _, expr in exprs(board))


def test_quantile_panels_cover_p50_p95_p99(board: dict[str, Any]) -> None:
    """Recovery time and caller silence show p50/p95/p99; reply latency p50/p95."""
    wanted = {
        "realtime_supervisor_recovery_seconds_bucket": {"0.5", "0.95", "0.99"},
        "realtime_supervisor_silence_seconds_bucket": {"0.5", "0.95", "0.99"},
        "realtime_supervisor_reply_latency_seconds_bucket": {"0.5", "0.95"},
    }
    for metric, quantiles in wanted.items():
        seen = {
            m.group(1)
            for _, expr in exprs(board)
            if metric in expr
            for m in [re.match(r"histogram_quantile\(([0-9.]+),", expr)]
            if m
        }
        assert quantiles <= seen, metric


def test_stall_panel_thresholds_follow_the_objective(board: dict[str, Any]) -> None:
    """The stalled-turns panels draw the objective's budget and the fast burn rate."""
    build = _load_build()
    (panel,) = [p for p in panels(board) if p["title"] == "Stalled turns by provider/model"]
    steps = [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [None, build.BUDGET, build.FAST_BURN * build.BUDGET]
    assert steps[1:] == [0.01, pytest.approx(0.144)]
