"""Matrix rows 4-6 (Intune Graph degraded, Jamf API outage, SCCM site server down), judged from what
the platform stand-ins logged (every request, its answer, its time), the harness's own reads of the
queues and the event store, and its own promotion attempts. Time rules run on the Control Plane's
clock, which only the harness moves ("clock" events), so the harness knows it too."""

from __future__ import annotations

from itertools import pairwise
from typing import Any, cast

from harness.gates.base import Gate, answer, last_op, register
from harness.measure.platforms import applied, arrivals, backoff, cp_time, requests_at, throttle_count
from harness.model import EventKind, GateResult, History, Op, OpKind, detail_of, event_detail_of

REPORT_DELAY_S = 1.0  # a connector's report reaches the Control Plane this long after the platform answered
DETECTION_SECONDS = 60.0  # the plan's default detection allowance (targets.detection_seconds)


def _promotions(history: History, platform: str) -> list[Op]:
    return sorted(
        (o for o in history.ops_of(OpKind.PROMOTE) if detail_of(o).get("platform") == platform),
        key=lambda o: o.t_invoke,
    )


def _healed(history: History, platform: str) -> float | None:
    heals = [e.t for e in history.events_of(EventKind.HEAL) if e.name.endswith(f":{platform}")]
    return max(heals) if heals else None


def _injected(history: History, platform: str) -> float | None:
    injects = [e.t for e in history.events_of(EventKind.INJECT) if e.name.endswith(f":{platform}")]
    return min(injects) if injects else None


def _events_read(
    history: History, type_: str, platform: str, after: float | None = None
) -> list[dict[str, Any]] | None:
    """The rows of the last read of `type_` events (made after `after`) about the platform and
    appended after `after`; None when no such read succeeded."""
    read = last_op(history, OpKind.READ_EVENTS, after=after, type=type_)
    if read is None or not read.ok:
        return None
    return [
        e
        for e in read.value
        if (e.get("payload") or {}).get("platform") == platform
        and (after is None or _event_t(history, e) >= after - 0.5)
    ]


def _requeued(history: History, platform: str) -> float | None:
    requeue = [o.t_invoke for o in history.ops_of(OpKind.REQUEUE) if detail_of(o).get("platform") == platform]
    return min(requeue) if requeue else None


def _not_held(
    gate: Gate, after_s: float, history: History, start: float, type_: str, ages: list[float], measured: dict[str, Any]
) -> GateResult | None:
    """A time rule ("after 15 min", "after 24 h") is judged only once the fault was held that long
    on the Control Plane's clock (moved by the harness, or real time held) before the events were
    read; until then an early answer still fails, and the absence of one is unknown, never a pass.
    `after_s`: the gate's time rule, in seconds."""
    if any(age <= after_s for age in ages):
        return None
    read = last_op(history, OpKind.READ_EVENTS, after=start, type=type_)
    held = cp_time(history, read.t_invoke) - cp_time(history, start) if read is not None else 0.0
    if held > after_s:
        return None
    need = f"{after_s / 60:g} min" if after_s < 2 * 3600 else f"{after_s / 3600:g} h"
    return gate.unknown(
        f"needs {need} of real time or clock control (the fault was held {held:.0f} s on the Control Plane's clock)",
        dict(measured, held_s=round(held, 1)),
    )


def _event_t(history: History, row: dict[str, Any]) -> float:
    """A stored event's time on the history clock (its `at` is the database's real clock)."""
    import datetime as dt

    return history.at(dt.datetime.fromisoformat(str(row["at"])).timestamp())


@register
class ConnectorsHealthy(Gate):
    """Precondition: before any fault, the Control Plane had every platform Healthy with its
    promotions running (as its connectors reported them)."""

    judges = "system"
    id = "connectors_healthy"
    description = "Every platform Healthy and its promotions running before injection"
    threshold = "all Healthy"

    def __init__(self, platforms: tuple[str, ...] = ("intune", "jamf", "sccm", "landscape", "ansible")):
        self.platforms = tuple(platforms)  # every platform the lab runs must be in the view

    def evaluate(self, history: History) -> GateResult:
        first = min((e.t for e in history.events_of(EventKind.INJECT)), default=None)
        views = [o for o in history.ops_of(OpKind.PLATFORMS_VIEW) if first is None or o.done <= first]
        if not views:
            return self.unknown("the platforms were not checked before the faults")
        view = max(views, key=lambda o: o.done)
        if not view.ok:
            return self.unknown(f"the platforms could not be read: {view.error}")
        seen = view.value or {}
        bad = {p: "not reported" for p in self.platforms if p not in seen}
        bad.update(
            {
                p: v.get("pause_reasons") or v.get("health")
                for p, v in seen.items()
                if v.get("PromotionsPaused") or v.get("health") != "Healthy"
            }
        )
        return self.judge(not bad, "all Healthy" if not bad else bad)


