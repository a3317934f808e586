"""`drill history`: per HA domain and quarter, from verified CAB entries (pure)."""

from __future__ import annotations

import datetime as dt

from harness.report.history import chart, history, quarter, render_history, runs_by_domain

NOW = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)


STAGING = {"class": "staging", "name": "staging-eu"}
LAB = {"class": "lab", "name": "embedded lab"}


def drill(name, domain, when, verdict, *scenarios, **extra):
    """A CAB line of a drill against staging (counted by the default policy) unless `extra` says otherwise."""
    return {
        "kind": "drill",
        "drill": name,
        "ha_domain": domain,
        "verdict": verdict,
        "finished_at": when,
        "scenarios": list(scenarios),
        "environment": STAGING,
        **extra,
    }


def scn(row, verdict, rto=None, rpo=None):
    return {"matrix_row": row, "verdict": verdict, "rto_seconds": rto, "rpo_seconds": rpo}


ENTRIES = [
    drill(
        "quarterly-database",
        "database",
        "2026-04-01T06:00:00+00:00",
        "fail",
        scn(2, "fail", 20.0, 1.0),
        scn(None, "pass", 2.0, 0.0),
    ),
    drill("quarterly-database", "database", "2026-10-01T06:00:00+00:00", "pass", scn(2, "pass", 1.5, 0.0)),
    drill(
        "quarterly-full",
        "all",
        "2026-10-02T06:00:00+00:00",
        "fail",
        scn(1, "pass", 3.0, 0.0),
        scn(7, "fail", None, None),
        scn(2, "pass", 1.2, 0.0),
    ),
    drill("quarterly-api", "api", "2026-10-03T06:00:00+00:00", "pass", scn(1, "pass", 2.0, 0.0), dry_run=True),
    {"kind": "schedule", "event": "skipped", "drill": "quarterly-api", "finished_at": "2026-10-04T00:00:00Z"},
    drill("chaos-x", "chaos", "2026-10-05T00:00:00Z", "fail", scn(None, "fail", 9.0, 0.0)),
]


def test_each_run_counts_for_the_domains_its_scenarios_cover():
    runs = runs_by_domain(ENTRIES)
    assert [(r["drill"], r["verdict"], r["rto_seconds"]) for r in runs["database"]] == [
        ("quarterly-database", "fail", 20.0),
        ("quarterly-database", "pass", 1.5),
        ("quarterly-full", "pass", 1.2),
    ]
    assert [r["drill"] for r in runs["api"]] == ["quarterly-full"]  # the dry run proves nothing
    assert [(r["verdict"], r["rto_seconds"]) for r in runs["event-store"]] == [("fail", None)]
    assert runs["backup-restore"] == [] and "chaos" not in runs


def test_history_gives_quarters_pass_rates_last_passes_and_overdue_domains():
    data = history(ENTRIES, skipped=2, now=NOW)
    database = next(d for d in data["domains"] if d["domain"] == "database")
    assert [(q["quarter"], q["runs"], q["passed"], q["rto_max_s"]) for q in database["quarters"]] == [
        ("2026-Q2", 1, 0, 20.0),
        ("2026-Q4", 2, 2, 1.5),
    ]
    assert database["pass_rate"] == round(2 / 3, 4) and not database["overdue"]
    assert database["last_pass"]["drill"] == "quarterly-database" and database["last_pass"]["class"] == "staging"
    # the full drill failed (row 7): its pass counts for no domain; event store never passed
    assert "event-store" in data["overdue"] and "backup-restore" in data["overdue"]
    assert (data["runs"], data["passed"], data["skipped_unverified"]) == (4, 1, 2)


def test_the_chart_places_marks_on_one_time_axis_with_quarter_ticks():
    start, end = dt.datetime(2026, 3, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    points = [
        {"at": "2026-04-01T00:00:00+00:00", "drill": "d", "verdict": "fail", "rto_seconds": 20.0, "rpo_seconds": 0.0},
        {"at": "2026-10-01T00:00:00+00:00", "drill": "d", "verdict": "pass", "rto_seconds": 2.0, "rpo_seconds": None},
    ]
    c = chart(points, start, end)
    rto = [m for m in c["marks"] if m["shape"] == "circle"]
    assert len(rto) == 2 and rto[0]["x"] < rto[1]["x"] and rto[0]["y"] < rto[1]["y"]  # higher RTO, higher up
    assert [t["label"] for t in c["ticks"]] == ["2026-Q2", "2026-Q3", "2026-Q4"]
    assert quarter(dt.datetime(2026, 12, 31)) == "2026-Q4"


def test_the_trend_page_has_a_chart_per_domain_and_names_skipped_lines():
    page = render_history(history(ENTRIES, skipped=2, now=NOW))
    assert page.count('<svg class="chart"') == 6
    assert "2 line(s) skipped: not verified" in page and "OVERDUE" in page
    assert "http://" not in page and "https://" not in page


# ---- lab runs are rehearsals ---------------------------------------------------------------------------

LAB_ENTRIES = [
    drill(
        "quarterly-full",
        "all",
        "2026-11-01T06:00:00+00:00",
        "pass",
        scn(1, "pass", 2.0, 0.0),
        scn(2, "pass", 1.0, 0.0),
        environment=LAB,
    ),
    drill(
        "quarterly-database",
        "database",
        "2026-11-02T06:00:00+00:00",
        "pass",
        scn(2, "pass", 1.1, 0.0),
        environment=None,
        environment_class="embedded lab: local processes, not production evidence",
    ),  # an old line
]


def test_a_lab_only_history_counts_no_domain_and_shows_each_runs_class():
    data = history(LAB_ENTRIES, skipped=0, now=NOW)
    assert data["overdue"] == ["api", "database", "evidence-store", "event-store", "connectors", "backup-restore"]
    database = next(d for d in data["domains"] if d["domain"] == "database")
    assert database["last_pass"] is None and database["passed"] == 2
    newer = database["newer_uncounted"]
    assert newer["class"] == "lab" and newer["drill"] == "quarterly-database"
    assert [p["class"] for p in database["points"]] == ["lab", "lab"]
    assert database["quarters"] == [
        {
            "quarter": "2026-Q4",
            "runs": 2,
            "passed": 2,
            "counted_passed": 0,
            "classes": {"lab": 2},
            "rto_max_s": 1.1,
            "rpo_max_s": 0.0,
        }
    ]
    assert data["runs_by_class"] == {"lab": 2} and data["count"] == ["staging", "production"]
    assert data["warning"] is None and not data["lab_runs_counted"]
    page = render_history(data)
    assert "lab runs counted" not in page and "Only runs of class <strong>staging or production</strong>" in page
    assert "lab runs are rehearsals" in page and 'class="pass lab"' in page  # pale marks


def test_counting_lab_runs_is_said_in_red_on_the_trend_page():
    data = history(LAB_ENTRIES, skipped=0, now=NOW, count=("lab", "staging", "production"))
    assert data["overdue"] == []  # the full plan without its list of domains covers every one
    assert next(d for d in data["domains"] if d["domain"] == "database")["last_pass"]["class"] == "lab"
    assert data["lab_runs_counted"] and "lab runs counted" in data["warning"]
    page = render_history(data)
    assert '<p class="labcounted" role="alert">WARNING: lab runs counted (--count lab,staging,production)' in page
    assert ".labcounted { background: #cf222e;" in page
