"""pgBackRest in the lab (issue 26): a real PgCluster, a real moto over TLS, the real pgbackrest.

One set-up per module (moto, the cluster, the stanza, a first full backup). The tests run in file
order: the corrupt-backup test damages the newest backup of repo1, so it comes after every test
that restores the newest one; the clock test moves the deployment's clock forward for good (a
backup label must be later than the last one), so it comes after every test that takes a backup
on real time. Durations are printed at the end (pytest -s) for docs/backups.md.
"""

from __future__ import annotations

import datetime
import os
import re
import ssl
import stat
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from botocore.exceptions import ClientError

from harness.lab import proc
from harness.lab.moto import MotoServer
from harness.lab.pgbackrest import (
    REPO1_BUCKET,
    REPO1_RETENTION_DAYS,
    REPO2_BUCKET,
    REPO2_LOCK_DAYS,
    Credentials,
    PgBackRest,
    PgBackRestError,
    S3Repo,
    ScratchServer,
    VerifyReport,
    lab_repo,
    lab_repos,
    server_clock_env,
)
from harness.lab.postgres import RUN_AS, PgCluster
from tests.pgbackrest_deployment import require_pgbackrest

pytestmark = pytest.mark.integration

FAKETIME = require_pgbackrest(faketime=True)

EAST, WEST = REPO1_BUCKET, REPO2_BUCKET
TIMINGS: dict[str, float] = {}
HOUR, DAY = 3600, 86400


