"""The one wait of the harness: poll a real condition until it holds or a deadline passes.

Never a bare sleep for readiness: every wait names what it waits for and gives up at its
deadline, answering the last value seen so the caller can say what it saw instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """The condition did not hold before the deadline; `last` is the last value fetched."""

    def __init__(self, what: str, timeout: float, last: Any):
        super().__init__(f"{what}: not within {timeout:g} s (last seen: {str(last)[:200]})")
        self.last = last


@dataclass(frozen=True)
class Polled(Generic[T]):
    ok: bool  # until(value) held before the deadline
    value: T  # the last value fetched
    waited: float  # seconds spent


def poll(
    fetch: Callable[[], T], until: Callable[[T], Any] = bool, timeout: float = 30.0, interval: float = 0.05
) -> Polled[T]:
    """fetch() every `interval` seconds until until(value) is truthy or `timeout` passes.

    fetch() runs at least once, and once more at the deadline, so a slow fetch never loses
    its last chance."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        value = fetch()
        if until(value):
            return Polled(True, value, time.monotonic() - started)
        now = time.monotonic()
        if now >= deadline:
            return Polled(False, value, now - started)
        time.sleep(min(interval, max(0.0, deadline - now)))


def wait_for(
    fetch: Callable[[], T], what: str, until: Callable[[T], Any] = bool, timeout: float = 30.0, interval: float = 0.05
) -> T:
    """poll(), raising WaitTimeout(what) at the deadline; the value that satisfied `until`."""
    polled = poll(fetch, until, timeout, interval)
    if not polled.ok:
        raise WaitTimeout(what, timeout, polled.value)
    return polled.value


def until_up(answers: Callable[[], Any], exited: Callable[[], Any], timeout: float, interval: float = 0.05) -> str:
    """A starting server: "up" once answers(), "exited" as soon as exited() says it died first,
    "timeout" at the deadline. An exception from answers() means not yet."""

    def state() -> str | None:
        try:
            if answers():
                return "up"
        except Exception:  # noqa: BLE001 - not answering yet
            pass
        return "exited" if exited() else None

    polled = poll(state, until=lambda s: s is not None, timeout=timeout, interval=interval)
    return polled.value or "timeout"
