"""The gates judged on hand-built histories (tests/unit/gates/cases/, one module per gate family),
every registered gate covered by a pass, a fail and an unknown case; and the base every gate relies on: an error is
unknown, never pass; one broken gate hides no other; the drill's verdict is the worst; spans."""

from __future__ import annotations

import pytest

from harness.gates import GATES, Gate, Span, drill_verdict, evaluate_gate, evaluate_gates, fault_span
from harness.gates.base import JUDGES, gate_figures
from harness.model import GateResult, History, Op, Outcome, Verdict

from .builder import H
from .cases import CASES, Case

PASS, FAIL, UNKNOWN = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN


PARAMS = [
    pytest.param(case, id=f"{cls.__name__}-{case.name}", marks=case.marks)
    for cls, cases in CASES.items()
    for case in cases
]


@pytest.mark.parametrize("case", PARAMS)
def test_gate_case(case: Case):
    result = evaluate_gate(case.gate, case.history)
    assert not result.detail.startswith(("check raised", "check returned")), result.detail  # a crash is no verdict
    assert result.verdict is case.expected, (
        f"{type(case.gate).__name__} answered {result.verdict.value}, expected {case.expected.value}: "
        f"measured {result.measured!r}; {result.detail}"
    )
    assert result.id == case.gate.id and result.threshold == case.gate.threshold
    assert result.judges == type(case.gate).judges
    if case.check is not None:
        case.check(result)


def _proven(cases: list[Case]) -> set[Verdict]:
    """The verdicts a gate's cases show it giving (a case marked as a suspected defect shows none)."""
    return {c.expected for c in cases if not c.marks}


@pytest.mark.parametrize("name", sorted(GATES))
def test_every_registered_gate_has_a_pass_a_fail_and_an_unknown_case(name):
    cls = GATES[name]
    missing = {PASS, FAIL, UNKNOWN} - _proven(CASES.get(cls, []))
    assert not missing, f"{name} has no case expecting {', '.join(sorted(v.value for v in missing))}"


def test_the_cases_are_of_registered_gates_and_named_once():
    for cls, cases in CASES.items():
        assert GATES.get(cls.__name__) is cls, f"{cls.__name__} is not registered"
        names = [c.name for c in cases]
        assert len(names) == len(set(names)), f"{cls.__name__}: a case name is used twice"
        for case in cases:
            assert type(case.gate) is cls, f"{cls.__name__}-{case.name} judges with a {type(case.gate).__name__}"


def test_a_gate_judges_the_same_history_the_same_way_twice():
    for cases in CASES.values():
        for case in cases:
            assert evaluate_gate(case.gate, case.history) == evaluate_gate(case.gate, case.history)


# ---- the base ---------------------------------------------------------------------------------


class Fixed(Gate):
    id, description, threshold = "fixed", "answers what it is told", "-"
    judges = "system"

    def __init__(self, verdict: Verdict):
        self.verdict = verdict

    def evaluate(self, history: History) -> GateResult:
        return self.result(self.verdict, "measured")


class Raises(Gate):
    id, description, threshold = "raises", "a check that crashes", "= 1"

    def evaluate(self, history: History) -> GateResult:
        return 1 / 0


class Returns(Gate):
    id, description, threshold = "returns", "a check that answers something else", "yes"

    def __init__(self, answer):
        self.answer = answer

    def evaluate(self, history: History):
        return self.answer


class Nameless(Gate):
    def evaluate(self, history: History) -> GateResult:
        raise RuntimeError("boom")


EMPTY = History()


def test_an_exception_inside_evaluate_is_unknown_never_pass():
    result = evaluate_gate(Raises(), EMPTY)
    assert result.verdict is UNKNOWN
    assert (result.id, result.description, result.threshold, result.measured) == (
        "raises",
        "a check that crashes",
        "= 1",
        None,
    )
    assert "ZeroDivisionError" in result.detail


def test_a_gate_without_an_id_is_named_by_its_class():
    result = evaluate_gate(Nameless(), EMPTY)
    assert result.verdict is UNKNOWN and result.id == "Nameless" and "boom" in result.detail


@pytest.mark.parametrize(
    "answer",
    [None, True, "pass", Verdict.PASS, GateResult("returns", "", None, None, "pass")],  # type: ignore[arg-type]
    ids=["None", "True", "the string pass", "a bare Verdict", "a verdict that is a string"],
)
def test_anything_but_a_gate_result_with_a_verdict_is_unknown(answer):
    result = evaluate_gate(Returns(answer), EMPTY)
    assert result.verdict is UNKNOWN and result.id == "returns" and "instead of a GateResult" in result.detail


def test_one_broken_gate_does_not_hide_the_others():
    results = evaluate_gates([Fixed(PASS), Raises(), Returns(None), Fixed(FAIL)], EMPTY)
    assert [r.id for r in results] == ["fixed", "raises", "returns", "fixed"]
    assert [r.verdict for r in results] == [PASS, UNKNOWN, UNKNOWN, FAIL]


@pytest.mark.parametrize(
    "verdicts, worst",
    [
        ([], UNKNOWN),
        ([PASS], PASS),
        ([PASS, PASS], PASS),
        ([PASS, UNKNOWN, PASS], UNKNOWN),
        ([UNKNOWN, FAIL, PASS], FAIL),
        ([FAIL, UNKNOWN], FAIL),
    ],
    ids=["no gates at all", "one pass", "all pass", "an unknown among passes", "a fail among all", "fail over unknown"],
)
def test_the_drill_verdict_is_the_worst(verdicts, worst):
    assert drill_verdict([Fixed(v).evaluate(EMPTY) for v in verdicts]) is worst


