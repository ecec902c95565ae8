"""A real AgentSession, the real OpenAI plugin and the chaos server, in one process.

`start_call()` builds what a LiveKit job would: a realtime model pointed at the chaos server,
an `AgentSession` with the scripted caller as its microphone and the recording sink as its
speaker, optionally with the watchdog attached. The test then speaks turns and reads what was
heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import livekit.agents as lk
from livekit.agents import Agent, AgentSession
from livekit.plugins import openai

from realtime_supervisor.chaos.server import ChaosServer
from realtime_supervisor.testing import (
    LivekitLogs,
    RecordingAudioOutput,
    ScriptedCaller,
    SupervisedCall,
    room_less_options,
    session_options,
)

LK_VERSION = tuple(int(p) for p in lk.__version__.split(".")[:3])


@dataclass
class Call:
    server: ChaosServer
    session: AgentSession[Any]
    model: Any
    caller: ScriptedCaller
    speaker: RecordingAudioOutput
    logs: LivekitLogs
    supervisor: Any | None = None
    states: list[tuple[float, str]] = field(default_factory=list)
    escalations: list[Any] = field(default_factory=list)
    reply_seconds: float = 1.0
    state_changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def until_state(self, state: str, *, within: float = 30.0) -> None:
        """Wait until livekit reports the agent in `state`."""
        async with asyncio.timeout(within):
            while self.state != state:
                self.state_changed.clear()
                await self.state_changed.wait()

    @property
    def state(self) -> str:
        return self.states[-1][1] if self.states else "initializing"

    async def speak(self, seconds: float = 0.6) -> float:
        """Speak one turn; returns the time the caller stopped speaking."""
        await self.caller.say(seconds)
        return time.monotonic()

    async def answered_after(self, t: float, *, within: float) -> bool:
        """Whether a whole answer (not a preamble, not a cut-off reply) is heard after `t`."""
        try:
            await asyncio.wait_for(
                self.speaker.wait_for_answer(t, seconds=self.reply_seconds), within
            )
        except TimeoutError:
            return False
        return True

    async def fault_onset(self, *, within: float = 15.0, count: int = 1) -> float:
        """Wait until the chaos server has injected `count` faults; when the last took effect."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for record in self.server.sessions.values():
                if len(record.injected) >= count:
                    return float(record.injected[-1].onset)
            await asyncio.sleep(0.02)
        raise AssertionError("the chaos server injected nothing")

    async def settle(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def chaos_record(self) -> Any:
        (record,) = self.server.sessions.values()
        return record


@contextlib.asynccontextmanager
async def start_call(
    faults: str = "clean",
    *,
    supervised: bool = False,
    watchdog: Any | None = None,
    azure: bool = False,
    reply_seconds: float = 1.0,
    seed: int = 0,
    metrics: Any | None = None,
    wrap_model: bool = False,
    tools: list[Any] | None = None,
    hold_cue: Any | None = None,
) -> AsyncIterator[Call]:
    logs = LivekitLogs(lower=False)  # what the application's levels let through
    logs.attach()
    server = ChaosServer(faults=faults, seed=seed, reply_seconds=reply_seconds)
    await server.start()
    if azure:
        model = openai.realtime.RealtimeModel.with_azure(
            azure_deployment="gpt-realtime",
            azure_endpoint=server.azure_endpoint,
            api_key="azure-test-key",
            api_version="2024-10-01-preview",
        )
    else:
        model = openai.realtime.RealtimeModel(base_url=server.url, api_key="sk-test-key")
    llm = model
    if wrap_model:
        from realtime_supervisor.livekit.binding import reconnectable

        llm = reconnectable(model)
    session: AgentSession[Any] = AgentSession(llm=llm, **session_options(), **room_less_options())
    caller, speaker = ScriptedCaller(), RecordingAudioOutput()
    session.input.audio = caller
    session.output.audio = speaker
    call = Call(server, session, model, caller, speaker, logs, reply_seconds=reply_seconds)

    def on_state(ev: Any) -> None:
        call.states.append((time.monotonic(), ev.new_state))
        call.state_changed.set()

    session.on("agent_state_changed", on_state)
    sup = None
    if supervised:
        from realtime_supervisor.config import WatchdogConfig
        from realtime_supervisor.livekit.binding import Supervisor

        async def on_escalate(esc: Any) -> None:
            call.escalations.append(esc)

        sup = Supervisor(
            session,
            watchdog or WatchdogConfig(),
            on_escalate=on_escalate,
            metrics=metrics,
            model="gpt-realtime",
            provider="azure" if azure else "openai",
            hold_cue=hold_cue,
        )
        call.supervisor = sup
    assembly = SupervisedCall(session, sup, model=model)
    try:
        await assembly.start(Agent(instructions="You are a test agent.", tools=tools or []))
        yield call
    finally:
        caller.close()
        await assembly.aclose()
        await speaker.aclose()
        await server.aclose()
        logs.detach()
