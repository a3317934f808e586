"""Rules of the report family: files written whole and parseable, HTML safe and readable, CAB log chained."""

import json
import re
import xml.etree.ElementTree as ET

import pytest

from harness.model import DrillResult, Verdict
from harness.report import (
    CabLogCorrupt,
    append_cab_log,
    render_html,
    verify_cab_log,
    write_all,
    write_results,
)


def R(data: dict) -> DrillResult:
    """The typed result the report reads, from results.json's shape."""
    return DrillResult.from_json(data)


def make_results(name="db-primary-kill", rto_verdict="pass", rto=3.2):
    return {
        "schema_version": 2,
        "drill": "quarterly-database",
        "title": "Quarterly database failover drill",
        "correlation_id": "drill-7f3a",
        "started_at": "2024-05-01T10:00:00Z",
        "finished_at": "2024-05-01T10:12:00Z",
        "verdict": "fail" if rto_verdict == "fail" else "pass",
        "targets": {"rto_seconds": 30, "rpo_seconds": 300},
        "environment": {
            "hostname": "lab-1",
            "python": "3.11.9",
            "lab_provider": "embedded",
            "versions": {"postgresql": "16.2"},
            "db_password": "hunter2",
        },
        "scenarios": [
            {
                "name": name,
                "verdict": rto_verdict,
                "measurements": {
                    "rto_seconds": rto,
                    "rpo_seconds": 0.0,
                    "lost_writes": 0,
                    "duplicated_writes": 0,
                    "availability": None,
                },
                "phases": {"detect": 1.5, "promote": 2.9, "first_write": rto},
                "lost_write_keys": [],
                "timeline": {
                    "probes": [[0.0, "ok"], [5.0, "fail"], [7.0, "info"], [12.0, "ok"]],
                    "fault_windows": [[4.0, 10.0, "kill primary"], [11.0, None, "partition"]],
                },
                "correlation_ids": ["sc-1", "fault-2"],
                "gates": [
                    {
                        "id": "rto_seconds",
                        "description": "Recovery time <= 30 s",
                        "measured": rto,
                        "threshold": "<= 30 s",
                        "verdict": rto_verdict,
                        "detail": "rto",
                    },
                    {
                        "id": "availability",
                        "description": "Availability >= 99.9%",
                        "measured": None,
                        "threshold": ">= 0.999",
                        "verdict": Verdict.UNKNOWN,
                        "detail": "missing measurement 'availability'",
                    },
                    {
                        "id": "lost_writes",
                        "description": "Lost <= 0",
                        "measured": 0,
                        "threshold": "<= 0",
                        "verdict": "pass",
                        "detail": "",
                    },
                ],
            }
        ],
        "correlation_ids": ["drill-7f3a"],
    }


def test_the_three_files_are_written_and_parse(tmp_path):
    paths = write_all(R(make_results()), tmp_path / "out")
    data = json.loads(paths["results"].read_text())
    assert data["drill"] == "quarterly-database"
    assert data["scenarios"][0]["gates"][1]["verdict"] == "unknown"
    ET.parse(paths["junit"])
    assert paths["html"].read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["junit.xml", "report.html", "results.json"]


def test_results_json_sorts_keys_only_within_measurements(tmp_path):
    results = make_results()
    results["scenarios"][0]["measurements"]["rto_seconds"] = float("nan")
    text = write_results(R(results), tmp_path).read_text()
    data = json.loads(text)
    assert list(data)[:3] == ["schema_version", "drill", "title"]
    assert list(data["scenarios"][0]["measurements"]) == sorted(data["scenarios"][0]["measurements"])
    assert data["scenarios"][0]["measurements"]["rto_seconds"] is None  # NaN is not JSON
    assert results["scenarios"][0]["measurements"]["rto_seconds"] != 0  # input untouched
    assert text.startswith("{\n  ")


