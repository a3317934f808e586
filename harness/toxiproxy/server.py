"""Runs the embedded Toxiproxy-compatible server in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from ..inputs import printable
from .api import READ_TIMEOUT, make_app
from .deadline import HEAD_TIMEOUT, HeadDeadlines
from .guard import MAX_CONNECTIONS, Guard, parse_allowed
from .proxy import ProxyCollection, join_address

log = logging.getLogger("toxiproxy")


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    """Dead-man switch for the whole server: exit (healing every fault) when the parent dies."""
    while not stop.is_set():
        if os.getppid() != parent:
            log.warning("parent process %s is gone; shutting down", parent)
            stop.set()
            return
        await asyncio.sleep(0.5)


async def serve(
    host: str = "127.0.0.1",
    port: int = 8474,
    ready: Callable[[tuple[Any, ...]], None] | None = None,
    exit_with_parent: bool = False,
    head_timeout: float = HEAD_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    guard: Guard | None = None,
) -> None:
    """1. bind the API; 2. announce the address; 3. serve until a signal (or the parent dies);
    4. close every proxy and connection. A client has head_timeout seconds to send each request
    head and read_timeout seconds to send a request body, or its connection is closed. `guard`:
    where proxies may listen and how many connections each may hold (guard.Guard)."""
    parent = os.getppid()
    deadlines = HeadDeadlines(head_timeout)
    guard = guard if guard is not None else Guard()
    app = make_app(ProxyCollection(guard), read_timeout=read_timeout, middlewares=[deadlines.middleware])
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    loop = asyncio.get_running_loop()
    listener = None
    try:
        # our own listener rather than web.TCPSite, to put the head deadline in front of aiohttp's
        # protocol; runner.cleanup() still closes every connection (aiohttp tracks them)
        assert runner.server is not None  # set by runner.setup()
        listener = await loop.create_server(deadlines.protocol(runner.server), host, port, reuse_address=True)
        guard.set_api(s.getsockname() for s in listener.sockets)
        bound = listener.sockets[0].getsockname()[:2]
        log.info("Toxiproxy-compatible API listening on http://%s", join_address(*bound))
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


def options_error(host: str, port: int, allow_listen: list[str], max_connections: int) -> str | None:
    """What is wrong with the server's options, in one line naming the flag and the fix; or None."""
    if not host.strip("[]"):
        return "--host is empty; give the address to listen on, such as 127.0.0.1"
    if not 0 <= port <= 65535:
        return f"--port {port} is out of range; give 0 to 65535 (0 picks a free port)"
    if max_connections < 1:
        return f"--max-connections-per-proxy {max_connections} must be at least 1 (default {MAX_CONNECTIONS})"
    try:
        parse_allowed(allow_listen)
    except ValueError as exc:
        return f"--allow-listen: {exc}; give IP addresses, comma-separated, such as 0.0.0.0 or 10.0.0.5"
    return None


def split_hosts(values: list[str] | None) -> list[str]:
    """--allow-listen A,B --allow-listen C -> [A, B, C]."""
    return [host for value in values or [] for host in value.split(",") if host.strip()]


def main(
    host: str = "127.0.0.1",
    port: int = 8474,
    exit_with_parent: bool = False,
    read_timeout: float = READ_TIMEOUT,
    allow_listen: Sequence[str] = (),
    max_connections: int = MAX_CONNECTIONS,
) -> int:
    """read_timeout: seconds a client has for each request head, and again for its body;
    allow_listen: addresses besides loopback (and the API's) proxies may listen on;
    max_connections: connections one proxy holds at most. Exit 2 for a bad option or an
    address it cannot listen on (one line on stderr), 0 after a signal."""
    problem = options_error(host, port, list(allow_listen), max_connections)
    if problem:
        print(f"toxiproxy-server: {printable(problem, 300)}", file=sys.stderr)
        return 2
    host = host.strip("[]")
    shown = printable(join_address(host, port), 300)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def announce(bound: tuple[Any, ...]) -> None:
        # one machine-readable line on stdout so a parent process can learn the port
        print(f"listening {join_address(*bound)}", flush=True)

    guard = Guard(allow_listen, max_connections)
    try:
        asyncio.run(serve(host, port, announce, exit_with_parent, read_timeout, read_timeout, guard))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(
                f"toxiproxy-server: {shown} is already in use; choose another with --port (0 picks a free one)",
                file=sys.stderr,
            )
        else:
            print(
                f"toxiproxy-server: cannot listen on {shown}: {printable(exc.strerror or exc, 200)}; "
                f"give --host an address of this machine, such as 127.0.0.1",
                file=sys.stderr,
            )
        return 2
    except (ValueError, OverflowError) as exc:  # a host the resolver cannot take: NUL, a label over 63
        print(
            f"toxiproxy-server: cannot listen on {shown}: {printable(exc, 200)}; "
            f"give --host an address of this machine, such as 127.0.0.1",
            file=sys.stderr,
        )
        return 2
    return 0
