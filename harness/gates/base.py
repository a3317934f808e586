"""Gate base: a validation rule as a pure function of a scenario's History and its threshold.

A gate never touches infrastructure: it reads only what the harness's clients recorded
(operations and their answers) and what the lab's own parts logged (fault journal, failover
controller, platform stand-ins, the S3 gateway), on one clock. evaluate() answers pass, fail or
unknown; `evaluate_gate` turns an exception into unknown, never pass.

Every gate class declares what it judges (`judges`, one of JUDGES): "system", the deployment under
drill (load balancer, Control Plane, database HA, stores, connectors); "runbook", a procedure the
harness performs for the operator (a failback, the chaos run itself); "lab", a part that exists
only in a lab (the lab's backup service, its key-vault stand-in). There is no default: a gate
without it answers unknown on every history (its result cannot be built), and the unit tests
refuse a registered gate class without it.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.model import GATE_JUDGES, EventKind, GateResult, History, Op, Verdict
from harness.text import one_line

GATES: dict[str, type[Gate]] = {}
# What a gate judges, in the order the report shows them: the deployment first.
JUDGES = GATE_JUDGES


def register(cls: type[Gate]) -> type[Gate]:
    """Class decorator: every gate class is listed (its unit tests are checked against the list)."""
    if cls.__name__ in GATES and GATES[cls.__name__] is not cls:
        raise ValueError(f"gate class {cls.__name__} is registered twice")
    GATES[cls.__name__] = cls
    return cls


class Gate(abc.ABC):
    """A validation rule. `id` names it in results and reports; `description` says it in the
    spec's words; `threshold` is what it requires, as shown beside the measured value.

    A rule that is one numeric comparison of its measured value also sets `operator` ("<=", ">=",
    "<", ">", "=="), `limit` (the number measured is compared against, in measured's unit) and
    `unit`: it passes exactly when `measured operator limit`. Any other rule leaves them None.

    `judges` (no default; one of JUDGES) says what the rule is evidence about: the system under
    drill, a runbook the harness performs, or a lab-only part."""

    judges: str  # declared by every gate class: "system", "runbook" or "lab"
    id: str = ""
    description: str = ""
    threshold: Any = None
    operator: str | None = None
    limit: float | int | None = None
    unit: str | None = None

    @abc.abstractmethod
    def evaluate(self, history: History) -> GateResult:
        """Judge the history against this gate's threshold."""

    def result(self, verdict: Verdict, measured: Any, detail: str = "") -> GateResult:
        judges = self.judges  # a gate class that does not say what it judges raises here: unknown
        if judges not in JUDGES:
            raise ValueError(f"judges is {judges!r}, not one of {', '.join(JUDGES)}")
        return GateResult(
            self.id,
            self.description,
            measured,
            self.threshold,
            verdict,
            detail,
            self.operator,
            self.limit,
            self.unit,
            judges,
        )

    def figures(self, history: History) -> dict[str, Any]:
        """Measurements the rule reports beside its verdict (scenario measurements, e.g. a detection
        latency); none by default. Pure, like evaluate()."""
        return {}

    def judge(self, ok: bool | None, measured: Any, detail: str = "") -> GateResult:
        """ok True -> pass, False -> fail, None -> unknown."""
        verdict = Verdict.UNKNOWN if ok is None else (Verdict.PASS if ok else Verdict.FAIL)
        return self.result(verdict, measured, detail)

    def unknown(self, detail: str, measured: Any = None) -> GateResult:
        return self.result(Verdict.UNKNOWN, measured, detail)


def evaluate_gate(gate: Gate, history: History) -> GateResult:
    """Evaluate one gate; any exception, or anything but a GateResult, is UNKNOWN, never PASS."""
    gate_id = getattr(gate, "id", "") or type(gate).__name__
    description = getattr(gate, "description", "")
    judges = getattr(gate, "judges", None)
    typed = (
        getattr(gate, "operator", None),
        getattr(gate, "limit", None),
        getattr(gate, "unit", None),
        judges if judges in JUDGES else None,
    )
    try:
        result = gate.evaluate(history)
    except Exception as exc:  # noqa: BLE001 - a broken check must not stop the other gates
        detail = f"check raised {type(exc).__name__}: {exc}"
        return GateResult(gate_id, description, None, getattr(gate, "threshold", None), Verdict.UNKNOWN, detail, *typed)
    if not isinstance(result, GateResult) or not isinstance(result.verdict, Verdict):
        detail = f"check returned {result!r} instead of a GateResult with a Verdict"
        return GateResult(gate_id, description, None, getattr(gate, "threshold", None), Verdict.UNKNOWN, detail, *typed)
    return result


def evaluate_gates(gates: Iterable[Gate], history: History) -> list[GateResult]:
    """Every gate evaluated safely, in order; one failing check never hides the others."""
    return [evaluate_gate(gate, history) for gate in gates]


def gate_figures(gates: Iterable[Gate], history: History) -> dict[str, Any]:
    """Every gate's figures() merged (a scenario's measurements); a check that raises or answers
    something other than a mapping adds nothing (its verdict already says what went wrong)."""
    out: dict[str, Any] = {}
    for gate in gates:
        try:
            found = gate.figures(history)
        except Exception:  # noqa: BLE001 - a figure is never worth a stopped drill
            continue
        if isinstance(found, dict):
            out.update(found)
    return out


def drill_verdict(results: Iterable[GateResult]) -> Verdict:
    """The worst gate verdict (fail > unknown > pass); no gates at all is UNKNOWN."""
    return Verdict.worst(r.verdict for r in results)


# ---- shared reading of a history ---------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """A stretch of the history clock: from a fault's injection to the first of the events that
    end it (its heal, or a recovery event such as "reconnect"); end None = never ended."""

    start: float
    end: float | None

    def holds(self, op: Op) -> bool:
        """The op ran entirely inside the span (invoked after it began, completed before it ended)."""
        return op.t_invoke >= self.start and (self.end is None or op.done <= self.end)

    def contains(self, t: float) -> bool:
        return t >= self.start and (self.end is None or t <= self.end)


def fault_span(history: History, label: str, until: tuple[EventKind, ...] = (EventKind.HEAL,)) -> Span | None:
    """The span of the fault journal's fault `label`: from its injection until the first event of
    a kind in `until` after it ("heal" means this fault's own heal). None: never injected."""
    inject = history.first_event(EventKind.INJECT, label)
    if inject is None:
        return None
    ends = [
        e.t
        for e in history.events
        if e.t >= inject.t and e.kind in until and e is not inject and (e.kind != EventKind.HEAL or e.name == label)
    ]
    return Span(inject.t, min(ends) if ends else None)


def last_op(history: History, kind: str, after: float | None = None, **detail: Any) -> Op | None:
    """The last op of `kind` (invoked at/after `after`, with these detail fields)."""
    ops = [
        o
        for o in history.ops_of(kind)
        if (after is None or o.t_invoke >= after) and all(o.detail.get(k) == v for k, v in detail.items())
    ]
    return max(ops, key=lambda o: o.done) if ops else None


def answer(op: Op) -> str:
    """How an op was answered, in a few words, for a gate's measured value."""
    if op.status is None:
        return one_line(op.error, 160) or op.outcome.value
    parts = [str(op.status)]
    for key in ("cause", "gate", "Impact"):
        if op.detail.get(key):
            parts.append(f"{key} {op.detail[key]}")
    return " ".join(parts)


def seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
