from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from realtime_supervisor._detector import Stall, StallKind
from realtime_supervisor._observations import WarningKind
from realtime_supervisor._policy import (
    REPEAT_INSTRUCTIONS,
    Escalate,
    Policy,
    Reconnect,
    Reissue,
    reconnect_wait,
    reconnect_waits,
)
from realtime_supervisor.config import WatchdogConfig


def stall(
    kind: StallKind = StallKind.NO_REPLY, at: float = 0.0, warning: WarningKind | None = None
) -> Stall:
    return Stall(kind=kind, silence_since=at - 5.0, detected_at=at, detail="", warning=warning)


def policy(**overrides: Any) -> Policy:
    return Policy(dataclasses.replace(WatchdogConfig(), **overrides))


def test_ladder_reissue_then_reconnect_then_escalate() -> None:
    """Within one incident each failed recovery climbs a rung; past the top it escalates."""
    p = policy()
    assert p.decide(stall(at=0.0), 0.0) == Reissue(None)
    assert p.decide(stall(at=5.0), 5.0) == Reconnect()
    assert p.decide(stall(at=10.0), 10.0) == Escalate("ladder_exhausted")
    assert p.incident_open


def test_ladder_run_out_while_the_connection_keeps_dropping_is_the_storm() -> None:
    """A flapping connection escalates as the storm even when the ladder runs out first.

    `reconnects` counts the reconnects livekit made by itself in the storm window (the ladder's
    own are not among them); with none, the ladder's run out names it, as before.
    """
    p = policy()
    assert p.decide(stall(at=0.0), 0.0, reconnects=1) == Reissue(None)
    assert p.decide(stall(at=1.0), 1.0, reconnects=1) == Reconnect()
    assert p.decide(stall(at=2.0), 2.0, reconnects=1) == Escalate("reconnect_storm")

    quiet = policy()
    quiet.decide(stall(at=0.0), 0.0)
    quiet.decide(stall(at=1.0), 1.0)
    assert quiet.decide(stall(at=2.0), 2.0, reconnects=0) == Escalate("ladder_exhausted")

    # before the ladder runs out, livekit's reconnects change nothing: the next rung
    assert policy().decide(stall(at=0.0), 0.0, reconnects=3) == Reissue(None)


def test_resolved_starts_the_next_incident_at_the_bottom() -> None:
    """Agent audio closes the incident: the next stall starts from the first rung."""
    p = policy()
    p.decide(stall(), 0.0)
    p.decide(stall(), 1.0)
    p.resolved(2.0)
    assert not p.incident_open and p.rung == 0
    assert p.decide(stall(), 3.0) == Reissue(None)


def test_custom_ladder_is_followed() -> None:
    """The ladder is the configured one, rungs repeated if asked."""
    p = policy(ladder=("reconnect", "reissue", "reissue"), budget_max_recoveries=10)
    actions = [p.decide(stall(), float(t)) for t in range(4)]
    assert actions == [Reconnect(), Reissue(None), Reissue(None), Escalate("ladder_exhausted")]


def test_empty_ladder_escalates_at_once() -> None:
    """With no rungs the watchdog only detects and escalates."""
    assert policy(ladder=()).decide(stall(), 0.0) == Escalate("ladder_exhausted")


def test_budget_exhausted_escalates_at_once() -> None:
    """Beyond budget_max_recoveries incidents in budget_window the policy escalates at once."""
    p = policy(budget_max_recoveries=3, budget_window=60.0)
    for t in (0.0, 10.0, 20.0):
        assert p.decide(stall(), t) == Reissue(None)
        p.resolved(t + 1)
    assert p.decide(stall(), 30.0) == Escalate("budget_exhausted")
    assert p.budget_left(30.0) == 0


def test_the_budget_counts_incidents_not_rungs() -> None:
    """A dead connection takes two rungs (the re-issue proves it dead, the reconnect saves the
    turn): one incident, one unit of budget, so a session can live through as many of them as
    of lost replies."""
    p = policy(budget_max_recoveries=2)
    for t in (0.0, 20.0):
        assert p.decide(stall(), t) == Reissue(None)
        assert p.decide(stall(), t + 1.5) == Reconnect()
        p.resolved(t + 2.0)
    assert p.budget_left(30.0) == 0
    assert p.decide(stall(), 30.0) == Escalate("budget_exhausted")


