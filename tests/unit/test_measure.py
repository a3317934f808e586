"""Rules of the measure family, checked on hand-built histories."""

import pytest

from harness.measure import (
    NoFinalRead,
    availability,
    duplicated_writes,
    lost_writes,
    rpo,
    rto,
    write_accounting,
)
from harness.model import Event, History, Op, Outcome

OK, FAIL, INFO = Outcome.OK, Outcome.FAIL, Outcome.INFO


def write(i, t, key, outcome=OK, latency=0.1):
    done = None if outcome is INFO else t + latency
    return Op(id=i, kind="write", t_invoke=t, t_complete=done, outcome=outcome, value=key)


def final_read(keys, t=1000.0, i=9999, outcome=OK):
    return Op(id=i, kind="final_read", t_invoke=t, t_complete=t + 0.5, outcome=outcome, value=keys)


def probe(i, t, outcome=OK):
    return Op(id=i, kind="probe", t_invoke=t, t_complete=t + 0.01, outcome=outcome)


def history(ops, events=()):
    return History(ops=tuple(ops), events=tuple(events))


INJECT_AT_10 = Event(kind="inject", name="db-primary-kill", t=10.0)
HEAL_AT_20 = Event(kind="heal", name="db-primary-kill", t=20.0)


# --- RTO ---------------------------------------------------------------------------------


def test_rto_is_time_from_injection_to_the_first_confirmed_write_after_it():
    ops = [write(1, 5.0, "a"), write(2, 11.0, "b", FAIL), write(3, 13.0, "c"), write(4, 14.0, "d")]
    h = history(ops + [final_read(["a", "c", "d"])], [INJECT_AT_10, HEAL_AT_20])
    result = rto(h)
    assert result.seconds == pytest.approx(3.1)
    assert result.phases["first_write"] == pytest.approx(3.1)
    assert "key 'c'" in result.verdict_reason


def test_rto_is_unknown_when_no_write_succeeds_after_the_fault():
    ops = [write(1, 5.0, "a"), write(2, 11.0, "b", FAIL), write(3, 12.0, "c", INFO)]
    h = history(ops + [final_read(["a"])], [INJECT_AT_10])
    result = rto(h)
    assert result.seconds is None
    assert result.fault_time == 10.0
    assert "never recovered" in result.verdict_reason
    assert "first_write" not in result.phases


def test_rto_ignores_an_acknowledged_write_that_is_not_read_back():
    ops = [write(1, 11.0, "lost"), write(2, 15.0, "kept")]
    h = history(ops + [final_read(["kept"])], [INJECT_AT_10])
    assert rto(h).seconds == pytest.approx(5.1)


def test_rto_ignores_writes_invoked_before_the_injection_even_if_they_complete_after():
    ops = [write(1, 9.0, "early", latency=3.0), write(2, 16.0, "late")]
    h = history(ops + [final_read(["early", "late"])], [INJECT_AT_10])
    assert rto(h).seconds == pytest.approx(6.1)


def test_rto_ignores_a_write_that_got_in_before_the_fault_was_in_place():
    """The event store block records "inject", then takes its lock; a write invoked in that moment
    commits ahead of the harm (0.07 s after the inject, seen on containers). It is no recovery:
    the recovering write is the first invoked once the fault is in place."""
    in_place = Event(kind="in_place", name="db-primary-kill", t=10.2)
    ops = [write(1, 10.05, "ahead", latency=0.02), write(2, 10.3, "blocked", FAIL), write(3, 12.0, "after")]
    h = history(ops + [final_read(["ahead", "after"])], [INJECT_AT_10, in_place, HEAL_AT_20])
    assert rto(h).seconds == pytest.approx(2.1)
    assert rto(history(ops + [final_read(["ahead", "after"])], [INJECT_AT_10, HEAL_AT_20])).seconds == pytest.approx(
        0.07
    )  # without the marker: the old measure


