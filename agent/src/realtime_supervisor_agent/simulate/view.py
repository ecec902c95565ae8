"""What a `simulate` run shows: the live view while it runs, the final table, the title line."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .judge import Stats
from .options import SimulateOptions
from .run import RunState, Summary, run

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = ["render_summaries", "run_with_view", "summary_title"]


def _fmt_stats(s: Stats) -> str:
    if s.p50 is None:
        return "-"
    return f"{s.p50:.2f} / {s.p95:.2f} / {s.max:.2f}"


def _fmt_map(m: Mapping[str, Any], sep: str = ", ") -> str:
    return sep.join(f"{k} {v}" for k, v in m.items()) or "-"


def _fmt_recoveries(r: Mapping[str, Mapping[str, int]], sep: str = ", ") -> str:
    return (
        sep.join(
            f"{a} {c.get('success', 0)} ok / {c.get('failure', 0)} failed" for a, c in r.items()
        )
        or "-"
    )


def _summary_rows(s: Summary) -> list[tuple[str, str]]:
    rows = [
        ("turns answered", f"{s.turns_answered} / {s.turns}"),
        ("turns unanswered", str(s.turns_unanswered)),
        ("stalls", _fmt_map(s.stalls, "\n")),
        ("recoveries", _fmt_recoveries(s.recoveries, "\n")),
        ("escalations", str(s.escalations)),
        ("silence p50/p95/max s", _fmt_stats(s.silence_seconds)),
        ("recovery p50/p95/max s", _fmt_stats(s.recovery_seconds)),
        ("overlapping replies", str(s.overlapping_replies)),
    ]
    if s.by_fault is not None:
        for kind, entry in s.by_fault.items():
            rows.append((f"  {kind}", f"{entry['answered']} / {entry['turns']} answered"))
    if s.mode == "timer":
        rows.append(("timer fires", str(s.timer_fires)))
    rows.append(("duration (s)", f"{s.duration_seconds:.1f}"))
    return rows


def render_summaries(summaries: Sequence[Summary]) -> Table:
    """A rich table of one summary, or several side by side (--compare)."""
    from rich.table import Table

    table = Table()
    table.add_column("")
    for s in summaries:
        table.add_column("unsupervised" if s.mode == "none" else s.mode)
    rows = [_summary_rows(s) for s in summaries]
    labels = [label for label, _ in max(rows, key=len)]
    for label in labels:
        values = [dict(r).get(label, "-") for r in rows]
        table.add_row(label, *values)
    return table


def summary_title(s: Summary) -> str:
    """One line naming what was run."""
    per = s.turns // max(s.sessions, 1)
    title = f"simulate: {s.sessions} sessions x {per} turns"
    if s.faults is not None:
        title += f", faults {s.faults}, seed {s.seed}"
    else:
        title += f", {s.endpoint} endpoint"
    return title + f", livekit-agents {s.livekit_agents}"


def _live_table(state: RunState) -> Table:
    from rich.table import Table

    snap = state.snapshot()
    table = Table(
        title=f"simulate ({snap['mode']}), {snap['elapsed']:.0f} s",
        title_justify="left",
        show_header=False,
    )
    table.add_column("")
    table.add_column("")
    table.add_row("sessions", f"{snap['sessions_done']} / {snap['sessions']} done")
    table.add_row(
        "turns answered",
        f"{snap['turns_answered']} of {snap['turns_done']} done ({snap['turns_total']} planned)",
    )
    table.add_row("stalls", _fmt_map(snap["stalls"]))
    table.add_row("recoveries", _fmt_recoveries(snap["recoveries"]))
    table.add_row("escalations", str(snap["escalations"]))
    table.add_row("recovery p50/p95/max s", _fmt_stats(snap["recovery"]))
    if snap["mode"] == "timer":
        table.add_row("timer fires", str(snap["timer_fires"]))
    return table


def _progress_line(state: RunState) -> str:
    snap = state.snapshot()
    stalls = sum(snap["stalls"].values())
    ok = sum(c.get("success", 0) for c in snap["recoveries"].values())
    return (
        f"[{snap['mode']}] {snap['elapsed']:.0f}s sessions {snap['sessions_done']}/"
        f"{snap['sessions']} turns answered {snap['turns_answered']}/{snap['turns_done']} "
        f"(of {snap['turns_total']}) stalls {stalls} recovered {ok} "
        f"escalations {snap['escalations']}"
    )


async def run_with_view(options: SimulateOptions, console: Console, live: bool) -> Summary:
    holder: dict[str, RunState] = {}

    def on_start(state: RunState) -> None:
        holder["state"] = state

    task = asyncio.create_task(run(options, on_start=on_start))
    if live:
        from rich.live import Live

        with Live(console=console, refresh_per_second=4, transient=True) as view:
            while not task.done():
                if "state" in holder:
                    view.update(_live_table(holder["state"]))
                await asyncio.wait({task}, timeout=0.25)
    else:
        while not task.done():
            await asyncio.wait({task}, timeout=5.0)
            if not task.done() and "state" in holder:
                print(_progress_line(holder["state"]), flush=True)
    return task.result()
