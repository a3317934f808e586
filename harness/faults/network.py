"""Network faults as Toxiproxy toxics on a named proxy; each heal removes exactly its toxics."""

from __future__ import annotations

from typing import ClassVar

import requests

from ..lab.capabilities import EvidenceStore
from ..toxiproxy.client import BYTE_DROPPING_TOXICS
from .base import Fault, FaultContext, Param, register

STREAMS = ("upstream", "downstream", "both")


class ToxicFault(Fault):
    """A fault made of one toxic per stream. Subclasses map params to Toxiproxy attributes."""

    TIME_LIMITED = True  # the fault server removes the toxic by itself (time_limit_ms)
    NEEDS = frozenset()  # the link's proxy, asked of Toxiproxy
    TOXIC: ClassVar[str] = ""
    DEFAULT_STREAM: ClassVar[str] = "downstream"

    @property
    def drops_bytes(self) -> bool:
        """The toxic drops bytes inside live connections (Toxiproxy's timeout). Removing it alone
        would let later bytes follow the dropped ones on the same connection: a gap no real network
        makes (TCP retransmits, or gives up and the connection dies), which e.g. a PostgreSQL replica
        writes into its WAL as a hole it never streams past. So the heal first disables the proxy,
        closing its connections while the toxic still drops, then removes the toxic and enables the
        proxy: clients reconnect, as after a real partition."""
        return self.TOXIC in BYTE_DROPPING_TOXICS

    def attributes(self) -> dict[str, int]:
        raise NotImplementedError

    def streams(self) -> list[str]:
        stream = self.params.get("stream", self.DEFAULT_STREAM)
        return ["upstream", "downstream"] if stream == "both" else [stream]

    def toxic_name(self, stream: str) -> str:
        return f"drill_{self.TYPE}_{stream}"

    def inject(self, ctx: FaultContext) -> None:
        links = ctx.links(self.TYPE)
        for stream in self.streams():
            links.add_toxic(
                self.spec.target,
                self.toxic_name(stream),
                self.TOXIC,
                stream,
                self.attributes(),
                self.params.get("toxicity", 1.0),
                self.spec.time_limit_s,
            )

    def heal(self, ctx: FaultContext) -> None:
        links = ctx.links(self.TYPE)
        if self.drops_bytes:  # the server enables it again by itself should the harness die here
            links.set_enabled(self.spec.target, False, self.spec.time_limit_s)
        try:
            for stream in self.streams():
                links.remove_toxic(self.spec.target, self.toxic_name(stream))
        finally:
            if self.drops_bytes:
                links.set_enabled(self.spec.target, True)


def _stream(default: str = "downstream") -> Param:
    return Param(str, default, choices=STREAMS, doc="upstream, downstream or both")


TOXICITY = Param((int, float), 1.0, minimum=0, doc="share of connections affected, 0..1")


@register
class Latency(ToxicFault):
    TYPE, TOXIC = "latency", "latency"
    DESCRIPTION = "adds latency_ms (+/- jitter_ms) to every chunk on the link"
    PARAMS = {
        "latency_ms": Param(int, minimum=0, doc="milliseconds"),
        "jitter_ms": Param(int, 0, minimum=0),
        "stream": _stream(),
        "toxicity": TOXICITY,
    }

    def attributes(self) -> dict[str, int]:
        return {"latency": self.params["latency_ms"], "jitter": self.params["jitter_ms"]}


@register
class Partition(ToxicFault):
    """A network partition: no byte passes either way while it lasts. The heal drops the link's
    open connections before the bytes flow again (ToxicFault.drops_bytes)."""

    TYPE, TOXIC = "partition", "timeout"
    DESCRIPTION = "blackholes the link both ways: no byte passes; open connections dropped on heal"
    PARAMS = {"stream": _stream("both")}
    DEFAULT_STREAM = "both"

    def attributes(self) -> dict[str, int]:
        return {"timeout": 0}


@register
class Timeout(ToxicFault):
    TYPE, TOXIC = "timeout", "timeout"
    DESCRIPTION = "stops data and closes connections after timeout_ms; open connections dropped on heal"
    PARAMS = {
        "timeout_ms": Param(int, minimum=0, doc="milliseconds; 0 = never close"),
        "stream": _stream(),
        "toxicity": TOXICITY,
    }

    def attributes(self) -> dict[str, int]:
        return {"timeout": self.params["timeout_ms"]}


