"""The recovery policy: a stall in, an action out. It decides; the watchdog acts.

An incident is the time from a session's first stall to the next agent audio (`resolved`). Within
one incident each further stall means the previous action did not bring the agent back, so the
ladder moves up a rung; past its top the policy escalates. Across incidents a per-session budget,
like an OTP supervisor's restart intensity, bounds how often it acts at all. The budget counts
incidents (recoveries), not rungs: the ladder already bounds one incident, and a connection that
died without a close frame needs two rungs (the re-issue proves it dead, the reconnect saves the
turn) that must not spend twice what a lost reply spends. Stalls that no action can fix (a dead
session, a reconnect storm) escalate at once and cost no budget.
A ladder that runs out while the connection keeps dropping (livekit reconnected by itself within
the storm window) escalates as the storm: whichever runs out first, the session dies of
the same thing.

Failover: when the binding has a fallback model (`can_failover`), a dead session, a reconnect storm
or a ladder exhausted on the primary switches the session to it instead of escalating, once per
session and at no budget cost. If the fallback does not answer either (the same incident stalls
again), the policy escalates (`failover_failed`); a later incident on the fallback climbs its own
ladder and escalates as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenacity import RetryCallState, Retrying
from tenacity.wait import wait_base, wait_exponential_jitter

from realtime_supervisor._detector import Stall
from realtime_supervisor._window import SlidingWindow
from realtime_supervisor.config import WatchdogConfig
from realtime_supervisor.kinds import EscalationReason, Rung, StallKind, WarningKind

__all__ = [
    "FAILOVER_REASONS",
    "REPEAT_INSTRUCTIONS",
    "Action",
    "Escalate",
    "Failover",
    "Policy",
    "Reconnect",
    "Reissue",
    "reconnect_wait",
    "reconnect_waits",
]

# The multi-message warning drops an item the server keeps: the model believes it said it, so a bare
# "reply" would move on. Tell it the caller never heard it.
REPEAT_INSTRUCTIONS = (
    "Your previous answer was not heard by the caller. Say it again in full, without mentioning "
    "that it is a repetition."
)

# First reconnect wait and its jitter: a quick first retry (a blip heals in well under a second),
# jitter as large as the first wait so that many sessions on one worker do not retry in step.
_BACKOFF_INITIAL = 0.5
_BACKOFF_JITTER = 0.5


@dataclass(frozen=True, slots=True)
class Reissue:
    """Interrupt whatever is stuck, then ask for a reply (with these instructions, if any)."""

    instructions: str | None = None


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Open a fresh realtime connection keeping the conversation, then ask for a reply."""


@dataclass(frozen=True, slots=True)
class Failover:
    """Switch the session to the fallback realtime model, keeping the conversation; then a reply.

    Decided instead of escalating (a dead session, a reconnect storm, a ladder exhausted on the
    primary) when the binding has a fallback model and the session has not used it yet.
    """


@dataclass(frozen=True, slots=True)
class Escalate:
    """Stop acting and tell the application; reason is the metric label `reason`."""

    reason: EscalationReason


Action = Reissue | Reconnect | Failover | Escalate
# Escalations a fallback model can still answer: the primary is gone or keeps failing.
FAILOVER_REASONS = frozenset(
    {
        EscalationReason.DEAD_SESSION,
        EscalationReason.RECONNECT_STORM,
        EscalationReason.LADDER_EXHAUSTED,
    }
)

_AT_ONCE = {
    StallKind.DEAD_SESSION: EscalationReason.DEAD_SESSION,
    StallKind.RECONNECT_STORM: EscalationReason.RECONNECT_STORM,
}


