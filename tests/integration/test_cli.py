"""The `drill` command as a user runs it: bad input, and the lab's lifecycle including a killed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.lab import proc
from tests.integration.conftest import start_lab_up
from tests.support import refuses, wait_for

ROOT = Path(__file__).resolve().parents[2]
DRILL = [sys.executable, "-m", "harness.cli"]


def drill(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*DRILL, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})}
    )


@pytest.fixture
def state_dir(tmp_path):
    """A private lab registry, so these tests never touch another run's labs."""
    return {"DRILL_STATE_DIR": str(tmp_path / "state")}


def test_an_invalid_plan_exits_2_naming_the_file_and_key_and_writes_nothing(tmp_path):
    plan = tmp_path / "bad.yaml"
    plan.write_text(
        "drill: x\ntitle: t\nha_domain: database\nlab: embedded\n"
        "scenarios: [scenarios/database/primary_failover.feature]\n"
        "targets: {rto_seconds: soon}\n"
    )
    out = tmp_path / "out"
    result = drill("run", str(plan), "--out", str(out), "--cab-log", str(tmp_path / "cab.jsonl"))
    assert result.returncode == 2
    assert f"{plan}: key 'targets.rto_seconds'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() and not (tmp_path / "cab.jsonl").exists()


def test_an_unknown_feature_file_exits_2(tmp_path):
    plan = tmp_path / "bad.yaml"
    plan.write_text("drill: x\ntitle: t\nha_domain: database\nlab: embedded\nscenarios: [nope.feature]\n")
    result = drill("run", str(plan), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "key 'scenarios[0]': no such feature file: nope.feature" in result.stderr


def lab_pids(env: dict) -> list[int]:
    records = Path(env["DRILL_STATE_DIR"]).glob("*.json")
    pids = []
    for path in records:
        data = json.loads(path.read_text())
        pids += data.get("pids", [])
    return [p for p in pids if proc.is_alive(p)]


def test_lab_up_status_down_leaves_nothing_listening(state_dir):
    process, info = start_lab_up(state_dir)
    try:
        api = info["endpoints"]["api"].split("//")[1]
        assert not refuses(api)
        status = drill("lab", "status", env=state_dir)
        assert info["lab_id"] in status.stdout and '"owner_alive": true' in status.stdout
        pids = lab_pids(state_dir)
        assert pids
        down = drill("lab", "down", env=state_dir)
        assert down.returncode == 0
        assert process.wait(60) == 0
        assert refuses(api)
        assert not [p for p in pids if proc.is_alive(p)]
        assert drill("lab", "status", env=state_dir).stdout.strip() == "no lab is running"
    finally:
        process.kill()
        process.wait()


def test_a_killed_runs_lab_is_cleaned_up_by_the_next_command(state_dir):
    process, info = start_lab_up(state_dir)
    pids = lab_pids(state_dir)
    endpoints = [info["endpoints"]["api"]] + list(info["endpoints"]["instances"].values())
    process.send_signal(signal.SIGKILL)  # the harness dies without any cleanup
    process.wait()
    assert any(proc.is_alive(p) for p in pids)  # its servers outlive it...
    assert drill("lab", "down", env=state_dir).returncode == 0
    wait_for(lambda: not [p for p in pids if proc.is_alive(p)], timeout=30)  # ...until reaped
    assert all(refuses(url.split("//")[1]) for url in endpoints)
    assert not list(Path(state_dir["DRILL_STATE_DIR"]).glob("*.json"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_during_a_drill_heals_takes_the_lab_down_and_writes_nothing(state_dir, tmp_path, sig):
    import requests

    out = tmp_path / "out"
    process = subprocess.Popen(
        [*DRILL, "run", "drills/quarterly-database.yaml", "--out", str(out), "--cab-log", str(tmp_path / "cab.jsonl")],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **state_dir},
    )
    try:
        manifest = wait_for(lambda: next(Path(state_dir["DRILL_STATE_DIR"]).glob("*.lab.json"), None), timeout=60)
        api = json.loads(manifest.read_text())["endpoints"]["api"]

        def writes_made() -> bool:
            try:
                return requests.get(f"{api}/events/count", timeout=2).json()["count"] > 10
            except (requests.RequestException, ValueError, KeyError):
                return False

        wait_for(writes_made, timeout=60)  # the scenario's workload is running
        pids = lab_pids(state_dir)
        # the scenario runner's temp dir is registered: a killed run's is removed by the next one
        records = [json.loads(p.read_text()) for p in Path(state_dir["DRILL_STATE_DIR"]).glob("scenarios-*.json")]
        scenario_dirs = [Path(d) for r in records for d in r["dirs"]]
        assert [r["kind"] for r in records] == ["scenarios"] and scenario_dirs[0].is_dir()
        process.send_signal(sig)
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130, output
    assert "interrupted" in output
    wait_for(lambda: not [p for p in pids if proc.is_alive(p)], timeout=30)
    assert refuses(api.split("//")[1])
    assert not out.exists() and not (tmp_path / "cab.jsonl").exists()
    assert not scenario_dirs[0].exists() and not list(Path(state_dir["DRILL_STATE_DIR"]).glob("scenarios-*.json"))
