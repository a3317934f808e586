"""pgBackRest pointed at a deployment's repository, read only (issue 26: external targets).

``ReadOnlyPgBackRest`` runs only ``info``, ``verify`` and ``restore`` (into a new folder, with
``--archive-mode=off``); stanza-create, check, backup, expire and archive-push are refused before
anything runs. It never writes a config over the deployment's: the deployment's own config
(``lab.backups.config_file``) is passed as it is with ``--config``, and what the plan names (the
repository, its secrets from ``*_env``/``*_file``) goes into a small file in the harness's own temp
dir (mode 0600), included with ``--config-include-path`` as options of the stanza's section, so
that they win over the config's ``[global]``. The harness's log, lock and spool folders are given on
the command line, so that neither the tool nor the scratch server's ``archive-get`` writes where the
deployment's config says.

``ScratchHost`` is where the scratch PostgreSQL of an external restore lives: a ``PgCluster`` with
no node of its own (its temp dir and its entry in the reaper's registry), so that ``ScratchServer``
and the tool's folders are cleaned up like a lab's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from harness import exits
from harness.errors import LabStartError
from harness.inputs import PLAN_MAX, InputError, printable, read_capped
from harness.lab.external.config import BackupsConfig
from harness.lab.pgbackrest import (
    CIPHER_TYPE,
    Credentials,
    PgBackRest,
    PgBackRestError,
    PgBackRestMissing,
    _conf,
    _run_as,
    find_binary,
)
from harness.lab.postgres import PgCluster

READ_ONLY_COMMANDS = frozenset({"info", "verify", "restore"})
# the options each command takes on the command line (pgBackRest refuses one a command does not know)
_COMMAND_OPTIONS = {
    "info": ("log", "lock"),
    "verify": ("log", "process"),
    "restore": ("log", "lock", "process"),  # spool-path: in the included file (restore does not take it)
}
# what a read-only restore may be told; anything else (--delta, --force, --pg1-host, ...) is refused
_RESTORE_OPTIONS = re.compile(r"--(pg1-path|archive-mode|type|target|target-action|repo|set)=")
INFO_OK = (0, 2)  # a repository's status: ok, or "no valid backups" (read, and empty)
INFO_MISSING_STANZA = 1


class RestoreError(Exception):
    """The restore could not be done; one line naming the key or value and the fix. `exit_code` is
    the `drill` exit code it means: 2 (the plan is to fix) or 4 (the repository or the tool cannot
    be reached or run)."""

    exit_code = exits.INVALID


class RestoreInvalid(RestoreError):
    exit_code = exits.INVALID


class RestoreUnreachable(RestoreError):
    exit_code = exits.UNREACHABLE


class ReadOnlyRefused(PgBackRestError):
    """A command that would write to the deployment's repository (or its data dir), refused before it ran."""


class ScratchHost(PgCluster):
    """A home for scratch servers and the tool's folders, without a PostgreSQL of its own: a temp dir
    under the lab dir, registered with the reaper (so a killed run's leftovers are removed). It has no
    primary; `ScratchServer(host, datadir)` starts a restored data dir in it."""

    def _start(self) -> PgCluster:
        self._make_root()
        self._own(self.root)
        return self


