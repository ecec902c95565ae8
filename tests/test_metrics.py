from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from realtime_supervisor.metrics import (
    ACTIONS,
    BUCKETS,
    ESCALATION_REASONS,
    OUTCOMES,
    STALL_KINDS,
    WARNING_KINDS,
    Metrics,
    livekit_agents_version,
    mark_dead,
    prepare_multiproc_dir,
    sanitize_label,
    supervisor_version,
    sweep_dead,
)
from realtime_supervisor.telemetry.multiproc import pid_alive

P = "realtime_supervisor_"


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the registry's exposition, parsed back, keyed by name and labels."""
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return samples(registry).get((name, frozenset(labels.items())))


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry)


def test_every_family_and_label_is_exposed_after_use(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    """After one of each call, every family of the contract is exposed with its labels."""
    s = metrics.session("openai", "gpt-realtime")
    s.session_started()
    s.turn()
    s.stall("no_reply")
    s.recovery("reissue", "success", 1.2)
    s.escalation("budget_exhausted")
    s.silence("no_reply", 3.4)
    s.reply_latency(0.8)
    s.livekit_warning("multi_message")
    s.watchdog_error()
    s.set_stalled(True)
    metrics.set_ready(True)
    metrics.set_draining(False)
    metrics.set_window_escalations(2)

    text = generate_latest(registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    expected = {
        "turns": ("counter", {"provider", "model"}),
        "stalls": ("counter", {"provider", "model", "kind"}),
        "recoveries": ("counter", {"provider", "model", "action", "outcome"}),
        "escalations": ("counter", {"provider", "model", "reason"}),
        "recovery_seconds": ("histogram", {"action", "provider", "model"}),
        "silence_seconds": ("histogram", {"kind", "provider", "model"}),
        "reply_latency_seconds": ("histogram", {"provider", "model"}),
        "sessions_active": ("gauge", set()),
        "sessions_stalled": ("gauge", set()),
        "livekit_warnings": ("counter", {"kind"}),
        "watchdog_errors": ("counter", set()),
        "build_info": ("gauge", {"version", "livekit_agents"}),
        "ready": ("gauge", set()),
        "draining": ("gauge", set()),
        "window_escalations": ("gauge", set()),
    }
    for short, (typ, labels) in expected.items():
        family = families[P + short]
        assert family.type == typ, short
        main = [x for x in family.samples if not x.name.endswith("_created")]
        assert main, short
        assert {k for x in main for k in x.labels if k != "le"} == labels, short

    assert value(registry, P + "turns_total", provider="openai", model="gpt-realtime") == 1
    assert value(registry, P + "stalls_total", provider="openai", model="gpt-realtime",
                 kind="no_reply") == 1  # fmt: skip
    assert value(registry, P + "recoveries_total", provider="openai", model="gpt-realtime",
                 action="reissue", outcome="success") == 1  # fmt: skip
    assert value(registry, P + "escalations_total", provider="openai", model="gpt-realtime",
                 reason="budget_exhausted") == 1  # fmt: skip
    pm = {"provider": "openai", "model": "gpt-realtime"}
    assert value(registry, P + "recovery_seconds_count", action="reissue", **pm) == 1
    assert value(registry, P + "recovery_seconds_sum", action="reissue", **pm) == pytest.approx(1.2)
    assert value(registry, P + "silence_seconds_sum", kind="no_reply", **pm) == pytest.approx(3.4)
    assert value(registry, P + "reply_latency_seconds_count", provider="openai",
                 model="gpt-realtime") == 1  # fmt: skip
    assert value(registry, P + "livekit_warnings_total", kind="multi_message") == 1
    assert value(registry, P + "watchdog_errors_total") == 1
    assert value(registry, P + "sessions_active") == 1
    assert value(registry, P + "sessions_stalled") == 1
    assert value(registry, P + "ready") == 1
    assert value(registry, P + "draining") == 0
    assert value(registry, P + "window_escalations") == 2


def test_histograms_use_the_contract_buckets(registry: CollectorRegistry, metrics: Metrics) -> None:
    """Every histogram has exactly the contract's buckets (plus +Inf)."""
    metrics.session("openai", "m").reply_latency(0.1)
    for name, labels in [
        ("recovery_seconds_bucket", {"action": "reissue", "provider": "openai", "model": "m"}),
        ("silence_seconds_bucket", {"kind": "audio_gap", "provider": "openai", "model": "m"}),
        ("reply_latency_seconds_bucket", {"provider": "openai", "model": "m"}),
    ]:
        les = sorted(
            float(dict(lbl)["le"])
            for (n, lbl) in samples(registry)
            if n == P + name and all(dict(lbl).get(k) == v for k, v in labels.items())
        )
        assert les == [*BUCKETS, math.inf], name


def test_enumerated_series_exist_at_zero_before_any_event(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    """A session's counters start at 0 for every enumerated value, so increase() sees the first."""
    metrics.session("openai", "m")
    for kind in STALL_KINDS:
        assert value(registry, P + "stalls_total", provider="openai", model="m", kind=kind) == 0
    for action in ACTIONS:
        for outcome in OUTCOMES:
            assert value(registry, P + "recoveries_total", provider="openai", model="m",
                         action=action, outcome=outcome) == 0  # fmt: skip
    for reason in ESCALATION_REASONS:
        assert value(registry, P + "escalations_total", provider="openai", model="m",
                     reason=reason) == 0  # fmt: skip
    for kind in WARNING_KINDS:
        assert value(registry, P + "livekit_warnings_total", kind=kind) == 0


def test_provider_and_model_are_sanitized(registry: CollectorRegistry, metrics: Metrics) -> None:
    """provider/model are lowercased, limited to [a-z0-9._-] and 64 characters."""
    assert sanitize_label("Azure/OpenAI") == "azure_openai"
    assert sanitize_label("gpt-4o-realtime-preview-2024-12-17") == (
        "gpt-4o-realtime-preview-2024-12-17"
    )
    assert sanitize_label('x"}\n{evil="1') == "x____evil__1"
    assert sanitize_label("m" * 200) == "m" * 64
    assert sanitize_label("  ") == "unknown"
    s = metrics.session("OpenAI", "GPT Realtime")
    s.turn()
    assert value(registry, P + "turns_total", provider="openai", model="gpt_realtime") == 1


def test_unknown_enum_values_become_other_and_count_an_error(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    """An unknown kind, action, outcome or reason is recorded as "other" and never raises."""
    s = metrics.session("openai", "m")
    s.stall("nonsense")
    s.recovery("dance", "maybe", 1.0)
    s.escalation("bored")
    s.silence("weird", 1.0)
    s.livekit_warning("new_warning")
    assert value(registry, P + "stalls_total", provider="openai", model="m", kind="other") == 1
    assert value(registry, P + "recoveries_total", provider="openai", model="m", action="other",
                 outcome="other") == 1  # fmt: skip
    assert value(registry, P + "escalations_total", provider="openai", model="m",
                 reason="other") == 1  # fmt: skip
    assert value(registry, P + "silence_seconds_count", kind="other", provider="openai",
                 model="m") == 1  # fmt: skip
    assert value(registry, P + "livekit_warnings_total", kind="other") == 1
    # stall, recovery (action and outcome), escalation, silence, warning
    assert value(registry, P + "watchdog_errors_total") == 6


def test_invalid_durations_are_dropped_and_counted(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    """A negative or NaN duration is not observed and counts a watchdog error."""
    s = metrics.session("openai", "m")
    s.reply_latency(-1.0)
    s.reply_latency(math.nan)
    s.recovery("reissue", "failure", None)
    assert value(registry, P + "reply_latency_seconds_count", provider="openai", model="m") == 0
    assert value(registry, P + "recovery_seconds_count", action="reissue", provider="openai",
                 model="m") == 0  # fmt: skip
    assert value(registry, P + "recoveries_total", provider="openai", model="m",
                 action="reissue", outcome="failure") == 1  # fmt: skip
    assert value(registry, P + "watchdog_errors_total") == 2


def test_a_broken_metric_never_raises_into_the_caller(
    registry: CollectorRegistry, metrics: Metrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If prometheus_client raises, the call returns normally and a watchdog error is counted."""
    s = metrics.session("openai", "m")

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("mmap gone")

    monkeypatch.setattr(s._turns, "inc", boom)
    s.turn()
    assert value(registry, P + "watchdog_errors_total") == 1


def test_set_stalled_is_idempotent_and_session_end_undoes_it(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    """set_stalled moves the gauge only on a change; session_ended takes back its share."""
    a = metrics.session("openai", "m")
    b = metrics.session("openai", "m")
    a.session_started()
    a.session_started()
    b.session_started()
    a.set_stalled(True)
    a.set_stalled(True)
    b.set_stalled(False)
    assert value(registry, P + "sessions_active") == 2
    assert value(registry, P + "sessions_stalled") == 1
    a.set_stalled(False)
    a.set_stalled(False)
    assert value(registry, P + "sessions_stalled") == 0
    b.set_stalled(True)
    b.session_ended()
    b.session_ended()
    assert value(registry, P + "sessions_active") == 1
    assert value(registry, P + "sessions_stalled") == 0
    a.session_ended()
    assert value(registry, P + "sessions_active") == 0


def test_build_info_carries_the_installed_versions(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    """build_info is 1 with this package's and livekit-agents' installed versions."""
    assert supervisor_version() not in ("", "0+unknown")
    assert livekit_agents_version().startswith("1.")
    assert value(registry, P + "build_info", version=supervisor_version(),
                 livekit_agents=livekit_agents_version()) == 1  # fmt: skip


def test_prepare_multiproc_dir_creates_and_wipes_db_files(tmp_path: Path) -> None:
    """The directory is created if missing; only *.db files are deleted."""
    target = tmp_path / "a" / "b"
    assert prepare_multiproc_dir(target) == target
    assert target.is_dir()
    (target / "counter_1.db").write_bytes(b"x")
    (target / "gauge_livesum_2.db").write_bytes(b"x")
    (target / "README").write_text("keep")
    prepare_multiproc_dir(target)
    assert sorted(p.name for p in target.iterdir()) == ["README"]


# -- multiprocess: real processes writing one directory -------------------------------------------

CHILD = """
import sys
from realtime_supervisor.metrics import Metrics
turns, started, stalled = (int(x) for x in sys.argv[1:4])
m = Metrics()
s = m.session("openai", "gpt-realtime")
for _ in range(turns):
    s.turn()
s.stall("no_reply")
s.escalation("ladder_exhausted")
s.reply_latency(1.0)
s.learned_deadline("reply_timeout", turns / 2)
for _ in range(started):
    x = m.session("openai", "gpt-realtime")
    x.session_started()
    x.set_stalled(bool(stalled))
m.set_ready(True)
print("ok", flush=True)
"""


def run_children(directory: Path, specs: list[tuple[int, int, int]]) -> list[int]:
    """Run one process per (turns, sessions started, stalled) with the directory set; their pids."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, *map(str, spec)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for spec in specs
    ]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
        assert out.decode().strip() == "ok"
    return [p.pid for p in procs]


@pytest.fixture
def multiproc_dir(tmp_path: Path) -> Iterator[Path]:
    yield prepare_multiproc_dir(tmp_path / "prom")


def merged(directory: Path) -> CollectorRegistry:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    return registry


def test_three_processes_add_up_in_the_multiprocess_collector(multiproc_dir: Path) -> None:
    """Counters and histograms from three processes are summed; build_info stays one series."""
    run_children(multiproc_dir, [(1, 1, 0), (2, 1, 1), (4, 2, 1)])
    reg = merged(multiproc_dir)
    labels = {"provider": "openai", "model": "gpt-realtime"}
    assert value(reg, P + "turns_total", **labels) == 7
    assert value(reg, P + "stalls_total", kind="no_reply", **labels) == 3
    assert value(reg, P + "escalations_total", reason="ladder_exhausted", **labels) == 3
    assert value(reg, P + "reply_latency_seconds_count", **labels) == 3
    assert value(reg, P + "reply_latency_seconds_bucket", le="1.0", **labels) == 3
    assert value(reg, P + "sessions_active") == 4
    assert value(reg, P + "sessions_stalled") == 3
    # each process learns on its own: the longest wait any of them uses
    assert value(reg, P + "learned_deadline_seconds", deadline="reply_timeout", **labels) == 2.0
    info = [k for k in samples(reg) if k[0] == P + "build_info"]
    assert len(info) == 1
    assert value(reg, P + "build_info", version=supervisor_version(),
                 livekit_agents=livekit_agents_version()) == 1  # fmt: skip
    # Worker-level gauges belong to the main process: job processes never write them.
    assert not [k for k in samples(reg) if k[0] in (P + "ready", P + "draining")]


def test_live_gauges_drop_a_dead_process_after_mark_dead(multiproc_dir: Path) -> None:
    """After mark_dead(pid) that process's sessions leave the livesum gauges; counters stay."""
    pids = run_children(multiproc_dir, [(1, 1, 1), (1, 2, 1), (1, 3, 0)])
    assert value(merged(multiproc_dir), P + "sessions_active") == 6
    assert value(merged(multiproc_dir), P + "sessions_stalled") == 3
    mark_dead(pids[1], multiproc_dir)
    reg = merged(multiproc_dir)
    assert value(reg, P + "sessions_active") == 4
    assert value(reg, P + "sessions_stalled") == 1
    assert value(reg, P + "turns_total", provider="openai", model="gpt-realtime") == 3


def test_sweep_dead_marks_only_processes_that_are_gone(multiproc_dir: Path) -> None:
    """sweep_dead drops the live gauges of exited processes and leaves live ones alone."""
    pids = run_children(multiproc_dir, [(1, 1, 0), (1, 1, 1)])
    live = {pids[0]}
    swept = sweep_dead(multiproc_dir, alive=lambda pid: pid in live)
    assert swept == [pids[1]]
    assert value(merged(multiproc_dir), P + "sessions_active") == 1
    assert sweep_dead(multiproc_dir) == [pids[0]]  # really exited
    assert not (value(merged(multiproc_dir), P + "sessions_active") or 0)


def test_a_zombie_process_is_dead_for_the_gauges(multiproc_dir: Path) -> None:
    """A job process that exited but was not reaped yet (a zombie) writes nothing more: the sweep
    folds it, so its session leaves sessions_active, while its counters stay in the totals."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "2", "1", "0"], env=env)
    try:
        # Not waited for: once it exits it stays a zombie until wait().
        deadline = time.monotonic() + 60
        while "Z" not in Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2][:3]:
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.05)
        assert pid_alive(proc.pid) is False
        assert value(merged(multiproc_dir), P + "sessions_active") == 1
        assert sweep_dead(multiproc_dir) == [proc.pid]
        reg = merged(multiproc_dir)
        assert not (value(reg, P + "sessions_active") or 0)
        assert value(reg, P + "turns_total", provider="openai", model="gpt-realtime") == 2
        # Its files are gone, folded into one archive per kind (build_info's max gauge too).
        assert sorted(p.name for p in multiproc_dir.iterdir()) == [
            "counter_archive.db",
            "gauge_max_archive.db",
            "histogram_archive.db",
        ]
    finally:
        proc.wait(timeout=60)
    assert pid_alive(os.getpid())
