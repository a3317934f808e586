"""What a proxy may listen on and forward to, and how many connections it may hold at once.

Three rules keep one API request from turning the fault server against its own machine:
- a proxy listens on loopback, or on the API's own (specific) address, or on an address the
  server was started with (--allow-listen): never on every interface just because a client
  asked, which would expose a loopback-only service to the network;
- a proxy's upstream is never one of the server's own listeners (the API, another proxy, the
  proxy itself): a proxy forwarding to itself opens connections to itself until the process
  runs out of file descriptors;
- a proxy holds at most max_connections connections; more are closed at once (a loop the
  address check cannot see, through another server or a DNS name, stays bounded).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Iterable
from typing import Any

from ..inputs import printable

log = logging.getLogger("toxiproxy")

MAX_CONNECTIONS = 1024  # per proxy, unless the server is started with another cap
RESOLVE_TIMEOUT = 2.0  # seconds to resolve a host name for the checks
REFUSAL_LOG_INTERVAL = 10.0  # at most one "connection refused" line per proxy this often

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Listener = tuple[IP, int, str]  # address, port, what it is (for the error message)


def ip_of(host: str) -> IP | None:
    """The IP address `host` spells ('127.0.0.1', '[::1]', '::ffff:127.0.0.1' -> 127.0.0.1),
    or None for a name."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def parse_allowed(hosts: Iterable[str]) -> set[IP]:
    """--allow-listen's addresses; ValueError naming the first that is not an IP address."""
    allowed = set()
    for host in hosts:
        ip = ip_of(host.strip())
        if ip is None:
            raise ValueError(f"{printable(host, 80)!r} is not an IP address")
        allowed.add(ip)
    return allowed


def _connect_target(ip: IP) -> IP:
    """Where a connection to `ip` really goes: 0.0.0.0 and :: reach the local machine."""
    if ip.is_unspecified:
        return ipaddress.ip_address("127.0.0.1" if ip.version == 4 else "::1")
    return ip


def is_local(ip: IP) -> bool:
    """An address of this machine: loopback, or one it can bind (an interface's address)."""
    if ip.is_loopback or ip.is_unspecified:
        return True
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((str(ip), 0))
        return True
    except OSError:
        return False


def reaches(target: IP, port: int, listener: tuple[IP, int]) -> bool:
    """True when a connection to target:port would arrive at this listening socket."""
    address, listen_port = listener
    target = _connect_target(target)
    if port != listen_port or target.version != address.version:
        return False  # asyncio binds IPv6 listeners IPV6_V6ONLY
    if address.is_unspecified:
        return is_local(target)
    return target == address


async def resolve(host: str, port: int) -> list[IP]:
    """The addresses `host` stands for; [] when it does not resolve (in time)."""
    literal = ip_of(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT)
    except (TimeoutError, OSError, ValueError):  # ValueError: NUL, a label too long
        return []
    found = []
    for info in infos:
        ip = ip_of(str(info[4][0]).split("%", 1)[0])
        if ip is not None and ip not in found:
            found.append(ip)
    return found


def sockname_ip(sockname: tuple[Any, ...]) -> IP | None:
    return ip_of(str(sockname[0]).split("%", 1)[0])


class Guard:
    """The server's rules (see the module's text): which listen addresses, which upstreams, how
    many connections per proxy. `api` is filled in by the server once its API is bound."""

    def __init__(self, allow_listen: Iterable[str] = (), max_connections: int = MAX_CONNECTIONS):
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        self.allowed = parse_allowed(allow_listen)
        self.max_connections = max_connections
        self.api: list[tuple[IP, int]] = []
        self._refused: dict[str, tuple[float, int]] = {}  # proxy -> (last line, refused since)

    def set_api(self, socknames: Iterable[tuple[Any, ...]]) -> None:
        self.api = [(ip, int(s[1])) for s in socknames if (ip := sockname_ip(s)) is not None]

    def api_listeners(self) -> list[Listener]:
        return [(ip, port, "the API's address") for ip, port in self.api]

    def _may_listen(self, ip: IP) -> bool:
        if ip.is_loopback or ip in self.allowed:
            return True
        if any(a.is_unspecified and a.version == ip.version for a in self.allowed):
            return True  # every interface allowed: so is each one of them
        return not ip.is_unspecified and any(ip == api for api, _ in self.api)

    def listen_refusal(self, listen: str, ips: Iterable[IP]) -> str | None:
        """Why a proxy may not listen on these addresses (those of `listen`), or None."""
        for ip in ips:
            if not self._may_listen(ip):
                own = ", ".join(sorted({str(a) for a, _ in self.api if not a.is_unspecified}))
                where = f"a loopback address or the API's ({own})" if own else "a loopback address"
                spelled = f"[{ip}]" if ip.version == 6 else str(ip)
                return (
                    f"listen {printable(listen, 200)}: {ip} is not {where}; this server lets proxies "
                    f"listen only there unless it is started with --allow-listen {spelled}"
                )
        return None

    @staticmethod
    def loop_refusal(upstream: str, targets: Iterable[IP], port: int, listeners: Iterable[Listener]) -> str | None:
        """Why `upstream` (resolved to targets, port) is one of the server's own listeners, or None."""
        listeners = list(listeners)
        for target in targets:
            for address, listen_port, what in listeners:
                if reaches(target, port, (address, listen_port)):
                    return (
                        f"upstream {printable(upstream, 200)} is {what} on this fault server: a proxy "
                        f"cannot forward to the server itself (each connection would open another); "
                        f"give the address of the service to proxy"
                    )
        return None

    def forget(self, proxy: str) -> None:
        self._refused.pop(proxy, None)

    def refuse_connection(self, proxy: str) -> None:
        """A connection over the cap was closed: log it, at most one line per proxy per interval."""
        now = time.monotonic()
        last, count = self._refused.get(proxy, (float("-inf"), 0))
        count += 1
        if now - last < REFUSAL_LOG_INTERVAL:
            self._refused[proxy] = (last, count)
            return
        self._refused[proxy] = (now, 0)
        log.warning(
            "proxy %s: %d connection(s) closed at once since the last such line: it holds %d, "
            "its cap (--max-connections-per-proxy); an upstream that leads back to it fills that",
            printable(proxy, 200),
            count,
            self.max_connections,
        )
