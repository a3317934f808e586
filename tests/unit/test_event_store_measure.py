"""Matrix row 7's pure parts: EventStoreWriteSuccess per hour, chain continuity, the gate, the fault spec."""

import datetime as dt

import pytest

from harness.faults import FaultContext, FaultError, build
from harness.gates import build_gate, evaluate_gate
from harness.measure.eventstore import GENESIS, chain_continuity, hour_of, write_success
from harness.model import FaultSpec, Op, Outcome, Verdict

OK, FAIL, INFO = Outcome.OK, Outcome.FAIL, Outcome.INFO
TEN_AM = dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.timezone.utc).timestamp()


def op(i, kind, key, outcome=OK, wall=TEN_AM + 60, latency=0.05):
    return Op(id=i, kind=kind, t_invoke=100.0 + i, t_complete=None if outcome is INFO else 100.0 + i + latency,
              outcome=outcome, value=key, wall_invoke=wall)


def created(intent_id, key):
    return {"type": "IntentCreated", "intent_id": intent_id, "payload": {"idempotency_key": key}}


def event(type_, intent_id):
    return {"type": type_, "intent_id": intent_id, "payload": {}}


# --- EventStoreWriteSuccess ------------------------------------------------------------------


def test_every_acknowledged_change_with_exactly_one_event_is_a_full_success():
    ops = [op(1, "write", "k1"), op(2, "write", "k2"), op(3, "evidence", "k2"), op(4, "approve", "k2"),
           op(5, "publish", "k2")]
    events = [created(1, "k1"), created(2, "k2"), event("EvidenceCommitted", 2), event("ApprovalRecorded", 2),
              event("Published", 2)]
    result = write_success(ops, events)
    assert [(h.hour, h.needed, h.persisted) for h in result.hours] == [("2026-01-05T10:00Z", 5, 5)]
    assert result.worst == 1.0 and result.missing == () and result.duplicated == ()


def test_a_change_acknowledged_without_its_event_counts_as_missing():
    ops = [op(i, "write", f"k{i}") for i in range(1, 5)] + [op(5, "publish", "k1")]
    events = [created(i, f"k{i}") for i in (1, 2, 3)]          # k4's event and k1's Published absent
    result = write_success(ops, events)
    assert result.needed == 5 and result.persisted == 3 and result.worst == pytest.approx(0.6)
    assert set(result.missing) == {"write k4", "publish k1"}


def test_two_events_for_one_change_count_as_duplicated_not_persisted():
    result = write_success([op(1, "write", "k1"), op(2, "approve", "k1")],
                           [created(1, "k1"), event("ApprovalRecorded", 1), event("ApprovalRecorded", 1)])
    assert result.persisted == 1 and result.duplicated == ("approve k1",)


def test_refused_and_indeterminate_changes_need_no_event_and_other_kinds_are_ignored():
    ops = [op(1, "write", "k1"), op(2, "write", "k2", FAIL), op(3, "write", "k3", INFO), op(4, "probe", None),
           op(5, "final_read", ["k1"])]
    result = write_success(ops, [created(1, "k1")])
    assert result.needed == 1 and result.worst == 1.0


def test_changes_are_bucketed_by_the_clock_hour_of_their_acknowledgement():
    # invoked at 10:59:59.98, acknowledged 0.05 s later: 11:00
    late = op(2, "write", "k2", wall=TEN_AM + 3599.98)
    result = write_success([op(1, "write", "k1"), late, op(3, "write", "k3", wall=TEN_AM + 3700)],
                           [created(1, "k1"), created(2, "k2")])
    assert [(h.hour, h.needed, h.persisted) for h in result.hours] == [
        ("2026-01-05T10:00Z", 1, 1), ("2026-01-05T11:00Z", 2, 1)]
    assert result.ratios == [1.0, 0.5] and result.worst == 0.5
    assert hour_of(TEN_AM) == "2026-01-05T10:00Z"


def test_no_acknowledged_change_gives_no_hour():
    result = write_success([op(1, "write", "k1", FAIL)], [])
    assert result.hours == () and result.worst is None


# --- the gate ---------------------------------------------------------------------------------


