"""The external provider, exercised for real: an embedded lab started separately (`drill lab up`)
stands in for staging, and a plan names its endpoints, credential files and runbook hooks; and a
run that could not act (a kill hook that refuses or cannot be reached) is never a verdict."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

from harness.net import free_port
from tests.integration.conftest import DRILL, ROOT, TOKEN_ENV, staging_lab_config
from tests.support import JsonHandler, http_server


def runbook(staging, path: str, method: str = "GET") -> dict:
    token = Path(staging["secret_files"]["runbook-token"]).read_text()
    return requests.request(
        method, staging["endpoints"]["runbook"] + path, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ).json()


def plan_for(staging, tmp_path: Path, plan: dict | None = None, **overrides) -> Path:
    """A plan of provider external for the staging lab: the database row, or `plan`'s keys; the
    lab: mapping of staging_lab_config with `overrides`."""
    lab = staging_lab_config(staging)
    lab.update(overrides)
    plan = {
        "drill": "staging-database",
        "title": "Staging database failover",
        "ha_domain": "database",
        "lab": lab,
        "scenarios": ["scenarios/database/primary_failover.feature"],
        # the `drill lab up` lab stands in for staging here
        "environment": {"class": "staging", "name": "staging-lab"},
        "targets": {"rto_seconds": 600, "rpo_seconds": 60},
        **(plan or {}),
    }
    path = tmp_path / "staging.yaml"
    path.write_text(yaml.safe_dump(plan))
    return path


def drill(staging, plan: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    token = Path(staging["secret_files"]["runbook-token"]).read_text()
    return subprocess.run(
        [*DRILL, "run", str(plan), "--out", str(tmp_path / "out"), "--cab-log", str(tmp_path / "cab.jsonl"), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, TOKEN_ENV: token},
    )


def test_without_confirm_the_drill_is_a_dry_run_and_says_so(staging, tmp_path):
    primary = runbook(staging, "/state")["primary"]
    result = drill(staging, plan_for(staging, tmp_path), tmp_path)
    assert result.returncode == 3, result.stderr  # unknown: a dry run proves no recovery
    assert "DRY RUN" in result.stderr and "--confirm" in result.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["dry_run"] is True and results["verdict"] == "unknown"
    gates = {g["id"]: g for g in results["scenarios"][0]["gates"]}
    assert gates["faults_healed"]["verdict"] == "unknown" and "dry run" in gates["faults_healed"]["detail"]
    assert gates["steady_state"]["verdict"] == "pass"
    assert "DRY RUN" in (tmp_path / "out" / "report.html").read_text()
    assert runbook(staging, "/state")["primary"] == primary  # nothing was touched


def test_allow_destructive_false_is_a_dry_run_even_with_confirm(staging, tmp_path):
    result = drill(
        staging, plan_for(staging, tmp_path, allow_destructive=False), tmp_path, "--confirm", "staging-database"
    )
    assert result.returncode == 3 and "allow_destructive" in result.stderr


def test_a_fault_outside_the_blast_radius_is_refused_before_the_run(staging, tmp_path):
    primary = runbook(staging, "/state")["primary"]
    result = drill(
        staging, plan_for(staging, tmp_path, blast_radius=["repl-pg-b"]), tmp_path, "--confirm", "staging-database"
    )
    assert result.returncode == 2
    assert "lab.blast_radius" in result.stderr and "database-primary" in result.stderr
    assert not (tmp_path / "out").exists()
    assert runbook(staging, "/state")["primary"] == primary


def test_confirm_must_name_this_drill(staging, tmp_path):
    result = drill(staging, plan_for(staging, tmp_path), tmp_path, "--confirm", "another-drill")
    assert result.returncode == 2 and "--confirm names 'another-drill'" in result.stderr


def test_a_password_in_the_plan_is_refused(staging, tmp_path):
    plan = plan_for(staging, tmp_path)
    data = yaml.safe_load(plan.read_text())
    data["lab"]["database"]["nodes"]["pg-a"]["dsn"] += " password=hunter2"
    plan.write_text(yaml.safe_dump(data))
    result = drill(staging, plan, tmp_path, "--confirm", "staging-database")
    assert result.returncode == 2 and "password_env" in result.stderr and "hunter2" not in result.stderr


PLANTED_DSN_PASSWORD = "planted-dsn-pw-8c1f"
PLANTED_HOOK_CREDENTIAL = "planted-hook-cred-8c1f"


def test_confirmed_failover_drill_against_staging_passes_and_leaks_no_secret(staging, tmp_path):
    """The runbook token travels as `Authorization: Bearer <token>` on every hook call; the
    database password is read from its file. Neither, nor a password planted in a URI DSN or a
    credential planted in a hook URL (both refused before anything starts), appears in stdout,
    stderr, results.json, junit.xml, report.html or the CAB log."""
    refused_texts = []
    for name, change in (
        (
            "uri-dsn",
            lambda lab: lab["database"]["nodes"]["pg-a"].update(
                dsn=f"postgresql://controlplane:{PLANTED_DSN_PASSWORD}@127.0.0.1/controlplane"
            ),
        ),
        (
            "hook-url",
            lambda lab: lab["actions"]["database_rebuild"]["http"].update(
                url=lab["actions"]["database_rebuild"]["http"]["url"].replace(
                    "://", f"://ops:{PLANTED_HOOK_CREDENTIAL}@"
                )
            ),
        ),
    ):
        planted = tmp_path / name
        planted.mkdir()
        plan = plan_for(staging, planted)
        data = yaml.safe_load(plan.read_text())
        change(data["lab"])
        plan.write_text(yaml.safe_dump(data))
        refused = drill(staging, plan, planted, "--confirm", "staging-database")
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        assert ("password_env" if name == "uri-dsn" else "token_env") in refused.stderr
        assert not (planted / "out").exists() and not (planted / "cab.jsonl").exists()
        refused_texts += [refused.stdout, refused.stderr]

    before = runbook(staging, "/state")["primary"]
    result = drill(staging, plan_for(staging, tmp_path), tmp_path, "--confirm", "staging-database")
    out = tmp_path / "out"
    results = json.loads((out / "results.json").read_text())
    scenario = results["scenarios"][0]
    assert result.returncode == 0, [g for g in scenario["gates"] if g["verdict"] != "pass"]
    assert results["dry_run"] is False
    # the plan says staging: recorded in results.json and the CAB line; no REHEARSAL banner
    assert (results["environment"]["class"], results["environment"]["name"]) == ("staging", "staging-lab")
    line = json.loads((tmp_path / "cab.jsonl").read_text().splitlines()[-1])
    assert line["environment"] == {"class": "staging", "name": "staging-lab"}
    assert "REHEARSAL" not in (out / "report.html").read_text()
    assert {"detect", "promote", "reconnect", "first_write"} <= set(scenario["phases"])
    assert scenario["measurements"]["lost_writes"] == 0
    assert runbook(staging, "/state")["primary"] == before  # failed back
    secrets = [Path(f).read_text() for f in staging["secret_files"].values()]
    secrets += [PLANTED_DSN_PASSWORD, PLANTED_HOOK_CREDENTIAL]
    texts = (
        [result.stdout, result.stderr]
        + [p.read_text() for p in out.iterdir()]
        + [(tmp_path / "cab.jsonl").read_text()]
        + refused_texts
    )
    assert {"results.json", "junit.xml", "report.html"} <= {p.name for p in out.iterdir()}
    for secret in secrets:
        assert len(secret) > 10 and not any(secret in text for text in texts)


def test_validate_after_failover_checks_the_target_and_says_so(staging, tmp_path):
    """`drill validate --after-failover` on the staging target after its failover drill (the test
    above): every check passes, exit 0; the JSON names each check."""
    plan = plan_for(staging, tmp_path)
    done = subprocess.run(
        [*DRILL, "validate", "--after-failover", "--plan", str(plan), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    checks = {c["id"]: c for c in json.loads(done.stdout)}
    assert set(checks) == {
        "services_ready",
        "metadata_tables_in_sync",
        "event_count_growth",
        "approval_event_count_dr",
        "failover_events_in_siem",
    }
    assert done.returncode == 0, [c for c in checks.values() if c["verdict"] != "pass"]
    assert checks["metadata_tables_in_sync"]["measured"]["tables"] == 6
    assert checks["event_count_growth"]["measured"]["appended"] >= 5


def test_validate_says_when_the_target_cannot_be_reached(tmp_path):
    plan = tmp_path / "nowhere.yaml"
    port = free_port()
    plan.write_text(
        yaml.safe_dump(
            {
                "drill": "nowhere",
                "title": "t",
                "ha_domain": "database",
                "scenarios": ["scenarios/database/primary_failover.feature"],
                "environment": {"class": "staging", "name": "nowhere"},
                "lab": {
                    "provider": "external",
                    "api_url": f"http://127.0.0.1:{port}",
                    "toxiproxy_url": f"http://127.0.0.1:{port}",
                    "database": {
                        "failover_target": "b",
                        "nodes": {
                            "a": {"dsn": f"host=127.0.0.1 port={port}"},
                            "b": {"dsn": f"host=127.0.0.1 port={port}"},
                        },
                    },
                },
            }
        )
    )
    done = subprocess.run(
        [*DRILL, "validate", "--after-failover", "--plan", str(plan)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 4 and "does not answer" in done.stderr and "Traceback" not in done.stderr


def test_reset_touches_only_the_harness_toxics_inside_the_blast_radius(staging, monkeypatch):
    from harness.errors import PlanError
    from harness.faults import ToxiproxyControl
    from harness.lab.external import ExternalConfig, ExternalLab

    monkeypatch.setenv(TOKEN_ENV, Path(staging["secret_files"]["runbook-token"]).read_text())
    config = ExternalConfig.parse(staging_lab_config(staging), lambda k, m: PlanError(f"{k}: {m}"))
    lab = ExternalLab(config, confirmed=True).up()
    tox = ToxiproxyControl(staging["endpoints"]["toxiproxy"])
    tox.add_toxic("db", "someone_elses", "latency", "downstream", {"latency": 1})  # not in the radius
    tox.add_toxic("repl-pg-b", "operators_own", "latency", "downstream", {"latency": 1})  # not ours
    tox.add_toxic("repl-pg-b", "drill_left_behind", "latency", "downstream", {"latency": 1})
    try:
        lab.reset_faults()
        assert set(tox.toxics("db")) == {"someone_elses"}
        assert set(tox.toxics("repl-pg-b")) == {"operators_own"}
    finally:
        tox.remove_toxic("db", "someone_elses")
        tox.remove_toxic("repl-pg-b", "operators_own")


# -- A run that could not act is not a verdict about the deployment (issue 24, section 5) --------
# The same staging lab with the plan's kill hook pointed elsewhere: at a runbook endpoint on
# 127.0.0.1 that answers 401 (the plan's credentials: exit 2), or at a closed port (unreachable:
# exit 4). The confirmed drill, and a confirmed chaos run, must then say NOT RUN, print no
# measurement and no heal of a fault that never happened, and write a CAB line "not run", never a
# verdict. (Here rather than in a module of their own: one `drill lab up` serves both.)

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
