"""A small builder of hand-built histories for the gate tests.

    H().op("write", 1.0, value="k1", status=201)            # ok, completed 0.1 s later
       .inject("kill-primary:pg-a", 2.0)                     # the fault journal
       .failover("reconnect", 5.0)                           # the lab's failover controller
       .platform_request("intune", 6.0, key="k1", status=429)
       .build()

Op ids are assigned in the order ops are added; events are kept in time order (as the recorder does).
Every wall time is the history time plus EPOCH (10:00:00 UTC on a Monday, on an hour and a
5-minute boundary), so t=300.0 is a 5-minute boundary and t=3600.0 the next clock hour.
Event-store rows: `row(...)` builds one, `chain(rows)` gives them prev_hash / hash links.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from harness.measure.eventstore import GENESIS, event_hash
from harness.model import FAILOVER, HARNESS, JOURNAL, Event, History, Op, Outcome

EPOCH = dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC).timestamp()
CID = "drill-1/scenario-1"
LATENCY = 0.1  # an op completes this long after its invoke unless told otherwise
_UNSET: Any = object()
_OUTCOME = {True: Outcome.OK, False: Outcome.FAIL, None: Outcome.INFO}
_PLATFORM_OUTCOME = {200: "applied", 429: "throttled", 503: "error"}


def wall(t: float) -> float:
    """The epoch time of history time t."""
    return EPOCH + t


def stamp(t: float) -> str:
    """The ISO timestamp a stored event carries for history time t (the store's `at`)."""
    return dt.datetime.fromtimestamp(wall(t), tz=dt.UTC).isoformat()


class H:
    """History builder. Every method returns the builder; build() returns the History."""

    def __init__(self) -> None:
        self._ops: list[Op] = []
        self._events: list[Event] = []

    # ---- ops ------------------------------------------------------------------------------

    def op(
        self,
        kind: str,
        t: float,
        *,
        ok: bool | None = True,
        value: Any = None,
        status: int | None = None,
        detail: Mapping[str, Any] | None = None,
        done: float | None = _UNSET,
        error: str = "",
        correlation_id: str = CID,
    ) -> H:
        """An op of the harness's clients: ok True (acknowledged), False (refused), None
        (indeterminate: timed out or lost mid-flight). It completes LATENCY after its invoke, as the
        recorder records every op once the client is done with it; done=None: never completed."""
        outcome = _OUTCOME[ok]
        if done is _UNSET:
            done = t + LATENCY
        self._ops.append(
            Op(
                id=len(self._ops) + 1,
                kind=kind,
                t_invoke=t,
                t_complete=done,
                outcome=outcome,
                value=value,
                correlation_id=correlation_id,
                wall_invoke=wall(t),
                error=error,
                status=status,
                detail=dict(detail or {}),
            )
        )
        return self

    def steady_state(self, phase: str, t: float, **checks: bool) -> H:
        """The steady-state hypothesis checked: value {check: [ok, detail]}, ok when all are green."""
        failed = sorted(name for name, green in checks.items() if not green)
        return self.op(
            "steady_state",
            t,
            ok=not failed,
            detail={"phase": phase},
            value={name: [green, "green" if green else "red"] for name, green in checks.items()},
            error=f"not green: {', '.join(failed)}" if failed else "",
        )

    # ---- events ---------------------------------------------------------------------------

    def event(
        self,
        kind: str,
        name: str,
        t: float,
        *,
        source: str = HARNESS,
        event_id: str = "",
        correlation_id: str = CID,
        **detail: Any,
    ) -> H:
        self._events.append(
            Event(
                kind=kind,
                name=name,
                t=t,
                wall=wall(t),
                correlation_id=correlation_id,
                detail=detail,
                source=source,
                event_id=event_id,
            )
        )
        return self

    def inject(self, label: str, t: float, **kw: Any) -> H:
        """The fault journal injected the fault `label`."""
        return self.event("inject", label, t, source=JOURNAL, **kw)

    def heal(self, label: str, t: float, **kw: Any) -> H:
        return self.event("heal", label, t, source=JOURNAL, **kw)

    def failover(self, kind: str, t: float, name: str = "pg-b", **kw: Any) -> H:
        """A recovery phase of the lab's failover controller: detect, fence, promote, reconnect, ..."""
        return self.event(kind, name, t, source=FAILOVER, **kw)

    def checkpoint(self, name: str, t: float) -> H:
        return self.event("checkpoint", name, t)

    def clock(self, t: float, seconds: float) -> H:
        """The harness moved the Control Plane's clock forward by `seconds` at t."""
        return self.event("clock", f"advance:{seconds:g}s", t, seconds=seconds)

    def platform_request(
        self,
        platform: str,
        t: float,
        *,
        key: str | None,
        status: int | None,
        outcome: str | None = None,
        path: str = "/apply",
        **fields: Any,
    ) -> H:
        """A line of a platform stand-in's request log (source platform:<name>); fields: more of
        the line (ring, action)."""
        source = f"platform:{platform}"
        return self.event(
            "platform_request",
            source,
            t,
            source=source,
            idempotency_key=key,
            status=status,
            outcome=outcome or _PLATFORM_OUTCOME.get(status, "hang"),
            platform=platform,
            path=path,
            **fields,
        )

    def gateway_request(self, t: float, path: str, *, method: str = "GET", status: int = 503, gateway: str = "s3") -> H:
        """A line of the S3 fault gateway's request log (source gateway:<name>)."""
        source = f"gateway:{gateway}"
        return self.event("gateway_request", source, t, source=source, method=method, path=path, status=status)

    def build(self) -> History:
        return History(ops=tuple(self._ops), events=tuple(sorted(self._events, key=lambda e: e.t)))


# ---- event-store rows -----------------------------------------------------------------------


def row(
    type_: str,
    *,
    seq: int | None = None,
    intent_id: Any = None,
    payload: Mapping[str, Any] | None = None,
    t: float | None = None,
    correlation_id: str = CID,
) -> dict[str, Any]:
    """One event row as GET /events returns it (without its hash; see chain)."""
    out: dict[str, Any] = {
        "type": type_,
        "intent_id": intent_id,
        "correlation_id": correlation_id,
        "payload": dict(payload or {}),
    }
    if seq is not None:
        out["seq"] = seq
    if t is not None:
        out["at"] = stamp(t)
    return out


def chain(rows: Iterable[Mapping[str, Any]], prev_hash: str = GENESIS) -> list[dict[str, Any]]:
    """The rows linked as the store links them: each prev_hash the previous hash, each hash
    recomputed from its content (seqs 1, 2, ... where a row has none)."""
    out = []
    for n, r in enumerate(rows, start=1):
        r = {"seq": n, **r, "prev_hash": prev_hash}
        r["hash"] = prev_hash = event_hash(prev_hash, r)
        out.append(r)
    return out
