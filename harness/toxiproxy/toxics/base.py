"""Base of every toxic: its attributes, and the per-connection stub it runs on."""

from __future__ import annotations

import asyncio
import reprlib
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


@dataclass(slots=True)
class Chunk:
    """Bytes read from one side of a connection, stamped with the monotonic read time."""

    data: bytes
    t: float


class End:
    """How a stream ends when this marker reaches the writing side."""

    EOF = "eof"  # the source closed its side: half-close the destination
    CLOSE = "close"  # a toxic closed the link: close the whole connection
    RESET = "reset"  # a toxic reset the peer: abortive close (TCP RST)

    __slots__ = ("kind",)

    def __init__(self, kind: str):
        self.kind = kind

    def __repr__(self) -> str:
        return f"End({self.kind})"


class AttributeError400(ValueError):
    """An attribute has the wrong type or range; the API answers 400."""


# Every attribute is an int64 in Toxiproxy (Go's int on 64-bit for the slicer's): its JSON decoder
# refuses a bigger number with a 400, and so do we, rather than overflow float arithmetic later
# (a bandwidth rate of 1e306 KB/s once closed every connection through the proxy).
INT64_MAX = 2**63 - 1

_SHOW = reprlib.Repr()
_SHOW.maxstring = _SHOW.maxother = 60
_SHOW.maxlong = 40


def show(value: Any) -> str:
    """A short repr of a client's value for an error message: bounded in length and depth, so a
    huge or deeply nested value cannot blow up the answer (or the recursion limit)."""
    return _SHOW.repr(value)


class Stub(Protocol):
    """What a toxic sees of one connection in one direction (see link.Stage)."""

    state: Any
    end: str | None

    async def recv(self) -> Chunk | None: ...
    def send(self, chunk: Chunk) -> None: ...
    def drop(self, chunk: Chunk) -> None: ...
    async def sleep(self, seconds: float) -> bool: ...
    def close(self, kind: str = End.CLOSE) -> None: ...
    def close_after(self, seconds: float) -> asyncio.TimerHandle: ...


class Toxic:
    """One toxic type. Subclasses declare ATTRIBUTES (name -> default) and pipe().

    An instance holds the attribute values of one API toxic and is shared by every
    connection of its proxy; per-connection state comes from new_state().
    pipe() loops on stub.recv() until it returns None (end of stream or the toxic
    being removed), and must never drop data it holds when a sleep is interrupted.
    """

    TYPE: ClassVar[str] = ""
    ATTRIBUTES: ClassVar[dict[str, int]] = {}

    def __init__(self, attributes: dict[str, Any] | None = None):
        self.values: dict[str, int] = dict(self.ATTRIBUTES)
        self.update(attributes or {})

    def update(self, attributes: dict[str, Any]) -> None:
        """Validate then apply attribute values. Unknown keys are ignored, as Go's decoder does."""
        if not isinstance(attributes, dict):
            raise AttributeError400("attributes must be a JSON object")
        new = dict(self.values)
        for name, value in attributes.items():
            if name not in self.ATTRIBUTES:
                continue
            # comparisons only (no float() of an int, no int() of a float) until the range is known:
            # 10**400 has no float, and NaN and infinity have no int; NaN fails every comparison
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise AttributeError400(f"attribute {name!r} of {self.TYPE} must be a number, got {show(value)}")
            if not 0 <= value <= INT64_MAX:
                raise AttributeError400(
                    f"attribute {name!r} of {self.TYPE} must be from 0 to {INT64_MAX} (int64), got {show(value)}"
                )
            if value != int(value):
                raise AttributeError400(f"attribute {name!r} of {self.TYPE} must be a whole number, got {show(value)}")
            new[name] = int(value)
        self.validate(new)
        self.values = new

    def validate(self, values: dict[str, int]) -> None:
        """Cross-attribute checks; raise AttributeError400."""

    def __getattr__(self, name: str) -> int:
        try:
            value: int = self.__dict__["values"][name]
            return value
        except KeyError:
            raise AttributeError(name) from None

    def new_state(self) -> Any:
        return None

    async def pipe(self, stub: Stub) -> None:
        while (chunk := await stub.recv()) is not None:
            stub.send(chunk)
