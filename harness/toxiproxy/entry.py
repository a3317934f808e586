"""A toxic as a proxy holds it (Toxiproxy's ToxicWrapper): the proxy adds and removes entries, each link
pipes through them. Below both proxy and link, so the link needs nothing of the proxy for it."""

from __future__ import annotations

import asyncio
from typing import Any

from .toxics import Toxic


class ToxicEntry:
    """A toxic as the API shows it (Toxiproxy's ToxicWrapper), plus our optional time limit."""

    def __init__(self, name: str, type_: str, stream: str, toxicity: float, toxic: Toxic):
        self.name = name
        self.type = type_
        self.stream = stream
        self.toxicity = toxicity
        self.toxic = toxic
        self.time_limit_ms: int | None = None
        self.expires_at: float | None = None  # epoch seconds, for the API
        self.timer: asyncio.TimerHandle | None = None

    def to_json(self) -> dict[str, Any]:
        body = {
            "attributes": dict(self.toxic.values),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }
        if self.time_limit_ms is not None:  # only when asked for: unchanged shape otherwise
            body["time_limit_ms"] = self.time_limit_ms
            if self.expires_at is not None:
                body["expires_at"] = round(self.expires_at, 3)
        return body
