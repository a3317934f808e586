"""The spec's numeric validation rules: RTO, RPO, lost and duplicated writes, availability, TransactionLag."""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

from harness.gates.base import Context, ThresholdGate, register
from harness.model import GateResult, Verdict


def _count(raw: Any) -> Any:
    # A list of keys counts as its length; a number stays a number.
    if isinstance(raw, Sized) and not isinstance(raw, (str, bytes)):
        return len(raw)
    return raw


@register
class RtoSeconds(ThresholdGate):
    """RTO <= target. RTO None means the service never recovered: FAIL, not unknown."""

    id = key = "rto_seconds"
    unit = "s"

    def __init__(self, target: float, **kw: Any) -> None:
        super().__init__(target, **kw)

    def describe(self) -> str:
        return f"Recovery time (fault to first write read back) <= {self.threshold} s"

    def when_none(self) -> tuple[Verdict, str]:
        return Verdict.FAIL, "never recovered"


@register
class RpoSeconds(ThresholdGate):
    """RPO <= target seconds."""

    id = key = "rpo_seconds"
    unit = "s"

    def __init__(self, target: float, **kw: Any) -> None:
        super().__init__(target, **kw)

    def describe(self) -> str:
        return f"Recovery point (data loss window) <= {self.threshold} s"


@register
class LostWrites(ThresholdGate):
    """Acknowledged writes absent after recovery <= allowed (default 0). Accepts a count or the keys."""

    id = key = "lost_writes"

    def __init__(self, allowed: int = 0, **kw: Any) -> None:
        super().__init__(allowed, **kw)

    def describe(self) -> str:
        return f"Acknowledged writes lost <= {self.threshold}"

    def measure(self, raw: Any) -> Any:
        return _count(raw)


@register
class DuplicatedWrites(ThresholdGate):
    """Writes applied more than once == 0 (Connector idempotency). Accepts a count or the keys."""

    id = key = "duplicated_writes"
    comparator = "=="

    def __init__(self, allowed: int = 0, **kw: Any) -> None:
        super().__init__(allowed, **kw)

    def describe(self) -> str:
        return "No write applied twice (duplicated writes == 0)"

    def measure(self, raw: Any) -> Any:
        return _count(raw)


@register
class AvailabilityGate(ThresholdGate):
    """Worst 5-minute bucket availability >= target (default 0.999).

    The context value is either one ratio (already the worst bucket) or the per-bucket
    ratios (or Bucket objects), as `measure.availability(...).ratios` gives them. A bucket below target is FAIL; otherwise a bucket without probes (None) or
    no bucket at all is UNKNOWN.
    """

    id = key = "availability"
    comparator = ">="

    def __init__(self, target: float = 0.999, **kw: Any) -> None:
        super().__init__(target, **kw)

    def describe(self) -> str:
        return f"Probe availability in every 5-minute bucket >= {self.threshold:.3%}"

    def evaluate(self, context: Context) -> GateResult:
        raw = context.get(self.key)
        if raw is None or isinstance(raw, (int, float)):
            return super().evaluate(context)
        ratios = [getattr(r, "ratio", r) for r in raw]  # ratios or measure.Bucket objects
        known = [r for r in ratios if r is not None]
        if known and min(known) < self.threshold:
            worst = min(known)
            return self.result(worst, Verdict.FAIL, f"bucket {ratios.index(worst)} at {worst:.4%}")
        if not ratios or len(known) < len(ratios):
            gaps = len(ratios) - len(known)
            detail = f"{gaps} bucket(s) without probes" if ratios else "no availability buckets"
            return self.result(min(known) if known else None, Verdict.UNKNOWN, detail)
        worst = min(known)
        return self.result(worst, Verdict.PASS, f"worst of {len(ratios)} bucket(s) {worst:.4%}")


@register
class TransactionLagSeconds(ThresholdGate):
    """Replication TransactionLag <= 5 s before failback (Database row of the matrix)."""

    id = key = "transaction_lag_seconds"
    unit = "s"

    def __init__(self, target: float = 5.0, **kw: Any) -> None:
        super().__init__(target, **kw)

    def describe(self) -> str:
        return f"TransactionLag <= {self.threshold} s before failback"
