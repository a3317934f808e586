"""`drill validate PLAN...`: drill and chaos plans checked without running anything, every error of
each file listed at once; exit 0 all valid, 2 any invalid. `--after-failover` is another mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.unit.test_plan import GOOD

ROOT = Path(__file__).resolve().parents[2]
DRILL = [sys.executable, "-m", "harness.cli"]
# five independent mistakes in one drill plan
BAD = """\
drill: Quarterly DB!
title: [x]
ha_domain: moon
lab: {provider: cloud}
scenarios: [scenarios/database/nope.feature]
targets: {rto_seconds: .nan, rpo: 5, lost_writes: -1}
tier: true
colour: blue
"""
CHAOS_BAD = """\
chaos: db-latency
title: ""
lab: running
blast_radius: [db]
workload: [writes]
faults:
  - {type: latancy, target: db, duration: 5s}
  - {type: latency, target: s3, params: {latency_ms: 1}, duration: 5s}
stop_conditions: {probe_failing_s: .inf}
"""


def validate(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*DRILL, "validate", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, "DRILL_STATE_DIR": str(cwd / ".no-state")} if cwd != ROOT else None,
    )


def test_every_shipped_plan_is_valid_and_said_ok():
    plans = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "drills").rglob("*.yaml"))
    done = validate(*plans)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [f"ok  {p}" for p in plans]
    assert any("/chaos/" in p for p in plans)


def test_every_error_of_each_file_is_listed_at_once(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(BAD)
    (tmp_path / "chaos.yaml").write_text(CHAOS_BAD)
    (tmp_path / "latin1.yaml").write_bytes(GOOD.replace("Database", "Caf\xe9").encode("latin-1"))
    scenarios = tmp_path / "scenarios" / "database"
    scenarios.mkdir(parents=True)
    (scenarios / "primary_failover.feature").write_text("Feature: x\n")
    done = validate("good.yaml", "bad.yaml", "chaos.yaml", "latin1.yaml", "missing.yaml", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "ok  good.yaml"
    bad = [line for line in lines if line.startswith("bad.yaml: key '")]
    keys = {line.split("'")[1] for line in bad}
    assert keys == {
        "drill",
        "title",
        "ha_domain",
        "lab.provider",
        "scenarios[0]",
        "targets.rto_seconds",
        "targets.rpo",
        "targets.lost_writes",
        "tier",
        "colour",
    }, bad
    chaos = {line.split("'")[1] for line in lines if line.startswith("chaos.yaml: key '")}
    assert chaos == {"title", "workload", "faults[0]", "faults[1].target", "stop_conditions.probe_failing_s"}
    assert [line for line in lines if line.startswith("latin1.yaml:")] == [
        next(line for line in lines if "not UTF-8" in line)
    ]
    assert any(line.startswith("missing.yaml: no such plan file") for line in lines)
    assert len(lines) == 1 + len(bad) + len(chaos) + 2  # nothing else
    assert "4 of 5 plan file(s) invalid" in done.stderr


def test_json_lists_each_file_with_its_errors(tmp_path):
    (tmp_path / "bad.yaml").write_text(BAD.replace("scenarios/database/nope.feature", "x.feature"))
    done = validate("bad.yaml", "--json", cwd=tmp_path)
    report = json.loads(done.stdout)
    assert done.returncode == 2 and report[0]["file"] == "bad.yaml" and report[0]["kind"] == "drill"
    assert report[0]["valid"] is False and len(report[0]["errors"]) == 10


def test_a_run_still_stops_at_the_first_error(tmp_path):
    (tmp_path / "bad.yaml").write_text(BAD)
    done = subprocess.run(
        [*DRILL, "run", "bad.yaml", "--out", "out"], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("drill: invalid plan: bad.yaml: key 'colour'")
    assert not (tmp_path / "out").exists()


def test_plans_and_after_failover_are_mutually_exclusive(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    done = validate("good.yaml", "--after-failover", cwd=tmp_path)
    assert done.returncode == 2 and "not both" in done.stderr and done.stdout == ""
    done = validate("good.yaml", "--plan", "good.yaml", cwd=tmp_path)
    assert done.returncode == 2 and "--plan" in done.stderr and done.stdout == ""


def test_nothing_to_validate_says_what_may_be(tmp_path):
    done = validate(cwd=tmp_path)
    assert done.returncode == 2 and "PLAN files" in done.stderr and "--after-failover" in done.stderr


def test_help_says_how_a_chaos_plan_is_recognised():
    done = subprocess.run([*DRILL, "validate", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "'chaos' key is a chaos plan" in " ".join(done.stdout.split())