@register
class Reset(ToxicFault):
    TYPE, TOXIC = "reset", "reset_peer"
    DESCRIPTION = "resets connections (TCP RST) timeout_ms after their first data"
    PARAMS = {"timeout_ms": Param(int, 0, minimum=0), "stream": _stream(), "toxicity": TOXICITY}

    def attributes(self) -> dict[str, int]:
        return {"timeout": self.params["timeout_ms"]}


@register
class Bandwidth(ToxicFault):
    TYPE, TOXIC = "bandwidth", "bandwidth"
    DESCRIPTION = "limits throughput to rate_kbps kilobytes per second"
    PARAMS = {
        "rate_kbps": Param(int, minimum=0, doc="KB/s (1 KB = 1000 bytes)"),
        "stream": _stream(),
        "toxicity": TOXICITY,
    }

    def attributes(self) -> dict[str, int]:
        return {"rate": self.params["rate_kbps"]}


@register
class SlowClose(ToxicFault):
    TYPE, TOXIC = "slow_close", "slow_close"
    DESCRIPTION = "delays connection close by delay_ms"
    PARAMS = {"delay_ms": Param(int, minimum=0), "stream": _stream(), "toxicity": TOXICITY}

    def attributes(self) -> dict[str, int]:
        return {"delay": self.params["delay_ms"]}


@register
class Slicer(ToxicFault):
    TYPE, TOXIC = "slicer", "slicer"
    DESCRIPTION = "cuts data into small slices sent delay_us apart"
    PARAMS = {
        "average_size": Param(int, minimum=1),
        "size_variation": Param(int, 0, minimum=0),
        "delay_us": Param(int, 0, minimum=0),
        "stream": _stream(),
        "toxicity": TOXICITY,
    }

    def attributes(self) -> dict[str, int]:
        return {
            "average_size": self.params["average_size"],
            "size_variation": self.params["size_variation"],
            "delay": self.params["delay_us"],
        }


@register
class DataLimit(ToxicFault):
    TYPE, TOXIC = "data_limit", "limit_data"
    DESCRIPTION = "closes connections after `bytes` bytes"
    PARAMS = {"bytes": Param(int, minimum=0), "stream": _stream(), "toxicity": TOXICITY}

    def attributes(self) -> dict[str, int]:
        return {"bytes": self.params["bytes"]}


@register
class ProxyDown(Fault):
    TYPE = "proxy_down"
    TIME_LIMITED = True  # the fault server enables the proxy again by itself (time_limit_ms)
    NEEDS = frozenset()  # the link's proxy, asked of Toxiproxy
    DESCRIPTION = "disables the proxy: open connections dropped, new ones refused"
    PARAMS: ClassVar[dict[str, Param]] = {}

    def inject(self, ctx: FaultContext) -> None:
        ctx.links(self.TYPE).set_enabled(self.spec.target, False, self.spec.time_limit_s)

    def heal(self, ctx: FaultContext) -> None:
        ctx.links(self.TYPE).set_enabled(self.spec.target, True)


@register
class HttpError(Fault):
    """The server behind a lab's HTTP fault gateway answers an error status instead of serving."""

    TYPE = "http_error"
    TIME_LIMITED = True  # the gateway forwards again by itself (for_s)
    NEEDS = frozenset({"evidence_http_errors"})
    DESCRIPTION = "the server answers `status` (default 503) to every request (count 0) or the next `count`"
    PARAMS = {"status": Param(int, 503, minimum=400), "count": Param(int, 0, minimum=0)}

    def inject(self, ctx: FaultContext) -> None:
        url = self.uses(ctx, EvidenceStore).http_gateway(self.spec.target)
        body = {"status": self.params["status"], "count": self.params["count"]}
        if self.spec.time_limit_s is not None:  # the gateway forwards again by itself after it
            body["for_s"] = self.spec.time_limit_s
        requests.post(f"{url}/_drill/fault", json=body, headers=self._headers(ctx), timeout=10).raise_for_status()

    def heal(self, ctx: FaultContext) -> None:
        url = self.uses(ctx, EvidenceStore).http_gateway(self.spec.target)
        requests.delete(f"{url}/_drill/fault", headers=self._headers(ctx), timeout=10).raise_for_status()

    def _headers(self, ctx: FaultContext) -> dict[str, str]:
        """The gateway's own token where the lab has one (an external target), else the lab's."""
        return self.uses(ctx, EvidenceStore).gateway_headers(self.spec.target)
