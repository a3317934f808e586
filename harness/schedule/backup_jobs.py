"""The schedule's backup jobs (spec section 3), for the deployment a `--backup FILE` names:

- "backup:snapshot", hourly at minute 0: harness.backup's jobs, whatever is due on the Control
  Plane's clock (the hourly snapshot, the daily cross-region export and inventory, retention);
- "backup:age-check", daily at 07:30 UTC: LastBackupAge, judged by the harness from the backup
  store itself (the newest snapshot whose manifest it reads, against the Control Plane's clock),
  never from what the system reports: pass when at most `max_age_hours` (24) old.

The file (YAML); the password and keys come from files or environment variables, never the file:

    database: {dsn: "host=db.staging port=5432 dbname=controlplane user=backup", password_file: /run/secrets/pg}
    s3: {endpoint: "https://s3.staging:9000", region: us-east-1,
         access_key_env: AWS_ACCESS_KEY_ID, secret_key_env: AWS_SECRET_ACCESS_KEY}
    buckets: {hourly: backups, export: backups-dr, vault: keyvault}      # these are the defaults
    evidence_buckets: [evidence, evidence-replica]                       # for the daily inventory
    pg_bin: /usr/lib/postgresql/15/bin
    max_age_hours: 24
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from ..errors import PlanError
from ..plan import read_yaml

KNOWN = {"database", "s3", "buckets", "evidence_buckets", "pg_bin", "max_age_hours"}
JOBS = {"backup:snapshot": "0 * * * *", "backup:age-check": "30 7 * * *"}


@dataclass(frozen=True)
class BackupTarget:
    path: Path
    dsn: str
    password_env: str | None
    password_file: str | None
    endpoint: str
    region: str
    access_key_env: str | None
    secret_key_env: str | None
    buckets: dict[str, str] = field(
        default_factory=lambda: {"hourly": "backups", "export": "backups-dr", "vault": "keyvault"}
    )
    evidence_buckets: tuple[str, ...] = ()
    pg_bin: Path = Path("/usr/lib/postgresql/15/bin")
    max_age_hours: float = 24.0

    def password(self) -> str | None:
        if self.password_env:
            value = os.environ.get(self.password_env)
            if not value:
                raise PlanError(f"{self.path}: key 'database.password_env': {self.password_env} is not set")
            return value
        if self.password_file:
            try:
                return Path(self.password_file).read_text().strip()
            except OSError as exc:
                raise PlanError(f"{self.path}: key 'database.password_file': cannot read it: {exc.strerror}") from None
        return None

    def full_dsn(self) -> str:
        params = psycopg.conninfo.conninfo_to_dict(self.dsn)
        password = self.password()
        if password is not None:
            params["password"] = password
        return psycopg.conninfo.make_conninfo("", **params)

    def s3(self) -> Any:  # a boto3 S3 client (boto3 has no type information)
        import boto3
        import botocore.config

        keys: dict[str, Any] = {}
        if self.access_key_env and self.secret_key_env:
            keys = {
                "aws_access_key_id": os.environ.get(self.access_key_env),
                "aws_secret_access_key": os.environ.get(self.secret_key_env),
            }
        config = botocore.config.Config(connect_timeout=5, read_timeout=30, s3={"addressing_style": "path"})
        return boto3.session.Session(region_name=self.region, **keys).client(
            "s3", endpoint_url=self.endpoint, config=config
        )

    def store_and_vault(self):
        from ..backup import BackupStore, KeyVault

        store = BackupStore(self.s3(), self.buckets["hourly"], self.buckets["export"], self.buckets["vault"])
        return store, KeyVault(store.s3, store.vault_bucket)


def load_backup_target(path: Path) -> BackupTarget:
    def fail(key: str, message: str) -> PlanError:
        return PlanError(f"{path}: key '{key}': {message}")

    data = read_yaml(path, "no such backup target (--backup)")
    if not isinstance(data, dict):
        raise PlanError(f"{path}: a backup target is a mapping with keys {', '.join(sorted(KNOWN))}")
    unknown = sorted(set(map(str, data)) - KNOWN)
    if unknown:
        raise fail(unknown[0], f"unknown key; known: {', '.join(sorted(KNOWN))}")
    database, s3 = data.get("database"), data.get("s3")
    if not isinstance(database, dict) or not isinstance(database.get("dsn"), str):
        raise fail("database.dsn", "required: a libpq conninfo without the password")
    try:
        if "password" in psycopg.conninfo.conninfo_to_dict(database["dsn"]) or "password" in database:
            raise fail("database", "a password must not be written here: name it with password_env or password_file")
    except psycopg.ProgrammingError as exc:
        raise fail("database.dsn", f"not a libpq conninfo: {exc}") from None
    if not isinstance(s3, dict) or not str(s3.get("endpoint", "")).startswith(("http://", "https://")):
        raise fail("s3.endpoint", "required: the http(s) URL of the object store")
    buckets = {"hourly": "backups", "export": "backups-dr", "vault": "keyvault", **(data.get("buckets") or {})}
    if set(buckets) != {"hourly", "export", "vault"} or not all(isinstance(v, str) for v in buckets.values()):
        raise fail("buckets", "a mapping of hourly, export and vault to bucket names")
    evidence = data.get("evidence_buckets") or []
    if not isinstance(evidence, list) or not all(isinstance(b, str) for b in evidence):
        raise fail("evidence_buckets", "a list of bucket names")
    age = data.get("max_age_hours", 24)
    if isinstance(age, bool) or not isinstance(age, (int, float)) or not 0 < age <= 24 * 365:
        raise fail("max_age_hours", f"a number of hours > 0, got {age!r}")
    return BackupTarget(
        path,
        database["dsn"],
        database.get("password_env"),
        database.get("password_file"),
        s3["endpoint"],
        str(s3.get("region", "us-east-1")),
        s3.get("access_key_env"),
        s3.get("secret_key_env"),
        buckets,
        tuple(evidence),
        Path(data.get("pg_bin") or "/usr/lib/postgresql/15/bin"),
        float(age),
    )


def run_backup_job(job: str, target: BackupTarget) -> tuple[str, str]:
    """(status pass|fail, what happened) of one backup job; an error is a fail with its cause
    (the password never in it)."""
    from ..backup import BackupJobs, cp_clock_of
    from ..backup.catalogue import newest_age_hours

    try:
        store, vault = target.store_and_vault()
        dsn = target.full_dsn()
        if job == "backup:snapshot":
            store.ensure()
            ran = BackupJobs(store, vault, dsn, target.pg_bin, target.evidence_buckets).run_due()
            return "pass", f"ran: {', '.join(ran)}" if ran else "nothing due on the Control Plane's clock"
        age = newest_age_hours(store, cp_clock_of(dsn))
        if age is None:
            return "fail", f"LastBackupAge: no backup on record in {store.bucket} or {store.dr_bucket}"
        verdict = "pass" if age <= target.max_age_hours else "fail"
        return verdict, f"LastBackupAge {age:.1f} h (limit {target.max_age_hours:g} h)"
    except PlanError as exc:
        return "fail", str(exc)
    except Exception as exc:  # noqa: BLE001 - recorded and alerted; the daemon goes on
        password = target.password()
        text = f"{type(exc).__name__}: {exc}"
        return "fail", text.replace(password, "***") if password else text
