"""The external provider, exercised for real: an embedded lab started separately (`drill lab up`)
stands in for staging, and a plan names its endpoints, credential files and runbook hooks."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import requests
import yaml

from tests.integration.conftest import DRILL, ROOT, TOKEN_ENV, staging_lab_config


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
    from harness.net import free_port

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