@register
class PublishAccepted(Gate):
    """Publishing is accepted and queued for the connectors (delivery waits for the platform)."""

    judges = "system"
    id = "publish_accepted_and_queued"
    description = "Publishing is accepted and queued for the connectors (delivery waits for the platform)"
    threshold = "all accepted"

    def __init__(self, keys: list[str]):
        self.keys = list(keys)

    def evaluate(self, history: History) -> GateResult:
        ops = [o for o in history.ops_of(OpKind.PUBLISH) if o.value in self.keys]
        if not ops:
            return self.unknown("no intent was published")
        refused = [f"{o.value}: {answer(o)}" for o in ops if not o.ok]
        return self.judge(not refused, {"published": len(ops) - len(refused), "refused": refused[:5]})


@register
class OtherPlatformsContinue(Gate):
    """While one platform fails, the other platforms apply their intents, each exactly once, by the
    time the harness looked (its checkpoint)."""

    judges = "system"
    id = "other_platforms_continue"

    def __init__(self, platform: str, keys: dict[str, list[str]], checkpoint: str):
        self.platform, self.keys, self.checkpoint = platform, {p: list(k) for p, k in keys.items()}, checkpoint
        self.threshold = "every count 1"
        self.description = f"Platforms other than {platform} keep applying intents (each exactly once)"

    def evaluate(self, history: History) -> GateResult:
        mark = history.first_event(EventKind.CHECKPOINT, self.checkpoint)
        if mark is None:
            return self.unknown("the harness did not look")
        if not self.keys:
            return self.unknown("no other platform was published to")
        counts = {
            p: [len([e for e in applied(arrivals(history, p).get(k, [])) if e.t <= mark.t]) for k in ks]
            for p, ks in self.keys.items()
        }
        return self.judge(all(n == 1 for ns in counts.values() for n in ns), counts)


@register
class AssignmentFails(Gate):
    """The failing platform's intents are not applied (its own log shows none) while it fails, and
    the Control Plane recorded the platform unhealthy (a PlatformDegraded event in the store)."""

    judges = "system"

    def __init__(self, platform: str, keys: list[str], checkpoint: str):
        self.platform, self.keys, self.checkpoint = platform, list(keys), checkpoint
        self.id = f"assignment_fails_{platform}"
        self.threshold = "none applied, PlatformDegraded recorded"
        self.description = (
            f"Assignment fails for {platform} rings only (its intents not applied; the Control "
            f"Plane records the platform unhealthy)"
        )

    def evaluate(self, history: History) -> GateResult:
        mark = history.first_event(EventKind.CHECKPOINT, self.checkpoint)
        start = _injected(history, self.platform)
        if mark is None or start is None:
            return self.unknown("no fault on the platform, or the harness did not look")
        if not self.keys:
            return self.unknown(f"no {self.platform} intent was published")
        seen = arrivals(history, self.platform)
        applied_early = [k for k in self.keys if any(e.t <= mark.t for e in applied(seen.get(k, [])))]
        degraded = _events_read(history, "PlatformDegraded", self.platform, after=start)
        measured = {
            "published": len(self.keys),
            "applied": len(applied_early),
            "recorded_unhealthy": None if degraded is None else bool(degraded),
        }
        if degraded is None:
            return self.unknown("PlatformDegraded events were not read", measured)
        return self.judge(not applied_early and bool(degraded), measured)


