"""dashboards/rules.yaml: promtool accepts and unit-tests it; alerts are complete; names exist."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "dashboards"
RULES = DASHBOARDS / "rules.yaml"
RULES_TEST = DASHBOARDS / "rules.test.yaml"
RUNBOOKS = DASHBOARDS / "runbooks.md"
RUNBOOK_BASE = (
    "https://github.com/realtime-supervisor/realtime-supervisor/blob/main/dashboards/runbooks.md#"
)

sys.path.insert(0, str(DASHBOARDS))
import metric_names  # noqa: E402


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [r for r in _rules() if "alert" in r]


def _records() -> list[str]:
    return [r["record"] for r in _rules() if "record" in r]


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not on PATH: run scripts/install-tools.sh (Debian `prometheus`)")
    return path


def github_anchors(markdown: str) -> set[str]:
    """Heading anchors as GitHub renders them (lower case, punctuation dropped, - for spaces)."""
    anchors = set()
    for line in markdown.splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            text = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


@pytest.mark.tools
def test_promtool_checks_rules() -> None:
    """promtool check rules accepts the rule file."""
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.tools
def test_promtool_unit_tests_pass() -> None:
    """Every alert fires when and as rules.test.yaml says, and stays silent where it says."""
    result = subprocess.run(
        [_promtool(), "test", "rules", str(RULES_TEST)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=DASHBOARDS,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _rules_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("dashboards_rules", DASHBOARDS / "rules.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rules_yaml_is_generated() -> None:
    """The committed rules.yaml is exactly dashboards/rules.py's output for its DEFAULTS."""
    assert RULES.read_text() == _rules_module().render()


