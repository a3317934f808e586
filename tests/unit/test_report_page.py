"""Page 1 of the report a CAB reads, and the appendix's timeline on one time base (pure rendering)."""

from __future__ import annotations

import html
import re
from itertools import pairwise

from harness.model import DrillResult
from harness.report.html import against, render_html, timeline
from harness.report.risk import assess
from harness.text import human_seconds


def result(**extra) -> DrillResult:
    data = {
        "drill": "quarterly-database",
        "title": "Quarterly database drill",
        "ha_domain": "database",
        "verdict": "fail",
        "targets": {"rto_seconds": 28800.0, "rpo_seconds": 300.0},
        "environment_class": "embedded lab: local processes, not production evidence",
        "system_version": "1.0.0",
        "harness": {"version": "0.1.0", "commit": "abcdef123456"},
        "signoff": {
            "owner": "Platform SRE",
            "operator": "ops1",
            "approver": "J. Doe",
            "change_ticket": "CHG0012345",
            "window": {"start": "2026-12-01T06:00:00Z", "end": "2026-12-01T08:00:00Z"},
            "outside_window": True,
        },
        "since_last_run": [
            {
                "subject": "matrix row 2: Database, Primary unavailable",
                "matrix_row": 2,
                "previous": {
                    "drill": "quarterly-database",
                    "finished_at": "2026-08-01T06:00:00Z",
                    "verdict": "pass",
                    "rto_seconds": 1.2,
                    "rpo_seconds": 0.0,
                },
                "now": {"verdict": "fail", "rto_seconds": 30000.0, "rpo_seconds": 0.0},
                "changed": ["harness 0.0.9 -> 0.1.0 (abcdef123456)"],
            }
        ],
        "scenarios": [
            {
                "name": "primary crash",
                "verdict": "fail",
                "matrix_row": {"number": 2, "component": "Database", "failure": "Primary unavailable"},
                "measurements": {"rto_seconds": 30000.0, "rpo_seconds": 0.0, "lost_writes": 0, "duplicated_writes": 0},
                "phases": {"detect": 1.0, "promote": 1.2, "first_write": 1.5, "failback": 3.0},
                "events": [
                    {"t": 2.0, "kind": "inject", "name": "kill-primary:pg-a", "wall": 1795000000.0},
                    {"t": 3.0, "kind": "detect", "name": "pg-a"},
                    {"t": 3.2, "kind": "promote", "name": "pg-b"},
                ],
                "timeline": {
                    "probes": [[0.5, "ok"], [2.5, "fail"], [4.0, "ok"]],
                    "fault_windows": [[2.0, 4.5, "kill"]],
                },
                "gates": [
                    {
                        "id": "rto_seconds",
                        "description": "RTO within target",
                        "verdict": "fail",
                        "measured": 30000.0,
                        "threshold": "<= 28800 s",
                        "operator": "<=",
                        "limit": 28800.0,
                        "unit": "s",
                    }
                ],
            }
        ],
        **extra,
    }
    data["risk"] = assess(data, tier=1)
    return DrillResult.from_json(data)


def page1(html: str) -> str:
    return html[: html.index("Technical appendix")]


def page_text(page: str) -> str:
    first = page1(page)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", first[first.index("<body>") :])).split())


WINDOW_AT = 1795000200.0  # a 5-minute boundary


