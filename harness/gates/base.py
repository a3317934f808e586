"""Gate base: a named validation rule over measured values, a registry by id, a safe evaluator."""

from __future__ import annotations

import abc
import math
import operator
from typing import Any, Callable, ClassVar, Iterable, Mapping

from harness.model import GateResult, Verdict

Context = Mapping[str, Any]

GATES: dict[str, type["Gate"]] = {}


class UnknownGate(ValueError):
    """A drill names a gate id that no class registered."""


class Gate(abc.ABC):
    """A validation rule. Pure: reads the context of measured values, never touches infrastructure.

    `id` names the rule in results and reports; `description` says it in the spec's words.
    evaluate() returns a GateResult; it may raise, and `evaluate_gate` turns that into UNKNOWN.
    """

    id: str
    description: str

    @abc.abstractmethod
    def evaluate(self, context: Context) -> GateResult:
        """Judge the measured values in `context` against this gate's threshold."""


def register(cls: type[Gate]) -> type[Gate]:
    """Class decorator: make `cls` constructible by its `gate_type` (default: its `id`)."""
    key = getattr(cls, "gate_type", None) or cls.id
    if key in GATES and GATES[key] is not cls:
        raise ValueError(f"gate id {key!r} is already registered by {GATES[key].__name__}")
    GATES[key] = cls
    return cls


def build_gate(gate_id: str, **params: Any) -> Gate:
    """A gate of a registered id with its parameters; UnknownGate lists the known ids."""
    try:
        cls = GATES[gate_id]
    except KeyError:
        known = ", ".join(sorted(GATES)) or "none"
        raise UnknownGate(f"unknown gate {gate_id!r}; known gates: {known}") from None
    return cls(**params)


def evaluate_gate(gate: Gate, context: Context) -> GateResult:
    """Evaluate one gate; any exception, or anything but a GateResult, is UNKNOWN, never PASS."""
    gate_id = getattr(gate, "id", type(gate).__name__)
    description = getattr(gate, "description", "")
    try:
        result = gate.evaluate(context)
    except Exception as exc:  # noqa: BLE001 - a broken check must not stop the other gates
        detail = f"check raised {type(exc).__name__}: {exc}"
        return GateResult(gate_id, description, None, None, Verdict.UNKNOWN, detail)
    if not isinstance(result, GateResult) or not isinstance(result.verdict, Verdict):
        detail = f"check returned {result!r} instead of a GateResult with a Verdict"
        return GateResult(gate_id, description, None, None, Verdict.UNKNOWN, detail)
    return result


def evaluate_gates(gates: Iterable[Gate], context: Context) -> list[GateResult]:
    """Every gate evaluated safely, in order; one failing check never hides the others."""
    return [evaluate_gate(gate, context) for gate in gates]


def drill_verdict(results: Iterable[GateResult]) -> Verdict:
    """The worst gate verdict (fail > unknown > pass); no gates at all is UNKNOWN."""
    return Verdict.worst(r.verdict for r in results)


COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
}


class ThresholdGate(Gate):
    """Compare context[key] with `threshold` using `comparator` ("<=", ">=" or "==").

    A missing key, a None or NaN measurement is UNKNOWN with a detail naming the key;
    subclasses may say otherwise for None (see rto_seconds). `measure()` may normalise
    the raw value first (e.g. a list of lost keys to its count).
    """

    key: str = ""
    comparator: ClassVar[str] = "<="
    unit: ClassVar[str] = ""
    gate_type: ClassVar[str] = ""

    def __init__(self, threshold: Any, *, key: str | None = None, id: str | None = None,
                 description: str | None = None) -> None:
        if self.comparator not in COMPARATORS:
            raise ValueError(f"unknown comparator {self.comparator!r}")
        self.threshold = threshold
        self.key = key or self.key
        if not self.key:
            raise ValueError(f"{type(self).__name__} needs the key of the measured value")
        self.id = id or getattr(type(self), "id", None) or self.key
        self.description = description or self.describe()

    def describe(self) -> str:
        return f"{self.key} {self.threshold_text()}"

    def threshold_text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.comparator} {self.threshold}{unit}"

    def measure(self, raw: Any) -> Any:
        return raw

    def when_none(self) -> tuple[Verdict, str]:
        return Verdict.UNKNOWN, f"{self.key} was not measured (None)"

    def result(self, measured: Any, verdict: Verdict, detail: str = "") -> GateResult:
        return GateResult(self.id, self.description, measured, self.threshold_text(), verdict, detail)

    def evaluate(self, context: Context) -> GateResult:
        if self.key not in context:
            return self.result(None, Verdict.UNKNOWN, f"missing measurement {self.key!r}")
        measured = self.measure(context[self.key])
        if measured is None:
            return self.result(None, *self.when_none())
        if isinstance(measured, float) and math.isnan(measured):
            return self.result(measured, Verdict.UNKNOWN, f"{self.key} is NaN")
        ok = COMPARATORS[self.comparator](measured, self.threshold)
        verdict = Verdict.PASS if ok else Verdict.FAIL
        return self.result(measured, verdict, f"{self.key} = {measured!r}, required {self.threshold_text()}")
