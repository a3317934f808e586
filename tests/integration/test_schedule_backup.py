"""The schedule's backup jobs against a deployment with its own pgBackRest repository (issue 26).

The TEST plays the deployment (tests/pgbackrest_deployment.py, as
tests/restore/test_restore_external.py does): a PostgreSQL, its own pgbackrest.conf and secrets, a
repository in a moto bucket over TLS, archiving, stanza-create, and here one full backup run by
hand. The daemon's jobs read it through the --backup file (the keys of lab.backups), read only:
backup:age-check passes with the fresh backup, fails when it is older than max_age_hours (a tiny
max_age_hours: the backup is some seconds old), is unknown when the repository cannot be read;
backup:verify passes, and fails naming the backup once one bit of it is flipped in the bucket.
Every object of the bucket (key and ETag) is the same after the jobs, and no secret reaches the
ledger, the CAB log or the daemon's log.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from harness.cab.ledger import read_cab_entries
from harness.net import free_port
from harness.schedule import backup_jobs
from harness.schedule.daemon import Daemon
from tests import pgbackrest_deployment
from tests.pgbackrest_deployment import Secrets, require_pgbackrest, tree

pytestmark = pytest.mark.integration

require_pgbackrest()

BUCKET = "deployment-pg-backups"
SECRETS = Secrets("sched-key-7c1e", "sched-secret-2b9f04d6e1a3", "sched-cipher-pass-8a4c1f0e9d27b3")
KEY, SECRET, CIPHER = SECRETS.values()


@dataclass
class Deployment(pgbackrest_deployment.Deployment):
    label: str = ""

    def target(self, folder: Path, name: str = "backup.yaml", **changes) -> Path:
        """The --backup file: the deployment's config, the repository, secrets from env and a file."""
        port = self.moto.endpoint_url.rpartition(":")[2]
        repo = {
            "type": "s3",
            "bucket": BUCKET,
            "endpoint": f"localhost:{port}",  # pgBackRest matches the certificate by DNS name
            "region": "us-east-1",
            "ca_file": str(self.moto.ca_file),
            "path": "/pgbackrest",
            "uri_style": "path",
            "key_env": "SCHED_S3_KEY",
            "secret_file": str(self.secret_file),
            "cipher_pass_env": "SCHED_CIPHER_PASS",
            **changes.pop("repo", {}),
        }
        data = {"tool": "pgbackrest", "stanza": "main", "config_file": str(self.config), "repo": repo, **changes}
        path = folder / name
        path.write_text(yaml.safe_dump(data))
        return path


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    secret_dir = tmp_path_factory.mktemp("target-secrets")
    with pgbackrest_deployment.deployment(
        Deployment, BUCKET, SECRETS, secret_dir, retention_full=2, process_max=2
    ) as dep:
        dep.pgbackrest("backup", "--type=full")
        [dep.label] = dep.labels_in_repo()
        yield dep


@pytest.fixture
def daemon_for(tmp_path, monkeypatch):
    monkeypatch.setenv("SCHED_S3_KEY", KEY)
    monkeypatch.setenv("SCHED_CIPHER_PASS", CIPHER)
    monkeypatch.setenv("DRILL_STATE_DIR", str(tmp_path))
    (tmp_path / "plans").mkdir()
    lines: list[str] = []

    def make(backup_file):
        daemon = Daemon(
            tmp_path / "plans",
            store=f"sqlite:///{tmp_path / 's.sqlite'}",
            cab_log=tmp_path / "cab.jsonl",
            backup_file=backup_file,
            log=lines.append,
        )
        daemon.lines = lines
        return daemon

    return make


def now():
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def no_secret_in(tmp_path: Path, daemon) -> None:
    cab = tmp_path / "cab.jsonl"
    said = json.dumps(daemon.ledger.runs()) + "\n".join(daemon.lines) + (cab.read_text() if cab.exists() else "")
    for secret in (KEY, SECRET, CIPHER):
        assert secret not in said


