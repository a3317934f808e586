"""Platform health as the Control Plane records it, and the promotion gates that follow from it
(failure-modes matrix rows 4-6).

Connectors report every platform call and health probe (``POST /platforms/{p}/observations``).
The pure part of this module turns a platform's status and an observation, or the passing of
time, into a new status and the events to append:

- ok -> Healthy; 429 -> Degraded; 5xx, timeout, unreachable -> Down. The first failure after
  Healthy sets ``degraded_since`` and appends PlatformDegraded (Jamf: also a CabNotification;
  SCCM: SiteOutageRecorded); the first ok after a failure appends PlatformRecovered.
- ``ThrottleCount`` (``GraphThrottleCount`` for Intune) = 429 answers in the last
  ``throttle_window_s`` of the Control Plane's clock.
- PromotionsPaused = not Healthy, or ThrottleCount > ``throttle_limit`` (resume only when
  GraphThrottleCount <= 5), or a CAB manual pause not yet lifted.
- Intune degraded for more than ``cab_pause_after_s`` (15 min): a CAB manual pause is raised
  (CabManualPauseRaised + CabNotification); only ``POST /platforms/intune/resume`` by a named
  approver lifts it, and only once the platform is Healthy and its throttle count is low.
- SCCM down for more than ``manual_import_after_s`` (24 h): the fallback to manual import is
  offered (ManualImportOffered). Its promotion gate is named ``SCCM.SiteHealth``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from controlplane.platforms import PLATFORMS

HEALTH_OF = {"ok": "Healthy", "throttled": "Degraded", "error": "Down", "timeout": "Down", "unreachable": "Down"}
OUTCOMES = (*HEALTH_OF, "rejected", "dead_lettered")


@dataclass(frozen=True)
class Policy:
    throttle_limit: int = 5
    throttle_window_s: float = 300.0
    cab_pause_after_s: float | None = None
    notify_cab_on_outage: bool = False
    site_outage: bool = False
    manual_import_after_s: float | None = None
    gate: str = "PromotionsPaused"
    throttle_metric: str = "ThrottleCount"


POLICIES = {
    "intune": Policy(cab_pause_after_s=15 * 60, throttle_metric="GraphThrottleCount"),
    "jamf": Policy(notify_cab_on_outage=True),
    "sccm": Policy(site_outage=True, manual_import_after_s=24 * 3600, gate="SCCM.SiteHealth"),
    "landscape": Policy(),
    "ansible": Policy(),
}
assert set(POLICIES) == set(PLATFORMS)


@dataclass(frozen=True)
class Status:
    platform: str
    health: str = "Healthy"
    last_outcome: str | None = None
    degraded_since: dt.datetime | None = None
    cab_pause_since: dt.datetime | None = None
    manual_import_offered_at: dt.datetime | None = None


Event = tuple[str, dict]  # (event type, payload)


def observe(status: Status, outcome: str, now: dt.datetime) -> tuple[Status, list[Event]]:
    """The status after one observation, and the events it causes (time rules not included)."""
    health = HEALTH_OF.get(outcome)
    if health is None:  # rejected / dead-lettered: about one intent, not the platform's health
        return status, []
    policy, name = POLICIES[status.platform], status.platform
    events: list[Event] = []
    if health == "Healthy":
        if status.health != "Healthy":
            down_for = (now - status.degraded_since).total_seconds() if status.degraded_since else None
            events.append(("PlatformRecovered", {"platform": name, "was": status.health, "degraded_for_s": down_for}))
        return replace(
            status, health="Healthy", last_outcome=outcome, degraded_since=None, manual_import_offered_at=None
        ), events
    if status.health == "Healthy":
        events.append(("PlatformDegraded", {"platform": name, "health": health, "outcome": outcome}))
        if policy.site_outage:
            events.append(("SiteOutageRecorded", {"platform": name, "SiteHealth": health, "outcome": outcome}))
        if policy.notify_cab_on_outage:
            events.append(("CabNotification", {"platform": name, "reason": f"{name} {health.lower()}: {outcome}"}))
        status = replace(status, degraded_since=now)
    return replace(status, health=health, last_outcome=outcome), events


def tick(status: Status, now: dt.datetime) -> tuple[Status, list[Event]]:
    """The time rules: CAB manual pause after 15 min degraded, manual import offered after 24 h."""
    policy, name = POLICIES[status.platform], status.platform
    if status.health == "Healthy" or status.degraded_since is None:
        return status, []
    degraded_for = (now - status.degraded_since).total_seconds()
    events: list[Event] = []
    if (
        policy.cab_pause_after_s is not None
        and degraded_for > policy.cab_pause_after_s
        and status.cab_pause_since is None
    ):
        status = replace(status, cab_pause_since=now)
        reason = f"{name} degraded for {degraded_for / 60:.0f} min (> {policy.cab_pause_after_s / 60:.0f} min)"
        events += [
            ("CabManualPauseRaised", {"platform": name, "degraded_for_s": round(degraded_for, 1)}),
            ("CabNotification", {"platform": name, "reason": f"CAB manual pause: {reason}"}),
        ]
    if (
        policy.manual_import_after_s is not None
        and degraded_for > policy.manual_import_after_s
        and status.manual_import_offered_at is None
    ):
        status = replace(status, manual_import_offered_at=now)
        events.append(
            (
                "ManualImportOffered",
                {"platform": name, "degraded_for_s": round(degraded_for, 1), "fallback": "manual-import"},
            )
        )
    return status, events


def view(status: Status, throttle_count: int, now: dt.datetime) -> dict:
    """What GET /platforms/{p} answers, and what the promotion gate reads."""
    policy = POLICIES[status.platform]
    reasons = []
    if status.health != "Healthy":
        reasons.append(f"{status.platform} {status.health} (last outcome {status.last_outcome})")
    if throttle_count > policy.throttle_limit:
        reasons.append(f"{policy.throttle_metric} = {throttle_count} > {policy.throttle_limit}")
    if status.cab_pause_since is not None:
        reasons.append("CAB manual pause not lifted")
    body = {
        "platform": status.platform,
        "health": status.health,
        "last_outcome": status.last_outcome,
        "degraded_since": status.degraded_since,
        "degraded_for_s": round((now - status.degraded_since).total_seconds(), 1) if status.degraded_since else None,
        policy.throttle_metric: throttle_count,
        "throttle_limit": policy.throttle_limit,
        "PromotionsPaused": bool(reasons),
        "pause_reasons": reasons,
        "gate": policy.gate,
        "CabManualPause": status.cab_pause_since is not None,
        "cab_pause_since": status.cab_pause_since,
        "now": now,
    }
    if policy.site_outage:
        body["SiteHealth"] = status.health
        body["fallback"] = "manual-import" if status.manual_import_offered_at else None
    return body


def lift_pause(status: Status, throttle_count: int) -> tuple[Status, str | None]:
    """(status without the CAB pause, None) or (unchanged, why it cannot be lifted yet)."""
    policy = POLICIES[status.platform]
    if status.cab_pause_since is None:
        return status, None
    if status.health != "Healthy":
        return status, f"{status.platform} is {status.health}"
    if throttle_count > policy.throttle_limit:
        return status, f"{policy.throttle_metric} = {throttle_count} > {policy.throttle_limit}"
    return replace(status, cab_pause_since=None), None


# ---- database side -------------------------------------------------------------------------

STATUS_COLUMNS = "platform, health, last_outcome, degraded_since, cab_pause_since, manual_import_offered_at"


async def cp_now(conn) -> dt.datetime:
    """The Control Plane's clock: the database's clock plus the lab's offset."""
    return (await (await conn.execute("SELECT cp_now()")).fetchone())[0]


