"""lab.backups (issue 26: the deployment's own pgBackRest repository, read only): the plan's keys as
ExternalConfig parses them, each bad one a line naming the key and its fix (exit 2 through `drill
run`); the read-only tool's refusals before anything runs or is written; the bad input found when
the tool is set up (a secret that cannot be had, the tool missing); the pure parts of the restore
core (the tool's verify reasons, the restore point's time)."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator

import pytest

from harness.cli import main
from harness.errors import PlanError
from harness.lab import pgbackrest
from harness.lab.external import ExternalConfig
from harness.lab.external.config import BackupRepo, BackupsConfig, Secret
from harness.lab.pgbackrest import VerifyReport
from harness.restore import (
    ReadOnlyPgBackRest,
    ReadOnlyRefused,
    RestoreInvalid,
    RestoreUnreachable,
    ScratchHost,
    restore_newest_valid,
    verify_reasons,
)
from harness.restore.newest import parse_time
from tests.unit.test_external_plan import database_lab, plan_file

REPO = {
    "type": "s3",
    "bucket": "pg-backups",
    "endpoint": "https://s3.eu-west-1.amazonaws.com",
    "region": "eu-west-1",
    "key_env": "PGBR_S3_KEY",
    "secret_file": "/run/secrets/pgbr-s3-secret",
    "cipher_pass_env": "PGBR_CIPHER_PASS",
}


def lab(backups: dict | None = None, **repo_changes) -> dict:
    value = database_lab()
    repo = {k: v for k, v in {**REPO, **repo_changes}.items() if v is not None}
    value["backups"] = backups if backups is not None else {"tool": "pgbackrest", "stanza": "main", "repo": repo}
    return value


def parse(value: dict) -> ExternalConfig:
    return ExternalConfig.parse(value, lambda key, message: PlanError(f"key '{key}': {message}"))


def test_the_backups_keys_are_read():
    config = parse(lab(path="/pgbackrest", uri_style="path", ca_file="/etc/ssl/ca.pem", number=2)).backups
    assert config == BackupsConfig(
        tool="pgbackrest",
        stanza="main",
        config_file=None,
        repo=BackupRepo(
            bucket="pg-backups",
            endpoint="s3.eu-west-1.amazonaws.com",
            region="eu-west-1",
            port=None,
            number=2,
            ca_file="/etc/ssl/ca.pem",
            path="/pgbackrest",
            uri_style="path",
            key=Secret(env="PGBR_S3_KEY"),
            secret=Secret(file="/run/secrets/pgbr-s3-secret"),
            cipher_pass=Secret(env="PGBR_CIPHER_PASS"),
        ),
    )
    assert parse(lab(endpoint="minio.internal:9000")).backups.repo.port == 9000
    assert parse(database_lab()).backups is None


def test_a_config_file_alone_names_the_repository_and_its_keys():
    config = parse(
        lab({"tool": "pgbackrest", "stanza": "db-1", "config_file": "/etc/pgbackrest/pgbackrest.conf"})
    ).backups
    assert config == BackupsConfig("pgbackrest", "db-1", "/etc/pgbackrest/pgbackrest.conf", None)
    # with the config, the repository's keys may come from it
    with_config = {"tool": "pgbackrest", "stanza": "main", "config_file": "/etc/pgbackrest/pgbackrest.conf"}
    repo = {k: v for k, v in REPO.items() if not k.startswith(("key", "secret"))}
    assert parse(lab({**with_config, "repo": repo})).backups.repo.key == Secret()


@pytest.mark.parametrize(
    "backups, key, words",
    [
        ({"tool": "barman-cloud", "stanza": "main", "repo": REPO}, "lab.backups.tool", "must be pgbackrest"),
        ({"stanza": "main", "repo": REPO}, "lab.backups.tool", "must be pgbackrest"),
        ({"tool": "pgbackrest", "repo": REPO}, "lab.backups.stanza", "required: the deployment's pgBackRest stanza"),
        ({"tool": "pgbackrest", "stanza": "a b", "repo": REPO}, "lab.backups.stanza", "letters, digits"),
        ({"tool": "pgbackrest", "stanza": "main"}, "lab.backups.repo", "required: the repository"),
        (
            {"tool": "pgbackrest", "stanza": "main", "repo": REPO, "config_file": "pgbackrest.conf"},
            "lab.backups.config_file",
            "absolute path",
        ),
        ({"tool": "pgbackrest", "stanza": "main", "repo": REPO, "cron": 1}, "lab.backups.cron", "unknown key"),
        ({"tool": "pgbackrest", "stanza": "main", "repo": "s3://x"}, "lab.backups.repo", "must be a mapping"),
        ("pgbackrest", "lab.backups", "must be a mapping"),
    ],
)
def test_a_bad_backups_key_is_named_with_its_fix(backups, key, words):
    with pytest.raises(PlanError) as err:
        parse(lab(backups))
    assert str(err.value).startswith(f"key '{key}':") and words in str(err.value), err.value
    assert len(str(err.value).splitlines()) == 1


@pytest.mark.parametrize(
    "changes, key, words",
    [
        ({"type": "posix"}, "lab.backups.repo.type", "must be s3"),
        ({"bucket": None}, "lab.backups.repo.bucket", "required"),
        ({"endpoint": None}, "lab.backups.repo.endpoint", "required"),
        ({"endpoint": "http://s3.local"}, "lab.backups.repo.endpoint", "TLS only"),
        ({"endpoint": "https://s3.local/bucket"}, "lab.backups.repo.endpoint", "no path"),
        ({"endpoint": "https://user:pw@s3.local"}, "lab.backups.repo.endpoint", "credentials must not"),
        ({"endpoint": "https://s3.local:99999"}, "lab.backups.repo.endpoint", "Port out of range"),
        ({"region": None}, "lab.backups.repo.region", "required"),
        ({"number": 0}, "lab.backups.repo.number", "1 to 256"),
        ({"number": True}, "lab.backups.repo.number", "1 to 256"),
        ({"uri_style": "virtual"}, "lab.backups.repo.uri_style", "host or path"),
        ({"path": "pgbackrest"}, "lab.backups.repo.path", "repoN-path"),
        ({"ca_file": "ca.pem"}, "lab.backups.repo.ca_file", "absolute path"),
        ({"bukket": "x"}, "lab.backups.repo.bukket", "unknown key"),
        # credentials: only from *_env / *_file, never written in the plan
        ({"key": "AKIA-secret"}, "lab.backups.repo.key", "must not be written in the plan"),
        ({"secret": "AKIA-secret"}, "lab.backups.repo.secret", "must not be written in the plan"),
        ({"cipher_pass": "AKIA-secret"}, "lab.backups.repo.cipher_pass", "must not be written in the plan"),
        ({"secret_key": "AKIA-secret"}, "lab.backups.repo.secret_key", "must not be written in the plan"),
        ({"key_env": None}, "lab.backups.repo.key_env", "required: name the S3 access key"),
        ({"secret_file": None}, "lab.backups.repo.secret_env", "required: name the S3 secret key"),
        ({"key_env": None, "secret_file": None}, "lab.backups.repo.key_env", "required: name the S3 access key"),
        ({"key_file": "/run/k"}, "lab.backups.repo.key_file", "not both"),
        ({"key_env": "not a name"}, "lab.backups.repo.key_env", "environment variable"),
        ({"cipher_pass_file": "pass.txt", "cipher_pass_env": None}, "lab.backups.repo.cipher_pass_file", "absolute"),
    ],
)
def test_a_bad_repository_key_is_named_with_its_fix(changes, key, words):
    with pytest.raises(PlanError) as err:
        parse(lab(**changes))
    assert str(err.value).startswith(f"key '{key}':") and words in str(err.value), err.value
    assert "AKIA-secret" not in str(err.value)


def test_drill_run_with_a_literal_secret_in_the_repository_exits_2_with_one_line(tmp_path, capsys):
    code = main(
        [
            "run",
            str(plan_file(tmp_path, lab(cipher_pass="AKIA-secret"), ["scenarios/api/stateless_outage.feature"])),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "lab.backups.repo.cipher_pass" in err, err
    assert "AKIA-secret" not in err
    assert not (tmp_path / "out").exists()


# ---- the read-only tool: refusals before anything runs, bad input before anything is written -------


@pytest.fixture
def host() -> Iterator[ScratchHost]:
    with ScratchHost() as scratch:
        yield scratch


@pytest.fixture
def no_process(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every process the tool would start, recorded and not started."""
    started: list[list[str]] = []

    def refuse(args, **kwargs):
        started.append(list(args))
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(pgbackrest.subprocess, "Popen", refuse)
    return started


