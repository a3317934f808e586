"""Runs the embedded Toxiproxy-compatible server in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import sys

from aiohttp import web

from .api import READ_TIMEOUT, make_app
from .deadline import HEAD_TIMEOUT, HeadDeadlines

log = logging.getLogger("toxiproxy")


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    """Dead-man switch for the whole server: exit (healing every fault) when the parent dies."""
    while not stop.is_set():
        if os.getppid() != parent:
            log.warning("parent process %s is gone; shutting down", parent)
            stop.set()
            return
        await asyncio.sleep(0.5)


async def serve(host: str = "127.0.0.1", port: int = 8474, ready=None,
                exit_with_parent: bool = False, head_timeout: float = HEAD_TIMEOUT,
                read_timeout: float = READ_TIMEOUT) -> None:
    """1. bind the API; 2. announce the address; 3. serve until a signal (or the parent dies);
    4. close every proxy and connection. A client has head_timeout seconds to send each request
    head and read_timeout seconds to send a request body, or its connection is closed."""
    parent = os.getppid()
    deadlines = HeadDeadlines(head_timeout)
    app = make_app(read_timeout=read_timeout, middlewares=[deadlines.middleware])
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    loop = asyncio.get_running_loop()
    listener = None
    try:
        # our own listener rather than web.TCPSite, to put the head deadline in front of aiohttp's
        # protocol; runner.cleanup() still closes every connection (aiohttp tracks them)
        listener = await loop.create_server(deadlines.protocol(runner.server), host, port,
                                            reuse_address=True)
        bound = listener.sockets[0].getsockname()[:2]
        log.info("Toxiproxy-compatible API listening on http://%s:%s", bound[0], bound[1])
        if ready is not None:
            ready(bound)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        watcher = loop.create_task(_watch_parent(parent, stop)) if exit_with_parent else None
        await stop.wait()
        if watcher is not None:
            watcher.cancel()
    finally:
        if listener is not None:
            listener.close()
        await runner.cleanup()


def main(host: str = "127.0.0.1", port: int = 8474, exit_with_parent: bool = False,
         read_timeout: float = READ_TIMEOUT) -> int:
    """read_timeout: seconds a client has for each request head, and again for its body."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def announce(bound) -> None:
        # one machine-readable line on stdout so a parent process can learn the port
        print(f"listening {bound[0]}:{bound[1]}", flush=True)

    try:
        asyncio.run(serve(host, port, announce, exit_with_parent, read_timeout, read_timeout))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"toxiproxy-server: {host}:{port} is already in use; "
                  f"choose another with --port (0 picks a free one)", file=sys.stderr)
        else:
            print(f"toxiproxy-server: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 2
    return 0
