"""bench: the quick effectiveness benchmark holds the behaviour floors (the CI variant, < 90 s).

One run of `bench.effectiveness --quick` (the watchdog over every fault kind and the clean corpus,
one session of six turns each, real livekit against the chaos server, concurrently), then its
behaviour floors: answered, the right verdict per fault, no false action, no overlap, escalation.
CI asserts behaviour; the bench asserts time: the timing floors (caller silence and detection
latency against their limits) are judged by `make bench`, in the same run as these.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import realtime_supervisor_agent.models  # noqa: F401 - imported here, not inside the run's event loop
from bench.effectiveness import floors, measure, quick_plan

pytestmark = [pytest.mark.livekit, pytest.mark.timeout(90)]

# Floors the committed results show as not holding, each with why; a floor breaking that is not
# listed fails the suite. Empty since drops are timed from livekit's "connection failed" warning.
KNOWN_BROKEN: dict[tuple[str, str], str] = {}
WATCHDOG = {
    "ack_timeout": 1.5,
    "reply_timeout": 5.0,
    "audio_gap_timeout": 2.0,
    "warning_grace": 1.0,
}


@pytest.fixture(scope="module")
def quick() -> dict[str, Any]:
    return asyncio.run(measure(quick_plan()))


def _key(floor: dict[str, Any]) -> tuple[str, str]:
    return (floor["floor"], floor["scope"])


def test_the_quick_benchmark_covers_every_fault_kind_and_the_clean_corpus(
    quick: dict[str, Any],
) -> None:
    """Every fault kind and every clean scenario was run and judged."""
    scenarios = {r["scenario"] for r in quick["rows"]}
    from bench.effectiveness import FAULT_KINDS

    assert set(FAULT_KINDS) <= scenarios
    assert {r["class"] for r in quick["rows"]} == {"fault", "sticky", "clean"}
    assert all(r["turns"] > 0 for r in quick["rows"])


def test_the_watchdog_holds_the_behaviour_floors(quick: dict[str, Any]) -> None:
    """Every behaviour floor holds: answered, the right verdict per fault, no false action, no
    overlap, escalation where nothing can answer. Timing floors are judged by `make bench` only
    (a shared 2-core machine moves latencies, not behaviour), so none is asserted here."""
    behaviour = [f for f in quick["floors"] if not f["timing"]]
    broken = [f for f in behaviour if not f["holds"] and _key(f) not in KNOWN_BROKEN]
    assert not broken, json.dumps(broken, indent=1)
    judged = {f["floor"] for f in behaviour}
    assert {
        "answered %",
        "verdict as the fault should produce",
        "actions on the clean corpus",
        "overlapping replies",
        "escalates (sessions escalated / sessions)",
        "escalates for the reason the fault should produce",
    } <= judged
    verdicts = {f["scope"] for f in behaviour if f["floor"].startswith("verdict")}
    from bench.effectiveness import FAULT_KINDS

    assert verdicts == set(FAULT_KINDS)  # every fault kind's verdict was judged


def test_timing_floors_are_the_latency_floors_and_still_reported(quick: dict[str, Any]) -> None:
    """The quick run still computes the timing floors (the bench judges them side by side with
    behaviour in one run); they are exactly the latency floors."""
    timing = [f for f in quick["floors"] if f["timing"]]
    assert timing
    assert all(f["floor"].startswith(("caller silence", "detection latency")) for f in timing), (
        timing
    )
    assert not any(
        f["floor"].startswith(("caller silence", "detection latency"))
        for f in quick["floors"]
        if not f["timing"]
    )


def test_floors_are_judged_from_the_figures() -> None:
    """A floor fails when its figure is past its limit (a watchdog run that answered too little)."""
    row = {
        "scenario": "no_response",
        "class": "fault",
        "mode": "watchdog",
        "answered_pct": 90.0,
        "gap": {"p95": 7.0},
        "overlapping": 1,
    }
    result = {"rows": [row], "detection": []}
    judged = floors(result, WATCHDOG)
    assert [f["holds"] for f in judged] == [False, False, False]
    assert [f["timing"] for f in judged] == [False, True, False]


def _detection(fault: str, verdicts: dict[str, int]) -> dict[str, Any]:
    return {
        "fault": fault,
        "verdicts": verdicts,
        "verdict": None,
        "threshold": None,
        "threshold_field": None,
        "from_onset": {"p95": None},
    }


@pytest.mark.parametrize(
    ("fault", "version", "reasons", "holds"),
    [
        ("flap", "1.8.9", {"reconnect_storm": 1}, True),
        ("flap", "1.8.9", {"ladder_exhausted": 1}, False),  # the storm went unnoticed
        ("fatal_error", "1.8.9", {"dead_session": 1}, True),
        ("fatal_error", "1.5.11", {"ladder_exhausted": 1}, True),
        ("fatal_error", "1.8.9", {}, False),
    ],
)
def test_a_sticky_fault_must_escalate_for_its_own_reason(
    fault: str, version: str, reasons: dict[str, int], holds: bool
) -> None:
    row = {
        "scenario": fault,
        "class": "sticky",
        "mode": "watchdog",
        "escalated_sessions": 1,
        "sessions": 1,
        "escalation_reasons": reasons,
        "overlapping": 0,
    }
    result = {"rows": [row], "detection": [], "livekit_agents": version}
    judged = [f for f in floors(result, WATCHDOG) if "reason" in f["floor"]]
    assert [f["holds"] for f in judged] == [holds]
    assert not judged[0]["timing"]


@pytest.mark.parametrize(
    ("fault", "version", "verdicts", "holds"),
    [
        ("no_response", "1.8.9", {"no_reply": 3}, True),
        # a verdict that fired is not thereby right: a drop is not a missing reply
        ("no_response", "1.8.9", {"no_reply": 2, "post_warning_silence": 1}, False),
        ("stall_mid", "1.8.9", {"none": 3}, False),
        ("late_resume", "1.8.9", {"none": 2, "audio_gap": 1}, True),
        ("multi_message", "1.8.9", {"none": 3}, True),
        ("multi_message", "1.5.11", {"none": 3}, False),
        ("multi_message", "1.5.11", {"post_warning_silence": 3}, True),
        ("fatal_error", "1.8.9", {"dead_session": 1}, True),
        ("fatal_error", "1.5.11", {"no_reply": 2}, True),
        ("fatal_error", "1.5.11", {"dead_session": 1}, True),
        ("flap", "1.8.9", {"post_warning_silence": 1}, True),  # the first drop, then the storm
        ("fatal_error", "1.8.9", {"no_reply": 1}, False),
        ("flap", "1.8.9", {}, False),
        ("flap", "1.8.9", {"audio_gap": 1}, False),
    ],
)
def test_the_verdict_floor_judges_what_the_fault_should_produce(
    fault: str, version: str, verdicts: dict[str, int], holds: bool
) -> None:
    """Each fault is judged against the verdict it should produce on that livekit version."""
    result = {"rows": [], "detection": [_detection(fault, verdicts)], "livekit_agents": version}
    judged = floors(result, WATCHDOG)
    verdict = [f for f in judged if f["floor"].startswith("verdict")]
    assert [f["holds"] for f in verdict] == [holds]
    assert not verdict[0]["timing"]


def test_the_committed_results_hold_the_effectiveness_floors_or_say_why() -> None:
    """The committed results exist for both livekit versions and record a verdict per floor."""
    results = Path(__file__).resolve().parents[1] / "bench" / "results"
    for tag in ("lk18", "lk15"):
        doc = json.loads((results / f"effectiveness-{tag}.json").read_text(encoding="utf-8"))
        assert doc["floors"], tag
        assert all(isinstance(f["holds"], bool) for f in doc["floors"])
