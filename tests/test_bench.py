"""bench: the quick effectiveness benchmark holds the issue's floors (the CI variant, < 90 s).

One run of `bench.effectiveness --quick` (the watchdog over every fault kind and the clean corpus,
one session of six turns each, real livekit against the chaos server, concurrently), then its
floors.
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
# Detection latency is judged on the worst of three faulted turns per kind, from the chaos
# server's clock: one event-loop stall of a loaded CI machine (~0.1 s) can put it past threshold +
# 0.1 s. Those floors, and only those, get a second run; a real regression fails both.
TIMING = "detection latency"


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


@pytest.mark.timeout(200)
def test_the_watchdog_holds_the_floors(quick: dict[str, Any]) -> None:
    """Every floor holds, except the known-broken ones listed above."""
    broken = [f for f in quick["floors"] if not f["holds"] and _key(f) not in KNOWN_BROKEN]
    if broken and all(f["floor"].startswith(TIMING) for f in broken):
        again = asyncio.run(measure(quick_plan()))["floors"]
        broken = [f for f in again if f["floor"].startswith(TIMING) and not f["holds"]]
        broken = [f for f in broken if _key(f) not in KNOWN_BROKEN]
    assert not broken, json.dumps(broken, indent=1)
    assert len(quick["floors"]) > len(KNOWN_BROKEN) + 10  # the floors were really judged


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
    judged = floors(result, {"reply_timeout": 5.0, "audio_gap_timeout": 2.0, "warning_grace": 1.0})
    assert [f["holds"] for f in judged] == [False, False, False]


def test_the_committed_results_hold_the_effectiveness_floors_or_say_why() -> None:
    """The committed results exist for both livekit versions and record a verdict per floor."""
    results = Path(__file__).resolve().parents[1] / "bench" / "results"
    for tag in ("lk18", "lk15"):
        doc = json.loads((results / f"effectiveness-{tag}.json").read_text(encoding="utf-8"))
        assert doc["floors"], tag
        assert all(isinstance(f["holds"], bool) for f in doc["floors"])