def test_budget_window_slides() -> None:
    """An incident older than budget_window no longer counts."""
    p = policy(budget_max_recoveries=2, budget_window=60.0)
    for t in (0.0, 30.0):
        p.decide(stall(), t)
        p.resolved(t)
    assert p.decide(stall(), 59.0) == Escalate("budget_exhausted")
    p.resolved(59.0)
    assert p.decide(stall(), 60.5) == Reissue(None)
    assert p.budget_left(60.5) == 0


def test_escalations_cost_no_budget() -> None:
    """Escalating is not a recovery: it spends none of the budget."""
    p = policy(budget_max_recoveries=1)
    assert p.decide(stall(StallKind.DEAD_SESSION), 0.0) == Escalate("dead_session")
    p.resolved(0.0)
    assert p.budget_left(0.0) == 1


@pytest.mark.parametrize(
    ("kind", "reason"),
    [(StallKind.DEAD_SESSION, "dead_session"), (StallKind.RECONNECT_STORM, "reconnect_storm")],
)
def test_unfixable_stalls_escalate_even_mid_ladder(kind: StallKind, reason: str) -> None:
    """A dead session or a reconnect storm escalates at once, whatever the ladder says."""
    p = policy()
    assert p.decide(stall(kind), 0.0) == Escalate(reason)
    p2 = policy()
    p2.decide(stall(), 0.0)
    assert p2.decide(stall(kind), 1.0) == Escalate(reason)


def test_multi_message_silence_asks_to_repeat() -> None:
    """After a dropped second item the model believes it spoke: it is told to say it again."""
    p = policy()
    first = stall(StallKind.POST_WARNING_SILENCE, warning=WarningKind.MULTI_MESSAGE)
    action = p.decide(first, 0.0)
    assert action == Reissue(REPEAT_INSTRUCTIONS)
    assert "Say it again" in REPEAT_INSTRUCTIONS


def test_repeat_instructions_follow_the_incident_not_the_latest_stall() -> None:
    """A second reissue in a multi-message incident still asks to repeat the answer."""
    p = policy(ladder=("reissue", "reissue"))
    p.decide(stall(StallKind.POST_WARNING_SILENCE, warning=WarningKind.MULTI_MESSAGE), 0.0)
    assert p.decide(stall(StallKind.NO_REPLY), 5.0) == Reissue(REPEAT_INSTRUCTIONS)


@pytest.mark.parametrize(
    ("kind", "warning"),
    [
        (StallKind.POST_WARNING_SILENCE, WarningKind.GENERATION_DISCARDED),
        (StallKind.POST_WARNING_SILENCE, WarningKind.REPLY_TIMEOUT),
        (StallKind.NO_REPLY, None),
        (StallKind.AUDIO_GAP, None),
    ],
)
def test_other_stalls_reissue_plainly(kind: StallKind, warning: WarningKind | None) -> None:
    """Other stalls reissue without instructions."""
    assert policy().decide(stall(kind, warning=warning), 0.0) == Reissue(None)


def test_reconnect_waits_are_bounded_and_grow() -> None:
    """Waits start near 0.5 s, grow exponentially, and never exceed reconnect_backoff_max."""
    config = WatchdogConfig(reconnect_attempts=10, reconnect_backoff_max=4.0)
    for _ in range(50):
        waits = reconnect_waits(config)
        assert len(waits) == 9
        assert 0.5 <= waits[0] <= 1.0
        assert 1.0 <= waits[1] <= 1.5
        assert all(0.5 <= w <= 4.0 for w in waits)
        assert waits[-1] == 4.0


def test_one_attempt_means_no_waits() -> None:
    """With a single reconnect attempt nothing is waited."""
    assert reconnect_waits(WatchdogConfig(reconnect_attempts=1)) == []


def test_reconnect_wait_is_tenacitys_strategy() -> None:
    """The backoff is tenacity's exponential-jitter wait, not a new one."""
    from tenacity.wait import wait_exponential_jitter

    assert isinstance(reconnect_wait(WatchdogConfig()), wait_exponential_jitter)
