"""Drives a Toxiproxy server (real or embedded) through the toxiproxy-python client."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlparse

from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import NotFound

from ..errors import FaultError

P = ParamSpec("P")
R = TypeVar("R")
# toxics that drop bytes inside live connections: their heal and the resets close the proxy's
# connections before removing them (network.ToxicFault.drops_bytes)
BYTE_DROPPING_TOXICS = frozenset({"timeout"})
# toxiproxy-python keeps the server's address in class attributes: one call at a time per process,
# so that two labs' threads never send one lab's request to the other's server.
_ONE_AT_A_TIME = threading.RLock()


def _serialised(method: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        with _ONE_AT_A_TIME:
            return method(*args, **kwargs)

    return call


class ToxiproxyControl:
    """One Toxiproxy server. toxiproxy-python keeps its address in class attributes, so each
    call points them at this server first, under a process-wide lock (a proxy object returned is
    best used at once: its own methods go to whichever server was pointed at last)."""

    def __init__(self, url: str):
        parsed = urlparse(url)
        if not parsed.hostname or not parsed.port:
            raise FaultError(f"Toxiproxy URL {url!r} must look like http://127.0.0.1:8474")
        self.url = url
        self.host, self.port = parsed.hostname, parsed.port
        self.client = Toxiproxy()

    def _use(self) -> Toxiproxy:
        APIConsumer.host, APIConsumer.port = self.host, self.port
        return self.client

    @_serialised
    def version(self) -> str:
        version: bytes = self._use().version()  # toxiproxy-python is untyped
        return version.decode()

    @_serialised
    def ensure_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0") -> Any:
        """The proxy by name, created (or replaced when its upstream changed) as needed."""
        client = self._use()
        existing = client.get_proxy(name)
        if existing is not None and existing.upstream == upstream:
            if not existing.enabled:
                existing.enable()
            return existing
        if existing is not None:
            existing.destroy()
        return client.create(upstream=upstream, name=name, listen=listen)

    @_serialised
    def proxy(self, name: str) -> Any:
        proxies = self._use().proxies()
        if name not in proxies:
            raise FaultError(
                f"no Toxiproxy proxy named {name!r} at {self.url}; known: {', '.join(sorted(proxies)) or 'none'}"
            )
        return proxies[name]

    @_serialised
    def add_toxic(
        self,
        proxy: str,
        name: str,
        type_: str,
        stream: str,
        attributes: dict[str, int],
        toxicity: float = 1.0,
        time_limit_s: float | None = None,
    ) -> dict[str, Any]:
        """Add a toxic. time_limit_s asks the server to remove it by itself (embedded server only;
        real Toxiproxy ignores the field, so the harness's own heal is what removes it there)."""
        self.proxy(proxy)
        body: dict[str, Any] = {
            "name": name,
            "type": type_,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes,
        }
        if time_limit_s is not None:
            body["time_limit_ms"] = int(time_limit_s * 1000)
        self._use()
        toxic: dict[str, Any] = APIConsumer.post(f"/proxies/{proxy}/toxics", json=body).json()
        return toxic

    @_serialised
    def remove_toxic(self, proxy: str, name: str) -> bool:
        """Remove a toxic; False when it was already gone (healed, expired or reset)."""
        self._use()
        try:
            APIConsumer.delete(f"/proxies/{proxy}/toxics/{name}")
            return True
        except NotFound:
            return False

    @_serialised
    def toxics(self, proxy: str) -> dict[str, Any]:
        toxics: dict[str, Any] = self.proxy(proxy).toxics()
        return toxics

    @_serialised
    def set_enabled(self, proxy: str, enabled: bool, time_limit_s: float | None = None) -> None:
        """Enable or disable a proxy. Disabling with time_limit_s asks the server to enable it again
        by itself after that time (embedded server only; real Toxiproxy ignores the field, so the
        harness's own heal is what enables it there)."""
        p = self.proxy(proxy)
        if time_limit_s is None:
            p.enable() if enabled else p.disable()
            return
        if enabled:
            raise ValueError("a time limit applies to disabling a proxy, not to enabling it")
        self._use()
        APIConsumer.post(
            f"/proxies/{proxy}", json={"enabled": False, "time_limit_ms": max(1, round(time_limit_s * 1000))}
        )

    @_serialised
    def set_upstream(self, proxy: str, upstream: str) -> None:
        """Point a proxy at another upstream (open connections are dropped, as in Toxiproxy)."""
        self.proxy(proxy)
        self._use()
        APIConsumer.post(f"/proxies/{proxy}", json={"upstream": upstream})

    @_serialised
    def reset_proxies(self, names: Iterable[str]) -> None:
        """Every toxic of these proxies removed and each enabled: the reset of a drill that shares
        the server with others (their proxies are not touched). A proxy already gone is skipped."""
        names = set(names)
        self._close_gapped(names)
        client = self._use()
        proxies = client.proxies()
        for name in names:
            proxy = proxies.get(name)
            if proxy is None:
                continue
            for toxic in list(proxy.toxics()):
                self._use()
                try:
                    APIConsumer.delete(f"/proxies/{name}/toxics/{toxic}")
                except NotFound:
                    pass
            self._use()
            APIConsumer.post(f"/proxies/{name}", json={"enabled": True})

    @_serialised
    def reset_all(self) -> None:
        """POST /reset: every proxy enabled, every toxic removed. Run at the start of every drill
        so that nothing a killed run left behind survives."""
        self._close_gapped()
        self._use().reset()

    def _close_gapped(self, names: set[str] | None = None) -> None:
        """Before a reset removes the toxics: disable each proxy (of `names`, or every one) that
        carries a byte-dropping toxic, closing its open connections, so that no byte ever follows
        dropped ones on a connection. The reset enables it again."""
        self._use()
        for name, body in APIConsumer.get("/proxies").json().items():
            if (
                (names is None or name in names)
                and body.get("enabled")
                and any(toxic.get("type") in BYTE_DROPPING_TOXICS for toxic in body.get("toxics") or ())
            ):
                APIConsumer.post(f"/proxies/{name}", json={"enabled": False})
