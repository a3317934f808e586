"""The spec's numbers as floors (docs/plans.md "Targets and waivers"): one table, read by plan
validation, by the waiver logic (harness.gates.waiver) and by the report ("target vs spec floor").

A plan may tighten any target. A target looser than its floor is refused (exit 2, naming the key,
the value and the floor) unless the plan waives it:

    waivers:
      - gate: rto_seconds            # the target's key
        reason: the DR site's storage is rebuilt this quarter (CHG0012399)
        approved_by: J. Doe (CAB)
        expires: 2027-03-01          # an ISO date, at most one quarter (92 days) ahead; past: refused

A waived gate is judged against the floor and the waived target: meets the floor, pass; meets
only the waived target, waived (never pass); misses both, fail.

To add a floor (another target of the plan), add a row to SPEC_FLOORS; a target whose value is a
mapping is checked per entry under its dotted key (e.g. "availability.slo").
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import PlanError, quoted
from .model import Verdict
from .signoff import _text

WAIVER_MAX_DAYS = 92  # one quarter: a waiver is renewed (approved again) at least quarterly
WAIVER_KEYS = ("gate", "reason", "approved_by", "expires")
AT_MOST, AT_LEAST = "<=", ">="


@dataclass(frozen=True)
class Floor:
    """The spec's limit of one target: a plan's value must be `operator` floor (<=: at most, so
    a lower value is tighter; >=: at least, so a higher value is tighter)."""

    key: str
    floor: float
    operator: str  # AT_MOST or AT_LEAST
    unit: str  # "s", "ratio", "count"
    clause: str  # the spec's words and where they are
    tier1: float | None = None  # the floor for a tier-1 plan, when the spec sets one
    plan_target: bool = True  # a plan sets it under `targets:` (False: judged from the feature's step)

    def of_tier(self, tier: Any) -> float:
        return self.tier1 if self.tier1 is not None and tier == 1 and type(tier) is int else self.floor

    def looser(self, value: float, tier: Any = None) -> bool:
        floor = self.of_tier(tier)
        return value > floor if self.operator == AT_MOST else value < floor

    def words(self, tier: Any = None) -> str:
        """e.g. "at most 28800 s (8 h)" or "at least 0.999 (99.9%)"."""
        floor = self.of_tier(tier)
        if self.unit == "s":
            amount = f"{floor:g} s ({_human(floor)})"
        elif self.unit == "ratio":
            amount = f"{floor:g} ({floor:.1%})"
        else:
            amount = f"{floor:g}"
        return f"{'at most' if self.operator == AT_MOST else 'at least'} {amount}"

    def to_json(self, tier: Any = None) -> dict[str, Any]:
        return {"floor": self.of_tier(tier), "operator": self.operator, "unit": self.unit, "clause": self.clause}


def _human(seconds: float) -> str:
    for size, name in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {name}"
    return f"{seconds:g} s"


def _row(key: str, floor: float, operator: str, unit: str, clause: str, **more: Any) -> tuple[str, Floor]:
    return key, Floor(key, floor, operator, unit, clause, **more)


# key -> the spec's floor (spec: ../shared/spec/ha-dr-requirements.md, HA/DR Requirements v1.0)
SPEC_FLOORS: dict[str, Floor] = dict(
    [
        _row("rto_seconds", 8 * 3600.0, AT_MOST, "s", "spec 1, Availability Targets: RTO <= 8h for full recovery"),
        _row("rpo_seconds", 300.0, AT_MOST, "s", "spec 1.2: synchronous replication ensures RPO <= 5 minutes"),
        _row(
            "backup_rpo_seconds",
            86400.0,
            AT_MOST,
            "s",
            "spec 1, Availability Targets: database RPO <= 24h (targeting <= 1h for tier-1 apps)",
            tier1=3600.0,
        ),
        _row(
            "availability",
            0.999,
            AT_LEAST,
            "ratio",
            "spec 1, Availability Targets: 99.9% availability measured at 5-minute granularity per region",
        ),
        # the spec states no detection time; its CAB manual pause "if >15 min" of a degraded platform
        # needs the degradation detected by then, so no allowance may be longer
        _row(
            "detection_seconds",
            900.0,
            AT_MOST,
            "s",
            "spec 2, Intune Graph row: CAB manual pause if >15 min (a degradation must be detected by then)",
        ),
        # judged today with the number the feature's step states (not a plan target yet)
        _row(
            "failback_lag_seconds",
            5.0,
            AT_MOST,
            "s",
            "spec 2, Database row: TransactionLag <= 5s before failback",
            plan_target=False,
        ),
        _row(
            "backlog_seconds",
            600.0,
            AT_MOST,
            "s",
            "spec 1, Availability Targets: no queue backlog beyond 10 minutes for critical rings",
            plan_target=False,
        ),
        _row(
            "throttle_count",
            5.0,
            AT_MOST,
            "count",
            "spec 2, Intune Graph row: GraphThrottleCount <= 5 before resuming",
            plan_target=False,
        ),
        _row(
            "cab_pause_after_seconds",
            900.0,
            AT_MOST,
            "s",
            "spec 2, Intune Graph row: CAB manual pause if >15 min",
            plan_target=False,
        ),
        _row(
            "manual_import_after_seconds",
            86400.0,
            AT_MOST,
            "s",
            "spec 2, SCCM row: fallback to manual import if >24h",
            plan_target=False,
        ),
        _row(
            "event_store_write_success",
            0.999,
            AT_LEAST,
            "ratio",
            "spec 2, Event store row: EventStoreWriteSuccess >= 99.9% per hour",
            plan_target=False,
        ),
        _row(
            "backup_age_seconds",
            86400.0,
            AT_MOST,
            "s",
            "spec 3 and 5.3: LastBackupAge <= 24h (BackupAgeHours <= 24)",
            plan_target=False,
        ),
    ]
)


def today() -> dt.date:
    """The UTC date waivers are judged on (tests replace it)."""
    return dt.datetime.now(dt.UTC).date()


@dataclass(frozen=True)
class Waiver:
    """An approved exception: the plan's target `gate` may be looser than the spec's floor until
    `expires` (inclusive). `target` and `floor` are filled once the plan's targets are read."""

    gate: str
    reason: str
    approved_by: str
    expires: dt.date
    target: float | None = None
    floor: Floor | None = None
    tier: int | None = None

    @property
    def floor_value(self) -> float | None:
        return None if self.floor is None else self.floor.of_tier(self.tier)

    def words(self) -> str:
        """The waiver in one line, for a gate's detail and the report."""
        return f"{self.reason} (approved by {self.approved_by}, expires {self.expires.isoformat()})"

    def to_json(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "reason": self.reason,
            "approved_by": self.approved_by,
            "expires": self.expires.isoformat(),
            "target": self.target,
            "floor": self.floor_value,
            "operator": None if self.floor is None else self.floor.operator,
            "clause": None if self.floor is None else self.floor.clause,
        }


