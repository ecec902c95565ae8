"""Benchmarks 1 and 2: effectiveness over the fault catalogue, and detection latency.

    .venv/bin/python -m bench.effectiveness            # both livekit versions in turn, ~30 min
    .venv/bin/python -m bench.effectiveness --quick    # the CI variant: watchdog only, < 90 s

Every fault kind of the chaos catalogue, and a clean corpus that must never look like a stall, is
run against the three approaches side by side, in one process per livekit version, concurrently
(the machine is shared and noisy, so approaches are never compared across runs):

- `none`: stock livekit, unsupervised;
- `timer`: the hand-written timer (bench/handwritten_timer.py);
- `watchdog`: the Supervisor.

A run is `simulate.run()`: real `AgentSession`s with the real plugin against the embedded chaos
server, callers that speak, listen and give up after `patience` seconds of silence. Per fault kind
each session takes 6 turns, three of them faulted: one per pair of turns, its place in the pair
drawn from the seed (three faults a session stay within the watchdog's recovery budget of three
a minute, which this benchmark is not about). `fatal_error`, `flap` and `fatal_close` are sticky
(every later turn fails too): turn 2 of 3; they must escalate. On livekit 1.8 they run again as
`<kind>+fallback` with a fallback model configured (`simulate --fallback`: a second, clean chaos
server behind livekit's RealtimeModelFallbackAdapter), where the faulted turn must be answered;
livekit 1.5.11 has no adapter, so its half has no fallback rows.

Caller silence is what the caller lived through: `gap`, the longest stretch without agent audio
from the end of their turn until the answer had played (for a reply that never starts, the whole
wait; for a reply that stops mid-sentence, the gap inside it), `patience` when never answered.
`silence` is the whole wait from turn end to the answer's first audio (it includes the audio
before a gap).

Detection latency (watchdog runs): from the fault's onset, as the chaos server recorded it, to the
watchdog's verdict, on the same monotonic clock. For no_reply faults the onset is when the server
should have started the response.

Writes bench/results/effectiveness-lk18.json and effectiveness-lk15.json (the 1.5.11 half runs in
.venv-lk15 as a subprocess); bench/report.py turns them into RESULTS.md and the plots.

Over the house limit on purpose: the scenario catalogue, the floors and the runner are read
together when a floor moves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench._common import (
    RESULTS,
    ROOT,
    GcPauses,
    LoopLag,
    freeze_startup_heap,
    positive_int,
    stats,
    table,
    write_json,
)

FAULT_KINDS = (
    "no_response",
    "failed_response",
    "error_event",
    "stall_mid",
    "late_resume",
    "drop_mid",
    "multi_message",
    "multi_message_empty",
    "fatal_error",
    "flap",
    "dead_mid",
    "tcp_drop",
    "session_limit",
    "incomplete",
    "content_filter",
    "fatal_close",
)
# every later turn of the session fails the same way once they bite (the chaos server's
# STICKY_KINDS): turn 2 of 3, and judged by the escalation they must end in
# the faults the hold-cue rows run: replies lost before a sound (the cue is the first sound)
CUE_FAULTS = ("no_response", "failed_response")
STICKY = ("fatal_error", "flap", "fatal_close")
MODES = ("none", "timer", "watchdog")
# stock livekit takes no action by construction; it runs the clean corpus all the same, as the
# reference the watchdog's "whole answer heard" is compared with (never worse than stock)
CLEAN_MODES = ("none", "timer", "watchdog")
PATIENCE = 15.0
# "whole answer heard" of a turn never answered: worse than any answered turn of the corpus (the
# caller gave up after PATIENCE of silence and heard no answer at all)
NEVER_HEARD = 2 * PATIENCE
# the watchdog's "whole answer heard" p95 may exceed stock's by at most this, on every kind
NEVER_WORSE_SLACK = 0.5

# The floors' thresholds: which WatchdogConfig field bounds each fault's silence, and the slack
# the issue allows on top (1.5 s for a re-issue, 5 s when the connection is re-established).
SILENCE_LIMIT: dict[str, tuple[str, float]] = {
    # never acknowledged (or failed before a sound): found at ack_timeout after the server's
    # VAD ended the turn (a few hundred ms after the caller stopped), answered as fast as any
    # reply (about 0.6 s); 1.0 + 1.0 = the 2.0 s
    "no_response": ("ack_timeout", 1.0),
    "failed_response": ("ack_timeout", 1.0),
    "error_event": ("ack_timeout", 1.0),
    "stall_mid": ("audio_gap_timeout", 1.5),
    "late_resume": ("audio_gap_timeout", 1.5),
    # the socket drops: livekit reconnects, logs the discarded generation, the watchdog re-asks
    "drop_mid": ("warning_grace", 5.0),
    "multi_message": ("warning_grace", 1.5),
    "multi_message_empty": ("warning_grace", 1.5),
    # the connection goes dead mid-reply, no close frame (livekit has no heartbeat, so nothing but
    # the watchdog notices): the gap after the last audio (audio_gap_timeout), then a reconnect
    # (the re-issue into the dead socket is never acknowledged, so it is not waited for) and the
    # answer over the new socket. The issue's own limit: audio_gap_timeout + 3 s.
    "dead_mid": ("audio_gap_timeout", 3.0),
    # the connection is lost and livekit notices at once (a TCP abort; the 60-minute limit's
    # close 1001 after its error): the same path as drop_mid, so drop_mid's limit
    "tcp_drop": ("warning_grace", 5.0),
    "session_limit": ("warning_grace", 5.0),
    # the answer is cut mid-sentence by a response that ends incomplete: what came plays out,
    # warning_grace of silence after it, then a re-issue over a healthy socket (1.5 s, as for
    # every re-issue above)
    "incomplete": ("warning_grace", 1.5),
    "content_filter": ("warning_grace", 1.5),
}
VERDICT_THRESHOLD = {
    # the lost replies of the catalogue are never acknowledged (or fail at once): the no_reply
    # row that finds them is the acknowledgement deadline's
    "no_reply": "ack_timeout",
    "audio_gap": "audio_gap_timeout",
    "post_warning_silence": "warning_grace",
    "dead_session": None,  # immediate
    "reconnect_storm": None,
}
DETECTION_SLACK = 0.1
# with a fallback configured, the sticky faults' turns answered (issue 15: >= 95%)
FALLBACK_PCT = 95.0
# clean scenarios where every turn must be answered whole, besides no action (issue 13: the
# caller's noise, with livekit's resume after a false interruption, loses no answer)
ALL_ANSWERED = frozenset({"caller_noise"})

# The verdict each fault SHOULD produce (the first verdict at or after its onset; "none" = no
# verdict), judged against what the fault is, not against whatever fired. Two depend on livekit:
# before 1.5.12 livekit drops a response's second message item and logs the multi-message
# warning (so the lost item is post_warning_silence), from 1.5.12 on it plays both (nothing to
# find); a fatal error is dead_session on both (1.8 closes the session; on 1.5, which reports it
# as recoverable, the watchdog reads its code).
NO_REPLY_VERDICTS = frozenset({"no_reply"})
EXPECTED_VERDICTS: dict[str, frozenset[str]] = {
    "no_response": NO_REPLY_VERDICTS,
    "failed_response": NO_REPLY_VERDICTS,
    "error_event": NO_REPLY_VERDICTS,
    "stall_mid": frozenset({"audio_gap"}),
    # the reply would resume by itself: finding the gap (and re-asking) or waiting for it are
    # both right; anything else is not
    "late_resume": frozenset({"audio_gap", "none"}),
    # the socket goes mid-reply: livekit's "connection failed" warning, or the gap it leaves
    "drop_mid": frozenset({"post_warning_silence", "audio_gap"}),
    # the socket keeps closing: the reply owed is lost to the first drop (livekit's "connection
    # failed" warning) or never acknowledged, and the storm of reconnects follows; which is
    # found first is livekit's retry cadence against the deadlines. What defines the fault is
    # the storm: the escalation-reason floor checks that it is what escalates.
    "flap": frozenset({"reconnect_storm", "post_warning_silence", "no_reply"}),
    # the socket freezes with the response open: the reply in progress goes silent
    "dead_mid": frozenset({"audio_gap"}),
    # as drop_mid: livekit's "connection failed" warning, or the gap the lost socket leaves
    "tcp_drop": frozenset({"post_warning_silence", "audio_gap"}),
    "session_limit": frozenset({"post_warning_silence", "audio_gap"}),
    # response.done incomplete: cut before the server sent any audio, a lost reply (no_reply at
    # once); after, the silence once what came has played (post_warning_silence)
    "incomplete": frozenset({"post_warning_silence", "no_reply"}),
    "content_filter": frozenset({"post_warning_silence", "no_reply"}),
    # the quota error and the close together: livekit's fatal code (1.8) or the watchdog's own
    # reading of the code (1.5) ends the session at once
    "fatal_close": frozenset({"dead_session"}),
}
# Why a sticky fault must escalate (no fallback configured): what the session dies of.
EXPECTED_ESCALATIONS: dict[str, frozenset[str]] = {
    # the storm, also when the ladder runs out before livekit's retry cadence (0.1 s, then 2 s)
    # reaches the storm count: the policy names a ladder run out with livekit's own reconnects
    # in the storm window the storm
    "flap": frozenset({"reconnect_storm"}),
    "fatal_error": frozenset({"dead_session"}),
    # every reconnect is torn down the same way: nothing on this account can answer
    "fatal_close": frozenset({"dead_session"}),
}


def expected_verdicts(fault: str, livekit_version: str) -> frozenset[str]:
    """The verdicts `fault` should produce on this livekit version (see EXPECTED_VERDICTS)."""
    version = tuple(int(x) for x in re.findall(r"\d+", livekit_version)[:3])
    if fault in ("multi_message", "multi_message_empty"):
        return frozenset({"none"} if version >= (1, 5, 12) else {"post_warning_silence"})
    if fault == "fatal_error":
        # 1.5 reports the quota error as recoverable; the watchdog reads its code, so it is
        # dead_session there too (issue 13), never a no_reply that waits for the deadline
        return frozenset({"dead_session"})
    return EXPECTED_VERDICTS[fault]


def expected_escalations(fault: str, livekit_version: str) -> frozenset[str]:
    """The escalation reasons a sticky fault should end in (see EXPECTED_ESCALATIONS)."""
    # the same on every version: the watchdog reads the quota code on 1.5 as on 1.8
    return EXPECTED_ESCALATIONS[fault]


@dataclass(frozen=True)
class Scenario:
    """One row of the benchmark: a schedule (or caller behaviour) run in several modes."""

    name: str
    kind: str  # "fault" | "sticky" | "fallback" | "cue" | "clean"
    options: dict[str, Any]
    modes: tuple[str, ...]
    seeds: tuple[int, ...]
    faulted: str | None = None  # the fault kind whose turns are judged


@dataclass
class Plan:
    sessions: int = 4
    turns: int = 6
    seeds: tuple[int, ...] = (1, 2, 3)
    clean_seeds: tuple[int, ...] = (1,)
    modes: tuple[str, ...] = MODES
    clean_modes: tuple[str, ...] = CLEAN_MODES
    capacity: int = 24  # concurrent sessions in this process
    long_answer: float = 12.0
    tool_seconds: float = 15.0
    silent_seconds: float = 60.0
    silent_sessions: int = 2
    # the sticky faults again with a fallback model (a second, clean chaos server behind
    # livekit's RealtimeModelFallbackAdapter); None = when this livekit has the adapter (1.8+)
    fallback: bool | None = None
    fallback_modes: tuple[str, ...] = MODES
    scenarios: list[Scenario] = field(default_factory=list)


def fault_schedule(kind: str, seed: int, turns: int) -> str:
    """One fault per pair of turns, its place in the pair drawn from (seed, kind)."""
    rng = random.Random(f"{seed}/{kind}")
    tokens: list[str] = []
    for _ in range((turns + 1) // 2):
        tokens += [kind, "clean"] if rng.random() < 0.5 else ["clean", kind]
    return ",".join(tokens[:turns])


def build_plan(plan: Plan) -> Plan:
    s: list[Scenario] = []
    for kind in FAULT_KINDS:
        if kind in STICKY:
            opts = {"faults": f"clean,{kind},clean", "turns": 3}
            s.append(Scenario(kind, "sticky", opts, plan.modes, plan.seeds, kind))
        else:
            s.append(Scenario(kind, "fault", {}, plan.modes, plan.seeds, kind))
    fallback = plan.fallback
    if fallback is None:
        from realtime_supervisor_agent.fallback import has_fallback_adapter

        fallback = has_fallback_adapter()
    if fallback:
        # the turn the primary cannot answer is answered from the fallback (the session then
        # stays there: later turns are the fallback's, not the fault's, and are not judged)
        for kind in STICKY:
            opts = {"faults": f"clean,{kind},clean", "turns": 3, "fallback": True}
            s.append(
                Scenario(
                    f"{kind}+fallback", "fallback", opts, plan.fallback_modes, plan.seeds, kind
                )
            )
    # the "one moment" cue (simulate --hold-cue chime): the caller hears it during the recovery,
    # before the answer; judged on its own (the answer waits for the cue to end, by design)
    for kind in CUE_FAULTS:
        opts = {"hold_cue": "chime"}
        s.append(Scenario(f"{kind}+cue", "cue", opts, ("watchdog",), plan.seeds, kind))
    half = max(2, plan.turns // 2 + plan.turns % 2)
    clean = [
        Scenario("slow_first_audio=4", "clean", {"faults": "slow_first_audio=4"}, (), ()),
        Scenario(
            f"long_answer={plan.long_answer:g}",
            "clean",
            {"faults": f"long_answer={plan.long_answer:g},clean", "turns": half},
            (),
            (),
        ),
        Scenario(
            f"tool_call={plan.tool_seconds:g}",
            "clean",
            # the caller waits for the tool (patience above it): a person told "one moment"
            {
                "faults": f"tool_call={plan.tool_seconds:g},clean",
                "turns": half,
                "patience": plan.tool_seconds + PATIENCE,
            },
            (),
            (),
        ),
        Scenario("caller_interrupts", "clean", {"faults": "clean", "barge_in": 0.5}, (), ()),
        # short loud noises into each reply and each silence (simulate --noise)
        Scenario("caller_noise", "clean", {"faults": "clean", "noise": 0.4}, (), ()),
        Scenario(
            f"silent_caller={plan.silent_seconds:g}",
            "clean",
            {
                "faults": "clean",
                "turns": 1,
                "final_silence": plan.silent_seconds,
                "sessions": plan.silent_sessions,
            },
            (),
            (),
        ),
    ]
    s += [replace(c, modes=plan.clean_modes, seeds=plan.clean_seeds) for c in clean]
    plan.scenarios = s
    return plan


# -- running ----------------------------------------------------------------------------------


class Capacity:
    """At most `limit` concurrent sessions; a run takes its sessions' worth."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._cond = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def take(self, n: int) -> Any:
        n = min(n, self.limit)
        async with self._cond:
            await self._cond.wait_for(lambda: self.used + n <= self.limit)
            self.used += n
        try:
            yield
        finally:
            async with self._cond:
                self.used -= n
                self._cond.notify_all()


