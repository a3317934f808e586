"""The --backup file of `drill schedule run` (issue 26: the deployment's own pgBackRest repository,
the keys of lab.backups plus max_age_hours) and the verdicts of its jobs from the tool's answers.
The jobs against a real repository: tests/integration/test_schedule_backup.py."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml

from harness.cli import main
from harness.errors import PlanError
from harness.lab import pgbackrest
from harness.lab.external.config import BackupRepo, BackupsConfig, Secret
from harness.lab.pgbackrest import VerifyReport
from harness.restore import tool as restore_tool
from harness.schedule.backup_jobs import (
    JOBS,
    RETIRED,
    BackupTarget,
    age_verdict,
    load_backup_target,
    run_backup_job,
    verify_verdict,
)

REPO = {
    "type": "s3",
    "bucket": "pg-backups",
    "endpoint": "s3.eu-west-1.amazonaws.com",
    "region": "eu-west-1",
    "key_env": "PGBR_S3_KEY",
    "secret_file": "/run/secrets/pgbr-s3-secret",
    "cipher_pass_env": "PGBR_CIPHER_PASS",
}
NOW = dt.datetime(2026, 12, 8, 7, 30, tzinfo=dt.UTC)


def target_file(tmp_path, **changes):
    data = {"tool": "pgbackrest", "stanza": "main", "repo": dict(REPO), **changes}
    path = tmp_path / "backup.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in data.items() if v is not None}))
    return path


def test_the_file_has_the_keys_of_lab_backups_and_max_age_hours(tmp_path):
    target = load_backup_target(target_file(tmp_path, config_file="/etc/pgbackrest/pgbackrest.conf"))
    assert target.max_age_hours == 24.0
    assert target.backups == BackupsConfig(
        tool="pgbackrest",
        stanza="main",
        config_file="/etc/pgbackrest/pgbackrest.conf",
        repo=BackupRepo(
            bucket="pg-backups",
            endpoint="s3.eu-west-1.amazonaws.com",
            region="eu-west-1",
            key=Secret(env="PGBR_S3_KEY"),
            secret=Secret(file="/run/secrets/pgbr-s3-secret"),
            cipher_pass=Secret(env="PGBR_CIPHER_PASS"),
        ),
    )
    assert load_backup_target(target_file(tmp_path, max_age_hours=1.5)).max_age_hours == 1.5
    assert set(JOBS) == {"backup:age-check", "backup:verify"}  # the harness takes no backup


@pytest.mark.parametrize("old", sorted(RETIRED))
def test_each_key_of_the_old_format_is_refused_saying_what_replaced_it(tmp_path, old):
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({old: "x", "max_age_hours": 24}))
    with pytest.raises(PlanError) as refused:
        load_backup_target(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: key '{old}': the --backup file changed (issue 26): ")
    assert "\n" not in message and RETIRED[old] in message


@pytest.mark.parametrize(
    "changes, key, says",
    [
        ({"max_age_hours": 0}, "max_age_hours", "a number of hours > 0"),
        ({"max_age_hours": True}, "max_age_hours", "a number of hours > 0"),
        ({"max_age_hours": "24"}, "max_age_hours", "a number of hours > 0"),
        ({"retention": 3}, "retention", "unknown key; known: config_file, max_age_hours, repo, stanza, tool"),
        ({"password": "hunter2"}, "password", "a credential must not be written here"),
        ({"tool": "barman-cloud"}, "tool", "must be pgbackrest"),
        ({"stanza": "a b"}, "stanza", "the deployment's pgBackRest stanza"),
        ({"config_file": "pgbackrest.conf"}, "config_file", "absolute path"),
        ({"repo": {**REPO, "bucket": None}}, "repo.bucket", "required"),
        ({"repo": {**REPO, "secret": "s3cr3t-value"}}, "repo.secret", "a credential must not be written"),
        ({"repo": {**REPO, "endpoint": "http://s3.example"}}, "repo.endpoint", "TLS only"),
        ({"repo": None}, "repo", "required: the repository"),
    ],
)
def test_a_bad_key_is_one_line_naming_it(tmp_path, changes, key, says):
    if "repo" in changes and isinstance(changes["repo"], dict):
        changes = {"repo": {k: v for k, v in changes["repo"].items() if v is not None}}
    path = target_file(tmp_path, **changes)
    with pytest.raises(PlanError) as refused:
        load_backup_target(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: key '{key}': ") and says in message, message
    assert "\n" not in message and "hunter2" not in message and "s3cr3t-value" not in message


def test_a_file_that_is_not_a_mapping_or_is_missing_is_refused(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- tool\n")
    with pytest.raises(PlanError, match="a backup target is a mapping with keys config_file, max_age_hours"):
        load_backup_target(path)
    with pytest.raises(PlanError, match="no such backup target"):
        load_backup_target(tmp_path / "none.yaml")


def test_drill_schedule_run_with_an_old_backup_file_is_exit_2_and_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DRILL_STATE_DIR", str(tmp_path))
    (tmp_path / "plans").mkdir()
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({"database": {"dsn": "host=db"}, "s3": {"endpoint": "https://s3"}}))
    code = main(
        [
            "schedule",
            "run",
            "--plans",
            str(tmp_path / "plans"),
            "--store",
            f"sqlite:///{tmp_path / 's.sqlite'}",
            "--backup",
            str(old),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"drill schedule: {old}: key 'database': the --backup file changed")
    assert RETIRED["database"] in err[0]
    assert not (tmp_path / "s.sqlite").exists()  # refused before the store was opened


# ---- the verdicts, from `pgbackrest info --output=json` entries (the shape of a real run) -------------


def backup(label: str, stop: dt.datetime, repo: int = 1) -> dict:
    start = stop - dt.timedelta(minutes=3)
    return {
        "label": label,
        "type": "full",
        "database": {"id": 1, "repo-key": repo},
        "timestamp": {"start": int(start.timestamp()), "stop": int(stop.timestamp())},
    }


def entry(backups: list[dict], *repos: tuple[int, int, str]) -> dict:
    repo = [{"key": k, "cipher": "aes-256-cbc", "status": {"code": c, "message": m}} for k, c, m in repos]
    return {"name": "main", "backup": backups, "repo": repo or [{"key": 1, "status": {"code": 0, "message": "ok"}}]}


def test_the_newest_backup_over_every_repository_is_judged_against_max_age_hours():
    found = entry(
        [
            backup("20261207-010000F", NOW - dt.timedelta(hours=30)),
            backup("20261207-120000F", NOW - dt.timedelta(hours=19, minutes=30), repo=2),
        ],
        (1, 0, "ok"),
        (2, 0, "ok"),
    )
    status, detail = age_verdict(found, NOW, 24, "main")
    assert (status, detail) == (
        "pass",
        "LastBackupAge 19.5 h (limit 24 h): 20261207-120000F, repo2, stopped 2026-12-07T12:00:00Z",
    )
    status, detail = age_verdict(found, NOW, 12, "main")
    assert status == "fail" and detail.startswith("LastBackupAge 19.5 h (limit 12 h): 20261207-120000F")


def test_no_backup_is_a_fail_and_an_unreadable_repository_is_unknown():
    assert age_verdict(entry([], (1, 2, "no valid backups")), NOW, 24, "main") == (
        "fail",
        "LastBackupAge: no backup (searched stanza main: repo1)",
    )
    unread = entry([], (1, 99, "[HostConnectError] unable to connect to 'localhost:9': [111] Connection refused\nmore"))
    assert age_verdict(unread, NOW, 24, "main") == (
        "unknown",
        "the backup repository cannot be read: repo1 unreadable: [HostConnectError] unable to connect to "
        "'localhost:9': [111] Connection refused",
    )


def test_a_fresh_backup_in_one_repository_passes_and_names_the_one_that_could_not_be_read():
    found = entry(
        [backup("20261208-060000F", NOW - dt.timedelta(hours=1, minutes=30))],
        (1, 0, "ok"),
        (2, 99, "[ProtocolError] HTTP request failed with 403 (Forbidden)"),
    )
    status, detail = age_verdict(found, NOW, 24, "main")
    assert status == "pass"
    assert detail.endswith("; repo2 unreadable: [ProtocolError] HTTP request failed with 403 (Forbidden)")


def test_a_backup_stopped_in_the_future_is_unknown_not_a_pass():
    found = entry([backup("20261209-070000F", NOW + dt.timedelta(hours=3))])
    status, detail = age_verdict(found, NOW, 24, "main")
    assert status == "unknown" and "stopped 3.0 h after this host's clock" in detail
    # a few minutes ahead is clock noise: the age is 0
    assert age_verdict(entry([backup("x", NOW + dt.timedelta(minutes=2))]), NOW, 24, "main")[0] == "pass"


class Tool:
    """verify_verdict's view of the tool: verify(repo) answers the tool's text, scrub hides secrets."""

    def __init__(self, texts: dict[int, str]):
        self.texts = texts

    def verify(self, repo: int) -> VerifyReport:
        return VerifyReport.parse(self.texts[repo])

    def scrub(self, text: str) -> str:
        return text


OK_TEXT = """stanza: main
status: ok
  db (current)
    wal archive min/max (15): 000000010000000000000003/000000010000000000000005