@register
class PromotionRefused(Gate):
    """While the platform's fault lasts, a ring promotion of one of its intents is refused by the
    named gate (503, gate in the answer). The judged window starts at the fault's injection plus the
    plan's detection allowance (targets.detection_seconds, 60 s by default), or as soon as the
    Control Plane recorded the platform degraded (PlatformDegraded, read from its store) if that
    came first, and lasts until the platform's heal: a promotion invoked in it and accepted, or
    refused by another gate, fails. A Control Plane that never notices the fault is judged all the
    same once the allowance has passed. Detection latency (the injection to the first
    PlatformDegraded) is measured and reported (figures: detection_seconds)."""

    judges = "system"

    def __init__(
        self, platform: str, gate_name: str, gate_id: str | None = None, detection_s: float = DETECTION_SECONDS
    ):
        self.platform, self.gate_name, self.detection_s = platform, gate_name, detection_s
        self.id = gate_id or f"promotion_refused_{platform}"
        self.threshold = (
            f"503, gate {gate_name}, from {detection_s:g} s after the injection (or once the Control "
            f"Plane recorded it degraded) until the heal"
        )
        self.description = (
            f"Ring promotion on {platform} refused by the gate {gate_name} while it fails (from the "
            f"injection plus a detection allowance of {detection_s:g} s, or the Control Plane's "
            f"record of it degraded if earlier, until its recovery)"
        )

    def detection(self, history: History, start: float) -> float | None:
        """Seconds from the injection to the first PlatformDegraded the harness read; None: not read."""
        degraded = _events_read(history, "PlatformDegraded", self.platform, after=start)
        return min(_event_t(history, e) for e in degraded) - start if degraded else None

    def figures(self, history: History) -> dict[str, Any]:
        start = _injected(history, self.platform)
        detected = None if start is None else self.detection(history, start)
        return (
            {} if start is None else {"detection_seconds": None if detected is None else round(max(detected, 0.0), 3)}
        )

    def evaluate(self, history: History) -> GateResult:
        start, end = _injected(history, self.platform), _healed(history, self.platform)
        if start is None:
            return self.unknown(f"no fault on {self.platform}")
        detected = self.detection(history, start)
        offset = self.detection_s if detected is None else min(self.detection_s, max(detected, 0.0))
        judged_from = start + offset
        measured: dict[str, Any] = {
            "detection_s": None if detected is None else round(max(detected, 0.0), 3),
            "judged_from_s": round(offset, 3),
        }
        ops = [
            o
            for o in _promotions(history, self.platform)
            if o.t_invoke >= judged_from and (end is None or o.done <= end)
        ]
        why = (
            "the Control Plane recorded it degraded"
            if detected is not None and detected < self.detection_s
            else f"the detection allowance of {self.detection_s:g} s"
            + (
                " (it never recorded it degraded)"
                if detected is None
                else f" (it recorded it degraded only after {detected:.1f} s)"
            )
        )
        if not ops:
            return self.unknown(
                f"no {self.platform} promotion attempted from {offset:.1f} s after the injection "
                f"({why}) until the heal",
                measured,
            )
        wrong = [o for o in ops if o.status != 503 or detail_of(o).get("gate") != self.gate_name]
        measured["answers"] = sorted({answer(o) for o in ops})
        detail = f"judged from {offset:.1f} s after the injection: {why}"
        if wrong:
            detail += "; " + "; ".join(
                f"promotion {o.value} at +{o.t_invoke - start:.1f} s: {'accepted' if o.ok else answer(o)}"
                for o in wrong[:3]
            )
        return self.judge(not wrong, measured, detail)