def _options(plan: Plan, scenario: Scenario, mode: str, seed: int) -> Any:
    from realtime_supervisor_agent.simulate import SimulateOptions

    opts: dict[str, Any] = {
        "sessions": plan.sessions,
        "turns": plan.turns,
        "patience": PATIENCE,
        "seed": seed,
        "mode": mode,
        # distinct keys per run: the chaos server keys its sessions by credential
        "api_key": f"sk-bench-{scenario.name}-{mode}-{seed}-{{i}}",
    }
    if scenario.kind in ("fault", "cue"):
        opts["faults"] = fault_schedule(scenario.faulted or scenario.name, seed, plan.turns)
    opts.update(scenario.options)
    return SimulateOptions(**opts)


def _expected_seconds(options: Any) -> float:
    """A rough length of the run, to start the longest first."""
    per_turn = 3.0 + (options.patience if options.mode == "none" else 6.0)
    return options.turns * per_turn + options.final_silence


async def run_plan(plan: Plan) -> list[dict[str, Any]]:
    """Every (scenario, mode, seed) run, concurrently within the capacity; their summaries."""
    from realtime_supervisor_agent.simulate import run

    capacity = Capacity(plan.capacity)
    jobs = [
        (scenario, mode, seed, _options(plan, scenario, mode, seed))
        for scenario in plan.scenarios
        for mode in scenario.modes
        for seed in scenario.seeds
    ]
    jobs.sort(key=lambda j: -_expected_seconds(j[3]) * j[3].sessions)
    out: list[dict[str, Any]] = []

    async def one(scenario: Scenario, mode: str, seed: int, options: Any) -> None:
        async with capacity.take(options.sessions):
            started = time.monotonic()
            summary = await run(options)
            doc = summary.to_dict()
            out.append(
                {
                    "scenario": scenario.name,
                    "class": scenario.kind,
                    "faulted": scenario.faulted,
                    "mode": mode,
                    "seed": seed,
                    "options": {
                        "faults": options.faults,
                        "sessions": options.sessions,
                        "turns": options.turns,
                        "patience": options.patience,
                        "barge_in": options.barge_in,
                        "final_silence": options.final_silence,
                        "fallback": options.fallback,
                        "hold_cue": options.hold_cue,
                    },
                    "wall_seconds": round(time.monotonic() - started, 1),
                    # kept in the results (the summaries are not): the turns to diagnose, a
                    # turn unanswered or a clean turn the watchdog acted on (at most 20)
                    "anomalies": [
                        t
                        for t in doc["turn_details"]
                        if (not t["answered"] and not t.get("interrupted"))
                        or (scenario.kind == "clean" and t["detections"])
                    ][:20],
                    "summary": doc,
                }
            )
            print(
                f"  {scenario.name:<22} {mode:<9} seed {seed}: {doc['turns_answered']}/"
                f"{doc['turns']} answered, {doc['duration_seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    # Two phases: the sticky faults (and their fallback rows) apart from the rest. Their stock
    # and timer sessions retry a dead server in loops for the whole patience, and the exceptions
    # those loops keep alive grow this one process's heap several-fold (400k objects against
    # 60k): its full collections then stall every session's timers for up to 0.7 s, a delay no
    # production job process (one call each) sees from another call, which moved the other
    # rows' detection latencies by that much.
    isolated = ("sticky", "fallback")
    for phase in (
        [j for j in jobs if j[0].kind not in isolated],
        [j for j in jobs if j[0].kind in isolated],
    ):
        await asyncio.gather(*(one(*job) for job in phase))
        gc.collect()
    return out


# -- aggregating --------------------------------------------------------------------------------


def _judged_turns(run: dict[str, Any]) -> list[dict[str, Any]]:
    turns = [t for t in run["summary"]["turn_details"] if not t.get("interrupted")]
    if run["class"] == "clean":
        return turns
    return [t for t in turns if t.get("fault") == run["faulted"]]


def _first_sound(turns: Sequence[dict[str, Any]], patience: float) -> dict[str, Any] | None:
    """Stats of turn end -> first agent audio (patience when none came); None when simulate did
    not record it (`first_sound_seconds` absent from every turn)."""
    if not any("first_sound_seconds" in t for t in turns):
        return None
    values = [t.get("first_sound_seconds") for t in turns]
    return stats([patience if v is None else float(v) for v in values])


def _heard(turn: dict[str, Any]) -> float:
    heard = turn.get("heard_seconds")
    return NEVER_HEARD if heard is None or not turn["answered"] else float(heard)


def never_worse(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scenario run by both: the watchdog's "whole answer heard" p95 against stock's."""
    by = {(r["scenario"], r["mode"]): r for r in rows}
    out = []
    for (scenario, mode), wd in by.items():
        stock = by.get((scenario, "none"))
        if mode != "watchdog" or stock is None:
            continue
        w, s = wd["heard"]["p95"], stock["heard"]["p95"]
        if w is None or s is None:
            continue
        out.append(
            {
                "scenario": scenario,
                "class": wd["class"],
                "stock_p95": s,
                "watchdog_p95": w,
                "difference": round(w - s, 3),
                "stock_answered": stock["answered"],
                "watchdog_answered": wd["answered"],
                "turns": wd["turns"],
                "worse": w - s > NEVER_WORSE_SLACK,
            }
        )
    return sorted(out, key=lambda c: (c["class"] == "clean", c["scenario"]))


def aggregate(runs: Sequence[dict[str, Any]], watchdog: dict[str, float]) -> dict[str, Any]:
    """Per (scenario, mode): the figures the tables and floors read."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["scenario"], r["mode"]), []).append(r)
    rows: list[dict[str, Any]] = []
    for (scenario, mode), group in groups.items():
        judged = [t for r in group for t in _judged_turns(r)]
        all_turns = [t for r in group for t in r["summary"]["turn_details"]]
        sums = [r["summary"] for r in group]
        stalls: Counter[str] = Counter()
        recoveries: dict[str, Counter[str]] = {}
        reasons: Counter[str] = Counter()
        warnings: Counter[str] = Counter()
        for s in sums:
            stalls.update(s["stalls"])
            reasons.update(s["escalation_reasons"])
            warnings.update(s["livekit_warnings"])
            for action, c in s["recoveries"].items():
                recoveries.setdefault(action, Counter()).update(c)
        answered = sum(t["answered"] for t in judged)
        escalated_sessions = sum(s["escalated_sessions"] for s in sums)
        timer_fires = sum(s["timer_fires"] for s in sums)
        actions = sum(stalls.values()) + sum(s["escalations"] for s in sums)
        if mode == "timer":
            actions = timer_fires
        rows.append(
            {
                "scenario": scenario,
                "class": group[0]["class"],
                "mode": mode,
                "runs": len(group),
                "sessions": sum(r["options"]["sessions"] for r in group),
                "turns": len(judged),
                "answered": answered,
                "answered_pct": round(100.0 * answered / len(judged), 1) if judged else None,
                "gap": stats([t["gap_seconds"] for t in judged]),
                "silence": stats([t["silence_seconds"] for t in judged]),
                # turn end -> the first agent audio of any kind ("one moment" included), when
                # simulate records it (None: not recorded by this simulate)
                "first_sound": _first_sound(judged, group[0]["options"]["patience"]),
                # turn end -> the whole answer heard (NEVER_HEARD when it never was)
                "heard": stats([_heard(t) for t in judged]),
                "overlapping": sum(t["overlapping"] for t in all_turns),
                # answered turns where something was heard before the answer (the cue)
                "sound_before_answer": sum(
                    1
                    for t in judged
                    if t["answered"]
                    and t.get("first_sound_seconds") is not None
                    and t["first_sound_seconds"] < t["silence_seconds"] - 0.05
                ),
                "escalations": sum(s["escalations"] for s in sums),
                "escalated_sessions": escalated_sessions,
                "escalation_reasons": dict(reasons),
                "stalls": dict(stalls),
                "recoveries": {a: dict(c) for a, c in recoveries.items()},
                "actions": actions,
                "timer_fires": timer_fires,
                "watchdog_errors": sum(s["watchdog_errors"] for s in sums),
                "sessions_timed_out": sum(s["sessions_timed_out"] for s in sums),
                "livekit_warnings": dict(warnings),
                "interrupted_turns": sum(bool(t.get("interrupted")) for t in all_turns),
            }
        )
    rows.sort(key=lambda r: (r["class"] == "clean", r["scenario"], MODES.index(r["mode"])))
    return {
        "rows": rows,
        "detection": detection_latency(runs, watchdog),
        "never_worse": never_worse(rows),
    }


def detection_latency(runs: Sequence[dict[str, Any]], watchdog: dict[str, float]) -> list[Any]:
    """Per fault kind (watchdog runs): fault onset -> first verdict at or after it."""
    by_kind: dict[str, dict[str, Any]] = {}
    for r in runs:
        if r["mode"] != "watchdog" or r["class"] in ("clean", "fallback", "cue"):
            continue  # (the fault's own verdict is judged in its own row, not the variants')
        judged_sessions: set[int] = set()
        for t in r["summary"]["turn_details"]:
            if t.get("fault") != r["faulted"] or t.get("fault_onset_seconds") is None:
                continue
            if r["class"] == "sticky":
                # a sticky fault's verdict is its first turn's: the session is then escalated
                # (dead_session ends the detector, by design), and the later turns the server
                # still fails (livekit 1.5 keeps retrying) are what the escalation is about
                if t.get("session") in judged_sessions:
                    continue
                judged_sessions.add(t.get("session", 0))
            onset = t["fault_onset_seconds"]
            entry = by_kind.setdefault(
                r["faulted"],
                {"from_onset": [], "from_silence": [], "from_heard": [], "verdicts": Counter()},
            )
            later = [d for d in t["detections"] if d[2] >= onset - 0.05]
            if not later:
                entry["verdicts"]["none"] += 1
                continue
            kind, since, at = min(later, key=lambda d: d[2])
            entry["verdicts"][kind] += 1
            entry["from_onset"].append(at - onset)
            entry["from_silence"].append(at - since)
            # The floor's reference: when the fault reached the caller. The realistic server
            # sends audio faster than real time, so a fault mid-reply (the socket dies, the
            # audio stops) is heard only when the audio already sent has played; until then
            # nothing is silent and nothing may be declared. `since` is the last audio the
            # speaker played (the tap sits on the real output), or the turn end, or the
            # warning: whichever is later than the onset is when the caller's silence began.
            entry["from_heard"].append(at - max(onset, since))
    out = []
    for kind in FAULT_KINDS:
        entry = by_kind.get(kind)
        if entry is None:
            continue
        verdicts: Counter[str] = entry["verdicts"]
        main = max((v for v in verdicts if v != "none"), key=lambda v: verdicts[v], default=None)
        field_name = VERDICT_THRESHOLD.get(main) if main else None
        threshold = watchdog[field_name] if field_name else (0.0 if main else None)
        out.append(
            {
                "fault": kind,
                "verdicts": dict(verdicts),
                "verdict": main,
                "threshold_field": field_name,
                "threshold": threshold,
                "from_onset": stats(entry["from_onset"]),
                "from_silence": stats(entry["from_silence"]),
                "from_heard": stats(entry["from_heard"]),
            }
        )
    return out


def floors(result: dict[str, Any], watchdog: dict[str, float]) -> list[dict[str, Any]]:
    """The issue's floors for the watchdog, each with its figure, limit and verdict.

    Each floor says whether it is a timing floor (`timing`: a latency against a limit, which a
    loaded machine can move) or a behaviour floor (answered, the right verdict, no false action,
    no overlap, escalation: what the watchdog did, whatever the load). CI judges behaviour floors
    only (tests/test_bench.py); `make bench` judges both, in the same run.
    """
    out: list[dict[str, Any]] = []

    def check(
        name: str, scope: str, value: Any, limit: Any, holds: bool, *, timing: bool = False
    ) -> None:
        out.append(
            {
                "floor": name,
                "scope": scope,
                "value": value,
                "limit": limit,
                "holds": holds,
                "timing": timing,
            }
        )

    rows = [r for r in result["rows"] if r["mode"] == "watchdog"]
    for r in rows:
        scenario = r["scenario"]
        if r["class"] == "fault":
            check(
                "answered %", scenario, r["answered_pct"], ">= 99", (r["answered_pct"] or 0) >= 99
            )
            field_name, slack = SILENCE_LIMIT[scenario]
            limit = round(watchdog[field_name] + slack, 3)
            p95 = r["gap"]["p95"]
            check(
                f"caller silence p95 <= {field_name} + {slack:g} s",
                scenario,
                p95,
                limit,
                p95 is not None and p95 <= limit,
                timing=True,
            )
        elif r["class"] == "sticky":
            check(
                "escalates (sessions escalated / sessions)",
                scenario,
                f"{r['escalated_sessions']}/{r['sessions']}",
                "all",
                r["escalated_sessions"] == r["sessions"],
            )
            reasons = set(r.get("escalation_reasons", {}))
            expected = expected_escalations(scenario, str(result.get("livekit_agents", "1.8")))
            check(
                "escalates for the reason the fault should produce",
                scenario,
                ", ".join(sorted(reasons)) or "-",
                " or ".join(sorted(expected)),
                bool(reasons) and reasons <= expected,
            )
        elif r["class"] == "cue":
            check(
                "answered % with the hold cue",
                scenario,
                r["answered_pct"],
                ">= 99",
                (r["answered_pct"] or 0) >= 99,
            )
            check(
                "the cue heard before the answer (turns / answered)",
                scenario,
                f"{r.get('sound_before_answer', 0)}/{r['answered']}",
                "all",
                r["answered"] > 0 and r.get("sound_before_answer", 0) == r["answered"],
            )
        elif r["class"] == "fallback":
            # issue 15: with a fallback configured the turn the primary cannot answer is
            # answered (>= 95%), from the fallback, and nothing escalates
            pct = r["answered_pct"]
            check("answered % with a fallback", scenario, pct, ">= 95", (pct or 0) >= FALLBACK_PCT)
            failovers = r["recoveries"].get("failover", {}).get("success", 0)
            check(
                "failover counted (successes / sessions)",
                scenario,
                f"{failovers}/{r['sessions']}",
                "all",
                failovers == r["sessions"],
            )
            check(
                "no escalation with a fallback",
                scenario,
                r["escalations"],
                0,
                r["escalations"] == 0,
            )
        else:
            check("actions on the clean corpus", scenario, r["actions"], 0, r["actions"] == 0)
            if scenario in ALL_ANSWERED:
                check(
                    "every turn answered",
                    scenario,
                    f"{r['answered']}/{r['turns']}",
                    "all",
                    r["turns"] > 0 and r["answered"] == r["turns"],
                )
    overlapping = sum(r["overlapping"] for r in rows)
    check("overlapping replies", "all watchdog runs", overlapping, 0, overlapping == 0)
    for c in result.get("never_worse", []):
        check(
            f"whole answer heard p95 <= stock's + {NEVER_WORSE_SLACK:g} s",
            c["scenario"],
            c["watchdog_p95"],
            round(c["stock_p95"] + NEVER_WORSE_SLACK, 3),
            not c["worse"],
            timing=True,
        )
    lk_version = str(result.get("livekit_agents", "1.8"))
    for d in result["detection"]:
        expected = expected_verdicts(d["fault"], lk_version)
        seen = dict(sorted(d["verdicts"].items()))
        check(
            "verdict as the fault should produce",
            d["fault"],
            ", ".join(f"{k} {v}" for k, v in seen.items()),
            " or ".join(sorted(expected)),
            bool(seen) and set(seen) <= expected,
        )
    for d in result["detection"]:
        # results measured before "from_heard" existed are judged from the onset, as then
        heard = d.get("from_heard") or d["from_onset"]
        if d["threshold"] is None or heard["p95"] is None:
            continue
        if d["verdict"] == "reconnect_storm":
            # a count threshold (storm_reconnects + 1 reconnects), not a time: livekit's retry
            # cadence sets the latency; reported, not judged
            continue
        limit = round(d["threshold"] + DETECTION_SLACK, 3)
        p95 = heard["p95"]
        check(
            f"detection latency p95 <= {d['threshold_field'] or 'immediate'} + 0.1 s",
            d["fault"],
            p95,
            limit,
            p95 <= limit,
            timing=True,
        )
    return out


# -- output -------------------------------------------------------------------------------------


def _fmt_stats(s: dict[str, Any]) -> str:
    if s.get("p50") is None:
        return "-"
    return f"{s['p50']:.2f} / {s['p95']:.2f} / {s['max']:.2f}"


def render(result: dict[str, Any]) -> str:
    lk = result["livekit_agents"]
    rows = []
    for r in result["rows"]:
        if r["class"] == "clean":
            continue
        rows.append(
            (
                r["scenario"],
                r["mode"],
                f"{r['answered']}/{r['turns']} ({r['answered_pct']}%)",
                _fmt_stats(r["gap"]),
                _fmt_stats(r["silence"]),
                _fmt_stats(r["heard"]),
                r["overlapping"],
                r["escalations"],
            )
        )
    parts = [
        f"effectiveness, livekit-agents {lk}: faulted turns",
        table(
            (
                "fault",
                "approach",
                "answered",
                "caller silence p50/p95/max s",
                "turn end to answer p50/p95/max s",
                "whole answer heard p50/p95/max s",
                "overlapping",
                "escalations",
            ),
            rows,
        ),
        "",
        f"never worse than stock, livekit-agents {lk}: whole answer heard p95 (s)",
        never_worse_table(result.get("never_worse", [])),
        "",
        f"clean corpus, livekit-agents {lk}: actions taken (false stalls)",
        table(
            ("scenario", "approach", "turns answered", "actions", "stalls", "overlapping"),
            [
                (
                    r["scenario"],
                    r["mode"],
                    f"{r['answered']}/{r['turns']}",
                    r["actions"],
                    ", ".join(f"{k} {v}" for k, v in r["stalls"].items()) or "-",
                    r["overlapping"],
                )
                for r in result["rows"]
                if r["class"] == "clean"
            ],
        ),
        "",
        f"detection latency (watchdog), livekit-agents {lk}",
        table(
            (
                "fault",
                "verdict",
                "threshold s",
                "from onset p50/p95/max s",
                "from the caller's silence p50/p95/max s",
                "from silence start p50/p95/max s",
            ),
            [
                (
                    d["fault"],
                    d["verdict"] or "-",
                    d["threshold"],
                    _fmt_stats(d["from_onset"]),
                    _fmt_stats(d.get("from_heard") or {}),
                    _fmt_stats(d["from_silence"]),
                )
                for d in result["detection"]
            ],
        ),
        "",
        "floors",
        table(
            ("floor", "scope", "value", "limit", "holds"),
            [
                (f["floor"], f["scope"], f["value"], f["limit"], "yes" if f["holds"] else "NO")
                for f in result["floors"]
            ],
        ),
    ]
    return "\n".join(parts)


def never_worse_table(comparisons: Sequence[dict[str, Any]]) -> str:
    """Per kind: stock's and the watchdog's "whole answer heard" p95 and their difference."""
    return table(
        ("scenario", "stock p95", "watchdog p95", "difference", "answered stock/watchdog", "worse"),
        [
            (
                c["scenario"],
                c["stock_p95"],
                c["watchdog_p95"],
                f"{c['difference']:+.2f}",
                f"{c['stock_answered']}/{c['watchdog_answered']} of {c['turns']}",
                f"yes (> {NEVER_WORSE_SLACK:g} s)" if c["worse"] else "no",
            )
            for c in comparisons
        ],
    )


def _quiet_logs(path: Path, supervisor_level: int = logging.WARNING) -> None:
    """Every log line to `path`, not the terminal: WARNING and up, the watchdog's own records
    from `supervisor_level`. JSON lines with their fields (session, kind, detail, reason), so a
    run's anomalies (bench/results: `anomalies`) can be traced in the log afterwards."""
    from realtime_supervisor.logs import LOGGER_NAME, configure_logging

    stream = path.open("a", encoding="utf-8")
    ours = configure_logging(format="json", level="WARNING", stream=stream)
    root = logging.getLogger()
    for h in [h for h in root.handlers if h is not ours]:
        root.removeHandler(h)  # nothing to the terminal: the live tables are the bench's output
    logging.getLogger(LOGGER_NAME).setLevel(supervisor_level)


async def measure(plan: Plan) -> dict[str, Any]:
    """Run the plan in this process and aggregate it."""
    import livekit.agents as lk

    from realtime_supervisor.config import WatchdogConfig

    wd = WatchdogConfig()
    watchdog = {
        "ack_timeout": wd.ack_timeout,
        "reply_timeout": wd.reply_timeout,
        "audio_gap_timeout": wd.audio_gap_timeout,
        "warning_grace": wd.warning_grace,
        "recovery_timeout": wd.recovery_timeout,
    }
    lag = LoopLag()
    pauses = GcPauses()
    started = time.monotonic()
    with pauses.installed():
        async with lag.running():
            runs = await run_plan(plan)
    result: dict[str, Any] = {
        "livekit_agents": lk.__version__,
        "plan": {
            "sessions_per_run": plan.sessions,
            "turns": plan.turns,
            "seeds": list(plan.seeds),
            "clean_seeds": list(plan.clean_seeds),
            "patience": PATIENCE,
            "capacity": plan.capacity,
            "modes": list(plan.modes),
        },
        "watchdog_config": watchdog,
        "wall_seconds": round(time.monotonic() - started, 1),
        "loop_lag_seconds": lag.summary(),
        "gc_full_collection_seconds": pauses.summary(),
        "startup_heap_frozen": gc.get_freeze_count(),
    }
    result.update(aggregate(runs, watchdog))
    result["floors"] = floors(result, watchdog)
    result["runs"] = [{k: v for k, v in r.items() if k != "summary"} for r in runs]
    return result


# In the quick bench these per-turn faults take two turns (one faulted) instead of six: their
# behaviour floors (answered, the verdict) at the least cost to CI's wall time.
QUICK_SHORT = ("dead_mid", "tcp_drop", "session_limit", "incomplete", "content_filter")


def quick_plan() -> Plan:
    """The CI variant: the watchdog only, one session of six turns per kind (two for
    QUICK_SHORT), a short corpus, the fallback rows.

    One session per kind keeps the process lightly loaded (about 25 sessions at once), so the
    timing floors measure the watchdog rather than a starved event loop.
    """
    plan = build_plan(
        Plan(
            sessions=1,
            turns=6,
            seeds=(1,),
            clean_seeds=(1,),
            modes=("watchdog",),
            clean_modes=("watchdog",),
            fallback_modes=("watchdog",),
            capacity=40,
            long_answer=6.0,
            tool_seconds=8.0,
            silent_seconds=20.0,
            silent_sessions=1,
        )
    )
    plan.scenarios = [
        replace(sc, options={**sc.options, "turns": 2}) if sc.name in QUICK_SHORT else sc
        for sc in plan.scenarios
    ]
    return plan


def _scenario_pattern(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"expected a regular expression: {exc}") from None


def _modes(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    wrong = [m for m in modes if m not in MODES]
    if not modes or wrong:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated subset of {', '.join(MODES)}, got {text!r}"
        )
    return modes


def select(plan: Plan, only: re.Pattern[str] | None, modes: tuple[str, ...] | None = None) -> Plan:
    """The plan restricted to the scenarios matching `only` and to `modes` (a short check)."""
    scenarios = plan.scenarios
    if only is not None:
        scenarios = [s for s in scenarios if only.search(s.name)]
        if not scenarios:
            names = ", ".join(s.name for s in plan.scenarios)
            raise SystemExit(f"--only: no scenario matches {only.pattern!r} (of {names})")
    if modes is not None:
        scenarios = [replace(s, modes=tuple(m for m in s.modes if m in modes)) for s in scenarios]
        scenarios = [s for s in scenarios if s.modes]
    plan.scenarios = scenarios
    return plan


def _lk_tag() -> str:
    import livekit.agents as lk

    major, minor = lk.__version__.split(".")[:2]
    return f"lk{major}{minor}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.effectiveness", description=__doc__)
    p.add_argument("--quick", action="store_true", help="the CI variant (watchdog only, < 90 s)")
    p.add_argument(
        "--this-venv-only",
        action="store_true",
        help="run only in this interpreter (default: also livekit 1.5.11 from .venv-lk15)",
    )
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds per fault kind (default 3)")
    p.add_argument("--sessions", type=positive_int, default=4, help="sessions per run (default 4)")
    p.add_argument(
        "--capacity", type=positive_int, default=24, help="concurrent sessions per process"
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    p.add_argument(
        "--only",
        type=_scenario_pattern,
        default=None,
        metavar="REGEX",
        help="run only the scenarios whose name matches (e.g. 'dead_mid|fatal_close'): a short "
        "check of a few rows; the floors are then judged on those rows only",
    )
    p.add_argument(
        "--modes",
        type=_modes,
        default=None,
        metavar="M1,M2",
        help=f"approaches to run (of {', '.join(MODES)}; default all, --quick: watchdog)",
    )
    args = p.parse_args(argv)

    if args.quick:
        plan = quick_plan()
    else:
        plan = build_plan(
            Plan(
                sessions=args.sessions,
                seeds=tuple(range(1, args.seeds + 1)),
                capacity=args.capacity,
            )
        )
    plan = select(plan, args.only, args.modes)
    tag = _lk_tag()
    # recovery.started/succeeded are INFO: the trail of what the watchdog did, turn by turn
    log = Path(os.environ.get("BENCH_LOG", f"/tmp/bench-effectiveness-{tag}.log"))
    _quiet_logs(log, supervisor_level=logging.INFO)
    freeze_startup_heap()  # as livekit's forkserver does for its job processes
    result = asyncio.run(measure(plan))
    name = f"effectiveness-{tag}" + ("-quick" if args.quick else "")
    path = write_json(name, result, args.out)
    print(render(result))
    print(f"\nwrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    status = 0 if all(f["holds"] for f in result["floors"]) else 1
    lk15 = ROOT / ".venv-lk15" / "bin" / "python"
    if not args.quick and not args.this_venv_only and lk15.exists():
        # After this version, not beside it: two loaded processes on two cores stall each other's
        # event loops, and the timing floors would measure that rather than the watchdog.
        cmd = [str(lk15), "-m", "bench.effectiveness", "--this-venv-only"]
        cmd += ["--seeds", str(args.seeds), "--sessions", str(args.sessions)]
        cmd += ["--capacity", str(args.capacity), "--out", str(args.out)]
        if args.only is not None:
            cmd += ["--only", args.only.pattern]
        if args.modes is not None:
            cmd += ["--modes", ",".join(args.modes)]
        other = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        status = max(status, other.returncode)
    return status


def load(name: str, directory: Path = RESULTS) -> dict[str, Any]:
    return json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))


if __name__ == "__main__":
    sys.exit(main())
