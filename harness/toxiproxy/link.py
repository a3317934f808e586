"""One proxied connection: two directions, each a chain of toxic stages between a reader and a writer.

Data flow in one direction (as in Toxiproxy's ToxicLink):

    source socket -> pump (stamps Chunk) -> stage 1 -> ... -> stage n -> sink (destination socket)

Each stage runs one toxic's pipe() in its own task. Adding a toxic appends a stage to
every open connection; removing one interrupts its stage, which hands what it holds and
what is queued to the next stage before leaving the chain, so no byte is lost or reordered.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import socket
import struct
import time
from typing import Any, Protocol

from ..inputs import printable
from .entry import ToxicEntry
from .toxics import Chunk, End
from .toxics.noop import NoopToxic

log = logging.getLogger("toxiproxy.link")

READ_SIZE = 256 * 1024
HIGH_WATER = 4 * 1024 * 1024  # bytes held in a chain before the pump stops reading
UPSTREAM, DOWNSTREAM = "upstream", "downstream"
NOOP = NoopToxic()


class Links(Protocol):
    """What a link needs of its proxy (harness.toxiproxy.proxy.Proxy): the set it leaves when it closes."""

    links: set[Link]


class Stage:
    """One toxic on one direction of one connection (Toxiproxy's ToxicStub)."""

    def __init__(self, link: Link, direction: str, entry: ToxicEntry):
        self.link = link
        self.direction = direction
        self.entry = entry
        # toxicity is drawn once per connection, when the toxic meets the connection
        self.toxic = entry.toxic if random.random() < entry.toxicity else NOOP
        self.state: Any = self.toxic.new_state()
        self.end: str | None = None
        self.closed = False  # close() was called: the toxic ends the stream here
        self.interrupted = False
        self.dropped = False  # the toxic discarded bytes of this stream (a gap in it)
        self.queue: collections.deque[Chunk | End] = collections.deque()
        self._waiter: asyncio.Future[bool] | None = None
        self._sleeper: asyncio.Future[bool] | None = None
        self.task: asyncio.Task[None] | None = None

    # -- used by the link --------------------------------------------------
    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    def put(self, item: Chunk | End) -> None:
        self.queue.append(item)
        self._wake(self._waiter, True)

    def interrupt(self) -> None:
        """Ask the stage to leave the chain; sleeps return at once, held data goes on."""
        self.interrupted = True
        self._wake(self._waiter, True)
        self._wake(self._sleeper, False)

    async def _run(self) -> None:
        try:
            await self.toxic.pipe(self)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("toxic %s failed; closing connection", printable(self.entry.name, 200))
            self.end = self.end or End.CLOSE
        if self.end is not None:
            self.link.forward(self, End(self.end))
        else:
            self.link.splice_out(self)

    # -- the Stub interface toxics use ---------------------------------------
    async def recv(self) -> Chunk | None:
        """Next chunk, or None at end of stream, on close, or when interrupted."""
        while True:
            if self.interrupted or self.end is not None:
                return None
            if self.queue:
                item = self.queue.popleft()
                if isinstance(item, End):
                    self.end = item.kind
                    return None
                return item
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def send(self, chunk: Chunk) -> None:
        self.link.forward(self, chunk)

    def drop(self, chunk: Chunk) -> None:
        self.dropped = True
        self.link.release(self.direction, len(chunk.data))

    async def sleep(self, seconds: float) -> bool:
        """Sleep; False if interrupted or closed first (the caller then passes its data on)."""
        if self.interrupted or self.closed:
            return False
        if seconds <= 0:
            return True
        loop = asyncio.get_running_loop()
        self._sleeper = loop.create_future()
        timer = loop.call_later(seconds, self._wake, self._sleeper, True)
        try:
            return await self._sleeper
        finally:
            timer.cancel()
            self._sleeper = None

    def close(self, kind: str = End.CLOSE) -> None:
        """End this stream here; the end travels on to the sink, which closes the connection."""
        self.closed = True
        if self.end is None:
            self.end = kind
        self._wake(self._waiter, True)
        self._wake(self._sleeper, False)

    def close_after(self, seconds: float) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(seconds, self.close, End.CLOSE)

    @staticmethod
    def _wake(fut: asyncio.Future[bool] | None, value: bool) -> None:
        if fut is not None and not fut.done():
            fut.set_result(value)


class Link:
    """A client connection and its upstream connection, joined through the toxic chains."""

    def __init__(
        self,
        proxy: Links,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ):
        self.proxy = proxy
        self.readers = {UPSTREAM: client[0], DOWNSTREAM: upstream[0]}
        self.writers = {UPSTREAM: upstream[1], DOWNSTREAM: client[1]}
        self.chains: dict[str, list[Stage]] = {UPSTREAM: [], DOWNSTREAM: []}
        self.buffered = {UPSTREAM: 0, DOWNSTREAM: 0}
        self.space = {UPSTREAM: asyncio.Event(), DOWNSTREAM: asyncio.Event()}
        self.eof_sent: set[str] = set()
        self.pumps: list[asyncio.Task[None]] = []
        self.closed = False
        peer = client[1].get_extra_info("peername")
        self.name = f"{peer[0]}:{peer[1]}" if peer else "?"

    def start(self, entries: list[ToxicEntry]) -> None:
        for entry in entries:
            self.add_stage(entry)
        loop = asyncio.get_running_loop()
        self.pumps = [loop.create_task(self._pump(d)) for d in (UPSTREAM, DOWNSTREAM)]

    # -- chain changes (called by the proxy's toxic collection) -------------
    def add_stage(self, entry: ToxicEntry) -> Stage:
        stage = Stage(self, entry.stream, entry)
        self.chains[entry.stream].append(stage)
        stage.start()
        return stage

    def find_stage(self, entry: ToxicEntry) -> Stage | None:
        for stage in self.chains[entry.stream]:
            if stage.entry is entry and not stage.interrupted:
                return stage
        return None

    def replace_stage(self, entry: ToxicEntry) -> Stage | None:
        """Restart the entry's stage with its new attributes, keeping its place in the chain."""
        old = self.find_stage(entry)
        if old is None:
            return None
        chain = self.chains[entry.stream]
        new = Stage(self, entry.stream, entry)
        chain.insert(chain.index(old) + 1, new)
        new.start()
        old.interrupt()
        return old

    def splice_out(self, stage: Stage) -> None:
        """Remove an interrupted stage, handing its queue to what follows it, in order."""
        chain = self.chains[stage.direction]
        if stage not in chain:
            return
        while stage.queue:
            self.forward(stage, stage.queue.popleft())
        chain.remove(stage)

    # -- data flow ------------------------------------------------------------
    def forward(self, after: Stage | None, item: Chunk | End, direction: str | None = None) -> None:
        """Deliver item to the stage after `after` (or the first stage), or to the sink."""
        direction = after.direction if after is not None else direction
        if direction is None:
            raise ValueError("forward() to the start of a chain needs its direction")
        chain = self.chains[direction]
        index = chain.index(after) + 1 if after is not None else 0
        if index < len(chain):
            chain[index].put(item)
        else:
            self._sink(direction, item)

    def release(self, direction: str, nbytes: int) -> None:
        self.buffered[direction] -= nbytes
        if self.buffered[direction] <= HIGH_WATER // 2:
            self.space[direction].set()

    def _sink(self, direction: str, item: Chunk | End) -> None:
        if self.closed:
            return
        writer = self.writers[direction]
        if isinstance(item, Chunk):
            self.release(direction, len(item.data))
            writer.write(item.data)
        elif item.kind == End.EOF:
            self.eof_sent.add(direction)
            if writer.can_write_eof() and not writer.is_closing():
                try:
                    writer.write_eof()
                except OSError:
                    pass
            if len(self.eof_sent) == 2:
                self.close()
        elif item.kind == End.RESET:
            self.close(reset=True)
        else:
            self.close()

    async def _pump(self, direction: str) -> None:
        reader = self.readers[direction]
        writer = self.writers[direction]
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    self.forward(None, End(End.EOF), direction)
                    return
                self.buffered[direction] += len(data)
                self.forward(None, Chunk(data, time.monotonic()), direction)
                if self.buffered[direction] > HIGH_WATER:
                    self.space[direction].clear()
                    await self.space[direction].wait()
                if writer.transport.get_write_buffer_size() > HIGH_WATER:
                    await writer.drain()
        except asyncio.CancelledError:
            raise
        except (ConnectionError, OSError):
            self.close()

    # -- teardown -------------------------------------------------------------
    def close(self, reset: bool = False) -> None:
        """Close both sockets; with reset, abort both with a TCP RST (connection reset by peer)."""
        if self.closed:
            return
        self.closed = True
        current = asyncio.current_task()
        for task in self.pumps + [s.task for c in self.chains.values() for s in c]:
            if task is not None and task is not current:
                task.cancel()
        for writer in self.writers.values():
            if reset:
                sock = writer.get_extra_info("socket")
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
                writer.transport.abort()
            else:
                writer.close()
        self.proxy.links.discard(self)
