"""Faults of the backup and restore drills (spec section 3), through the lab's backup service.

``backup_halt`` stops the backup service taking snapshots (heal: it resumes, and takes what is
due at once); ``backup_corrupt`` writes a damaged new version of the newest snapshot's dump in a
backup bucket (truncated, or one byte flipped), which the object store keeps beside the good one
(heal: that version deleted, the good one is the latest again); ``database_loss`` loses the
primary region's database, every node killed and its data deleted (heal: when the drill has not
restored it, the restore runbook from the newest verified hourly snapshot, then the replicas
rebuilt and the failover controller watching). None lifts itself: none is time-limited.
"""

from __future__ import annotations

from ..lab.capabilities import Backups
from ..model import FaultSpec
from .base import Fault, FaultContext, FaultError, Param, register

BACKUP_SERVICE = "backup-service"
BUCKETS = ("backups", "backups-dr")
PRIMARY_REGION = "primary-region"


@register
class BackupHalt(Fault):
    TYPE = "backup_halt"
    NEEDS = frozenset({"backups"})
    DESCRIPTION = "the backup service stops taking snapshots; heal: it resumes (and takes what is due)"

    def __init__(self, spec: FaultSpec) -> None:
        super().__init__(spec)
        if spec.target != BACKUP_SERVICE:
            raise FaultError(f"fault {self.TYPE!r} on {spec.target!r}: the target must be {BACKUP_SERVICE!r}")

    def inject(self, ctx: FaultContext) -> None:
        self.uses(ctx, Backups).backup_service().halt()

    def heal(self, ctx: FaultContext) -> None:
        self.uses(ctx, Backups).backup_service().resume()


@register
class BackupCorrupt(Fault):
    TYPE = "backup_corrupt"
    NEEDS = frozenset({"backups"})
    DESCRIPTION = (
        "a damaged new version of the newest snapshot's dump in a backup bucket (target backups or "
        "backups-dr): truncated to half, or one byte flipped; heal: that version deleted"
    )
    PARAMS = {"how": Param(str, "truncate", choices=("truncate", "flip"))}

    def __init__(self, spec: FaultSpec) -> None:
        super().__init__(spec)
        if spec.target not in BUCKETS:
            raise FaultError(
                f"fault {self.TYPE!r} on {spec.target!r}: the target must be a backup bucket ({', '.join(BUCKETS)})"
            )
        self.snapshot_id: str | None = None
        self.written: tuple[str, str] | None = None  # (object key, version id) of the damaged version

    def inject(self, ctx: FaultContext) -> None:
        from ..backup import catalogue

        service = self.uses(ctx, Backups).backup_service()
        newest = next(iter(catalogue(service.store, self.spec.target)), None)
        if newest is None:
            raise FaultError(f"fault {self.TYPE!r}: bucket {self.spec.target} holds no snapshot to corrupt")
        ref = newest.objects[0]
        body = service.store.read(self.spec.target, ref.key)
        if not body:
            raise FaultError(f"fault {self.TYPE!r}: {self.spec.target}/{ref.key} cannot be read")
        if self.params["how"] == "truncate":
            damaged = body[: len(body) // 2]
        else:
            middle = len(body) // 2
            damaged = body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
        reply = service.store.s3.put_object(Bucket=self.spec.target, Key=ref.key, Body=damaged)
        self.snapshot_id, self.written = newest.snapshot_id, (ref.key, reply["VersionId"])
        service.forget()

    def heal(self, ctx: FaultContext) -> None:
        if self.written is None:
            return
        key, version = self.written
        service = self.uses(ctx, Backups).backup_service()
        service.store.s3.delete_object(Bucket=self.spec.target, Key=key, VersionId=version)
        self.written = None
        service.forget()

    def describe(self) -> str:
        what = f"snapshot {self.snapshot_id}" if self.snapshot_id else "the newest snapshot"
        return f"{self.TYPE} of {what} in {self.spec.target} ({self.params['how']})"


@register
class DatabaseLoss(Fault):
    TYPE = "database_loss"
    NEEDS = frozenset({"backups"})
    DESCRIPTION = (
        "the primary region's database is lost: every node SIGKILLed and its data deleted; heal: "
        "restored from the newest verified hourly snapshot unless the drill restored it, replicas rebuilt"
    )

    def __init__(self, spec: FaultSpec) -> None:
        super().__init__(spec)
        if spec.target != PRIMARY_REGION:
            raise FaultError(f"fault {self.TYPE!r} on {spec.target!r}: the target must be {PRIMARY_REGION!r}")
        self.lost: list[str] = []

    def inject(self, ctx: FaultContext) -> None:
        self.lost = self.uses(ctx, Backups).lose_database()

    def heal(self, ctx: FaultContext) -> None:
        backups = self.uses(ctx, Backups)
        if not backups.database_lost():
            return
        if backups.database_primary_lost():
            outcome = backups.restore_database()
            if not outcome.ok:
                why = outcome.candidates[-1].reason if outcome.candidates else "no snapshot"
                raise RuntimeError(f"the database could not be restored: {why}")
        backups.rebuild_database_replicas()

    def describe(self) -> str:
        return f"{self.TYPE} of {', '.join(self.lost) or self.spec.target} (SIGKILL, data deleted)"