def test_a_crashed_gate_keeps_the_drill_from_passing():
    assert drill_verdict(evaluate_gates([Fixed(PASS), Raises()], EMPTY)) is UNKNOWN


# ---- fault_span and Span --------------------------------------------------------------------


def test_no_span_for_a_fault_never_injected():
    assert fault_span(H().heal("a", 5.0).build(), "a") is None


def test_a_span_ends_at_its_own_heal_not_another_faults():
    h = H().inject("a", 10.0).inject("b", 11.0).heal("b", 12.0).heal("a", 15.0).build()
    assert fault_span(h, "a") == Span(10.0, 15.0)


def test_a_span_never_healed_is_open():
    assert fault_span(H().inject("a", 10.0).heal("b", 12.0).build(), "a") == Span(10.0, None)


def test_a_span_ends_at_the_first_of_its_ending_events_after_the_injection():
    h = (
        H()
        .failover("reconnect", 5.0)
        .inject("a", 10.0)
        .failover("fence", 14.0)
        .failover("reconnect", 16.0)
        .heal("a", 20.0)
        .build()
    )
    assert fault_span(h, "a", ("reconnect",)) == Span(10.0, 16.0)
    assert fault_span(h, "a", ("fence", "reconnect", "heal")) == Span(10.0, 14.0)


def test_a_span_until_the_next_injection_is_not_ended_by_its_own():
    h = H().inject("a", 10.0).inject("b", 20.0).build()
    assert fault_span(h, "a", ("inject",)) == Span(10.0, 20.0)
    assert fault_span(h, "b", ("inject",)) == Span(20.0, None)


def test_a_label_injected_twice_spans_from_its_first_injection():
    h = H().inject("a", 10.0).heal("a", 12.0).inject("a", 30.0).build()
    assert fault_span(h, "a") == Span(10.0, 12.0)


def _op(t: float, done: float | None) -> Op:
    return Op(id=1, kind="publish", t_invoke=t, t_complete=done, outcome=Outcome.OK if done else Outcome.INFO)


@pytest.mark.parametrize(
    "t, done, holds",
    [
        (10.0, 10.5, True),  # invoked at the start
        (19.5, 20.0, True),  # completed at the end
        (9.9, 10.5, False),  # invoked before the span began
        (19.5, 20.5, False),  # straddles the end
        (21.0, 21.5, False),  # after it
        (15.0, None, True),  # never completed: held from its invoke
        (20.5, None, False),
    ],
    ids=[
        "invoked at the start",
        "completed at the end",
        "invoked before",
        "straddling the end",
        "after",
        "never completed, invoked inside",
        "never completed, invoked after",
    ],
)
def test_span_holds_an_op_that_ran_entirely_inside_it(t, done, holds):
    assert Span(10.0, 20.0).holds(_op(t, done)) is holds


def test_an_open_span_holds_every_op_invoked_after_its_start():
    assert Span(10.0, None).holds(_op(1000.0, 2000.0)) and not Span(10.0, None).holds(_op(9.0, 11.0))


def test_span_contains_its_ends():
    span = Span(10.0, 20.0)
    assert span.contains(10.0) and span.contains(20.0) and not span.contains(9.99) and not span.contains(20.01)
    assert Span(10.0, None).contains(1e9)


# ---- what a gate judges, and the figures it reports ------------------------------------------


@pytest.mark.parametrize("name", sorted(GATES))
def test_every_registered_gate_says_what_it_judges(name):
    judges = GATES[name].__dict__.get("judges")  # its own class's word, not inherited by accident
    assert judges in JUDGES, f"{name} declares judges = {judges!r}; one of {', '.join(JUDGES)} is required"


class Undeclared(Gate):
    """A gate class that does not say what it judges: it can never pass."""

    id, description, threshold = "undeclared", "passes if it could", "-"

    def evaluate(self, history: History) -> GateResult:
        return self.result(PASS, "measured")


class Misdeclared(Undeclared):
    judges = "the deployment"


@pytest.mark.parametrize("gate", [Undeclared(), Misdeclared()], ids=["no judges", "judges outside the three"])
def test_a_gate_that_does_not_say_what_it_judges_is_unknown_never_pass(gate):
    result = evaluate_gate(gate, EMPTY)
    assert result.verdict is UNKNOWN and result.judges is None and "judges" in result.detail


def test_what_a_gate_judges_round_trips_and_old_results_read_none():
    judged = GateResult("rto_seconds", "RTO", 2.5, "<= 30 s", PASS, "", "<=", 30, "s", "system")
    assert judged.to_json()["judges"] == "system" and GateResult.from_json(judged.to_json()) == judged
    old = {k: v for k, v in judged.to_json().items() if k != "judges"}
    assert GateResult.from_json(old).judges is None
    assert GateResult.from_json({**old, "judges": "everything"}).judges is None


class Figures(Fixed):
    def __init__(self, figures):
        super().__init__(PASS)
        self._figures = figures

    def figures(self, history: History):
        if isinstance(self._figures, Exception):
            raise self._figures
        return self._figures


def test_gate_figures_merge_and_a_broken_one_adds_nothing():
    gates = [Figures({"a": 1}), Figures(RuntimeError("boom")), Figures("not a mapping"), Figures({"b": 2}), Fixed(PASS)]
    assert gate_figures(gates, EMPTY) == {"a": 1, "b": 2}
