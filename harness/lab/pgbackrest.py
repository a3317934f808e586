"""pgBackRest over the lab's PostgreSQL: the deployment's own backup tool (issue 26).

One ``PgBackRest`` is one stanza over a ``PgCluster``'s primary, with two S3 repositories
(moto over TLS in the lab):

- repo1: the primary region's bucket, time-based retention (7 days);
- repo2: the other region's bucket, created with Object Lock (COMPLIANCE, a default
  retention of >= 90 days), time-based retention of as many days;
- both encrypted (``aes-256-cbc``); WAL archived continuously to both by the cluster's
  ``archive_command`` (``pgbackrest archive-push``), so a restore can replay to any point.

Everything pgBackRest keeps on this host (config, lock, log, spool, the CA it trusts) lives in
one folder under the cluster's temp dir, owned by the cluster's OS user (pgBackRest runs as
the same user as PostgreSQL: ``postgres`` via runuser when we are root), never in
/etc/pgbackrest or /var/lib/pgbackrest. The secrets (the S3 keys, the cipher pass) are in
``conf.d/secrets.conf``, mode 0600, included by the config: never on a command line, never
in the environment of the server, never in an error text (each is scrubbed from what
pgBackRest printed before it is raised).

    with PgBackRest(cluster, repo1, repo2, credentials) as tool:   # stanza-create, check
        tool.backup("full")
        ...
        tool.restore(scratch_dir)                                   # to the end of the WAL
        with ScratchServer(cluster, scratch_dir) as scratch: ...    # the caller's scratch PostgreSQL

Every method is one pgbackrest call with a timeout; a failure raises ``PgBackRestError``
naming the command and holding its stderr.

The deployment's clock: ``PgBackRest(..., clock_offset=f)`` runs every command under libfaketime,
``f()`` seconds ahead of real time (read when the command starts), so that time-based retention
acts on the clock the drill moved. An online backup is stamped with the *database server's*
clock (pgBackRest asks PostgreSQL for ``clock_timestamp()``), so the server must run on the same
clock (``server_clock_env``); see docs/backups.md, "The deployment's clock".
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sysconfig
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from harness.lab import proc
from harness.lab.postgres import LOOPBACK, RUN_AS, SUPERUSER, LabError, PgCluster, pg_bin_dir
from harness.net import free_port
from harness.wait import poll

if TYPE_CHECKING:
    from harness.lab.moto import MotoServer

BINARY = "pgbackrest"
APT_PACKAGE = "pgbackrest"
STANZA = "main"
REPO_PATH = "/pgbackrest"  # the repository's folder inside each bucket
CIPHER_TYPE = "aes-256-cbc"
REPO1_RETENTION_DAYS = 7
REPO2_LOCK_DAYS = 90
REPO1_BUCKET, REPO2_BUCKET = "drill-backups-east", "drill-backups-west"  # the lab's, in moto
TARGET_TYPES = ("time", "name")
TLS_NAME = "localhost"  # the name in the lab CA's server certificate (harness.lab.tlsca)
FAKETIME_APT_PACKAGE = "libfaketime"
FAKETIME_LIBRARY = "libfaketime.so.1"  # Debian: /usr/lib/<multiarch>/faketime/


class PgBackRestError(LabError):
    """A pgbackrest command failed; the message names the command and holds its stderr."""


class PgBackRestMissing(PgBackRestError):
    """pgbackrest is not installed; the message names the apt package."""


class FaketimeMissing(PgBackRestMissing):
    """libfaketime (the deployment's clock for pgBackRest) is not installed; the message names the apt package."""


@dataclass(frozen=True)
class S3Repo:
    """One pgBackRest repository in an S3 bucket (moto in the lab).

    endpoint_url is https://HOST:PORT; ca_file the CA pgBackRest trusts for it.
    retention_days: time-based retention of full backups (``repoN-retention-full-type=time``).
    """

    bucket: str
    region: str
    endpoint_url: str
    ca_file: Path
    retention_days: int
    object_lock: bool = False

    @property
    def host_port(self) -> tuple[str, int]:
        rest = self.endpoint_url.split("://", 1)[-1].rstrip("/")
        host, _, port = rest.rpartition(":")
        return host, int(port)


def lab_repo(
    moto: MotoServer,
    bucket: str,
    region: str = "us-east-1",
    retention_days: int = REPO1_RETENTION_DAYS,
    *,
    object_lock: bool = False,
) -> S3Repo:
    """Create `bucket` in the lab's moto (started with tls=True) and answer its repository.

    object_lock (repo2): the bucket is made with Object Lock and a default retention of COMPLIANCE,
    retention_days: pgBackRest needs no lock setting of its own (docs/backups.md)."""
    if moto.ca_file is None:
        raise PgBackRestError("pgBackRest's S3 driver speaks only TLS: start the lab's moto with tls=True")
    s3 = moto.client("s3")
    options: dict[str, Any] = {}
    if region != "us-east-1":
        options["CreateBucketConfiguration"] = {"LocationConstraint": region}
    if object_lock:
        options["ObjectLockEnabledForBucket"] = True
    s3.create_bucket(Bucket=bucket, **options)
    if object_lock:
        s3.put_object_lock_configuration(
            Bucket=bucket,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": retention_days}},
            },
        )
    return S3Repo(bucket, region, moto.endpoint_url, moto.ca_file, retention_days, object_lock=object_lock)


