"""The soak (bench/soak.py), bounded: 1,200 real job processes through the real service."""

from __future__ import annotations

import pytest

from bench.soak import soak


@pytest.mark.timeout(400)  # a guard: about a minute on an idle 2-core machine
async def test_files_time_and_cpu_stay_flat_and_every_counter_is_exact() -> None:
    """After 1,200 forked job processes (real prometheus_client multiprocess files, a quarter
    never ending their session, zombies included) the directory holds only the live processes'
    files and the archives; /metrics time and the service's CPU do not grow with the calls served;
    turns, escalations, the histogram count and sessions_active are exact at every checkpoint,
    and turns_total, scraped throughout, never goes backwards nor above the truth."""
    result = await soak(1200, batch=25, checkpoints=4)
    rows = result["checkpoints"]
    assert [r["processes"] for r in rows] == [300, 600, 900, 1200]
    for row in rows:
        assert row["exact"], row
        # the spawner's own files (it stays alive) plus one archive per type: not 4 per call
        assert row["files"] <= 12, row
    assert result["monotonic"] and result["scrapes_while_running"] > 20, result
    first, last = rows[0], rows[-1]
    # Flat, with room for a shared machine: the unbounded directory grew about 1 ms per
    # process (1.1 s at 1,000), and its poll's CPU with it.
    assert last["metrics_ms"] <= 3 * first["metrics_ms"] + 50, rows
    assert last["cpu_per_s"] <= 3 * first["cpu_per_s"] + 0.05, rows
