"""Rules of the gates family: thresholds, unknown on missing data or errors, worst verdict wins."""

import math

import pytest

from harness.gates import (
    GATES,
    AtLeast,
    AtMost,
    AvailabilityGate,
    DuplicatedWrites,
    Equals,
    Gate,
    LostWrites,
    RpoSeconds,
    RtoSeconds,
    TransactionLagSeconds,
    UnknownGate,
    build_gate,
    drill_verdict,
    evaluate_gate,
    evaluate_gates,
)
from harness.model import GateResult, Verdict

PASS, FAIL, UNKNOWN = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN


def verdict(gate, context):
    return evaluate_gate(gate, context).verdict


@pytest.mark.parametrize(
    "measured, expected", [(3.2, PASS), (30.0, PASS), (30.01, FAIL)], ids=["under", "equal", "over"]
)
def test_rto_passes_at_or_under_target(measured, expected):
    assert verdict(RtoSeconds(30), {"rto_seconds": measured}) is expected


def test_rto_that_never_recovered_fails_and_says_so():
    result = evaluate_gate(RtoSeconds(30), {"rto_seconds": None})
    assert result.verdict is FAIL
    assert result.detail == "never recovered"


def test_a_missing_measurement_is_unknown_and_names_the_key():
    for gate in (RtoSeconds(30), RpoSeconds(300), LostWrites(), DuplicatedWrites(),
                 AvailabilityGate(), TransactionLagSeconds(), Equals("ServiceHealth", "Healthy")):
        result = evaluate_gate(gate, {})
        assert result.verdict is UNKNOWN, gate.id
        assert repr(gate.key) in result.detail


def test_rpo_none_is_unknown_not_pass():
    assert verdict(RpoSeconds(300), {"rpo_seconds": None}) is UNKNOWN


def test_nan_is_unknown_never_pass_or_fail():
    assert verdict(RpoSeconds(300), {"rpo_seconds": math.nan}) is UNKNOWN


def test_rpo_at_most_target():
    assert verdict(RpoSeconds(300), {"rpo_seconds": 0.0}) is PASS
    assert verdict(RpoSeconds(300), {"rpo_seconds": 301}) is FAIL


def test_lost_writes_default_to_none_allowed_and_accept_a_count_or_the_keys():
    assert verdict(LostWrites(), {"lost_writes": 0}) is PASS
    assert verdict(LostWrites(), {"lost_writes": 1}) is FAIL
    assert verdict(LostWrites(), {"lost_writes": ("k1",)}) is FAIL
    assert verdict(LostWrites(allowed=2), {"lost_writes": ["k1", "k2"]}) is PASS


def test_any_duplicated_write_fails():
    assert verdict(DuplicatedWrites(), {"duplicated_writes": 0}) is PASS
    assert verdict(DuplicatedWrites(), {"duplicated_writes": 1}) is FAIL


def test_availability_takes_the_worst_bucket():
    gate = AvailabilityGate(0.999)
    assert verdict(gate, {"availability": 0.9995}) is PASS
    assert verdict(gate, {"availability": [1.0, 0.9991]}) is PASS
    result = evaluate_gate(gate, {"availability": [1.0, 0.99, 1.0]})
    assert result.verdict is FAIL and result.measured == 0.99
    assert "bucket 1" in result.detail


def test_availability_with_a_bucket_without_probes_is_unknown_unless_another_fails():
    gate = AvailabilityGate(0.999)
    assert verdict(gate, {"availability": [1.0, None]}) is UNKNOWN
    assert verdict(gate, {"availability": [0.5, None]}) is FAIL
    assert verdict(gate, {"availability": []}) is UNKNOWN


def test_transaction_lag_must_be_at_most_five_seconds_before_failback():
    assert TransactionLagSeconds().threshold == 5.0
    assert verdict(TransactionLagSeconds(), {"transaction_lag_seconds": 4.9}) is PASS
    assert verdict(TransactionLagSeconds(), {"transaction_lag_seconds": 5.1}) is FAIL


def test_generic_gates_compare_a_named_value_and_take_its_name_as_id():
    health = Equals("ServiceHealth", "Healthy")
    assert health.id == "ServiceHealth"
    assert verdict(health, {"ServiceHealth": "Healthy"}) is PASS
    assert verdict(health, {"ServiceHealth": "Degraded"}) is FAIL
    assert verdict(AtMost("GraphThrottleCount", 5), {"GraphThrottleCount": 6}) is FAIL
    assert verdict(AtLeast("EventStoreWriteSuccess", 0.999, id="event-store"),
                   {"EventStoreWriteSuccess": 0.9999}) is PASS


def test_a_result_carries_measured_and_threshold():
    result = evaluate_gate(RtoSeconds(30), {"rto_seconds": 3.2})
    assert (result.id, result.measured, result.threshold) == ("rto_seconds", 3.2, "<= 30 s")
    assert "3.2" in result.detail


def test_an_exception_in_a_check_is_unknown_with_its_text_never_pass():
    # A string where a number belongs makes the comparison raise TypeError.
    result = evaluate_gate(RtoSeconds(30), {"rto_seconds": "fast"})
    assert result.verdict is UNKNOWN
    assert "TypeError" in result.detail

    class Broken(Gate):
        id = "broken"
        description = "raises"

        def evaluate(self, context):
            raise RuntimeError("probe exploded")

    result = evaluate_gate(Broken(), {})
    assert (result.id, result.verdict) == ("broken", UNKNOWN)
    assert "probe exploded" in result.detail


def test_a_check_that_returns_no_gate_result_is_unknown():
    class Sloppy(Gate):
        id = "sloppy"
        description = "returns a bare verdict"

        def evaluate(self, context):
            return Verdict.PASS

    assert evaluate_gate(Sloppy(), {}).verdict is UNKNOWN


def test_one_broken_gate_does_not_hide_the_others():
    results = evaluate_gates([RtoSeconds(30), LostWrites()], {"rto_seconds": object(), "lost_writes": 0})
    assert [r.verdict for r in results] == [UNKNOWN, PASS]


def test_the_registry_builds_every_gate_of_the_spec_by_id():
    assert {"rto_seconds", "rpo_seconds", "lost_writes", "duplicated_writes", "availability",
            "transaction_lag_seconds", "equals", "at_most", "at_least"} <= set(GATES)
    assert isinstance(build_gate("rto_seconds", target=60), RtoSeconds)
    gate = build_gate("equals", key="ServiceHealth", expected="Healthy")
    assert verdict(gate, {"ServiceHealth": "Healthy"}) is PASS


def test_an_unknown_gate_id_is_refused_with_the_known_ids():
    with pytest.raises(UnknownGate, match="unknown gate 'rto'.*rto_seconds"):
        build_gate("rto")


def result(v):
    return GateResult("g", "d", None, None, v)


@pytest.mark.parametrize(
    "verdicts, expected",
    [([PASS, PASS], PASS), ([PASS, UNKNOWN], UNKNOWN), ([UNKNOWN, FAIL, PASS], FAIL), ([], UNKNOWN)],
    ids=["all-pass", "unknown-beats-pass", "fail-beats-all", "no-gates"],
)
def test_the_drill_verdict_is_its_worst_gate(verdicts, expected):
    assert drill_verdict([result(v) for v in verdicts]) is expected
