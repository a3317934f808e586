"""The schedule's backup jobs against a deployment with its own pgBackRest repository (issue 26).

The TEST plays the deployment, as tests/restore/test_restore_external.py does (its fixture lives in
that test module, so this one has its own, smaller: one cluster, one full backup): a PostgreSQL,
its own pgbackrest.conf and secrets, a repository in a moto bucket over TLS, archiving,
stanza-create and one full backup run by hand. The daemon's jobs read it through the --backup
file (the keys of lab.backups), read only: backup:age-check passes with the fresh backup, fails
when it is older than max_age_hours (a tiny max_age_hours: the backup is some seconds old), is
unknown when the repository cannot be read; backup:verify passes, and fails naming the backup
once one bit of it is flipped in the bucket. Every object of the bucket (key and ETag) is the same
after the jobs, and no secret reaches the ledger, the CAB log or the daemon's log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import yaml

from harness.cab.ledger import read_cab_entries
from harness.lab.moto import MotoServer
from harness.lab.postgres import RUN_AS, SUPERUSER, PgCluster
from harness.net import free_port
from harness.schedule import backup_jobs
from harness.schedule.daemon import Daemon

pytestmark = pytest.mark.integration

if shutil.which("pgbackrest") is None:
    pytest.skip(
        "pgbackrest is not installed (./run installs it; or apt-get install pgbackrest)", allow_module_level=True
    )

BUCKET = "deployment-pg-backups"
KEY, SECRET, CIPHER = "sched-key-7c1e", "sched-secret-2b9f04d6e1a3", "sched-cipher-pass-8a4c1f0e9d27b3"


@dataclass
class Deployment:
    moto: MotoServer
    pg: PgCluster
    s3: object
    folder: Path  # the deployment's pgBackRest folder: config, conf.d (secrets), log, lock, spool
    config: Path
    secret_file: Path
    label: str = ""

    def pgbackrest(self, command: str, *options: str) -> str:
        args = [
            "pgbackrest",
            f"--config={self.config}",
            f"--config-include-path={self.folder / 'conf.d'}",
            "--stanza=main",
            *options,
            command,
        ]
        if os.geteuid() == 0:
            args = ["runuser", "-u", RUN_AS, "--", *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))}
        done = subprocess.run(args, capture_output=True, text=True, timeout=180, env=env, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done
        return done.stdout

    def objects(self) -> dict[str, str]:
        """Every object of the bucket: key -> ETag."""
        found = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for item in page.get("Contents", []):
                found[item["Key"]] = item["ETag"]
        return found

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


def own(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, RUN_AS, RUN_AS)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with ExitStack() as stack:
        moto = stack.enter_context(MotoServer(tls=True))
        pg = stack.enter_context(PgCluster())
        assert moto.ca_file is not None
        s3 = boto3.client(
            "s3",
            endpoint_url=moto.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            verify=str(moto.ca_file),
        )
        s3.create_bucket(Bucket=BUCKET)
        folder = pg.root / "deployment-pgbackrest"
        folder.mkdir(mode=0o700)
        for sub in ("conf.d", "log", "lock", "spool"):
            (folder / sub).mkdir(mode=0o700)
        shutil.copyfile(moto.ca_file, folder / "ca.crt")
        port = moto.endpoint_url.rpartition(":")[2]
        config = folder / "pgbackrest.conf"
        config.write_text(
            "[global]\n"
            "repo1-type=s3\nrepo1-path=/pgbackrest\n"
            f"repo1-s3-bucket={BUCKET}\nrepo1-s3-endpoint=localhost\nrepo1-storage-port={port}\n"
            "repo1-s3-region=us-east-1\nrepo1-s3-uri-style=path\n"
            f"repo1-storage-ca-file={folder / 'ca.crt'}\n"
            "repo1-cipher-type=aes-256-cbc\nrepo1-bundle=y\nrepo1-retention-full=2\n"
            f"log-path={folder / 'log'}\nlock-path={folder / 'lock'}\nspool-path={folder / 'spool'}\n"
            "log-level-console=off\nlog-level-stderr=warn\nstart-fast=y\ncompress-type=lz4\n"
            "process-max=2\nio-timeout=20\narchive-timeout=60\n"
            "\n[main]\n"
            f"pg1-path={pg.primary.datadir}\npg1-port={pg.primary.port}\n"
            f"pg1-socket-path={pg.socket_dir}\npg1-user={SUPERUSER}\n"
        )
        (folder / "conf.d" / "secrets.conf").write_text(
            f"[global]\nrepo1-s3-key={KEY}\nrepo1-s3-key-secret={SECRET}\nrepo1-cipher-pass={CIPHER}\n"
        )
        for path in (folder, *folder.rglob("*")):
            own(path)
        secret_file = tmp_path_factory.mktemp("target-secrets") / "s3-secret"
        secret_file.write_text(SECRET + "\n")
        secret_file.chmod(0o600)
        dep = Deployment(moto, pg, s3, folder, config, secret_file)
        archive = (
            f"pgbackrest --config={config} --config-include-path={folder / 'conf.d'} --stanza=main archive-push %p"
        )
        with pg.primary.connect(admin=True, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET archive_mode = 'on'")
            conn.execute(f"ALTER SYSTEM SET archive_command = '{archive}'")
        pg.primary.stop()
        pg.primary.start()
        dep.pgbackrest("stanza-create")
        dep.pgbackrest("backup", "--type=full")
        [backup] = json.loads(dep.pgbackrest("info", "--output=json"))[0]["backup"]
        dep.label = backup["label"]
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


def tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(folder.rglob("*"))
    }


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
    s3 = deployment.s3
    prefix = f"pgbackrest/backup/main/{deployment.label}/"
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]
    largest = max((o for o in listed if "/bundle/" in o["Key"] or "/pg_data/" in o["Key"]), key=lambda o: o["Size"])
    original = s3.get_object(Bucket=BUCKET, Key=largest["Key"])["Body"].read()
    body = bytearray(original)
    body[len(body) // 2] ^= 0x10
    s3.put_object(Bucket=BUCKET, Key=largest["Key"], Body=bytes(body))
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
        s3.put_object(Bucket=BUCKET, Key=largest["Key"], Body=original)
