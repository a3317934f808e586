"""The schedule's pure rules: the calendar, the misfire rule, blackout windows, staleness."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from harness.calendar import LATE_AFTER_S, blackout_at, domain_states, fire_times, misfire, parse_blackouts
from harness.errors import PlanError

UTC = dt.UTC
QUARTERLY = "0 6 1 1,4,7,10 *"


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def fail(key, message):
    return PlanError(f"plan.yaml: key '{key}': {message}")


def test_a_two_year_quarterly_calendar_fires_on_the_first_day_of_each_quarter_at_six_utc():
    times = fire_times(QUARTERLY, at(2027, 1, 1), at(2029, 1, 1))
    assert times == [at(y, m, 1, 6) for y in (2027, 2028) for m in (1, 4, 7, 10)]


def test_a_fire_exactly_at_the_start_counts_and_one_at_the_end_does_not():
    assert fire_times(QUARTERLY, at(2027, 1, 1, 6), at(2027, 4, 1, 6)) == [at(2027, 1, 1, 6)]


def test_a_run_found_within_the_grace_runs_once_and_is_late_by_how_late_it_starts():
    d = misfire([at(2027, 1, 1, 6)], now=at(2027, 1, 1, 8), grace_s=6 * 3600)
    assert d.run_at == at(2027, 1, 1, 6) and d.late_s == 7200 and d.late
    assert d.missed == () and d.coalesced == ()


def test_a_run_within_a_minute_of_its_time_is_on_time():
    d = misfire([at(2027, 1, 1, 6)], now=at(2027, 1, 1, 6) + dt.timedelta(seconds=LATE_AFTER_S - 1))
    assert d.run_at is not None and not d.late


def test_a_run_found_beyond_the_grace_is_missed_and_nothing_runs():
    d = misfire([at(2026, 10, 1, 6)], now=at(2026, 11, 28, 12), grace_s=6 * 3600)
    assert d.run_at is None and d.missed == (at(2026, 10, 1, 6),)


def test_several_due_times_are_one_run_for_the_newest_older_ones_missed_or_coalesced():
    times = [at(2027, 1, 1, 0), at(2027, 1, 1, 5), at(2027, 1, 1, 6)]
    d = misfire(times, now=at(2027, 1, 1, 7), grace_s=3 * 3600)
    assert d.run_at == at(2027, 1, 1, 6)
    assert d.coalesced == (at(2027, 1, 1, 5),) and d.missed == (at(2027, 1, 1, 0),)


def test_no_due_time_means_no_run():
    assert misfire([], now=at(2027, 1, 1)).run_at is None


def test_blackout_windows_cover_from_start_to_end_exclusive():
    windows = parse_blackouts(
        [{"start": "2026-12-18", "end": "2027-01-04T00:00:00Z", "reason": "year-end change freeze"}], fail
    )
    assert blackout_at(at(2026, 12, 18), windows).reason == "year-end change freeze"
    assert blackout_at(at(2027, 1, 3, 23, 59), windows) is not None
    assert blackout_at(at(2027, 1, 4), windows) is None
    assert blackout_at(at(2026, 12, 17, 23), windows) is None


@pytest.mark.parametrize(
    "value, names",
    [
        ({"start": "2026-12-18"}, "blackout"),
        ([{"start": "soon", "end": "2027-01-04", "reason": "x"}], "blackout[0]"),
        ([{"start": "2027-01-04", "end": "2026-12-18", "reason": "x"}], "blackout[0]"),
        ([{"start": "2026-12-18", "end": "2027-01-04"}], "blackout[0].reason"),
        ([{"start": "2026-12-18", "end": "2027-01-04", "reason": "x", "extra": 1}], "blackout[0]"),
    ],
)
def test_a_bad_blackout_window_names_its_key(value, names):
    with pytest.raises(PlanError, match=rf"key '{names.replace('[', '.').replace(']', '.')}'"):
        parse_blackouts(value, fail)


STAGING = {"class": "staging", "name": "staging-eu"}


def entry(drill, verdict, finished, **extra):
    """A CAB line of a drill run against staging (a class the default policy counts)."""
    return {"drill": drill, "verdict": verdict, "finished_at": finished.isoformat(), "environment": STAGING, **extra}


def test_a_domain_is_stale_without_a_passing_drill_in_92_days():
    now = at(2027, 4, 1)
    domains = {"quarterly-database": "database", "quarterly-api": "api", "quarterly-full": "all"}
    entries = [
        entry("quarterly-database", "pass", now - dt.timedelta(days=91)),
        entry("quarterly-api", "pass", now - dt.timedelta(days=93)),
        entry("quarterly-api", "fail", now - dt.timedelta(days=1)),  # a failing run proves nothing
        entry("quarterly-api", "pass", now - dt.timedelta(days=1), dry_run=True),  # nor does a dry run
        {
            "kind": "schedule",
            "event": "skipped",
            "drill": "quarterly-api",
            "verdict": "pass",
            "finished_at": now.isoformat(),
        },
    ]
    states = {s.domain: s for s in domain_states(entries, domains.get, now)}
    assert not states["database"].stale and states["database"].last_drill == "quarterly-database"
    assert states["api"].stale and states["api"].last_pass == now - dt.timedelta(days=93)
    assert states["connectors"].stale and states["connectors"].last_pass is None
    assert "no passing drill of class staging or production on record" in states["connectors"].alert(92)
    assert "in the last 92 days" in states["api"].alert(92) and "staging)" in states["api"].alert(92)
    assert states["database"].last_class == "staging"


def test_a_passing_full_drill_counts_for_every_domain():
    now = at(2027, 4, 1)
    full = entry("quarterly-full", "pass", now - dt.timedelta(days=2))
    assert not any(s.stale for s in domain_states([full], {"quarterly-full": "all"}.get, now))
    # the entry's own ha_domain wins over the plans (a drill whose plan is gone still counts)
    assert not any(s.stale for s in domain_states([{**full, "ha_domain": "all"}], lambda d: None, now))
    # a drill of no known domain counts for none
    assert all(s.stale for s in domain_states([full], lambda d: None, now))


def test_a_full_drill_counts_only_for_the_domains_its_scenarios_drilled():
    now = at(2027, 4, 1)
    containers = {
        **entry("quarterly-full-containers", "pass", now - dt.timedelta(days=2)),
        "ha_domain": "all",
        "ha_domains": ["api", "connectors", "database", "event-store", "evidence-store"],
    }
    states = {s.domain: s for s in domain_states([containers], lambda d: None, now)}
    assert states["backup-restore"].stale and states["backup-restore"].last_pass is None
    assert not any(s.stale for d, s in states.items() if d != "backup-restore")


# ---- lab runs are rehearsals: only the policy's classes make a domain current ---------------------------

LAB = {"class": "lab", "name": "embedded lab"}


def test_a_lab_only_history_leaves_every_domain_stale():
    now = at(2027, 4, 1)
    entries = [
        entry("quarterly-full", "pass", now - dt.timedelta(days=1), ha_domain="all", environment=LAB),
        entry(
            "quarterly-database",
            "pass",
            now - dt.timedelta(hours=1),
            ha_domain="database",
            environment={"class": "lab", "name": "container lab"},
        ),
    ]
    states = {s.domain: s for s in domain_states(entries, lambda d: None, now)}
    assert all(s.stale and s.last_pass is None for s in states.values())
    alert = states["database"].alert(92)
    assert "no passing drill of class staging or production on record" in alert
    assert "quarterly-database" in alert and "class lab: a rehearsal, not counted" in alert


def test_lab_runs_count_only_when_the_policy_says_so():
    now = at(2027, 4, 1)
    entries = [entry("quarterly-full", "pass", now - dt.timedelta(days=1), ha_domain="all", environment=LAB)]
    states = domain_states(entries, lambda d: None, now, count=("lab", "staging", "production"))
    assert not any(s.stale for s in states) and {s.last_class for s in states} == {"lab"}
    # production only: a staging pass does not count either
    staging = [entry("quarterly-full", "pass", now - dt.timedelta(days=1), ha_domain="all")]
    assert all(s.stale for s in domain_states(staging, lambda d: None, now, count=("production",)))
    assert not any(s.stale for s in domain_states(staging, lambda d: None, now))


def test_a_newer_lab_run_does_not_hide_an_older_staging_pass_nor_replace_it():
    now = at(2027, 4, 1)
    entries = [
        entry("quarterly-database", "pass", now - dt.timedelta(days=95), ha_domain="database"),
        entry("quarterly-database", "pass", now - dt.timedelta(days=2), ha_domain="database", environment=LAB),
    ]
    state = next(s for s in domain_states(entries, lambda d: None, now) if s.domain == "database")
    assert state.stale and state.last_pass == now - dt.timedelta(days=95) and state.last_class == "staging"
    assert state.uncounted == (now - dt.timedelta(days=2), "quarterly-database", "lab")


@pytest.mark.parametrize(
    "old, counted_as",
    [
        ("embedded lab: local processes, not production evidence", "lab"),
        ("containers: a lab of local containers, not production evidence", "lab"),
        ("lab (embedded)", "lab"),
        ("external: staging-eu", "unknown"),
        ("unknown provider 'x'", "unknown"),
        (None, "unknown"),
    ],
)
def test_an_old_line_without_the_environment_record_is_read_from_its_environment_class(old, counted_as):
    from harness.environments import class_of

    now = at(2027, 4, 1)
    line = {
        "drill": "quarterly-database",
        "ha_domain": "database",
        "verdict": "pass",
        "finished_at": (now - dt.timedelta(days=1)).isoformat(),
        "environment_class": old,
    }
    assert class_of(line) == counted_as
    everything = ("lab", "staging", "production")
    state = next(s for s in domain_states([line], lambda d: None, now, count=everything) if s.domain == "database")
    assert state.stale is (counted_as == "unknown")  # unknown never counts, whatever the policy
    assert all(s.stale for s in domain_states([line], lambda d: None, now))  # the default: neither counts


@pytest.mark.parametrize("cron", ["0 0 31 2 *", "0 0 30 2 *", "0 6 31 4,6,9,11 *"])
def test_a_cron_that_never_fires_is_refused_by_plan_validation(tmp_path, cron):
    from harness.calendar import never_fires
    from harness.plan import load_plan

    assert "never fires" in never_fires(cron)
    path = tmp_path / "plan.yaml"
    path.write_text(
        f"drill: never\ntitle: never\nha_domain: database\nlab: embedded\n"
        f'scenarios: [scenarios/database/primary_failover.feature]\nschedule: "{cron}"\n'
    )
    never = rf"key 'schedule': '{re.escape(cron)}' never fires: .*e\.g\. '0 6 1 1,4,7,10 \*'"
    with pytest.raises(PlanError, match=never):
        load_plan(path, root=Path(__file__).resolve().parents[2])


@pytest.mark.parametrize("cron", [QUARTERLY, "0 0 29 2 *", "0 0 31 * *"])
def test_a_cron_that_fires_even_rarely_is_accepted(cron):
    from harness.calendar import never_fires

    assert never_fires(cron) is None
