"""Availability: the probes' error budget and requests beyond the probe window (harness/gates/availability.py)."""

from __future__ import annotations

from harness.gates import Gate
from harness.gates.availability import AvailabilityBudget, NoFailedRequestsBeyondProbeWindow

from ..builder import H
from .common import FAIL, PASS, UNKNOWN, Case, measured, measured_has, says
from .shared import probes

CASES: dict[type[Gate], list[Case]] = {}


def requests(
    h: H,
    start: float,
    stop: float,
    *,
    kind: str = "write",
    failing: tuple[float, ...] = (),
    status: int | None = 503,
    detail: dict | None = None,
    every: float = 0.1,
) -> H:
    """A request of `kind` every `every` s in [start, stop) (0.1 s: 1000 in 100 s); those invoked at
    the times in `failing` are not served: answered `status` (503 naming its cause; None: no answer)."""
    fails = {round(t, 3) for t in failing}
    for i in range(round((stop - start) / every)):
        t = round(start + i * every, 3)
        if t in fails:
            h.op(
                kind,
                t,
                ok=False if status else None,
                status=status,
                detail={"cause": "database"} if status == 503 else {"gate": "EvidencePackState"} if status else {},
                error=f"{status} database unavailable" if status else "ReadTimeout: no answer within 5 s",
            )
        else:
            h.op(kind, t, status=200, detail=detail)
    return h


def health_probes(
    h: H, start: float, stop: float, status: int = 200, said: str = "Healthy", at: tuple[float, ...] | None = None
) -> H:
    """Probes (GET /health) every 0.1 s in [start, stop); those at the times `at` (all when None)
    answered `status` with a health report saying ServiceHealth = `said`, the others 200 Healthy."""
    marked = None if at is None else {round(t, 3) for t in at}
    for i in range(round((stop - start) * 10)):
        t = round(start + i / 10, 3)
        code, body = (status, said) if marked is None or t in marked else (200, "Healthy")
        h.op(
            "probe",
            t,
            ok=code == 200 and body == "Healthy",
            status=code,
            detail={"ServiceHealth": body, "components": {"database": "up" if body == "Healthy" else "down"}},
            error="" if code == 200 and body == "Healthy" else f"{code} ServiceHealth = {body}",
        )
    return h


ONE_BAD = 11.5741  # 1 bad window of the 8.64 a month allows at 99.9% (8,640 windows)


