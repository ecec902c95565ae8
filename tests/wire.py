"""Shared by the chaos server's wire tests: a raw websocket client, `connect`, and the audio
the caller sends. The `http` and `make_server` fixtures are in conftest.py.

The client keeps every frame and reads them through a cursor: `until(type)` returns the next
event of that type after the last one it returned (`after=` reads from an index instead), and
`quiet(s)` returns whatever else arrived. Pings are counted (answered by hand when the socket
was opened with `autoping=False`), and how the socket ended is kept.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from typing import Any

import aiohttp

from realtime_supervisor.chaos import ChaosServer, tone

RATE = 24000
API_VERSION = "2024-10-01-preview"
Event = dict[str, Any]


def pcm_b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode()


def speech(ms: int) -> bytes:
    return tone(300.0, start=0, count=RATE * ms // 1000, amplitude=8000)


def silence(ms: int) -> bytes:
    return b"\x00\x00" * (RATE * ms // 1000)


class Client:
    """A raw websocket client that keeps every server event, pings and close included."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[Event] = []
        self.pings = 0
        self.end: aiohttp.WSMsgType | None = None  # how the socket ended, as the client saw it
        self.ended = asyncio.Event()
        self._next = 0  # the cursor: `until` and `quiet` read from here
        self._new = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            msg = await self.ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                event = json.loads(msg.data)
                event["_at"] = time.monotonic()
                self.seen.append(event)
                self._new.set()
            elif msg.type == aiohttp.WSMsgType.PING:  # only with autoping=False
                self.pings += 1
                await self.ws.pong(msg.data)
            elif msg.type == aiohttp.WSMsgType.PONG:
                continue
            else:
                self.end = msg.type
                self.ended.set()
                self._new.set()
                return

    async def send(self, **event: Any) -> None:
        await self.ws.send_str(json.dumps(event))

    async def until(self, type_: str, *, after: int | None = None, within: float = 5.0) -> Event:
        """The first event of `type_` at index >= `after` (default: after the last one read)."""
        start = self._next if after is None else after
        async with asyncio.timeout(within):
            while True:
                for index in range(start, len(self.seen)):
                    if self.seen[index]["type"] == type_:
                        self._next = index + 1
                        return self.seen[index]
                start = len(self.seen)
                if self.ended.is_set():
                    raise AssertionError(f"socket ended ({self.end}) before {type_}")
                self._new.clear()
                await self._new.wait()

    async def quiet(self, seconds: float) -> list[Event]:
        """Everything after the cursor that arrived within `seconds` (a guard, not a sleep in
        logic: it returns early when the socket ends)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ended.wait(), seconds)
        got, self._next = self.seen[self._next :], len(self.seen)
        return got

    async def speak(self, ms: int = 500, pause_ms: int = 600) -> None:
        """Send a tone burst then silence in 100 ms appends, as the plugin does."""
        pcm = speech(ms) + silence(pause_ms)
        step = RATE // 10 * 2
        for i in range(0, len(pcm), step):
            await self.send(type="input_audio_buffer.append", audio=pcm_b64(pcm[i : i + step]))

    def types(self) -> list[str]:
        return [e["type"] for e in self.seen]

    def audio(self) -> list[Event]:
        return [e for e in self.seen if e["type"] == "response.output_audio.delta"]

    async def close(self) -> None:
        self._task.cancel()
        await self.ws.close()


async def connect(
    http: aiohttp.ClientSession,
    server: ChaosServer,
    *,
    beta: bool = False,
    session: str | None = "s1",
    key: str = "sk-test",
    **ws: Any,
) -> Client:
    """A client on `server`'s GA path (or Azure's legacy `beta` path) for chaos session
    `session` (None: the server assigns one); `ws` goes to `ws_connect` (autoping=False...)."""
    query = f"&chaos_session={session}" if session else ""
    if beta:
        url = server.azure_endpoint.replace("http", "ws", 1)
        url += f"/openai/realtime?api-version={API_VERSION}&deployment=dep{query}"
        headers = {"api-key": key}
    else:
        url = f"{server.url}/realtime?model=gpt-realtime{query}"
        headers = {"Authorization": f"Bearer {key}"}
    return Client(await http.ws_connect(url, headers=headers, **ws))