Fail = Callable[[str, str], PlanError]  # a plan key and its problem -> the PlanError naming both


def parse_waivers(value: Any, fail: Fail, add: Callable[[PlanError], None]) -> dict[str, Waiver]:
    """The plan's `waivers:` (absent or null: none), by target key. Each bad entry goes to add()."""
    if value is None:
        return {}
    if not isinstance(value, list):
        add(fail("waivers", "must be a list of {gate, reason, approved_by, expires}"))
        return {}
    waivers: dict[str, Waiver] = {}
    settable = sorted(k for k, f in SPEC_FLOORS.items() if f.plan_target)
    for i, item in enumerate(value):
        where = f"waivers[{i}]"
        if not isinstance(item, dict):
            add(fail(where, f"must be a mapping with {', '.join(WAIVER_KEYS)}, got {quoted(item)}"))
            continue
        unknown = sorted(str(k) for k in item if k not in WAIVER_KEYS)
        missing = [k for k in WAIVER_KEYS if item.get(k) is None]
        if unknown:
            add(
                fail(
                    f"{where}.{quoted(unknown[0], 30).strip(chr(39))}",
                    f"unknown key; a waiver has {', '.join(WAIVER_KEYS)}",
                )
            )
            continue
        if missing:
            add(
                fail(
                    f"{where}.{missing[0]}",
                    f"missing; a waiver needs {', '.join(WAIVER_KEYS)} (the target "
                    f"it loosens, why, who approved it, and an ISO date it ends)",
                )
            )
            continue
        gate = item["gate"]
        if not (isinstance(gate, str) and gate in SPEC_FLOORS and SPEC_FLOORS[gate].plan_target):
            add(
                fail(
                    f"{where}.gate",
                    f"must be the key of a target with a spec floor ({', '.join(settable)}), got {quoted(gate)}",
                )
            )
            continue
        if gate in waivers:
            add(fail(f"{where}.gate", f"{gate} is waived twice; keep one waiver per target"))
            continue
        try:
            reason = _text(item["reason"], f"{where}.reason", fail)
            approved_by = _text(item["approved_by"], f"{where}.approved_by", fail)
            expires = _expiry(item["expires"], f"{where}.expires", fail)
        except PlanError as exc:
            add(exc)
            continue
        waivers[gate] = Waiver(gate, reason, approved_by, expires)
    return waivers


