"""The schedule's rules, pure: times in, decisions out (no clock is read here).

- ``fire_times(cron, start, end)``: every time a plan's 5-field cron fires in [start, end), UTC.
- Blackout windows (change freezes) from a plan's ``blackout`` key or a calendar file: a
  scheduled run whose time falls in one is skipped, with the window's reason.
- The misfire rule (``misfire``), applied to the run times a scheduler found due at ``now``
  (several when the daemon was down over more than one fire):
  * the newest due time runs once if ``now`` is at most ``grace_s`` after it: "late" by
    ``now - time`` when that is more than ``LATE_AFTER_S``, else on time;
  * every older due time is coalesced into that run ("coalesced") when within the grace, else
    "missed"; the newest is "missed" too when beyond the grace, and nothing runs;
  * so a missed fire is recorded, never run twice and never caught up one by one.
- Staleness: an HA domain with no passing drill (not a dry run) of a counted environment class
  in the last ``max_age_days`` (a quarter, 92 days) is stale; a passing plan of ha_domain "all"
  counts for every domain its scenarios drilled. The classes counted are the policy's
  (harness.environments: staging and production by default): a lab run is a rehearsal and makes
  no domain current unless the policy says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from .environments import DEFAULT_COUNT, class_of, count_words
from .inputs import printable

UTC = dt.UTC
DEFAULT_GRACE_S = 6 * 3600.0  # a quarterly drill may start up to 6 h late, not later
LATE_AFTER_S = 60.0  # within a minute of its time a run is on time
STALE_AFTER_DAYS = 92.0  # one quarter
DOMAINS = ("api", "database", "evidence-store", "event-store", "connectors", "backup-restore")


class PlanCron(CronTrigger):
    """A 5-field cron trigger in UTC that keeps its expression: the job store writes the
    expression, never the trigger object (harness.schedule.jobstore)."""

    __slots__ = ("expression",)


def cron_trigger(cron: str) -> PlanCron:
    trigger = PlanCron.from_crontab(cron, timezone=UTC)
    trigger.expression = cron
    return trigger


def never_fires(cron: str) -> str | None:
    """Why a valid 5-field cron never fires (a day no month of its months has, e.g. 31 February),
    or None when it fires. A 5-field cron repeats within the 400 years of the Gregorian calendar,
    so "no fire from 2000 to the end of APScheduler's calendar" is "never"."""
    if cron_trigger(cron).get_next_fire_time(None, dt.datetime(2000, 1, 1, tzinfo=UTC)) is not None:
        return None
    return (
        f"'{printable(cron, 60)}' never fires: no month of it has that day (e.g. 31 February); "
        f"e.g. '0 6 1 1,4,7,10 *' for quarterly"
    )


def fire_times(cron: str, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Every fire of `cron` (UTC) at or after `start` and before `end`."""
    trigger, times = cron_trigger(cron), []
    current = trigger.get_next_fire_time(None, start)
    while current is not None and current < end:
        times.append(current)
        current = trigger.get_next_fire_time(current, current + dt.timedelta(seconds=1))
    return times


# ---- blackout windows -------------------------------------------------------------------------


@dataclass(frozen=True)
class Blackout:
    start: dt.datetime
    end: dt.datetime
    reason: str

    def covers(self, when: dt.datetime) -> bool:
        return self.start <= when < self.end

    def describe(self) -> str:
        return f"blackout {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC: {self.reason}"


def _in_utc(value: dt.datetime) -> dt.datetime | None:
    """value, or None when it has no UTC time (0001-01-01T00:00+23:59 is before year 1 in UTC)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        return None
    return value


def _instant(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return _in_utc(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return _in_utc(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    return None


def parse_blackouts(value: Any, fail: Callable[[str, str], Exception], key: str = "blackout") -> tuple[Blackout, ...]:
    """A list of {start, end, reason}: ISO times (UTC unless an offset is given) or dates."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise fail(
            key,
            "must be a list of windows {start, end, reason}, e.g. "
            "[{start: 2026-12-18, end: 2027-01-04, reason: year-end change freeze}]",
        )
    windows = []
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(item, dict) or set(item) - {"start", "end", "reason"}:
            raise fail(where, "must be a mapping with keys start, end and reason")
        start, end = _instant(item.get("start")), _instant(item.get("end"))
        if start is None or end is None:
            raise fail(
                where,
                "start and end must be ISO dates or times in years 1 to 9999 (in UTC too), "
                "e.g. 2026-12-18 or 2026-12-18T18:00:00Z",
            )
        if end <= start:
            raise fail(where, f"end {end.isoformat()} must be after start {start.isoformat()}")
        reason = item.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise fail(f"{where}.reason", "required: why nothing may run (e.g. the change freeze's name)")
        windows.append(Blackout(start, end, reason.strip()))
    return tuple(windows)