CASES[AvailabilityBudget] = [
    Case(
        "every request served: no bad window, 0% of the budget used",
        AvailabilityBudget(),
        requests(H(), 0.0, 100.0).build(),
        PASS,
        measured(0.0),
    ),
    Case(
        "2 of 1000 requests not served (99.8%): one bad 5-minute window uses 1/8.64 = 11.6% of the month's "
        "error budget, within the 25% allowance",
        AvailabilityBudget(),
        requests(H(), 0.0, 100.0, failing=(50.0, 50.1)).build(),
        PASS,
        measured(ONE_BAD),
    ),
    Case(
        "1 of 1000 not served is exactly 99.9%: a good window",
        AvailabilityBudget(),
        requests(H(), 0.0, 100.0, failing=(50.0,)).build(),
        PASS,
        measured(0.0),
    ),
    Case(
        "three bad windows use 34.7% of the month's budget: over the 25% allowance",
        AvailabilityBudget(),
        requests(
            H(), 0.0, 900.0, failing=(10.0, 10.1, 10.2, 10.3, 310.0, 310.1, 310.2, 310.3, 610.0, 610.1, 610.2, 610.3)
        ).build(),
        FAIL,
        measured(34.7222),
    ),
    Case(
        "a 7-day period allows 2.016 bad windows: one uses 49.6%, over the 25% allowance",
        AvailabilityBudget(period_days=7),
        requests(H(), 0.0, 100.0, failing=(50.0, 50.1)).build(),
        FAIL,
        measured(49.6032),
    ),
    Case(
        "a tighter target (99.99%): 1 of 1000 not served is a bad window of a 0.864-window budget",
        AvailabilityBudget(target=0.9999),
        requests(H(), 0.0, 100.0, failing=(50.0,)).build(),
        FAIL,
        measured(115.7407),
    ),
    Case(
        "windows are clock-aligned: 2 failures either side of 10:05:00 leave both windows at 99.9%",
        AvailabilityBudget(),
        requests(H(), 200.0, 400.0, failing=(299.9, 300.0)).build(),
        PASS,
        measured(0.0),
    ),
    Case(
        "the same 2 failures inside one window make it bad",
        AvailabilityBudget(),
        requests(H(), 200.0, 400.0, failing=(250.0, 250.1)).build(),
        PASS,
        measured(ONE_BAD),
    ),
    Case(
        "a window with no request is not counted bad",
        AvailabilityBudget(),
        requests(requests(H(), 0.0, 100.0), 900.0, 1000.0).build(),
        PASS,
        says("0 bad of 2 5-minute windows"),
    ),
    Case(
        "a window observed in part counts with the requests it had: 1 of 50 not served is bad",
        AvailabilityBudget(),
        requests(H(), 280.0, 285.0, failing=(282.0,)).build(),
        PASS,
        measured(ONE_BAD),
    ),
    Case(
        "a probe answered 200 with ServiceHealth = Unhealthy was served: the health body does not count",
        AvailabilityBudget(allowance=0.0),
        health_probes(H(), 0.0, 100.0, said="Unhealthy").build(),
        PASS,
        measured(0.0),
    ),
    Case(
        "a probe answered 503 whose body says Healthy was not served",
        AvailabilityBudget(allowance=0.0),
        health_probes(H(), 0.0, 100.0, status=503, at=(50.0, 50.1)).build(),
        FAIL,
        measured(ONE_BAD),
    ),
    Case(
        "a write with no answer (a timeout) was not served",
        AvailabilityBudget(allowance=0.1),
        requests(H(), 0.0, 100.0, failing=(50.0, 50.1), status=None).build(),
        FAIL,
        measured(ONE_BAD),
    ),
    Case(
        "a refusal on the request's merits (409 naming its gate) was served",
        AvailabilityBudget(allowance=0.0),
        requests(H(), 0.0, 100.0, kind="approve", failing=(50.0, 50.1, 50.2), status=409, detail={}).build(),
        PASS,
        measured(0.0),
    ),
    Case(
        "the harness's reads of lab internals are not requests to the system",
        AvailabilityBudget(allowance=0.0),
        requests(
            requests(H(), 0.0, 100.0),
            0.0,
            10.0,
            kind="queue_depth",
            failing=tuple(i / 10 for i in range(100)),
            status=None,
        ).build(),
        PASS,
        measured(0.0),
    ),
    Case(
        "no request to the system: availability not observed",
        AvailabilityBudget(),
        requests(H(), 0.0, 10.0, kind="store_read").build(),
        UNKNOWN,
    ),
    Case("an empty history", AvailabilityBudget(), H().build(), UNKNOWN),
]

CASES[NoFailedRequestsBeyondProbeWindow] = [
    Case(
        "failures only within the probe window",
        NoFailedRequestsBeyondProbeWindow("kill-api:a", 2.0),
        probes(H().inject("kill-api:a", 10.0), 10.0, 14.0, down=(10.0, 10.5)).build(),
        PASS,
        measured_has(failed_after_window=0, failed_within_window=5),
    ),
    Case(
        "a write failing after the probe window",
        NoFailedRequestsBeyondProbeWindow("kill-api:a", 2.0),
        probes(H().inject("kill-api:a", 10.0), 10.0, 14.0, down=(10.0, 10.5))
        .op("write", 13.0, ok=False, status=502, error="502 Bad Gateway")
        .build(),
        FAIL,
        measured_has(failed_after_window=1),
    ),
    Case(
        "failures after the next fault belong to it",
        NoFailedRequestsBeyondProbeWindow("kill-api:a", 2.0),
        probes(H().inject("kill-api:a", 10.0).inject("kill-api:b", 20.0), 10.0, 22.0, down=(20.0, 21.0)).build(),
        PASS,
    ),
    Case(
        "too few requests after the probe window to judge",
        NoFailedRequestsBeyondProbeWindow("kill-api:a", 2.0),
        probes(H().inject("kill-api:a", 10.0), 10.0, 12.5).build(),
        UNKNOWN,
    ),
    Case(
        "no inject event",
        NoFailedRequestsBeyondProbeWindow("kill-api:a", 2.0),
        probes(H(), 10.0, 14.0).build(),
        UNKNOWN,
    ),
]
