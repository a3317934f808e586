"""The restore core against a deployment the harness did not set up (issue 26: external targets).

The TEST plays the deployment (tests/pgbackrest_deployment.py): a PostgreSQL with its own
pgBackRest config (a plain pgbackrest.conf it writes, its secrets in its own conf.d), its own
repository in a moto bucket over TLS, archiving, stanza-create; then two full backups run by hand
and one bit of the newest backup's bundle flipped in the bucket. The harness, read only
(ReadOnlyPgBackRest, the plan's keys), verifies, refuses the newest backup with the tool's reason,
restores the older one and the WAL to the end into a scratch server, and every row the deployment
wrote is there; every object of the bucket (key, ETag, a checksum of its bytes) is the same before
and after, and the deployment's config and folders are untouched.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from harness.lab.external.config import BackupRepo, BackupsConfig, Secret
from harness.net import free_port
from harness.restore import (
    ReadOnlyPgBackRest,
    ReadOnlyRefused,
    RestoreInvalid,
    RestoreUnreachable,
    ScratchHost,
    restore_newest_valid,
)
from tests import pgbackrest_deployment
from tests.pgbackrest_deployment import Secrets, require_pgbackrest, tree

pytestmark = pytest.mark.integration

require_pgbackrest()

BUCKET = "deployment-backups"
SECRETS = Secrets("deploy-key-1f3a", "deploy-secret-9c2b7e41d0a8", "deploy-cipher-pass-5e8d20c4b7a1f6")
KEY, SECRET, CIPHER = SECRETS.values()


@dataclass
class Deployment(pgbackrest_deployment.Deployment):
    labels: list[str] = field(default_factory=list)
    point: str = ""  # a time after the first backup, before the rows "between" were written

    def write(self, note: str, count: int) -> None:
        with self.pg.primary.connect() as conn:
            conn.execute("INSERT INTO acks (note) SELECT %s FROM generate_series(1, %s)", (note, count))
            conn.commit()

    def plan(self, **repo_changes) -> BackupsConfig:
        """lab.backups as the plan gives it: the deployment's config, the repository, secrets from env and a file."""
        host, _, port = self.moto.endpoint_url.split("://", 1)[1].rpartition(":")
        repo = {
            "bucket": BUCKET,
            "endpoint": "localhost",  # pgBackRest matches the certificate by DNS name
            "port": int(port),
            "region": "us-east-1",
            "ca_file": str(self.moto.ca_file),
            "path": "/pgbackrest",
            "uri_style": "path",
            "key": Secret(env="DEPLOY_S3_KEY"),
            "secret": Secret(file=str(self.secret_file)),
            "cipher_pass": Secret(env="DEPLOY_CIPHER_PASS"),
            **repo_changes,
        }
        return BackupsConfig("pgbackrest", "main", str(self.config), BackupRepo(**repo))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    secret_dir = tmp_path_factory.mktemp("plan-secrets")
    with pgbackrest_deployment.deployment(
        Deployment, BUCKET, SECRETS, secret_dir, retention_full=4, process_max=4
    ) as dep:
        with dep.pg.primary.connect() as conn:
            conn.execute("CREATE TABLE acks (id bigserial PRIMARY KEY, note text NOT NULL)")
            conn.commit()
        dep.write("before-first", 10)
        dep.pgbackrest("backup", "--type=full")
        dep.point = (
            dep.pg.primary.query("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")[0][
                0
            ]
            + "+00"
        )
        dep.write("between", 20)
        dep.pgbackrest("backup", "--type=full")
        dep.write("after-second", 30)
        dep.pgbackrest("check")  # a WAL switch, archived: every row above is in the repository
        dep.labels = dep.labels_in_repo()
        assert len(dep.labels) == 2
        dep.flip_a_bit(dep.labels[-1])  # the fault: one bit of the newest backup's largest bundle
        yield dep


@pytest.fixture
def host() -> Iterator[ScratchHost]:
    with ScratchHost() as scratch:
        yield scratch


