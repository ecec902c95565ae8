"""The Helm chart and the image: they render valid, safe Kubernetes objects the application accepts.

The chart is rendered with the real helm binary (`helm template`, offline) for the default values
and every value set in helm/realtime-supervisor-agent/ci/; each object is checked against the
Kubernetes 1.30 schemas (kubernetes-validate), the PrometheusRule with promtool, and the worker's
environment with the application's own config parsers. The Dockerfile has no engine to build it
here, so its key properties are checked as text.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from realtime_supervisor.config import (
    _SERVICE_VARIABLES,
    _WATCHDOG_VARIABLES,
    ServiceConfig,
    WatchdogConfig,
)
from realtime_supervisor_agent.config import _VARIABLES as AGENT_VARIABLES
from realtime_supervisor_agent.config import AgentConfig

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "realtime-supervisor-agent"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
DASHBOARDS = ROOT / "dashboards"
RULES = DASHBOARDS / "rules.yaml"
DASHBOARD_JSON = DASHBOARDS / "realtime-supervisor.json"
KUBE_VERSION = "1.30.0"
SECRET = ("--set", "secrets.existingSecret=realtime-agent-credentials")
MONITORING_API = "monitoring.coreos.com/v1"
CUSTOM_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
# Variables whose values are credentials: only ever read from the Secret.
CREDENTIALS = {
    "LIVEKIT_URL",
    "LIVEKIT_API_KEY",
    "LIVEKIT_API_SECRET",
    "OPENAI_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_AD_TOKEN",
}
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)


# -- tools -----------------------------------------------------------------------------------------


def _helm_binary() -> str:
    local = ROOT / ".tools" / "bin" / "helm"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which("helm")
    if found is None:
        pytest.fail("helm not found in .tools/bin or on PATH: run scripts/install-tools.sh")
    return found


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not on PATH: run scripts/install-tools.sh (Debian `prometheus`)")
    return path


def _venv_tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.fail(f"{name} is not installed in the test venv ({path})")
    return str(path)


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A function running helm with private cache/config/data dirs; returns the completed run."""
    binary = _helm_binary()
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, *args], capture_output=True, text=True, env=env, timeout=60, check=False
        )

    yield run


def _template(helm: Any, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = helm(
        "template",
        "rsa",
        str(CHART),
        "--namespace",
        "voice",
        "--kube-version",
        KUBE_VERSION,
        "--api-versions",
        MONITORING_API,
        *args,
    )
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def _render(helm: Any, *args: str) -> list[dict[str, Any]]:
    text = _template(helm, *args).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {[d['kind'] for d in docs]}"
    return found[0]


def _kinds(docs: list[dict[str, Any]]) -> set[str]:
    return {d["kind"] for d in docs}


VALUE_SETS = [pytest.param(SECRET, id="default")] + [
    pytest.param(("-f", str(path)), id=path.name.removesuffix("-values.yaml")) for path in CI_VALUES
]


# -- the chart's copies of dashboards/ -----------------------------------------------------------


def test_chart_copies_match_dashboards() -> None:
    """The chart's files/ hold byte-identical copies of dashboards/rules.yaml and the dashboard."""
    for name in ("rules.yaml", "realtime-supervisor.json"):
        copy = CHART / "files" / name
        assert copy.is_file(), f"{copy} missing: run scripts/sync-chart-files.py"
        assert copy.read_bytes() == (DASHBOARDS / name).read_bytes(), (
            f"helm/realtime-supervisor-agent/files/{name} differs from dashboards/{name}: "
            "run scripts/sync-chart-files.py"
        )


def test_sync_script_reports_up_to_date() -> None:
    """scripts/sync-chart-files.py --check agrees that every copy, thresholds.json too, is fresh."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sync-chart-files.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _threshold_table() -> dict[str, dict[str, dict[str, str]]]:
    return json.loads((CHART / "files" / "thresholds.json").read_text())


def test_threshold_literals_appear_once_in_their_alert() -> None:
    """Each threshold of the table is in its alert exactly once, so an override hits one place."""
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    for alert, keys in _threshold_table().items():
        assert alert in alerts, f"THRESHOLDS names {alert}, which rules.yaml does not define"
        for key, spec in keys.items():
            if spec["place"] == "for":
                assert alerts[alert]["for"] == spec["default"], (alert, key)
                continue
            pattern = rf"([<>]=?|==|!=)\s*{re.escape(spec['default'])}(\s|$)"
            hits = re.findall(pattern, alerts[alert]["expr"])
            assert len(hits) == 1, f"{alert}.{key}: {spec['default']} found {len(hits)} times"


def test_values_thresholds_are_the_rules_defaults() -> None:
    """values.yaml's prometheusRule.thresholds are exactly the table's alerts, keys, defaults."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    listed = {
        alert: {key: str(value) for key, value in keys.items()}
        for alert, keys in values["prometheusRule"]["thresholds"].items()
    }
    table = {
        alert: {key: spec["default"] for key, spec in keys.items()}
        for alert, keys in _threshold_table().items()
    }
    assert listed == table


