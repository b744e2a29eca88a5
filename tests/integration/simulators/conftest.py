"""Fixtures of the simulator tests: each simulator served on a real loopback socket.

The tests talk HTTP to the simulators exactly as a connector would (aiohttp's
``TestServer`` binds 127.0.0.1 on a free port); every server and client is
closed at the end of its test (``filterwarnings = error`` would catch a leak).
"""

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.simulators.base import VendorSim

Client = TestClient[web.Request, web.Application]
Serve = Callable[[VendorSim | web.Application], Awaitable[Client]]


class FakeClock:
    """A monotonic clock a test moves by hand, for exact rolling-window assertions."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start a test client for a simulator (or a root app mounting some); all closed after."""
    clients: list[Client] = []

    async def start(target: VendorSim | web.Application) -> Client:
        app = target.app if isinstance(target, VendorSim) else target
        client: Client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()