@register
class ConnectorBackoff(Gate):
    """ConnectorBackoff (spec 2, Intune Graph row: "ensures 2x base interval"): after each failed
    attempt of an intent the connector waits twice as long as after the previous one, from the
    base interval the deployment is configured with, up to its maximum attempts (both from the
    plan's targets.connector_backoff), as the platform itself received the calls (its request log).

    A wait is the silence toward the platform after the failed attempt, up to the connector's next
    call of any intent, less the link's round trip measured on the same log (a lookup to its
    apply): a latency toxic adds the same time to every gap, which would flatten the ratios of a
    backoff that doubles; and the wait is platform-wide (a throttled platform is not called for
    another intent either), so the gap between two attempts of one intent also holds the waits of
    the other intents failing in between, which double in step only when those intents arrived
    together. Judged, with >= 3 attempts of one intent (two waits): every wait longer than the one
    before; their growth per retry (the geometric mean of the ratios: the last wait over the first,
    to the power 1/(waits-1)) within factor x (1 +- TOLERANCE), 1.8 to 2.2 for the spec's 2; the
    first wait 0.9 to 1.5 x the base interval; no more attempts than the maximum. The growth, not
    each ratio alone: a wait also holds the connector's own turnaround, which on a loaded machine
    adds up to ~0.1 s to one wait or another (see RetryBackoffAtStore)."""

    judges = "system"
    TOLERANCE = 0.1  # of the factor: 1.8 to 2.2 for 2x
    FIRST_WAIT = (0.9, 1.5)  # x the base interval: never early; late by a Retry-After or load at most

    def __init__(
        self, platform: str, keys: list[str], base_s: float | None, max_attempts: int | None = None, factor: float = 2.0
    ):
        self.platform, self.keys, self.base_s = platform, set(keys), base_s
        self.max_attempts, self.factor = max_attempts, factor
        low, high = factor * (1 - self.TOLERANCE), factor * (1 + self.TOLERANCE)
        self.id = f"connector_backoff_2x_{platform}"
        self.threshold = (
            f"growth per retry {low:g}-{high:g} x, each wait longer than the previous; first wait "
            f"{self.FIRST_WAIT[0]:g}-{self.FIRST_WAIT[1]:g} x base "
            + (f"{base_s:g} s" if base_s is not None else "(not stated)")
            + (f"; at most {max_attempts} attempts" if max_attempts else "")
            + " (a wait: the silence after a failed attempt, less the link's round trip)"
        )
        self.description = (
            f"ConnectorBackoff: each retry waits {factor:g}x the previous interval, from the "
            f"configured base, as the platform received the attempts"
        )

    def evaluate(self, history: History) -> GateResult:
        if self.base_s is None:
            return self.unknown(
                "the connectors' configured backoff is not known: state it in the plan "
                "(targets.connector_backoff: {base_seconds, factor, max_attempts})"
            )
        b = backoff(history, self.platform, self.keys, until=_requeued(history, self.platform))
        measured: dict[str, Any] = {
            "gaps_s": [round(g, 3) for g in b.gaps_s],
            "round_trip_s": round(b.round_trip_s, 3),
            "waits_s": [round(w, 3) for w in b.waits_s],
            "ratios": [round(r, 2) for r in b.ratios],
            "attempts": len(b.gaps_s) + 1 if b.key is not None else 0,
        }
        if len(b.waits_s) < 2:
            return self.unknown(f"fewer than 3 attempts of one {self.platform} intent reached the platform", measured)
        waits = b.waits_s
        growth = (waits[-1] / waits[0]) ** (1 / (len(waits) - 1)) if waits[0] > 0 and waits[-1] > 0 else 0.0
        measured["growth"] = round(growth, 3)
        low, high = self.factor * (1 - self.TOLERANCE), self.factor * (1 + self.TOLERANCE)
        problems = []
        if not all(w > 0 for w in waits):
            problems.append("an attempt followed another without a wait")
        elif not all(b2 > a for a, b2 in pairwise(waits)):
            problems.append("a wait was not longer than the one before")
        if not low <= growth <= high:
            problems.append(f"the waits grew {growth:.2f} x per retry, not {low:g}-{high:g}")
        first_low, first_high = (f * self.base_s for f in self.FIRST_WAIT)
        if not first_low <= waits[0] <= first_high:
            problems.append(
                f"the first wait was {waits[0]:.3f} s, not {first_low:g}-{first_high:g} s (base {self.base_s:g} s)"
            )
        if self.max_attempts is not None and measured["attempts"] > self.max_attempts:
            problems.append(
                f"{measured['attempts']} attempts of one intent, more than the {self.max_attempts} configured"
            )
        return self.judge(not problems, measured, "; ".join(problems))


@register
class ThrottleCountAccurate(Gate):
    """The Control Plane's throttle count (GraphThrottleCount for Intune) equals the 429 answers the
    platform really sent in the window, and reached n."""

    judges = "system"

    def __init__(self, platform: str, n: int, window_s: float = 300.0):
        self.platform, self.n, self.window_s = platform, n, window_s
        self.id = f"throttles_counted_{platform}"
        self.threshold = f"= the platform's 429s, >= {n}"
        self.description = f"Every 429 answer of {platform} counted by the Control Plane"

    def evaluate(self, history: History) -> GateResult:
        views = [
            o for o in history.ops_of(OpKind.PLATFORM_VIEW) if detail_of(o).get("platform") == self.platform and o.ok
        ]
        if not views:
            return self.unknown(f"the Control Plane's view of {self.platform} was not read")
        wrong, highest = [], None
        for view in views:
            reported = view.value.get("GraphThrottleCount", view.value.get("ThrottleCount"))
            # the connector reports a 429 a moment after the platform sent it: the 429s of the last
            # REPORT_DELAY_S before the read may not be counted yet
            high = throttle_count(history, self.platform, view.done, self.window_s)
            recent = sum(
                1
                for e in requests_at(history, self.platform)
                if event_detail_of(e).get("status") == 429 and view.t_invoke - REPORT_DELAY_S < e.t <= view.done
            )
            low = max(0, high - recent)
            if reported is None or not low <= reported <= high:
                wrong.append(f"reported {reported}, platform sent {high}")
            if reported is not None and (highest is None or reported > highest[0]):
                highest = (reported, high)
        measured = {
            "reads": len(views),
            "highest_reported": highest[0] if highest else None,
            "sent_by_platform": highest[1] if highest else None,
            "disagreements": wrong[:5],
        }
        return self.judge(not wrong and highest is not None and highest[0] >= self.n, measured)


