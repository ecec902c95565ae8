"""bench.overhead: the CPU A/B design (crossover twins), its statistics, and its flags.

The figures themselves come from `python -m bench.overhead`, never from a timed test; these tests
check that the harness measures what it says: roles swap, every call is answered, intervals hold
the median, and bad flags are refused by name.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections.abc import Callable

import pytest

from bench._common import positive_int
from bench.effectiveness import main as effectiveness_main
from bench.overhead import _round, _Twins, chaos_subprocess, crossover, main, median_ci
from bench.scrape import main as scrape_main


def test_crossover_swaps_roles_every_round_and_odd_pairs_start_swapped() -> None:
    """Each twin supervises in half the rounds, alternating; pair 1 starts where pair 0 does not."""
    plan = crossover(0, 4)
    assert plan == [
        ("watchdog", "none"),
        ("none", "watchdog"),
        ("watchdog", "none"),
        ("none", "watchdog"),
    ]
    assert crossover(1, 2) == [("none", "watchdog"), ("watchdog", "none")]
    for pair in range(3):
        for modes in crossover(pair, 5):
            assert sorted(modes) == ["none", "watchdog"]


def test_median_interval_holds_the_median_and_is_reproducible() -> None:
    """The bootstrap interval brackets the sample median, narrows with more data, and is seeded."""
    values = [1.0 + 0.01 * ((7 * k) % 11 - 5) for k in range(30)]
    low, high = median_ci(values)
    assert low <= statistics.median(values) <= high
    assert median_ci(values) == [low, high]
    wide = median_ci(values[:6])
    assert wide[1] - wide[0] >= high - low
    assert median_ci([1.5]) == [1.5, 1.5]


@pytest.mark.parametrize("text", ["0", "-3", "two", "1.5"])
def test_positive_int_refuses_what_is_not_a_count(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected an integer >= 1"):
        positive_int(text)


@pytest.mark.parametrize(
    ("command", "flag"),
    [
        (main, "--pairs"),
        (main, "--dense-rounds"),
        (effectiveness_main, "--seeds"),
        (effectiveness_main, "--capacity"),
        (scrape_main, "--jobs"),
    ],
)
def test_the_bench_commands_name_a_bad_count(
    command: Callable[[list[str]], int], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A count of 0 is refused before anything runs, naming the flag."""
    with pytest.raises(SystemExit) as exc:
        command([flag, "0"])
    assert exc.value.code == 2
    assert f"{flag}: expected an integer >= 1, got 0" in capsys.readouterr().err


@pytest.mark.livekit
@pytest.mark.timeout(120)
def test_a_cpu_round_answers_every_call_at_the_servers_reply_length() -> None:
    """The chaos server answers with the reply length the callers judge by (a mismatch once left
    every CPU round unanswered), and the supervised round is a clean call: answered, no stall."""

    async def one(url: str) -> dict[str, object]:
        return await _round(url, "watchdog", 2, 1, "test", reply_seconds=2.5)

    with chaos_subprocess(2.5) as url:
        result = asyncio.run(one(url))
    assert result["answered"] == result["turns"] == 2
    assert result["stalls"] == 0
    assert isinstance(result["cpu_seconds"], float) and result["cpu_seconds"] > 0


@pytest.mark.livekit
@pytest.mark.timeout(240)
def test_twins_run_the_modes_they_are_told_round_by_round() -> None:
    """Two real child processes: each round's JSON reports the mode asked of that twin."""
    with chaos_subprocess(1.0) as url:
        twins = _Twins(url, 1, 1, 1.0, "test")
        try:
            first = twins.round(("watchdog", "none"))
            second = twins.round(("none", "watchdog"))
        finally:
            twins.close()
    assert [r["mode"] for r in first] == ["watchdog", "none"]
    assert [r["mode"] for r in second] == ["none", "watchdog"]
    for r in first + second:
        assert r["answered"] == r["turns"] == 1
        assert r["cpu_per_session_minute"] > 0


def test_the_committed_cpu_figures_were_measured_on_answered_crossover_rounds() -> None:
    """bench/results/overhead.json: every call answered, and each twin supervised in some rounds
    and not in others (so a process's own luck is on both sides of the ratio)."""
    import json
    from pathlib import Path

    doc = json.loads(
        (Path(__file__).resolve().parents[1] / "bench" / "results" / "overhead.json").read_text()
    )
    for section in ("cpu", "cpu_dense"):
        cpu = doc[section]
        assert cpu["all_answered"] is True, section
        rounds = [r for r in cpu["pairs"] if r["kind"] == "ab"]
        assert len(rounds) == cpu["twins"] * cpu["rounds"]
        for r in rounds:
            assert r["test"]["answered"] == r["test"]["turns"] > 0
            assert r["base"]["answered"] == r["base"]["turns"] > 0
        low, high = cpu["pair_ratio_median_ci95"]
        assert low <= cpu["pair_ratio_median"] <= high
