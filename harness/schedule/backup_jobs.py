"""The schedule's backup jobs (spec section 3, issue 26) for the deployment a `--backup FILE` names.

The deployment's backups are made by its own tool (pgBackRest); the harness takes none and only
checks them, read only (harness.restore.ReadOnlyPgBackRest: info and verify, nothing that writes):

- "backup:age-check", daily at 07:30 UTC: LastBackupAge from the tool (`pgbackrest info`): the
  newest backup's timestamp.stop over every repository, against real time. pass when at most
  `max_age_hours` old; fail with the age and the backup's label (or when there is no backup);
  unknown, never a pass, when the repository cannot be read (the short cause, never a secret).
- "backup:verify", weekly on Sunday at 05:00 UTC: `pgbackrest verify` of every repository the
  stanza has (every file read back against its checksum): fail naming the invalid backups.

The file (YAML) has the keys of an external plan's `lab.backups` (harness.lab.external.config
parses both), plus max_age_hours; credentials only from *_env or *_file:

    tool: pgbackrest
    stanza: main
    config_file: /etc/pgbackrest/pgbackrest.conf      # optional: the deployment's, read as it is
    repo: {type: s3, bucket: pg-backups, endpoint: s3.eu-west-1.amazonaws.com, region: eu-west-1,
           key_env: PGBR_S3_KEY, secret_file: /run/secrets/pgbr-s3-secret, cipher_pass_env: PGBR_CIPHER_PASS}
    max_age_hours: 24                                  # the default
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PlanError
from ..inputs import printable
from ..lab.external.config import BACKUPS_KEYS, CREDENTIAL_WORDS, BackupsConfig, parse_backups
from ..lab.postgres import LabError
from ..plan import read_yaml
from ..restore import ReadOnlyPgBackRest, RestoreError, ScratchHost, verify_reasons
from ..restore.tool import INFO_OK, first_line

KNOWN = BACKUPS_KEYS | {"max_age_hours"}
JOBS = {"backup:age-check": "30 7 * * *", "backup:verify": "0 5 * * 0"}
# the keys of the file before issue 26 (the harness took the backups itself), and what replaced them
RETIRED = {
    "database": "name the deployment's pgBackRest stanza (stanza) instead of its database",
    "s3": "name the deployment's repository: repo {type: s3, bucket, endpoint, region, key_env, secret_env, ...}",
    "buckets": "name the deployment's repository: repo {bucket, ...} (one bucket, the tool's own layout)",
    "evidence_buckets": "the daily inventory went with the harness's backups; nothing replaces it here",
    "pg_bin": "the harness runs no pg_dump any more: leave it out",
}
FUTURE_SLACK_H = 1.0  # a newest backup stopped later than this ahead of our clock: the clocks differ
INFO_TIMEOUT_S = 120.0
CHECK_IO_TIMEOUT_S = 5.0  # the first info's --io-timeout: an endpoint that does not answer, unknown in ~20 s
VERIFY_TIMEOUT_S = 6 * 3600.0  # verify reads every file of the repository back


@dataclass(frozen=True)
class BackupTarget:
    path: Path
    backups: BackupsConfig
    max_age_hours: float = 24.0


def load_backup_target(path: Path) -> BackupTarget:
    """The --backup file; PlanError (one line naming the file and the key, with the fix) for a bad one."""

    def fail(key: str, message: str) -> PlanError:
        key = key.removeprefix("lab.backups").lstrip(".") or "(the file)"
        return PlanError(f"{path}: key '{key}': {message}")

    data = read_yaml(path, "no such backup target (--backup)")
    if not isinstance(data, dict):
        raise PlanError(
            f"{path}: a backup target is a mapping with keys {', '.join(sorted(KNOWN))} "
            f"(the deployment's pgBackRest repository)"
        )
    old = [str(k) for k in data if str(k) in RETIRED]
    if old:
        raise fail(
            old[0],
            f"the --backup file changed (issue 26): the deployment's own tool makes the backups and the "
            f"harness reads them; {RETIRED[old[0]]} (see docs/schedule-and-chaos.md, Backups)",
        )
    for key in data:
        if str(key) not in KNOWN:
            shown = printable(str(key), 40)
            if any(w in str(key).lower() for w in CREDENTIAL_WORDS):
                raise fail(
                    shown,
                    "a credential must not be written here: name it under repo with key_env/key_file, "
                    "secret_env/secret_file or cipher_pass_env/cipher_pass_file",
                )
            raise fail(shown, f"unknown key; known: {', '.join(sorted(KNOWN))}")
    age = data.get("max_age_hours", 24)
    if isinstance(age, bool) or not isinstance(age, (int, float)) or not 0 < age <= 24 * 365:
        raise fail("max_age_hours", f"a number of hours > 0 (at most a year), got {printable(repr(age), 40)}")
    backups = parse_backups({k: v for k, v in data.items() if k != "max_age_hours"}, fail)
    assert backups is not None  # a mapping, so parsed or refused
    return BackupTarget(path, backups, float(age))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_backup_job(job: str, target: BackupTarget, now: Callable[[], dt.datetime] = _now) -> tuple[str, str]:
    """(status pass|fail|unknown, what happened) of one backup job, read only. A repository or tool
    that cannot be read is unknown with the short cause (every secret of the target scrubbed)."""
    tool: ReadOnlyPgBackRest | None = None
    try:
        with ScratchHost() as host:
            timeout = VERIFY_TIMEOUT_S if job == "backup:verify" else INFO_TIMEOUT_S
            tool = ReadOnlyPgBackRest(target.backups, host, timeout=timeout, check_io_timeout=CHECK_IO_TIMEOUT_S)
            with tool:  # setup: the secrets, the config, `info` of the plan's repository
                entry = tool.info()
                if job == "backup:verify":
                    return verify_verdict(tool, entry)
                return age_verdict(entry, now(), target.max_age_hours, target.backups.stanza)
    except RestoreError as exc:
        said = str(exc).removeprefix("lab.backups.")
        return "unknown", f"the backup repository cannot be read: {printable(said, 400)}"
    except (LabError, OSError, ValueError) as exc:  # the tool failed (PgBackRestError), the host
        said = first_line(tool.scrub(str(exc)) if tool is not None else str(exc))
        return "unknown", f"the backup repository cannot be read: {said}"
    except Exception as exc:  # noqa: BLE001 - recorded and alerted; the daemon goes on
        said = first_line(tool.scrub(str(exc)) if tool is not None else str(exc))
        return "unknown", f"the job could not run: {type(exc).__name__}: {said}"


def _repo_problems(entry: dict[str, Any]) -> dict[int, str]:
    """repo key -> the tool's short message, for each repository of the stanza it could not read."""
    problems: dict[int, str] = {}
    for repo in entry.get("repo") or []:
        if not isinstance(repo, dict):
            continue
        status = repo.get("status")
        status = status if isinstance(status, dict) else {}
        if status.get("code") not in INFO_OK:
            problems[repo.get("key", 0)] = first_line(str(status.get("message", "no status")))
    return problems


