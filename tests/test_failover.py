"""The failover rung: a session whose primary model cannot answer is switched to the fallback.

Two chaos servers on 127.0.0.1: the primary with a fault that no retry on it can fix, the
fallback clean. The real AgentSession runs livekit's RealtimeModelFallbackAdapter over both
(1.8); the watchdog's failover rung calls `restart_session(switch_model=True)`, the turn is
answered from the fallback with the conversation kept, and the action is counted as "failover".
Without a fallback (or on 1.5.11, which has no adapter) the watchdog escalates as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit.agents import Agent, AgentSession
from livekit.plugins import openai

from realtime_supervisor._detector import Stall, StallKind
from realtime_supervisor._learned import Learner
from realtime_supervisor._observations import RealtimeError, UserSpeechStopped
from realtime_supervisor._policy import Escalate, Failover, Policy, Reconnect, Reissue
from realtime_supervisor._watchdog import Watchdog
from realtime_supervisor.chaos.server import ChaosServer
from realtime_supervisor.config import WatchdogConfig
from realtime_supervisor.errors import ConfigError
from realtime_supervisor.testing import RecordingAudioOutput, ScriptedCaller, session_options

from .harness import LK_VERSION
from .test_watchdog import FAST as WD_FAST
from .test_watchdog import FakeActions, FakeMetrics, until

# Short deadlines keep a three-rung incident inside a test's time; learning off so that a
# previous test's turns in this process do not change them.
FAST = WatchdogConfig(reply_timeout=2.5, recovery_timeout=2.5, learned_enabled=False)
GUARD = 40.0

needs_adapter = pytest.mark.skipif(LK_VERSION < (1, 8), reason="RealtimeModelFallbackAdapter: 1.8+")


@dataclasses.dataclass
class TwoModelCall:
    primary: ChaosServer
    fallback: ChaosServer | None
    session: Any
    caller: ScriptedCaller
    speaker: RecordingAudioOutput
    supervisor: Any
    escalations: list[Any]

    @property
    def counters(self) -> Any:
        return self.supervisor.watchdog.counters

    async def answered_after(self, t: float, *, within: float) -> bool:
        try:
            await asyncio.wait_for(self.speaker.wait_for_answer(t, seconds=1.0), within)
        except TimeoutError:
            return False
        return True


@contextlib.asynccontextmanager
async def two_model_call(
    primary_faults: str, fallback_faults: str | None, config: WatchdogConfig = FAST
) -> AsyncIterator[TwoModelCall]:
    from realtime_supervisor.livekit.binding import Supervisor, reconnectable

    primary = ChaosServer(faults=primary_faults, reply_seconds=1.0)
    await primary.start()
    fallback = None
    models = [openai.realtime.RealtimeModel(base_url=primary.url, api_key="sk-primary")]
    if fallback_faults is not None:
        fallback = ChaosServer(faults=fallback_faults, reply_seconds=1.0)
        await fallback.start()
        models.append(openai.realtime.RealtimeModel(base_url=fallback.url, api_key="sk-fallback"))
    if len(models) > 1:
        from livekit.agents.llm import RealtimeModelFallbackAdapter

        llm: Any = RealtimeModelFallbackAdapter(models)
    else:
        llm = reconnectable(models[0])
    session: AgentSession[Any] = AgentSession(llm=llm, **session_options())
    caller, speaker = ScriptedCaller(), RecordingAudioOutput()
    session.input.audio = caller
    session.output.audio = speaker
    escalations: list[Any] = []

    async def on_escalate(esc: Any) -> None:
        escalations.append(esc)

    sup = Supervisor(
        session, config, on_escalate=on_escalate, metrics=None, learner=Learner(config)
    )
    call = TwoModelCall(primary, fallback, session, caller, speaker, sup, escalations)
    try:
        await session.start(Agent(instructions="You are a test agent."), record=False)
        await sup.start()
        yield call
    finally:
        caller.close()
        await sup.aclose()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(session.aclose(), 10)
        with contextlib.suppress(Exception):
            await llm.aclose()
        await speaker.aclose()
        await primary.aclose()
        if fallback is not None:
            await fallback.aclose()


# -- the policy, pure ---------------------------------------------------------------------------


def _stall(kind: StallKind, at: float = 0.0) -> Stall:
    return Stall(kind, at, at, "x")


@pytest.mark.parametrize("kind", [StallKind.DEAD_SESSION, StallKind.RECONNECT_STORM])
def test_hopeless_stalls_fail_over_once_then_escalate_when_the_fallback_fails_too(
    kind: StallKind,
) -> None:
    policy = Policy(WatchdogConfig())
    assert policy.decide(_stall(kind), 0.0, can_failover=True) == Failover()
    # the fallback did not answer: the same incident escalates
    assert policy.decide(_stall(StallKind.NO_REPLY), 5.0, can_failover=True) == Escalate(
        "failover_failed"
    )


def test_a_ladder_exhausted_on_the_primary_fails_over_and_a_later_one_escalates() -> None:
    policy = Policy(WatchdogConfig())
    no_reply = _stall(StallKind.NO_REPLY)
    assert policy.decide(no_reply, 0.0, can_failover=True) == Reissue()
    assert policy.decide(no_reply, 5.0, can_failover=True) == Reconnect()
    assert policy.decide(no_reply, 10.0, can_failover=True) == Failover()
    policy.resolved(12.0)  # the fallback answered
    assert policy.failed_over
    # a later incident on the fallback: its ladder, then escalation (one failover per session)
    assert policy.decide(no_reply, 100.0, can_failover=True) == Reissue()
    assert policy.decide(no_reply, 105.0, can_failover=True) == Reconnect()
    assert policy.decide(no_reply, 110.0, can_failover=True) == Escalate("ladder_exhausted")


def test_without_a_fallback_the_policy_escalates_as_before() -> None:
    policy = Policy(WatchdogConfig())
    assert policy.decide(_stall(StallKind.RECONNECT_STORM), 0.0) == Escalate("reconnect_storm")


# -- the watchdog with scripted actions (no livekit) -------------------------------------------


class FailoverActions(FakeActions):
    """FakeActions with a fallback: `failover` performs its script like the other actions."""

    def __init__(self, failover: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.script["failover"] = list(failover)
        self.available = True

    def can_failover(self) -> bool:
        return self.available

    async def failover(self) -> None:
        self.calls.append(("failover", None))
        self.available = False
        await self._do("failover")


async def _watchdog(actions: FailoverActions) -> tuple[Watchdog, FakeMetrics]:
    metrics = FakeMetrics()
    wd = Watchdog(WD_FAST, actions, metrics=metrics, sleep=_no_sleep)
    actions.watchdog = wd
    wd.start()
    return wd, metrics


async def _no_sleep(_seconds: float) -> None:
    return None


async def test_a_ladder_exhausted_on_the_primary_fails_over_and_is_counted() -> None:
    """reissue and reconnect bring nothing; the failover does: success, action="failover"."""
    actions = FailoverActions(["speak"], reissue=["silent"], reconnect=["silent"])
    wd, metrics = await _watchdog(actions)
    try:
        wd.observe(UserSpeechStopped())
        await until(lambda: wd.counters.recoveries_succeeded == 1)
        assert actions.names == ["reissue", "reconnect", "failover"]
        assert wd.counters.recoveries["failover"] == {"success": 1, "failure": 0}
        assert ("recovery", "failover", "success") in [c[:3] for c in metrics.named("recovery")]
        assert actions.escalations == []
    finally:
        await wd.aclose()


async def test_a_silent_fallback_escalates_as_failover_failed() -> None:
    actions = FailoverActions(["silent"], reissue=["silent"], reconnect=["silent"])
    wd, metrics = await _watchdog(actions)
    try:
        wd.observe(UserSpeechStopped())
        await until(lambda: len(actions.escalations) == 1)
        assert actions.names == ["reissue", "reconnect", "failover"]
        assert actions.escalations[0][1] == "failover_failed"
        assert metrics.named("escalation") == [("escalation", "failover_failed")]
    finally:
        await wd.aclose()


async def test_a_dead_session_fails_over_and_the_fallback_is_judged_afresh() -> None:
    """dead_session ends the primary's detector; after the failover a new one judges the
    fallback's reply (here: it answers)."""
    actions = FailoverActions(["speak"])
    wd, _ = await _watchdog(actions)
    try:
        wd.observe(UserSpeechStopped())
        wd.observe(RealtimeError(recoverable=False, code="insufficient_quota"))
        await until(lambda: wd.counters.recoveries_succeeded == 1)
        assert actions.names == ["failover"]
        assert not wd.detector.ended
        assert actions.escalations == []
    finally:
        await wd.aclose()


