"""Steady state and the fault journal (harness/gates/steady.py)."""

from __future__ import annotations

from harness.gates import Gate
from harness.gates.steady import FaultsHealed, SteadyState

from ..builder import H
from .common import FAIL, PASS, UNKNOWN, Case, measured, measured_has, says
from .shared import KILL

CASES: dict[type[Gate], list[Case]] = {}


CASES[SteadyState] = [
    Case(
        "every probe green before the first injection",
        SteadyState("before"),
        H().steady_state("before", 1.0, replicas=True, ServiceHealth=True).inject(KILL, 10.0).build(),
        PASS,
        measured("green"),
    ),
    Case(
        "a probe red before the first injection",
        SteadyState("before"),
        H().steady_state("before", 1.0, replicas=False, ServiceHealth=True).inject(KILL, 10.0).build(),
        FAIL,
        measured({"replicas": "red"}),
    ),
    Case(
        "the latest check before the fault is the one judged",
        SteadyState("before"),
        H()
        .steady_state("before", 1.0, replicas=False)
        .steady_state("before", 3.0, replicas=True)
        .inject(KILL, 10.0)
        .build(),
        PASS,
    ),
    Case(
        "a check after the first injection is not the hypothesis before it",
        SteadyState("before"),
        H().inject(KILL, 10.0).steady_state("before", 12.0, replicas=True).build(),
        UNKNOWN,
    ),
    Case(
        "every probe green again after every heal",
        SteadyState("after"),
        H().inject(KILL, 10.0).heal(KILL, 20.0).steady_state("after", 25.0, replicas=True).build(),
        PASS,
    ),
    Case(
        "a probe still red after every heal",
        SteadyState("after"),
        H().inject(KILL, 10.0).heal(KILL, 20.0).steady_state("after", 25.0, replicas=False).build(),
        FAIL,
        measured({"replicas": "red"}),
    ),
    Case(
        "a check before the last heal is not after every heal",
        SteadyState("after"),
        H()
        .inject("a", 10.0)
        .inject("b", 12.0)
        .heal("a", 20.0)
        .steady_state("after", 22.0, replicas=True)
        .heal("b", 30.0)
        .build(),
        UNKNOWN,
    ),
    Case(
        "a check while a fault is still active is not after every heal",
        SteadyState("after"),
        H().inject("a", 10.0).inject("b", 12.0).heal("a", 20.0).steady_state("after", 22.0, replicas=True).build(),
        UNKNOWN,
        None,
    ),
    Case(
        "the steady state was not checked before the faults",
        SteadyState("before"),
        H().inject(KILL, 10.0).build(),
        UNKNOWN,
    ),
]

CASES[FaultsHealed] = [
    Case(
        "every fault injected was healed",
        FaultsHealed(),
        H().inject("a", 10.0).inject("b", 12.0).heal("b", 20.0).heal("a", 21.0).build(),
        PASS,
        measured({"injected": 2, "not_healed": []}),
    ),
    Case(
        "a fault left behind",
        FaultsHealed(),
        H().inject("a", 10.0).inject("b", 12.0).heal("a", 21.0).build(),
        FAIL,
        measured_has(not_healed=["b"]),
    ),
    Case(
        "a failed heal is not a heal",
        FaultsHealed(),
        H().inject("a", 10.0).event("heal_failed", "a", 20.0, source="journal").build(),
        FAIL,
    ),
    Case(
        "a label injected twice and healed once leaves one fault behind",
        FaultsHealed(),
        H().inject("a", 10.0).heal("a", 20.0).inject("a", 30.0).build(),
        FAIL,
        None,
    ),
    Case(
        "no fault injected proves nothing (the dry run says why)",
        FaultsHealed("dry run, no fault injected: lab interlock"),
        H().steady_state("before", 1.0, replicas=True).build(),
        UNKNOWN,
        says("dry run"),
    ),
]