@pytest.mark.tools
def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests catch a changed parameter (they are not vacuous)."""
    rules = _rules_module()
    changed = rules.params(
        alerts={
            "RealtimeSupervisorRecoveryFailing": {"critical": {"threshold": 0.95, "for": "10m"}}
        }
    )
    (tmp_path / "rules.yaml").write_text(rules.render(changed))
    (tmp_path / "rules.test.yaml").write_text(RULES_TEST.read_text())
    result = subprocess.run(
        [_promtool(), "test", "rules", "rules.test.yaml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "RealtimeSupervisorRecoveryFailing" in result.stdout + result.stderr


def test_unit_tests_cover_every_alert() -> None:
    """Each alert, at each of its severities, has a unit test where it fires; each one quiet."""
    doc = yaml.safe_load(RULES_TEST.read_text())
    fired: set[tuple[str, str]] = set()
    silent: set[str] = set()
    for group in doc["tests"]:
        for case in group.get("alert_rule_test", []):
            if not case.get("exp_alerts"):
                silent.add(case["alertname"])
            for exp in case.get("exp_alerts") or []:
                fired.add((case["alertname"], exp["exp_labels"]["severity"]))
    pairs = {(a["alert"], a["labels"]["severity"]) for a in _alerts()}
    assert pairs - fired == set(), "alert severities never shown firing"
    assert {name for name, _ in pairs} - silent == set(), "alerts never shown silent"


def test_one_alertname_per_condition() -> None:
    """Warning and critical of a condition share the alertname (inhibition by alertname works),
    and no alert name repeats within a severity."""
    pairs = [(a["alert"], a["labels"]["severity"]) for a in _alerts()]
    assert len(pairs) == len(set(pairs))
    both = {n for n, s in pairs if s == "critical"} & {n for n, s in pairs if s == "warning"}
    assert {
        "RealtimeSupervisorStallBudgetBurn",
        "RealtimeSupervisorRecoveryFailing",
        "RealtimeSupervisorRecoveryTimeHigh",
        "RealtimeSupervisorEscalations",
    } <= both
    assert not any(name.endswith(("Critical", "High2")) for name, _ in pairs)
    doc = yaml.safe_load(RULES_TEST.read_text())
    together = [
        {e["exp_labels"]["severity"] for e in case["exp_alerts"]}
        for group in doc["tests"]
        for case in group.get("alert_rule_test", [])
        if case.get("exp_alerts")
    ]
    assert {"warning", "critical"} in together, "no test shows both severities at once"


def test_no_alert_fires_on_a_single_evaluation() -> None:
    """No `for: 0m`: every alert waits at least a minute, so one scrape cannot page."""
    for alert in _alerts():
        assert alert["for"] not in {"0", "0s", "0m"}, alert["alert"]


def test_burn_rate_alerts_pair_a_long_and_a_short_window() -> None:
    """The stall budget alerts: critical 1h&5m at 14.4x or 6h&30m at 6x; warning 1d&2h, 3d&6h."""
    rules = _rules_module()
    budget = round(1 - rules.DEFAULTS["stallObjective"], 6)
    assert budget == 0.01
    burn = {a["labels"]["severity"]: a["expr"] for a in _alerts()
            if a["alert"] == "RealtimeSupervisorStallBudgetBurn"}  # fmt: skip
    for severity, windows in (
        ("critical", ("1h", "5m", "6h", "30m")),
        ("warning", ("1d", "2h", "3d", "6h")),
    ):
        for window in windows:
            assert f"stall_ratio:rate{window} >" in burn[severity], (severity, window)
    assert "(14.4 * (1 - 0.99))" in burn["critical"] and "(6 * (1 - 0.99))" in burn["critical"]
    assert "(3 * (1 - 0.99))" in burn["warning"] and "(1 * (1 - 0.99))" in burn["warning"]
    assert "turns:rate5m > 0.02" in burn["critical"]


@pytest.mark.tools
def test_two_scoped_releases_do_not_double_count(tmp_path: Path) -> None:
    """Two rule sets in one Prometheus, each scoped to its namespace: each records its own
    namespace once, and each alerts only on its own."""
    rules = _rules_module()
    for name in ("a", "b"):
        text = rules.render(rules.params(selector=f'namespace="{name}"', scope=name))
        (tmp_path / f"rules-{name}.yaml").write_text(
            text.replace("name: realtime-supervisor.", f"name: {name}-realtime-supervisor.")
        )
    series = []
    for ns, stalls in (("a", "30"), ("b", "0")):
        labels = f'job="x",namespace="{ns}",pod="p",provider="openai",model="m"'
        series += [
            {"series": f"realtime_supervisor_turns_total{{{labels}}}", "values": "0+60x30"},
            {
                "series": f'realtime_supervisor_stalls_total{{{labels},kind="no_reply"}}',
                "values": f"0+{stalls}x30",
            },
        ]
    recorded = "namespace_provider_model:realtime_supervisor_turns:rate5m"
    test = {
        "rule_files": ["rules-a.yaml", "rules-b.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": recorded,
                        "eval_time": "10m",
                        "exp_samples": [
                            {
                                "labels": f'{recorded}{{namespace="{ns}",provider="openai",'
                                f'model="m",rules_scope="{ns}"}}',
                                "value": 1,
                            }
                            for ns in ("a", "b")
                        ],
                    }
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "5m",
                        "alertname": "RealtimeSupervisorStallBudgetBurn",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "critical",
                                    "namespace": "a",
                                    "provider": "openai",
                                    "model": "m",
                                    "rules_scope": "a",
                                },
                                "exp_annotations": _annotations(
                                    rules, "a", "50%", "14.4x or 6x", "fast"
                                ),
                            }
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run(
        [_promtool(), "test", "rules", "test.yaml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _annotations(rules: Any, ns: str, value: str, factors: str, pace: str) -> dict[str, str]:
    return {
        "summary": f"Stalls on openai/m burn the error budget {pace}",
        "description": (
            f"{value} of user turns on openai/m in {ns} stalled (callers heard silence after "
            f"speaking), burning the stall budget at {factors} the objective's rate. Check the "
            "Stalls row for the kind and the Recoveries row for whether the supervisor brings "
            "the calls back."
        ),
        "runbook_url": rules.DEFAULTS["runbookBaseUrl"] + "#realtimesupervisorstallbudgetburn",
    }


def test_firing_cases_assert_labels_and_annotations() -> None:
    """Every expected firing alert in the unit tests pins severity and all three annotations."""
    severities = {(a["alert"], a["labels"]["severity"]) for a in _alerts()}
    doc = yaml.safe_load(RULES_TEST.read_text())
    for group in doc["tests"]:
        for case in group.get("alert_rule_test", []):
            for exp in case.get("exp_alerts") or []:
                assert (case["alertname"], exp["exp_labels"]["severity"]) in severities
                assert set(exp["exp_annotations"]) == {"summary", "description", "runbook_url"}


def test_alerts_have_severity_summary_description_runbook() -> None:
    """Every alert carries severity warning|critical, a summary, a description and a runbook."""
    alerts = _alerts()
    assert len(alerts) >= 8
    for alert in alerts:
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"warning", "critical"}, name
        ann = alert["annotations"]
        assert ann["summary"].strip(), name
        assert ann["description"].strip(), name
        assert ann["runbook_url"].startswith(RUNBOOK_BASE), name
        assert "for" in alert, f"{name}: write `for:` out"


def test_descriptions_show_the_value() -> None:
    """Alerts on a measured value print it, humanized, in the description."""
    for alert in _alerts():
        if "absent(" in alert["expr"] or alert["expr"].rstrip().endswith("== 1"):
            continue  # nothing to print: the value is 1
        assert "$value" in alert["annotations"]["description"], alert["alert"]
        assert "humanize" in alert["annotations"]["description"], alert["alert"]


def test_runbook_anchors_exist() -> None:
    """Each runbook_url points at a section that exists in runbooks.md."""
    anchors = github_anchors(RUNBOOKS.read_text())
    for alert in _alerts():
        anchor = alert["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor in anchors, f"{alert['alert']}: no section #{anchor} in runbooks.md"


def test_anchor_helper_matches_github() -> None:
    """The anchor helper renders headings the way GitHub does."""
    assert github_anchors("## RealtimeSupervisorStallRatioHigh\n# Known causes") == {
        "realtimesupervisorstallratiohigh",
        "known-causes",
    }


def test_recording_rules_follow_level_metric_operations() -> None:
    """Recording rule names are level:metric:operations with realtime_supervisor metrics."""
    records = _records()
    assert len(records) == len(set(records))
    for name in records:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*:realtime_supervisor_[a-z_]+:[a-z0-9_]+", name), name


def test_rule_metrics_exist_in_contract() -> None:
    """Every metric, label and label value a rule reads is in the metrics contract."""
    records = _records()
    for rule in _rules():
        assert metric_names.problems(rule["expr"], records) == [], rule.get(
            "alert", rule.get("record")
        )


def test_unknown_metric_is_reported() -> None:
    """A rule naming a metric, label or value outside the contract is caught."""
    assert metric_names.problems("rate(realtime_supervisor_turn_total[5m])") == [
        "realtime_supervisor_turn_total: not in the metrics contract"
    ]
    assert metric_names.problems('realtime_supervisor_stalls_total{kind="stall"}') != []
    assert metric_names.problems('realtime_supervisor_silence_seconds_bucket{reason="x"}') != []
    assert metric_names.problems("foo:realtime_supervisor_x:rate5m") != []


def test_contract_matches_supervisor_metrics() -> None:
    """The hard-coded contract names are exactly what supervisor.metrics exposes."""
    from prometheus_client import CollectorRegistry

    from realtime_supervisor.metrics import Metrics

    registry = CollectorRegistry()
    Metrics(registry)
    exposed: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            exposed.add(f"{family.name}_total")
        elif family.type == "histogram":
            exposed.update(f"{family.name}{s}" for s in ("_bucket", "_sum", "_count"))
        else:
            exposed.add(family.name)
    ours = {
        name for name in metric_names.contract_series() if name.startswith("realtime_supervisor_")
    }
    exposed_ours = {name for name in exposed if name.startswith("realtime_supervisor_")}
    assert ours == exposed_ours
