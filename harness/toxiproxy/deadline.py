"""Read deadlines for the API's HTTP connections, so a slow or silent client cannot hold one open.

aiohttp (3.9 and on, as pyproject allows) has no timeout for reading a request head: a client that
connects and sends nothing, or a request line a byte a minute, keeps its connection for as long as
it likes. HeadDeadlines gives each connection `timeout` seconds to deliver every request head,
counted from when the connection opens and again from the end of each request, and closes it
otherwise. While a handler runs the clock is stopped (the body has its own deadline in api._body).

It wraps aiohttp's per-connection protocol (to start the clock when a connection opens and to close
it) and adds a middleware (to stop the clock once a whole request head has arrived, and to restart
it when the request has been handled); connections are matched to the middleware by transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

HEAD_TIMEOUT = 10.0  # seconds a client has to send a request head


class _Guard(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind a deadline for the next request head."""

    def __init__(self, deadlines: HeadDeadlines, inner: asyncio.Protocol):
        self.deadlines = deadlines
        self.inner = inner
        self.transport: asyncio.BaseTransport | None = None  # as asyncio hands it (close() is all we call)
        self.timer: asyncio.TimerHandle | None = None
        self.busy = 0  # requests being handled
        self.closed = False

    def arm(self) -> None:
        self.disarm()
        if not self.closed and self.busy == 0:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.deadlines.timeout, self._expire)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = None

    def _expire(self) -> None:
        self.timer = None
        if self.busy == 0 and self.transport is not None and not self.closed:
            self.transport.close()  # aiohttp sees connection_lost and tidies up

    # -- asyncio.Protocol, passed on to aiohttp's --------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.deadlines.guards[transport] = self
        self.arm()
        self.inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.disarm()
        if self.transport is not None:
            self.deadlines.guards.pop(self.transport, None)
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class HeadDeadlines:
    """The deadline of every API connection: protocol() wraps aiohttp's protocol factory, and
    middleware must be the app's first middleware."""

    def __init__(self, timeout: float = HEAD_TIMEOUT):
        if not timeout > 0:
            raise ValueError(f"head timeout must be > 0 seconds, got {timeout!r}")
        self.timeout = timeout
        self.guards: dict[asyncio.BaseTransport, _Guard] = {}

    def protocol(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        return lambda: _Guard(self, factory())

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        guard = self.guards.get(request.transport) if request.transport is not None else None
        if guard is None:  # not a guarded connection (a test client, say)
            return await handler(request)
        guard.busy += 1  # the head is in: stop the clock while the handler runs
        guard.disarm()
        try:
            return await handler(request)
        finally:
            guard.busy -= 1
            guard.arm()  # the next request head is due within the timeout
