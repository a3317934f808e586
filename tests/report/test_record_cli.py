"""The record's commands as a user runs them: drill verify, drill cab verify, drill report --pdf,
drill history, drill matrix --json, drill --version and the exit codes in --help. The output
folders are written by the runner's own write_outputs from a result built here (no lab)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.model import DrillResult
from harness.plan import load_plan
from harness.report.browser import available
from harness.report.cab_log import load_key
from harness.runner.record import Recording, complete, write_outputs
from harness.signoff import SignOff

ROOT = Path(__file__).resolve().parents[2]
DRILL = [sys.executable, "-m", "harness.cli"]


class NoLab:
    api_url = None


def drill(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*DRILL, *args], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def recorded(tmp_path):
    """Two drills of the database plan, recorded as the runner records them."""
    key_path = tmp_path / "cab.key"
    key_path.write_text(os.urandom(32).hex())
    plan = load_plan(ROOT / "drills" / "quarterly-database.yaml", root=ROOT)
    rec = Recording(tmp_path / "cab.jsonl", key=load_key(key_path),
                    signoff=SignOff(owner="Platform SRE", change_ticket="CHG1", operator="ops"))
    dirs = []
    for n, (verdict, rto) in enumerate((("fail", 40000.0), ("pass", 1.5))):
        result = DrillResult.from_json({
            "drill": plan.drill, "title": plan.title, "ha_domain": "database", "verdict": verdict,
            "finished_at": f"2026-0{4 + 3 * n}-01T06:00:00+00:00", "targets": dict(plan.targets),
            "environment": {"provider": "embedded"},
            "scenarios": [{"name": "crash", "feature": "database/primary_failover.feature", "verdict": verdict,
                           "matrix_row": {"number": 2, "component": "Database", "failure": "Primary unavailable"},
                           "measurements": {"rto_seconds": rto, "rpo_seconds": 0.0, "lost_writes": 0},
                           "gates": [{"id": "rto_seconds", "description": "RTO", "verdict": verdict, "measured": rto,
                                      "threshold": "<= 28800 s", "operator": "<=", "limit": 28800.0, "unit": "s"}]}]})
        complete(result, plan, NoLab(), rec)
        out = tmp_path / f"out{n}"
        write_outputs(result, plan, out, rec, log=lambda *a, **k: None)
        dirs.append(out)
    return {"dirs": dirs, "args": ["--cab-log", str(rec.cab_log), "--cab-key", str(key_path)], "log": rec.cab_log}


def test_an_intact_folder_verifies_and_an_edited_file_is_named(recorded):
    first, second = recorded["dirs"]
    ok = drill("verify", str(second), *recorded["args"])
    assert ok.returncode == 0 and "INTACT" in ok.stdout and "line 2" in ok.stdout
    results = json.loads((first / "results.json").read_text())
    assert results["since_last_run"][0]["changed"] == ["first recorded run"]
    assert json.loads((second / "results.json").read_text())["since_last_run"][0]["previous"]["verdict"] == "fail"
    edited = (first / "results.json").read_text().replace('"verdict": "fail"', '"verdict": "pass"')
    (first / "results.json").write_text(edited)
    bad = drill("verify", str(first), *recorded["args"])
    assert bad.returncode == 1 and "results.json: changed since the drill wrote it" in bad.stdout
    refused = drill("report", str(first), *recorded["args"])
    assert refused.returncode == 1 and "not rebuilding" in refused.stdout


def test_a_forged_manifest_does_not_match_the_cab_line(recorded):
    folder = recorded["dirs"][1]
    (folder / "report.html").write_text("<p>all fine</p>")
    manifest = json.loads((folder / "manifest.json").read_text())
    import hashlib
    manifest["files"]["report.html"] = hashlib.sha256(b"<p>all fine</p>").hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    bad = drill("verify", str(folder), *recorded["args"])
    assert bad.returncode == 1 and "manifest.json: its sha256 is not the one" in bad.stdout and "line 2" in bad.stdout


def test_cab_verify_names_the_first_bad_line_and_matrix_skips_it(recorded):
    assert drill("cab", "verify", *recorded["args"]).returncode == 0
    lines = recorded["log"].read_text().splitlines()
    entry = json.loads(lines[0])
    entry["verdict"] = "pass"
    recorded["log"].write_text(json.dumps(entry) + "\n" + lines[1] + "\n")
    bad = drill("cab", "verify", *recorded["args"])
    assert bad.returncode == 1 and "line 1: its hash does not match its content" in bad.stdout
    matrix = json.loads(drill("matrix", "--json", *recorded["args"]).stdout)
    assert matrix["skipped_unverified"] == 1
    assert matrix["rows"][1]["last_verdict"] == "pass" and matrix["rows"][1]["last_run"].startswith("2026-07")
    missing = drill("cab", "verify", "--cab-log", str(recorded["log"]), "--cab-key", "/nonexistent.key")
    assert missing.returncode == 2 and "no CAB key" in missing.stderr


def test_history_json_and_its_trend_page(recorded, tmp_path):
    page = tmp_path / "history.html"
    done = drill("history", "--json", "--html", str(page), *recorded["args"])
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    database = next(d for d in data["domains"] if d["domain"] == "database")
    assert [(q["quarter"], q["passed"], q["rto_max_s"]) for q in database["quarters"]] == [
        ("2026-Q2", 0, 40000.0), ("2026-Q3", 1, 1.5)]
    assert page.read_text().count('<svg class="chart"') == 6


@pytest.mark.skipif(available() is not None, reason=f"headless Chromium unavailable: {available()}")
def test_report_rebuilds_with_a_pdf_and_the_rebuild_is_recorded(recorded):
    folder = recorded["dirs"][1]
    done = drill("report", str(folder), "--pdf", *recorded["args"])
    assert done.returncode == 0, done.stderr
    assert (folder / "report.pdf").read_bytes().startswith(b"%PDF")
    assert "report.pdf" in json.loads((folder / "manifest.json").read_text())["files"]
    last = json.loads(recorded["log"].read_text().splitlines()[-1])
    assert (last["kind"], last["event"], last["files"]) == ("report", "rebuilt", ["report.html", "report.pdf"])
    assert drill("verify", str(folder), *recorded["args"]).returncode == 0   # the newest line naming it


def test_version_and_the_exit_codes_in_help():
    version = drill("--version")
    assert version.returncode == 0 and version.stdout.startswith("drill 0.")
    helptext = drill("--help").stdout
    for line in ("0    pass", "1    a gate failed", "2    invalid input", "3    a gate could not be judged",
                 "4    the lab or the target could not be reached", "130  interrupted"):
        assert line in helptext


def test_a_run_outside_its_window_is_refused_before_any_lab_starts(tmp_path):
    done = drill("run", "drills/quarterly-database.yaml", "--out", str(tmp_path / "out"),
                 "--window", "2020-01-01T00:00Z/2020-01-01T02:00Z")
    assert done.returncode == 2 and "outside the change window" in done.stderr and "--outside-window" in done.stderr
    assert not (tmp_path / "out").exists() and "lab" not in done.stderr.split("outside")[0]
