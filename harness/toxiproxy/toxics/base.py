"""Base of every toxic: its attributes, and the per-connection stub it runs on."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


@dataclass(slots=True)
class Chunk:
    """Bytes read from one side of a connection, stamped with the monotonic read time."""

    data: bytes
    t: float


class End:
    """How a stream ends when this marker reaches the writing side."""

    EOF = "eof"        # the source closed its side: half-close the destination
    CLOSE = "close"    # a toxic closed the link: close the whole connection
    RESET = "reset"    # a toxic reset the peer: abortive close (TCP RST)

    __slots__ = ("kind",)

    def __init__(self, kind: str):
        self.kind = kind

    def __repr__(self) -> str:
        return f"End({self.kind})"


class AttributeError400(ValueError):
    """An attribute has the wrong type or range; the API answers 400."""


class Stub(Protocol):
    """What a toxic sees of one connection in one direction (see link.Stage)."""

    state: Any
    end: str | None

    async def recv(self) -> Chunk | None: ...
    def send(self, chunk: Chunk) -> None: ...
    def drop(self, chunk: Chunk) -> None: ...
    async def sleep(self, seconds: float) -> bool: ...
    def close(self, kind: str = End.CLOSE) -> None: ...


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
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise AttributeError400(f"attribute {name!r} of {self.TYPE} must be a number, got {value!r}")
            if value != int(value):
                raise AttributeError400(f"attribute {name!r} of {self.TYPE} must be a whole number, got {value!r}")
            if value < 0:
                raise AttributeError400(f"attribute {name!r} of {self.TYPE} must be >= 0, got {value!r}")
            new[name] = int(value)
        self.validate(new)
        self.values = new

    def validate(self, values: dict[str, int]) -> None:
        """Cross-attribute checks; raise AttributeError400."""

    def __getattr__(self, name: str) -> int:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def new_state(self) -> Any:
        return None

    async def pipe(self, stub: Stub) -> None:
        while (chunk := await stub.recv()) is not None:
            stub.send(chunk)
