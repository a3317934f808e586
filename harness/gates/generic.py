"""Generic rules on a named measured value: equals, at_most, at_least (e.g. ServiceHealth = Healthy)."""

from __future__ import annotations

from typing import Any

from harness.gates.base import ThresholdGate, register


class _Named(ThresholdGate):
    """A threshold on any measured value named by `key`; the gate id defaults to the key."""

    def __init__(self, key: str, expected: Any, *, id: str | None = None,
                 description: str | None = None) -> None:
        super().__init__(expected, key=key, id=id or key, description=description)


@register
class Equals(_Named):
    """context[key] == expected, e.g. Equals("ServiceHealth", "Healthy")."""

    gate_type = "equals"
    comparator = "=="


@register
class AtMost(_Named):
    """context[key] <= limit, e.g. AtMost("GraphThrottleCount", 5)."""

    gate_type = "at_most"
    comparator = "<="


@register
class AtLeast(_Named):
    """context[key] >= limit, e.g. AtLeast("EventStoreWriteSuccess", 0.999)."""

    gate_type = "at_least"
    comparator = ">="