# -- real livekit, two chaos servers -------------------------------------------------------------


@needs_adapter
@pytest.mark.livekit
@pytest.mark.timeout(90)
async def test_a_flapping_primary_fails_over_and_the_turn_is_answered() -> None:
    """flap: the primary reconnects in a storm; the watchdog switches to the fallback, keeping
    the conversation, and the caller hears the answer; counted as a failover, no escalation."""
    async with two_model_call("flap", "clean") as call:
        t = time.monotonic()
        await call.caller.say(0.6)
        assert await call.answered_after(t, within=GUARD)
        assert call.counters.recoveries.get("failover") == {"success": 1, "failure": 0}
        assert call.counters.stalls_by_kind.get("reconnect_storm") == 1
        assert call.escalations == []
        assert call.fallback is not None and call.fallback.sessions  # the fallback served it
        # the conversation came along: the fallback was given the caller's turn
        (record,) = call.fallback.sessions.values()
        assert record.items > 0


@needs_adapter
@pytest.mark.livekit
@pytest.mark.timeout(90)
async def test_a_fatal_error_on_the_primary_is_answered_from_the_fallback() -> None:
    """fatal_error (quota): livekit's adapter moves to the fallback by itself (the error becomes
    recoverable), and the watchdog makes sure the turn is answered there; nothing escalates."""
    async with two_model_call("fatal_error", "clean") as call:
        t = time.monotonic()
        await call.caller.say(0.6)
        assert await call.answered_after(t, within=GUARD)
        assert call.escalations == []
        assert call.fallback is not None and call.fallback.sessions


