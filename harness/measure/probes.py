"""Availability: share of probe operations ok, per fixed time bucket (5 minutes by default)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from harness.model import History, Outcome


@dataclass(frozen=True)
class Bucket:
    """Probes invoked in [start, end) on the history clock. ratio is None when total is 0."""

    start: float
    end: float
    ok: int
    total: int
    ratio: float | None


class Availability(NamedTuple):
    """Per-bucket figures and the overall ratio (None with no probes). Unpacks as a pair."""

    buckets: list[Bucket]
    overall: float | None

    @property
    def min_ratio(self) -> float | None:
        """Worst bucket that has probes; None when no bucket has any. See `gaps` for the rest."""
        ratios = [b.ratio for b in self.buckets if b.ratio is not None]
        return min(ratios) if ratios else None

    @property
    def gaps(self) -> int:
        """Buckets inside the probed span with no probe at all (availability unknown there)."""
        return sum(1 for b in self.buckets if b.ratio is None)

    @property
    def ratios(self) -> list[float | None]:
        """Per-bucket ratios in time order, None for gaps: the value the availability gate takes."""
        return [b.ratio for b in self.buckets]


def availability(history: History, bucket_seconds: float = 300, kind: str = "probe") -> Availability:
    """Probe ops of `kind` grouped by t_invoke into buckets from the first probe's t_invoke.

    Every probe counts in the total whatever its outcome; only ok counts as available (info,
    e.g. a timeout, and a probe that never completed are not ok). A bucket inside the span
    with no probe at all is kept with total 0 and ratio None: no evidence, not 100 %.
    """
    if bucket_seconds <= 0:
        raise ValueError(f"bucket_seconds must be positive, got {bucket_seconds}")
    probes = [op for op in history.ops if op.kind == kind]
    if not probes:
        return Availability([], None)
    t0 = min(op.t_invoke for op in probes)
    count = math.floor((max(op.t_invoke for op in probes) - t0) / bucket_seconds) + 1
    ok = [0] * count
    total = [0] * count
    for op in probes:
        i = math.floor((op.t_invoke - t0) / bucket_seconds)
        total[i] += 1
        ok[i] += op.outcome is Outcome.OK
    buckets = [
        Bucket(
            start=t0 + i * bucket_seconds,
            end=t0 + (i + 1) * bucket_seconds,
            ok=ok[i],
            total=total[i],
            ratio=ok[i] / total[i] if total[i] else None,
        )
        for i in range(count)
    ]
    return Availability(buckets, sum(ok) / sum(total))