def budget_scenario(
    bad: list[tuple[int, int]], good: int = 1, verdict: str = "pass", used: float = 11.5741, name: str = "primary crash"
) -> dict:
    """A scenario whose requests filled `good` good windows and the bad ones [(requests, served)],
    its availability_budget gate as the runner writes it."""
    windows = [
        {
            "start": WINDOW_AT + 300 * i,
            "end": WINDOW_AT + 300 * (i + 1),
            "requests": n,
            "served": s,
            "ratio": round(s / n, 6),
            "good": False,
            "observed_from": WINDOW_AT + 300 * i,
            "observed_to": WINDOW_AT + 300 * i + 299,
        }
        for i, (n, s) in enumerate(bad)
    ]
    windows += [
        {
            "start": WINDOW_AT + 300 * (len(bad) + i),
            "end": WINDOW_AT + 300 * (len(bad) + i + 1),
            "requests": 1000,
            "served": 1000,
            "ratio": 1.0,
            "good": True,
            "observed_from": WINDOW_AT + 300 * (len(bad) + i) + 200,
            "observed_to": WINDOW_AT + 300 * (len(bad) + i) + 299,
        }
        for i in range(good)
    ]
    return {
        "name": name,
        "verdict": verdict,
        "measurements": {
            "bad_windows": len(bad),
            "windows_observed": len(windows),
            "error_budget_used_pct": used,
            "drill_allowance_pct": 25.0,
            "availability_period_days": 30.0,
            "availability_region": "primary",
            "availability_windows": windows,
            "availability": min(w["ratio"] for w in windows),
        },
        "gates": [
            {
                "id": "availability_budget",
                "description": "Error budget used by the drill",
                "verdict": verdict,
                "measured": used,
                "limit": 25.0,
                "operator": "<=",
                "unit": "%",
                "threshold": "<= 25% of the month's error budget",
                "judges": "system",
            }
        ],
    }


def test_page_one_says_the_error_budget_in_one_sentence_and_a_spent_budget_is_low_risk_never_none():
    page = page_text(render_html(result(verdict="pass", scenarios=[budget_scenario([(1620, 1610)])])))
    assert (
        "Availability, on the harness's own requests in region primary: 1 bad 5-minute window "
        "(99.38% served); 11.6% of the month's error budget, allowance 25%: met."
    ) in page
    assert "Verdict: PASS" in page
    assert "Residual risk: low" in page and "Residual risk: none" not in page  # PASS beside a spent budget
    appendix = render_html(result(verdict="pass", scenarios=[budget_scenario([(1620, 1610)])]))
    assert (
        "Windows (UTC): 11:10-11:15 1610 of 1620 served (bad); 11:15-11:20 1000 of 1000 served, observed "
        "11:18:20-11:19:59 only." in appendix
    )  # a window observed in part says so


def test_page_one_says_an_error_budget_over_the_allowance_not_met():
    page = page_text(
        render_html(
            result(scenarios=[budget_scenario([(3000, 2990), (2000, 1990), (100, 99)], verdict="fail", used=34.7222)])
        )
    )
    assert (
        "3 bad 5-minute windows (99.66%, 99.50%, 99.00% served); 34.7% of the month's error budget, "
        "allowance 25%: not met"
    ) in page
    assert "measured 34.7222 % where at most 25 % is required" in page


def test_page_one_with_no_bad_window_and_several_scenarios():
    page = page_text(
        render_html(
            result(
                verdict="pass",
                scenarios=[
                    budget_scenario([], good=2, used=0.0, name="first"),
                    budget_scenario([(1000, 990)], name="second"),
                ],
            )
        )
    )
    assert (
        "Availability, on the harness's own requests in region primary: first: no bad 5-minute window "
        "(100.00% served at the lowest, 2 windows observed); 0% of the month's error budget, allowance 25%: met. "
        "second: 1 bad 5-minute window (99.00% served); 11.6% of the month's error budget, allowance 25%: "
        "met."
    ) in page


def test_page_one_says_the_verdict_environment_figures_risk_and_sign_off_in_words():
    first = page1(render_html(result()))
    first = first[first.index("<body>") :]
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", first)).split())
    assert "Verdict: FAIL" in text
    assert "embedded lab: local processes, not production evidence" in text and "1.0.0" in text
    assert "abcdef123456" in text
    assert "8 h 20 min against 8 h missed by 20 min" in text  # RTO in human units with the margin
    assert "0 s against 5 min met, 5 min to spare" in text
    assert "Residual risk: high , score 10 of 25" in text  # likelihood 2 x impact 5 (tier 1: at most 5)
    assert "measured 8 h 20 min where at most 8 h is required" in text
    assert "Platform SRE" in text and "J. Doe" in text and "CHG0012345" in text
    assert "Run outside its change window" in text
    assert "Since last run" in text and "harness 0.0.9 -> 0.1.0" in text
    assert "{" not in text and "'" not in text.replace("harness's", "").replace("drill's", "")  # no dict dumps


