"""The spec's validation rules as pure gates over a scenario's History: pass, fail or unknown.

What the runner records and the gates read (the contract between them):
  ops (the harness's own clients): harness.model.OpKind lists every kind the runner records and
    the gates read, each with what its value and its detail hold; gates name kinds by member.
  events: inject / heal (the fault journal, name = fault label), detect / fence / promote /
    reconnect / rebuild / lag_check / failback / failover_error (the lab's failover), platform_request
    (a stand-in's log, source platform:<name>), gateway_request (source gateway:<name>), clock (the
    harness moved the Control Plane's clock by detail.seconds), checkpoint (a step looked),
    restore_download / restore_verify / restore_refused / restore_rehydrate / restore_done (source
    restore: the restore runbook's log, detail snapshot_id, ok, reason), halt / chaos_end (an ad hoc
    chaos run was stopped early, detail reason / ran its whole fault sequence). An event the harness
    delivered to the event store itself (harness.runner.forwarder) carries detail forwarded: True.
"""

from harness.gates import (  # noqa: F401
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
from harness.gates.base import GATES, Gate, Span, drill_verdict, evaluate_gate, evaluate_gates, fault_span, register

__all__ = [
    "GATES",
    "Gate",
    "Span",
    "drill_verdict",
    "evaluate_gate",
    "evaluate_gates",
    "fault_span",
    "register",
    "api",
    "availability",
    "backup",
    "chaos",
    "connectors",
    "evidence",
    "eventstore",
    "recovery",
    "steady",
    "validation",
]
