"""What the platform stand-ins saw (their own request logs, as "platform_request" events): arrivals
per idempotency key, the connector's backoff as the platform saw it, and the throttle count on the
Control Plane's clock (the lab's clock moves are "clock" events in the history)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from harness.model import Event, EventKind, History, event_detail_of

APPLIED = 200  # the platform answered 200: the intent was applied (or was a replay of it)
THROTTLED = 429


def requests_at(history: History, platform: str) -> list[Event]:
    """Every request the platform's stand-in logged, in arrival order."""
    return sorted(history.events_of(EventKind.PLATFORM_REQUEST, source=f"platform:{platform}"), key=lambda e: e.t)


def arrivals(history: History, platform: str) -> dict[str, list[Event]]:
    """{idempotency key: the applies carrying it (POST /apply), in arrival order}; a connector's
    Test-IdempotencyKey lookups (GET /applied/<key>) are not applies."""
    out: dict[str, list[Event]] = {}
    for event in requests_at(history, platform):
        key = event_detail_of(event).get("idempotency_key")
        if key and event_detail_of(event).get("path", "/apply") == "/apply":
            out.setdefault(key, []).append(event)
    return out


def applied(events: list[Event]) -> list[Event]:
    """The arrivals the platform answered 200 (applied, or a replay of an applied key)."""
    return [e for e in events if event_detail_of(e).get("status") == APPLIED]


def cp_time(history: History, t: float) -> float:
    """Time t on the Control Plane's clock (the history clock plus the harness's clock moves)."""
    return t + history.clock_offset(t)


def throttle_count(history: History, platform: str, t: float, window_s: float = 300.0) -> int:
    """429 answers the platform sent in the `window_s` before time t, on the Control Plane's clock:
    the true value of ThrottleCount (GraphThrottleCount for Intune) at t."""
    now = cp_time(history, t)
    return sum(
        1
        for e in requests_at(history, platform)
        if e.detail.get("status") == THROTTLED and e.t <= t and cp_time(history, e.t) > now - window_s
    )


@dataclass(frozen=True)
class Backoff:
    key: str | None  # the intent whose attempts are measured (the one retried most)
    gaps_s: tuple[float, ...]  # seconds between its successive arrivals while it failed
    round_trip_s: float = 0.0  # one request's round trip on the platform's link (0: not seen)
    waits_s: tuple[float, ...] = ()  # after each failed attempt: the silence to the next call, less a round trip

    @property
    def ratios(self) -> tuple[float, ...]:
        return tuple(b / a for a, b in pairwise(self.waits_s) if a > 0)


def connector_calls(history: History, platform: str) -> list[Event]:
    """The connector's calls the platform logged, in arrival order: applies (POST /apply) and
    Test-IdempotencyKey lookups (GET /applied/<key>), not health probes."""
    return [
        e
        for e in requests_at(history, platform)
        if e.detail.get("idempotency_key") and e.detail.get("path", "/apply") in ("/apply", "/applied")
    ]


def round_trip(calls: list[Event]) -> float:
    """The median time from a Test-IdempotencyKey lookup to the apply of the same key that came
    next: one answer back to the connector and one request out, as the platform's link carries
    them (a latency toxic on it is in there); 0 when no such pair was logged."""
    trips = sorted(
        b.t - a.t
        for a, b in pairwise(calls)
        if a.detail.get("path") == "/applied"
        and b.detail.get("path", "/apply") == "/apply"
        and a.detail.get("idempotency_key") == b.detail.get("idempotency_key")
    )
    return trips[len(trips) // 2] if trips else 0.0


def backoff(history: History, platform: str, keys: set[str] | None = None, until: float | None = None) -> Backoff:
    """The intent retried most among `keys`: the gaps between its successive attempts as the
    platform received them, up to and including its first applied arrival, before `until` (e.g. a
    runbook's requeue, which starts a new delivery); and the wait after each failed attempt: the
    silence toward the platform from that attempt to the connector's next call (of any intent)
    less one round trip of the link. The connector's wait is platform-wide, so another intent's
    attempt within the gap ends that wait and adds its own; the gap itself is not the wait when
    the intents do not fail in step (one arriving late put 0.5 s more in one gap only)."""
    best: tuple[str | None, list[Event]] = (None, [])
    for key, events in arrivals(history, platform).items():
        if keys is not None and key not in keys:
            continue
        tried: list[Event] = []
        for event in (e for e in events if until is None or e.t < until):
            tried.append(event)
            if event.detail.get("status") == APPLIED:
                break
        if len(tried) > len(best[1]):
            best = (key, tried)
    best_key, tried = best
    calls = [e for e in connector_calls(history, platform) if until is None or e.t < until]
    trip = round_trip(calls)
    position = {id(e): i for i, e in enumerate(calls)}
    waits = tuple(calls[position[id(e)] + 1].t - e.t - trip for e in tried[:-1])
    return Backoff(best_key, tuple(b.t - a.t for a, b in pairwise(tried)), trip, waits)
