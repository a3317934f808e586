"""One embedded lab shared by the tests of a module (starting one takes ~6 s on 2 cores)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from dataclasses import replace

import pytest

from harness.lab.attach import attached_config
from harness.lab.embedded import EmbeddedLab
from harness.plan import load_plan
from harness.runner import run_drill

ROOT = Path(__file__).resolve().parents[2]
DRILL = [sys.executable, "-m", "harness.cli"]
TOKEN_ENV = "DRILL_TEST_RUNBOOK_TOKEN"


def run_plan(plan_name: str, running_lab, tmp_path: Path, **changes) -> tuple[int, dict]:
    """Run drills/<plan_name> (with `changes` to the plan) against a running lab: (exit code, the
    results as results.json holds them)."""
    plan = load_plan(ROOT / "drills" / plan_name, ROOT)
    return run_loaded(replace(plan, **changes) if changes else plan, running_lab, tmp_path)


def run_loaded(plan, lab, tmp_path: Path) -> tuple[int, dict]:
    code, result = run_drill(plan, tmp_path / "out", tmp_path / "cab.jsonl", lab=lab, log=lambda *a, **k: None)
    return code, result.to_json() if result is not None else None


def gates_of(scenario: dict) -> dict[str, dict]:
    """A scenario's gates by id."""
    return {g["id"]: g for g in scenario["gates"]}


def not_passed(results: dict) -> str:
    """Every gate that did not pass, one line each with its measure and detail: what an assertion
    should print (pytest would truncate a dict)."""
    lines = []
    for s in results["scenarios"]:
        lines += [f"{s['name']}: {g['id']} {g['verdict']}: measured {g['measured']}; {g['detail']}"
                  for g in s["gates"] if g["verdict"] != "pass"]
        if s["error"]:
            lines.append(f"{s['name']}: {s['error']}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def lab():
    with EmbeddedLab(replication="sync") as running:
        yield running


def start_lab_up(env: dict) -> tuple[subprocess.Popen, dict]:
    """Start `drill lab up` (extra environment `env`) and read the JSON it prints once up."""
    process = subprocess.Popen([*DRILL, "lab", "up"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, cwd=ROOT, env={**os.environ, **env})
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("}"):
            break
    return process, json.loads("".join(lines))


@pytest.fixture(scope="module")
def staging(tmp_path_factory):
    """A running lab (another process, as staging is) and what a user knows of it."""
    state = tmp_path_factory.mktemp("state")
    process, info = start_lab_up({"DRILL_STATE_DIR": str(state)})
    try:
        yield info
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        process.stdout.close()




def staging_lab_config(staging: dict) -> dict:
    """The `lab:` mapping of an external plan for a lab started by `drill lab up`: endpoints,
    credential files, runbook hooks (token from $DRILL_TEST_RUNBOOK_TOKEN)."""
    ep = staging["endpoints"]

    def hook(action: str) -> dict:
        return {"http": {"url": f"{ep['runbook']}/actions/{action}", "method": "POST", "token_env": TOKEN_ENV}}

    return {**attached_config(ep, staging["secret_files"]["pg-password"]),
            "actions": {"kill_database_primary": hook("kill-primary"), "database_rebuild": hook("rebuild"),
                        "database_failback": hook("failback")},
            "allow_destructive": True, "blast_radius": ["database-primary", "repl-pg-b"]}