def plan() -> BackupsConfig:
    repo = BackupRepo(
        bucket="pg-backups",
        endpoint="s3.example",
        region="eu-west-1",
        key=Secret(env="PGBR_TEST_KEY"),
        secret=Secret(env="PGBR_TEST_SECRET"),
    )
    return BackupsConfig("pgbackrest", "main", None, repo)


def test_a_mutating_command_is_refused_before_anything_runs(host, tmp_path, no_process):
    tool = ReadOnlyPgBackRest(plan(), host)
    tool.binary, tool.root = "/usr/bin/pgbackrest", host.root
    for command in ("stanza-create", "stanza-upgrade", "stanza-delete", "check", "backup", "expire", "archive-push"):
        with pytest.raises(ReadOnlyRefused, match=rf"pgbackrest {command}: refused: .*read only"):
            tool.run(command)
    for call in (tool.stanza_create, tool.check, tool.expire, tool.enable_archiving, lambda: tool.backup("full")):
        with pytest.raises(ReadOnlyRefused):
            call()
    with pytest.raises(ReadOnlyRefused):
        tool.archive_command  # noqa: B018 - the property itself refuses
    # a restore told anything but a new folder, --archive-mode=off and its target
    for options in (
        ("--pg1-path=/x", "--archive-mode=off", "--delta"),
        ("--pg1-path=/x", "--archive-mode=off", "--force"),
        ("--pg1-path=/x",),
        ("--archive-mode=off",),
    ):
        with pytest.raises(ReadOnlyRefused, match="a read-only restore goes into a new folder"):
            tool.run("restore", *options)
    elsewhere = tmp_path / "deployment-data"
    with pytest.raises(ReadOnlyRefused, match="read-only restores go under"):
        tool.restore(elsewhere)
    with pytest.raises(ReadOnlyRefused, match="read-only restores go under"):
        tool.run("restore", f"--pg1-path={elsewhere}", "--archive-mode=off")
    assert not elsewhere.exists()  # refused before the folder was made
    assert no_process == []