def test_the_timeline_counts_from_the_fault_with_markers_and_the_rto_bracket():
    tl = timeline(
        {"probes": [[0.5, "ok"], [2.5, "fail"], [4.0, "ok"]], "fault_windows": [[2.0, 4.5, "kill"]]},
        [
            {"t": 2.0, "kind": "inject", "name": "kill", "wall": 1795000000.0},
            {"t": 3.0, "kind": "detect", "name": "pg-a"},
        ],
        {"detect": 1.0, "promote": 1.2, "first_write": 1.5},
        1.5,
    )
    xs = {m["title"].split(" +")[0]: m["x"] for m in tl["markers"]}
    assert list(xs) == ["detect", "promote", "first write"] and xs["detect"] < xs["promote"] < xs["first write"]
    assert tl["markers"][0]["title"] == "detect +1 s"
    labels = [m for m in tl["markers"] if m["label"]]  # close markers share one label's room
    assert all(b["x"] - a["x"] >= 70 for a, b in pairwise(labels))
    assert tl["bracket"]["x1"] == tl["windows"][0]["x"] and tl["bracket"]["x2"] == xs["first write"]
    assert tl["origin"]["wall"].endswith("UTC") and tl["ticks"][0]["label"].startswith("-")


def test_human_units_and_margins():
    assert [human_seconds(v) for v in (0.35, 12.34, 252, 28800, 28750)] == [
        "0.35 s",
        "12.3 s",
        "4 min 12 s",
        "8 h",
        "7 h 59 min",
    ]
    assert human_seconds(None) == "not measured"
    assert against(9.0, 8.0)["margin"] == "missed by 1 s" and against(None, 8.0)["met"] is None


def test_driver_errors_read_as_whole_words_and_empty_mappings_as_none():
    import requests

    from harness.text import one_line, show
    from harness.workload.client import transport_error

    libpq = (
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused\n'
        "\tIs the server running on that host and accepting TCP/IP connections?"
    )
    assert one_line(libpq) == (
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused'
    )
    cut = one_line("word " * 100, limit=42)
    assert cut.endswith(" (...)") and cut[:-6].split(" ")[-1] == "word"
    nested = requests.ConnectionError(
        "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: "
        "/intents (Caused by NewConnectionError('<urllib3.connection.HTTPConnection "
        "object at 0x7f>: Failed to establish a new connection: [Errno 111] Connection "
        "refused'))"
    )
    assert transport_error(nested, 10) == "ConnectionError: connection refused"
    assert transport_error(requests.ReadTimeout("x"), 2.5) == "ReadTimeout: no answer within 2.5 s"
    assert show({"ServiceHealth": "Healthy", "parts_down": {}}) == "ServiceHealth Healthy, parts_down none"


def test_a_secret_in_a_gate_detail_is_masked_in_the_report_and_junit():
    import xml.etree.ElementTree as ET

    from harness.report.junit import junit_tree

    planted = "hook answered 500 for Authorization: Bearer s3cr3t-t0ken-42 \ud800"
    r = result()
    r.scenarios[0].gates[0] = type(r.scenarios[0].gates[0])(**{**r.scenarios[0].gates[0].__dict__, "detail": planted})
    page = render_html(r)
    xml = ET.tostring(junit_tree(r), encoding="unicode")
    for text in (page, xml):
        assert "s3cr3t-t0ken-42" not in text and "hook answered 500" in text
        text.encode("utf-8")  # the lone surrogate did not survive