def test_rto_counts_from_the_fault_when_it_is_injected_before_the_first_write():
    inject = Event(kind="inject", name="api-down", t=0.0)
    h = history([write(1, 2.0, "a"), final_read(["a"])], [inject])
    assert rto(h).seconds == pytest.approx(2.1)


def test_rto_reports_each_recovery_phase_as_an_offset_from_injection():
    events = [
        Event(kind="detect", name="stale", t=3.0),  # before the fault: not a phase of it
        INJECT_AT_10,
        Event(kind="detect", name="lb-probe", t=11.5),
        Event(kind="promote", name="replica", t=14.0),
        Event(kind="reconnect", name="pool", t=15.0),
        Event(kind="detect", name="again", t=30.0),
        HEAL_AT_20,
    ]
    h = history([write(1, 16.0, "a"), final_read(["a"])], events)
    phases = rto(h).phases
    assert phases == pytest.approx({"detect": 1.5, "promote": 4.0, "reconnect": 5.0, "first_write": 6.1})


def test_rto_measures_the_named_fault_when_several_were_injected():
    events = [INJECT_AT_10, Event(kind="inject", name="s3-outage", t=50.0)]
    ops = [write(1, 12.0, "a"), write(2, 55.0, "b")]
    h = history(ops + [final_read(["a", "b"])], events)
    assert rto(h, fault="s3-outage").seconds == pytest.approx(5.1)
    assert rto(h).seconds == pytest.approx(2.1)


def test_rto_is_unknown_with_a_reason_when_there_is_no_inject_event():
    h = history([write(1, 1.0, "a"), final_read(["a"])])
    result = rto(h)
    assert result.seconds is None and result.fault_time is None
    assert "no inject event" in result.verdict_reason
    assert "'nope'" in rto(h, fault="nope").verdict_reason


def test_rto_raises_no_final_read_when_recovery_cannot_be_confirmed():
    h = history([write(1, 11.0, "a")], [INJECT_AT_10])
    with pytest.raises(NoFinalRead):
        rto(h)


# --- write accounting --------------------------------------------------------------------


def test_nothing_is_lost_when_every_acknowledged_write_is_read_back():
    h = history([write(1, 1.0, "a"), write(2, 2.0, "b"), final_read(["a", "b"])], [INJECT_AT_10])
    acc = write_accounting(h)
    assert (acc.attempted, acc.acknowledged) == (2, 2)
    assert acc.lost == () and acc.duplicated == () and acc.unexpected == ()
    assert rpo(h).seconds == 0.0 and rpo(h).lost_count == 0


def test_every_acknowledged_write_is_lost_when_the_final_read_is_empty():
    h = history([write(1, 1.0, "a"), write(2, 2.0, "b"), final_read([])], [INJECT_AT_10])
    assert lost_writes(h) == ("a", "b")
    result = rpo(h)
    assert result.lost_count == 2
    assert result.first_lost_key == "a"
    assert result.seconds == pytest.approx(10.0 - 1.1)


def test_lost_writes_are_ordered_by_acknowledgement_not_invocation():
    ops = [write(1, 1.0, "slow", latency=5.0), write(2, 2.0, "fast")]
    h = history(ops + [final_read([])], [INJECT_AT_10])
    assert lost_writes(h) == ("fast", "slow")
    assert rpo(h).first_lost_key == "fast"


def test_failed_writes_are_never_lost():
    h = history([write(1, 1.0, "a", FAIL), final_read([])])
    acc = write_accounting(h)
    assert acc.attempted == 1 and acc.acknowledged == 0 and acc.lost == ()


def test_indeterminate_writes_present_are_recovered_and_absent_are_not_lost():
    ops = [write(1, 1.0, "kept", INFO), write(2, 2.0, "gone", INFO), write(3, 3.0, "ok")]
    h = history(ops + [final_read(["kept", "ok"])])
    acc = write_accounting(h)
    assert acc.recovered_indeterminate == ("kept",)
    assert acc.lost == ()
    assert acc.acknowledged == 1 and acc.attempted == 3