def _repos(entry: dict[str, Any]) -> list[int]:
    keys = [r.get("key") for r in entry.get("repo") or [] if isinstance(r, dict)]
    return [k for k in keys if isinstance(k, int)] or [1]


def age_verdict(entry: dict[str, Any], now: dt.datetime, max_age_hours: float, stanza: str) -> tuple[str, str]:
    """LastBackupAge from the stanza's `pgbackrest info` entry: the newest backup's stop time over
    every repository, against `now`."""
    problems = _repo_problems(entry)
    unread = "; ".join(f"repo{k} unreadable: {m}" for k, m in sorted(problems.items()))
    backups = [
        b
        for b in entry.get("backup") or []
        if isinstance(b, dict) and isinstance((b.get("timestamp") or {}).get("stop"), (int, float))
    ]
    searched = ", ".join(f"repo{k}" for k in _repos(entry))
    if not backups:
        if problems and set(problems) >= set(_repos(entry)):
            return "unknown", f"the backup repository cannot be read: {unread}"
        return "fail", f"LastBackupAge: no backup (searched stanza {stanza}: {searched})" + (
            f"; {unread}" if unread else ""
        )
    newest = max(backups, key=lambda b: b["timestamp"]["stop"])
    stop = dt.datetime.fromtimestamp(newest["timestamp"]["stop"], dt.UTC)
    age_h = (now - stop).total_seconds() / 3600
    label = printable(str(newest.get("label", "?")), 80)
    repo = (newest.get("database") or {}).get("repo-key")
    where = f"{label}{f', repo{repo}' if isinstance(repo, int) else ''}, stopped {stop:%Y-%m-%dT%H:%M:%SZ}"
    if age_h < -FUTURE_SLACK_H:
        return "unknown", (
            f"LastBackupAge: the newest backup ({where}) stopped {-age_h:.1f} h after this host's clock: "
            f"the deployment's clock and this host's differ"
        )
    detail = f"LastBackupAge {_hours(age_h)} (limit {max_age_hours:g} h): {where}"
    if unread:
        detail += f"; {unread}"
    return ("pass" if age_h <= max_age_hours else "fail"), detail


def _hours(age_h: float) -> str:
    """An age as a person reads it: hours to one decimal; under six minutes, seconds."""
    return f"{age_h:.1f} h" if age_h >= 0.1 else f"{max(age_h, 0) * 3600:.0f} s"


def verify_verdict(tool: ReadOnlyPgBackRest, entry: dict[str, Any]) -> tuple[str, str]:
    """`pgbackrest verify` of every repository of the stanza: fail naming each invalid backup with the
    tool's own line; a repository it cannot read, unknown."""
    problems = _repo_problems(entry)
    said, invalid, unread = [], [], [f"repo{k} unreadable: {m}" for k, m in sorted(problems.items())]
    for n in (k for k in _repos(entry) if k not in problems):
        report = tool.verify(repo=n)
        reasons = verify_reasons(report)
        invalid += [
            f"repo{n} {label}: {reason.removeprefix('pgbackrest verify: ')}" for label, reason in reasons.items()
        ]
        if report.ok:
            said.append(f"repo{n}: every file checked, ok")
        elif not reasons:
            invalid.append(f"repo{n}: {first_line(tool.scrub(report.text))}")
    if invalid:
        return "fail", "pgbackrest verify: invalid: " + "; ".join(invalid) + (
            f"; {'; '.join(unread)}" if unread else ""
        )
    if unread:
        return "unknown", f"the backup repository cannot be read: {'; '.join(unread)}"
    return "pass", f"pgbackrest verify: {'; '.join(said)}"
