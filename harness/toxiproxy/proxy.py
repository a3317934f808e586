"""Proxies and their toxic collections, with the state and rules of Toxiproxy's API."""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Sequence
from typing import Any

from ..inputs import printable
from .entry import ToxicEntry
from .guard import Guard, Listener, ip_of, resolve, sockname_ip
from .link import DOWNSTREAM, UPSTREAM, Link, Stage
from .toxics import REGISTRY, AttributeError400
from .toxics.base import show

log = logging.getLogger("toxiproxy")

DEFAULT_HOST = "127.0.0.1"  # a listen address without a host binds loopback only
CONNECT_TIMEOUT = 10.0


def shown(text: Any) -> str:
    """Client input (a name, an address) as a log line may carry it: escaped and bounded."""
    return printable(text, 200)


class ApiError(Exception):
    """An error with Toxiproxy's message and HTTP status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message = message
        self.status = status
        self.close = False  # answer with Connection: close (the request was not read whole)


def bad_request(detail: str) -> ApiError:
    return ApiError(f"bad request body: {detail}", 400)


def missing_field(name: str) -> ApiError:
    return ApiError(f"missing required field: {name}", 400)


PROXY_NOT_FOUND = ("proxy not found", 404)
PROXY_EXISTS = ("proxy already exists", 409)
TOXIC_NOT_FOUND = ("toxic not found", 404)
TOXIC_EXISTS = ("toxic already exists", 409)
INVALID_STREAM = ("stream was invalid, can be either upstream or downstream", 400)
INVALID_TOXIC_TYPE = ("invalid toxic type", 400)


def split_address(address: str, default_host: str = DEFAULT_HOST) -> tuple[str, int]:
    """'host:port', '[v6]:port' or ':port' -> (host, port)."""
    if not isinstance(address, str) or ":" not in address:
        raise bad_request(f"address {show(address)} is not host:port")
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or default_host
    # ASCII digits only: int() would also take "+80", " 80", "8_0" and other scripts' digits
    if not (port.isascii() and port.isdigit() and len(port) <= 5):
        raise bad_request(f"address {show(address)} has no numeric port")
    number = int(port)
    if not 0 <= number <= 65535:
        raise bad_request(f"port {number} of {show(address)} is out of range")
    return host, number


def check_name(name: str, what: str) -> str:
    """A name must be addressable in a URL: no lone surrogate (JSON's "\\ud800" escape)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(f"{what} is not valid Unicode (a lone surrogate)") from None
    return name


def _literal(address: str) -> tuple[Any, int]:
    """(IP, port) of an address spelled with an IP address; (None, 0) otherwise."""
    try:
        host, port = split_address(address)
    except ApiError:
        return None, 0
    return ip_of(host), port


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_toxicity(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise bad_request(f"toxicity must be a number from 0 to 1, got {show(value)}")
    return float(value)


# The longest dead-man timer we arm: 30 days. Far beyond any drill, and small enough that the
# deadline is an ordinary float for time.time() and loop.call_later (10**400 ms, or 1e309 read as
# infinity, would overflow them after the toxic was already live).
MAX_TIME_LIMIT_MS = 30 * 24 * 3600 * 1000


def parse_time_limit(value: Any) -> int | None:
    """None, or a whole number of ms from 1 to MAX_TIME_LIMIT_MS; anything else is a 400."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value <= MAX_TIME_LIMIT_MS
        or value != int(value)
    ):  # NaN fails the range test
        raise bad_request(
            f"time_limit_ms must be a whole number of milliseconds from 1 to {MAX_TIME_LIMIT_MS}, got {show(value)}"
        )
    return int(value)


def _deadline(time_limit_ms: int) -> tuple[float, float]:
    """(delay in seconds, epoch seconds) of a time limit parse_time_limit accepted."""
    delay = time_limit_ms / 1000.0
    return delay, time.time() + delay


class Proxy:
    """A listening address forwarding to an upstream, with its toxics and open links."""

    def __init__(self, name: str, listen: str, upstream: str, collection: ProxyCollection | None = None):
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.collection = collection if collection is not None else ProxyCollection()
        self.enabled = False
        self.closed = False  # deleted: it never listens again
        self.server: asyncio.base_events.Server | None = None
        # (address, port) of each socket it listened on last, kept while disabled, dropped when
        # its listen address changes: the upstream check of other proxies compares against them
        self.bound: list[tuple[Any, ...]] = []
        self.links: set[Link] = set()
        self.connecting = 0  # connections accepted, upstream not yet open
        self.toxics: list[ToxicEntry] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        # one start, stop or update at a time: two overlapping starts would open two listeners,
        # and the one the proxy forgets could never be closed by the API
        self._lock = asyncio.Lock()
        # our addition: a disabled proxy may carry a time limit after which it enables itself
        self.time_limit_ms: int | None = None
        self.expires_at: float | None = None  # epoch seconds, for the API
        self._enable_timer: asyncio.TimerHandle | None = None
        self._enable_task: asyncio.Task[Any] | None = None

    def to_json(self) -> dict[str, Any]:
        body = {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in self.ordered_toxics()],
        }
        if self.time_limit_ms is not None:  # only while a re-enable is pending: unchanged shape otherwise
            body["time_limit_ms"] = self.time_limit_ms
            if self.expires_at is not None:
                body["expires_at"] = round(self.expires_at, 3)
        return body

    def ordered_toxics(self) -> list[ToxicEntry]:
        """Upstream chain first, then downstream, each in chain order (as Toxiproxy lists them)."""
        return [t for s in (UPSTREAM, DOWNSTREAM) for t in self.toxics if t.stream == s]

    # -- lifecycle ------------------------------------------------------------
    async def start(self) -> None:
        async with self._lock:
            await self._start()

    async def _start(self) -> None:
        """Listen (the caller holds the lock); a deleted proxy is not found."""
        self.disarm_enable()
        if self.closed:
            raise ApiError(*PROXY_NOT_FOUND)
        if self.enabled:
            return
        host, port = split_address(self.listen)
        try:
            # bound, not yet listening: nothing connects before the checks below have passed
            server = await asyncio.start_server(self._accept, host, port, reuse_address=True, start_serving=False)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ApiError(f"listen {show(self.listen)}: address already in use", 409) from None
            raise ApiError(f"listen {show(self.listen)}: {exc.strerror or exc}", 400) from None
        except ValueError as exc:  # a host the resolver cannot take: NUL, a label over 63 (IDNA)
            raise ApiError(f"listen {show(self.listen)}: {exc}", 400) from None
        previous = self.bound
        try:
            # known before the check, so a proxy starting at the same time sees this one
            self.bound = [s.getsockname() for s in server.sockets]
            await self.collection.vet(self, self.listen, self.upstream, self.bound)
            await server.start_serving()
        except BaseException:
            self.bound = previous
            server.close()
            raise
        self.server = server
        self.listen = join_address(host, self.bound[0][1])
        self.enabled = True
        log.info("proxy %s listening on %s -> %s", shown(self.name), shown(self.listen), shown(self.upstream))

    async def stop(self) -> None:
        """Stop listening and drop every open connection, as a disabled Toxiproxy proxy does."""
        if not self.enabled:
            return
        self.enabled = False
        server, self.server = self.server, None
        if server is not None:
            server.close()
        for link in list(self.links):
            link.close()
        for task in list(self._tasks):
            task.cancel()
        log.info("proxy %s stopped", shown(self.name))

    async def close(self) -> None:
        """Deleted: cancel its timers, wait for a start under way, and stop for good."""
        self.closed = True
        self.collection.guard.forget(self.name)
        for entry in self.toxics:
            if entry.timer is not None:
                entry.timer.cancel()
        self.disarm_enable()
        async with self._lock:
            await self.stop()

    async def update(self, listen: str, upstream: str, enabled: bool, time_limit_ms: int | None = None) -> None:
        """Change the proxy; any change cancels a pending re-enable. Disabled with time_limit_ms,
        it enables itself after that many ms unless enabled, changed or deleted meanwhile."""
        if time_limit_ms is not None and enabled:
            raise bad_request("time_limit_ms applies to disabling a proxy (enabled false)")
        if listen != self.listen or upstream != self.upstream:
            split_address(listen)
            split_address(upstream)
        async with self._lock:
            if self.closed:
                raise ApiError(*PROXY_NOT_FOUND)
            self.disarm_enable()
            before = self.listen, self.upstream, self.enabled
            moved = listen != self.listen or upstream != self.upstream
            if moved:
                # refused before anything changes (and checked again once bound, if enabled)
                await self.collection.vet(
                    self, listen, upstream, self.bound if listen == self.listen and self.bound else None
                )
                await self.stop()
                if listen != self.listen:
                    self.bound = []
                self.listen, self.upstream = listen, upstream
            if enabled:
                try:
                    await self._start()
                except ApiError:
                    if moved:  # the new address cannot listen: the proxy stays as it was
                        self.listen, self.upstream = before[0], before[1]
                        if before[2]:
                            await self._restart_quietly()
                    raise
            else:
                await self.stop()
                self._arm_enable(time_limit_ms)

    async def _restart_quietly(self) -> None:
        try:
            await self._start()
        except ApiError as exc:
            log.error(
                "proxy %s: could not listen on %s again: %s", shown(self.name), shown(self.listen), shown(exc.message)
            )

    # -- the dead-man switch of a disabled proxy (our addition) ----------------
    def _arm_enable(self, time_limit_ms: int | None) -> None:
        if time_limit_ms is None:
            return
        delay, self.expires_at = _deadline(time_limit_ms)
        self.time_limit_ms = time_limit_ms
        self._enable_timer = asyncio.get_running_loop().call_later(delay, self._expire_disabled)

    def disarm_enable(self) -> None:
        """Cancel a pending re-enable (the proxy was enabled, changed, deleted or reset)."""
        if self._enable_timer is not None:
            self._enable_timer.cancel()
        self._enable_timer = None
        task, self._enable_task = self._enable_task, None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()  # due, but not run yet: the newer change wins
        self.time_limit_ms = self.expires_at = None

    def _expire_disabled(self) -> None:
        self._enable_timer = None
        if self.enabled:
            self.disarm_enable()
            return
        log.warning("proxy %s: disabled past its time limit; enabling it again", shown(self.name))
        self._enable_task = asyncio.get_running_loop().create_task(self._enable_again())

    async def _enable_again(self) -> None:
        try:
            await self.start()  # clears time_limit_ms and expires_at
        except ApiError as exc:
            self.disarm_enable()
            log.error(
                "proxy %s: could not enable it again after its time limit: %s", shown(self.name), shown(exc.message)
            )

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        guard = self.collection.guard
        if len(self.links) + self.connecting >= guard.max_connections:
            writer.transport.abort()  # over the cap: closed at once, its descriptor freed
            guard.refuse_connection(self.name)
            return
        task = asyncio.current_task()
        assert task is not None  # a connection callback runs in its own task
        self._tasks.add(task)
        self.connecting += 1
        try:
            host, port = split_address(self.upstream)
            up = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
        except (TimeoutError, OSError, ValueError, ApiError) as exc:
            # as in Toxiproxy: an unreachable upstream closes the client connection
            log.warning("proxy %s: upstream %s unreachable: %s", shown(self.name), shown(self.upstream), shown(exc))
            writer.close()
            return
        finally:
            self.connecting -= 1
            self._tasks.discard(task)
        if not self.enabled:
            up[1].close()
            writer.close()
            return
        link = Link(self, (reader, writer), up)
        self.links.add(link)
        link.start(self.ordered_toxics())

    # -- toxics -----------------------------------------------------------------
    def get_toxic(self, name: str) -> ToxicEntry:
        for entry in self.toxics:
            if entry.name == name:
                return entry
        raise ApiError(*TOXIC_NOT_FOUND)

    def add_toxic(self, body: Any) -> ToxicEntry:
        """Validate the whole request, then make the toxic live: an error leaves nothing behind."""
        if not isinstance(body, dict):
            raise bad_request("expected a JSON object")
        stream = body.get("stream", "downstream")
        if stream not in (UPSTREAM, DOWNSTREAM):
            raise ApiError(*INVALID_STREAM)
        type_ = body.get("type")
        name = body.get("name") or f"{type_}_{stream}"
        if not isinstance(type_, str) or type_ not in REGISTRY or type_ == "noop":
            raise ApiError(*INVALID_TOXIC_TYPE)
        if not isinstance(name, str):
            raise bad_request("name must be a string")
        check_name(name, "name")
        if any(t.name == name for t in self.toxics):
            raise ApiError(*TOXIC_EXISTS)
        toxicity = parse_toxicity(body.get("toxicity", 1.0))
        time_limit = parse_time_limit(body.get("time_limit_ms"))
        try:
            toxic = REGISTRY[type_](body.get("attributes") or {})
        except AttributeError400 as exc:
            raise bad_request(str(exc)) from None
        entry = ToxicEntry(name, type_, stream, toxicity, toxic)
        deadline = _deadline(time_limit) if time_limit is not None else None
        # valid: from here on nothing can fail, so the toxic never lives without its timer
        self.toxics.append(entry)
        self._arm(entry, time_limit, deadline)
        for link in list(self.links):
            link.add_stage(entry)
        log.info("proxy %s: toxic %s added (%s %s %s)", shown(self.name), shown(name), type_, stream, toxic.values)
        return entry

    async def update_toxic(self, name: str, body: Any) -> ToxicEntry:
        entry = self.get_toxic(name)
        if not isinstance(body, dict):
            raise bad_request("expected a JSON object")
        toxicity = parse_toxicity(body.get("toxicity", entry.toxicity))
        time_limit = parse_time_limit(body.get("time_limit_ms"))
        toxic = REGISTRY[entry.type](dict(entry.toxic.values))
        try:
            toxic.update(body.get("attributes") or {})
        except AttributeError400 as exc:
            raise bad_request(str(exc)) from None
        deadline = _deadline(time_limit) if time_limit is not None else None
        entry.toxic, entry.toxicity = toxic, toxicity
        if time_limit is not None:
            self._arm(entry, time_limit, deadline)
        old = [s for s in (link.replace_stage(entry) for link in list(self.links)) if s]
        await _settle(old)
        log.info("proxy %s: toxic %s updated (%s)", shown(self.name), shown(name), toxic.values)
        return entry

    async def remove_toxic(self, name: str) -> None:
        await self._remove_entry(self.get_toxic(name))

    async def _remove_entry(self, entry: ToxicEntry, close_gapped: bool = False) -> None:
        """Remove this toxic (not whichever has its name now); gone already is fine. With
        close_gapped, a connection on which the toxic dropped bytes is closed, not resumed."""
        if entry not in self.toxics:
            return
        self.toxics.remove(entry)
        if entry.timer is not None:
            entry.timer.cancel()
        stages = [s for s in (link.find_stage(entry) for link in list(self.links)) if s]
        if close_gapped:
            for stage in [s for s in stages if s.dropped]:
                stage.link.close()
            stages = [s for s in stages if not s.dropped]
        for stage in stages:
            stage.interrupt()
        await _settle(stages)
        log.info("proxy %s: toxic %s removed", shown(self.name), shown(entry.name))

    async def remove_all_toxics(self) -> None:
        for entry in list(self.toxics):
            await self._remove_entry(entry)

    def _arm(self, entry: ToxicEntry, time_limit_ms: int | None, deadline: tuple[float, float] | None) -> None:
        """The dead-man switch: remove the toxic by itself once its time limit passes."""
        if time_limit_ms is None or deadline is None:
            return
        if entry.timer is not None:
            entry.timer.cancel()
        delay, entry.expires_at = deadline
        entry.time_limit_ms = time_limit_ms
        entry.timer = asyncio.get_running_loop().call_later(delay, self._expire, entry)

    def _expire(self, entry: ToxicEntry) -> None:
        """The dead-man switch leaves what a harness's heal would: a connection that lost bytes to
        the toxic is closed (later bytes must never follow a gap: TCP never delivers one)."""
        if entry in self.toxics:
            log.warning("proxy %s: toxic %s reached its time limit; removed", shown(self.name), shown(entry.name))
            task = asyncio.get_running_loop().create_task(self._remove_entry(entry, close_gapped=True))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


async def _settle(stages: list[Stage]) -> None:
    """Wait (briefly) for interrupted stages to hand over their data and leave the chain."""
    tasks = [s.task for s in stages if s.task is not None and not s.task.done()]
    if tasks:
        await asyncio.wait(tasks, timeout=1.0)


class ProxyCollection:
    """All proxies of one server, by name, and the server's rules for them (guard.Guard)."""

    def __init__(self, guard: Guard | None = None) -> None:
        self.guard = guard if guard is not None else Guard()
        self.proxies: dict[str, Proxy] = {}
        # names whose create (or populate) is under way: taken before the first await, so a
        # concurrent create of the same name is a 409, not a second listener no one can remove
        self.pending: set[str] = set()
        self.starting: dict[str, Proxy] = {}  # created, not listed yet: their addresses count

    def get(self, name: str) -> Proxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise ApiError(*PROXY_NOT_FOUND) from None

    @staticmethod
    def parse(body: Any, where: str = "") -> tuple[str, str, str, bool]:
        if not isinstance(body, dict):
            raise bad_request(f"expected a JSON object{where}")
        name, upstream = body.get("name"), body.get("upstream")
        listen = body.get("listen") or f"{DEFAULT_HOST}:0"
        enabled = body.get("enabled", True)
        if not name or not isinstance(name, str):
            raise missing_field(f"name{where}")
        check_name(name, f"name{where}")
        if not upstream or not isinstance(upstream, str):
            raise missing_field(f"upstream{where}")
        if not isinstance(listen, str):
            raise bad_request(f"listen must be a string{where}")
        if not isinstance(enabled, bool):
            raise bad_request(f"enabled must be true or false{where}")
        split_address(listen)
        split_address(upstream)
        return name, listen, upstream, enabled

    def listeners(self, exclude: str | None = None) -> list[Listener]:
        """Every address this server listens on, or will once its disabled proxies are enabled
        again: the API's, and each proxy's but `exclude`'s."""
        found = self.guard.api_listeners()
        for name, proxy in {**self.starting, **self.proxies}.items():
            if name == exclude:
                continue
            what = f"the listen address of proxy {show(name)}"
            if proxy.bound:
                found += [(ip, int(s[1]), what) for s in proxy.bound if (ip := sockname_ip(s)) is not None]
                continue
            try:
                host, port = split_address(proxy.listen)
            except ApiError:
                continue
            ip = ip_of(host)
            if port and ip is not None:  # a disabled proxy that never listened yet
                found.append((ip, port, what))
        return found

    async def vet(
        self,
        proxy: Proxy | str,
        listen: str,
        upstream: str,
        bound: list[tuple[Any, ...]] | None = None,
        also: Sequence[Listener] = (),
    ) -> None:
        """A 400 unless the proxy may listen on `listen` (bound: the sockets it did bind) and its
        upstream is none of this server's listeners (its own included; `also`: more of them)."""
        name = proxy if isinstance(proxy, str) else proxy.name
        host, port = split_address(listen)
        if bound:
            ips = [ip for s in bound if (ip := sockname_ip(s)) is not None]
            own = [(ip, int(s[1])) for s in bound if (ip := sockname_ip(s)) is not None]
        else:
            ips = await resolve(host, port)
            own = [(ip, port) for ip in ips] if port else []
        refusal = self.guard.listen_refusal(listen, ips)
        if refusal:
            raise ApiError(refusal, 400)
        up_host, up_port = split_address(upstream)
        targets = await resolve(up_host, up_port)
        listeners = [(ip, p, "this proxy's own listen address") for ip, p in own]
        refusal = self.guard.loop_refusal(
            upstream, targets, up_port, listeners + self.listeners(exclude=name) + list(also)
        )
        if refusal:
            raise ApiError(refusal, 400)

    async def create(self, body: Any) -> Proxy:
        name, listen, upstream, enabled = self.parse(body)
        if name in self.proxies or name in self.pending:
            raise ApiError(*PROXY_EXISTS)
        self.pending.add(name)
        try:
            proxy = Proxy(name, listen, upstream, self)
            self.starting[name] = proxy
            if enabled:
                await proxy.start()  # checked once bound, before it serves
            else:
                await self.vet(proxy, listen, upstream)
            self.proxies[name] = proxy
        finally:
            self.starting.pop(name, None)
            self.pending.discard(name)
        return proxy

    async def populate(self, body: Any) -> list[Proxy]:
        """Create or replace many proxies; validated whole before anything changes."""
        if not isinstance(body, list):
            raise bad_request("expected a JSON array of proxies")
        parsed = [self.parse(item, f" at proxy {i + 1}") for i, item in enumerate(body)]
        names = [p[0] for p in parsed]
        if len(set(names)) != len(names):
            raise bad_request("duplicate proxy name in populate request")
        if any(name in self.pending for name in names):
            raise ApiError(*PROXY_EXISTS)  # being created by a request under way
        self.pending.update(names)
        try:
            for i, (name, listen, upstream, _) in enumerate(parsed):
                # each against the server's listeners and the other entries' listen addresses
                others = [
                    (ip, port, f"the listen address of proxy {show(other)} (in this request)")
                    for j, (other, other_listen, _, _) in enumerate(parsed)
                    if j != i
                    for ip, port in [_literal(other_listen)]
                    if ip is not None and port
                ]
                try:
                    await self.vet(name, listen, upstream, also=others)
                except ApiError as exc:
                    raise ApiError(f"{exc.message} (at proxy {i + 1})", exc.status) from None
            result = []
            for name, listen, upstream, enabled in parsed:
                existing = self.proxies.get(name)
                if existing and existing.listen == listen and existing.upstream == upstream:
                    result.append(existing)
                    continue
                if existing:
                    self.proxies.pop(name, None)
                    await existing.close()
                proxy = Proxy(name, listen, upstream, self)
                if enabled:
                    await proxy.start()
                self.proxies[name] = proxy
                result.append(proxy)
            return result
        finally:
            self.pending.difference_update(names)

    async def delete(self, name: str) -> None:
        proxy = self.get(name)
        del self.proxies[name]  # gone from the API at once; then it stops for good
        await proxy.close()

    async def reset(self) -> list[tuple[str, str]]:
        """POST /reset: remove every toxic and enable every proxy (cancelling pending re-enables).
        A proxy that cannot listen again does not stop the others: every proxy is reset, and the
        (name, reason) of each that stayed disabled is returned."""
        failed = []
        for proxy in list(self.proxies.values()):
            proxy.disarm_enable()
            await proxy.remove_all_toxics()
            try:
                await proxy.start()
            except ApiError as exc:
                if not proxy.closed:  # deleted meanwhile: nothing to report
                    failed.append((proxy.name, exc.message))
        return failed

    async def close(self) -> None:
        for name in list(self.proxies):
            await self.delete(name)