def test_each_extra_copy_of_a_key_counts_as_one_duplicate():
    ops = [write(1, 1.0, "a"), write(2, 2.0, "b")]
    h = history(ops + [final_read(["a", "b", "a", "a", "b"])])
    assert sorted(duplicated_writes(h)) == ["a", "a", "b"]


def test_keys_read_that_no_write_attempted_are_unexpected():
    h = history([write(1, 1.0, "a"), final_read(["a", "ghost", "ghost"])])
    acc = write_accounting(h)
    assert acc.unexpected == ("ghost",)
    assert acc.duplicated == ("ghost",)


def test_the_last_successful_final_read_is_the_one_that_counts():
    ops = [
        write(1, 1.0, "a"),
        final_read(["a"], t=100.0, i=50),
        final_read([], t=200.0, i=51),
        final_read(["a"], t=300.0, i=52, outcome=FAIL),
    ]
    assert lost_writes(history(ops)) == ("a",)


def test_accounting_raises_no_final_read_instead_of_reporting_nothing_lost():
    h = history([write(1, 1.0, "a"), final_read(["a"], outcome=INFO)])
    with pytest.raises(NoFinalRead):
        lost_writes(h)
    with pytest.raises(NoFinalRead):
        rpo(h)


def test_a_final_read_value_that_is_a_string_is_refused():
    with pytest.raises(TypeError, match="iterable of keys"):
        write_accounting(history([write(1, 1.0, "ab"), final_read("ab")]))


# --- RPO ---------------------------------------------------------------------------------


def test_rpo_is_clamped_to_zero_when_the_lost_writes_were_acknowledged_after_the_fault():
    ops = [write(1, 1.0, "a"), write(2, 12.0, "b")]
    h = history(ops + [final_read(["a"])], [INJECT_AT_10])
    result = rpo(h)
    assert result.seconds == 0.0
    assert result.lost_count == 1 and result.first_lost_key == "b"


def test_rpo_is_unknown_when_writes_were_lost_but_no_fault_was_recorded():
    h = history([write(1, 1.0, "a"), final_read([])])
    result = rpo(h)
    assert result.seconds is None and result.lost_count == 1


def test_rpo_is_measured_from_the_named_fault():
    events = [INJECT_AT_10, Event(kind="inject", name="later", t=40.0)]
    h = history([write(1, 5.0, "a"), final_read([])], events)
    assert rpo(h, fault="later").seconds == pytest.approx(34.9)


# --- availability ------------------------------------------------------------------------


def test_availability_is_empty_and_unknown_without_probes():
    result = availability(history([write(1, 1.0, "a")]))
    assert result.buckets == [] and result.overall is None and result.min_ratio is None


def test_availability_buckets_split_at_the_five_minute_boundary():
    t0 = 1000.0
    ops = [probe(i, t0 + i * 30.0) for i in range(10)]  # 0..270 s: bucket 0
    ops[3] = probe(3, t0 + 90.0, FAIL)
    ops += [probe(20, t0 + 299.999), probe(21, t0 + 300.0, INFO), probe(22, t0 + 330.0)]
    buckets, overall = availability(history(ops))
    assert [(b.start, b.end) for b in buckets] == [(t0, t0 + 300), (t0 + 300, t0 + 600)]
    assert (buckets[0].ok, buckets[0].total) == (10, 11)
    assert (buckets[1].ok, buckets[1].total) == (1, 2)
    assert buckets[1].ratio == 0.5
    assert overall == pytest.approx(11 / 13)


def test_availability_keeps_a_bucket_without_probes_as_unknown_not_full():
    ops = [probe(1, 0.0), probe(2, 700.0)]
    result = availability(history(ops))
    assert [b.total for b in result.buckets] == [1, 0, 1]
    assert result.ratios == [1.0, None, 1.0]
    assert result.gaps == 1
    assert result.min_ratio == 1.0
    assert result.overall == 1.0


