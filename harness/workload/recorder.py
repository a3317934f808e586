"""A thread-safe history on one monotonic clock: operations and fault/recovery events."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from ..model import Event, History, Op, Outcome


class Recorder:
    """Records what clients saw and when faults happened. Never decides anything."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._ops: list[Op] = []
        self._events: list[Event] = []
        self._next_id = 0
        self.listeners: list[Callable[[Event], None]] = []

    def invoke(self, kind: str, call: Callable[[], tuple[Outcome, Any, str]],
               value: Any = None, correlation_id: str = "") -> Op:
        """Run call() -> (outcome, value, error) and record it as one operation."""
        with self._lock:
            op_id = self._next_id
            self._next_id += 1
        wall, start = time.time(), self.clock()
        try:
            outcome, result, error = call()
        except Exception as exc:  # a client bug must not stop the history: record it as info
            outcome, result, error = Outcome.INFO, None, f"{type(exc).__name__}: {exc}"
        op = Op(id=op_id, kind=kind, t_invoke=start, t_complete=self.clock(), outcome=outcome,
                value=value if result is None else result, correlation_id=correlation_id,
                wall_invoke=wall, error=error)
        with self._lock:
            self._ops.append(op)
        return op

    def event(self, kind: str, name: str, correlation_id: str = "", **detail: Any) -> Event:
        event = Event(kind=kind, name=name, t=self.clock(), wall=time.time(),
                      correlation_id=correlation_id, detail=detail)
        with self._lock:
            self._events.append(event)
        for listener in list(self.listeners):
            listener(event)
        return event

    def history(self) -> History:
        with self._lock:
            return History(ops=tuple(sorted(self._ops, key=lambda o: o.id)),
                           events=tuple(sorted(self._events, key=lambda e: e.t)))

    def ops(self, kind: str | None = None) -> list[Op]:
        with self._lock:
            return [o for o in self._ops if kind is None or o.kind == kind]