class DeploymentClock:
    """The deployment's clock: seconds ahead of real time. The tool reads offset() at each command;
    once file is set (the server on this clock, server_clock_env), a move rewrites it too."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.file: Path | None = None

    def offset(self) -> float:
        return self.seconds

    def move_to(self, seconds: float) -> None:
        assert seconds >= self.seconds, "the deployment's clock only moves forward"
        self.seconds = seconds
        if self.file is not None:
            fresh = self.file.with_suffix(".new")
            fresh.write_text(f"{round(seconds):+d}\n")
            fresh.chmod(0o644)
            fresh.replace(self.file)  # atomic: a process reading it sees the old line or the new one


@dataclass
class Lab:
    moto: MotoServer
    pg: PgCluster
    tool: PgBackRest
    credentials: Credentials
    s3: object
    first_full: str
    clock: DeploymentClock
    errors: list[str] = field(default_factory=list)


def timed(name: str, fn, *args, **kwargs):
    started = time.monotonic()
    try:
        return fn(*args, **kwargs)
    finally:
        TIMINGS[name] = time.monotonic() - started


def write_rows(lab: Lab, note: str, count: int = 1, size: int = 0) -> int:
    """Insert count rows marked note (each with size bytes of payload); answers the newest id."""
    with lab.pg.primary.connect() as conn:
        row = conn.execute(
            "INSERT INTO acks (note, payload) SELECT %s, repeat('x', %s) FROM generate_series(1, %s) RETURNING id",
            (note, size, count),
        ).fetchall()
        conn.commit()
    return max(r[0] for r in row)


def notes(scratch: ScratchServer) -> dict[str, int]:
    return {note: n for note, n in scratch.query("SELECT note, count(*) FROM acks GROUP BY note")}


def faketime_leftovers(since: float) -> list[Path]:
    """libfaketime's POSIX objects (/dev/shm) of processes that are gone, made since `since`: a process
    that execs another (sh -c running the archive_command) or is killed does not remove its own."""
    left = []
    for path in Path("/dev/shm").glob("*faketime_*_*"):
        pid = path.name.rsplit("_", 1)[-1]
        try:
            made = path.stat().st_mtime
        except FileNotFoundError:
            continue
        if pid.isdigit() and made >= since and not proc.is_alive(int(pid)):
            left.append(path)
    return left


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    started = time.time() - 1
    with ExitStack() as stack:
        stack.callback(lambda: [p.unlink(missing_ok=True) for p in faketime_leftovers(started)])
        moto = stack.enter_context(MotoServer(tls=True))
        pg = stack.enter_context(PgCluster())
        s3 = moto.client("s3")
        repo1, repo2 = lab_repos(moto)
        credentials = Credentials.generate()
        clock = DeploymentClock()
        tool = PgBackRest(pg, repo1, repo2, credentials, process_max=4, clock_offset=clock.offset)
        timed("setup (archiving on: a restart; stanza-create; check)", stack.enter_context, tool)
        with pg.primary.connect() as conn:
            conn.execute("CREATE TABLE acks (id bigserial PRIMARY KEY, note text NOT NULL, payload text NOT NULL)")
            conn.commit()
        first_full = timed("backup full (repo1)", tool.backup, "full")
        yield Lab(moto, pg, tool, credentials, s3, first_full, clock)
        for name, seconds in TIMINGS.items():
            print(f"pgbackrest timing: {name}: {seconds:.1f} s")


def test_moto_tls_serves_only_with_the_lab_ca_and_leaves_nothing(tmp_path: Path) -> None:
    with MotoServer(tls=True, base_dir=tmp_path) as moto:
        assert moto.endpoint_url.startswith("https://127.0.0.1:")
        assert moto.ca_file is not None
        for path in (moto.ca_file, moto.root / "server.key", moto.root / "server.crt"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        trusted = ssl.create_default_context(cafile=str(moto.ca_file))
        with urllib.request.urlopen(f"{moto.endpoint_url}/moto-api/", timeout=5, context=trusted) as answer:
            assert answer.status == 200
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(f"{moto.endpoint_url}/moto-api/", timeout=5, context=ssl.create_default_context())
        root = moto.root
    assert not root.exists()


def test_the_config_holds_no_secret_and_the_secrets_file_is_0600(lab: Lab) -> None:
    config = lab.tool.config.read_text()
    for secret in lab.credentials.values():
        assert secret not in config
    for path in (lab.tool.config, lab.tool.secrets_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    archive_command = lab.pg.primary.query("SELECT setting FROM pg_settings WHERE name = 'archive_command'")[0][0]
    assert "archive-push" in archive_command and "--stanza=main" in archive_command
    for secret in lab.credentials.values():
        assert secret not in archive_command


def test_restore_to_the_latest_point_replays_the_archived_wal(lab: Lab) -> None:
    """PITR to the end of the archive: every write acknowledged before `check` is there (RPO ~ seconds)."""
    write_rows(lab, "bulk", count=40_000, size=400)  # ~20 MB of WAL to replay
    newest = write_rows(lab, "latest-acked")
    timed("check (switch WAL, wait until archived)", lab.tool.check)
    target = lab.tool.scratch_dir("latest")
    timed("restore latest (files)", lab.tool.restore, target)
    with ScratchServer(lab.pg, target) as scratch:
        TIMINGS["WAL replay ~20 MB and promote"] = scratch.wait_promoted()
        assert scratch.query("SELECT max(id) FROM acks") == [(newest,)]
        assert notes(scratch) == {"bulk": 40_000, "latest-acked": 1}


def test_restore_to_a_named_point_excludes_later_writes(lab: Lab) -> None:
    write_rows(lab, "before-point", count=5)
    with lab.pg.primary.connect(admin=True, autocommit=True) as conn:
        conn.execute("SELECT pg_create_restore_point('drill-point')")
    write_rows(lab, "after-point", count=7)
    lab.tool.check()
    target = lab.tool.scratch_dir("named")
    lab.tool.restore(target, target="drill-point", target_type="name")
    with ScratchServer(lab.pg, target) as scratch:
        scratch.wait_promoted()
        seen = notes(scratch)
    assert seen.get("before-point") == 5
    assert "after-point" not in seen


def test_restore_to_a_time_excludes_writes_committed_after_it(lab: Lab) -> None:
    write_rows(lab, "before-time", count=2)
    with lab.pg.primary.connect(admin=True, autocommit=True) as conn:
        row = conn.execute(
            "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
        ).fetchone()
    assert row is not None
    write_rows(lab, "after-time", count=3)
    lab.tool.check()
    target = lab.tool.scratch_dir("time")
    lab.tool.restore(target, target=f"{row[0]}+00", target_type="time")
    with ScratchServer(lab.pg, target) as scratch:
        scratch.wait_promoted()
        seen = notes(scratch)
    assert seen.get("before-time") == 2
    assert "after-time" not in seen


def test_info_gives_the_newest_backups_stop_time(lab: Lab) -> None:
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    label = timed("backup diff (repo1)", lab.tool.backup, "diff")
    after = datetime.datetime.now(datetime.UTC)
    assert label.startswith(lab.first_full) and label.endswith("D")
    stop = lab.tool.newest_backup_stop(repo=1)
    assert stop is not None and before <= stop <= after
    backups = lab.tool.backups(repo=1)
    assert [b["label"] for b in backups][-1] == label
    assert backups[-1]["type"] == "diff"


def test_repo2_objects_carry_the_compliance_object_lock(lab: Lab) -> None:
    label = timed("backup full (repo2, Object Lock)", lab.tool.backup, "full", 2)
    listed = lab.s3.list_objects_v2(Bucket=WEST, Prefix=f"pgbackrest/backup/main/{label}/")["Contents"]
    assert listed
    floor = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=REPO2_LOCK_DAYS - 1)
    for item in listed:
        head = lab.s3.head_object(Bucket=WEST, Key=item["Key"])
        assert head["ObjectLockMode"] == "COMPLIANCE", item["Key"]
        assert head["ObjectLockRetainUntilDate"] >= floor, item["Key"]
    # What moto enforces: a locked version cannot be deleted; a delete without a version (what
    # pgBackRest's expire sends) only adds a delete marker and the locked version stays.
    key = listed[0]["Key"]
    version = lab.s3.head_object(Bucket=WEST, Key=key)["VersionId"]
    with pytest.raises(ClientError, match="AccessDenied"):
        lab.s3.delete_object(Bucket=WEST, Key=key, VersionId=version)
    assert lab.s3.get_object(Bucket=WEST, Key=key, VersionId=version)["Body"].read()


def test_verify_finds_a_corrupt_backup_and_restore_uses_the_older_one(lab: Lab) -> None:
    """The backup_corrupt fault: one bit of the newest full backup's largest object flipped in the bucket
    (a bundle of small files, or one large file)."""
    write_rows(lab, "before-second-full", count=3)
    second = lab.tool.backup("full")
    write_rows(lab, "after-second-full", count=4)
    lab.tool.check()
    prefix = f"pgbackrest/backup/main/{second}/"
    objects = lab.s3.list_objects_v2(Bucket=EAST, Prefix=prefix)["Contents"]
    largest = max((o for o in objects if "/pg_data/" in o["Key"] or "/bundle/" in o["Key"]), key=lambda o: o["Size"])
    body = bytearray(lab.s3.get_object(Bucket=EAST, Key=largest["Key"])["Body"].read())
    body[len(body) // 2] ^= 0x10
    lab.s3.put_object(Bucket=EAST, Key=largest["Key"], Body=bytes(body))

    # one verify (about 1 s per 25 files on moto): the older backups stay valid, only the damaged one is named
    report = timed("verify (repo1, one bit flipped)", lab.tool.verify, 1)
    assert not report.ok
    assert report.invalid_backups == (second,)
    assert re.search(rf"backup: {re.escape(lab.first_full)}, status: valid", report.text), report.text
    assert "checksum invalid: 1" in report.text

    # By itself pgBackRest restores the newest set and fails on the damaged file's checksum (after
    # its own retry, about 15 s; shown in tests/restore/test_restore_external.py, the verify=False
    # negative): it does not fall back to an older backup. The drill names the older set.
    older = [b["label"] for b in lab.tool.backups(repo=1) if b["label"] != second][-1]
    target = lab.tool.scratch_dir("older")
    lab.tool.restore(target, backup_set=older)
    with ScratchServer(lab.pg, target) as scratch:
        scratch.wait_promoted()
        seen = notes(scratch)
    assert seen.get("before-second-full") == 3 and seen.get("after-second-full") == 4


def log_time(line: str) -> datetime.datetime:
    """The time at the start of a pgBackRest log line (the tool's own clock, local time: LC_ALL=C, TZ)."""
    stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f")
    return stamp.astimezone(datetime.UTC)


def test_pgbackrest_runs_on_the_deployments_clock(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """libfaketime: a backup taken after 25 h passed is stamped 25 h ahead, and time-based retention
    (repo1: 7 days) acts on the moved clock. pgBackRest stamps an online backup with the database
    server's clock, so the deployment's PostgreSQL runs on it too (restarted here with
    server_clock_env); the archive_command stays on real time."""
    clock = lab.clock
    clock.file = lab.tool.root / "clock.rc"
    clock.move_to(0)
    with monkeypatch.context() as env:
        for key, value in server_clock_env(FAKETIME, clock.file).items():
            env.setenv(key, value)
        lab.pg.primary.stop()
        lab.pg.primary.start()

    def server_ahead() -> float:
        return float(lab.pg.primary.query("SELECT extract(epoch FROM clock_timestamp())")[0][0]) - time.time()

    # a full at offset 0, then 25 hours pass: the newest backup taken now is fresh on the deployment's clock
    before = [b["label"] for b in lab.tool.backups(repo=1)]
    older_full = timed("backup full (repo1, clock +0)", lab.tool.backup, "full")
    clock.move_to(25 * HOUR)
    assert abs(server_ahead() - 25 * HOUR) < 60  # the running server read the moved clock at once
    diff = timed("backup diff (repo1, clock +25 h)", lab.tool.backup, "diff")
    entry = next(b for b in lab.tool.backups(repo=1) if b["label"] == diff)
    stop = entry["timestamp"]["stop"]
    assert abs(stop - (time.time() + 25 * HOUR)) < 120, (stop, time.time())
    newest = lab.tool.newest_backup_stop(repo=1)
    assert newest == datetime.datetime.fromtimestamp(stop, datetime.UTC)
    # the tool itself ran on the moved clock: its log lines are stamped 25 h ahead too
    last_line = [line for line in (lab.tool.log_dir / "main-backup.log").read_text().splitlines() if line[:2] == "20"]
    ahead = (log_time(last_line[-1]) - datetime.datetime.now(datetime.UTC)).total_seconds()
    assert abs(ahead - 25 * HOUR) < 120, last_line[-1]
    # while the archive_command stays on real time: a shell with the server's clock environment (what
    # the server's archive_command inherits) runs pgbackrest on real time (FAKETIME_ONLY_CMDS=postgres)
    command = lab.tool.archive_command.replace("archive-push %p", "--log-level-console=info check")
    shell = ["sh", "-c", command]
    if os.geteuid() == 0:
        shell = ["runuser", "-u", RUN_AS, "--", *shell]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    said = subprocess.run(
        shell, env={**env, **server_clock_env(FAKETIME, clock.file)}, capture_output=True, text=True, timeout=120
    )
    assert said.returncode == 0 and "check command begin" in said.stdout, said
    begin = log_time(said.stdout.splitlines()[0])
    assert abs((begin - datetime.datetime.now(datetime.UTC)).total_seconds()) < 120, said.stdout

    # 8 days pass, a new full: pgBackRest's time-based retention keeps the newest full that stopped
    # before the cutoff (now - 7 days, on the deployment's clock), with its diffs, so that PITR to the
    # cutoff stays possible; every backup older than that full expires.
    clock.move_to(8 * DAY)
    newer_full = timed("backup full (repo1, clock +8 days)", lab.tool.backup, "full")
    lab.tool.expire(repo=1)
    after = lab.tool.backups(repo=1)
    cutoff = time.time() + 8 * DAY - REPO1_RETENTION_DAYS * DAY
    fulls = {b["label"]: b["timestamp"]["stop"] for b in after if b["type"] == "full"}
    assert fulls[older_full] < cutoff < fulls[newer_full]
    assert lab.first_full in before
    assert [b["label"] for b in after] == [older_full, diff, newer_full], before


def test_no_secret_in_logs_or_errors(lab: Lab) -> None:
    with pytest.raises(PgBackRestError) as failed:
        lab.tool.run("restore", "--set=20000101-000000F", f"--pg1-path={lab.tool.scratch_dir('none')}")
    lab.errors.append(str(failed.value))
    texts = list(lab.errors)
    texts += [path.read_text(errors="replace") for path in lab.tool.log_files()]
    texts += [lab.pg.primary.logfile.read_text(errors="replace"), lab.moto.log_tail(10_000)]
    assert lab.tool.log_files()
    for text in texts:
        for secret in lab.credentials.values():
            assert secret not in text


def test_credentials_repr_shows_no_secret() -> None:
    credentials = Credentials.generate()
    for secret in credentials.values():
        assert secret not in repr(credentials)


def test_a_missing_binary_names_the_apt_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.lab import pgbackrest

    monkeypatch.setattr(pgbackrest.shutil, "which", lambda name: None)
    monkeypatch.setattr(pgbackrest.os, "access", lambda path, mode: False)
    with pytest.raises(pgbackrest.PgBackRestMissing, match="apt-get install pgbackrest"):
        pgbackrest.find_binary()


def test_a_missing_libfaketime_names_the_apt_package_and_nothing_is_written(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.lab import pgbackrest

    monkeypatch.setattr(pgbackrest, "FAKETIME_LIBRARY", "libfaketime-not-here.so.1")
    with pytest.raises(pgbackrest.PgBackRestMissing, match=r"libfaketime.*`apt-get install libfaketime`"):
        pgbackrest.find_libfaketime()
    folders = sorted(lab.pg.root.iterdir())
    postmaster = lab.pg.primary.pid
    repo = S3Repo(EAST, "us-east-1", lab.moto.endpoint_url, Path(str(lab.moto.ca_file)), retention_days=7)
    with pytest.raises(pgbackrest.FaketimeMissing, match="apt-get install libfaketime"):
        with PgBackRest(lab.pg, repo, None, Credentials.generate(), stanza="other", clock_offset=lambda: 0.0):
            pass
    assert sorted(lab.pg.root.iterdir()) == folders  # no config, no secrets written
    assert lab.pg.primary.pid == postmaster  # archiving untouched, no restart


def test_restore_refuses_the_deployments_data_dir(lab: Lab) -> None:
    with pytest.raises(PgBackRestError, match="deployment's data dir"):
        lab.tool.restore(lab.pg.primary.datadir)
    assert lab.pg.primary.is_running()
    with psycopg.connect(lab.pg.primary.dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert os.path.isdir(lab.pg.primary.datadir)


def test_verify_report_reads_pgbackrests_text() -> None:
    good = VerifyReport.parse(
        "stanza: main\nstatus: ok\n  archiveId: 15-1, total WAL checked: 3, total valid WAL: 3\n"
        "  backup: 20261208-000854F, status: valid, total files checked: 1263, total valid files: 1263\n"
    )
    assert good.ok and good.invalid_backups == ()
    bad = VerifyReport.parse(
        "stanza: main\nstatus: error\n  archiveId: 15-1, total WAL checked: 3, total valid WAL: 3\n"
        "  backup: 20261208-000406F, status: invalid, total files checked: 1266, total valid files: 1265\n"
        "    missing: 0, checksum invalid: 1, size invalid: 0, other: 0\n"
    )
    assert not bad.ok and bad.invalid_backups == ("20261208-000406F",)
    assert not VerifyReport.parse("").ok  # no status at all is not a pass


def test_a_command_past_its_timeout_is_stopped_with_its_workers(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Last: it leaves an aborted backup behind. The killed processes (runuser, pgbackrest, its
    workers: each preloads libfaketime) leave no libfaketime objects in /dev/shm either."""
    seen: list[int] = []
    descendants = proc.descendants

    def recording(pid: int) -> list[int]:
        found = descendants(pid)
        seen.extend([pid, *found])
        return found

    monkeypatch.setattr(proc, "descendants", recording)
    with pytest.raises(PgBackRestError, match=r"pgbackrest backup --type=full: no answer within 1 s \(stopped\)"):
        lab.tool.run("backup", "--type=full", timeout=1.0)
    left = [p for p in proc.pids_matching(str(lab.tool.config)) if "archive-push" not in proc.cmdline(p)]
    assert left == []
    assert len(set(seen)) >= 2  # runuser or pgbackrest and at least one more
    objects = [Path("/dev/shm", f"{kind}_{pid}") for pid in set(seen) for kind in ("faketime_shm", "sem.faketime_sem")]
    assert [o for o in objects if o.exists()] == []


def test_lab_repo_refuses_a_moto_without_tls() -> None:
    """pgBackRest's S3 driver speaks only TLS: a plain-http moto is refused before any bucket is made."""
    with pytest.raises(PgBackRestError, match="tls=True"):
        lab_repo(MotoServer(), EAST)
