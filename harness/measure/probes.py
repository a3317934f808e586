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


@dataclass(frozen=True)
class Window:
    """One clock-aligned window (epoch seconds [start, end)) of time-weighted availability:
    each probe's answer stands for the time until the next probe; `observed_s` is how much of the
    window the probes covered and `downtime_s` how much of it they found unavailable."""

    start: float
    end: float
    probes: int
    failed: int
    observed_s: float
    downtime_s: float

    @property
    def observed_ratio(self) -> float | None:
        """Available share of the observed part of the window (None: nothing observed)."""
        return None if self.observed_s <= 0 else 1.0 - self.downtime_s / self.observed_s

    @property
    def window_ratio(self) -> float:
        """Available share of the whole window, the unobserved rest counted available."""
        return 1.0 - self.downtime_s / (self.end - self.start)


def downtime(history: History, window_s: float = 300, kinds: tuple[str, ...] = ("probe",),
             start: float | None = None, end: float | None = None) -> list[Window]:
    """Time-weighted unavailability per clock-aligned window of `window_s` seconds (the spec's
    5-minute granularity), from probe ops of `kinds` invoked in [start, end) on the history clock.

    A probe that did not answer ok makes the time from its invoke to the next probe's invoke
    (the last one: to its completion) unavailable; windows are aligned on wall-clock multiples of
    window_s, as a monitoring system buckets them, and a stretch across a boundary is split."""
    if window_s <= 0:
        raise ValueError(f"window_s must be positive, got {window_s}")
    probes = sorted((op for op in history.ops if op.kind in kinds
                     and (start is None or op.t_invoke >= start) and (end is None or op.t_invoke < end)),
                    key=lambda op: op.t_invoke)
    if not probes:
        return []
    windows: dict[int, list[float]] = {}    # index -> [probes, failed, observed, down]
    for i, op in enumerate(probes):
        until = probes[i + 1].t_invoke if i + 1 < len(probes) else op.done
        if end is not None:
            until = min(until, end)
        wall0, length = op.wall_invoke, max(0.0, until - op.t_invoke)
        index = math.floor(wall0 / window_s)
        windows.setdefault(index, [0, 0, 0.0, 0.0])
        windows[index][0] += 1
        windows[index][1] += op.outcome is not Outcome.OK
        t = wall0
        while length > 1e-12:   # split the stretch at window boundaries
            index = math.floor(t / window_s)
            piece = min(length, (index + 1) * window_s - t)
            w = windows.setdefault(index, [0, 0, 0.0, 0.0])
            w[2] += piece
            if op.outcome is not Outcome.OK:
                w[3] += piece
            t, length = t + piece, length - piece
    return [Window(i * window_s, (i + 1) * window_s, int(w[0]), int(w[1]), w[2], w[3])
            for i, w in sorted(windows.items())]
