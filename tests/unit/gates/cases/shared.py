"""History builders more than one family of gate cases uses."""

from __future__ import annotations

from ..builder import H, row

KILL = "kill-primary:pg-a"


def created(intent_id: int, key: str) -> dict:
    return row("IntentCreated", intent_id=intent_id, payload={"idempotency_key": key})


def probes(h: H, start: float, stop: float, down: tuple[float, float] | None = None, kind: str = "probe") -> H:
    """A probe every 0.1 s in [start, stop); those invoked in [down) fail (503)."""
    for i in range(round((stop - start) * 10)):
        t = round(start + i / 10, 3)
        failing = down is not None and down[0] <= t < down[1]
        h.op(
            kind,
            t,
            ok=not failing,
            status=503 if failing else 200,
            done=round(t + 0.05, 3),
            error="503 Service Unavailable" if failing else "",
        )
    return h


def read_events(h: H, t: float, type_: str, *rows: dict, ok: bool = True) -> H:
    return h.op("read_events", t, ok=ok, value=list(rows) if ok else None, detail={"type": type_})
