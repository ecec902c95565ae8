"""Shared by the Helm chart tests: the helm binary (a fixture), rendering, and object helpers.

The chart is rendered with the real helm binary (`helm template`, offline); objects are checked
against the Kubernetes 1.30 schemas (kubernetes-validate) and rules with promtool.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

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
    "AGENT_FALLBACK_API_KEY",
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


def make_helm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """For each test module's `helm` fixture: a function running helm with private
    cache, config and data directories; it returns the completed run."""
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


VALUE_SETS = [pytest.param((), id="default")] + [
    pytest.param(("-f", str(path)), id=path.name.removesuffix("-values.yaml")) for path in CI_VALUES
]


def _rules_module() -> Any:
    spec = importlib.util.spec_from_file_location("dashboards_rules", DASHBOARDS / "rules.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def _worker(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    (container,) = [c for c in containers if c["name"] == "agent"]
    return container


def _env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the process would see it, credentials replaced by fakes."""
    fakes = {
        "LIVEKIT_URL": "wss://livekit.example.com",
        "LIVEKIT_API_KEY": "APIfake",
        "LIVEKIT_API_SECRET": "fake-secret",
        "OPENAI_API_KEY": "fake-openai-key",
        "AZURE_OPENAI_API_KEY": "fake-azure-key",
        "AZURE_OPENAI_AD_TOKEN": "fake-entra-token",
        "AGENT_FALLBACK_API_KEY": "fake-fallback-key",
    }
    env: dict[str, str] = {}
    for entry in container["env"]:
        name = entry["name"]
        if "value" in entry:
            env[name] = entry["value"]
        elif "secretKeyRef" in entry["valueFrom"]:
            env[name] = fakes.get(name, "fake")
    return env


WORKER_SETS = [p for p in VALUE_SETS if p.id != "monitoring-only"]