# -- lint and schema ----------------------------------------------------------------------------


@pytest.mark.tools
def test_lint_strict(helm: Any) -> None:
    """`helm lint --strict` passes with the default values and with every ci/ value set."""
    result = helm("lint", "--strict", str(CHART), *SECRET)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in CI_VALUES:
        result = helm("lint", "--strict", str(CHART), "-f", str(path))
        assert result.returncode == 0, f"{path.name}: {result.stdout}{result.stderr}"


@pytest.mark.tools
def test_schema_is_valid_draft07() -> None:
    """values.schema.json is itself a valid JSON schema (check-jsonschema --check-metaschema)."""
    result = subprocess.run(
        [_venv_tool("check-jsonschema"), "--check-metaschema", str(CHART / "values.schema.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_closes_every_object() -> None:
    """Every schema object with declared properties refuses unknown keys (a typo fails loudly)."""
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(node: Any, where: str) -> Iterator[str]:
        if isinstance(node, dict):
            if ("properties" in node or "patternProperties" in node) and node.get(
                "additionalProperties"
            ) is not False:
                yield where
            for key, child in node.items():
                yield from walk(child, f"{where}/{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from walk(child, f"{where}/{index}")

    assert list(walk(schema, "#")) == []


@pytest.mark.tools
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--set-string", "replicaCount=two"), "replicaCount: Invalid type. Expected: integer"),
        (("--set", "replicas=2"), "Additional property replicas is not allowed"),
        (("--set", "agent.temperature=0.8"), "agent: Additional property temperature"),
        (("--set", "secrets.existingSecret="), "secrets.existingSecret: String length must be"),
        (("--set", "agent.provider=gcp"), "agent.provider must be one of the following"),
        (("--set", "agent.architecture=pipeline"), "agent.architecture must be one of"),
        (("--set", "agent.noiseReduction=loud"), "agent.noiseReduction must be one of"),
        (("--set", "agent.turnDetection=push_to_talk"), "agent.turnDetection must be one of"),
        (("--set", "metrics.monitor.kind=Probe"), "metrics.monitor.kind must be one of"),
        (("--set", "watchdog.ladder={reissue,restart}"), "watchdog.ladder.1 must be one of"),
        (("--set", "securityContext.runAsNonRoot=false"), "securityContext.runAsNonRoot"),
        (
            ("--set", "prometheusRule.thresholds.RealtimeSupervisorStallRatioHigh.for=ten"),
            "RealtimeSupervisorStallRatioHigh.for: Does not match pattern",
        ),
    ],
)
def test_schema_rejects_bad_values(helm: Any, args: tuple[str, ...], message: str) -> None:
    """A wrong type, an unknown key, an empty secret name or a bad enum fails, naming the field."""
    sets = args if "existingSecret" in " ".join(args) else (*SECRET, *args)
    result = _template(helm, *sets, ok=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


@pytest.mark.tools
def test_missing_secret_name_fails(helm: Any) -> None:
    """Without secrets.existingSecret nothing renders, and the error says which value to set."""
    result = _template(helm, ok=False)
    assert result.returncode != 0
    assert "secrets.existingSecret" in result.stderr


@pytest.mark.tools
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--set", "agent.turnDetection=semantic_vad", "--set", "agent.serverVad.threshold=0.6"),
            "agent.serverVad.threshold applies only to agent.turnDetection=server_vad",
        ),
        (
            ("--set", "agent.semanticVad.eagerness=high"),
            "agent.semanticVad.eagerness applies only to agent.turnDetection=semantic_vad",
        ),
        (
            ("--set", "agent.azure.apiVersion=2024-10-01-preview"),
            "agent.azure.apiVersion applies only to agent.provider=azure",
        ),
        (
            ("--set", "agent.provider=azure", "--set", "agent.azure.deployment=rt"),
            "agent.azure.endpoint is required when agent.provider=azure",
        ),
        (
            (
                "--set",
                "prometheusRule.enabled=true",
                "--set",
                "prometheusRule.thresholds.RealtimeSupervisorStallRatioHigh.stall_rate=0.1",
            ),
            "prometheusRule.thresholds.RealtimeSupervisorStallRatioHigh.stall_rate: no such key",
        ),
        (
            (
                "--set",
                "prometheusRule.enabled=true",
                "--set",
                "prometheusRule.thresholds.RealtimeSupervisorNope.for=5m",
            ),
            "prometheusRule.thresholds.RealtimeSupervisorNope: no such alert",
        ),
    ],
)
def test_template_refuses_settings_the_agent_would_refuse(
    helm: Any, args: tuple[str, ...], message: str
) -> None:
    """Settings the agent rejects at start (rule 4 of agent/config.py) fail at render time."""
    result = _template(helm, *SECRET, *args, ok=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


# -- rendered objects ---------------------------------------------------------------------------


def _validate_kubernetes(doc: dict[str, Any]) -> None:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        # As the CLI does: custom resources have no bundled schema (checked otherwise below).
        assert doc["kind"] in CUSTOM_KINDS, f"no schema for {doc['kind']}"
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {exc.path}")


def _promtool_check(spec: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": spec["groups"]}, sort_keys=False))
    result = subprocess.run(
        [_promtool(), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.tools
@pytest.mark.parametrize("args", VALUE_SETS)
def test_rendered_objects_are_valid(helm: Any, args: tuple[str, ...], tmp_path: Path) -> None:
    """Every rendered object validates against Kubernetes 1.30 (strict); rules pass promtool."""
    docs = _render(helm, *args)
    assert "Deployment" in _kinds(docs)
    for doc in docs:
        _validate_kubernetes(doc)
        if doc["kind"] == "PrometheusRule":
            _promtool_check(doc["spec"], tmp_path)


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


@pytest.mark.tools
@pytest.mark.parametrize("args", VALUE_SETS)
def test_nothing_runs_as_root(helm: Any, args: tuple[str, ...]) -> None:
    """Pods and containers run as uid 10001, read-only, unprivileged, no capabilities, seccomp."""
    for doc in _render(helm, *args):
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert pod["runAsUser"] == 10001
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in _containers(doc):
            ctx = container["securityContext"]
            assert ctx["runAsNonRoot"] is True, container["name"]
            assert ctx["runAsUser"] == 10001, container["name"]
            assert ctx["readOnlyRootFilesystem"] is True, container["name"]
            assert ctx["allowPrivilegeEscalation"] is False, container["name"]
            assert ctx["capabilities"]["drop"] == ["ALL"], container["name"]
            assert "add" not in ctx["capabilities"], container["name"]
            assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, container["name"]


@pytest.mark.tools
@pytest.mark.parametrize("args", VALUE_SETS)
def test_every_object_has_the_standard_labels(helm: Any, args: tuple[str, ...]) -> None:
    """Every object carries the six app.kubernetes.io labels, part-of realtime-supervisor."""
    for doc in _render(helm, *args):
        labels = doc["metadata"]["labels"]
        missing = [key for key in STANDARD_LABELS if key not in labels]
        assert missing == [], f"{doc['kind']}: {missing}"
        assert labels["app.kubernetes.io/part-of"] == "realtime-supervisor"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


def _worker(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.tools
def test_worker_probes_ports_volumes_and_grace(helm: Any) -> None:
    """Probes hit the supervisor's port; 8081 is exposed; emptyDirs back the writable paths."""
    docs = _render(helm, *SECRET)
    deployment = _one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    worker = _worker(docs)
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    assert ports == {"metrics": 9464, "lk-health": 8081}
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert worker["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    startup = worker["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    liveness = worker["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60
    assert pod["terminationGracePeriodSeconds"] == 600
    env = {e["name"]: e for e in worker["env"]}
    multiproc = env["PROMETHEUS_MULTIPROC_DIR"]["value"]
    assert multiproc == "/var/run/realtime-supervisor/metrics"
    mounts = {m["mountPath"]: m["name"] for m in worker["volumeMounts"]}
    assert set(mounts) == {multiproc, "/tmp"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert all("emptyDir" in volumes[name] for name in mounts.values())
    assert env["NUM_CPUS"]["valueFrom"]["resourceFieldRef"]["resource"] == "requests.cpu"
    assert pod["automountServiceAccountToken"] is False
    strategy = deployment["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0


def _env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the process would see it, credentials replaced by fakes."""
    fakes = {
        "LIVEKIT_URL": "wss://livekit.example.com",
        "LIVEKIT_API_KEY": "APIfake",
        "LIVEKIT_API_SECRET": "fake-secret",
        "OPENAI_API_KEY": "fake-openai-key",
        "AZURE_OPENAI_API_KEY": "fake-azure-key",
        "AZURE_OPENAI_AD_TOKEN": "fake-entra-token",
    }
    env: dict[str, str] = {}
    for entry in container["env"]:
        name = entry["name"]
        if "value" in entry:
            env[name] = entry["value"]
        elif "secretKeyRef" in entry["valueFrom"]:
            env[name] = fakes[name]
    return env


@pytest.mark.tools
@pytest.mark.parametrize("args", VALUE_SETS)
def test_rendered_environment_is_accepted_by_the_application(
    helm: Any, args: tuple[str, ...]
) -> None:
    """The worker's rendered environment passes AgentConfig, WatchdogConfig and ServiceConfig."""
    worker = _worker(_render(helm, *args))
    env = _env(worker)
    AgentConfig.from_env(env, require_livekit=True)
    WatchdogConfig.from_env(env)
    service = ServiceConfig.from_env(env)
    assert service.http_port == {p["name"]: p["containerPort"] for p in worker["ports"]}["metrics"]
    assert service.multiproc_dir == env["PROMETHEUS_MULTIPROC_DIR"]


@pytest.mark.tools
def test_every_setting_has_a_value(helm: Any) -> None:
    """Every variable the agent, watchdog and service read is rendered by some ci/ value set."""
    rendered: set[str] = set()
    for path in CI_VALUES:
        rendered |= {e["name"] for e in _worker(_render(helm, "-f", str(path)))["env"]}
    wanted = (
        set(AGENT_VARIABLES.values())
        | set(_WATCHDOG_VARIABLES)
        | set(_SERVICE_VARIABLES)
        | {"PROMETHEUS_MULTIPROC_DIR", "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"}
    )
    # The Azure API key is exercised by the default path of provider=azure (below).
    wanted.discard("AZURE_OPENAI_API_KEY")
    assert wanted - rendered == set()
    azure = _worker(
        _render(
            helm,
            *SECRET,
            "--set",
            "agent.provider=azure",
            "--set",
            "agent.azure.endpoint=https://contoso.openai.azure.com",
            "--set",
            "agent.azure.deployment=gpt-realtime",
        )
    )
    names = {e["name"] for e in azure["env"]}
    assert {"AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN"} <= names
    assert "OPENAI_API_KEY" not in names, "an OpenAI key would be sent to Azure"


@pytest.mark.tools
@pytest.mark.parametrize("args", VALUE_SETS)
def test_credentials_come_only_from_the_secret(helm: Any, args: tuple[str, ...]) -> None:
    """Credential variables are secretKeyRefs into secrets.existingSecret, never plain values."""
    for doc in _render(helm, *args):
        if doc["kind"] != "Deployment":
            continue
        for container in _containers(doc):
            for entry in container.get("env", []):
                if entry["name"] in CREDENTIALS:
                    assert "value" not in entry, entry["name"]
                    assert entry["valueFrom"]["secretKeyRef"]["name"].startswith("realtime-agent")


def test_no_credential_values_in_values_files() -> None:
    """values.yaml and ci/ hold key names and settings only: nothing shaped like a credential."""
    credential = re.compile(
        r"(sk-[A-Za-z0-9_-]{8,}|eyJ[A-Za-z0-9_-]{10,}|[A-Za-z0-9+/]{40,}={0,2})"
    )

    def leaves(node: Any, where: str) -> Iterator[tuple[str, Any]]:
        if isinstance(node, dict):
            for key, child in node.items():
                yield from leaves(child, f"{where}.{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from leaves(child, f"{where}[{index}]")
        else:
            yield where, node

    for path in [CHART / "values.yaml", *CI_VALUES]:
        values = yaml.safe_load(path.read_text())
        for where, leaf in leaves(values, ""):
            if where.startswith(".image.digest"):
                continue
            assert not (isinstance(leaf, str) and credential.search(leaf)), f"{path.name}{where}"
        assert set(values["secrets"]) <= {"existingSecret", "keys"}, path.name
        for key_name in values["secrets"].get("keys", {}).values():
            assert re.fullmatch(r"[A-Z_]*", key_name), f"{path.name}: {key_name!r}"


# -- monitoring objects ------------------------------------------------------------------------


def _rules_block(stdout: str) -> str:
    """The PrometheusRule's spec text as rendered, de-indented (comments and layout kept)."""
    document = next(d for d in stdout.split("\n---\n") if "kind: PrometheusRule" in d)
    lines = document.split("\nspec:\n", 1)[1].split("\n")
    assert all(line.startswith("  ") or line == "" for line in lines)
    return "\n".join(line[2:] for line in lines).rstrip("\n") + "\n"


@pytest.mark.tools
def test_default_rules_are_byte_identical_to_dashboards(helm: Any) -> None:
    """With default thresholds the PrometheusRule spec is dashboards/rules.yaml byte for byte."""
    stdout = _template(helm, *SECRET, "--set", "prometheusRule.enabled=true").stdout
    assert _rules_block(stdout) == RULES.read_text()
    doc = next(d for d in yaml.safe_load_all(stdout) if d and d["kind"] == "PrometheusRule")
    assert doc["spec"] == yaml.safe_load(RULES.read_text())


@pytest.mark.tools
def test_threshold_override_changes_only_that_alert(helm: Any, tmp_path: Path) -> None:
    """An override replaces one literal in one alert; everything else stays as the file has it."""
    base = "prometheusRule.thresholds.RealtimeSupervisorStallRatioHigh"
    docs = _render(
        helm,
        *SECRET,
        "--set",
        "prometheusRule.enabled=true",
        "--set",
        f"{base}.stall_ratio=0.1",
        "--set",
        f"{base}.for=15m",
        "--set",
        "prometheusRule.thresholds.RealtimeSupervisorEscalations.escalations_10m=2",
    )
    spec = _one(docs, "PrometheusRule")["spec"]
    expected = yaml.safe_load(RULES.read_text())
    for group in expected["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "RealtimeSupervisorStallRatioHigh":
                assert "rate5m > 0.05\n" in rule["expr"] or "rate5m > 0.05 " in rule["expr"]
                rule["expr"] = rule["expr"].replace("> 0.05", "> 0.1")
                rule["for"] = "15m"
            elif rule.get("alert") == "RealtimeSupervisorEscalations":
                assert rule["expr"].endswith("> 0")
                rule["expr"] = rule["expr"][: -len("> 0")] + "> 2"
    assert spec == expected
    _promtool_check(spec, tmp_path)


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
    on = _render(helm, "-f", str(CHART / "ci" / "monitoring-on-values.yaml"))
    assert {"ServiceMonitor", "PrometheusRule", "ConfigMap", "Service"} <= _kinds(on)
    monitor = _one(on, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["endpoints"][0]["interval"] == "15s"
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
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


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


# -- the image ------------------------------------------------------------------------------------


def _stages(dockerfile: str) -> list[list[str]]:
    """Dockerfile instructions (continuations joined, comments dropped), split by FROM."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    stages: list[list[str]] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_dockerfile_is_multistage_and_runs_unprivileged() -> None:
    """Build installs the hash-checked pins; the runtime stage is non-root, compiler-free, and
    runs under tini (PID 1 reaps zombies)."""
    text = (ROOT / "Dockerfile").read_text()
    stages = _stages(text)
    assert len(stages) >= 2
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    build, runtime = stages[0], stages[-1]
    assert any(
        line.startswith("RUN ")
        and "pip install" in line
        and "--require-hashes --no-deps -r constraints/image.txt" in line
        and "--no-deps --no-build-isolation ./supervisor ./agent" in line
        for line in build
    )
    assert any(
        line.startswith("COPY --from=build /usr/bin/tini-static /usr/bin/tini") for line in runtime
    )
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in runtime
    assert any(line.startswith("COPY --from=build /opt/venv /opt/venv") for line in runtime)
    # Nothing is built or installed in the runtime stage: no package manager, no compiler.
    forbidden = re.compile(r"apt-get|apk |pip install|gcc|g\+\+|build-essential|make ")
    assert [line for line in runtime if forbidden.search(line)] == []
    users = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert users, "the runtime stage must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]} must be a numeric non-root uid"
    assert 'CMD ["realtime-supervisor", "start"]' in runtime
    assert "HEALTHCHECK NONE" in runtime
    assert "EXPOSE 9464 8081" in runtime
    assert any(
        "PROMETHEUS_MULTIPROC_DIR=/var/run/realtime-supervisor/metrics" in line for line in runtime
    )


def test_the_image_pins_are_hashed_and_match_what_ci_tests() -> None:
    """Every pin of constraints/image.txt carries sha256 hashes and the version lk18.txt (the set
    CI tests) has; the build backend is among them."""
    pins = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)", re.M)
    image = (ROOT / "constraints" / "image.txt").read_text()
    tested = {
        n.lower(): v for n, v in pins.findall((ROOT / "constraints" / "lk18.txt").read_text())
    }
    blocks = re.split(r"\n(?=\S)", image)
    pinned = [b for b in blocks if pins.match(b)]
    assert len(pinned) > 50
    for block in pinned:
        name, version = pins.match(block).groups()  # type: ignore[union-attr]
        assert "--hash=sha256:" in block, name
        if name.lower() != "setuptools":
            assert tested.get(name.lower()) == version, name
    assert re.search(r"^setuptools==80\.9\.0 ", image, re.M)


def test_dockerignore_keeps_the_context_to_the_package() -> None:
    """.dockerignore excludes everything but the package sources, metadata and the image pins."""
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:] for line in lines if line.startswith("!")}
    assert allowed == {
        "LICENSE",
        "constraints/image.txt",
        "supervisor/",
        "agent/",
    }
    assert "**/__pycache__" in lines
