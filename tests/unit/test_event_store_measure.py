"""Matrix row 7's pure parts: EventStoreWriteSuccess per hour (attempts, projection), the chain
recomputed and compared across a failover, the fault spec."""

import datetime as dt

import pytest

from harness.faults import FaultContext, FaultError, build
from harness.measure.eventstore import GENESIS, chain_continuity, event_hash, hour_of, write_success
from harness.model import FaultSpec, Op, Outcome

OK, FAIL, INFO = Outcome.OK, Outcome.FAIL, Outcome.INFO
TEN_AM = dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC).timestamp()


def op(i, kind, key, outcome=OK, wall=None, t=None):
    t = 100.0 + i if t is None else t
    return Op(
        id=i,
        kind=kind,
        t_invoke=t,
        t_complete=None if outcome is INFO else t + 0.05,
        outcome=outcome,
        value=key,
        wall_invoke=TEN_AM + 60 + (t - 100.0) if wall is None else wall,
    )


def created(intent_id, key):
    return {"type": "IntentCreated", "intent_id": intent_id, "payload": {"idempotency_key": key}}


def event(type_, intent_id):
    return {"type": type_, "intent_id": intent_id, "payload": {}}


# --- EventStoreWriteSuccess ------------------------------------------------------------------


def test_every_change_with_exactly_one_event_is_a_full_success():
    ops = [
        op(1, "write", "k1"),
        op(2, "write", "k2"),
        op(3, "evidence", "k2"),
        op(4, "approve", "k2"),
        op(5, "publish", "k2"),
    ]
    events = [
        created(1, "k1"),
        created(2, "k2"),
        event("EvidenceCommitted", 2),
        event("ApprovalRecorded", 2),
        event("Published", 2),
    ]
    result = write_success(ops, events)
    assert [(h.hour, h.attempted, h.persisted) for h in result.hours] == [("2026-01-05T10:00Z", 5, 5)]
    assert result.worst(False).ratio == 1.0 and result.missing == () and result.duplicated == ()


def test_a_change_acknowledged_without_its_event_counts_as_missing():
    ops = [op(i, "write", f"k{i}") for i in range(1, 5)] + [op(5, "publish", "k1")]
    events = [created(i, f"k{i}") for i in (1, 2, 3)]  # k4's event and k1's Published absent
    result = write_success(ops, events)
    assert result.attempted == 5 and result.persisted == 3 and result.worst(False).ratio == pytest.approx(0.6)
    assert set(result.missing) == {"write k4", "publish k1"}


def test_two_events_for_one_change_count_as_duplicated_not_persisted():
    result = write_success(
        [op(1, "write", "k1"), op(2, "approve", "k1")],
        [created(1, "k1"), event("ApprovalRecorded", 1), event("ApprovalRecorded", 1)],
    )
    assert result.persisted == 1 and result.duplicated == ("approve k1",)


def test_refused_and_timed_out_appends_count_as_failed_attempts_and_other_kinds_are_ignored():
    ops = [
        op(1, "write", "k1"),
        op(2, "write", "k2", FAIL),
        op(3, "write", "k3", INFO),
        op(4, "probe", None),
        op(5, "final_read", ["k1"]),
    ]
    result = write_success(ops, [created(1, "k1")])
    assert result.attempted == 3 and result.persisted == 1
    assert result.refused == ("write k2", "write k3") and result.missing == ()


def test_an_indeterminate_change_whose_event_exists_is_a_success():
    result = write_success([op(1, "write", "k1", INFO)], [created(1, "k1")])
    assert result.persisted == 1 and result.refused == ()


def test_attempts_are_bucketed_by_the_clock_hour_of_their_invoke():
    result = write_success(
        [op(1, "write", "k1"), op(2, "write", "k2", wall=TEN_AM + 3599.98), op(3, "write", "k3", wall=TEN_AM + 3700)],
        [created(1, "k1"), created(2, "k2")],
    )
    assert [(h.hour, h.attempted, h.persisted) for h in result.hours] == [
        ("2026-01-05T10:00Z", 2, 2),
        ("2026-01-05T11:00Z", 1, 0),
    ]
    assert hour_of(TEN_AM) == "2026-01-05T10:00Z"


