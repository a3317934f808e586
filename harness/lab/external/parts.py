"""What the external lab acts through: staging's Toxiproxy under the scenarios' names, the runbook's write block."""

from __future__ import annotations

from typing import Any

from ...errors import FaultError
from ...toxiproxy.client import ToxiproxyControl
from .config import PLATFORM_NAMES, Staging


class ProxyNames:
    """Staging's Toxiproxy under the names the scenarios use: s3 (the evidence store's link),
    s3-replica (the alternate region's), platform-<platform>, each mapped to the proxy the plan
    names (lab.proxies). A scenario name the plan maps to nothing is refused, never passed on: a
    shared server may well hold a proxy of that name that is not the drill's to touch."""

    NAMED = ("proxy", "add_toxic", "remove_toxic", "toxics", "set_enabled", "set_upstream")

    def __init__(self, control: ToxiproxyControl, names: dict[str, str | None]):
        self.control, self.names = control, names

    def real(self, name: str) -> str:
        if name in self.names:
            real = self.names[name]
            if real is None:
                raise FaultError(
                    f"the plan names no Toxiproxy proxy for {name!r}: set {_PROXY_KEYS.get(name, 'lab.proxies')}"
                )
            return real
        return name

    def __getattr__(self, attr: str) -> Any:
        method = getattr(self.control, attr)
        if attr not in self.NAMED:
            return method
        return lambda name, *args, **kwargs: method(self.real(name), *args, **kwargs)


_PROXY_KEYS = {
    "s3": "lab.proxies.evidence_store",
    "s3-replica": "lab.proxies.evidence_replica",
    **{f"platform-{p}": f"lab.proxies.platforms.{p}" for p in PLATFORM_NAMES},
}


class ExternalEventStoreBlock:
    """The event store write block the runbook holds on a node; release() lifts it (idempotent; a
    no-op on the runbook's side once the platform fenced the node)."""

    def __init__(self, lab: Staging, node: str):
        self.lab, self.node, self.held = lab, node, True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.lab.action("release_event_store_writes", node=self.node)

    def describe(self) -> str:
        return f"event store writes blocked on {self.node} (runbook hook block_event_store_writes)"
