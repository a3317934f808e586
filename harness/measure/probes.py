"""Availability, from the harness's own requests.

The spec's 99.9% as an error budget at 5-minute granularity (`error_budget`): every request the
harness made to the system under drill (writes, reads, approvals, publishes, evidence uploads and
probes; never its reads of the lab's internals) is served or not, judged on the request itself
(`served`), never on the health the Control Plane reports about itself. Requests are grouped in
clock-aligned 5-minute windows; a window is good when at least the target share (99.9%) of its
requests were served; the SLO period (30 days: 8,640 windows) allows (1 - target) of its windows
bad (8.64), and a drill's bad windows use that share of the period's budget.

Also kept: the share of probe answers ok per bucket (`availability`) and the probes' time-weighted
downtime (`downtime`, which the chaos runs' stop condition reads)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from harness.model import History, Op, Outcome


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


def downtime(
    history: History,
    window_s: float = 300,
    kinds: tuple[str, ...] = ("probe",),
    start: float | None = None,
    end: float | None = None,
) -> list[Window]:
    """Time-weighted unavailability per clock-aligned window of `window_s` seconds (the spec's
    5-minute granularity), from probe ops of `kinds` invoked in [start, end) on the history clock.

    A probe that did not answer ok makes the time from its invoke to the next probe's invoke
    (the last one: to its completion) unavailable; windows are aligned on wall-clock multiples of
    window_s, as a monitoring system buckets them, and a stretch across a boundary is split."""
    if window_s <= 0:
        raise ValueError(f"window_s must be positive, got {window_s}")
    probes = sorted(
        (
            op
            for op in history.ops
            if op.kind in kinds and (start is None or op.t_invoke >= start) and (end is None or op.t_invoke < end)
        ),
        key=lambda op: op.t_invoke,
    )
    if not probes:
        return []
    windows: dict[int, list[float]] = {}  # index -> [probes, failed, observed, down]
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
        while length > 1e-12:  # split the stretch at window boundaries
            index = math.floor(t / window_s)
            piece = min(length, (index + 1) * window_s - t)
            w = windows.setdefault(index, [0, 0, 0.0, 0.0])
            w[2] += piece
            if op.outcome is not Outcome.OK:
                w[3] += piece
            t, length = t + piece, length - piece
    return [
        Window(i * window_s, (i + 1) * window_s, int(w[0]), int(w[1]), w[2], w[3]) for i, w in sorted(windows.items())
    ]


# ---- the error budget: the harness's own requests per clock-aligned 5-minute window ---------------

WINDOW_S = 300.0  # the spec's granularity: 5 minutes
TARGET = 0.999  # the spec's 99.9%: of the requests in a window, and of the period's windows
PERIOD_DAYS = 30.0  # the SLO period (plan `availability.period_days`)
DRILL_ALLOWANCE = 0.25  # the share of the period's budget a drill may use (`availability.drill_allowance`)
REGION = "primary"  # the lab is one region (plan `availability.region`)

# The harness's requests to the system under drill: the Control Plane's API through its load balancer
# (harness.gates' contract). Not requests: its reads of a lab's internals (a queue, a bucket, the SIEM
# file, a node's SQL, the platform stand-ins' logs), its lab controls (the clock) and the runbook's actions.
HEALTH_KINDS = frozenset({"probe", "health"})
REQUEST_KINDS = (
    frozenset(
        {
            "write",
            "create_intent",
            "replay_create",
            "evidence",
            "approve",
            "publish",
            "promote",
            "requeue",
            "cab_lift",
            "ring_rollback",
            "final_read",
            "read_events",
            "read_audit",
            "read_drill_events",
            "read_chain",
            "platforms_view",
            "platform_view",
            "queue_metrics",
        }
    )
    | HEALTH_KINDS
)
NOT_SERVED_4XX = (408, 429)  # the system timed out or shed the request: not served


def period_words(period_days: float) -> str:
    """The SLO period in words: "the month's" for the spec's 30 days, else "the 7-day period's"."""
    return "the month's" if period_days == 30 else f"the {period_days:g}-day period's"


def served(op: Op) -> bool:
    """Whether the system served this request correctly, judged on the request alone.

    A probe (GET /health) is served when it got a 2xx answer that is a health report (it carries
    ServiceHealth): what the report says about the Control Plane (Healthy, Unhealthy) does not
    count, and a 5xx or no answer is not served even when its body says Healthy. Any other request
    is served when its answer was ok (a 2xx whose content the harness read), or a refusal on the
    request's own merits (a 4xx naming the rule that refused it, e.g. 409 EvidencePackState: the
    system answered as designed). Not served: a 5xx (a 503 naming its cause too: the system says it
    cannot serve now), 408 and 429, no answer (timeout, connection refused or reset), a 2xx whose
    content could not be read."""
    status = op.status
    if op.kind in HEALTH_KINDS:
        return status is not None and 200 <= status < 300 and "ServiceHealth" in op.detail
    if op.outcome is Outcome.OK:
        return True
    return status is not None and 400 <= status < 500 and status not in NOT_SERVED_4XX and bool(op.detail.get("gate"))