class Policy:
    """The ladder and the budget of one session."""

    def __init__(self, config: WatchdogConfig) -> None:
        self._ladder = config.ladder
        self._budget_max = config.budget_max_recoveries
        # The last budget_max incidents: enough to tell whether one more fits the window.
        self._spent = SlidingWindow(config.budget_window, cap=config.budget_max_recoveries)
        self._rung = 0
        self._opening: Stall | None = None
        # Failover is once per session: after it, the fallback is the session's only model.
        self._failed_over = False
        self._failover_incident = False  # this incident's failover is the action being judged

    @property
    def incident_open(self) -> bool:
        """A stall was decided on and no agent audio has come since."""
        return self._opening is not None

    @property
    def rung(self) -> int:
        """How many ladder rungs this incident has used."""
        return self._rung

    def budget_left(self, now: float) -> int:
        """How many more incidents the budget allows at `now`."""
        return self._budget_max - self._spent.count(now)

    @property
    def failed_over(self) -> bool:
        """The session was switched to its fallback model."""
        return self._failed_over

    def decide(
        self, stall: Stall, now: float, *, can_failover: bool = False, reconnects: int = 0
    ) -> Action:
        """The action for `stall`, the first of a new incident or a failed recovery's successor.

        `can_failover`: the binding has a fallback model to switch to (checked by the shell).
        `reconnects`: the reconnects livekit made by itself (not the ladder's) in the storm
        window, now (counted by the shell).
        """
        if self._opening is None:
            self._opening = stall
            self._rung = 0
        if self._failover_incident:
            # the fallback did not answer either
            return Escalate(EscalationReason.FAILOVER_FAILED)
        reason = _AT_ONCE.get(stall.kind)
        if reason is None and self._rung >= len(self._ladder):
            # A connection that keeps dropping (livekit reconnected by itself within the storm
            # window) is a storm, whether the ladder or the storm count runs out first: with a
            # 1 s acknowledgement deadline the rungs can fail before livekit's retry cadence
            # reaches the count. Same action (the session cannot answer); the reason names what
            # it dies of.
            if reconnects > 0:
                reason = EscalationReason.RECONNECT_STORM
            else:
                reason = EscalationReason.LADDER_EXHAUSTED
        if reason is not None:
            if reason in FAILOVER_REASONS and can_failover and not self._failed_over:
                self._failed_over = self._failover_incident = True
                return Failover()
            return Escalate(reason)
        if self._rung == 0:
            # a new incident: the one thing the budget counts
            if self.budget_left(now) <= 0:
                return Escalate(EscalationReason.BUDGET_EXHAUSTED)
            self._spent.record(now)
        rung = self._ladder[self._rung]
        self._rung += 1
        if rung == Rung.RECONNECT:
            return Reconnect()
        return Reissue(_instructions(self._opening))

    def resolved(self, now: float) -> None:
        """Agent audio was heard: the incident is over (the budget keeps its history)."""
        del now  # part of the interface so that a future policy can age incidents
        self._opening = None
        self._rung = 0
        self._failover_incident = False


def _instructions(opening: Stall) -> str | None:
    """What the reissued reply is told, judged by the stall that opened the incident."""
    if (
        opening.kind is StallKind.POST_WARNING_SILENCE
        and opening.warning is WarningKind.MULTI_MESSAGE
    ):
        return REPEAT_INSTRUCTIONS
    return None


def reconnect_wait(config: WatchdogConfig) -> wait_base:
    """tenacity's exponential backoff with jitter between reconnect attempts."""
    try:
        return wait_exponential_jitter(
            multiplier=_BACKOFF_INITIAL, max=config.reconnect_backoff_max, jitter=_BACKOFF_JITTER
        )
    except TypeError:  # tenacity < 9.1 names the first wait `initial` (later deprecated)
        return wait_exponential_jitter(
            initial=_BACKOFF_INITIAL, max=config.reconnect_backoff_max, jitter=_BACKOFF_JITTER
        )


def reconnect_waits(config: WatchdogConfig) -> list[float]:
    """One draw of the waits between the reconnect attempts (reconnect_attempts - 1 of them)."""
    wait = reconnect_wait(config)
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    waits = []
    for attempt in range(1, config.reconnect_attempts):
        state.attempt_number = attempt
        waits.append(wait(state))
    return waits
