"""WORM and 7-year retention (spec 1.3 and 3): the evidence objects and event-store exports a drill
wrote carry Object Lock COMPLIANCE with a retain-until at least 7 years after they were written.

Judged from the lock the object store itself reports (the harness's own S3 HEAD of every object
the drill wrote: op ``store_lock`` with detail {"scope": "evidence" | "eventstore"}), never from what
the Control Plane says it asked for. The op's value is a list of::

    {"object_key", "region" or "bucket", "version_id", "mode" (the ObjectLockMode the store
     answered, or None), "retain_until" (epoch, or None), "written_at" (epoch: when the harness
     asked for the write, before the store received it)}

7 years is 2557 days (7 x 365 plus the at most 2 leap days any 7 years hold): a retain-until that
far from the write never falls short of 7 calendar years. What this cannot prove in the lab: moto
reports the COMPLIANCE mode it was given but does not enforce every COMPLIANCE rule (it lets a
COMPLIANCE retention be shortened), so on the lab the gate proves the lock the store reports, and
only a real S3 refuses to lift it.
"""

from __future__ import annotations

from harness.gates.base import Gate, last_op, register
from harness.model import GateResult, History, OpKind

DAY = 86400.0
SEVEN_YEARS_DAYS = 2557
LOCK_SLACK_S = 60.0  # the store's clock against the harness's, and whole-second lock dates
MODE = "COMPLIANCE"


@register
class WormRetention(Gate):
    """Every object the drill wrote in `scope` is locked COMPLIANCE until at least 2557 days (7 years)
    after it was written, as the store reports it."""

    judges = "system"

    def __init__(self, scope: str = "evidence", days: int = SEVEN_YEARS_DAYS):
        what = {"evidence": "evidence object", "eventstore": "event-store export"}.get(scope, f"{scope} object")
        self.scope, self.days = scope, days
        self.id = f"worm_retention_{scope}"
        self.threshold = f"Object Lock {MODE}, retain-until >= written + {days} d (7 years)"
        self.description = (
            f"Every {what} the drill wrote is WORM: Object Lock {MODE} for at least 7 years "
            f"(the lock the store reports)"
        )

    def evaluate(self, history: History) -> GateResult:
        read = last_op(history, OpKind.STORE_LOCK, scope=self.scope)
        if read is None:
            return self.unknown(f"the locks of the {self.scope} objects the drill wrote were not read")
        if not read.ok:
            return self.unknown(f"the object store could not be read: {read.error}")
        objects = [o for o in (read.value or []) if isinstance(o, dict)]
        if not objects:
            return self.unknown(f"the drill wrote no {self.scope} object whose lock could be read")
        modes = sorted({str(o.get("mode")) for o in objects})
        held = [
            (o["retain_until"] - o["written_at"]) / DAY
            for o in objects
            if isinstance(o.get("retain_until"), (int, float)) and isinstance(o.get("written_at"), (int, float))
        ]
        short = [
            str(o.get("object_key"))
            for o in objects
            if o.get("mode") != MODE
            or not isinstance(o.get("retain_until"), (int, float))
            or not isinstance(o.get("written_at"), (int, float))
            or o["retain_until"] < o["written_at"] + self.days * DAY - LOCK_SLACK_S
        ]
        measured = {
            "objects": len(objects),
            "modes": modes,
            "min_retain_days": round(min(held), 2) if held else None,
            "not_locked": short[:10],
        }
        detail = "" if not short else (f"{len(short)} of {len(objects)} object(s) not locked {MODE} for {self.days} d")
        return self.judge(not short, measured, detail)
