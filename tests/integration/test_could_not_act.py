"""A run that could not act is not a verdict about the deployment (issue 24, section 5).

The staging lab of tests/integration/test_external.py (`drill lab up`, reached as an external
target) with the plan's kill hook pointed elsewhere: at a runbook endpoint on 127.0.0.1 that
answers 401 (the plan's credentials: exit 2), or at a closed port (unreachable: exit 4). The
confirmed drill, and a confirmed chaos run, must then say NOT RUN, print no measurement and no
heal of a fault that never happened, and write a CAB line "not run", never a verdict."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.net import free_port
from tests.integration.conftest import DRILL, ROOT, staging_lab_config
from tests.integration.test_external import drill, plan_for, runbook
from tests.support import JsonHandler, http_server

pytestmark = pytest.mark.integration
STAGING = {"class": "staging", "name": "staging-lab"}


class Refuses(JsonHandler):
    """A runbook endpoint whose token the plan got wrong: 401 to every call, each one counted."""

    calls: list[str] = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Refuses.calls.append(self.path)
        self.send_json(401, {"error": "invalid bearer token"})


@pytest.fixture
def refusing():
    Refuses.calls = []
    with http_server(Refuses) as url:
        yield url


def with_kill_hook(plan: Path, url: str) -> Path:
    data = yaml.safe_load(plan.read_text())
    data["lab"]["actions"]["kill_database_primary"] = {"http": {"url": url, "method": "POST"}, "timeout_s": 10}
    plan.write_text(yaml.safe_dump(data))
    return plan


def last_cab_line(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "cab.jsonl").read_text().splitlines()[-1])


def assert_not_run(done: subprocess.CompletedProcess, tmp_path: Path, code: int, cause: str) -> dict:
    """Exit `code`, NOT RUN with `cause`, no figure and no heal said; the CAB line "not run"."""
    err = done.stderr
    assert done.returncode == code, err[-3000:]
    assert "Traceback" not in err and "NOT RUN" in err and cause in err
    assert "RPO" not in err and "lost " not in err and "RTO" not in err  # nothing measured
    assert "HEAL FAILED" not in err and "healed kill-primary" not in err  # nothing to heal
    assert "verdict FAIL" not in err and "drill:   gate " not in err  # no gate judged
    line = last_cab_line(tmp_path)
    assert line["verdict"] == "not_run" and line["not_run"].startswith("not run: ") and cause in line["not_run"]
    assert {s["verdict"] for s in line["scenarios"]} == {"not_run"}
    assert line["gates"]["fail"] == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["not_run"]["exit_code"] == code
    for scenario in results["scenarios"]:
        assert scenario["gates"] == [] and scenario["error"].startswith("not run")
        assert not {"rto_seconds", "rpo_seconds", "lost_writes"} & set(scenario["measurements"])
    assert "NOT RUN" in (tmp_path / "out" / "report.html").read_text()
    return results


def test_a_kill_hook_that_answers_401_is_not_run_exit_2_and_never_a_verdict(staging, tmp_path, refusing):
    before = runbook(staging, "/state")["primary"]
    plan = with_kill_hook(plan_for(staging, tmp_path, plan={"environment": STAGING}), f"{refusing}/kill")
    done = drill(staging, plan, tmp_path, "--confirm", "staging-database")
    assert_not_run(done, tmp_path, 2, "answered 401")
    assert Refuses.calls == ["/kill"]  # the kill was asked once, and refused
    assert runbook(staging, "/state")["primary"] == before  # nothing was touched


def test_a_kill_hook_that_cannot_be_reached_is_not_run_exit_4(staging, tmp_path):
    plan = with_kill_hook(
        plan_for(staging, tmp_path, plan={"environment": STAGING}), f"http://127.0.0.1:{free_port()}/kill"
    )
    done = drill(staging, plan, tmp_path, "--confirm", "staging-database")
    assert_not_run(done, tmp_path, 4, "ConnectionError")


def test_a_chaos_fault_the_hook_refuses_is_not_run_never_a_failed_gate(staging, tmp_path, refusing):
    from tests.integration.test_chaos import env_of

    lab = staging_lab_config(staging)
    lab["actions"]["kill_database_primary"] = {"http": {"url": f"{refusing}/kill"}}
    plan = tmp_path / "chaos.yaml"
    plan.write_text(
        yaml.safe_dump(
            {
                "chaos": "chaos-kill",
                "title": "kill the primary",
                "lab": lab,
                "environment": STAGING,
                "blast_radius": ["database-primary"],
                "workload": "probes",
                "faults": [{"type": "database_primary_kill", "target": "database-primary", "duration": "2s"}],
            }
        )
    )
    done = subprocess.run(
        [
            *DRILL,
            "chaos",
            str(plan),
            "--confirm",
            "chaos-kill",
            "--out",
            str(tmp_path / "out"),
            "--cab-log",
            str(tmp_path / "cab.jsonl"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=env_of(staging),
    )
    assert_not_run(done, tmp_path, 2, "answered 401")
    assert Refuses.calls == ["/kill"]
