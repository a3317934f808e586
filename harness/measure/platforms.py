"""What the platform stand-ins saw (their own request logs, as "platform_request" events): arrivals
per idempotency key, the connector's backoff as the platform saw it, and the throttle count on the
Control Plane's clock (the lab's clock moves are "clock" events in the history)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.model import Event, History

APPLIED = 200          # the platform answered 200: the intent was applied (or was a replay of it)
THROTTLED = 429


def requests_at(history: History, platform: str) -> list[Event]:
    """Every request the platform's stand-in logged, in arrival order."""
    return sorted(history.events_of("platform_request", source=f"platform:{platform}"), key=lambda e: e.t)


def arrivals(history: History, platform: str) -> dict[str, list[Event]]:
    """{idempotency key: the applies carrying it (POST /apply), in arrival order}; a connector's
    Test-IdempotencyKey lookups (GET /applied/<key>) are not applies."""
    out: dict[str, list[Event]] = {}
    for event in requests_at(history, platform):
        key = event.detail.get("idempotency_key")
        if key and event.detail.get("path", "/apply") == "/apply":
            out.setdefault(key, []).append(event)
    return out


def applied(events: list[Event]) -> list[Event]:
    """The arrivals the platform answered 200 (applied, or a replay of an applied key)."""
    return [e for e in events if e.detail.get("status") == APPLIED]


def cp_time(history: History, t: float) -> float:
    """Time t on the Control Plane's clock (the history clock plus the harness's clock moves)."""
    return t + history.clock_offset(t)


def throttle_count(history: History, platform: str, t: float, window_s: float = 300.0) -> int:
    """429 answers the platform sent in the `window_s` before time t, on the Control Plane's clock:
    the true value of ThrottleCount (GraphThrottleCount for Intune) at t."""
    now = cp_time(history, t)
    return sum(1 for e in requests_at(history, platform)
               if e.detail.get("status") == THROTTLED and e.t <= t and cp_time(history, e.t) > now - window_s)


@dataclass(frozen=True)
class Backoff:
    key: str | None               # the intent whose attempts are measured (the one retried most)
    gaps_s: tuple[float, ...]     # seconds between its successive arrivals while it failed

    @property
    def ratios(self) -> tuple[float, ...]:
        return tuple(b / a for a, b in zip(self.gaps_s, self.gaps_s[1:]) if a > 0)


def backoff(history: History, platform: str, keys: set[str] | None = None, until: float | None = None) -> Backoff:
    """The gaps between successive attempts of one intent as the platform received them, up to
    and including its first applied arrival, before `until` (e.g. a runbook's requeue, which
    starts a new delivery); the intent retried most among `keys`."""
    best: tuple[str | None, list[float]] = (None, [])
    for key, events in arrivals(history, platform).items():
        if keys is not None and key not in keys:
            continue
        times = []
        for event in (e for e in events if until is None or e.t < until):
            times.append(event.t)
            if event.detail.get("status") == APPLIED:
                break
        if len(times) > len(best[1]):
            best = (key, times)
    key, times = best
    return Backoff(key, tuple(b - a for a, b in zip(times, times[1:])))
