"""Test helpers shared by the test tiers."""

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator

from aiohttp import web

from schemas.topics import TopicNames
from services.policy_service.bootstrap import build_app
from services.policy_service.settings import PolicyServiceSettings


class ServedApp:
    """An aiohttp application served on 127.0.0.1 by a thread with its own event loop.

    A real socket lets sync clients (schemathesis) and async ones share the app.
    """

    def __init__(self, factory: Callable[[], web.Application]) -> None:
        self._factory = factory
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="served-app", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.base_url = ""

    def start(self) -> "ServedApp":
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the app did not start within 60 s")
        if self._error is not None:
            raise RuntimeError("the app failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        assert not self._thread.is_alive(), "the served app did not stop"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        runner = web.AppRunner(self._factory(), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            self.base_url = f"http://{host}:{port}"
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()


@contextlib.contextmanager
def served_policy_service(settings: PolicyServiceSettings) -> Iterator[str]:
    """The policy service built from ``settings``, served on 127.0.0.1; yields its URL."""
    served = ServedApp(lambda: build_app(settings, TopicNames())).start()
    try:
        yield served.base_url
    finally:
        served.stop()
