"""Gates the service enforces itself (spec section 5): each returns a Refusal or None.

Publish gates run in this order; the first refusal wins:
1. ServiceHealth = Healthy (database writable, event store writable, evidence store not down,
   API tier with at least serve --min-instances instances serving); the refusal's cause names
   the first part that is down (database, event_store, evidence_store, api_tier). Only
   serve --unsafe-publish-while-unhealthy skips this gate (negative drills only; every later
   gate still runs);
2. BackupAgeHours <= 24 (spec rule 3): not enforced yet, see ``backup_age``;
3. Approval recorded (checked before the evidence check and again inside the publish transaction);
4. ValidatedCopyExists: the evidence pack is readable in the primary store, or, when the primary
   store is unavailable, its alternate-region copy is validated and re-checked (api.evidence_gate).
A publish blocked because of the evidence store answers "Impact": "publish blocked".
Approval gate: EvidencePackState = Committed before an approval is recorded (spec rule 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

PUBLISH_BLOCKED = "publish blocked"


@dataclass(frozen=True)
class Refusal:
    """Why a gate refused: the HTTP status and the JSON body to answer with."""

    status: int
    gate: str
    error: str
    cause: str | None = None
    extra: dict = field(default_factory=dict)  # more fields of the body (Impact, attempts, ...)

    def body(self) -> dict:
        body = {"error": self.error, "gate": self.gate}
        if self.cause:
            body["cause"] = self.cause
        return {**body, **self.extra}


def service_health(health: dict) -> Refusal | None:
    """Refuse a publish unless ServiceHealth = Healthy; cause names the first part that is down."""
    if health["ServiceHealth"] == "Healthy":
        return None
    down = [(name, part) for name, part in health["components"].items() if part["status"] == "down"]
    reasons = "; ".join(f"{name}: {part['detail']}" for name, part in down)
    return Refusal(503, "ServiceHealth", f"publish refused: ServiceHealth = Unhealthy ({reasons})",
                   cause=down[0][0] if down else None)


def backup_age(last_backup_age_hours: float | None = None) -> Refusal | None:
    """BackupAgeHours <= 24 (spec rule 3). Placeholder: backups are a later slice, so this
    gate passes until the backup catalogue exists; wire it in publish() between the
    ServiceHealth and Approval gates."""
    return None


def evidence_committed(committed: bool) -> Refusal | None:
    """Refuse an approval unless the intent's evidence pack is Committed."""
    if committed:
        return None
    return Refusal(409, "EvidencePackState",
                   "approval refused: EvidencePackState = Pending (evidence pack not committed)")


def approved(state: str) -> Refusal | None:
    """Refuse a publish unless the intent has a recorded approval."""
    if state in ("Approved", "Published"):
        return None
    return Refusal(409, "Approval", f"publish refused: Approval missing (intent state = {state})")


def evidence_unavailable(reason: str, attempts: list[dict], **extra) -> Refusal:
    """Refuse a publish: the primary store is unavailable and no validated alternate-region copy."""
    return Refusal(503, "ValidatedCopyExists", f"publish blocked: evidence store unavailable ({reason})",
                   cause="evidence_store", extra={"Impact": PUBLISH_BLOCKED, "attempts": attempts, **extra})
