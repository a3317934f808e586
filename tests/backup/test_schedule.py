"""The schedule and retention rules, pure (no I/O): due() at its boundaries, a long gap coalesced
into one snapshot, and the retention ages."""

from __future__ import annotations

import calendar

from harness.backup.schedule import DAY, HOUR, day_of, due, export_expired, hourly_expired, lock_expired, retain_until

T = float(calendar.timegm((2026, 11, 28, 10, 0, 0)))  # 10:00:00 UTC, an hour boundary


def test_everything_is_due_when_nothing_was_ever_taken():
    assert due(T, None, None, None) == ["hourly", "export", "inventory", "retention"]


def test_hourly_is_due_once_per_clock_hour():
    fresh = (T - 60, T - 60)  # export and inventory not due
    assert due(T, T - 1, *fresh) == ["hourly", "retention"]  # 09:59:59 is the previous hour
    assert due(T, T, *fresh) == []  # taken at 10:00:00
    assert due(T + HOUR - 1, T, *fresh) == []  # 10:59:59, same hour
    assert due(T + HOUR, T + HOUR - 1, *fresh) == ["hourly", "retention"]
    assert due(T, T + 2 * HOUR, *fresh) == ["hourly", "retention"]  # the clock moved back


def test_a_long_gap_is_one_snapshot_not_one_per_missed_hour():
    jobs = due(T, T - 30 * HOUR, T - 60, T - 60)
    assert jobs.count("hourly") == 1 and jobs == ["hourly", "retention"]


def test_export_every_24_hours():
    assert "export" not in due(T, T, T - DAY + 1, T)
    assert due(T, T, T - DAY, T) == ["export", "retention"]


def test_inventory_once_per_clock_day():
    midnight = float(calendar.timegm((2026, 11, 29, 0, 0, 0)))
    assert "inventory" not in due(midnight - 1, midnight - 1, midnight - 1, midnight - 23 * HOUR)
    assert due(midnight, midnight, midnight - 1, midnight - 1) == ["inventory", "retention"]
    assert day_of(midnight - 1) == "2026-11-28" and day_of(midnight) == "2026-11-29"


def test_retention_ages():
    assert not hourly_expired(T - 7 * DAY, T) and hourly_expired(T - 7 * DAY - 1, T)
    assert not export_expired(T - 90 * DAY, T) and export_expired(T - 90 * DAY - 1, T)
    assert retain_until(T) == T + 90 * DAY
    assert lock_expired([T - 1, None], T) and lock_expired([], T)
    assert not lock_expired([T - 1, T + 1], T)
