"""The spec's validation rules as pure gates: pass, fail or unknown, never an unhandled error."""

from harness.gates.base import (
    GATES,
    Gate,
    ThresholdGate,
    UnknownGate,
    build_gate,
    drill_verdict,
    evaluate_gate,
    evaluate_gates,
    register,
)
from harness.gates.eventstore import EventStoreWriteSuccess
from harness.gates.generic import AtLeast, AtMost, Equals
from harness.gates.thresholds import (
    AvailabilityGate,
    DuplicatedWrites,
    LostWrites,
    RpoSeconds,
    RtoSeconds,
    TransactionLagSeconds,
)

__all__ = [
    "GATES",
    "AtLeast",
    "AtMost",
    "AvailabilityGate",
    "DuplicatedWrites",
    "Equals",
    "EventStoreWriteSuccess",
    "Gate",
    "LostWrites",
    "RpoSeconds",
    "RtoSeconds",
    "ThresholdGate",
    "TransactionLagSeconds",
    "UnknownGate",
    "build_gate",
    "drill_verdict",
    "evaluate_gate",
    "evaluate_gates",
    "register",
]