@register
class AppliedExactlyOnce(Gate):
    """Every intent published for the platform reached it exactly once (nothing lost, nothing applied
    twice by retries, redeliveries or the requeue), by the platform's own log."""

    judges = "system"

    def __init__(self, platform: str, keys: list[str], ring: str | None = None):
        self.platform, self.ring = platform, ring
        self.keys = [k + (f"@{ring}" if ring else "") for k in keys]
        self.id = f"applied_exactly_once_{platform}" + (f"_{ring}" if ring else "")
        self.threshold = "0 missing, 0 duplicated"
        self.description = f"Every intent published for {platform} applied exactly once (Test-IdempotencyKey)"

    def evaluate(self, history: History) -> GateResult:
        if not self.keys:
            return self.unknown(f"no {self.platform} intent was published")
        seen = arrivals(history, self.platform)
        counts = {k: len(applied(seen.get(k, []))) for k in self.keys}
        missing = [k for k, n in counts.items() if n == 0]
        twice = [k for k, n in counts.items() if n > 1]
        return self.judge(
            not missing and not twice, {"published": len(self.keys), "missing": len(missing), "duplicated": len(twice)}
        )


@register
class ResumeRequiresLowThrottleCount(Gate):
    """Validation of row 4: after the platform recovered, a promotion while its throttle count (the
    platform's real 429s in the window, on the Control Plane's clock) is above the limit is refused,
    and none is accepted while it is."""

    judges = "system"

    def __init__(self, platform: str, limit: int = 5, window_s: float = 300.0):
        # not a typed limit: measured is a dict
        self.platform, self.max_count, self.window_s = platform, limit, window_s
        self.id = "resume_requires_throttle_count_le_5" if limit == 5 else f"resume_requires_throttle_count_le_{limit}"
        self.threshold = f"refused while > {limit}"
        self.description = f"Promotions on {platform} stay paused after recovery while GraphThrottleCount > {limit}"

    def evaluate(self, history: History) -> GateResult:
        healed = _healed(history, self.platform)
        if healed is None:
            return self.unknown(f"{self.platform} was not healed")
        ops = [
            (o, throttle_count(history, self.platform, o.t_invoke, self.window_s))
            for o in _promotions(history, self.platform)
            if o.t_invoke >= healed
        ]
        high = [(o, n) for o, n in ops if n > self.max_count]
        if not high:
            return self.unknown(f"no promotion attempted after recovery while the count was above {self.max_count}")
        accepted = [(o, n) for o, n in high if o.ok]
        measured = {
            "attempted_while_high": len(high),
            "accepted": len(accepted),
            "throttle_count": max(n for _, n in high),
        }
        return self.judge(not accepted, measured)


@register
class PromotionsResumed(Gate):
    """Promotions resume: the last promotion was accepted and its ring's intent reached the platform
    exactly once after it."""

    judges = "system"

    def __init__(self, platform: str, ring: str):
        self.platform, self.ring = platform, ring
        self.id = f"promotions_resumed_{platform}"
        self.threshold = "accepted; applied once"
        self.description = f"Promotions on {platform} resume: the promotion accepted and applied once"

    def evaluate(self, history: History) -> GateResult:
        ops = _promotions(history, self.platform)
        if not ops:
            return self.unknown(f"no {self.platform} promotion was attempted")
        last = ops[-1]
        key = f"{last.value}@{self.ring}"
        after = [e for e in applied(arrivals(history, self.platform).get(key, [])) if e.t >= last.t_invoke]
        return self.judge(last.ok and len(after) == 1, {"promotion": answer(last), "applied": len(after)})


@register
class CabManualPause(Gate):
    """A CAB manual pause (with its CAB notification) is raised once the platform has been degraded
    for more than `after_s` on the Control Plane's clock, and not before."""

    judges = "system"

    def __init__(self, platform: str, after_s: float = 900.0):
        self.platform, self.after_s = platform, after_s
        self.id = f"cab_manual_pause_{platform}"
        self.threshold = f"one pause, raised after > {after_s / 60:g} min degraded, with a notification"
        self.description = (
            f"CAB manual pause raised after {platform} was degraded for more than {after_s / 60:g} minutes"
        )

    def evaluate(self, history: History) -> GateResult:
        start = _injected(history, self.platform)
        if start is None:
            return self.unknown(f"no fault on {self.platform}")
        raised = _events_read(history, "CabManualPauseRaised", self.platform, after=start)
        notices = _events_read(history, "CabNotification", self.platform, after=start)
        if raised is None or notices is None:
            return self.unknown("the CAB events were not read")
        fault_cp = cp_time(history, start)
        ages = [round(cp_time(history, _event_t(history, e)) - fault_cp, 1) for e in raised]
        measured = {"raised": len(raised), "degraded_for_s": ages, "notifications": len(notices)}
        short = _not_held(self, self.after_s, history, start, "CabManualPauseRaised", ages, measured)
        if short is not None:
            return short
        ok = len(raised) == 1 and ages[0] > self.after_s and bool(notices)
        return self.judge(ok, measured)


