"""Typed gate results: a gate whose rule is one numeric comparison declares it (operator, limit,
unit), and its verdict on every pass and fail case of tests/unit/gates/cases/ is exactly
`measured operator limit`. A wrong operator or limit makes a case disagree and this test fail."""

from __future__ import annotations

import operator as op
from typing import Any

import pytest

from harness.gates import GATES, Gate, evaluate_gate
from harness.gates.recovery import RtoSeconds
from harness.model import GateResult, History, Verdict

from .cases import CASES, Case

PASS, FAIL, UNKNOWN = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN
COMPARE = {"<=": op.le, ">=": op.ge, "<": op.lt, ">": op.gt, "==": op.eq}

# The gates judged to be one numeric comparison of their measured value (every other gate measures
# a dict, a list or a string, or judges more than one figure). Changing the list is a decision.
TYPED = {
    "RtoSeconds": ("<=", "s"),
    "RpoSeconds": ("<=", "s"),
    "LostWrites": ("<=", "writes"),
    "DuplicatedWrites": ("==", "writes"),
    "DuplicatedEvents": ("==", "state changes"),
    "DuplicatedApplies": ("==", "intents"),
    "TransactionLagBeforeFailback": ("<=", "s"),
    "NoChangeWithoutEvent": ("==", "state changes"),
    "EventStoreWriteSuccess": (">=", "ratio"),  # the projected hour (issue 24; the drill window is a figure)
    "BackupRpo": ("<=", "s"),
    "ProbeOutageWithinTolerance": ("<=", "s"),
    "ErrorBudgetNotSpent": ("<=", "s"),
    "AvailabilityBudget": ("<=", "%"),
}
# A FAIL without a figure: the rule's measure never came to be (never recovered is no RTO at all).
FAIL_WITHOUT_FIGURE = {RtoSeconds}


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


ALL = [pytest.param(case, id=f"{cls.__name__}-{case.name}") for cls, cases in CASES.items() for case in cases]
TYPED_CASES = [p for p in ALL if p.values[0].gate.operator is not None]


def test_the_gates_declaring_an_operator_are_the_ones_judged_numeric():
    declared = {}
    for cls, cases in CASES.items():
        for case in cases:
            if case.gate.operator is not None:
                declared[cls.__name__] = (case.gate.operator, case.gate.unit)
    assert declared == TYPED


@pytest.mark.parametrize("case", TYPED_CASES)
def test_a_typed_gate_passes_exactly_when_measured_meets_its_limit(case: Case):
    gate = case.gate
    result = evaluate_gate(gate, case.history)
    assert (result.operator, result.limit, result.unit) == (gate.operator, gate.limit, gate.unit)
    assert result.operator in COMPARE and is_number(result.limit) and result.unit
    if result.verdict is UNKNOWN:
        assert result.measured is None or is_number(result.measured), result.measured
        return
    if result.measured is None:
        assert result.verdict is FAIL and type(gate) in FAIL_WITHOUT_FIGURE, (
            f"{result.verdict.value} without a measured figure"
        )
        return
    assert is_number(result.measured), f"measured {result.measured!r} is not a number"
    holds = COMPARE[result.operator](result.measured, result.limit)
    assert (result.verdict is PASS) == holds, (
        f"{result.verdict.value}, but {result.measured!r} {result.operator} {result.limit!r} is {holds}"
    )


@pytest.mark.parametrize("name", sorted(TYPED))
def test_each_typed_gate_is_checked_on_both_sides_of_its_limit(name):
    sides = set()
    for case in CASES[GATES[name]]:
        result = evaluate_gate(case.gate, case.history)
        if is_number(result.measured) and result.verdict in (PASS, FAIL):
            sides.add(result.verdict)
    assert sides == {PASS, FAIL}, f"{name}: no {'pass' if PASS not in sides else 'fail'} case with a figure"


def test_an_untyped_gate_declares_no_limit_and_no_unit():
    wrong = [
        f"{type(c.gate).__name__}: {(r.limit, r.unit)}"
        for cases in CASES.values()
        for c in cases
        if c.gate.operator is None and ((r := evaluate_gate(c.gate, c.history)).limit, r.unit) != (None, None)
    ]
    assert not wrong


class Crashes(Gate):
    id, description, threshold = "crashes", "a typed check that crashes", "<= 3 s"
    operator, limit, unit = "<=", 3, "s"

    def evaluate(self, history: History) -> GateResult:
        raise RuntimeError("boom")


class Answers(Gate):
    id, description, threshold = "answers", "a typed check that answers something else", "<= 3 s"
    operator, limit, unit = "<=", 3, "s"

    def evaluate(self, history: History):
        return "pass"


@pytest.mark.parametrize("gate", [Crashes(), Answers()], ids=["raised", "returned no GateResult"])
def test_an_unknown_from_a_broken_typed_gate_keeps_its_operator_limit_and_unit(gate):
    result = evaluate_gate(gate, History())
    assert result.verdict is UNKNOWN and result.measured is None
    assert (result.operator, result.limit, result.unit) == ("<=", 3, "s")


def test_typed_fields_round_trip_and_old_results_still_load():
    typed = GateResult("rto_seconds", "RTO", 2.5, "<= 30 s", PASS, "", "<=", 30, "s")
    assert GateResult.from_json(typed.to_json()) == typed
    old = {
        "id": "rto_seconds",
        "description": "RTO",
        "measured": 2.5,
        "threshold": "<= 30 s",
        "verdict": "pass",
        "detail": "",
    }
    loaded = GateResult.from_json(old)
    assert (loaded.operator, loaded.limit, loaded.unit) == (None, None, None) and loaded.measured == 2.5
    assert GateResult.from_json({**old, "operator": "~", "limit": True}).operator is None
