"""Steps of the evidence store drills."""

from __future__ import annotations

from pytest_bdd import parsers, then, when

from ..runner import common, evidence


@when("the link to the alternate region is cut")
def alternate_cut(drill):
    """Make the alternate region's bucket unreachable (Toxiproxy proxy down)."""
    evidence.cut_alternate_region(drill, drill.current)


@when(parsers.parse("an approved intent's evidence is committed {presence} a copy in the alternate region"))
def evidence_committed(drill, presence):
    """Create, evidence and approve an intent; presence is "with" or "without"."""
    evidence.commit_evidence(drill, drill.current, with_copy=presence == "with")


@when("the evidence store becomes unreachable")
def store_unreachable(drill):
    """Cut the link to the primary evidence store (Toxiproxy proxy down)."""
    evidence.cut_evidence_store(drill, drill.current)


@when(parsers.parse("the evidence store answers {status:d} to every request"))
def store_answers(drill, status):
    """Make the primary evidence store answer an HTTP error (through its fault gateway)."""
    evidence.store_answers(drill, drill.current, status)


@when("the evidence store recovers")
def store_recovers(drill):
    """Heal the most recent fault of the scenario."""
    common.heal_last_fault(drill, drill.current)


@then("publishing a pack without a validated copy is blocked with an explicit error")
def publish_blocked(drill):
    """503 with cause evidence_store and Impact = publish blocked."""
    evidence.publish_blocked(drill, drill.current)


@then("its retries back off exponentially")
def backoff(drill):
    """The refusal's attempts were spaced by waits doubling each time."""
    evidence.backoff_exponential(drill, drill.current)


@then("an event Impact = publish blocked is recorded")
def impact(drill):
    """An ImpactRecorded event reached the event store."""
    evidence.impact_recorded(drill, drill.current)


@then("a pack with a validated copy is published from the alternate region")
def fails_over(drill):
    """Publish succeeds from the alternate region only thanks to the validated copy."""
    evidence.publish_fails_over(drill, drill.current)


@then("publishing resumes")
def resumes(drill):
    """Publish succeeds from the primary store again."""
    evidence.publishing_resumes(drill, drill.current)
