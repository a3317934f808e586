"""Post-failover validation (spec section 4, "automated validation script runs post-failover
verifying ServicesReady = True, MetadataTablesInSync = True, EventCountGrowth >= Threshold"),
plus ApprovalEventCount on the DR copy and the SIEM holding every failover event of the store.
Judged from the harness's own reads of the API, of both database copies and of the SIEM file."""

from __future__ import annotations

from harness.gates.base import Gate, last_op, register
from harness.model import GateResult, History, Op, OpKind, Verdict, detail_of


def _read(gate: Gate, history: History, kind: OpKind) -> Op | GateResult:
    """The last op of `kind`, or the gate's unknown when it was not read or could not be."""
    op = last_op(history, kind)
    if op is None:
        return gate.unknown(f"{kind.replace('_', ' ')} was not read")
    if not op.ok:
        return gate.unknown(f"{kind.replace('_', ' ')} could not be read: {op.error}")
    return op


@register
class ServicesReady(Gate):
    """ServicesReady = True: the API answers ServiceHealth = Healthy with every part up, and the
    lab's own checks (replication streaming, every instance in rotation, failover watching) are green."""

    judges = "system"
    id = "services_ready"
    description = "ServicesReady = True after the failover (ServiceHealth Healthy, every part up, lab checks green)"
    threshold = "all ready"

    def evaluate(self, history: History) -> GateResult:
        op = _read(self, history, OpKind.SERVICES)
        if isinstance(op, GateResult):
            return op
        parts = op.value.get("components") or {}
        checks = op.value.get("lab_checks") or {}
        down = {k: v for k, v in parts.items() if v != "up" and v != "degraded"}
        failed = {k: v[1] for k, v in checks.items() if not v[0]}
        measured = {"ServiceHealth": op.value.get("ServiceHealth"), "parts_down": down, "lab_checks_failed": failed}
        return self.judge(op.value.get("ServiceHealth") == "Healthy" and not down and not failed, measured)


@register
class MetadataTablesInSync(Gate):
    """MetadataTablesInSync = True: every metadata table has the same row count and checksum on the
    primary and on the DR copy (read once the DR copy replayed the primary's position)."""

    judges = "system"
    id = "metadata_tables_in_sync"
    description = "MetadataTablesInSync = True: per-table checksums equal on the primary and the DR copy"
    threshold = "every table equal"

    def evaluate(self, history: History) -> GateResult:
        op = _read(self, history, OpKind.TABLE_CHECKSUMS)
        if isinstance(op, GateResult):
            return op
        primary, dr = op.value.get("primary") or {}, op.value.get("dr") or {}
        if not primary:
            return self.unknown("no metadata table was read on the primary")
        differ = sorted(t for t in primary if primary[t] != dr.get(t))
        measured = {
            "tables": len(primary),
            "differ": differ,
            "primary": detail_of(op).get("primary_node"),
            "dr": detail_of(op).get("dr_node"),
        }
        return self.judge(not differ, measured)


@register
class EventCountGrowth(Gate):
    """EventCountGrowth >= threshold: events appended to the store in the validation's window after
    the failover (the harness's own probe writes each need one)."""

    judges = "system"
    id = "event_count_growth"
    description = "EventCountGrowth >= threshold: the event store takes appends after the failover"

    def __init__(self, threshold: int = 5):
        self.minimum = threshold
        self.threshold = f">= {threshold}"

    def evaluate(self, history: History) -> GateResult:
        op = _read(self, history, OpKind.EVENT_GROWTH)
        if isinstance(op, GateResult):
            return op
        grown = op.value["after"] - op.value["before"]
        return self.judge(grown >= self.minimum, {"appended": grown, "window_s": op.value.get("window_s")})


@register
class ApprovalCountOnDr(Gate):
    """ApprovalEventCount on the DR copy equals the primary's (validation rule 5, both copies)."""

    judges = "system"
    id = "approval_event_count_dr"
    description = "ApprovalEventCount on the DR copy matches the primary's"
    threshold = "equal"

    def evaluate(self, history: History) -> GateResult:
        op = _read(self, history, OpKind.APPROVAL_COUNTS)
        if isinstance(op, GateResult):
            return op
        primary, dr = op.value.get("primary"), op.value.get("dr")
        return self.judge(primary is not None and primary == dr, {"primary": primary, "dr": dr})


@register
class FailoverEventsInSiem(Gate):
    """Every failover and recovery event the event store holds (DrillEvent) is in the SIEM sink with
    its correlation id (rule 2, over the whole store)."""

    judges = "system"
    id = "failover_events_in_siem"
    description = "Every failover and recovery event in the event store is in the SIEM with its correlation id"
    threshold = "none missing"

    def evaluate(self, history: History) -> GateResult:
        store = _read(self, history, OpKind.VALIDATE_DRILL_EVENTS)
        if isinstance(store, GateResult):
            return store
        siem = last_op(history, OpKind.VALIDATE_SIEM)
        if siem is None or not siem.ok:
            return self.unknown("the SIEM sink could not be read")
        seen = {(r.get("event_id"), r.get("correlation_id")) for r in siem.value}
        missing = [
            f"{(r.get('payload') or {}).get('kind')}:{(r.get('payload') or {}).get('name')}"
            for r in store.value
            if ((r.get("payload") or {}).get("event_id"), r.get("correlation_id")) not in seen
        ]
        if not store.value:
            return self.result(Verdict.UNKNOWN, {"events": 0}, "the event store holds no failover event")
        return self.judge(not missing, {"events": len(store.value), "missing_in_siem": missing[:10]})