@needs_adapter
@pytest.mark.livekit
@pytest.mark.timeout(90)
async def test_the_watchdog_escalates_when_the_fallback_fails_too() -> None:
    """Both models flap: one failover, then one escalation (failover_failed); nothing hangs."""
    async with two_model_call("flap", "flap") as call:
        await call.caller.say(0.6)
        for _ in range(int(GUARD * 10)):
            if call.escalations:
                break
            await asyncio.sleep(0.1)
        assert [e.reason for e in call.escalations] == ["failover_failed"]
        assert call.counters.recoveries_started >= 1
        assert "failover" in call.counters.recoveries


@pytest.mark.livekit
@pytest.mark.compat
@pytest.mark.timeout(90)
async def test_without_a_fallback_a_flapping_primary_escalates_as_today() -> None:
    """No fallback configured (and on 1.5.11 none can be): flap escalates, no failover."""
    async with two_model_call("flap", None) as call:
        assert not call.supervisor.can_failover()
        await call.caller.say(0.6)
        for _ in range(int(GUARD * 10)):
            if call.escalations:
                break
            await asyncio.sleep(0.1)
        assert [e.reason for e in call.escalations] == ["reconnect_storm"]
        assert "failover" not in call.counters.recoveries


# -- the agent's configuration -------------------------------------------------------------------


def test_no_fallback_variables_means_no_fallback() -> None:
    from realtime_supervisor_agent.config import AgentConfig
    from realtime_supervisor_agent.fallback import fallback_from_env

    primary = AgentConfig(openai_api_key="sk-a")
    assert fallback_from_env(primary, {}) is None
    with pytest.raises(ConfigError, match="AGENT_FALLBACK_MODEL"):
        fallback_from_env(primary, {"AGENT_FALLBACK_MODEL": "gpt-realtime-mini"})


@pytest.mark.skipif(LK_VERSION < (1, 8), reason="the adapter exists from 1.8")
def test_an_azure_fallback_for_an_openai_primary_is_built_into_livekits_adapter() -> None:
    from livekit.agents.llm import RealtimeModelFallbackAdapter

    from realtime_supervisor_agent.config import AgentConfig
    from realtime_supervisor_agent.fallback import fallback_from_env
    from realtime_supervisor_agent.models import build_llm

    primary = AgentConfig(openai_api_key="sk-a", voice="verse")
    fb = fallback_from_env(
        primary,
        {
            "AGENT_FALLBACK_PROVIDER": "azure",
            "AGENT_FALLBACK_AZURE_ENDPOINT": "https://other-region.openai.azure.com",
            "AGENT_FALLBACK_AZURE_DEPLOYMENT": "gpt-realtime-eu",
            "AGENT_FALLBACK_API_KEY": "az-key",
        },
    )
    assert fb is not None
    assert (fb.provider, fb.azure_deployment, fb.voice) == ("azure", "gpt-realtime-eu", "verse")
    assert "az-key" not in repr(fb)
    llm = build_llm(primary, fallback=fb)
    assert isinstance(llm, RealtimeModelFallbackAdapter)
    assert len(llm._models) == 2
    assert not isinstance(build_llm(primary), RealtimeModelFallbackAdapter)


@pytest.mark.skipif(LK_VERSION < (1, 8), reason="the adapter exists from 1.8")
def test_an_incomplete_fallback_names_its_variable() -> None:
    from realtime_supervisor_agent.config import AgentConfig
    from realtime_supervisor_agent.fallback import fallback_from_env

    primary = AgentConfig(openai_api_key="sk-a")
    with pytest.raises(ConfigError, match="AGENT_FALLBACK_AZURE_DEPLOYMENT"):
        fallback_from_env(
            primary,
            {
                "AGENT_FALLBACK_PROVIDER": "azure",
                "AGENT_FALLBACK_AZURE_ENDPOINT": "https://x.openai.azure.com",
                "AGENT_FALLBACK_API_KEY": "k",
            },
        )
    with pytest.raises(ConfigError, match="AGENT_FALLBACK_PROVIDER"):
        fallback_from_env(primary, {"AGENT_FALLBACK_PROVIDER": "gemini"})


@pytest.mark.compat
@pytest.mark.skipif(LK_VERSION >= (1, 8), reason="1.5.11 only")
def test_on_livekit_15_a_fallback_is_refused_at_start() -> None:
    """1.5.11 has no RealtimeModelFallbackAdapter: the setting would do nothing, so it fails,
    naming the variable; without it the watchdog escalates as today."""
    from realtime_supervisor_agent.config import AgentConfig
    from realtime_supervisor_agent.fallback import fallback_from_env

    with pytest.raises(ConfigError, match=r"AGENT_FALLBACK_PROVIDER.*RealtimeModelFallbackAdapter"):
        fallback_from_env(AgentConfig(openai_api_key="sk-a"), {"AGENT_FALLBACK_PROVIDER": "openai"})