def lab_repos(moto: MotoServer, east: str = REPO1_BUCKET, west: str = REPO2_BUCKET) -> tuple[S3Repo, S3Repo]:
    """The lab's two repositories, their buckets made in moto: repo1 in us-east-1 (retention
    REPO1_RETENTION_DAYS), repo2 in us-west-2 with Object Lock (COMPLIANCE, REPO2_LOCK_DAYS)."""
    repo1 = lab_repo(moto, east)
    repo2 = lab_repo(moto, west, "us-west-2", REPO2_LOCK_DAYS, object_lock=True)
    return repo1, repo2


@dataclass(frozen=True)
class Credentials:
    """The secrets of the repositories: S3 keys and the repository cipher pass.

    The cipher pass is the key issue 26's key vault stand-in holds: pgBackRest needs it on the
    deployment's host (archive-push encrypts every WAL segment), and whoever restores after
    losing that host needs it from somewhere else. Its repr shows no secret (a traceback may print it)."""

    s3_key: str = field(repr=False)
    s3_secret: str = field(repr=False)
    cipher_pass: str = field(repr=False)

    @classmethod
    def generate(cls) -> Credentials:
        return cls(secrets.token_hex(10), secrets.token_urlsafe(30), secrets.token_urlsafe(48))

    def values(self) -> tuple[str, ...]:
        return (self.s3_key, self.s3_secret, self.cipher_pass)


@dataclass(frozen=True)
class VerifyReport:
    """What `pgbackrest verify --output=text` found: status ok|error, the backups it called invalid."""

    ok: bool
    invalid_backups: tuple[str, ...]
    text: str

    @classmethod
    def parse(cls, text: str) -> VerifyReport:
        statuses = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("status:")]
        invalid = tuple(
            line.split("backup:", 1)[1].split(",", 1)[0].strip()
            for line in text.splitlines()
            if line.strip().startswith("backup:") and "status: invalid" in line
        )
        return cls(ok=bool(statuses) and all(s == "ok" for s in statuses), invalid_backups=invalid, text=text)


def find_binary() -> str:
    """The pgbackrest executable; PgBackRestMissing naming the apt package when there is none."""
    found = shutil.which(BINARY) or ("/usr/bin/pgbackrest" if os.access("/usr/bin/pgbackrest", os.X_OK) else None)
    if found is None:
        raise PgBackRestMissing(f"pgbackrest is not installed: install it with `apt-get install {APT_PACKAGE}`")
    return found


