"""Every gate's rule as named cases on hand-built histories: for each class of harness.gates.GATES
at least one history that must pass, one that must fail (the misbehaviour the rule exists to
catch) and one that must be unknown (the evidence is missing, or the scenario ended first), plus
the edges of the subtler rules, each named as the rule it pins down.

One module per gate family, as in harness/gates/ (recovery, api, availability, connectors,
evidence, worm, eventstore, steady, validation, backup, chaos); `common` holds the Case and the
checks on a GateResult, `shared` the history builders more than one family uses. CASES joins the
families' tables (a gate class in two families is refused).

A case is (name, gate, history, expected verdict, optional check on the GateResult). A case
written from the rule that the gate's code does not meet carries `defect(reason)`: an expected
failure (strict), so it shows until the gate is fixed.
"""

from __future__ import annotations

from types import ModuleType

from harness.gates import Gate

from . import (
    api,
    availability,
    backup,
    chaos,
    connectors,
    eventstore,
    evidence,
    recovery,
    steady,
    validation,
    worm,
)
from .common import FAIL, PASS, UNKNOWN, Case, Check, defect, measured, measured_has, says
from .connectors import degraded_known, intune_failing, promote
from .eventstore import BLOCK, rule2, seconds, write_success_history
from .shared import KILL

FAMILIES: tuple[ModuleType, ...] = (
    recovery,
    api,
    availability,
    connectors,
    evidence,
    worm,
    eventstore,
    steady,
    validation,
    backup,
    chaos,
)


def _joined(families: tuple[ModuleType, ...]) -> dict[type[Gate], list[Case]]:
    joined: dict[type[Gate], list[Case]] = {}
    for family in families:
        for cls, cases in family.CASES.items():
            if cls in joined:
                raise ValueError(f"{cls.__name__} has cases in two families (the second: {family.__name__})")
            joined[cls] = cases
    return joined


CASES: dict[type[Gate], list[Case]] = _joined(FAMILIES)

__all__ = [
    "BLOCK",
    "CASES",
    "FAIL",
    "FAMILIES",
    "KILL",
    "PASS",
    "UNKNOWN",
    "Case",
    "Check",
    "defect",
    "degraded_known",
    "intune_failing",
    "measured",
    "measured_has",
    "promote",
    "rule2",
    "says",
    "seconds",
    "write_success_history",
]