async def load(conn, platform: str) -> Status:
    """The platform's status row, locked until the transaction ends (created when missing)."""
    await conn.execute("INSERT INTO platform_status (platform) VALUES (%s) ON CONFLICT DO NOTHING", (platform,))
    row = await (
        await conn.execute(f"SELECT {STATUS_COLUMNS} FROM platform_status WHERE platform = %s FOR UPDATE", (platform,))
    ).fetchone()
    return Status(*row)


async def save(conn, status: Status) -> None:
    await conn.execute(
        "UPDATE platform_status SET health = %s, last_outcome = %s, degraded_since = %s,"
        " cab_pause_since = %s, manual_import_offered_at = %s WHERE platform = %s",
        (
            status.health,
            status.last_outcome,
            status.degraded_since,
            status.cab_pause_since,
            status.manual_import_offered_at,
            status.platform,
        ),
    )


async def throttle_count(conn, platform: str, now: dt.datetime) -> int:
    window = POLICIES[platform].throttle_window_s
    row = await (
        await conn.execute(
            "SELECT count(*) FROM platform_observations WHERE platform = %s AND outcome = 'throttled'"
            " AND at > %s - make_interval(secs => %s) AND at <= %s",
            (platform, now, window, now),
        )
    ).fetchone()
    return row[0]
