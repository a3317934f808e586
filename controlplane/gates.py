"""Gates the service enforces itself (spec section 5): each returns a Refusal or None.

Publish gates run in this order; the first refusal wins:
1. ServiceHealth = Healthy (database writable, event store writable, evidence store not down,
   API tier with at least serve --min-instances instances serving); the refusal's cause names
   the first part that is down (database, event_store, evidence_store, api_tier). Only
   serve --unsafe-publish-while-unhealthy skips this gate (negative drills only; every later
   gate still runs);
2. BackupAgeHours <= 24 (spec rule 3; section 3 "LastBackupAge <= 24h"): the age of the newest
   snapshot in the backup catalogue (controlplane.backups, serve --backup-bucket), on the Control
   Plane's clock, from the /health part ``backups``; refused 503 with cause "backup" when it is
   older, when there is no snapshot or when the catalogue is unreadable. It is its own gate:
   the ServiceHealth gate leaves the backups part out, and --unsafe-publish-while-unhealthy does
   not skip it. Without --backup-bucket it is off (serve logs that it is not enforced);
3. Approval recorded (checked before the evidence check and again inside the publish transaction);
4. ValidatedCopyExists: the evidence pack is readable in the primary store, or, when the primary
   store is unavailable, its alternate-region copy is validated and re-checked (api.evidence_gate).
A publish blocked because of the evidence store answers "Impact": "publish blocked".
Approval gate: EvidencePackState = Committed before an approval is recorded (spec rule 1),
refused 409 with gate EvidencePackState; only serve --unsafe-approve-without-evidence skips it
(negative drills only: the drill's gate approval_refused_without_committed_evidence must fail).
"""

from __future__ import annotations

from dataclasses import dataclass, field

PUBLISH_BLOCKED = "publish blocked"
MAX_BACKUP_AGE_HOURS = 24.0  # spec rule 3 (controlplane.backups.MAX_AGE_HOURS)


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


def service_health(health: dict, ignore: tuple[str, ...] = ("backups",)) -> Refusal | None:
    """Refuse a publish unless ServiceHealth = Healthy, judged over the parts not in ``ignore``
    (the backups part is the BackupAgeHours gate's); cause names the first part that is down."""
    down = [
        (name, part) for name, part in health["components"].items() if part["status"] == "down" and name not in ignore
    ]
    if not down:
        return None
    reasons = "; ".join(f"{name}: {part['detail']}" for name, part in down)
    return Refusal(
        503,
        "ServiceHealth",
        f"publish refused: ServiceHealth = Unhealthy ({reasons})",
        cause=down[0][0] if down else None,
    )


def backup_age(age_hours: float | None, detail: str) -> Refusal | None:
    """Refuse a publish unless BackupAgeHours <= 24 (spec rule 3): ``age_hours`` is the newest
    snapshot's age on the Control Plane's clock, None when unknown (no snapshot, catalogue
    unreadable); ``detail`` is the backups part's detail, quoted in the error."""
    if age_hours is not None and age_hours <= MAX_BACKUP_AGE_HOURS:
        return None
    if age_hours is None:
        error = f"publish refused: BackupAgeHours unknown ({detail})"
    else:
        error = f"publish refused: BackupAgeHours = {age_hours:.1f} > {MAX_BACKUP_AGE_HOURS:g} ({detail})"
    return Refusal(
        503,
        "BackupAgeHours",
        error,
        cause="backup",
        extra={"BackupAgeHours": None if age_hours is None else round(age_hours, 2)},
    )


def evidence_committed(committed: bool) -> Refusal | None:
    """Refuse an approval unless the intent's evidence pack is Committed."""
    return None if committed else evidence_not_committed()


def evidence_not_committed() -> Refusal:
    """The refusal of an intent whose evidence pack is not Committed."""
    return Refusal(
        409, "EvidencePackState", "approval refused: EvidencePackState = Pending (evidence pack not committed)"
    )


def approved(state: str) -> Refusal | None:
    """Refuse a publish unless the intent has a recorded approval."""
    if state in ("Approved", "Published"):
        return None
    return Refusal(409, "Approval", f"publish refused: Approval missing (intent state = {state})")


def evidence_unavailable(reason: str, attempts: list[dict], **extra) -> Refusal:
    """Refuse a publish: the primary store is unavailable and no validated alternate-region copy."""
    return Refusal(
        503,
        "ValidatedCopyExists",
        f"publish blocked: evidence store unavailable ({reason})",
        cause="evidence_store",
        extra={"Impact": PUBLISH_BLOCKED, "attempts": attempts, **extra},
    )