def test_availability_counts_only_ops_of_the_requested_kind():
    ops = [probe(1, 0.0), probe(2, 1.0, FAIL), write(3, 0.5, "a", FAIL)]
    ops.append(Op(id=4, kind="health", t_invoke=0.2, t_complete=0.3, outcome=OK))
    assert availability(history(ops)).overall == 0.5
    assert availability(history(ops), kind="health").overall == 1.0
    assert availability(history(ops), bucket_seconds=0.5).min_ratio == 0.0


def test_availability_refuses_a_non_positive_bucket():
    with pytest.raises(ValueError, match="bucket_seconds"):
        availability(history([probe(1, 0.0)]), bucket_seconds=0)


# --- RTO on what the fault blocks ----------------------------------------------------------


def publish(i, t, key, outcome=OK):
    return Op(id=i, kind="publish", t_invoke=t, t_complete=t + 0.2, outcome=outcome, value=key)


def test_rto_on_publish_counts_only_publishes_read_back_published():
    read = Op(
        id=99,
        kind="final_read",
        t_invoke=100.0,
        t_complete=100.5,
        outcome=OK,
        value=["a", "b", "c"],
        detail={"published": ["c"]},
    )
    ops = [write(1, 11.0, "a"), publish(2, 12.0, "b"), publish(3, 15.0, "c"), read]
    result = rto(history(ops, [INJECT_AT_10]), on="publish")
    assert result.seconds == pytest.approx(5.2) and "first_publish" in result.phases


def test_rto_on_an_apply_comes_from_the_platforms_own_log():
    def request(t, status):
        return Event(
            kind="platform_request",
            name="platform:jamf",
            t=t,
            source="platform:jamf",
            detail={"idempotency_key": "k", "status": status},
        )

    events = [
        INJECT_AT_10,
        request(11.0, 503),
        request(12.0, 503),
        request(17.5, 200),
        Event(
            kind="platform_request",
            name="platform:sccm",
            t=13.0,
            source="platform:sccm",
            detail={"idempotency_key": "x", "status": 200},
        ),
    ]
    assert rto(history([], events), on="apply:jamf").seconds == pytest.approx(7.5)
    assert rto(history([], events[:3]), on="apply:jamf").seconds is None


def test_rto_refuses_an_operation_it_cannot_measure_on():
    with pytest.raises(ValueError, match="apply:<platform>"):
        rto(history([write(1, 11.0, "a"), final_read(["a"])], [INJECT_AT_10]), on="approve")


# --- downtime: the spec's 5-minute windows, time-weighted --------------------------------------


def timed_probe(i, t, outcome=OK, wall0=1_700_000_000.0):
    return Op(id=i, kind="probe", t_invoke=t, t_complete=t + 0.01, outcome=outcome, wall_invoke=wall0 + t)


def test_downtime_weighs_each_failed_probe_by_the_time_until_the_next():
    from harness.measure.probes import downtime

    ops = [timed_probe(i, i * 0.1, FAIL if 10 <= i < 14 else OK) for i in range(30)]
    (window,) = downtime(history(ops))
    assert window.downtime_s == pytest.approx(0.4) and window.failed == 4 and window.probes == 30
    assert window.window_ratio == pytest.approx(1 - 0.4 / 300)


def test_downtime_windows_are_aligned_on_the_wall_clock_and_split_a_stretch_across_them():
    from harness.measure.probes import downtime

    wall0 = 1_700_000_100.0 - 0.25  # 0.25 s before a 5-minute boundary (1_700_000_100 % 300 == 0)
    ops = [timed_probe(0, 0.0, FAIL, wall0), timed_probe(1, 0.5, OK, wall0)]
    first, second = downtime(history(ops))
    assert first.downtime_s == pytest.approx(0.25) and second.downtime_s == pytest.approx(0.25)
    assert second.start == 1_700_000_100.0


def test_downtime_inside_a_span_ignores_probes_outside_it():
    from harness.measure.probes import downtime

    ops = [timed_probe(i, float(i), FAIL if i < 5 else OK) for i in range(10)]
    (window,) = downtime(history(ops), start=5.0)
    assert window.downtime_s == 0.0 and window.probes == 5
