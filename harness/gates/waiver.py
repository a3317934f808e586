"""A gate whose target the plan loosened under a waiver (harness.spec_floors): judged against the
spec's floor and against the waived target, from the same history.

- meets the floor: pass (the waiver was not needed);
- meets only the waived target: waived (a WaivedGateResult carrying the waiver), never pass;
- misses both: fail, as judged against the spec's floor;
- either could not be judged: unknown.

Not a rule of its own (not registered): it wraps the rule's gate built twice by the runner
(`waivable`), so it judges exactly what the rule judges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

from harness.gates.base import Gate, evaluate_gate
from harness.model import GateResult, History, Verdict, WaivedGateResult

COPIED = ("id", "description", "threshold", "operator", "limit", "unit", "judges")


def _also(detail: str, more: str) -> str:
    return f"{detail}; {more}" if detail else more


class Waived(Gate):
    """`waived`: the gate built with the plan's (looser) target; `spec`: the same gate built with
    the spec's floor; `waiver`: harness.spec_floors.Waiver (bound)."""

    def __init__(self, waived: Gate, spec: Gate, waiver: Any):
        self.waived, self.spec, self.waiver = waived, spec, waiver
        for name in COPIED:  # what the report shows when the check itself breaks
            if hasattr(waived, name):
                setattr(self, name, getattr(waived, name))

    def figures(self, history: History) -> dict[str, Any]:
        figures = getattr(self.spec, "figures", None)
        return figures(history) if callable(figures) else {}

    def evaluate(self, history: History) -> GateResult:
        strict = evaluate_gate(self.spec, history)
        loose = evaluate_gate(self.waived, history)
        floor = f"the spec's floor {strict.threshold} ({self.waiver.floor.clause})"
        if strict.verdict is Verdict.PASS:
            return replace(
                strict, detail=_also(strict.detail, f"meets {floor}: the waiver of {self.waiver.gate} was not needed")
            )
        if Verdict.UNKNOWN in (strict.verdict, loose.verdict):
            return strict if strict.verdict is Verdict.UNKNOWN else loose
        if loose.verdict is Verdict.PASS:
            values = {f.name: getattr(loose, f.name) for f in fields(GateResult)}
            values.update(
                verdict=Verdict.WAIVED,
                detail=_also(
                    loose.detail,
                    f"WAIVED: misses {floor}, meets only the plan's waived "
                    f"target {loose.threshold}; waiver: {self.waiver.words()}",
                ),
            )
            return WaivedGateResult(**values, waiver=self.waiver.to_json())
        return replace(
            strict,
            detail=_also(
                strict.detail, f"misses the plan's waived target {loose.threshold} too (waiver: {self.waiver.words()})"
            ),
        )


def waivable(run: Any, key: str, make: Callable[[float], Gate]) -> Gate:
    """The gate of target `key`, built by make(target) with the plan's target (run: the DrillRun;
    None when the plan sets none: make's default); when the plan waives that target, a Waived gate
    judging it against the spec's floor too."""
    gate = make(run.targets.get(key))
    waiver = (getattr(run, "waivers", None) or {}).get(key)
    if waiver is None or waiver.floor_value is None:
        return gate
    return Waived(gate, make(waiver.floor_value), waiver)