@register
class CabPauseHoldsUntilLifted(Gate):
    """After the platform recovered, promotions stay refused until the CAB lifts its pause."""

    judges = "system"
    id = "cab_pause_holds_until_lifted"
    threshold = "refused until the lift"

    def __init__(self, platform: str):
        self.platform = platform
        self.description = f"Promotions on {platform} stay paused after recovery until the CAB lifts the pause"

    def evaluate(self, history: History) -> GateResult:
        healed = _healed(history, self.platform)
        lifts = [o for o in history.ops_of(OpKind.CAB_LIFT) if o.ok and detail_of(o).get("platform") == self.platform]
        lift = min(lifts, key=lambda o: o.t_invoke) if lifts else None
        if healed is None:
            return self.unknown(f"{self.platform} was not healed")
        ops = [
            o
            for o in _promotions(history, self.platform)
            if o.t_invoke >= healed and (lift is None or o.done <= lift.t_invoke)
        ]
        if not ops:
            return self.unknown("no promotion attempted between the recovery and the CAB's lift")
        return self.judge(not any(o.ok for o in ops), {"answers": sorted({answer(o) for o in ops})})


@register
class CabNotified(Gate):
    """A CAB notification about the platform's outage reached the event store."""

    judges = "system"

    def __init__(self, platform: str):
        self.platform = platform
        self.id = f"cab_notification_{platform}"
        self.threshold = ">= 1"
        self.description = f"CAB notification emitted for the {platform} outage"

    def evaluate(self, history: History) -> GateResult:
        start = _injected(history, self.platform)
        if start is None:
            return self.unknown(f"no fault on {self.platform}")
        notices = _events_read(history, "CabNotification", self.platform, after=start)
        if notices is None:
            return self.unknown("CabNotification events were not read")
        return self.judge(bool(notices), {"notifications": len(notices)})


@register
class QueueDepthAccurate(Gate):
    """The queue depth metric (JamfQueueDepth for Jamf) reports the intents waiting: the Control
    Plane's figure lies between the depths the harness read from the queue itself right before and
    right after, and is at least 1."""

    judges = "system"

    def __init__(self, platform: str):
        self.platform = platform
        metric = "JamfQueueDepth" if platform == "jamf" else f"{platform} queue depth"
        self.id = f"queue_depth_reported_{platform}"
        self.threshold = "= the queue's depth, >= 1"
        self.description = f"{metric} reported accurately while intents wait"

    def evaluate(self, history: History) -> GateResult:
        reports = [o for o in history.ops_of(OpKind.QUEUE_METRICS) if o.ok]
        reads = sorted(
            (o for o in history.ops_of(OpKind.QUEUE_DEPTH) if o.ok and detail_of(o).get("platform") == self.platform),
            key=lambda o: o.t_invoke,
        )
        for report in sorted(reports, key=lambda o: o.t_invoke, reverse=True):
            before = [o.value for o in reads if o.done <= report.t_invoke]
            after = [o.value for o in reads if o.t_invoke >= report.done]
            if before and after:
                reported = ((report.value or {}).get(self.platform) or {}).get("queue_depth")
                low, high = sorted((before[-1], after[0]))
                measured = {"reported": reported, "queue_before": before[-1], "queue_after": after[0]}
                ok = reported is not None and low <= reported <= high and reported >= 1
                return self.judge(ok, measured)
        return self.unknown("no queue metric read between two reads of the queue itself")


@register
class DeadLettered(Gate):
    """After the connector's maximum attempts the platform's intents are in the dead-letter queue
    (read by the harness), not lost: each reached the platform exactly max_attempts times."""

    judges = "system"

    def __init__(self, platform: str, keys: list[str], max_attempts: int | None):
        self.platform, self.keys, self.max_attempts = platform, list(keys), max_attempts
        self.id = f"dead_lettered_{platform}"
        self.threshold = (
            f"all in the dead-letter queue after {max_attempts} attempts"
            if max_attempts is not None
            else "all in the dead-letter queue after the configured maximum attempts (not stated)"
        )
        self.description = f"{platform} intents dead-lettered after the connector's maximum attempts, kept (not lost)"

    def evaluate(self, history: History) -> GateResult:
        if self.max_attempts is None:
            return self.unknown(
                "the connectors' configured maximum attempts is not known: state it in the plan "
                "(targets.connector_backoff: {base_seconds, factor, max_attempts})"
            )
        requeued = _requeued(history, self.platform)
        reads = [
            o
            for o in history.ops_of(OpKind.DEAD_LETTERS)
            if o.ok and detail_of(o).get("platform") == self.platform and (requeued is None or o.done <= requeued)
        ]
        if not reads:
            return self.unknown("the dead-letter queue was not read before any requeue")
        dlq = max(reads, key=lambda o: o.done)
        if not self.keys:
            return self.unknown(f"no {self.platform} intent was published")
        seen = arrivals(history, self.platform)
        attempts = {k: len([e for e in seen.get(k, []) if e.t <= dlq.done]) for k in self.keys}
        in_dlq = [k for k in self.keys if k in (dlq.value or ())]
        measured = {"dead_lettered": len(in_dlq), "attempts": sorted(set(attempts.values()))}
        ok = len(in_dlq) == len(self.keys) and all(n == self.max_attempts for n in attempts.values())
        return self.judge(ok, measured)


