"""The schedule's backup jobs against a running lab standing in for a deployment: the hourly
snapshot through harness.backup, and LastBackupAge read from the backup store by the harness."""

from __future__ import annotations

import datetime as dt
import os

import pytest
import yaml

from harness.backup.catalogue import catalogue
from harness.cab.ledger import read_cab_entries
from harness.lab.parts import S3_ENV
from harness.schedule.backup_jobs import load_backup_target
from harness.schedule.daemon import Daemon

pytestmark = pytest.mark.integration


def target_file(staging, tmp_path, name: str, buckets: str, **changes):
    address = staging["endpoints"]["database"]["pg-a"].split(" ")[0]
    host, port = address.rsplit(":", 1)
    data = {
        "database": {
            "dsn": f"host={host} port={port} dbname=controlplane user=controlplane",
            "password_file": staging["secret_files"]["pg-password"],
        },
        "s3": {
            "endpoint": staging["endpoints"]["s3"],
            "region": S3_ENV["AWS_DEFAULT_REGION"],
            "access_key_env": "TEST_S3_KEY",
            "secret_key_env": "TEST_S3_SECRET",
        },
        "buckets": {"hourly": f"{buckets}-hourly", "export": f"{buckets}-dr", "vault": f"{buckets}-vault"},
        **changes,
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def daemon_for(staging, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_S3_KEY", S3_ENV["AWS_ACCESS_KEY_ID"])
    monkeypatch.setenv("TEST_S3_SECRET", S3_ENV["AWS_SECRET_ACCESS_KEY"])
    monkeypatch.setenv("DRILL_STATE_DIR", str(tmp_path))
    (tmp_path / "plans").mkdir()

    def make(backup_file):
        return Daemon(
            tmp_path / "plans",
            store=f"sqlite:///{tmp_path / 's.sqlite'}",
            cab_log=tmp_path / "cab.jsonl",
            backup_file=backup_file,
            log=lambda line: None,
        )

    return make


def now():
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def test_the_hourly_job_takes_a_snapshot_and_the_daily_check_reads_its_age_from_the_store(
    staging, tmp_path, daemon_for
):
    path = target_file(staging, tmp_path, "backup.yaml", "sched")
    daemon = daemon_for(path)
    assert daemon.backup_job("backup:snapshot", [now()]) == "pass"
    [run] = daemon.ledger.runs("backup:snapshot")
    assert run["status"] == "pass" and "hourly" in run["reason"]
    store, _ = load_backup_target(path).store_and_vault()
    assert [m.kind for m in catalogue(store, store.bucket)] == ["hourly"]
    assert daemon.backup_job("backup:age-check", [now()]) == "pass"
    assert "LastBackupAge 0.0 h" in daemon.ledger.runs("backup:age-check")[0]["reason"]
    first = daemon.ledger.runs("backup:snapshot")[0]["scheduled_for"]
    assert daemon.backup_job("backup:snapshot", [dt.datetime.fromisoformat(first)]) == "duplicate"


def test_the_daily_check_fails_without_a_backup_and_says_so_in_the_cab_log(staging, tmp_path, daemon_for):
    daemon = daemon_for(target_file(staging, tmp_path, "empty.yaml", "nothing"))
    daemon.backup.store_and_vault()[0].ensure()
    assert daemon.backup_job("backup:age-check", [now()]) == "fail"
    [record] = read_cab_entries(tmp_path / "cab.jsonl")
    assert record["event"] == "backup_failed" and "no backup on record" in record["reason"]


def test_a_job_that_cannot_reach_the_database_fails_without_showing_the_password(staging, tmp_path, daemon_for):
    path = target_file(staging, tmp_path, "wrong.yaml", "wrong")
    data = yaml.safe_load(path.read_text())
    secret = tmp_path / "wrong-password"
    secret.write_text("not-the-password-42\n")
    data["database"]["password_file"] = str(secret)
    path.write_text(yaml.safe_dump(data))
    daemon = daemon_for(path)
    assert daemon.backup_job("backup:snapshot", [now()]) == "fail"
    [run] = daemon.ledger.runs("backup:snapshot")
    assert "not-the-password-42" not in run["reason"] and run["reason"]
    assert "not-the-password-42" not in (tmp_path / "cab.jsonl").read_text()


@pytest.mark.parametrize(
    "change, key",
    [
        ({"database": {"dsn": "host=x password=pw"}}, "database"),
        ({"s3": {"endpoint": "s3.example"}}, "s3.endpoint"),
        ({"max_age_hours": 0}, "max_age_hours"),
        ({"retention": 3}, "retention"),
    ],
)
def test_a_bad_backup_target_names_its_key(tmp_path, change, key):
    from harness.errors import PlanError

    base = {"database": {"dsn": "host=x"}, "s3": {"endpoint": "http://x"}}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({**base, **change}))
    with pytest.raises(PlanError, match=f"key '{key}'"):
        load_backup_target(path)
    assert os.path.exists(path)
