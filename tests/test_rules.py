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


@pytest.mark.tools
def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests catch a changed threshold (they are not vacuous)."""
    (tmp_path / "rules.yaml").write_text(RULES.read_text().replace("rate5m > 0.05", "rate5m > 0.5"))
    (tmp_path / "rules.test.yaml").write_text(RULES_TEST.read_text())
    result = subprocess.run(
        [_promtool(), "test", "rules", "rules.test.yaml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "RealtimeSupervisorStallRatioHigh" in result.stdout + result.stderr


def test_unit_tests_cover_every_alert() -> None:
    """Each alert has a unit test where it fires and one where it must not."""
    doc = yaml.safe_load(RULES_TEST.read_text())
    fired: set[str] = set()
    silent: set[str] = set()
    for group in doc["tests"]:
        for case in group.get("alert_rule_test", []):
            (fired if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {a["alert"] for a in _alerts()}
    assert names - fired == set(), "alerts never shown firing"
    assert names - silent == set(), "alerts never shown silent"


def test_firing_cases_assert_labels_and_annotations() -> None:
    """Every expected firing alert in the unit tests pins severity and all three annotations."""
    severity = {a["alert"]: a["labels"]["severity"] for a in _alerts()}
    doc = yaml.safe_load(RULES_TEST.read_text())
    for group in doc["tests"]:
        for case in group.get("alert_rule_test", []):
            for exp in case.get("exp_alerts") or []:
                assert exp["exp_labels"]["severity"] == severity[case["alertname"]]
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
        assert "for" in alert, f"{name}: write `for:` out, the chart templates it"


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


def test_thresholds_block_lists_every_alert() -> None:
    """The threshold table at the top of rules.yaml (what the chart maps) names every alert."""
    header = RULES.read_text().split("groups:", 1)[0]
    for alert in _alerts():
        assert alert["alert"] in header, alert["alert"]


def test_stall_ratio_threshold_is_in_one_place() -> None:
    """Each stall-ratio threshold literal appears once in the file, so the chart can template it."""
    text = RULES.read_text().split("groups:", 1)[1]
    assert text.count("> 0.05") == 1
    assert text.count("> 0.20") == 1


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
    assert metric_names.problems('realtime_supervisor_recovery_seconds_bucket{model="x"}') != []
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
