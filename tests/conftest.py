"""Fixtures every test module shares."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from realtime_supervisor import _learned as learned
from realtime_supervisor.chaos import ChaosServer
from tests import wire


@pytest.fixture(autouse=True)
def _fresh_learners() -> Iterator[None]:
    """Each test starts with no learned thresholds: a Supervisor built without a learner uses
    the process's, which earlier tests' healthy turns would otherwise have warmed."""
    learned._learners.clear()
    yield
    learned._learners.clear()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def make_server(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """`await make_server(faults, **kw)`: a started ChaosServer, closed after the test. The
    module's `CHAOS_SERVER_DEFAULTS` (a dict) fills the keywords a test leaves out."""
    defaults: dict[str, Any] = getattr(request.module, "CHAOS_SERVER_DEFAULTS", {})
    servers: list[ChaosServer] = []

    async def make(faults: str = "clean", **kw: Any) -> ChaosServer:
        server = ChaosServer(faults=faults, **{**defaults, **kw})
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.aclose()


@pytest.fixture
def open_client(
    http: aiohttp.ClientSession, make_server: Any, request: pytest.FixtureRequest
) -> Any:
    """`server, c = await open_client(faults, beta=False, **kw)`: a chaos server
    (`make_server(faults, **kw)`) and a raw client on its session s1 (`tests.wire.connect`, on
    Azure's legacy path with `beta`, with the module's `CHAOS_CONNECT` keywords)."""
    options: dict[str, Any] = getattr(request.module, "CHAOS_CONNECT", {})

    async def go(
        faults: str = "clean", *, beta: bool = False, **kw: Any
    ) -> tuple[ChaosServer, wire.Client]:
        server = await make_server(faults, **kw)
        return server, await wire.connect(http, server, beta=beta, **options)

    return go


@pytest.fixture
def respond(open_client: Any) -> Any:
    """`server, c = await respond(faults, **kw)`: `open_client`, then `response.create` sent:
    how most wire tests begin."""

    async def go(faults: str = "clean", **kw: Any) -> tuple[ChaosServer, wire.Client]:
        server, client = await open_client(faults, **kw)
        await client.send(type="response.create")
        return server, client

    return go
