"""The backups part from pgBackRest's own catalogue (issue 26): `pgbackrest info --output=json` ->
Listing -> /health's backups part, and the runner's failures (no tool, a hang, a failure whose
text could carry a secret).

The JSON shapes below are what pgBackRest 2.45 answered in the lab (harness/lab/pgbackrest.py over
moto with TLS, two encrypted repositories), trimmed of the fields the Control Plane does not read.
The runner's tests run a stand-in executable (a shell script), a real process: what it does with
a missing tool, a run past its timeout and a failed run is the point, not pgBackRest itself (the
integration module test_backups_pgbackrest.py runs the real one).
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from pathlib import Path

import pytest

from controlplane.backups import CatalogueUnreadable, Listing, PgBackRestCatalogue, Snapshot, parse_info, part
from tests.support import wait_for

HOUR = 3600.0
STOP1 = 1796696530  # repo1's full backup, as pgBackRest printed it
STOP2 = 1796696618  # repo2's, 88 s later
NOT_FOUND = (
    "[ProtocolError] HTTP request failed with 404 (NOT FOUND):\n*** Path/Query ***:\n"
    "GET /missing/?delimiter=%2F&list-type=2&prefix=pgbackrest%2Fbackup%2F\n*** Request Headers ***:\n"
    "authorization: <redacted>\ncontent-length: 0\nhost: localhost\n*** Response Content ***:\n"
    '<?xml version="1.0" encoding="utf-8"?>\n<Error><Code>NoSuchBucket</Code><Message>The specified '
    "bucket does not exist</Message><BucketName>missing</BucketName></Error>"
)


def backup(label: str, stop: int, repo: int, kind: str = "full") -> dict:
    return {
        "archive": {"start": "000000010000000000000002", "stop": "000000010000000000000003"},
        "database": {"id": 1, "repo-key": repo},
        "error": False,
        "label": label,
        "timestamp": {"start": stop - 2, "stop": stop},
        "type": kind,
    }


def repo(key: int, code: int, message: str) -> dict:
    return {"cipher": "aes-256-cbc", "key": key, "status": {"code": code, "message": message}}


def info(backups: list[dict], repos: list[dict], name: str = "main") -> str:
    return json.dumps(
        [{"archive": [], "backup": backups, "cipher": "aes-256-cbc", "db": [], "name": name, "repo": repos}]
    )


NO_VALID = [repo(1, 2, "no valid backups"), repo(2, 2, "no valid backups")]
BOTH_OK = [repo(1, 0, "ok"), repo(2, 0, "ok")]


def test_no_backup_yet_is_down_naming_the_stanza_and_its_repositories():
    listing = parse_info(info([], NO_VALID), "main")
    assert listing == Listing(
        None, 0, {}, ("repo1", "repo2"), noun="backup", place="", searched="stanza main: repo1, repo2"
    )
    got = part(listing, STOP1)
    assert (got["status"], got["age_hours"], got["snapshot_id"]) == ("down", None, None)
    assert got["detail"] == "no backup (searched stanza main: repo1, repo2)"


def test_the_newest_backup_over_every_repository_gives_the_age():
    backups = [backup("20261208-022208F", STOP1, 1), backup("20261208-022336F", STOP2, 2)]
    listing = parse_info(info(backups, BOTH_OK), "main")
    assert listing.newest == Snapshot("20261208-022336F", "full", float(STOP2), "repo2", "20261208-022336F")
    assert (listing.snapshots, listing.errors) == (2, {})
    got = part(listing, STOP2 + 0.5 * HOUR)
    assert (got["status"], got["age_hours"], got["bucket"], got["taken_at"]) == ("up", 0.5, "repo2", float(STOP2))
    assert got["detail"] == "newest backup 0.5 h old (20261208-022336F)"
    # the order pgBackRest lists them in does not matter; repo1's newer diff wins over repo2's full
    newer = [backup("20261208-022208F_20261208-030000D", STOP2 + 60, 1, "diff"), *backups]
    listing = parse_info(info(newer, BOTH_OK), "main")
    assert (listing.newest.snapshot_id, listing.newest.kind, listing.newest.bucket) == (
        "20261208-022208F_20261208-030000D",
        "diff",
        "repo1",
    )
    stale = part(listing, STOP2 + 60 + 25 * HOUR)
    assert (stale["status"], stale["age_hours"]) == ("down", 25.0)
    assert stale["detail"] == "newest backup 25.0 h old (> 24 h)"


def test_one_repository_erroring_with_a_fresh_backup_in_the_other_is_degraded():
    repos = [repo(1, 0, "ok"), repo(2, 99, NOT_FOUND)]
    listing = parse_info(info([backup("20261208-022208F", STOP1, 1)], repos), "main")
    cause = "[ProtocolError] HTTP request failed with 404 (NOT FOUND): NoSuchBucket"
    assert listing.errors == {"repo2": cause}
    got = part(listing, STOP1 + 0.2 * HOUR)
    assert (got["status"], got["age_hours"]) == ("degraded", 0.2)
    assert got["detail"] == f"newest backup 0.2 h old (20261208-022208F); repo2 unreadable: {cause}"
    assert "authorization" not in got["detail"] and "\n" not in got["detail"]
    # the same backup 30 h old: the unreadable repository may hold a fresher one, the age is unknown
    unknown = part(listing, STOP1 + 30 * HOUR)
    assert (unknown["status"], unknown["age_hours"]) == ("down", None)
    assert unknown["detail"] == (
        f"backup catalogue unreadable: repo2: {cause}; newest readable backup 30.0 h old (20261208-022208F)"
    )
    # an unreachable repository, nothing in the other one
    refused = "[HostConnectError] unable to connect to 'localhost:1': [111] Connection refused"
    listing = parse_info(info([], [repo(1, 2, "no valid backups"), repo(2, 99, refused)]), "main")
    assert part(listing, STOP1)["detail"] == f"backup catalogue unreadable: repo2: {refused}"


def test_a_wrong_stanza_and_answers_that_are_not_pgbackrests_are_unreadable():
    missing = [repo(1, 1, "missing stanza path"), repo(2, 1, "missing stanza path")]
    listing = parse_info(info([], missing, name="nope"), "nope")
    got = part(listing, STOP1)
    assert (got["status"], got["age_hours"]) == ("down", None)
    assert got["detail"] == (
        "backup catalogue unreadable: repo1: stanza nope: missing stanza path; repo2: stanza nope: missing stanza path"
    )
    for raw, needle in (
        ("not json", "its answer is not JSON"),
        (b"\xff\xfe", "its answer is not JSON"),
        ("{}", "no stanza main"),
        ("[]", "no stanza main"),
        (info([], NO_VALID, name="other"), "no stanza main"),
    ):
        with pytest.raises(CatalogueUnreadable, match=needle):
            parse_info(raw, "main")
    # a backup without a usable stop time or label is not counted
    odd = [
        {**backup("a", STOP1, 1), "timestamp": {"start": 1, "stop": None}},
        {**backup("b", STOP1, 1), "timestamp": {"stop": True}},
        {**backup("", STOP1, 1)},
        "not an object",
        backup("20261208-022208F", STOP1, 1),
    ]
    listing = parse_info(info(odd, BOTH_OK), "main")
    assert (listing.snapshots, listing.newest.snapshot_id) == (1, "20261208-022208F")


# ---- the runner, with a stand-in executable ---------------------------------------------------

SECRET = "cipher-" + "Zx9" * 10


def stand_in(tmp_path: Path, body: str) -> str:
    path = tmp_path / "pgbackrest"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def config(tmp_path: Path) -> tuple[Path, Path]:
    include = tmp_path / "conf.d"
    include.mkdir()
    (include / "secrets.conf").write_text(f"[global]\nrepo1-cipher-pass={SECRET}\nrepo1-s3-key=AKIAEXAMPLE1\n")
    conf = tmp_path / "pgbackrest.conf"
    conf.write_text("[global]\nrepo1-type=s3\n[main]\npg1-path=/nowhere\n")
    return conf, include


def refresh(catalogue: PgBackRestCatalogue) -> Listing:
    return asyncio.run(catalogue.listing())


def test_the_runner_passes_the_config_and_stanza_and_no_secret_in_its_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "db-" + SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-" + SECRET)
    conf, include = config(tmp_path)
    answer = tmp_path / "answer.json"
    answer.write_text(info([backup("20261208-022208F", STOP1, 1)], [repo(1, 0, "ok")]))
    binary = stand_in(tmp_path, f'echo "$@" > {tmp_path}/args\nenv > {tmp_path}/env\ncat {answer}\n')
    catalogue = PgBackRestCatalogue(conf, "main", include=include, binary=binary, timeout=8.0)
    listing = refresh(catalogue)
    assert listing.newest is not None and listing.newest.snapshot_id == "20261208-022208F"
    assert (tmp_path / "args").read_text().split() == [
        f"--config={conf}",
        f"--config-include-path={include}",
        "--stanza=main",
        "--log-level-console=off",
        "--log-level-stderr=error",
        "--log-level-file=off",
        "--io-timeout=1",
        "info",
        "--output=json",
    ]
    env = (tmp_path / "env").read_text()
    assert SECRET not in env and "PGPASSWORD" not in env and "AWS_" not in env


def test_one_refresh_at_a_time_and_cached(tmp_path):
    conf, include = config(tmp_path)
    answer = tmp_path / "answer.json"
    answer.write_text(info([], NO_VALID))
    runs = tmp_path / "runs"
    binary = stand_in(tmp_path, f"echo run >> {runs}\nsleep 0.3\ncat {answer}\n")
    catalogue = PgBackRestCatalogue(conf, "main", include=include, binary=binary, timeout=8.0, cache_s=60.0)

    async def many() -> list[Listing]:
        return await asyncio.gather(*(catalogue.listing() for _ in range(5)))

    async def many_then_one() -> tuple[list[Listing], Listing]:
        listings = await many()
        return listings, await catalogue.listing()

    listings, later = asyncio.run(many_then_one())
    assert len(runs.read_text().splitlines()) == 1  # five callers and a later one: one pgbackrest run
    assert all(listing is listings[0] for listing in listings) and later is listings[0]


def test_a_missing_tool_is_a_short_cause_naming_the_package(tmp_path):
    conf, include = config(tmp_path)
    catalogue = PgBackRestCatalogue(conf, "main", include=include, binary=str(tmp_path / "no-such" / "pgbackrest"))
    got = part(refresh(catalogue), STOP1)
    assert got["status"] == "down"
    assert got["detail"] == (
        f"backup catalogue unreadable: pgbackrest info: {tmp_path}/no-such/pgbackrest is not installed "
        "(apt-get install pgbackrest)"
    )


def test_a_run_past_its_timeout_is_killed_with_its_children(tmp_path):
    conf, include = config(tmp_path)
    pids = tmp_path / "pids"
    binary = stand_in(tmp_path, f"sleep 60 &\necho $$ $! > {pids}\nwait\n")
    catalogue = PgBackRestCatalogue(conf, "main", include=include, binary=binary, timeout=1.0)
    started = time.monotonic()
    got = part(refresh(catalogue), STOP1)
    assert time.monotonic() - started < 10.0
    assert got["detail"] == "backup catalogue unreadable: pgbackrest info: no answer within 1 s (stopped)"
    started_pids = [int(p) for p in pids.read_text().split()]
    wait_for(
        lambda: not [pid for pid in started_pids if _alive(pid)],
        timeout=10.0,
        what="every process the run started gone",
        on_fail=lambda: f"still running: {[pid for pid in started_pids if _alive(pid)]}",
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) is gone for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def test_a_failed_run_is_one_short_line_without_a_secret(tmp_path):
    conf, include = config(tmp_path)
    said = (
        f"ERROR: [041]: unable to open file '{conf}' for read: [13] Permission denied (pass {SECRET}, key AKIAEXAMPLE1)"
    )
    binary = stand_in(tmp_path, f"echo \"{said}\" >&2\necho 'HINT: more' >&2\nexit 41\n")
    catalogue = PgBackRestCatalogue(conf, "main", include=include, binary=binary)
    got = part(refresh(catalogue), STOP1)
    assert got["status"] == "down"
    assert got["detail"].startswith(
        f"backup catalogue unreadable: pgbackrest info: failed (exit 41): [041] unable to open file "
        f"'{conf}' for read: [13] Permission denied"
    )
    assert SECRET not in got["detail"] and "AKIAEXAMPLE1" not in got["detail"] and "HINT" not in got["detail"]
    # a repository's message is scrubbed too
    answer = tmp_path / "answer.json"
    answer.write_text(info([], [repo(1, 99, f"[CryptoError] bad pass {SECRET}")]))
    binary = stand_in(tmp_path, f"cat {answer}\n")
    got = part(refresh(PgBackRestCatalogue(conf, "main", include=include, binary=binary)), STOP1)
    assert got["detail"] == "backup catalogue unreadable: repo1: [CryptoError] bad pass ***"


# ---- serve's flags ----------------------------------------------------------------------------

SERVE = [
    "serve",
    "--instance",
    "az9",
    "--port",
    "1",
    "--siem",
    "/nonexistent/siem.jsonl",
    "--database",
    "host=127.0.0.1 port=1 dbname=controlplane user=controlplane",
    "--s3-endpoint",
    "http://127.0.0.1:1",
    "--evidence-bucket",
    "drill-evidence",
]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            [
                "--backup-bucket",
                "backups",
                "--backup-pgbackrest-config",
                "/etc/pgbackrest.conf",
                "--backup-stanza",
                "m",
            ],
            "--backup-pgbackrest-config and --backup-bucket: the backups part has one source, choose one",
        ),
        (["--backup-stanza", "main"], "--backup-stanza needs --backup-pgbackrest-config FILE (pgBackRest's config)"),
        (
            ["--backup-pgbackrest-include", "/etc/pgbackrest/conf.d", "--backup-stanza", "main"],
            "--backup-pgbackrest-include needs --backup-pgbackrest-config FILE (pgBackRest's config)",
        ),
        (
            ["--backup-pgbackrest-config", "/etc/pgbackrest.conf"],
            "--backup-pgbackrest-config needs --backup-stanza NAME (the stanza, e.g. main)",
        ),
        (
            ["--backup-pgbackrest-config", "/etc/pgbackrest.conf", "--backup-stanza=--io-timeout=0"],
            "--backup-pgbackrest-config needs --backup-stanza NAME (the stanza, e.g. main)",
        ),
        (
            [
                "--backup-pgbackrest-config",
                "/etc/p.conf",
                "--backup-stanza",
                "main",
                "--backup-pgbackrest-timeout",
                "0",
            ],
            "--backup-pgbackrest-timeout must be > 0",
        ),
    ],
)
def test_serve_refuses_a_half_given_pgbackrest_source_before_starting(flags, message, capsys):
    from controlplane.cli import main

    assert main([*SERVE, *flags]) == 2
    assert capsys.readouterr().err.strip() == f"controlplane serve: {message}"