def test_a_missing_credential_names_its_key_and_nothing_is_written(host, monkeypatch, no_process):
    monkeypatch.delenv("PGBR_TEST_KEY", raising=False)
    monkeypatch.setenv("PGBR_TEST_SECRET", "s")
    monkeypatch.setattr("harness.restore.tool.find_binary", lambda: "/usr/bin/pgbackrest")
    before = sorted(host.root.iterdir())
    with pytest.raises(RestoreInvalid) as err:
        with ReadOnlyPgBackRest(plan(), host):
            pass
    assert str(err.value) == (
        "lab.backups.repo.key_env: environment variable PGBR_TEST_KEY is not set (the plan names it)"
    )
    assert err.value.exit_code == 2
    assert sorted(host.root.iterdir()) == before and no_process == []


def test_an_unreadable_secret_file_or_config_names_its_key(host, tmp_path, monkeypatch, no_process):
    monkeypatch.setattr("harness.restore.tool.find_binary", lambda: "/usr/bin/pgbackrest")
    fifo = tmp_path / "secret.fifo"
    os.mkfifo(fifo)
    repo = BackupRepo("b", "s3.example", "r", key=Secret(file=str(fifo)), secret=Secret(file=str(fifo)))
    before = sorted(host.root.iterdir())
    with pytest.raises(RestoreInvalid, match=r"^lab.backups.repo.key_file: cannot read .*regular file"):
        with ReadOnlyPgBackRest(BackupsConfig("pgbackrest", "main", None, repo), host):
            pass
    with pytest.raises(RestoreInvalid, match=r"^lab.backups.config_file: .*/nope.conf: no such file"):
        with ReadOnlyPgBackRest(BackupsConfig("pgbackrest", "main", str(tmp_path / "nope.conf"), None), host):
            pass
    assert sorted(host.root.iterdir()) == before and no_process == []


