"""What every family of gate cases shares: a Case, the verdicts, a suspected-defect mark and the
checks on a GateResult."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

from harness.gates import Gate
from harness.model import GateResult, History, Verdict

PASS, FAIL, UNKNOWN = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN
Check = Callable[[GateResult], None]


class Case(NamedTuple):
    name: str
    gate: Gate
    history: History
    expected: Verdict
    check: Check | None = None
    marks: tuple = ()


def defect(reason: str) -> tuple:
    """The rule requires the case's verdict; the gate answers otherwise (see the reason)."""
    return (pytest.mark.xfail(strict=True, reason=f"suspected gate defect: {reason}"),)


# ---- checks on the GateResult ---------------------------------------------------------------


def measured(expected: Any) -> Check:
    def check(result: GateResult) -> None:
        assert result.measured == expected, f"measured {result.measured!r}, expected {expected!r}"

    return check


def measured_has(**items: Any) -> Check:
    def check(result: GateResult) -> None:
        for key, value in items.items():
            assert result.measured[key] == value, f"measured[{key!r}] = {result.measured[key]!r}, expected {value!r}"

    return check


def says(text: str) -> Check:
    """The result names `text` (in its detail or its measured value)."""

    def check(result: GateResult) -> None:
        assert text in f"{result.detail} {result.measured}", f"{text!r} not in {result.detail!r} / {result.measured!r}"

    return check
