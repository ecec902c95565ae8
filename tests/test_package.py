"""The two distributions as a user installs them: built wheels in a fresh venv.

Both wheels are built from a copy of the sources (nothing is written into the checkout) with uv,
then installed with their pinned dependencies (constraints/lk18.txt) into a new venv next to
Supervisor (supervisord), whose import name is `supervisor`: nothing of ours may land at the top
of site-packages under a generic name, and both must import side by side.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).with_name("uv")
SUPERVISORD = "supervisor==4.3.0"
OURS = {
    "realtime_supervisor": "realtime-supervisor",
    "realtime_supervisor_agent": "realtime-supervisor-agent",
}

pytestmark = pytest.mark.tools


def run(*args: str | Path, cwd: Path | None = None, timeout: float = 180) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    if not UV.exists():
        pytest.skip("uv is not installed in this venv (make setup)")
    src = tmp_path_factory.mktemp("src")
    out = tmp_path_factory.mktemp("dist")
    ignore = shutil.ignore_patterns("build", "__pycache__", "*.egg-info")
    for name in ("supervisor", "agent"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
        run(UV, "build", "--wheel", "--out-dir", out, src / name)
    return sorted(out.glob("*.whl"))


@pytest.fixture(scope="module")
def venv(wheels: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = tmp_path_factory.mktemp("venv") / "venv"
    run(UV, "venv", "-q", "-p", sys.executable, env)
    python = env / "bin" / "python"
    run(UV, "pip", "install", "-q", "--python", python, "-c", ROOT / "constraints" / "lk18.txt",
        *wheels, SUPERVISORD, timeout=300)  # fmt: skip
    return env


def test_wheels_hold_only_our_import_names(wheels: list[Path]) -> None:
    """Each wheel's top-level entries are its own package and its dist-info, nothing generic."""
    assert [w.name.split("-")[0] for w in wheels] == sorted(OURS)
    for wheel in wheels:
        package = wheel.name.split("-")[0]
        with zipfile.ZipFile(wheel) as zf:
            top = {name.split("/")[0] for name in zf.namelist()}
            record = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
            listed = {line.split(",")[0].split("/")[0] for line in zf.read(record).decode().split()}
        assert {t for t in top if not t.endswith(".dist-info")} == {package}
        assert {t for t in listed if not t.endswith(".dist-info")} == {package}
        assert not {"supervisor", "agent"} & (top | listed)


def test_both_import_beside_supervisord_and_the_console_script_runs(venv: Path) -> None:
    """supervisord keeps `supervisor`; ours import by their own names; the CLI answers."""
    python = venv / "bin" / "python"
    out = run(python, "-c", (
        "import importlib.metadata as md, supervisor.options, realtime_supervisor as rs, "
        "realtime_supervisor_agent\n"
        "print(supervisor.options.__file__)\n"
        "print(rs.__version__)\n"
        "for dist in ('realtime-supervisor', 'realtime-supervisor-agent'):\n"
        "    print(dist, sorted({str(f).split('/')[0] for f in md.files(dist)}))\n"
    ))  # fmt: skip
    lines = out.splitlines()
    assert "site-packages/supervisor/options.py" in lines[0]  # supervisord's own
    assert lines[1][0].isdigit()
    for line in lines[2:]:
        dist, tops = line.split(" ", 1)
        names = {t.strip("[]' ") for t in tops.split(",")}
        package = dist.replace("-", "_")
        assert {n for n in names if not n.endswith(".dist-info") and n != ".."} == {package}, line
    # console scripts land in bin/ (RECORD lists them as ../../../bin/...)
    for command in ("simulate", "chaos"):
        help_text = run(venv / "bin" / "realtime-supervisor", command, "--help")
        assert f"realtime-supervisor {command}" in help_text


def test_the_public_face_is_small_resolves_and_imports_without_livekit() -> None:
    """About ten names, each resolvable; importing the package does not import livekit (2 s)."""
    code = (
        "import sys, realtime_supervisor as rs\n"
        "assert not any(m.startswith('livekit') for m in sys.modules), 'livekit imported'\n"
        "print(sorted(rs.__all__))\n"
        "print(all(getattr(rs, n) is not None for n in rs.__all__))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    names, resolved = done.stdout.splitlines()
    assert names == str(sorted([
        "ConfigError", "Escalated", "Escalation", "HoldCue", "RecoveryError", "RecoveryFinished",
        "RecoveryStarted", "StallDetected", "Supervisor", "SupervisorError", "SupervisorEvent",
        "WatchdogConfig", "__version__", "reconnectable",
    ]))  # fmt: skip
    assert resolved == "True"
