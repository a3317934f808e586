"""A deployment with its own pgBackRest that the TEST sets up (issue 26: the harness reads it, read only).

The test plays the deployment: a PostgreSQL, a plain pgbackrest.conf it writes (no harness code),
the secrets in the config's own conf.d, a repository in a moto bucket over TLS, archiving on
(archive-push), stanza-create. What it then does (backups, rows, a flipped bit) is the test's own
scenario: tests/restore/test_restore_external.py and tests/integration/test_schedule_backup.py.
Also the skip of a test module that needs pgbackrest (and libfaketime) installed: require_pgbackrest().
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from harness.lab.moto import MotoServer
from harness.lab.pgbackrest import PgBackRestError, find_libfaketime
from harness.lab.postgres import RUN_AS, SUPERUSER, PgCluster


def require_pgbackrest(faketime: bool = False) -> str:
    """Skip the calling test module unless pgbackrest is installed (with faketime: libfaketime too,
    the lab's clock for it); answers libfaketime's path, or "" without faketime."""
    if shutil.which("pgbackrest") is None:
        pytest.skip(
            "pgbackrest is not installed (./run installs it; or apt-get install pgbackrest)", allow_module_level=True
        )
    if not faketime:
        return ""
    try:
        return find_libfaketime()
    except PgBackRestError:
        pytest.skip(
            "libfaketime is not installed (./run installs it; or apt-get install libfaketime)", allow_module_level=True
        )


@dataclass(frozen=True)
class Secrets:
    """The deployment's S3 keys and repository cipher pass (in its conf.d; the tests look for them in outputs)."""

    key: str
    secret: str
    cipher: str

    def values(self) -> tuple[str, str, str]:
        return (self.key, self.secret, self.cipher)


@dataclass
class Deployment:
    moto: MotoServer
    pg: PgCluster
    s3: Any
    bucket: str
    secrets: Secrets
    folder: Path  # the deployment's pgBackRest folder: config, conf.d (secrets), log, lock, spool
    config: Path
    secret_file: Path  # the S3 secret in a file of the test's (a plan or --backup file names it)

    def pgbackrest(self, command: str, *options: str) -> str:
        """Run pgbackrest as the deployment does (its config, its user); its stdout. Asserts success."""
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

    def labels_in_repo(self) -> list[str]:
        """The repository's backups, oldest first (pgbackrest info)."""
        return [b["label"] for b in json.loads(self.pgbackrest("info", "--output=json"))[0]["backup"]]

    def objects(self, content: bool = False) -> dict[str, Any]:
        """Every object of the bucket: key -> ETag, or with content (ETag, size, sha256 of its bytes)."""
        found: dict[str, Any] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                if content:
                    body = self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
                    found[item["Key"]] = (item["ETag"], item["Size"], hashlib.sha256(body).hexdigest())
                else:
                    found[item["Key"]] = item["ETag"]
        return found

    def flip_a_bit(self, label: str) -> tuple[str, bytes]:
        """The fault: one bit of the backup's largest bundle (or file) flipped in the bucket; its key
        and its bytes before (put them back to undo)."""
        prefix = f"pgbackrest/backup/main/{label}/"
        objects = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)["Contents"]
        largest = max(
            (o for o in objects if "/bundle/" in o["Key"] or "/pg_data/" in o["Key"]), key=lambda o: o["Size"]
        )
        original = self.s3.get_object(Bucket=self.bucket, Key=largest["Key"])["Body"].read()
        body = bytearray(original)
        body[len(body) // 2] ^= 0x10
        self.s3.put_object(Bucket=self.bucket, Key=largest["Key"], Body=bytes(body))
        return largest["Key"], original


D = TypeVar("D", bound=Deployment)


def own(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, RUN_AS, RUN_AS)


def tree(folder: Path) -> dict[str, str]:
    """Every file (sha256) and folder under folder: the deployment's side, compared before and after."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(folder.rglob("*"))
    }


@contextmanager
def deployment(
    cls: type[D], bucket: str, secrets: Secrets, secret_dir: Path, *, retention_full: int, process_max: int
) -> Iterator[D]:
    """moto over TLS with `bucket`, a PostgreSQL archiving to it through its own pgBackRest config,
    the stanza created; no backup yet (cls: Deployment or a test's subclass with its scenario's
    fields, each with a default). Everything stopped and removed on exit."""
    with ExitStack() as stack:
        moto = stack.enter_context(MotoServer(tls=True))
        pg = stack.enter_context(PgCluster())
        assert moto.ca_file is not None
        s3 = moto.client("s3")
        s3.create_bucket(Bucket=bucket)
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
            f"repo1-s3-bucket={bucket}\nrepo1-s3-endpoint=localhost\nrepo1-storage-port={port}\n"
            "repo1-s3-region=us-east-1\nrepo1-s3-uri-style=path\n"
            f"repo1-storage-ca-file={folder / 'ca.crt'}\n"
            f"repo1-cipher-type=aes-256-cbc\nrepo1-bundle=y\nrepo1-retention-full={retention_full}\n"
            f"log-path={folder / 'log'}\nlock-path={folder / 'lock'}\nspool-path={folder / 'spool'}\n"
            "log-level-console=off\nlog-level-stderr=warn\nstart-fast=y\ncompress-type=lz4\n"
            f"process-max={process_max}\nio-timeout=20\narchive-timeout=60\n"
            "\n[main]\n"
            f"pg1-path={pg.primary.datadir}\npg1-port={pg.primary.port}\n"
            f"pg1-socket-path={pg.socket_dir}\npg1-user={SUPERUSER}\n"
        )
        (folder / "conf.d" / "secrets.conf").write_text(
            f"[global]\nrepo1-s3-key={secrets.key}\nrepo1-s3-key-secret={secrets.secret}\n"
            f"repo1-cipher-pass={secrets.cipher}\n"
        )
        for path in (folder, *folder.rglob("*")):
            own(path)
        secret_file = secret_dir / "s3-secret"
        secret_file.write_text(secrets.secret + "\n")
        secret_file.chmod(0o600)
        archive = (
            f"pgbackrest --config={config} --config-include-path={folder / 'conf.d'} --stanza=main archive-push %p"
        )
        with pg.primary.connect(admin=True, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET archive_mode = 'on'")
            conn.execute(f"ALTER SYSTEM SET archive_command = '{archive}'")
        pg.primary.stop()
        pg.primary.start()
        dep = cls(moto, pg, s3, bucket, secrets, folder, config, secret_file)
        dep.pgbackrest("stanza-create")
        yield dep
