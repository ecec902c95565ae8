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
CUSTOM_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ScaledObject"}
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


# -- the chart's generated files ------------------------------------------------------------


def test_sync_script_reports_up_to_date() -> None:
    """The dashboard copy, the rules template and values.schema.json equal what is generated."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sync-chart-files.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_schema_is_generated_from_values_and_catches_drift(tmp_path: Path) -> None:
    """values.schema.json is values_schema.render(values.yaml); an edited annotation changes it."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import values_schema

    text = (CHART / "values.yaml").read_text()
    assert (CHART / "values.schema.json").read_text() == values_schema.render(text)
    edited = text.replace('{"minimum": 0}\nreplicaCount', '{"minimum": 1}\nreplicaCount')
    assert edited != text
    schema = values_schema.generate(edited)
    assert schema["properties"]["replicaCount"]["minimum"] == 1
    with pytest.raises(values_schema.SchemaSourceError, match="maxCalls"):
        values_schema.generate(
            text.replace(
                '"type": ["integer", "null"], "minimum": 1, "maximum": 1000', '"minimum": 1'
            )
        )


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


def _rules_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("dashboards_rules", DASHBOARDS / "rules.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    """Every schema object with declared properties refuses unknown keys (a typo fails loudly).

    Kubernetes objects passed through (a Container, the Deployment strategy) say so explicitly
    with additionalProperties true; these are the only ones.
    """
    schema = json.loads((CHART / "values.schema.json").read_text())
    passthrough = {
        "#/properties/strategy",
        "#/definitions/container",
        "#/properties/networkPolicy/properties/metricsIngress/properties/namespaceSelector",
    }

    def walk(node: Any, where: str) -> Iterator[str]:
        if isinstance(node, dict):
            declared = "properties" in node or "patternProperties" in node
            closed = node.get("additionalProperties") is False
            open_by_design = node.get("additionalProperties") is True and where in passthrough
            if declared and not closed and not open_by_design:
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
        (("--set", "resources.requests.cpu=two"), "resources.requests.cpu: Does not match pattern"),
        (("--set", "resources.limits.memory=-1Gi"), "resources.limits.memory: Must validate"),
        (("--set", "securityContext.privileged=true"), "securityContext.privileged"),
        (("--set", "securityContext.capabilities.add={SYS_ADMIN}"), "Additional property add"),
        (("--set", "mode=sidecar"), "mode must be one of"),
        (
            ("--set", "prometheusRule.alerts.RealtimeSupervisorNope.enabled=false"),
            "RealtimeSupervisorNope",
        ),
        (("--set", "agent.provider=gcp"), "agent.provider must be one of the following"),
        (("--set", "agent.architecture=pipeline"), "agent.architecture must be one of"),
        (("--set", "agent.noiseReduction=loud"), "agent.noiseReduction must be one of"),
        (("--set", "agent.turnDetection=push_to_talk"), "agent.turnDetection must be one of"),
        (("--set", "monitor.kind=Probe"), "monitor.kind must be one of"),
        (("--set", "watchdog.ladder={reissue,restart}"), "watchdog.ladder.1 must be one of"),
        (("--set", "securityContext.runAsNonRoot=false"), "securityContext.runAsNonRoot"),
        (
            ("--set", "prometheusRule.alerts.RealtimeSupervisorRecoveryFailing.warning.for=ten"),
            "RealtimeSupervisorRecoveryFailing.warning.for: Does not match pattern",
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
def test_secret_defaults_to_the_release_name(helm: Any) -> None:
    """Without secrets.existingSecret the credentials come from a Secret named after the release."""
    result = _template(helm)
    env = {
        e["name"]: e for e in _worker([d for d in yaml.safe_load_all(result.stdout) if d])["env"]
    }
    assert (
        env["LIVEKIT_URL"]["valueFrom"]["secretKeyRef"]["name"] == "rsa-realtime-supervisor-agent"
    )


@pytest.mark.tools
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--set", "terminationGracePeriodSeconds=120"),
            "terminationGracePeriodSeconds (120) must be at least drainTimeoutSeconds (1800) + 30",
        ),
        (
            ("--set", "drainTimeoutSeconds=3600"),
            "terminationGracePeriodSeconds (1830) must be at least drainTimeoutSeconds (3600) + 30",
        ),
        (
            ("--set", "extraEnv[0].name=CRM_API_KEY", "--set", "extraEnv[0].value=abc"),
            "extraEnv[0] CRM_API_KEY: a literal value for a credential-like name is refused",
        ),
        (
            (
                "--set",
                "extraContainers[0].name=x",
                "--set",
                "extraContainers[0].image=x",
                "--set",
                "extraContainers[0].securityContext.privileged=true",
            ),
            "extraContainers",
        ),
        (("--set", "mode=monitoring"), "mode=monitoring needs monitor.selector"),
        (
            ("--set", "monitor.enabled=true", "--set", "service.enabled=false"),
            "monitor.kind=ServiceMonitor needs the chart's Service",
        ),
        (
            ("--set", "autoscaling.enabled=true", "--set", "autoscaling.kind=keda"),
            "autoscaling.kind=keda needs KEDA's keda.sh/v1alpha1 API",
        ),
    ],
)
def test_chart_refuses_what_would_break_calls(
    helm: Any, args: tuple[str, ...], message: str
) -> None:
    """A drain longer than the grace period, a literal secret, a privileged sidecar: refused."""
    result = _template(helm, *args, ok=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


@pytest.mark.tools
def test_drain_timeout_reaches_the_worker(helm: Any) -> None:
    """The worker is started with --drain-timeout from the values; quantities may be numbers."""
    docs = _render(
        helm,
        "--set",
        "drainTimeoutSeconds=600",
        "--set",
        "terminationGracePeriodSeconds=630",
        "--set",
        "resources.requests.cpu=2",
    )
    worker = _worker(docs)
    assert worker["args"] == ["start", "--drain-timeout", "600"]
    assert worker["resources"]["requests"]["cpu"] == 2
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 630
    _validate_kubernetes(_one(docs, "Deployment"))


@pytest.mark.tools
def test_release_named_realtime_supervisor_has_no_service_links(helm: Any) -> None:
    """Release realtime-supervisor: no service-link variables can reach the config loader."""
    result = helm(
        "template",
        "realtime-supervisor",
        str(CHART),
        "--namespace",
        "voice",
        "--kube-version",
        KUBE_VERSION,
    )
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["enableServiceLinks"] is False
    env = _env(_worker(docs))
    WatchdogConfig.from_env(env)
    ServiceConfig.from_env(env)


@pytest.mark.tools
def test_own_image_render(helm: Any) -> None:
    """ci/own-image: the team's image, command, args, envFrom, volumes and containers render."""
    docs = _render(helm, "-f", str(CHART / "ci" / "own-image-values.yaml"))
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    worker = _worker(docs)
    assert worker["image"] == "registry.acme.example/voice/support-agent:2.4.1"
    assert worker["command"] == ["python", "-m", "acme_voice.agent"]
    assert worker["args"] == ["start", "--drain-timeout", "900"]
    assert worker["envFrom"] == [{"configMapRef": {"name": "acme-voice-settings"}}]
    mounts = {m["name"]: m["mountPath"] for m in worker["volumeMounts"]}
    assert mounts["prompts"] == "/opt/prompts" and "ca-bundle" in mounts
    assert {v["name"] for v in pod["volumes"]} >= {"metrics", "tmp", "prompts", "ca-bundle"}
    (init,) = pod["initContainers"]
    assert init["name"] == "fetch-prompts"
    assert [c["name"] for c in pod["containers"]] == ["agent", "log-shipper"]
    for container in [init, *pod["containers"]]:
        assert container["securityContext"]["privileged"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    labels = _one(docs, "Deployment")["spec"]["template"]["metadata"]
    assert labels["labels"]["team"] == "voice"
    assert labels["annotations"] == {"acme.example/owner": "voice-team"}
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"


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
    assert all('job="support-agent"' in e for e in exprs if "_total" in e)


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
    assert "Deployment" in _kinds(docs) or "monitoring-only" in " ".join(args)
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
    containers = _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    (container,) = [c for c in containers if c["name"] == "agent"]
    return container


WORKER_SETS = [p for p in VALUE_SETS if p.id != "monitoring-only"]


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
    assert pod["terminationGracePeriodSeconds"] == 1830
    assert worker["args"] == ["start", "--drain-timeout", "1800"]
    env = {e["name"]: e for e in worker["env"]}
    multiproc = env["PROMETHEUS_MULTIPROC_DIR"]["value"]
    assert multiproc == "/var/run/realtime-supervisor/metrics"
    mounts = {m["mountPath"]: m["name"] for m in worker["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert all(volumes[n]["emptyDir"]["sizeLimit"] == "256Mi" for n in ("metrics", "tmp"))
    assert set(mounts) == {multiproc, "/tmp"}
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
            env[name] = fakes.get(name, "fake")
    return env


@pytest.mark.tools
@pytest.mark.parametrize("args", WORKER_SETS)
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
    for path in (p for p in CI_VALUES if p.name != "monitoring-only-values.yaml"):
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
                    assert entry["valueFrom"]["secretKeyRef"]["name"]


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
            if where.startswith((".image.digest", ".prometheusRule.runbookBaseUrl")):
                continue
            assert not (isinstance(leaf, str) and credential.search(leaf)), f"{path.name}{where}"
        secrets = values.get("secrets", {})
        assert set(secrets) <= {"existingSecret", "keys"}, path.name
        for key_name in secrets.get("keys", {}).values():
            assert re.fullmatch(r"[A-Z_]*", key_name), f"{path.name}: {key_name!r}"


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
    """Build installs with the lk18 pins; the runtime stage is non-root and compiler-free."""
    text = (ROOT / "Dockerfile").read_text()
    stages = _stages(text)
    assert len(stages) >= 2
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    build, runtime = stages[0], stages[-1]
    assert any(
        line.startswith("RUN ")
        and "pip install" in line
        and "-c constraints/lk18.txt ./supervisor ./agent" in line
        for line in build
    )
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


def test_dockerignore_keeps_the_context_to_the_package() -> None:
    """.dockerignore excludes everything but the package sources, metadata and lk18 pins."""
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:] for line in lines if line.startswith("!")}
    assert allowed == {
        "LICENSE",
        "constraints/lk18.txt",
        "supervisor/",
        "agent/",
    }
    assert "**/__pycache__" in lines
