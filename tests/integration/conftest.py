"""One embedded lab shared by the tests of a module (starting one takes ~6 s on 2 cores)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from harness.drill import run_drill
from harness.lab.attach import attached_config
from harness.lab.embedded import EmbeddedLab
from harness.plan import load_plan

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


class Gates(dict):
    """A scenario's gates by id; a gate that is not there says why (the scenario's error, what was
    not applicable and why, every gate that did not pass), not a bare KeyError."""

    def __init__(self, scenario: dict):
        super().__init__((g["id"], g) for g in scenario["gates"])
        self.scenario = scenario

    def __missing__(self, key: str) -> dict:
        s = self.scenario
        raise AssertionError(
            f"gate {key} not stated in scenario {s['name']!r}: error {s.get('error')!r}; "
            f"not applicable {s.get('not_applicable')}; gates "
            + "; ".join(f"{g['id']} {g['verdict']} ({g['detail']})" for g in s["gates"] if g["verdict"] != "pass")
        )


def gates_of(scenario: dict) -> dict[str, dict]:
    """A scenario's gates by id (a missing one fails with the scenario's story)."""
    return Gates(scenario)


def not_passed(results: dict) -> str:
    """Every gate that did not pass, one line each with its measure and detail: what an assertion
    should print (pytest would truncate a dict)."""
    lines = []
    for s in results["scenarios"]:
        lines += [
            f"{s['name']}: {g['id']} {g['verdict']}: measured {g['measured']}; {g['detail']}"
            for g in s["gates"]
            if g["verdict"] != "pass"
        ]
        if s["error"]:
            lines.append(f"{s['name']}: {s['error']}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def lab():
    with EmbeddedLab(replication="sync") as running:
        yield running


def start_lab_up(env: dict) -> tuple[subprocess.Popen, dict]:
    """Start `drill lab up` (extra environment `env`) and read the JSON it prints once up."""
    process = subprocess.Popen(
        [*DRILL, "lab", "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("}"):
            break
    return process, json.loads("".join(lines))


def add_aws_key_files(info: dict, folder: Path) -> None:
    """Random S3/SQS keys in 0600 files in `folder`, named in info["secret_files"]."""
    for name in ("aws-access-key", "aws-secret-key"):
        path = folder / name
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(16))
        info["secret_files"][name] = str(path)


@pytest.fixture(scope="module")
def staging(tmp_path_factory):
    """A running lab (another process, as staging is) and what a user knows of it; with the keys
    the harness reads its object store and queues with (moto takes any: random ones, in 0600
    files, so that the leak tests look for them too)."""
    state = tmp_path_factory.mktemp("state")
    process, info = start_lab_up({"DRILL_STATE_DIR": str(state)})
    try:
        add_aws_key_files(info, tmp_path_factory.mktemp("aws-keys"))
        yield info
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        process.stdout.close()


PLATFORMS = ("intune", "jamf", "sccm", "landscape", "ansible")
# everything the `drill lab up` lab's faults may touch, by the names lab.blast_radius takes
STAGING_RADIUS = [
    "database-primary",
    "repl-pg-a",
    "repl-pg-b",
    "s3",
    "s3-replica",
    "evidence-gateway",
    "connector-workers",
    "api-az1",
    "api-az2",
    "api-az3",
    *[f"platform-{p}" for p in PLATFORMS],
    *[f"{p}-api" for p in PLATFORMS],
]
ACTIONS = {
    "kill_database_primary": "kill-primary",
    "database_rebuild": "rebuild",
    "database_failback": "failback",
    "kill_api_instance": "kill-api-instance",
    "redeploy_api_instance": "redeploy-api-instance",
    "degrade_platform": "degrade-platform",
    "kill_platform": "kill-platform",
    "restart_platform": "restart-platform",
    "block_event_store_writes": "block-event-store",
    "release_event_store_writes": "release-event-store",
    "kill_connector_worker": "kill-connector-worker",
    "replace_connector_worker": "replace-connector-worker",
}


def staging_lab_config(staging: dict) -> dict:
    """The `lab:` mapping of an external plan for a lab started by `drill lab up`, every capability
    but the backup service: endpoints, credential files, runbook hooks and reads (token from
    $DRILL_TEST_RUNBOOK_TOKEN), its Toxiproxy's proxies, its S3 fault gateway and clock (the lab's
    control token, from its file), its moto as the object store and the queues."""
    ep, files = staging["endpoints"], staging["secret_files"]

    def hook(action: str) -> dict:
        return {"http": {"url": f"{ep['runbook']}/actions/{action}", "method": "POST", "token_env": TOKEN_ENV}}

    def read(what: str) -> dict:
        return {"http": {"url": f"{ep['runbook']}/reads/{what}", "method": "GET", "token_env": TOKEN_ENV}}

    aws = {
        "endpoint": ep["s3"],
        "region": "us-east-1",
        "access_key_file": files["aws-access-key"],
        "secret_key_file": files["aws-secret-key"],
    }
    return {
        **attached_config(ep, files["pg-password"]),
        "actions": {name: hook(path) for name, path in ACTIONS.items()},
        "reads": {
            "platform_requests": read("platform-requests"),
            "connector_replacements": read("connector-replacements"),
        },
        "api_tier": {"instances": ep["instances"], "probe_window_s": 1.5},  # its HAProxy: 3 x 500 ms
        "proxies": {
            "evidence_store": "s3",
            "evidence_replica": "s3-replica",
            "platforms": {p: f"platform-{p}" for p in PLATFORMS},
        },
        "evidence_gateway": {"url": ep["s3_gateway"], "token_file": files["control-token"]},
        "clock": {"token_file": files["control-token"]},
        "s3": {**aws, "bucket": "evidence", "replica_bucket": "evidence-replica"},
        "queues": {**aws, "prefix": staging["lab_id"]},
        "allow_destructive": True,
        "blast_radius": list(STAGING_RADIUS),
    }
