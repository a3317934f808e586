"""Runs the embedded Toxiproxy-compatible server in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import sys

from aiohttp import web

from .api import make_app

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
                exit_with_parent: bool = False) -> None:
    """1. bind the API; 2. announce the address; 3. serve until a signal (or the parent dies);
    4. close every proxy and connection."""
    parent = os.getppid()
    app = make_app()
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
        bound = runner.addresses[0]
        log.info("Toxiproxy-compatible API listening on http://%s:%s", bound[0], bound[1])
        if ready is not None:
            ready(bound)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        watcher = loop.create_task(_watch_parent(parent, stop)) if exit_with_parent else None
        await stop.wait()
        if watcher is not None:
            watcher.cancel()
    finally:
        await runner.cleanup()


def main(host: str = "127.0.0.1", port: int = 8474, exit_with_parent: bool = False) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def announce(bound) -> None:
        # one machine-readable line on stdout so a parent process can learn the port
        print(f"listening {bound[0]}:{bound[1]}", flush=True)

    try:
        asyncio.run(serve(host, port, announce, exit_with_parent))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"toxiproxy-server: {host}:{port} is already in use; "
                  f"choose another with --port (0 picks a free one)", file=sys.stderr)
        else:
            print(f"toxiproxy-server: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 2
    return 0
