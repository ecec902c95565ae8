"""The hand-written timer: the baseline the benchmarks compare the watchdog against.

`simulate --mode timer` attaches it; `bench/handwritten_timer.py` re-exports it and prints its
source.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

__all__ = ["HandWrittenTimer"]


class HandWrittenTimer:
    """After a user turn, if the agent has not started speaking within `seconds`, ask for a reply.

    The baseline for benchmarks: the twenty lines a developer writes on the first dead call,
    using only AgentSession's public events. Attached like the Supervisor.
    """

    def __init__(self, session: Any, seconds: float = 5.0) -> None:
        self._session = session
        self._seconds = seconds
        self._task: asyncio.Task[None] | None = None
        self.fired: list[float] = []  # monotonic times it asked for a reply

    async def start(self) -> None:
        self._session.on("user_state_changed", self._on_user_state)
        self._session.on("agent_state_changed", self._on_agent_state)

    def _on_user_state(self, ev: Any) -> None:
        if ev.old_state == "speaking" and ev.new_state == "listening":
            self._cancel()
            self._task = asyncio.get_running_loop().create_task(self._fire())

    def _on_agent_state(self, ev: Any) -> None:
        if ev.new_state == "speaking":
            self._cancel()

    async def _fire(self) -> None:
        await asyncio.sleep(self._seconds)
        self.fired.append(time.monotonic())
        self._session.generate_reply()

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def aclose(self) -> None:
        self._session.off("user_state_changed", self._on_user_state)
        self._session.off("agent_state_changed", self._on_agent_state)
        self._cancel()