class ReadOnlyPgBackRest(PgBackRest):
    """The deployment's pgBackRest stanza, read only; see the module docstring.

    with ScratchHost() as host, ReadOnlyPgBackRest(plan.backups, host) as tool:
        tool.verify(repo=tool.repo_number)
    """

    def __init__(
        self,
        backups: BackupsConfig,
        host: PgCluster,
        *,
        timeout: float = 600.0,
        process_max: int = 4,
        check_io_timeout: float = 5.0,
    ) -> None:
        """check_io_timeout: pgBackRest's --io-timeout for the first `info` (setup's check): an endpoint
        that does not answer is reported after about four times that (the tool retries), not after
        four times the deployment's own io-timeout (60 s by default)."""
        # not PgBackRest.__init__: no repository of the lab's, no clock of the lab's (real time)
        self.backups_config = backups
        self.cluster = host
        self.repos = {}
        self.credentials = Credentials("", "", "")
        self.stanza = backups.stanza
        self.timeout = timeout
        self.process_max = process_max
        self.clock_offset = None
        self.faketime = ""
        self.binary = ""
        self.root = Path()
        self._owner = _run_as()
        self._secrets: tuple[str, ...] = ()
        self._ca: bytes | None = None
        self.check_io_timeout = check_io_timeout

    @property
    def repo_number(self) -> int:
        return self.backups_config.repo.number if self.backups_config.repo else 1

    @property
    def config(self) -> Path:
        """The config pgBackRest reads: the deployment's (never written), else the harness's own."""
        if self.backups_config.config_file:
            return Path(self.backups_config.config_file)
        return self.root / "pgbackrest.conf"

    @property
    def secrets_file(self) -> Path:
        return self.root / "conf.d" / "harness.conf"

    @property
    def ca_copy(self) -> Path:
        return self.root / "repo-ca.crt"

    @property
    def archive_command(self) -> str:
        raise ReadOnlyRefused("read-only: the harness never archives WAL into the deployment's repository")

    # ---- lifecycle -------------------------------------------------------------------

    def setup(self) -> ReadOnlyPgBackRest:
        """Check everything the plan names before anything is written (the tool, the secrets, the
        config and CA files), write the harness's own small config in its temp dir, then `info`:
        a wrong stanza or a repository the tool cannot open is refused here."""
        try:
            self.binary = find_binary()
        except PgBackRestMissing as exc:
            raise RestoreUnreachable(f"lab.backups.tool: {exc}") from None
        options = self._plan_options()
        if self.backups_config.config_file:
            _readable("lab.backups.config_file", self.backups_config.config_file, "the deployment's pgBackRest config")
        self.root = Path(tempfile.mkdtemp(prefix="pgbackrest-ro-", dir=self.cluster.root))
        for sub in ("conf.d", "log", "lock", "spool"):
            (self.root / sub).mkdir(mode=0o700)
        if self._ca is not None:
            fd = os.open(self.ca_copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(self._ca)
            options[f"repo{self.repo_number}-storage-ca-file"] = self.ca_copy
        if not self.backups_config.config_file:
            # so that the harness host's /etc/pgbackrest/pgbackrest.conf is never read instead
            self._write(self.config, _conf({}))
        self._write(self.secrets_file, _conf({self.stanza: {**options, **self._own_options()}}))
        self._own(self.root)
        self.check_stanza()
        return self

    def _own_options(self) -> dict[str, object]:
        """Where the scratch server's archive-get keeps its spool: the harness's folder, synchronous
        (a [stanza] option: it wins over the deployment's [global] archive-async and spool-path)."""
        return {"spool-path": self.root / "spool", "archive-async": "n"}

    def _plan_options(self) -> dict[str, object]:
        """The stanza's options the plan names (the repository, its secrets read from *_env/*_file);
        RestoreInvalid naming the key of a secret that cannot be had."""
        repo = self.backups_config.repo
        if repo is None:
            return {}
        n, key = repo.number, "lab.backups.repo"
        options: dict[str, object] = {
            f"repo{n}-type": "s3",
            f"repo{n}-s3-bucket": repo.bucket,
            f"repo{n}-s3-endpoint": repo.endpoint,
            f"repo{n}-s3-region": repo.region,
            f"repo{n}-storage-verify-tls": "y",
        }
        if repo.port is not None:
            options[f"repo{n}-storage-port"] = repo.port
        if repo.path is not None:
            options[f"repo{n}-path"] = repo.path
        if repo.uri_style is not None:
            options[f"repo{n}-s3-uri-style"] = repo.uri_style
        if repo.ca_file is not None:
            # copied into the harness's folder (as the lab does): the tool may run as another user
            self._ca = _readable(f"{key}.ca_file", repo.ca_file, "the CA certificate")
        found = []
        for name, ref, option in (
            ("key", repo.key, "s3-key"),
            ("secret", repo.secret, "s3-key-secret"),
            ("cipher_pass", repo.cipher_pass, "cipher-pass"),
        ):
            which = f"{key}.{name}_env" if ref.env else f"{key}.{name}_file"
            try:
                value = ref.value(which)
            except LabStartError as exc:
                raise RestoreInvalid(str(exc)) from None
            if value is None:
                continue
            if "\n" in value or not value.isprintable():
                raise RestoreInvalid(f"{which}: the secret is not one line of printable text; fix what it holds")
            options[f"repo{n}-{option}"] = value
            found.append(value)
            if name == "cipher_pass":
                options[f"repo{n}-cipher-type"] = CIPHER_TYPE
        self._secrets = tuple(found)
        return options

    # ---- commands --------------------------------------------------------------------

    def _config_options(self) -> list[str]:
        return [self.binary, f"--config={self.config}", f"--config-include-path={self.secrets_file.parent}"]

    def run(self, command: str, *options: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """As PgBackRest.run, for info, verify and restore only (ReadOnlyRefused before anything runs
        for any other command, or for a restore told anything but a new folder, --archive-mode=off
        and its target), with the harness's own log and lock folders."""
        if command not in READ_ONLY_COMMANDS:
            raise ReadOnlyRefused(
                f"pgbackrest {printable(command, 40)}: refused: the deployment's repository is read only here "
                f"(only {', '.join(sorted(READ_ONLY_COMMANDS))} run)"
            )
        if command == "restore":
            odd = [o for o in options if not _RESTORE_OPTIONS.match(o)]
            paths = [o.split("=", 1)[1] for o in options if o.startswith("--pg1-path=")]
            if odd or "--archive-mode=off" not in options or len(paths) != 1:
                raise ReadOnlyRefused(
                    f"pgbackrest restore {printable(' '.join(odd or options), 200)}: refused: a read-only restore "
                    f"goes into a new folder (--pg1-path) with --archive-mode=off, nothing else"
                )
            self._scratch_only(paths[0])
        own = {
            "log": [f"--log-path={self.root / 'log'}"],
            "lock": [f"--lock-path={self.root / 'lock'}"],
            "process": [f"--process-max={self.process_max}"],
        }
        fixed = ["--log-level-console=off", "--log-level-stderr=warn", "--log-level-file=detail"]
        for kind in _COMMAND_OPTIONS[command]:
            fixed += own[kind]
        return super().run(command, *fixed, *options, timeout=timeout)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def enable_archiving(self) -> None:
        raise ReadOnlyRefused("read-only: the deployment's archiving is never changed")

    def backup(self, kind: str = "full", repo: int = 1) -> str:
        raise ReadOnlyRefused("pgbackrest backup: refused: the deployment's repository is read only here")

    def expire(self, repo: int | None = None) -> None:
        raise ReadOnlyRefused("pgbackrest expire: refused: the deployment's repository is read only here")

    def restore(
        self,
        target_dir: str | os.PathLike[str],
        target: str | None = None,
        target_type: str | None = None,
        repo: int | None = None,
        backup_set: str | None = None,
    ) -> None:
        """PgBackRest.restore into a new folder under the harness's scratch host only."""
        super().restore(self._scratch_only(target_dir), target, target_type, repo, backup_set)

    def _scratch_only(self, target_dir: str | os.PathLike[str]) -> Path:
        """target_dir, resolved, when it is under the scratch host's folder; else ReadOnlyRefused."""
        path = Path(target_dir).resolve()
        root = Path(self.cluster.root).resolve()
        if root == Path("/").resolve() or root not in path.parents:
            raise ReadOnlyRefused(f"restore into {printable(path)}: read-only restores go under {root} only")
        return path

    def check_stanza(self) -> dict[str, Any]:
        """`info` for the stanza: RestoreInvalid for a wrong stanza, RestoreUnreachable for a repository
        the tool cannot open (pgBackRest's first line, every secret scrubbed). Answers the stanza's entry."""
        n = self.repo_number
        try:
            said = self.run("info", "--output=json", f"--repo={n}", f"--io-timeout={self.check_io_timeout:g}")
            entry = next(e for e in json.loads(said.stdout) if isinstance(e, dict) and e.get("name") == self.stanza)
        except (PgBackRestError, ValueError, StopIteration) as exc:
            raise RestoreUnreachable(
                f"lab.backups.repo: pgBackRest cannot read repo{n}: {first_line(str(exc))}"
            ) from None
        repos = [r for r in entry.get("repo", []) if isinstance(r, dict) and r.get("key") == n]
        status = (repos[0] if repos else entry).get("status")
        status = status if isinstance(status, dict) else {}
        code, message = status.get("code"), str(status.get("message", "no status"))
        if code == INFO_MISSING_STANZA:
            raise RestoreInvalid(
                f"lab.backups.stanza: no stanza {self.stanza!r} in repo{n} (pgBackRest: {first_line(message)}); "
                f"name the deployment's stanza"
            )
        if code not in INFO_OK:
            raise RestoreUnreachable(
                f"lab.backups.repo: pgBackRest cannot open repo{n}: {first_line(self.scrub(message))}"
            )
        return entry


_S3_CODE = re.compile(r"<Code>([A-Za-z0-9.]{1,64})</Code>")


def first_line(text: str) -> str:
    """pgBackRest's message made one short line: its first line, plus the S3 error code when the
    message carries the response (pgBackRest prints the whole request and answer)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0].rstrip(":") if lines else "no message"
    code = _S3_CODE.search(text)
    if code and code.group(1) not in first:
        first += f": {code.group(1)}"
    return printable(first, 300)


def _readable(key: str, path: str, what: str) -> bytes:
    """The bytes of path, a regular file the harness can read (never blocking on a FIFO); RestoreInvalid naming key."""
    try:
        return read_capped(path, PLAN_MAX, what)
    except FileNotFoundError:
        raise RestoreInvalid(f"{key}: {printable(path, 200)}: no such file") from None
    except (InputError, OSError) as exc:
        raise RestoreInvalid(f"{key}: {printable(exc, 300)}") from None