def test_a_failed_write_leaves_no_half_file_behind(tmp_path):
    write_results(R(make_results()), tmp_path)
    before = (tmp_path / "results.json").read_text()
    bad = make_results()
    bad["environment"]["oops"] = object()  # not JSON-serialisable
    with pytest.raises(TypeError):
        write_results(R(bad), tmp_path)
    assert (tmp_path / "results.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_junit_has_one_case_per_gate_per_scenario_with_failure_and_error(tmp_path):
    root = ET.parse(write_all(R(make_results(rto_verdict="fail", rto=45.0)), tmp_path)["junit"]).getroot()
    suite = root.find("testsuite")
    assert suite.get("name") == "quarterly-database"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert {c.get("classname") for c in cases.values()} == {"db-primary-kill"}
    failure = cases["rto_seconds"].find("failure")
    assert "measured 45" in failure.get("message") and "<= 30 s" in failure.get("message")
    error = cases["availability"].find("error")
    assert "measured unknown" in error.get("message")
    assert [c.tag for c in cases["lost_writes"]] == ["properties"]  # a pass: no failure, no error
    assert [c.tag for c in cases["rto_seconds"]] == ["properties", "failure"]


def timed(results: dict) -> dict:
    """make_results' drill with a feature file and times per scenario, a second scenario, and typed
    gates (operator, limit, unit) as the gates write them."""
    scenario = results["scenarios"][0]
    scenario.update(
        feature="database/primary_failover.feature",
        started_at="2024-05-01T10:00:05Z",
        finished_at="2024-05-01T10:02:35.25Z",
    )
    gates = {g["id"]: g for g in scenario["gates"]}
    gates["rto_seconds"].update(operator="<=", limit=30.0, unit="s")
    gates["lost_writes"].update(operator="<=", limit=0, unit="writes")
    results["scenarios"].append(
        {
            "name": "replica-lag",
            "feature": "database/replication_cut.feature",
            "started_at": "2024-05-01T10:03:00Z",
            "finished_at": None,
            "verdict": "pass",
            "gates": [
                {
                    "id": "duplicated_writes",
                    "measured": 0,
                    "threshold": "0",
                    "verdict": "pass",
                    "operator": "==",
                    "limit": 0,
                    "unit": "writes",
                }
            ],
        }
    )
    return results


def properties(case: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in case.findall("properties/property")}


def test_junit_times_the_suite_by_the_drill_and_each_case_by_its_scenario_and_names_its_feature(tmp_path):
    root = ET.parse(write_all(R(timed(make_results())), tmp_path)["junit"]).getroot()
    suite = root.find("testsuite")
    assert float(suite.get("time")) == 720.0  # 10:00:00 to 10:12:00
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    for gate in ("rto_seconds", "availability", "lost_writes"):
        case = cases[("db-primary-kill", gate)]
        assert case.get("time") == "150.250"  # its scenario's 2 min 30.25 s
        assert case.get("file") == "database/primary_failover.feature"
    other = cases[("replica-lag", "duplicated_writes")]
    assert other.get("time") == "0" and other.get("file") == "database/replication_cut.feature"  # never finished


def test_junit_time_is_0_when_the_times_are_unknown_or_unreadable(tmp_path):
    results = make_results()
    results["finished_at"] = "not a time"
    suite = ET.parse(write_all(R(results), tmp_path)["junit"]).getroot().find("testsuite")
    assert suite.get("time") == "0"
    assert {c.get("time") for c in suite.iter("testcase")} == {"0"}


def test_junit_cases_carry_measured_threshold_and_the_typed_comparison_passing_or_not(tmp_path):
    root = ET.parse(write_all(R(timed(make_results(rto_verdict="fail", rto=45.0))), tmp_path)["junit"]).getroot()
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    assert properties(cases[("db-primary-kill", "rto_seconds")]) == {
        "measured": "45.0",
        "threshold": "<= 30 s",
        "operator": "<=",
        "limit": "30.0",
        "unit": "s",
    }
    assert properties(cases[("db-primary-kill", "lost_writes")]) == {  # a pass has them too
        "measured": "0",
        "threshold": "<= 0",
        "operator": "<=",
        "limit": "0",
        "unit": "writes",
    }
    assert properties(cases[("replica-lag", "duplicated_writes")]) == {
        "measured": "0",
        "threshold": "0",
        "operator": "==",
        "limit": "0",
        "unit": "writes",
    }
    assert properties(cases[("db-primary-kill", "availability")]) == {  # not one comparison
        "measured": "unknown",
        "threshold": ">= 0.999",
    }
    assert cases[("db-primary-kill", "rto_seconds")].find("failure").get("type") == "fail"


def test_junit_reports_a_scenario_without_gates_as_an_error(tmp_path):
    results = timed(make_results())
    results["scenarios"][0]["gates"] = []
    root = ET.parse(write_all(R(results), tmp_path)["junit"]).getroot()
    case = [c for c in root.iter("testcase") if c.get("classname") == "db-primary-kill"][0]
    assert case.find("error") is not None
    assert (case.get("file"), case.get("time")) == ("database/primary_failover.feature", "150.250")
    assert properties(case) == {"measured": "unknown", "threshold": "unknown"}


def test_junit_survives_control_characters_and_markup_in_names(tmp_path):
    results = make_results(name='<script>\x00&"')
    ET.parse(write_all(R(results), tmp_path)["junit"])


def test_html_escapes_a_malicious_scenario_name():
    html = render_html(R(make_results(name="<script>alert(1)</script>")))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_html_fetches_nothing_from_the_network():
    html = render_html(R(make_results()))
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "<script" not in html.lower()
    assert "<style>" in html and "<svg" in html


def test_html_shows_fail_and_the_failing_gate_first():
    html = render_html(R(make_results(rto_verdict="fail", rto=45.0)))
    banner = re.search(r'<div class="banner (\w+)"[^>]*>(.*?)</div>', html, re.S)
    assert banner.group(1) == "fail" and "FAIL" in banner.group(2)
    deviations = html[html.index("<h3>Deviations") : html.index("Technical appendix")]
    assert "rto_seconds" in deviations and "Residual risk" in html[: html.index("<h3>Deviations")]
    assert html.index("FAIL") < html.index("Technical appendix")


def test_html_prints_unknown_for_none():
    html = render_html(R(make_results()))
    row = re.search(r"<code>availability</code></td>\s*<td class=\"num\">(\w+)</td>", html)
    assert row.group(1) == "unknown"


def test_html_says_not_applicable_for_a_measure_a_scenario_cannot_have_and_names_its_matrix_row():
    results = make_results()
    results["scenarios"][0]["measurements"] = {"availability": 1.0}  # no write workload
    results["scenarios"][0]["matrix_row"] = {
        "number": 5,
        "component": "Jamf API outage",
        "failure": "macOS distribution fails",
    }
    html = render_html(R(results))
    row = re.search(r"<code>rto_seconds</code></td>\s*<td class=\"num\">30</td>\s*<td class=\"num\">([^<]+)</td>", html)
    assert row.group(1) == "n/a"
    assert "Failure-modes matrix row 5: Jamf API outage" in html


def test_html_draws_probes_and_shades_fault_windows():
    html = render_html(R(make_results()))
    assert len(re.findall(r'<circle class="ok"', html)) == 2
    assert len(re.findall(r'<circle class="fail"', html)) == 1
    assert len(re.findall(r'<rect class="window"', html)) == 2
    assert "partition (not healed)" in html


def test_html_shows_environment_but_never_a_secret():
    html = render_html(R(make_results()))
    assert "lab-1" in html and "embedded" in html and "16.2" in html
    assert "hunter2" not in html


def test_html_renders_a_results_dict_with_almost_nothing_in_it():
    html = render_html(R({"verdict": None}))
    assert "UNKNOWN" in html and "unknown" in html


def test_html_lists_lost_write_keys():
    results = make_results()
    results["scenarios"][0]["lost_write_keys"] = ["intent-41", "intent-42"]
    html = render_html(R(results))
    assert "intent-41" in html and "intent-42" in html


def test_the_cab_log_chains_and_verifies(tmp_path):
    log = tmp_path / "cab" / "cab-log.jsonl"
    first = append_cab_log(log, R(make_results()), report_path="reports/out/1/report.html")
    second = append_cab_log(log, R(make_results(rto_verdict="fail")))
    assert first["prev_hash"] == "0" * 64
    assert second["prev_hash"] == first["hash"]
    assert second["gates"]["fail"] == 1 and second["gates"]["not_passed"] == [
        "db-primary-kill/rto_seconds",
        "db-primary-kill/availability",
    ]
    assert first["report"] == "reports/out/1/report.html"
    lines = log.read_text().splitlines()
    assert [json.loads(line)["hash"] for line in lines] == [first["hash"], second["hash"]]
    assert verify_cab_log(log) == (True, None)


def test_the_cab_log_verifier_finds_the_first_tampered_line(tmp_path):
    log = tmp_path / "cab.jsonl"
    for _ in range(3):
        append_cab_log(log, R(make_results()))
    lines = log.read_text().splitlines()
    tampered = json.loads(lines[1])
    tampered["verdict"] = "pass" if tampered["verdict"] == "fail" else "fail"
    lines[1] = json.dumps(tampered, sort_keys=True, separators=(",", ":"))
    log.write_text("\n".join(lines) + "\n")
    assert verify_cab_log(log) == (False, 2)


def test_the_cab_log_verifier_finds_a_deleted_line(tmp_path):
    log = tmp_path / "cab.jsonl"
    for _ in range(3):
        append_cab_log(log, R(make_results()))
    lines = log.read_text().splitlines()
    log.write_text(lines[0] + "\n" + lines[2] + "\n")
    assert verify_cab_log(log) == (False, 2)


def test_the_cab_log_refuses_to_chain_onto_a_half_written_line(tmp_path):
    log = tmp_path / "cab.jsonl"
    append_cab_log(log, R(make_results()))
    with log.open("a") as f:
        f.write('{"drill": "half')
    assert verify_cab_log(log) == (False, 2)
    with pytest.raises(CabLogCorrupt, match="incomplete"):
        append_cab_log(log, R(make_results()))


def test_an_empty_cab_log_is_valid(tmp_path):
    log = tmp_path / "cab.jsonl"
    log.write_text("")
    assert verify_cab_log(log) == (True, None)