def test_the_age_check_and_verify_pass_on_a_fresh_backup_and_leave_the_repository_as_it_was(
    deployment, tmp_path, daemon_for
):
    objects, files = deployment.objects(), tree(deployment.folder)
    daemon = daemon_for(deployment.target(tmp_path))
    assert daemon.backup_job("backup:age-check", [now()]) == "pass"
    [run] = daemon.ledger.runs("backup:age-check")
    assert run["status"] == "pass"
    assert re.fullmatch(
        rf"LastBackupAge \d+ s \(limit 24 h\): {deployment.label}, repo1, stopped \S+Z", run["reason"]
    ), run["reason"]
    assert daemon.backup_job("backup:verify", [now()]) == "pass"
    [run] = daemon.ledger.runs("backup:verify")
    assert run["reason"] == "pgbackrest verify: repo1: every file checked, ok", run["reason"]
    assert not (tmp_path / "cab.jsonl").exists()  # a pass is no CAB record
    assert deployment.objects() == objects  # not one object written, replaced or removed
    # the deployment's config, secrets and folders unchanged: the harness logs in its own folder
    assert tree(deployment.folder) == files
    no_secret_in(tmp_path, daemon)


def test_the_age_check_fails_when_the_newest_backup_is_older_than_max_age_hours(deployment, tmp_path, daemon_for):
    # 0.000001 h is 3.6 ms: the backup the fixture made stopped longer ago than that (the job's own
    # pgbackrest info takes longer)
    daemon = daemon_for(deployment.target(tmp_path, max_age_hours=0.000001))
    assert daemon.backup_job("backup:age-check", [now()]) == "fail"
    [run] = daemon.ledger.runs("backup:age-check")
    print(f"backup:age-check: {run['reason']}")
    assert run["status"] == "fail" and "(limit 1e-06 h): " + deployment.label in run["reason"], run["reason"]
    [record] = read_cab_entries(tmp_path / "cab.jsonl")
    assert record["event"] == "backup_failed" and record["reason"] == run["reason"]
    assert any(line.startswith("ALERT: backup:age-check failed: LastBackupAge ") for line in daemon.lines)
    no_secret_in(tmp_path, daemon)


@pytest.mark.parametrize(
    "repo, cause",
    [
        ({"bucket": "no-such-bucket"}, r"repo: pgBackRest cannot open repo1: .*NoSuchBucket"),
        ({"endpoint": "localhost:{port}"}, r"repo: pgBackRest cannot open repo1: .*connect"),
    ],
)
def test_the_jobs_are_unknown_when_the_repository_cannot_be_read(
    deployment, tmp_path, daemon_for, monkeypatch, repo, cause
):
    monkeypatch.setattr(backup_jobs, "CHECK_IO_TIMEOUT_S", 1.0)  # pgBackRest retries: about 4 s, not 20
    repo = {k: v.format(port=free_port()) for k, v in repo.items()}
    daemon = daemon_for(deployment.target(tmp_path, repo=repo))
    for job in ("backup:age-check", "backup:verify"):
        assert daemon.backup_job(job, [now()]) == "unknown"
        [run] = daemon.ledger.runs(job)
        assert run["status"] == "unknown"
        assert run["reason"].startswith("the backup repository cannot be read: ")
        assert re.search(cause, run["reason"]), run["reason"]
        print(f"{job}: {run['reason']}")
    records = read_cab_entries(tmp_path / "cab.jsonl")
    assert [r["event"] for r in records] == ["backup_unknown", "backup_unknown"]
    assert any(line.startswith("ALERT: backup:age-check unknown: ") for line in daemon.lines)
    no_secret_in(tmp_path, daemon)


def test_verify_fails_naming_a_backup_with_a_flipped_bit(deployment, tmp_path, daemon_for):
    key, original = deployment.flip_a_bit(deployment.label)
    try:
        objects = deployment.objects()
        daemon = daemon_for(deployment.target(tmp_path))
        assert daemon.backup_job("backup:verify", [now()]) == "fail"
        [run] = daemon.ledger.runs("backup:verify")
        assert run["reason"].startswith(f"pgbackrest verify: invalid: repo1 {deployment.label}: backup: "), run[
            "reason"
        ]
        assert "checksum invalid: 1" in run["reason"], run["reason"]
        print(f"backup:verify: {run['reason']}")
        [record] = read_cab_entries(tmp_path / "cab.jsonl")
        assert record["event"] == "backup_failed" and deployment.label in record["reason"]
        assert deployment.objects() == objects
        no_secret_in(tmp_path, daemon)
    finally:
        deployment.s3.put_object(Bucket=BUCKET, Key=key, Body=original)