@pytest.fixture
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOY_S3_KEY", KEY)
    monkeypatch.setenv("DEPLOY_CIPHER_PASS", CIPHER)


def test_an_external_deployments_backup_is_verified_and_restored_read_only(
    deployment: Deployment, host: ScratchHost, secrets_in_env: None
) -> None:
    before = deployment.objects(content=True)
    config_before = tree(deployment.folder)
    started = time.monotonic()
    with ReadOnlyPgBackRest(deployment.plan(), host, process_max=4) as tool:
        outcome = restore_newest_valid(tool, host.root, repo=1)
        try:
            # the newest backup refused, with the tool's own reason; the older one restored
            assert [c.label for c in outcome.candidates] == deployment.labels[::-1]
            newest, older = outcome.candidates
            assert newest.refused is not None and "status: invalid" in newest.refused
            assert "checksum invalid: 1" in newest.refused, newest.refused
            assert older.refused is None
            assert outcome.verified and outcome.verify_report is not None
            assert outcome.verify_report.invalid_backups == (deployment.labels[-1],)
            assert outcome.restored is not None and outcome.restored.label == deployment.labels[0]
            assert outcome.restored.repo == 1 and 0 < outcome.restored.age_s < 600
            assert outcome.ok and outcome.server is not None
            timings = outcome.timings
            assert timings.verify_s and timings.restore_s and timings.replay_s
            # WAL replayed to the end: every row the deployment wrote, the ones after the newest backup too
            rows = dict(outcome.server.query("SELECT note, count(*) FROM acks GROUP BY note"))
            assert rows == {"before-first": 10, "between": 20, "after-second": 30}
            # a mutating command is refused before anything runs
            for command in ("stanza-create", "check", "backup", "expire", "archive-push"):
                with pytest.raises(ReadOnlyRefused, match="read only"):
                    tool.run(command)
            with pytest.raises(ReadOnlyRefused, match="--delta"):
                tool.run("restore", f"--pg1-path={host.root / 'x'}", "--archive-mode=off", "--delta")
            logs = "".join(p.read_text(errors="replace") for p in tool.log_files())
            said = outcome.to_json()
            print(f"external restore: {json.dumps(said)}")
        finally:
            outcome.close()
    elapsed = time.monotonic() - started
    print(
        f"external restore: verify {timings.verify_s:.1f} s, restore {timings.restore_s:.1f} s, "
        f"replay {timings.replay_s:.1f} s, all {elapsed:.1f} s"
    )
    assert deployment.objects(content=True) == before  # not one object written, replaced or removed
    # the deployment's config, secrets and folders: no log of the harness's commands, nothing changed
    after = tree(deployment.folder)
    harness_logs = [
        name
        for name in after
        if name.startswith("log/main-")
        and name.split("main-", 1)[1].split(".", 1)[0] in ("info", "verify", "restore", "archive-get")
    ]
    assert harness_logs == []
    assert {k: v for k, v in after.items() if not k.startswith(("log/", "lock/", "spool/"))} == {
        k: v for k, v in config_before.items() if not k.startswith(("log/", "lock/", "spool/"))
    }
    assert "restore command end: completed successfully" in logs
    assert said["restored"]["label"] == deployment.labels[0] and said["candidates"][0]["refused"]
    for secret in (KEY, SECRET, CIPHER):
        assert secret not in logs and secret not in str(said)


def test_a_wrong_stanza_is_one_line_naming_the_key(deployment: Deployment, host: ScratchHost, secrets_in_env) -> None:
    plan = deployment.plan()
    plan = BackupsConfig(plan.tool, "nope", plan.config_file, plan.repo)
    folders = sorted(host.root.iterdir())
    with pytest.raises(RestoreInvalid, match=r"^lab.backups.stanza: no stanza 'nope' in repo1 .*missing stanza path"):
        with ReadOnlyPgBackRest(plan, host):
            pass
    assert sorted(host.root.iterdir()) == folders  # the harness's own folder went with the failure