def test_the_hour_is_projected_at_the_pre_fault_rate_and_ratio():
    # 11 attempts 1 s apart before the fault (all persisted), then 5 refused during it
    ops = [op(i, "write", f"k{i}", t=100.0 + i) for i in range(11)]
    ops += [op(20 + i, "write", f"r{i}", FAIL, t=111.0 + i) for i in range(5)]
    result = write_success(ops, [created(i, f"k{i}") for i in range(11)], fault_t=110.5)
    assert result.pre_fault_rate == pytest.approx(1.0) and result.pre_fault_ratio == 1.0
    hour = result.hours[0]
    assert hour.ratio == pytest.approx(11 / 16)
    rest = 3600 - hour.observed_s
    assert hour.projected_ratio == pytest.approx((11 + rest) / (16 + rest))
    assert hour.projected_ratio > 0.998


def test_an_attempt_in_flight_when_the_fault_struck_belongs_to_the_fault():
    ops = [op(i, "write", f"k{i}", t=100.0 + i) for i in range(11)]
    straddling = Op(
        id=50,
        kind="evidence",
        t_invoke=110.4,
        t_complete=111.5,
        outcome=FAIL,
        value="k10",
        wall_invoke=TEN_AM + 70.4,
        detail={"intent_id": 10},
    )
    result = write_success(ops + [straddling], [created(i, f"k{i}") for i in range(11)], fault_t=110.5)
    assert result.pre_fault_ratio == 1.0 and result.pre_fault_failed == ()
    assert result.refused == ("evidence k10",)


def test_without_enough_attempts_before_the_fault_nothing_is_projected():
    result = write_success([op(1, "write", "k1", t=200.0)], [created(1, "k1")], fault_t=150.0)
    assert result.pre_fault_rate is None


def test_no_attempt_gives_no_hour():
    result = write_success([op(1, "probe", None)], [])
    assert result.hours == () and result.worst(True) is None


# --- chain continuity, every hash recomputed ---------------------------------------------------


def chain(n, start=1, prev=GENESIS):
    rows = []
    for seq in range(start, start + n):
        row = {
            "seq": seq,
            "type": "IntentCreated",
            "intent_id": seq,
            "correlation_id": "c",
            "payload": {"idempotency_key": f"k{seq}"},
            "prev_hash": prev,
        }
        row["hash"] = event_hash(prev, row)
        rows.append(row)
        prev = row["hash"]
    return rows


def test_a_chain_that_grew_across_the_failover_is_continuous():
    after = chain(10)
    c = chain_continuity(after[:6], after)
    assert c.ok and (c.before, c.after) == (6, 10) and (c.last_before, c.first_after) == (6, 7)
    assert c.boundary_linked is True and c.bad_hashes == ()


def test_seq_gaps_are_fine_when_the_links_hold():
    after = chain(3) + chain(2, start=8, prev=chain(3)[-1]["hash"])
    assert chain_continuity(after[:3], after).ok


def test_an_event_whose_content_changed_fails_the_recomputed_hash():
    rows = chain(5)
    rows[2] = {**rows[2], "payload": {"idempotency_key": "forged"}}
    c = chain_continuity([], rows)
    assert c.bad_hashes == (3,) and not c.ok and c.broken_links == ()


def test_an_event_recorded_before_and_missing_after_is_lost_and_breaks_the_link():
    before = chain(6)
    after = before[:4] + chain(3, start=7, prev=before[-1]["hash"])  # 5 and 6 gone
    c = chain_continuity(before, after)
    assert not c.ok and c.lost == (5, 6) and c.broken_links == (7,)


def test_an_altered_hash_a_duplicate_and_a_new_branch_are_each_reported():
    before = chain(4)
    altered = [dict(e) for e in before]
    altered[1]["hash"] = "x" * 64
    c = chain_continuity(before, altered + [dict(altered[3])])
    assert c.altered == (2,) and "seq 4" in c.duplicated and 3 in c.broken_links and 2 in c.bad_hashes
    fork = chain(4) + chain(1, start=5, prev="y" * 64)  # not linked to seq 4
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
    fault.heal(FaultContext())  # healing what was never injected is a no-op


def test_a_lab_without_the_capability_says_so():
    from harness.lab.base import Lab

    class Bare(Lab):
        provider = "bare"
        up = down = endpoints = processes = steady_state_checks = set_replication = lambda self, *a: None

        def parts(self):
            return ()  # no part: no database tier to block

    with pytest.raises(NotImplementedError, match=r"acts through EventStoreBlock, which the lab \(Bare\) lacks"):
        build(FaultSpec("event_store_block", "database-primary")).inject(FaultContext(lab=Bare()))
