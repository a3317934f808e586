"""RTO, RPO, availability and write accounting as pure functions of a History."""

from harness.measure.accounting import (
    NoFinalRead,
    WriteAccounting,
    duplicated_writes,
    final_read_keys,
    lost_writes,
    write_accounting,
)
from harness.measure.probes import Availability, Bucket, availability
from harness.measure.recovery import RTOResult, fault_event, rto
from harness.measure.recovery_point import RPOResult, rpo

__all__ = [
    "Availability",
    "Bucket",
    "NoFinalRead",
    "RPOResult",
    "RTOResult",
    "WriteAccounting",
    "availability",
    "duplicated_writes",
    "fault_event",
    "final_read_keys",
    "lost_writes",
    "rpo",
    "rto",
    "write_accounting",
]