def test_the_tool_not_installed_names_the_apt_package(host, monkeypatch, no_process):
    monkeypatch.setattr(pgbackrest.shutil, "which", lambda name: None)
    monkeypatch.setattr(pgbackrest.os, "access", lambda path, mode: False)
    before = sorted(host.root.iterdir())
    with pytest.raises(RestoreUnreachable, match=r"^lab.backups.tool: .*`apt-get install pgbackrest`") as err:
        with ReadOnlyPgBackRest(plan(), host):
            pass
    assert err.value.exit_code == 4
    assert sorted(host.root.iterdir()) == before and no_process == []


# ---- the restore core's pure parts ------------------------------------------------------------------

VERIFY_TEXT = """stanza: main
status: error
  archiveId: 15-1, total WAL checked: 6, total valid WAL: 6
  backup: 20261208-024852F, status: valid, total files checked: 1267, total valid files: 1267
  backup: 20261208-024855F, status: invalid, total files checked: 1268, total valid files: 1267
    missing: 0, checksum invalid: 1, size invalid: 0, other: 0
"""


def test_verify_reasons_are_the_tools_own_lines():
    reasons = verify_reasons(VerifyReport.parse(VERIFY_TEXT))
    assert reasons == {
        "20261208-024855F": "pgbackrest verify: backup: 20261208-024855F, status: invalid, total files checked: "
        "1268, total valid files: 1267; missing: 0, checksum invalid: 1, size invalid: 0, other: 0"
    }


def test_a_restore_point_is_a_time_with_its_zone():
    assert parse_time("2026-12-08 03:00:00.5+00") == datetime.datetime(2026, 12, 8, 3, 0, 0, 500000, datetime.UTC)
    assert parse_time("2026-12-08T05:00:00+02:00") == datetime.datetime(2026, 12, 8, 3, 0, tzinfo=datetime.UTC)
    for bad in ("2026-12-08 03:00:00", "yesterday", ""):
        with pytest.raises(RestoreInvalid, match="not a time with its zone"):
            parse_time(bad)


class Listed:
    """A tool stand-in for what restore_newest_valid refuses before it restores: info's backups only."""

    clock_offset = None

    def __init__(self, backups):
        self.listed = backups
        self.verified = False

    def backups(self, repo):
        return self.listed

    def verify(self, repo):
        self.verified = True
        raise AssertionError("verified before the restore point was checked")


def test_a_restore_point_before_the_oldest_backup_is_refused_before_verify(tmp_path):
    stop = datetime.datetime(2026, 12, 8, 2, 48, 54, tzinfo=datetime.UTC).timestamp()
    tool = Listed([{"label": "20261208-024852F", "type": "full", "timestamp": {"start": stop - 2, "stop": stop}}])
    with pytest.raises(RestoreInvalid) as err:
        restore_newest_valid(tool, tmp_path, repo=1, target="2026-12-08 02:00:00+00", target_type="time")
    assert str(err.value) == (
        "the restore point 2026-12-08 02:00:00+00: before the oldest backup in repo1 (20261208-024852F, "
        "stopped 2026-12-08T02:48:54+00:00); name a point after it"
    )
    assert list(tmp_path.iterdir()) == [] and not tool.verified