def test_the_gate_passes_at_99_9_percent_in_every_hour_and_fails_below():
    gate = build_gate("event_store_write_success")
    ok = evaluate_gate(gate, {"EventStoreWriteSuccess": [1.0, 0.999]})
    assert ok.verdict is Verdict.PASS and ok.measured == 0.999
    bad = evaluate_gate(gate, {"EventStoreWriteSuccess": [1.0, 0.998]})
    assert bad.verdict is Verdict.FAIL and "hour 1" in bad.detail


def test_the_gate_names_the_failing_hour_from_the_measure():
    hours = write_success([op(1, "write", "k1"), op(2, "write", "k2")], [created(1, "k1")]).hours
    result = evaluate_gate(build_gate("event_store_write_success", target=0.999), {"EventStoreWriteSuccess": hours})
    assert result.verdict is Verdict.FAIL and result.measured == 0.5 and "2026-01-05T10:00Z" in result.detail


def test_the_gate_is_unknown_without_a_measurement_or_without_any_hour():
    gate = build_gate("event_store_write_success")
    assert evaluate_gate(gate, {}).verdict is Verdict.UNKNOWN
    assert evaluate_gate(gate, {"EventStoreWriteSuccess": []}).verdict is Verdict.UNKNOWN
    assert evaluate_gate(gate, {"EventStoreWriteSuccess": 1.0}).verdict is Verdict.PASS


# --- chain continuity -------------------------------------------------------------------------


def chain(n, start=1, prev=GENESIS):
    rows = []
    for seq in range(start, start + n):
        digest = f"h{seq:063d}"
        rows.append({"seq": seq, "prev_hash": prev, "hash": digest})
        prev = digest
    return rows


def test_a_chain_that_grew_across_the_failover_is_continuous():
    after = chain(10)
    c = chain_continuity(after[:6], after)
    assert c.ok and (c.before, c.after) == (6, 10) and (c.last_before, c.first_after) == (6, 7)
    assert c.boundary_linked is True


def test_seq_gaps_are_fine_when_the_links_hold():
    after = chain(3) + chain(2, start=8, prev=chain(3)[-1]["hash"])
    assert chain_continuity(after[:3], after).ok


def test_an_event_recorded_before_and_missing_after_is_lost_and_breaks_the_link():
    before = chain(6)
    after = before[:4] + chain(3, start=7, prev=before[-1]["hash"])    # 5 and 6 gone
    c = chain_continuity(before, after)
    assert not c.ok and c.lost == (5, 6) and c.broken_links == (7,)


def test_an_altered_hash_a_duplicate_and_a_new_branch_are_each_reported():
    before = chain(4)
    altered = [dict(e) for e in before]
    altered[1]["hash"] = "x" * 64
    c = chain_continuity(before, altered + [dict(altered[3])])
    assert c.altered == (2,) and "seq 4" in c.duplicated and 3 in c.broken_links
    fork = chain(4) + [{"seq": 5, "prev_hash": "y" * 64, "hash": "z" * 64}]   # not linked to seq 4
    c = chain_continuity(before, fork)
    assert c.boundary_linked is False and not c.ok


def test_nothing_after_the_fault_leaves_the_boundary_unjudged():
    c = chain_continuity(chain(3), chain(3))
    assert c.first_after is None and c.boundary_linked is None and c.ok


# --- the fault spec ---------------------------------------------------------------------------


def test_the_event_store_fault_targets_the_database_primary_only():
    with pytest.raises(FaultError, match="database-primary"):
        build(FaultSpec("event_store_block", "pg-a"))
    fault = build(FaultSpec("event_store_block", "database-primary"))
    assert "event_store_block" in fault.describe()
    fault.heal(FaultContext())   # healing what was never injected is a no-op


def test_a_lab_without_the_capability_says_so():
    from harness.lab.base import Lab

    class Bare(Lab):
        provider = "bare"
        up = down = endpoints = processes = steady_state_checks = database_primary = kill_database_node = \
            lambda self, *a: None

    with pytest.raises(NotImplementedError, match="bare lab cannot block event store writes"):
        build(FaultSpec("event_store_block", "database-primary")).inject(FaultContext(lab=Bare()))