def test_an_endpoint_that_does_not_answer_is_unreachable(
    host: ScratchHost, deployment: Deployment, secrets_in_env
) -> None:
    with pytest.raises(
        RestoreUnreachable, match=r"^lab.backups.repo: pgBackRest cannot open repo1: .*connect"
    ) as failed:
        with ReadOnlyPgBackRest(deployment.plan(port=free_port()), host, check_io_timeout=1):
            pass
    assert failed.value.exit_code == 4


def test_a_repository_the_tool_cannot_open_is_unreachable(
    deployment: Deployment, host: ScratchHost, secrets_in_env
) -> None:
    folders = sorted(host.root.iterdir())
    with pytest.raises(RestoreUnreachable, match=r"^lab.backups.repo: pgBackRest cannot open repo1: ") as failed:
        with ReadOnlyPgBackRest(deployment.plan(bucket="no-such-bucket"), host):
            pass
    assert sorted(host.root.iterdir()) == folders
    assert failed.value.exit_code == 4
    assert str(failed.value).endswith("404 (NOT FOUND): NoSuchBucket"), failed.value
    for secret in (KEY, SECRET, CIPHER):
        assert secret not in str(failed.value)


def test_a_restore_point_before_the_oldest_backup_is_refused_before_anything_is_restored(
    deployment: Deployment, host: ScratchHost, secrets_in_env
) -> None:
    with ReadOnlyPgBackRest(deployment.plan(), host) as tool:
        folders = sorted(host.root.iterdir())
        with pytest.raises(RestoreInvalid, match=r"^the restore point 2001-01-01 00:00:00\+00: before the oldest"):
            restore_newest_valid(tool, host.root, repo=1, target="2001-01-01 00:00:00+00", target_type="time")
        assert sorted(host.root.iterdir()) == folders


def test_a_restore_to_a_time_takes_the_newest_backup_before_it(
    deployment: Deployment, host: ScratchHost, secrets_in_env
) -> None:
    with ReadOnlyPgBackRest(deployment.plan(), host) as tool:
        outcome = restore_newest_valid(tool, host.root, repo=1, target=deployment.point, target_type="time")
        try:
            assert outcome.ok, outcome.error
            newest, older = outcome.candidates
            assert newest.refused is not None and newest.refused.startswith(
                "pgbackrest verify: backup: " + deployment.labels[-1]
            )
            assert older.refused is None and outcome.restored and outcome.restored.label == deployment.labels[0]
            assert outcome.server is not None
            rows = dict(outcome.server.query("SELECT note, count(*) FROM acks GROUP BY note"))
        finally:
            outcome.close()
    assert rows == {"before-first": 10}


def test_a_restore_that_skips_verification_takes_the_corrupt_newest_and_fails(
    deployment: Deployment, host: ScratchHost, secrets_in_env
) -> None:
    """The negative drill: without verify, pgBackRest restores the newest set and fails on the damaged
    file's checksum (after its own retry); the outcome says so, and nothing half-restored is left."""
    with ReadOnlyPgBackRest(deployment.plan(), host) as tool:
        folders = sorted(host.root.iterdir())
        outcome = restore_newest_valid(tool, host.root, repo=1, verify=False)
        assert not outcome.verified and outcome.verify_report is None and outcome.timings.verify_s is None
        assert [c.label for c in outcome.candidates] == [deployment.labels[-1]]
        assert outcome.restored is not None and outcome.restored.label == deployment.labels[-1]
        assert not outcome.ok and outcome.server is None
        assert outcome.error is not None and outcome.error.startswith(f"the restore of {deployment.labels[-1]} failed")
        assert "checksum" in outcome.error.lower(), outcome.error
        assert sorted(host.root.iterdir()) == folders
        for secret in (KEY, SECRET, CIPHER):
            assert secret not in outcome.error