def find_libfaketime() -> str:
    """The libfaketime library to preload; FaketimeMissing naming the apt package when there is none."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    for folder in (f"/usr/lib/{multiarch}/faketime", "/usr/lib/faketime"):
        path = Path(folder) / FAKETIME_LIBRARY
        if path.is_file():
            return str(path)
    raise FaketimeMissing(
        f"libfaketime is not installed (the deployment's clock for pgbackrest): "
        f"install it with `apt-get install {FAKETIME_APT_PACKAGE}`"
    )


def _without_faketime(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith("FAKETIME") and k not in ("LD_PRELOAD", "NO_FAKE_STAT")}


def faketime_env(library: str, offset_s: float) -> dict[str, str]:
    """The environment that puts one command offset_s seconds ahead of real time (libfaketime's
    relative form "+Ns"). Its children (pgBackRest's local workers) inherit it: a relative offset
    means the same clock in each. Monotonic clocks stay real (timeouts and sleeps are not moved);
    file times are moved with the clock, so a file's mtime and the backup's copy start, both on
    the deployment's clock, compare as they would there."""
    return {"LD_PRELOAD": library, "FAKETIME": f"{round(offset_s):+d}", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def server_clock_env(library: str, offset_file: str | os.PathLike) -> dict[str, str]:
    """The environment for a long-running server (the deployment's PostgreSQL) on the same clock:
    the offset is read from offset_file (one line, "+Ns") at every clock read, so a move of the
    clock (rewrite the file) reaches every process at once, the ones already running too."""
    return {
        "LD_PRELOAD": library,
        "FAKETIME_TIMESTAMP_FILE": str(offset_file),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "NO_FAKE_STAT": "1",  # the server never compares file times with its clock; skip the work
        # only the server's own processes: the archive_command (sh, pgbackrest archive-push) keeps
        # real time (WAL retention follows the backups kept, never a time)
        "FAKETIME_ONLY_CMDS": "postgres",
    }


def _forget_faketime_shm(pids: list[int]) -> None:
    """libfaketime makes two small POSIX objects per process that preloads it and removes them when
    that process exits normally; a process killed (a command past its timeout) leaves them."""
    for pid in pids:
        for name in (f"faketime_shm_{pid}", f"sem.faketime_sem_{pid}"):
            with contextlib.suppress(OSError):
                os.unlink(f"/dev/shm/{name}")


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) of the cluster's OS user when we are root, else None (we run as ourselves)."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(RUN_AS)
    return entry.pw_uid, entry.pw_gid


def _clean_env() -> dict[str, str]:
    # Inherited PG*/PGBACKREST_* variables would silently change what the tool does.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))}
    env["LC_ALL"] = "C"
    return env


def _conf(sections: Mapping[str, Mapping[str, object]]) -> str:
    out = ["# Written by the drill harness (harness/lab/pgbackrest.py).\n"]
    for section, options in sections.items():
        out.append(f"\n[{section}]\n")
        out.extend(f"{key}={value}\n" for key, value in options.items())
    return "".join(out)


class PgBackRest:
    """One stanza over cluster's primary, with repo1 and (optionally) repo2; see the module docstring."""

    def __init__(
        self,
        cluster: PgCluster,
        repo1: S3Repo,
        repo2: S3Repo | None,
        credentials: Credentials,
        stanza: str = STANZA,
        timeout: float = 600.0,
        process_max: int = 1,
        clock_offset: Callable[[], float] | None = None,
    ) -> None:
        """clock_offset: the deployment's clock, seconds ahead of real time (read at each command);
        every pgbackrest command runs on it (libfaketime). None: real time."""
        self.cluster = cluster
        self.repos = {1: repo1, **({2: repo2} if repo2 is not None else {})}
        self.credentials = credentials
        self.stanza = stanza
        self.timeout = timeout
        self.process_max = process_max
        self.clock_offset = clock_offset
        self.faketime = ""
        self.binary = ""
        self.root = Path()
        self._owner = _run_as()

    # ---- paths -----------------------------------------------------------------------

    @property
    def config(self) -> Path:
        return self.root / "pgbackrest.conf"

    @property
    def secrets_file(self) -> Path:
        return self.root / "conf.d" / "secrets.conf"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def archive_command(self) -> str:
        return f"{' '.join(self._config_options())} --stanza={self.stanza} archive-push %p"

    def _config_options(self) -> list[str]:
        """The binary and where its config is (the secrets are in an included file)."""
        return [self.binary, f"--config={self.config}", f"--config-include-path={self.secrets_file.parent}"]

    # ---- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> PgBackRest:
        try:
            return self.setup()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    def setup(self) -> PgBackRest:
        """Write the config, turn on WAL archiving on the primary (a restart), stanza-create, check."""
        self.binary = find_binary()
        if self.clock_offset is not None:
            self.faketime = find_libfaketime()
        self.root = Path(tempfile.mkdtemp(prefix="pgbackrest-", dir=self.cluster.root))
        for sub in ("conf.d", "log", "lock", "spool"):
            (self.root / sub).mkdir(mode=0o700)
        for n, repo in self.repos.items():
            shutil.copyfile(repo.ca_file, self.root / f"repo{n}-ca.crt")
        self._write(self.config, _conf(self._sections()))
        self._write(self.secrets_file, _conf({"global": self._secret_options()}))
        self._own(self.root)
        self.enable_archiving()
        self.stanza_create()
        self.check()
        return self

    def close(self) -> None:
        """Remove the tool's folder (config, secrets, logs). The repositories stay in their buckets."""
        if self.root != Path():
            shutil.rmtree(self.root, ignore_errors=True)

    def _sections(self) -> dict[str, dict[str, object]]:
        glob: dict[str, object] = {
            "log-path": self.log_dir,
            "lock-path": self.root / "lock",
            "spool-path": self.root / "spool",
            "log-level-console": "off",
            "log-level-stderr": "warn",
            "log-level-file": "detail",
            "start-fast": "y",  # an immediate checkpoint: the backup starts now, not at the next one
            "process-max": self.process_max,
            "compress-type": "lz4",
            "archive-timeout": 60,
            "io-timeout": 20,  # a repository that does not answer fails in 20 s, not the default 60
        }
        for n, repo in self.repos.items():
            host, port = repo.host_port
            glob.update(
                {
                    f"repo{n}-type": "s3",
                    f"repo{n}-path": REPO_PATH,
                    f"repo{n}-s3-bucket": repo.bucket,
                    f"repo{n}-s3-region": repo.region,
                    # pgBackRest matches the certificate against the host it connects to, by DNS
                    # name only (never an IP address SAN): it connects to "localhost" (127.0.0.1).
                    f"repo{n}-s3-endpoint": TLS_NAME if host == LOOPBACK else host,
                    f"repo{n}-storage-port": port,
                    f"repo{n}-s3-uri-style": "path",
                    f"repo{n}-storage-verify-tls": "y",
                    f"repo{n}-storage-ca-file": self.root / f"repo{n}-ca.crt",
                    f"repo{n}-cipher-type": CIPHER_TYPE,
                    f"repo{n}-retention-full-type": "time",
                    f"repo{n}-retention-full": repo.retention_days,
                    # small files in bundles: a few objects per backup instead of one per file
                    # (an empty cluster has ~1000 files; each object is one HTTPS request)
                    f"repo{n}-bundle": "y",
                }
            )
        primary = self.cluster.primary
        return {
            "global": glob,
            self.stanza: {
                "pg1-path": primary.datadir,
                "pg1-port": primary.port,
                "pg1-socket-path": self.cluster.socket_dir,
                "pg1-user": SUPERUSER,
            },
        }

    def _secret_options(self) -> dict[str, object]:
        options: dict[str, object] = {}
        for n in self.repos:
            options[f"repo{n}-s3-key"] = self.credentials.s3_key
            options[f"repo{n}-s3-key-secret"] = self.credentials.s3_secret
            options[f"repo{n}-cipher-pass"] = self.credentials.cipher_pass
        return options

    def _write(self, path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)

    def _own(self, path: Path) -> None:
        if self._owner is None:
            return
        uid, gid = self._owner
        os.chown(path, uid, gid)
        for parent, dirs, files in os.walk(path):
            for entry in dirs + files:
                os.chown(os.path.join(parent, entry), uid, gid, follow_symlinks=False)

    def enable_archiving(self) -> None:
        """archive_mode=on and archive_command=pgbackrest archive-push on the primary (ALTER SYSTEM),
        then a restart (archive_mode needs one)."""
        primary = self.cluster.primary
        with primary.connect(admin=True, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET archive_mode = 'on'")
            conn.execute(sql.SQL("ALTER SYSTEM SET archive_command = {}").format(self.archive_command))
        primary.stop()
        primary.start()

    # ---- commands --------------------------------------------------------------------

    def run(self, command: str, *options: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """pgbackrest --config=... --stanza=... OPTIONS COMMAND, as the cluster's OS user.

        Raises PgBackRestError (the command, its exit status, its stderr with every secret
        scrubbed) when it fails or does not end in time."""
        args = [*self._config_options(), f"--stanza={self.stanza}", *options, command]
        cmd = ["runuser", "-u", RUN_AS, "--", *args] if self._owner is not None else args
        shown = self.scrub(f"pgbackrest {command}" + "".join(f" {o}" for o in options))
        limit = timeout or self.timeout
        env = _clean_env()
        if self.clock_offset is not None:
            env = {**_without_faketime(env), **faketime_env(self.faketime, self.clock_offset())}
        child = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.root,
        )
        try:
            stdout, stderr = child.communicate(timeout=limit)
        except BaseException as exc:
            # A timeout or Ctrl-C: runuser, pgbackrest and its local workers go together.
            tree = [child.pid, *proc.descendants(child.pid)]
            proc.kill_tree([child.pid], timeout=10.0)
            child.communicate()
            if self.clock_offset is not None:
                _forget_faketime_shm(tree)
            if isinstance(exc, subprocess.TimeoutExpired):
                raise PgBackRestError(f"{shown}: no answer within {limit:g} s (stopped)") from None
            raise
        if child.returncode != 0:
            said = (stderr or stdout).strip()[-3000:] or "nothing"
            raise PgBackRestError(f"{shown} failed (exit {child.returncode}): {self.scrub(said)}")
        return subprocess.CompletedProcess(cmd, child.returncode, stdout, stderr)

    def scrub(self, text: str) -> str:
        """text with every secret replaced by ***."""
        for secret in self.credentials.values():
            text = text.replace(secret, "***")
        return text

    def stanza_create(self) -> None:
        self.run("stanza-create")

    def check(self) -> None:
        """pgbackrest check: the config, the repositories, and archiving (it switches WAL and waits
        until the segment is in every repository: afterwards every commit so far is archived)."""
        self.run("check")

    def backup(self, kind: str = "full", repo: int = 1) -> str:
        """A backup of kind full|diff|incr into repo; answers its label."""
        if kind not in ("full", "diff", "incr"):
            raise ValueError(f"backup type {kind!r}: one of full, diff, incr")
        before = {b["label"] for b in self.backups(repo)}
        self.run("backup", f"--type={kind}", f"--repo={repo}")
        made = [b["label"] for b in self.backups(repo) if b["label"] not in before]
        if len(made) != 1:
            raise PgBackRestError(f"pgbackrest backup --repo={repo}: made {made or 'no backup'}, expected one")
        return made[0]

    def verify(self, repo: int = 1) -> VerifyReport:
        """pgbackrest verify --output=text of repo: every WAL segment and every backup file read back
        and checked against its checksum. pgBackRest exits 0 also when it finds damage; the
        report says so (ok False, the invalid backups' labels)."""
        result = self.run("verify", f"--repo={repo}", "--output=text", "--verbose")
        return VerifyReport.parse(result.stdout)

    def expire(self, repo: int | None = None) -> None:
        self.run("expire", *([f"--repo={repo}"] if repo else []))

    def info(self, repo: int | None = None) -> dict[str, Any]:
        """This stanza's entry of `pgbackrest info --output=json`."""
        result = self.run("info", "--output=json", *([f"--repo={repo}"] if repo else []))
        stanzas = json.loads(result.stdout)
        for entry in stanzas:
            if entry.get("name") == self.stanza:
                return entry
        raise PgBackRestError(f"pgbackrest info: no stanza {self.stanza!r} in its answer")

    def backups(self, repo: int | None = None) -> list[dict[str, Any]]:
        """The stanza's backups, oldest first (info's backup list)."""
        return list(self.info(repo).get("backup", []))

    def newest_backup_stop(self, repo: int | None = None) -> datetime.datetime | None:
        """When the newest backup stopped (UTC), from the tool: LastBackupAge of rule 3."""
        stops = [b["timestamp"]["stop"] for b in self.backups(repo)]
        return datetime.datetime.fromtimestamp(max(stops), datetime.UTC) if stops else None

    def restore(
        self,
        target_dir: str | os.PathLike,
        target: str | None = None,
        target_type: str | None = None,
        repo: int | None = None,
        backup_set: str | None = None,
    ) -> None:
        """Restore into target_dir (new or empty), never into the cluster's data dir.

        target None: to the end of the archived WAL (the latest point). Else target_type
        "time" (a timestamp PostgreSQL reads, with its zone) or "name" (a restore point made
        with pg_create_restore_point), and the restored server promotes once there.
        The restored server gets archive_mode=off: it never pushes WAL into the repositories."""
        path = Path(target_dir)
        if any(path.resolve() == node.datadir.resolve() for node in self.cluster.nodes.values()):
            raise PgBackRestError(f"restore into {path}: that is the deployment's data dir")
        if path.exists() and any(path.iterdir()):
            raise PgBackRestError(f"restore into {path}: the folder is not empty")
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._own(path)
        options = [f"--pg1-path={path}", "--archive-mode=off"]
        if target is not None:
            if target_type not in TARGET_TYPES:
                raise ValueError(f"target_type {target_type!r}: one of {', '.join(TARGET_TYPES)}")
            options += [f"--type={target_type}", f"--target={target}", "--target-action=promote"]
        if repo is not None:
            options.append(f"--repo={repo}")
        if backup_set is not None:
            options.append(f"--set={backup_set}")
        self.run("restore", *options)

    def scratch_dir(self, name: str) -> Path:
        """A new folder under the cluster's temp dir, owned by its OS user, for a restore and its
        scratch server: answers the data dir to restore into (folder/data, not made yet)."""
        folder = Path(tempfile.mkdtemp(prefix=f"scratch-{name}-", dir=self.cluster.root))
        self._own(folder)
        return folder / "data"

    def log_files(self) -> list[Path]:
        return sorted(self.log_dir.glob("*.log"))


class ScratchServer:
    """A PostgreSQL started on a restored data dir, on a free loopback port; a context manager.

    It carries the cluster's lab id in its cluster_name (so the reaper can tell it is ours) and
    its pid is registered with the cluster's; ``wait_promoted()`` waits for the end of recovery."""

    def __init__(self, cluster: PgCluster, datadir: str | os.PathLike, timeout: float = 120.0) -> None:
        self.cluster = cluster
        self.datadir = Path(datadir)
        self.timeout = timeout
        self.port = 0
        self.pid: int | None = None
        self.socket_dir = self.datadir.parent / f"{self.datadir.name}.sock"
        self.logfile = self.datadir.parent / f"{self.datadir.name}.log"
        self._owner = _run_as()

    @property
    def dsn(self) -> str:
        return psycopg.conninfo.make_conninfo(
            host=str(self.socket_dir), port=self.port, dbname="postgres", user=SUPERUSER, connect_timeout=3
        )

    def __enter__(self) -> ScratchServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _pg_ctl(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        cmd = [str(pg_bin_dir(self.cluster.pg_bin) / "pg_ctl"), *args]
        if self._owner is not None:
            cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.datadir.parent,
        )

    def start(self) -> ScratchServer:
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        if self._owner is not None:
            os.chown(self.socket_dir, *self._owner)
        self.port = free_port()
        overrides = {
            "port": str(self.port),
            "listen_addresses": LOOPBACK,
            "unix_socket_directories": str(self.socket_dir),
            "cluster_name": f"{self.cluster.lab_id}/scratch",
            "archive_mode": "off",
        }
        result = self._pg_ctl(
            "start",
            "-w",
            "-s",
            "-t",
            str(int(self.timeout)),
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-o",
            " ".join(f"-c {k}={v}" for k, v in overrides.items()),
            timeout=self.timeout + 10,
        )
        pid_file = self.datadir / "postmaster.pid"
        if pid_file.exists():
            self.pid = int(pid_file.read_text().split("\n", 1)[0])
            self.cluster.registration.add_pid(self.pid)
        if result.returncode != 0:
            raise PgBackRestError(
                f"the scratch PostgreSQL on {self.datadir} did not start: "
                f"{(result.stderr or result.stdout).strip()}\n--- tail of {self.logfile} ---\n{self.log_tail()}"
            )
        return self

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_promoted(self) -> float:
        """Wait until recovery has ended (the restore target reached, the server promoted); answers seconds."""
        started = time.monotonic()

        def in_recovery() -> bool | None:
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                    return bool(row[0]) if row else None
            except psycopg.Error:
                return None

        polled = poll(in_recovery, until=lambda v: v is False, timeout=self.timeout, interval=0.1)
        if not polled.ok:
            raise PgBackRestError(
                f"the scratch PostgreSQL on {self.datadir} did not finish recovery within {self.timeout:g} s"
                f"\n--- tail of {self.logfile} ---\n{self.log_tail()}"
            )
        return time.monotonic() - started

    def query(self, statement: str, dbname: str = "controlplane") -> list[tuple[Any, ...]]:
        dsn = psycopg.conninfo.make_conninfo(self.dsn, dbname=dbname)
        with psycopg.connect(dsn, autocommit=True) as conn:
            return list(conn.execute(statement.encode()).fetchall())

    def stop(self) -> None:
        """Stop the server (fast, then immediate) and forget its pid. Idempotent."""
        if self.pid is None:
            return
        for mode in ("fast", "immediate"):
            result = self._pg_ctl("stop", "-w", "-s", "-m", mode, "-D", str(self.datadir), timeout=40)
            if result.returncode == 0 or not (self.datadir / "postmaster.pid").exists():
                break
        self.cluster.registration.remove_pid(self.pid)
        self.pid = None