@register
class RequeueConfirmed(Gate):
    """The runbook's requeue moved every dead-lettered intent back: the dead-letter queue, read by
    the harness after it, holds none of them."""

    judges = "system"

    def __init__(self, platform: str, keys: list[str]):
        self.platform, self.keys = platform, list(keys)
        self.id = f"requeue_confirmed_{platform}"
        self.threshold = "dead-letter queue emptied of them"
        self.description = "Runbook requeue confirmed: every dead-lettered intent moved back to the queue"

    def evaluate(self, history: History) -> GateResult:
        requeue = last_op(history, OpKind.REQUEUE, platform=self.platform)
        if requeue is None:
            return self.unknown("no requeue was made")
        dlq = last_op(history, OpKind.DEAD_LETTERS, after=requeue.done, platform=self.platform)
        if dlq is None or not dlq.ok:
            return self.unknown("the dead-letter queue was not read after the requeue")
        left = [k for k in self.keys if k in (dlq.value or ())]
        return self.judge(requeue.ok and not left, {"requeue": answer(requeue), "still_dead_lettered": len(left)})


@register
class NoCriticalBacklog(Gate):
    """No queue backlog beyond the limit (10 minutes) for critical rings: from its acknowledged
    publish (or promotion) to its apply at the platform, on the Control Plane's clock; an intent
    still unapplied at the end counts its age until then."""

    judges = "system"
    id = "no_critical_backlog_over_10_min"
    description = "No queue backlog beyond 10 minutes for critical rings"

    def __init__(self, critical_rings: tuple[str, ...] = ("ring0", "ring1"), limit_s: float = 600.0):
        self.critical, self.limit_s = tuple(critical_rings), limit_s
        self.threshold = f"<= {limit_s:g} s"

    def evaluate(self, history: History) -> GateResult:
        # (the op, its platform, the key the platform receives); detail is the op's untyped answer
        sent: list[tuple[Op, str, str]] = [
            (o, cast(str, detail_of(o).get("platform")), o.value)
            for o in history.ops_of(OpKind.PUBLISH)
            if o.ok and detail_of(o).get("ring") in self.critical
        ]
        sent += [
            (o, cast(str, detail_of(o).get("platform")), f"{o.value}@{detail_of(o).get('to_ring')}")
            for o in history.ops_of(OpKind.PROMOTE)
            if o.ok and detail_of(o).get("to_ring") in self.critical
        ]
        if not sent:
            return self.unknown("no intent of a critical ring was published")
        end = max([e.t for e in history.events] + [o.done for o in history.ops])
        ages = []
        for op, platform, key in sent:
            done = [e.t for e in applied(arrivals(history, platform).get(key, [])) if e.t >= op.t_invoke]
            at = min(done) if done else end
            ages.append(cp_time(history, at) - cp_time(history, op.done))
        oldest = max(ages)
        return self.judge(oldest <= self.limit_s, {"oldest_critical_s": round(oldest, 1), "intents": len(sent)})


@register
class SiteOutageRecorded(Gate):
    """The Control Plane records the site outage (SiteOutageRecorded in the store) and offers no
    fallback yet."""

    judges = "system"

    def __init__(self, platform: str):
        self.platform = platform
        self.id = f"site_outage_recorded_{platform}"
        self.threshold = "SiteOutageRecorded, no fallback yet"
        self.description = "The Control Plane records the site outage"

    def evaluate(self, history: History) -> GateResult:
        start = _injected(history, self.platform)
        if start is None:
            return self.unknown(f"no fault on {self.platform}")
        recorded = _events_read(history, "SiteOutageRecorded", self.platform, after=start)
        if recorded is None:
            return self.unknown("SiteOutageRecorded events were not read")
        moved = history.first_event(EventKind.CLOCK, after=start)  # before the harness moved the clock on
        early = [
            o
            for o in history.ops_of(OpKind.READ_EVENTS)
            if detail_of(o).get("type") == "ManualImportOffered"
            and o.ok
            and o.t_invoke >= start
            and (moved is None or o.done <= moved.t)
        ]
        if not early:
            return self.unknown("the fallback offers were not read while the outage was young", len(recorded))
        offered = [e for e in early[-1].value if (e.get("payload") or {}).get("platform") == self.platform]
        return self.judge(bool(recorded) and not offered, {"events": len(recorded), "fallback_offered": bool(offered)})


