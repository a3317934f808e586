"""Rule 2 is stated only where it has something of the deployment's to judge: a history with no
acknowledged operation, no observed failover and no event the deployment logged (a probes-only
chaos run whose latency failed nothing over) makes it n/a with its reason, never a pass on the
events the harness forwarded; any of the three makes it apply."""

from harness.gates.eventstore import CorrelationIdsRecorded
from tests.unit.gates.builder import H
from tests.unit.gates.cases import BLOCK, rule2


def forwarded_only():
    return rule2(
        ops=False,
        manager=False,
        history=H()
        .inject(BLOCK, 10.0, event_id="ev-1", forwarded=True)
        .heal(BLOCK, 20.0, event_id="ev-3", forwarded=True),
    )


def test_only_forwarded_events_and_nothing_else_is_not_applicable_naming_why():
    why = CorrelationIdsRecorded().nothing_to_judge(forwarded_only())
    assert why is not None and "no operation of the harness was acknowledged and no failover happened" in why
    assert "2 event(s) the harness forwarded delivered, not counted" in why


def test_acknowledged_operations_or_an_observed_failover_make_it_apply():
    assert CorrelationIdsRecorded().nothing_to_judge(rule2()) is None
    assert CorrelationIdsRecorded().nothing_to_judge(rule2(ops=False)) is None  # the failover manager's events
    # a failover the harness observed that the deployment logged nothing for: judged (and failed), not n/a
    observed = rule2(ops=False, manager=False)
    assert CorrelationIdsRecorded().nothing_to_judge(observed) is None


def test_an_unread_event_store_is_not_a_reason_to_skip_the_rule():
    assert (
        CorrelationIdsRecorded().nothing_to_judge(H().inject(BLOCK, 10.0, event_id="ev-1", forwarded=True).build())
        is None
    )
