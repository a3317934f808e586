"""Ad hoc chaos runs: the stop conditions, judged again from the probes (harness/gates/chaos.py)."""

from __future__ import annotations

import pytest

from harness.gates import Gate
from harness.gates.chaos import ChaosCompleted, ErrorBudgetNotSpent, ProbeOutageWithinTolerance

from ..builder import H
from .common import FAIL, PASS, UNKNOWN, Case, measured
from .shared import probes

CASES: dict[type[Gate], list[Case]] = {}


CASES[ProbeOutageWithinTolerance] = [
    Case("every probe answered", ProbeOutageWithinTolerance(2.0), probes(H(), 0.0, 10.0).build(), PASS, measured(0.0)),
    Case(
        "probes failed for 1.5 s in a row, within a 2 s tolerance",
        ProbeOutageWithinTolerance(2.0),
        probes(H(), 0.0, 10.0, down=(3.0, 4.5)).build(),
        PASS,
        measured(pytest.approx(1.5)),
    ),
    Case(
        "probes failed for 3 s in a row: longer than the tolerance",
        ProbeOutageWithinTolerance(2.0),
        probes(H(), 0.0, 10.0, down=(3.0, 6.0)).build(),
        FAIL,
        measured(pytest.approx(3.0)),
    ),
    Case(
        "two short outages are not added up: each is within the tolerance",
        ProbeOutageWithinTolerance(2.0),
        probes(probes(H(), 0.0, 5.0, down=(1.0, 2.5)), 5.0, 10.0, down=(6.0, 7.5)).build(),
        PASS,
    ),
    Case(
        "the probes failed until the run ended: the outage runs to the last probe's answer",
        ProbeOutageWithinTolerance(2.0),
        probes(H(), 0.0, 10.0, down=(7.0, 10.0)).build(),
        FAIL,
        measured(pytest.approx(2.95)),
    ),
    Case("no probe ran", ProbeOutageWithinTolerance(2.0), H().build(), UNKNOWN),
]

CASES[ErrorBudgetNotSpent] = [
    Case(
        "1 s of downtime within a 5 s budget",
        ErrorBudgetNotSpent(5.0),
        probes(H(), 0.0, 10.0, down=(3.0, 4.0)).build(),
        PASS,
        measured(pytest.approx(1.0)),
    ),
    Case(
        "two outages of 3 s add up to more than the 5 s budget",
        ErrorBudgetNotSpent(5.0),
        probes(probes(H(), 0.0, 5.0, down=(1.0, 4.0)), 5.0, 10.0, down=(6.0, 9.0)).build(),
        FAIL,
        measured(pytest.approx(6.0)),
    ),
    Case("no probe ran", ErrorBudgetNotSpent(5.0), H().build(), UNKNOWN),
]

CASES[ChaosCompleted] = [
    Case(
        "the fault sequence ran to its end",
        ChaosCompleted(),
        H().inject("chaos1", 1.0).heal("chaos1", 2.0).event("chaos_end", "seq", 3.0).build(),
        PASS,
    ),
    Case(
        "halted by a stop condition: fails with the reason",
        ChaosCompleted(),
        H()
        .inject("chaos1", 1.0)
        .event("halt", "stop", 2.0, reason="probe failing 11 s")
        .heal("chaos1", 2.1)
        .event("chaos_end", "seq", 3.0)
        .build(),
        FAIL,
        lambda r: "probe failing 11 s" in r.detail or pytest.fail(r.detail),
    ),
    Case("the run recorded neither its end nor a halt", ChaosCompleted(), H().inject("chaos1", 1.0).build(), UNKNOWN),
]