@register
class ManualImportOffered(Gate):
    """The fallback to manual import is offered once the site has been down for more than 24 h on the
    Control Plane's clock, once."""

    judges = "system"

    def __init__(self, platform: str, after_s: float = 86400.0):
        self.platform, self.after_s = platform, after_s
        self.id = f"manual_import_fallback_{platform}"
        self.threshold = f"one offer, after > {after_s / 3600:g} h down"
        self.description = f"Fallback to manual import offered once the site is down for more than {after_s / 3600:g} h"

    def evaluate(self, history: History) -> GateResult:
        start = _injected(history, self.platform)
        if start is None:
            return self.unknown(f"no fault on {self.platform}")
        offered = _events_read(history, "ManualImportOffered", self.platform, after=start)
        if offered is None:
            return self.unknown("ManualImportOffered events were not read")
        fault_cp = cp_time(history, start)
        ages = [round(cp_time(history, _event_t(history, e)) - fault_cp, 1) for e in offered]
        measured = {"offers": len(offered), "down_for_s": ages}
        short = _not_held(self, self.after_s, history, start, "ManualImportOffered", ages, measured)
        if short is not None:
            return short
        return self.judge(len(offered) == 1 and ages[0] > self.after_s, measured)


@register
class RingRollbackApplied(Gate):
    """Rollback validation (spec section 4: "Ring 0 test ensures rollback pipeline works even if
    connectors were in failover"), by the platform stand-ins' own logs and the auto-scaling
    group's: after the connector workers were lost, the rollback the harness requested reached every
    platform exactly once (one applied /apply carrying the key the Control Plane answered, action
    rollback, the ring), its key tested at the platform first (Test-IdempotencyKey), and brought
    by a replacement worker (the group's replacement of that platform's worker logged before it)."""

    judges = "system"

    def __init__(self, ring: str, failover: str, platforms: tuple[str, ...]):
        self.ring, self.failover, self.platforms = ring, failover, tuple(platforms)
        self.id = f"rollback_applied_{ring}"
        self.threshold = "every platform once, key tested first, by a replacement worker"
        self.description = f"{ring} rollback reaches every platform exactly once while the connectors are failed over"

    def evaluate(self, history: History) -> GateResult:
        lost = history.first_event(EventKind.INJECT, self.failover)
        if lost is None:
            return self.unknown("the connectors were not failed over")
        op = last_op(history, OpKind.RING_ROLLBACK, after=lost.t)
        if op is None:
            return self.unknown("no rollback was requested while the connectors were failed over")
        if not op.ok:
            return self.judge(False, {"answer": answer(op)}, f"the rollback was not accepted: {op.error}"[:300])
        dispatched = (op.value or {}).get("dispatched") or {}
        replaced: dict[Any, float] = {}  # by the platform a worker_replaced event names
        for event in history.events_of(EventKind.WORKER_REPLACED):
            platform = event_detail_of(event).get("platform")
            if event.t >= lost.t and platform not in replaced:
                replaced[platform] = event.t
        faults: dict[str, list[str]] = {
            "missing": [],
            "twice": [],
            "not_a_rollback": [],
            "untested": [],
            "not_by_a_replacement": [],
        }
        for platform in self.platforms:
            key = dispatched.get(platform)
            applies = applied(arrivals(history, platform).get(key, [])) if key else []
            if not applies:
                faults["missing"].append(platform)
                continue
            first = applies[0]
            if len(applies) > 1:
                faults["twice"].append(platform)
            if event_detail_of(first).get("action") != "rollback" or event_detail_of(first).get("ring") != self.ring:
                faults["not_a_rollback"].append(platform)
            if not any(
                event_detail_of(e).get("path") == "/applied"
                and event_detail_of(e).get("idempotency_key") == key
                and e.t <= first.t
                for e in requests_at(history, platform)
            ):
                faults["untested"].append(platform)
            if replaced.get(platform) is None or replaced[platform] > first.t:
                faults["not_by_a_replacement"].append(platform)
        measured = {
            "platforms": len(self.platforms),
            "rollback_id": (op.value or {}).get("rollback_id"),
            **{k: v for k, v in faults.items() if v},
        }
        return self.judge(not any(faults.values()), measured)