@dataclass(frozen=True)
class RequestWindow:
    """One clock-aligned window (epoch seconds [start, end)) and the harness's requests invoked in
    it. `first` / `last`: when the first and the last of them were invoked (a window the drill
    observed only in part counts with the requests it had)."""

    start: float
    end: float
    requests: int
    served: int
    first: float
    last: float

    @property
    def ratio(self) -> float:
        return self.served / self.requests

    def good(self, target: float) -> bool:
        return self.served >= target * self.requests - 1e-9

    def to_json(self, target: float) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "requests": self.requests,
            "served": self.served,
            "ratio": round(self.ratio, 6),
            "good": self.good(target),
            "observed_from": round(self.first, 3),
            "observed_to": round(self.last, 3),
        }


def request_windows(
    ops: Iterable[Op], window_s: float = WINDOW_S, kinds: frozenset[str] = REQUEST_KINDS
) -> list[RequestWindow]:
    """The requests of `kinds` grouped by the wall-clock window of their invocation (windows aligned
    on multiples of window_s, as monitoring buckets them), in time order. A window with no request
    is not listed: nothing was observed there, and it is not counted bad."""
    if window_s <= 0:
        raise ValueError(f"window_s must be positive, got {window_s}")
    counts: dict[int, list[int]] = {}  # index -> [requests, served]
    spans: dict[int, list[float]] = {}  # index -> [first, last]
    for op in ops:
        if op.kind not in kinds:
            continue
        index = math.floor(op.wall_invoke / window_s)
        n = counts.setdefault(index, [0, 0])
        n[0] += 1
        n[1] += served(op)
        span = spans.setdefault(index, [op.wall_invoke, op.wall_invoke])
        span[0], span[1] = min(span[0], op.wall_invoke), max(span[1], op.wall_invoke)
    return [RequestWindow(i * window_s, (i + 1) * window_s, n, ok, *spans[i]) for i, (n, ok) in sorted(counts.items())]


@dataclass(frozen=True)
class ErrorBudget:
    """A scenario's use of the period's error budget, from its requests' windows."""

    windows: tuple[RequestWindow, ...]
    target: float = TARGET
    period_days: float = PERIOD_DAYS
    allowance: float = DRILL_ALLOWANCE
    region: str = REGION
    window_s: float = WINDOW_S

    @property
    def bad(self) -> list[RequestWindow]:
        return [w for w in self.windows if not w.good(self.target)]

    @property
    def period_windows(self) -> float:
        """Windows in the SLO period (30 days: 8,640)."""
        return self.period_days * 86400.0 / self.window_s

    @property
    def budget_windows(self) -> float:
        """Bad windows the period allows: (1 - target) of its windows (8.64 for 99.9% of 30 days)."""
        return self.period_windows * (1.0 - self.target)

    @property
    def share(self) -> float | None:
        """The share of the period's budget the bad windows used (1 of 8.64: 0.116); None when the
        target leaves no budget at all (100%) and a window was bad."""
        bad = len(self.bad)
        if self.budget_windows <= 1e-12:
            return 0.0 if bad == 0 else None
        return bad / self.budget_windows

    @property
    def worst(self) -> RequestWindow | None:
        return min(self.windows, key=lambda w: (w.ratio, w.start)) if self.windows else None

    def figures(self) -> dict[str, Any]:
        """The scenario's measurements: windows observed and bad, the worst window's served share
        (`availability`, beside the target), the budget used and the windows themselves."""
        share = self.share
        worst = self.worst
        return {
            "availability": None if worst is None else round(worst.ratio, 6),
            "availability_region": self.region,
            "windows_observed": len(self.windows),
            "bad_windows": len(self.bad),
            "requests": sum(w.requests for w in self.windows),
            "requests_not_served": sum(w.requests - w.served for w in self.windows),
            "error_budget_windows": round(self.budget_windows, 4),
            "error_budget_used_pct": None if share is None else round(share * 100.0, 4),
            "drill_allowance_pct": round(self.allowance * 100.0, 4),
            "availability_period_days": self.period_days,
            "availability_windows": [w.to_json(self.target) for w in self.windows],
        }


def error_budget(
    history: History,
    target: float = TARGET,
    period_days: float = PERIOD_DAYS,
    allowance: float = DRILL_ALLOWANCE,
    region: str = REGION,
    window_s: float = WINDOW_S,
) -> ErrorBudget:
    """The scenario's windows of requests and the share of the period's error budget they used."""
    if not 0 < target <= 1:
        raise ValueError(f"target must be in (0, 1], got {target}")
    if period_days <= 0:
        raise ValueError(f"period_days must be positive, got {period_days}")
    return ErrorBudget(tuple(request_windows(history.ops, window_s)), target, period_days, allowance, region, window_s)