def blackout_at(when: dt.datetime, windows: Iterable[Blackout]) -> Blackout | None:
    return next((w for w in windows if w.covers(when)), None)


# ---- misfires ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    run_at: dt.datetime | None  # the scheduled time the one run stands for, or None
    late_s: float = 0.0  # how late that run starts
    coalesced: tuple[dt.datetime, ...] = ()
    missed: tuple[dt.datetime, ...] = ()

    @property
    def late(self) -> bool:
        return self.run_at is not None and self.late_s > LATE_AFTER_S


def misfire(run_times: Iterable[dt.datetime], now: dt.datetime, grace_s: float = DEFAULT_GRACE_S) -> Decision:
    """The misfire rule (module docstring) for the run times due at `now`."""
    times = sorted(run_times)
    if not times:
        return Decision(None)
    newest, older = times[-1], times[:-1]
    within = [t for t in older if (now - t).total_seconds() <= grace_s]
    beyond = [t for t in older if (now - t).total_seconds() > grace_s]
    late_s = max(0.0, (now - newest).total_seconds())
    if late_s > grace_s:
        return Decision(None, late_s, (), tuple(beyond + within + [newest]))
    return Decision(newest, late_s, tuple(within), tuple(beyond))


# ---- staleness --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainState:
    domain: str
    last_pass: dt.datetime | None  # the newest passing drill of a counted class
    last_drill: str | None
    stale: bool
    last_class: str | None = None  # its environment class (staging, production; lab when counted)
    counted: tuple[str, ...] = DEFAULT_COUNT
    # the newest passing drill of a class not counted (a lab rehearsal), when newer than last_pass:
    # (finished, drill, class)
    uncounted: tuple[dt.datetime, str | None, str] | None = None

    def alert(self, max_age_days: float) -> str:
        what = f"passing drill of class {count_words(self.counted)}"
        also = ""
        if self.uncounted is not None:
            when, drill, cls = self.uncounted
            also = (
                f"; the newer {drill} at {when:%Y-%m-%d %H:%M} UTC ran on class {cls}: "
                f"{'a rehearsal, ' if cls == 'lab' else ''}not counted"
            )
        if self.last_pass is None:
            return f"ALERT: HA domain {self.domain} has no {what} on record (the spec wants one a quarter){also}"
        return (
            f"ALERT: HA domain {self.domain} has no {what} in the last {max_age_days:g} days "
            f"(last: {self.last_drill} at {self.last_pass:%Y-%m-%d %H:%M} UTC, {self.last_class}){also}"
        )


def domain_states(
    entries: Iterable[dict],
    domain_of: Callable[[str], str | None],
    now: dt.datetime,
    max_age_days: float = STALE_AFTER_DAYS,
    domains: Iterable[str] = DOMAINS,
    count: Iterable[str] = DEFAULT_COUNT,
) -> list[DomainState]:
    """Each HA domain's last passing drill of a class the policy `count`s, from CAB log entries
    (drill results only: no dry run, no schedule record, no chaos run), whether it is stale at
    `now`, and the newest passing run of a class not counted (a lab rehearsal) when newer."""
    count = tuple(count)
    last: dict[str, tuple[dt.datetime, str | None, str]] = {}  # domain -> (finished, drill, class)
    other: dict[str, tuple[dt.datetime, str | None, str]] = {}
    for entry in entries:
        if entry.get("kind", "drill") != "drill" or entry.get("dry_run") or entry.get("verdict") != "pass":
            continue
        finished = _instant(entry.get("finished_at"))
        drill = entry.get("drill")
        drill = drill if isinstance(drill, str) else None
        domain = entry.get("ha_domain") or (domain_of(drill) if isinstance(drill, str) else None)
        if finished is None or domain is None:
            continue
        cls = class_of(entry)
        into = last if cls in count else other
        # "all": every domain its scenarios drilled (older lines without the list: every domain)
        covered = (entry.get("ha_domains") or DOMAINS) if domain == "all" else (domain,)
        for d in covered:
            if d not in into or into[d][0] < finished:
                into[d] = (finished, drill, cls)
    horizon = now - dt.timedelta(days=max_age_days)
    states = []
    for d in domains:
        newer = other.get(d)
        counted = last.get(d)
        if counted is None:
            states.append(DomainState(d, None, None, True, None, count, newer))
            continue
        when, drill, cls = counted
        if newer is not None and newer[0] <= when:
            newer = None
        states.append(DomainState(d, when, drill, when < horizon, cls, count, newer))
    return states
