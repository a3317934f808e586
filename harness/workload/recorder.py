"""A thread-safe history on one monotonic clock: operations and events, never a judgement."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Unpack, cast

from ..model import HARNESS, Event, EventDetail, EventKind, History, Op, OpDetail, OpKind, Outcome


class Recorder:
    """Records what the harness's clients saw, what the lab emitted and what lab parts logged,
    all on one clock. Lab parts log wall-clock times; `mono()` maps them onto this clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._anchor = (time.time(), clock())
        self._lock = threading.Lock()
        self._ops: list[Op] = []
        self._events: list[Event] = []
        self._imported: set[tuple[str, Any]] = set()
        self._next_id = 0

    def mono(self, wall: float) -> float:
        """The time on this recorder's clock of an epoch time (a lab part's log line)."""
        return self._anchor[1] + (wall - self._anchor[0])

    def invoke(
        self,
        kind: OpKind,
        call: Callable[[], Any],
        value: Any = None,
        correlation_id: str = "",
        detail: OpDetail | None = None,
        read: Callable[[Any], Any] | None = None,
    ) -> Op:
        """Run call() and record it as one operation of `kind` (an OpKind: a kind that is not one is
        refused with ValueError before anything is called; the op keeps its plain string). call()
        answers a Reply (its outcome, status, error and the answer's fields are kept; `read(body)` of
        an ok answer becomes the op's value) or (outcome, value, error). `detail` adds what the
        caller knows (platform, ...)."""
        kind_name = OpKind(kind).value
        with self._lock:
            op_id = self._next_id
            self._next_id += 1
        wall, start = time.time(), self.clock()
        status, given = None, {}
        try:
            answer = call()
            if isinstance(answer, tuple):
                outcome, result, error = answer
            else:
                outcome, result, error = answer.outcome, None, answer.error
                status, given = answer.status, answer.detail
                if read is not None and outcome is Outcome.OK:
                    result = read(answer.body)
        except Exception as exc:  # a client bug must not stop the history: record it as info
            outcome, result, error = Outcome.INFO, None, f"{type(exc).__name__}: {exc}"
        op = Op(
            id=op_id,
            kind=kind_name,
            t_invoke=start,
            t_complete=self.clock(),
            outcome=outcome,
            value=value if result is None else result,
            correlation_id=correlation_id,
            wall_invoke=wall,
            error=error,
            status=status,
            detail={**given, **(detail or {})},
        )
        with self._lock:
            self._ops.append(op)
        return op

    def event(
        self,
        kind: EventKind,
        name: str,
        correlation_id: str = "",
        source: str = HARNESS,
        event_id: str | None = None,
        wall: float | None = None,
        **detail: Unpack[EventDetail],
    ) -> Event:
        """Record an event of `kind` now (or at `wall`, an epoch time a lab part gave): an EventKind (a
        kind that is not one is refused with ValueError; the event keeps its plain string). Events
        emitted for the event store get a fresh event_id unless one is given (pass "" for none)."""
        kind_name = EventKind(kind).value
        now_wall = time.time()
        t = self.clock() if wall is None else self.mono(wall)
        event = Event(
            kind=kind_name,
            name=name,
            t=t,
            wall=now_wall if wall is None else wall,
            correlation_id=correlation_id,
            detail=detail,
            source=source,
            event_id=str(uuid.uuid4()) if event_id is None else event_id,
        )
        with self._lock:
            self._events.append(event)
        return event

    def import_records(
        self,
        kind: EventKind,
        source: str,
        records: Iterable[Mapping[str, Any]],
        key: str = "n",
        since_wall: float | None = None,
    ) -> int:
        """Add a lab part's log lines as events (name = source), each once (by `key`), timed by
        its own "at" (epoch). Lines before `since_wall` are skipped. Returns how many were new."""
        added = 0
        for record in records:
            ident = (source, record.get(key))
            at = record.get("at")
            if ident in self._imported or not isinstance(at, (int, float)):
                continue
            if since_wall is not None and at < since_wall:
                continue
            self._imported.add(ident)
            # the part's own fields, as it logged them (EventDetail names those the gates read)
            detail = cast(EventDetail, {k: v for k, v in record.items() if k != "at"})
            self.event(kind, source, source=source, event_id="", wall=float(at), **detail)
            added += 1
        return added

    def history(self) -> History:
        with self._lock:
            return History(
                ops=tuple(sorted(self._ops, key=lambda o: o.id)), events=tuple(sorted(self._events, key=lambda e: e.t))
            )

    def ops(self, kind: str | None = None) -> list[Op]:
        with self._lock:
            return [o for o in self._ops if kind is None or o.kind == kind]
