"""Steps of the evidence store drills."""

from __future__ import annotations

from pytest_bdd import parsers

from ..lab.targets import EVIDENCE_GATEWAY, proxy
from ..runner import common, evidence
from .registry import drill_step


@drill_step(
    "when", "the link to the alternate region is cut", needs=("evidence_links",), touches=(proxy("evidence_replica"),)
)
def alternate_cut(scenario):
    """Make the alternate region's bucket unreachable (Toxiproxy proxy down)."""
    evidence.cut_alternate_region(scenario)


@drill_step(
    "when",
    parsers.parse("an approved intent's evidence is committed {presence} a copy in the alternate region"),
    needs=("evidence_read",),
)
def evidence_committed(scenario, presence):
    """Create, evidence and approve an intent (presence "with" or "without"), then read the
    alternate bucket for the pack's copy."""
    evidence.commit_evidence(scenario, with_copy=presence == "with")


@drill_step(
    "when", "the evidence store becomes unreachable", needs=("evidence_links",), touches=(proxy("evidence_store"),)
)
def store_unreachable(scenario):
    """Cut the link to the primary evidence store (Toxiproxy proxy down)."""
    evidence.cut_evidence_store(scenario)


@drill_step(
    "when",
    parsers.parse("the evidence store answers {status:d} to every request"),
    needs=("evidence_http_errors",),
    touches=(EVIDENCE_GATEWAY,),
)
def store_answers(scenario, status):
    """Make the primary evidence store answer an HTTP error (through its fault gateway)."""
    evidence.store_answers(scenario, status)


@drill_step("when", "the evidence store recovers")
def store_recovers(scenario):
    """Heal the active fault on the evidence store."""
    common.restore_link(scenario, "evidence store")


@drill_step("then", "publishing a pack without a validated copy is blocked with an explicit error")
def publish_blocked(scenario):
    """503 with cause evidence_store and Impact = publish blocked."""
    evidence.publish_blocked(scenario)


@drill_step("then", "its retries back off exponentially", needs=("evidence_http_errors",))
def backoff(scenario):
    """The store received the refusal's attempts spaced by waits doubling each time."""
    evidence.backoff_exponential(scenario)


@drill_step("then", "an event Impact = publish blocked is recorded")
def impact(scenario):
    """An ImpactRecorded event about the refused intent reached the event store."""
    evidence.impact_recorded(scenario)


@drill_step("then", "a pack with a validated copy is published from the alternate region")
def fails_over(scenario):
    """The pack whose copy was validated is published while the primary store is out."""
    evidence.publish_fails_over(scenario)


@drill_step("then", "publishing resumes")
def resumes(scenario):
    """The blocked pack is published once the store is healthy."""
    evidence.publishing_resumes(scenario)


@drill_step("then", "the workload's publishes go through again")
def workload_publishes(scenario):
    """Wait for a publish of the workload accepted after the store recovered (what RTO is measured on)."""
    evidence.workload_publishes_resume(scenario)


@drill_step(
    "then",
    "a test Deployment Intent is submitted, its evidence pack ingested and its correlation id captured",
    needs=("evidence_read", "siem"),
)
def smoke_verified(scenario):
    """Smoke verification: a test intent and its evidence pack under their own correlation id; the
    pack read back from the evidence store, its events from the event store, its SIEM lines."""
    evidence.smoke_verification(scenario)


@drill_step(
    "then", "every evidence object the drill wrote is locked COMPLIANCE for at least 7 years", needs=("evidence_read",)
)
def evidence_locked(scenario):
    """WORM (spec 1.3 and 3): the Object Lock the store reports (HEAD) for every evidence object the
    drill wrote, in both regions: COMPLIANCE, retain-until >= 2557 days after the write."""
    evidence.evidence_locked(scenario)


@drill_step("then", "approving an intent whose evidence pack is not Committed is refused naming EvidencePackState")
def approval_refused(scenario):
    """Spec rule 1: an intent whose evidence upload cannot commit (in flight, then refused) is not
    approved: each approval answered 4xx naming EvidencePackState, no ApprovalRecorded event, the
    intent read back not Approved."""
    evidence.approve_uncommitted(scenario)
