"""The database failover drill end to end on a real embedded lab, and its determinism check."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path


from harness.plan import load_plan
from harness.report import verify_cab_log
from harness.runner import run_drill

ROOT = Path(__file__).resolve().parents[2]


def drill(running_lab, tmp_path, plan_name: str, **changes):
    plan = load_plan(ROOT / "drills" / plan_name, ROOT)
    if changes:
        plan = replace(plan, **changes)
    out = tmp_path / "out"
    code, results = run_drill(plan, out, tmp_path / "cab.jsonl", lab=running_lab, log=lambda *a, **k: None)
    return code, results, out


def gates(results) -> dict[str, dict]:
    return {g["id"]: g for g in results["scenarios"][0]["gates"]}


def test_quarterly_database_drill_passes_with_every_output(lab, tmp_path):
    code, results, out = drill(lab, tmp_path, "quarterly-database.yaml")
    scenario = results["scenarios"][0]
    assert code == 0, [g for g in scenario["gates"] if g["verdict"] != "pass"]
    m = scenario["measurements"]
    assert 0 < m["rto_seconds"] < 60
    assert m["rpo_seconds"] == 0 and m["lost_writes"] == 0 and m["duplicated_writes"] == 0
    assert {"detect", "promote", "reconnect", "first_write"} <= set(scenario["phases"])
    assert scenario["phases"]["detect"] <= scenario["phases"]["promote"] <= scenario["phases"]["first_write"]
    assert gates(results)["publish_approval_blocked"]["verdict"] == "pass"
    assert gates(results)["transaction_lag_seconds"]["measured"] <= 5
    assert gates(results)["correlation_ids_recorded"]["verdict"] == "pass"
    # outputs
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["schema_version"] == 1 and on_disk["verdict"] == "pass"
    assert {"drill", "correlation_id", "started_at", "finished_at", "scenarios"} <= set(on_disk)
    suite = ET.parse(out / "junit.xml").getroot()
    assert suite.iter("testcase") and not list(suite.iter("failure"))
    html = (out / "report.html").read_text()
    assert "PASS" in html and results["correlation_id"] in html and "<svg" in html
    assert verify_cab_log(tmp_path / "cab.jsonl") == (True, None)


def test_writes_acknowledged_after_a_replication_cut_are_each_counted_lost(lab, tmp_path):
    code, results, _ = drill(lab, tmp_path, "adhoc-replication-cut-async.yaml")
    m = results["scenarios"][0]["measurements"]
    assert m["acknowledged_after_cut"] == 5
    assert m["lost_writes"] == 5, results["scenarios"][0]["lost_write_keys"]
    assert 0 < m["rpo_seconds"] < 30
    assert code == 1 and gates(results)["lost_writes"]["verdict"] == "fail"


def test_with_synchronous_replication_a_replication_cut_loses_nothing(lab, tmp_path):
    plan = load_plan(ROOT / "drills" / "adhoc-replication-cut-async.yaml", ROOT)
    code, results, _ = drill(lab, tmp_path, "adhoc-replication-cut-async.yaml",
                             lab=replace(plan.lab, replication="sync"))
    m = results["scenarios"][0]["measurements"]
    assert m["acknowledged_after_cut"] == 0     # commits never confirmed: never acknowledged
    assert m["lost_writes"] == 0 and m["rpo_seconds"] == 0
    assert gates(results)["lost_writes"]["verdict"] == "pass"


def test_an_impossible_rto_target_fails_the_drill_and_the_report_says_so(lab, tmp_path):
    plan = load_plan(ROOT / "drills" / "quarterly-database.yaml", ROOT)
    code, results, out = drill(lab, tmp_path, "quarterly-database.yaml",
                               targets={**plan.targets, "rto_seconds": 0.001})
    assert code == 1 and results["verdict"] == "fail"
    rto = gates(results)["rto_seconds"]
    assert rto["verdict"] == "fail" and rto["measured"] > 0.001
    html = (out / "report.html").read_text()
    assert "FAIL" in html and "rto_seconds" in html
    failed = [case.get("name") for case in ET.parse(out / "junit.xml").getroot().iter("testcase")
              if case.find("failure") is not None]
    assert any("rto_seconds" in name for name in failed), failed