def _expiry(value: Any, key: str, fail: Fail) -> dt.date:
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise fail(key, f"must be an ISO date such as 2026-09-30, got {quoted(value)}") from None
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise fail(key, f"must be an ISO date such as 2026-09-30 (a day, no time), got {quoted(value)}")
    now = today()
    latest = now + dt.timedelta(days=WAIVER_MAX_DAYS)
    if value < now:
        raise fail(
            key,
            f"the waiver expired on {value.isoformat()} (today is {now.isoformat()}, UTC); tighten the "
            f"target to the spec's floor, or have the waiver approved again with a new expiry",
        )
    if value > latest:
        raise fail(
            key,
            f"{value.isoformat()} is more than one quarter ({WAIVER_MAX_DAYS} days) ahead of today "
            f"({now.isoformat()}, UTC); a waiver lasts at most a quarter: expire it on or before "
            f"{latest.isoformat()} and renew it then",
        )
    return value


def flat(targets: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every target, a mapping's entries under "key.entry"."""
    for key, value in targets.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flat(value, name + ".")
        else:
            yield name, value


def floor_problems(
    given: Mapping[str, Any], tier: Any, waivers: Mapping[str, Waiver], fail: Fail, invalid: Any = ()
) -> list[PlanError]:
    """A PlanError (from fail) per target of `given` (the plan's own, already valid numbers)
    looser than its floor without a waiver, and per waiver of a target that is not looser (unless
    the plan's value of it is `invalid`: already refused)."""
    problems: list[PlanError] = []
    loosened = set()
    for key, value in flat(given):
        floor = SPEC_FLOORS.get(key)
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if floor is None or not number or not floor.looser(value, tier):
            continue
        loosened.add(key)
        if key in waivers:
            continue
        limit = floor.of_tier(tier)
        tier_words = " for a tier-1 plan" if limit != floor.floor else ""
        problems.append(
            fail(
                f"targets.{key}",
                f"{quoted(value)} is looser than the spec's floor{tier_words}: "
                f"{floor.words(tier)} ({floor.clause}); set it to {limit:g} or "
                f"tighter, or waive it under 'waivers:' with gate: {key}, reason, "
                f"approved_by and expires (at most {WAIVER_MAX_DAYS} days ahead)",
            )
        )
    for key in waivers:
        if key not in loosened and key not in invalid:
            floor = SPEC_FLOORS[key]
            value = dict(flat(given)).get(key)
            said = f"the plan's target {quoted(value)}" if value is not None else "the default target"
            problems.append(
                fail(
                    f"waivers.{key}",
                    f"{said} is not looser than the spec's floor "
                    f"({floor.words(tier)}): nothing to waive; remove the waiver",
                )
            )
    return problems


def bind(waivers: Mapping[str, Waiver], targets: Mapping[str, Any], tier: Any) -> dict[str, Waiver]:
    """The waivers with the plan's target and the spec's floor filled in."""
    values = dict(flat(targets))
    return {
        k: Waiver(
            w.gate,
            w.reason,
            w.approved_by,
            w.expires,
            values.get(k),
            SPEC_FLOORS.get(k),
            tier if type(tier) is int else None,
        )
        for k, w in waivers.items()
    }


def floors_of(targets: Mapping[str, Any], tier: Any = None) -> dict[str, dict[str, Any]]:
    """The spec's floor of every target of `targets` that has one, for results.json and the report."""
    return {key: SPEC_FLOORS[key].to_json(tier) for key, _ in flat(targets) if key in SPEC_FLOORS}


def waivers_json(waivers: Mapping[str, Waiver], scenarios: Any) -> list[dict[str, Any]]:
    """The plan's waivers for results.json, each with `gates`: the "scenario/gate" ids judged
    waived under it (empty: every gate of that target met the spec's floor)."""
    used: dict[str, list[str]] = {key: [] for key in waivers}
    for scenario in scenarios:
        for gate in scenario.gates:
            key = (getattr(gate, "waiver", None) or {}).get("gate")
            if gate.verdict is Verdict.WAIVED and key in used:
                used[key].append(f"{scenario.name}/{gate.id}")
    return [{**w.to_json(), "gates": used[key]} for key, w in waivers.items()]
