"""The chart's monitoring objects: monitors, the generated rules, the dashboard ConfigMap, the
monitoring-only mode, the autoscalers on the worker load, and the NetworkPolicy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import (
    CHART,
    CUSTOM_KINDS,
    DASHBOARD_JSON,
    SECRET,
    _kinds,
    _one,
    _promtool_check,
    _render,
    _rules_module,
    make_helm,
)


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Runs the real helm binary with private cache, config and data directories."""
    yield from make_helm(tmp_path_factory)


def test_chart_rule_defaults_are_the_generator_defaults() -> None:
    """prometheusRule's parameters in values.yaml are dashboards/rules.py's DEFAULTS."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())["prometheusRule"]
    defaults = dict(_rules_module().DEFAULTS)
    for key in ("selector", "scope"):
        assert values.pop(key) == "", key  # "" = derived from the release
        defaults.pop(key)
    for key in ("enabled", "additionalLabels"):
        values.pop(key)
    assert values == defaults


@pytest.mark.tools
def test_monitoring_only_render(helm: Any, tmp_path: Path) -> None:
    """mode=monitoring: only the PodMonitor, the PrometheusRule and the dashboard, scoped."""
    docs = _render(helm, "-f", str(CHART / "ci" / "monitoring-only-values.yaml"))
    assert _kinds(docs) == {"PodMonitor", "PrometheusRule", "ConfigMap"}
    monitor = _one(docs, "PodMonitor")["spec"]
    assert monitor["selector"]["matchLabels"] == {"app": "support-agent"}
    assert monitor["namespaceSelector"]["matchNames"] == ["voice-prod", "voice-staging"]
    (endpoint,) = monitor["podMetricsEndpoints"]
    assert endpoint["port"] == "supervisor"
    assert endpoint["relabelings"][-1] == {
        "action": "replace",
        "targetLabel": "job",
        "replacement": "support-agent",
    }
    spec = _one(docs, "PrometheusRule")["spec"]
    _promtool_check(spec, tmp_path)
    exprs = [r["expr"] for g in spec["groups"] for r in g["rules"]]
    selector = 'job="support-agent", namespace=~"voice-prod|voice-staging"'
    assert all(selector in e for e in exprs if "_total{" in e)


# -- monitoring objects ------------------------------------------------------------------------


@pytest.mark.tools
def test_chart_rules_are_the_generated_rules(helm: Any) -> None:
    """The PrometheusRule is dashboards/rules.py's output for the release's parameters."""
    rules = _rules_module()
    docs = _render(helm, *SECRET, "--set", "prometheusRule.enabled=true")
    expected = rules.params(
        selector='job="realtime-supervisor", namespace="voice"',
        scope="voice/rsa-realtime-supervisor-agent",
    )
    assert _one(docs, "PrometheusRule")["spec"] == yaml.safe_load(rules.render(expected))


@pytest.mark.tools
def test_rule_parameters_reach_the_rules(helm: Any, tmp_path: Path) -> None:
    """Parameters, not PromQL rewriting: aggregation, objective, labels, thresholds, disable."""
    rules = _rules_module()
    docs = _render(helm, "-f", str(CHART / "ci" / "monitoring-on-values.yaml"))
    spec = _one(docs, "PrometheusRule")["spec"]
    _promtool_check(spec, tmp_path)
    expected = rules.params(
        selector='job="realtime-supervisor", namespace="voice"',
        scope="voice/rsa-realtime-supervisor-agent",
        aggregationLabels=["cluster", "namespace"],
        grafanaUrl="https://grafana.example.com",
        stallObjective=0.995,
        alerts={
            "RealtimeSupervisorRecoveryFailing": {
                "labels": {"team": "voice"},
                "warning": {"threshold": 0.4, "for": "15m"},
            },
            "RealtimeSupervisorWorkerFull": {"enabled": False},
        },
    )
    assert spec == yaml.safe_load(rules.render(expected))
    alerts = [r for g in spec["groups"] for r in g["rules"] if "alert" in r]
    failing = [a for a in alerts if a["alert"] == "RealtimeSupervisorRecoveryFailing"]
    assert [a["labels"] for a in failing] == [
        {"severity": "warning", "team": "voice"},
        {"severity": "critical", "team": "voice"},
    ]
    assert "> 0.4" in failing[0]["expr"] and failing[0]["for"] == "15m"
    assert not any(a["alert"] == "RealtimeSupervisorWorkerFull" for a in alerts)
    assert all(
        "by (cluster, namespace" in r["expr"]
        for g in spec["groups"]
        for r in g["rules"]
        if r.get("record", "").endswith(":rate5m") and "sum by" in r["expr"]
    )
    assert all(
        a["annotations"]["dashboard_url"].startswith("https://grafana.example.com/d/")
        for a in alerts
    )


@pytest.mark.tools
def test_dashboard_configmap_is_the_dashboard_byte_for_byte(helm: Any) -> None:
    """The dashboard ConfigMap holds dashboards/realtime-supervisor.json unchanged, labelled."""
    docs = _render(
        helm,
        *SECRET,
        "--set",
        "dashboard.enabled=true",
        "--set",
        "dashboard.label.key=grafana_dashboard",
    )
    configmap = _one(docs, "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["data"]["realtime-supervisor.json"] == DASHBOARD_JSON.read_text()


@pytest.mark.tools
def test_monitoring_switches(helm: Any) -> None:
    """Monitors, rules and dashboard appear only when switched on; the monitor kind is chosen."""
    off = _kinds(_render(helm, "-f", str(CHART / "ci" / "monitoring-off-values.yaml")))
    assert off.isdisjoint(CUSTOM_KINDS | {"ConfigMap", "Service"})
    assert "NetworkPolicy" in _kinds(_render(helm, *SECRET)), "the NetworkPolicy is on by default"
    on = _render(helm, "-f", str(CHART / "ci" / "monitoring-on-values.yaml"))
    assert {"ServiceMonitor", "PrometheusRule", "ConfigMap", "Service"} <= _kinds(on)
    monitor = _one(on, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert endpoint["interval"] == "15s"
    assert endpoint["honorLabels"] is True
    assert monitor["spec"]["sampleLimit"] == 2000
    assert endpoint["relabelings"][0]["targetLabel"] == "node"
    assert endpoint["relabelings"][-1]["replacement"] == "realtime-supervisor"
    assert endpoint["metricRelabelings"][0]["action"] == "drop"
    service = _one(on, "Service")
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert _one(on, "ConfigMap")["metadata"]["namespace"] == "monitoring"
    pods = _render(helm, "-f", str(CHART / "ci" / "podmonitor-values.yaml"))
    assert "PodMonitor" in _kinds(pods) and "ServiceMonitor" not in _kinds(pods)
    assert _one(pods, "PodMonitor")["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"


@pytest.mark.tools
def test_hpa_owns_the_replica_count(helm: Any) -> None:
    """With autoscaling on, an autoscaling/v2 HPA targets the Deployment, which sets no replicas."""
    docs = _render(helm, "-f", str(CHART / "ci" / "hpa-values.yaml"))
    hpa = _one(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == _one(docs, "Deployment")["metadata"]["name"]
    assert "replicas" not in _one(docs, "Deployment")["spec"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "lk_agents_worker_load"
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "0.5"}
    scale_down = hpa["spec"]["behavior"]["scaleDown"]
    assert scale_down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 120}]
    keda = _render(
        helm,
        "-f",
        str(CHART / "ci" / "hpa-values.yaml"),
        "--set",
        "autoscaling.kind=keda",
        "--api-versions",
        "keda.sh/v1alpha1",
    )
    scaled = _one(keda, "ScaledObject")["spec"]
    assert "HorizontalPodAutoscaler" not in _kinds(keda)
    assert scaled["triggers"][0]["metadata"]["query"] == (
        'sum(lk_agents_worker_load{job="realtime-supervisor", namespace="voice"})'
    )


@pytest.mark.tools
def test_network_policy_allows_what_a_livekit_agent_needs(helm: Any) -> None:
    """Egress: DNS, LiveKit TCP and WebRTC UDP, provider HTTPS; ingress: only the metrics port."""
    docs = _render(helm, "-f", str(CHART / "ci" / "azure-legacy-values.yaml"))
    policy = _one(docs, "NetworkPolicy")["spec"]
    ports = {
        (p["protocol"], p["port"], p.get("endPort"))
        for rule in policy["egress"]
        for p in rule["ports"]
    }
    assert {("UDP", 53, None), ("TCP", 443, None), ("TCP", 7881, None)} <= ports
    assert ("UDP", 50000, 60000) in ports
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]


@pytest.mark.tools
def test_default_network_policy_is_narrow(helm: Any) -> None:
    """On by default: DNS only to kube-dns (and the node-local cache), LiveKit and the model
    endpoint only on their ports and never to private ranges or the cloud metadata address."""
    policy = _one(_render(helm, *SECRET), "NetworkPolicy")["spec"]
    dns, livekit, provider = policy["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    for rule in (livekit, provider):
        (peer,) = rule["to"]
        assert peer["ipBlock"]["cidr"] == "0.0.0.0/0"
        assert {"169.254.169.254/32", "10.0.0.0/8"} <= set(peer["ipBlock"]["except"])
    assert [p["port"] for p in provider["ports"]] == [443]
    narrowed = _one(
        _render(helm, "-f", str(CHART / "ci" / "azure-legacy-values.yaml")), "NetworkPolicy"
    )["spec"]
    assert all("except" not in peer["ipBlock"] for r in narrowed["egress"][1:3] for peer in r["to"])


def _notes(helm: Any, tmp_path: Path, *args: str) -> str:
    """NOTES.txt as `helm install` prints it (rendered through a template in a chart copy:
    `helm template` skips NOTES and `helm install --dry-run` needs a cluster)."""
    import shutil

    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "notes-render.yaml").write_text(
        '{{- define "notes" }}' + notes + "{{- end }}\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data:\n  notes: {{ include "notes" . | toJson }}\n'
    )
    result = helm(
        "template", "rsa", str(chart), "--namespace", "voice",
        "--show-only", "templates/notes-render.yaml", *args,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text: str = yaml.safe_load(result.stdout)["data"]["notes"]
    return text


@pytest.mark.tools
def test_install_notes(helm: Any, tmp_path: Path) -> None:
    """The notes name the Secret to create, warn about the placeholder image and the
    NetworkPolicy's scrape rule, and in monitoring mode describe only what is monitored."""
    notes = _notes(helm, tmp_path / "a")
    assert "create secret generic rsa-realtime-supervisor-agent" in notes
    assert "image.repository is the chart's placeholder" in notes
    assert "If Prometheus runs elsewhere, set networkPolicy.metricsIngress" in notes
    assert "up to 1800 s (drainTimeoutSeconds" in notes
    own = _notes(helm, tmp_path / "b", "-f", str(CHART / "ci" / "own-image-values.yaml"))
    assert "placeholder" not in own and "runs your own command/args" in own
    only = _notes(helm, tmp_path / "c", "-f", str(CHART / "ci" / "monitoring-only-values.yaml"))
    assert only.startswith("realtime-supervisor monitoring for pods matching")
    assert "Deployment" not in only and "PodMonitor/rsa-realtime-supervisor-agent" in only
