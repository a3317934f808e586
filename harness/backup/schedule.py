"""The backup schedule and retention rules (spec section 3), pure: times in, decisions out.

Every time is epoch seconds on the Control Plane's clock (``cp_now()``), the clock its
BackupAgeHours gate reads, except ``lock_expired``'s ``store_now`` (the object store's clock,
which enforces Object Lock).

- ``due(now, last_hourly, last_export, last_inventory)`` names what is due, in the order to run:
  "hourly" when no hourly snapshot was taken in the current clock hour (UTC hours; a last one
  in another hour, also one in the future after the clock moved back, does not count);
  "export" when the last cross-region export is 24 h old or more (or there is none);
  "inventory" when none was taken on the current UTC day; "retention" whenever any of these is
  due. A gap of many hours is one "hourly": a missed hour is coalesced, never caught up hour by
  hour.
- ``hourly_expired``: an hourly snapshot older than 7 days is deleted.
- ``export_expired``: an export older than 90 days may be deleted, and is only once
  ``lock_expired`` says its Object Lock retention has passed.
"""

from __future__ import annotations

import datetime as dt

HOUR = 3600.0
DAY = 86400.0
HOURLY_RETENTION_DAYS = 7
EXPORT_RETENTION_DAYS = 90
EXPORT_EVERY_S = DAY
JOBS = ("hourly", "export", "inventory", "retention")


def hour_start(now: float) -> float:
    return (now // HOUR) * HOUR


def day_of(epoch: float) -> str:
    """The UTC date of an epoch, YYYY-MM-DD (the inventory's and event-store export's name)."""
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d")


def hourly_due(now: float, last_hourly: float | None) -> bool:
    start = hour_start(now)
    return last_hourly is None or not (start <= last_hourly < start + HOUR)


def export_due(now: float, last_export: float | None) -> bool:
    return last_export is None or now - last_export >= EXPORT_EVERY_S


def inventory_due(now: float, last_inventory: float | None) -> bool:
    return last_inventory is None or day_of(last_inventory) != day_of(now)


def due(now: float, last_hourly: float | None, last_export: float | None, last_inventory: float | None) -> list[str]:
    """What is due now (see the module docstring), in the order it must run."""
    jobs = []
    if hourly_due(now, last_hourly):
        jobs.append("hourly")
    if export_due(now, last_export):
        jobs.append("export")
    if inventory_due(now, last_inventory):
        jobs.append("inventory")
    if jobs:
        jobs.append("retention")
    return jobs


def retain_until(taken_at: float, days: float = EXPORT_RETENTION_DAYS) -> float:
    return taken_at + days * DAY


def hourly_expired(taken_at: float, now: float, days: float = HOURLY_RETENTION_DAYS) -> bool:
    return now - taken_at > days * DAY


def export_expired(taken_at: float, now: float, days: float = EXPORT_RETENTION_DAYS) -> bool:
    return now - taken_at > days * DAY


def lock_expired(retain_until_epochs: list[float | None], store_now: float) -> bool:
    """True when no version's Object Lock retention still holds at store_now."""
    return all(until is None or until <= store_now for until in retain_until_epochs)