"""
BAD_TEXT = """stanza: main
status: error
  repo1: error
    archiveId: 15-1, total WAL checked: 3, total valid WAL: 3
    backup: 20261208-030033F, status: invalid, total files checked: 1263, total valid files: 1262
      missing: 0, checksum invalid: 1, size invalid: 0, other: 0
"""


def test_verify_fails_naming_each_invalid_backup_and_passes_when_every_repository_is_ok():
    two = entry([], (1, 0, "ok"), (2, 0, "ok"))
    assert verify_verdict(Tool({1: OK_TEXT, 2: OK_TEXT}), two) == (
        "pass",
        "pgbackrest verify: repo1: every file checked, ok; repo2: every file checked, ok",
    )
    status, detail = verify_verdict(Tool({1: BAD_TEXT, 2: OK_TEXT}), two)
    assert status == "fail"
    assert detail.startswith(
        "pgbackrest verify: invalid: repo1 20261208-030033F: backup: 20261208-030033F, status: invalid"
    )
    assert "checksum invalid: 1" in detail and "repo2" not in detail


def test_verify_of_an_unreadable_repository_is_unknown():
    found = entry([], (1, 99, "[ProtocolError] HTTP request failed with 404 (NOT FOUND): NoSuchBucket"))
    assert verify_verdict(Tool({}), found) == (
        "unknown",
        "the backup repository cannot be read: repo1 unreadable: [ProtocolError] HTTP request failed with 404 "
        "(NOT FOUND): NoSuchBucket",
    )


# ---- a job that cannot reach the tool: unknown, one short line, no process ---------------------------


def test_a_missing_tool_or_secret_is_unknown_naming_the_key(tmp_path, monkeypatch):
    target = load_backup_target(target_file(tmp_path))
    monkeypatch.delenv("PGBR_S3_KEY", raising=False)
    monkeypatch.setenv("DRILL_LAB_DIR", str(tmp_path))
    assert run_backup_job("backup:age-check", target) == (
        "unknown",
        "the backup repository cannot be read: repo.key_env: environment variable PGBR_S3_KEY is not set "
        "(the plan names it)",
    )

    def missing() -> str:
        raise pgbackrest.PgBackRestMissing("pgbackrest is not installed: install it with `apt-get install pgbackrest`")

    monkeypatch.setattr(restore_tool, "find_binary", missing)
    status, detail = run_backup_job("backup:verify", target)
    assert (status, detail) == (
        "unknown",
        "the backup repository cannot be read: tool: pgbackrest is not installed: install it with "
        "`apt-get install pgbackrest`",
    )
    assert [p.name for p in tmp_path.iterdir()] == ["backup.yaml"]  # every folder of the job removed


def test_the_target_repr_holds_no_secret_value(tmp_path, monkeypatch):
    monkeypatch.setenv("PGBR_S3_KEY", "AKIA-not-shown")
    target = load_backup_target(target_file(tmp_path))
    assert isinstance(target, BackupTarget) and "AKIA-not-shown" not in repr(target) + json.dumps(str(target))


def test_a_stored_backup_snapshot_job_of_the_old_harness_is_removed_never_run(tmp_path, monkeypatch):
    import sqlalchemy as sa

    from harness.schedule.daemon import open_store
    from harness.schedule.store import JOBS_TABLE
    from tests.schedule.test_daemon import Recorder, Running

    monkeypatch.setenv("DRILL_STATE_DIR", str(tmp_path))
    env = {
        "plans": tmp_path / "plans",
        "store": f"sqlite:///{tmp_path / 'schedule.sqlite'}",
        "cab": tmp_path / "cab.jsonl",
        "out": tmp_path / "out",
    }
    env["plans"].mkdir()
    open_store(env["store"])  # the tables
    engine = sa.create_engine(env["store"])
    with engine.begin() as conn:  # the row an older daemon with --backup stored: due since 1970
        conn.execute(
            sa.text(
                f"INSERT INTO {JOBS_TABLE} (id, next_run_time, kind, args, schedule, name) "
                f"VALUES ('backup:snapshot', 0, 'backup', '[\"backup:snapshot\"]', '{{\"cron\": \"0 * * * *\"}}', 'x')"
            )
        )
    engine.dispose()
    launcher = Recorder()
    daemon = Running(env, launcher, backup_file=target_file(tmp_path))
    daemon.stop()
    [line] = [line for line in daemon.lines if "'backup:snapshot'" in line]
    assert "never run: the row is removed" in line, line
    jobstore, ledger = open_store(env["store"])
    assert {job.id for job in jobstore.get_all_jobs()} == {"backup:age-check", "backup:verify", "staleness"}
    assert ledger.runs() == [] and launcher.launches == []
