"""The chaos Realtime server: a local stand-in for the OpenAI / Azure Realtime API, failing on cue.

The real livekit plugin connects to it (`RealtimeModel(base_url=server.url)` or
`RealtimeModel.with_azure(azure_endpoint=server.azure_endpoint, ...)`), converses with it, and
meets the faults the schedule names (`schedule.py`; what each does: `faults.py`). It never
looks at who is judging the conversation: it only speaks the protocol and records what it
received and what it injected.

Rules:
1. Paths ending in `/realtime` are accepted. A query with a preview `api-version` (or one
   before Azure's GA version 2025-08-28) is the legacy Azure path: server events then use the
   beta names (`response.audio.delta`, `conversation.item.created`, ...) and the beta session
   shape; otherwise GA names.
2. A websocket belongs to a chaos session keyed by the `chaos_session` query parameter, else by
   a hash of the credential header; the session's turn counter survives reconnects.
3. By default the server behaves as the real API does where a watchdog can tell: audio is
   produced faster than real time (`pace`), pings every 20 s (`ping_interval`), transcription
   only when configured and about 1.2 s late (`transcription_delay`).

The modules: `protocol` (names, shapes, errors), `settings` (session.update), `items`
(conversation items), `connection` (one websocket), `response` (one response), `faults` (the
hook table), `schedule` (the catalogue and its syntax), `vad` and `tones` (audio), `pace`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from aiohttp import WSCloseCode, web

from realtime_supervisor.errors import ConfigError

from .connection import Connection, SessionState
from .pace import DEFAULT_PACE, Pace, parse_pace
from .protocol import Ids, is_beta
from .records import Injection, ReceivedEvent, SessionRecord
from .schedule import Schedule, parse_schedule

__all__ = [
    "DEFAULT_PING_INTERVAL",
    "DEFAULT_TRANSCRIPTION_DELAY",
    "ChaosServer",
    "Injection",
    "ReceivedEvent",
    "SessionRecord",
]

logger = logging.getLogger("realtime_supervisor.chaos")

Clock = Callable[[], float]

# the real API pings about every 20 s (livekit's client sets no heartbeat of its own)
DEFAULT_PING_INTERVAL: Final = 20.0
# input transcription arrives 1.2-1.4 s after the commit in a public capture of the GA API
DEFAULT_TRANSCRIPTION_DELAY: Final = 1.2


def _positive(name: str, value: float | None, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigError(name, f"expected seconds > 0, got {value!r}")
    if value <= 0:
        raise ConfigError(name, f"expected seconds > 0, got {value!r}")


class ChaosServer:
    """A fake Realtime server on `host:port` that injects the faults `faults` schedules.

    async with ChaosServer(faults="clean,stall_mid=3") as server:
        model = RealtimeModel(base_url=server.url, api_key="k")
        ...
        server.sessions["..."].injected
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: str | Schedule = "clean",
        seed: int = 0,
        reply_seconds: float = 1.0,
        *,
        delta_seconds: float = 0.1,
        pace: Pace = DEFAULT_PACE,
        ping_interval: float | None = DEFAULT_PING_INTERVAL,
        transcription_delay: float = DEFAULT_TRANSCRIPTION_DELAY,
        vad_threshold_rms: float = 1000.0,
        log_file: str | Path | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.schedule = faults if isinstance(faults, Schedule) else parse_schedule(faults, seed)
        self.host = host
        self._port = port
        self.seed = seed
        self.reply_seconds = reply_seconds
        self.delta_seconds = delta_seconds
        self.pace = parse_pace(pace)
        _positive("reply_seconds", reply_seconds)
        _positive("delta_seconds", delta_seconds)
        _positive("ping_interval", ping_interval, optional=True)
        _positive("transcription_delay", transcription_delay)
        self.ping_interval = ping_interval
        self.transcription_delay = transcription_delay
        self.vad_threshold_rms = vad_threshold_rms
        self._log_path = Path(log_file) if log_file is not None else None
        self._log_file: IO[str] | None = None
        self.clock = clock
        self.sessions: dict[str, SessionRecord] = {}
        self._sessions: dict[str, SessionState] = {}
        self._runner: web.AppRunner | None = None
        self.ids = Ids()
        self._connection_index = itertools.count(1)

    @property
    def port(self) -> int:
        """The bound port (after `start()`)."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL for `RealtimeModel(base_url=...)`."""
        return f"ws://{self.host}:{self._port}/v1"

    @property
    def azure_endpoint(self) -> str:
        """Endpoint for `RealtimeModel.with_azure(azure_endpoint=...)`."""
        return f"http://{self.host}:{self._port}"

    def session(self, key: str) -> SessionRecord:
        """The record of session `key` (KeyError if it never connected)."""
        return self.sessions[key]

    async def start(self) -> None:
        """Bind and start serving."""
        if self._runner is not None:
            raise RuntimeError("ChaosServer already started")
        if self._log_path is not None:
            self._log_file = self._log_path.open("a", encoding="utf-8")
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port)
        await site.start()
        self._runner = runner
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self._port = int(sockets[0].getsockname()[1])
        self.log(
            "chaos.started", logging.INFO, url=self.url, faults=self.schedule.text, seed=self.seed
        )

    async def aclose(self) -> None:
        """Stop every response, close every websocket, then stop serving."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        connections = [c for s in self._sessions.values() for c in s.connections]
        for conn in connections:
            await conn.stop()
        closes = [
            c.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server closing") for c in connections
        ]
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*closes, return_exceptions=True), timeout=2.0)
        await runner.cleanup()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    async def __aenter__(self) -> ChaosServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- internals --------------------------------------------------------------------------

    def log(self, event: str, level: int, **fields: Any) -> None:
        line = json.dumps({"event": event, **fields}, default=str)
        logger.log(level, line)
        if self._log_file is not None:
            self._log_file.write(line + "\n")
            self._log_file.flush()

    @staticmethod
    def _session_key(request: web.Request) -> str:
        named = request.query.get("chaos_session")
        if named:
            return named
        credential = request.headers.get("api-key") or request.headers.get("Authorization") or ""
        if not credential:
            return "anonymous"
        # a digest, so the credential itself is never stored or logged
        return "cred-" + hashlib.sha256(credential.encode()).hexdigest()[:12]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not request.path.rstrip("/").endswith("/realtime"):
            raise web.HTTPNotFound(text="chaos server: only */realtime websockets are served")
        key = self._session_key(request)
        beta = is_beta(request.query.get("api-version"))
        model = request.query.get("model") or request.query.get("deployment") or "gpt-realtime"
        ws = web.WebSocketResponse(
            timeout=2.0,
            compress=False,
            max_msg_size=16 * 1024 * 1024,
            autoping=False,  # pings are answered by the connection, unless it is dead
            autoclose=False,  # a close frame too
        )
        if not ws.can_prepare(request).ok:
            raise web.HTTPBadRequest(text="chaos server: expected a websocket upgrade")
        await ws.prepare(request)
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = SessionState(key)
            self.sessions[key] = session.record
        session.record.connections += 1
        index = next(self._connection_index)
        self.log(
            "chaos.connected",
            logging.INFO,
            session=key,
            connection=index,
            beta=beta,
            path=request.path,
            sticky=str(session.sticky) if session.sticky else None,
        )
        conn = Connection(self, session, ws, request, index=index, beta=beta, model=model)
        session.connections.add(conn)
        try:
            await conn.run()
        finally:
            session.connections.discard(conn)
        return ws
