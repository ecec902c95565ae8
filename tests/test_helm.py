"""The Helm chart and the image: they render valid, safe Kubernetes objects the application accepts.

Monitoring objects (monitors, rules, dashboard, autoscalers, NetworkPolicy) are in
tests/test_helm_monitoring.py; the shared helpers and the `helm` fixture in tests/chart.py.

The chart is rendered with the real helm binary (`helm template`, offline) for the default values
and every value set in helm/realtime-supervisor-agent/ci/; each object is checked against the
Kubernetes 1.30 schemas (kubernetes-validate), the PrometheusRule with promtool, and the worker's
environment with the application's own config parsers. The Dockerfile has no engine to build it
here, so its key properties are checked as text.

Over the house limit on purpose: one test per property of the chart's values, read against
values.yaml top to bottom.
"""

from __future__ import annotations

import json
import re
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
from realtime_supervisor_agent.fallback import FALLBACK_VARIABLES
from realtime_supervisor_agent.worker import load_settings
from tests.chart import (
    CHART,
    CI_VALUES,
    CREDENTIALS,
    KUBE_VERSION,
    ROOT,
    SECRET,
    STANDARD_LABELS,
    VALUE_SETS,
    WORKER_SETS,
    _containers,
    _env,
    _kinds,
    _one,
    _promtool_check,
    _render,
    _template,
    _validate_kubernetes,
    _venv_tool,
    _worker,
    make_helm,
)


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Runs the real helm binary with private cache, config and data directories."""
    yield from make_helm(tmp_path_factory)


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


# -- lint and schema ----------------------------------------------------------------------------


@pytest.mark.tools
def test_lint_strict(helm: Any) -> None:
    """`helm lint --strict` passes with the bare defaults and with every ci/ value set."""
    result = helm("lint", "--strict", str(CHART))  # the defaults alone, no --set
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
        (("--set", "agent.holdCue=beep"), "agent.holdCue: Does not match pattern"),
        (("--set", "agent.fallback.provider=gcp"), "agent.fallback.provider must be one of"),
        (("--set", "agent.fallback.region=eu"), "agent.fallback: Additional property region"),
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
            ("--set", "agent.fallback.model=gpt-realtime-mini"),
            "agent.fallback.model applies only with agent.fallback.provider set",
        ),
        (
            ("--set", "secrets.keys.fallbackApiKey=FALLBACK_KEY"),
            "secrets.keys.fallbackApiKey applies only with agent.fallback.provider set",
        ),
        (
            (
                "--set",
                "agent.fallback.provider=azure",
                "--set",
                "agent.fallback.azure.deployment=rt",
                "--set",
                "secrets.keys.fallbackApiKey=FALLBACK_KEY",
            ),
            "agent.fallback.azure.endpoint is required when agent.fallback.provider=azure",
        ),
        (
            (
                "--set",
                "agent.fallback.provider=openai",
                "--set",
                "agent.fallback.azure.endpoint=https://contoso.openai.azure.com",
            ),
            "agent.fallback.azure.endpoint applies only to agent.fallback.provider=azure",
        ),
        (
            (
                "--set",
                "agent.fallback.provider=azure",
                "--set",
                "agent.fallback.azure.endpoint=https://contoso.openai.azure.com",
                "--set",
                "agent.fallback.azure.deployment=rt",
            ),
            "agent.fallback.provider=azure with agent.provider=openai needs "
            "secrets.keys.fallbackApiKey",
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


@pytest.mark.tools
@pytest.mark.parametrize("args", WORKER_SETS)
def test_rendered_environment_is_accepted_by_the_application(
    helm: Any, args: tuple[str, ...]
) -> None:
    """The worker's rendered environment passes AgentConfig, WatchdogConfig and ServiceConfig."""
    worker = _worker(_render(helm, *args))
    env = _env(worker)
    # The worker's own reader: the agent, watchdog, service and fallback settings, all problems.
    service = load_settings(env, require_livekit=True).service
    assert service.http_port == {p["name"]: p["containerPort"] for p in worker["ports"]}["metrics"]
    assert service.multiproc_dir == env["PROMETHEUS_MULTIPROC_DIR"]


@pytest.mark.tools
def test_fallback_from_values_reaches_the_worker(helm: Any) -> None:
    """ci/fallback: AGENT_FALLBACK_* on the container, its key a secretKeyRef, and the worker's
    reader builds the fallback from them; without agent.fallback no AGENT_FALLBACK_* at all."""
    worker = _worker(_render(helm, "-f", str(CHART / "ci" / "fallback-values.yaml")))
    entries = {e["name"]: e for e in worker["env"]}
    assert entries["AGENT_FALLBACK_API_KEY"] == {
        "name": "AGENT_FALLBACK_API_KEY",
        "valueFrom": {
            "secretKeyRef": {"name": "realtime-agent-credentials", "key": "AZURE_FALLBACK_API_KEY"}
        },
    }
    plain = {n: e.get("value") for n, e in entries.items() if n.startswith("AGENT_FALLBACK_")}
    assert plain == {
        "AGENT_FALLBACK_PROVIDER": "azure",
        "AGENT_FALLBACK_MODEL": "gpt-realtime",
        "AGENT_FALLBACK_AZURE_ENDPOINT": "https://contoso-voice-westeurope.openai.azure.com",
        "AGENT_FALLBACK_AZURE_DEPLOYMENT": "gpt-realtime",
        "AGENT_FALLBACK_API_VERSION": "2024-10-01-preview",
        "AGENT_FALLBACK_API_KEY": None,
    }
    fallback = load_settings(_env(worker), require_livekit=True).fallback
    assert fallback is not None and fallback.provider == "azure"
    assert fallback.azure_deployment == "gpt-realtime"
    assert fallback.azure_api_key == "fake-fallback-key"

    # Same provider, no key of its own: the primary's key serves, no AGENT_FALLBACK_API_KEY.
    same = _worker(
        _render(
            helm,
            *SECRET,
            "--set",
            "agent.fallback.provider=openai",
            "--set",
            "agent.fallback.model=gpt-realtime-mini",
        )
    )
    names = {e["name"] for e in same["env"]}
    assert {"AGENT_FALLBACK_PROVIDER", "AGENT_FALLBACK_MODEL"} <= names
    assert "AGENT_FALLBACK_API_KEY" not in names
    assert "AGENT_FALLBACK_AZURE_ENDPOINT" not in names
    fallback = load_settings(_env(same), require_livekit=True).fallback
    assert fallback is not None and fallback.model == "gpt-realtime-mini"
    assert fallback.openai_api_key == "fake-openai-key"

    # Not configured: nothing of the fallback on the container, and no fallback in the worker.
    default = _worker(_render(helm, *SECRET))
    assert [e["name"] for e in default["env"] if e["name"].startswith("AGENT_FALLBACK_")] == []
    assert load_settings(_env(default), require_livekit=True).fallback is None


@pytest.mark.tools
def test_every_setting_has_a_value(helm: Any) -> None:
    """Every variable the agent, watchdog and service read is rendered by some ci/ value set."""
    rendered: set[str] = set()
    for path in (p for p in CI_VALUES if p.name != "monitoring-only-values.yaml"):
        rendered |= {e["name"] for e in _worker(_render(helm, "-f", str(path)))["env"]}
    wanted = (
        set(AGENT_VARIABLES.values())
        | set(FALLBACK_VARIABLES.values())
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
