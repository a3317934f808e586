"""Restore the newest valid backup into a scratch PostgreSQL (issue 26: the restore drill's core).

    outcome = restore_newest_valid(tool, scratch_parent, repo=1)            # to the end of the WAL
    try:
        ...validate on outcome.server...                                     # the caller's
    finally:
        outcome.close()

Verify first (the tool's `verify`): a backup pgBackRest calls invalid, or one that depends on an
invalid one (a diff or incr on its full), is refused with the tool's own words, and the next older
one is restored with ``backup_set=`` (pgBackRest does not fall back by itself: docs/backups.md).
With ``verify=False`` the newest backup is restored as it is (the negative drill "a restore that
skips verification"), and the outcome says it was not verified. A restore point before the oldest
backup is refused (RestoreInvalid) before anything is restored. Each phase is timed apart: verify,
the restore of the files, WAL replay to promotion (the validation is the caller's).
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.inputs import printable
from harness.lab.pgbackrest import TARGET_TYPES, PgBackRest, PgBackRestError, ScratchServer, VerifyReport

from .tool import RestoreInvalid, RestoreUnreachable


@dataclass(frozen=True)
class Candidate:
    """A backup considered, newest first: refused says why it was not restored (None: it was chosen)."""

    label: str
    stop: datetime.datetime
    kind: str  # full, diff, incr
    refused: str | None = None


@dataclass(frozen=True)
class Restored:
    """The backup restored: its label, when it stopped (UTC), its repository, its age when the restore began."""

    label: str
    stop: datetime.datetime
    repo: int
    age_s: float


@dataclass(frozen=True)
class Timings:
    verify_s: float | None  # None: not verified
    restore_s: float | None  # the restore of the files
    replay_s: float | None  # the scratch server's start, WAL replay, promotion


@dataclass
class RestoreOutcome:
    repo: int
    target: str | None
    target_type: str | None
    verified: bool
    verify_report: VerifyReport | None
    candidates: tuple[Candidate, ...]
    restored: Restored | None
    timings: Timings
    server: ScratchServer | None = None  # started and promoted; the caller closes it (close())
    error: str | None = None  # why nothing was restored or the server did not come up
    datadir: Path | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.restored is not None and self.server is not None and self.error is None

    def close(self) -> None:
        """Stop the scratch server and remove its folder (the restored data). Idempotent."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.datadir is not None:
            shutil.rmtree(self.datadir.parent, ignore_errors=True)
            self.datadir = None

    def to_json(self) -> dict[str, Any]:
        def stamp(when: datetime.datetime) -> str:
            return when.isoformat().replace("+00:00", "Z")

        return {
            "repo": self.repo,
            "target": self.target,
            "target_type": self.target_type,
            "verified": self.verified,
            "candidates": [
                {"label": c.label, "stop": stamp(c.stop), "type": c.kind, "refused": c.refused} for c in self.candidates
            ],
            "restored": None
            if self.restored is None
            else {
                "label": self.restored.label,
                "stop": stamp(self.restored.stop),
                "repo": self.restored.repo,
                "age_s": round(self.restored.age_s, 1),
            },
            "timings_s": {
                k: None if v is None else round(v, 3)
                for k, v in (
                    ("verify", self.timings.verify_s),
                    ("restore", self.timings.restore_s),
                    ("replay", self.timings.replay_s),
                )
            },
            "error": self.error,
        }


def verify_reasons(report: VerifyReport) -> dict[str, str]:
    """Each invalid backup's label -> the tool's own lines about it (its status line and the counts
    under it), as one line."""
    reasons: dict[str, str] = {}
    current: str | None = None
    for line in report.text.splitlines():
        stripped = line.strip()
        if stripped.startswith("backup:"):
            label = stripped.split("backup:", 1)[1].split(",", 1)[0].strip()
            current = label if label in report.invalid_backups else None
            if current is not None:
                reasons[current] = stripped
        elif current is not None and line.startswith("    ") and stripped:
            reasons[current] += f"; {stripped}"
        elif not line.startswith("    "):
            current = None
    for label in report.invalid_backups:
        reasons.setdefault(label, f"backup: {label}, status: invalid")
    return {label: f"pgbackrest verify: {printable(text, 400)}" for label, text in reasons.items()}


def parse_time(target: str, what: str = "the restore point") -> datetime.datetime:
    """A PITR time target with its zone (as PostgreSQL reads it: 2026-12-08 03:00:00.5+00)."""
    text = target.strip()
    if text[-3:-2] in "+-" and text[-2:].isdigit():
        text += ":00"  # Python before 3.11.x reads +HH:MM only
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise RestoreInvalid(
            f"{what} {printable(target, 60)}: not a time with its zone; write e.g. 2026-12-08 03:00:00+00"
        )
    return when.astimezone(datetime.UTC)


def _stop(backup: dict[str, Any]) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(float(backup["timestamp"]["stop"]), datetime.UTC)


def _depends_on(backup: dict[str, Any]) -> set[str]:
    """The backups a diff or incr needs (its full: the label's prefix; and every one it references)."""
    label = str(backup.get("label", ""))
    needed = set(backup.get("reference") or [])
    if "_" in label:
        needed.add(label.split("_", 1)[0] + "F")
    needed.discard(label)
    return needed


def _now(tool: PgBackRest) -> float:
    """Now on the deployment's clock (the lab's tool may run ahead of real time)."""
    return time.time() + (tool.clock_offset() if tool.clock_offset is not None else 0.0)


def restore_newest_valid(
    tool: PgBackRest,
    scratch_parent: str | os.PathLike[str],
    *,
    repo: int,
    target: str | None = None,
    target_type: str | None = None,
    verify: bool = True,
    point_key: str = "the restore point",
) -> RestoreOutcome:
    """Verify, then restore the newest backup of `repo` that verify did not refuse into a new folder
    under scratch_parent, start a ScratchServer on it and wait for its promotion. target None: to the
    end of the archived WAL; else target_type "time" or "name" (see PgBackRest.restore). The outcome
    holds the running server (the caller closes it with outcome.close()); a restore or start that
    fails is in outcome.error, with its folder removed. RestoreInvalid for a restore point before
    the oldest backup (point_key names it in the message), RestoreUnreachable when the repository
    cannot be listed."""
    if (target is None) != (target_type is None) or (target_type is not None and target_type not in TARGET_TYPES):
        raise RestoreInvalid(f"{point_key}: a target needs its type, one of {', '.join(TARGET_TYPES)}")
    try:
        backups = sorted(tool.backups(repo), key=lambda b: (b["timestamp"]["stop"], b["label"]))
    except PgBackRestError as exc:
        raise RestoreUnreachable(f"repo{repo}: the backups cannot be listed: {exc}") from None
    not_after: datetime.datetime | None = None
    if target_type == "time" and target is not None:
        not_after = parse_time(target, point_key)
        if backups and not_after < _stop(backups[0]):
            oldest = backups[0]
            raise RestoreInvalid(
                f"{point_key} {printable(target, 60)}: before the oldest backup in repo{repo} "
                f"({oldest['label']}, stopped {_stop(oldest).isoformat()}); name a point after it"
            )
    timings: dict[str, float | None] = {"verify": None, "restore": None, "replay": None}
    report = None
    if verify:
        started = time.monotonic()
        report = tool.verify(repo)
        timings["verify"] = time.monotonic() - started
    reasons = verify_reasons(report) if report is not None else {}
    candidates: list[Candidate] = []
    chosen: dict[str, Any] | None = None
    for backup in reversed(backups):
        label, stop, kind = str(backup["label"]), _stop(backup), str(backup.get("type", ""))
        refused = reasons.get(label)
        if refused is None:
            bad = sorted(_depends_on(backup) & set(reasons))
            if bad:
                refused = f"depends on {bad[0]}, which verify refused ({reasons[bad[0]]})"
        if refused is None and not_after is not None and stop > not_after:
            refused = f"stopped after {point_key} ({stop.isoformat()})"
        candidates.append(Candidate(label, stop, kind, refused))
        if refused is None:
            chosen = backup
            break

    def outcome(**kw: Any) -> RestoreOutcome:
        return RestoreOutcome(
            repo=repo,
            target=target,
            target_type=target_type,
            verified=verify,
            verify_report=report,
            candidates=tuple(candidates),
            timings=Timings(timings["verify"], timings["restore"], timings["replay"]),
            **kw,
        )

    if chosen is None:
        why = "no backup in the repository" if not backups else "no backup left to restore: every one was refused"
        return outcome(restored=None, error=f"repo{repo}: {why}")
    label = str(chosen["label"])
    restored = Restored(label, _stop(chosen), repo, _now(tool) - float(chosen["timestamp"]["stop"]))
    folder = Path(tempfile.mkdtemp(prefix="restore-", dir=scratch_parent))
    tool._own(folder)
    datadir = folder / "data"
    started = time.monotonic()
    try:
        tool.restore(datadir, target=target, target_type=target_type, repo=repo, backup_set=label)
    except PgBackRestError as exc:
        timings["restore"] = time.monotonic() - started
        shutil.rmtree(folder, ignore_errors=True)  # nothing half-restored stays
        return outcome(restored=restored, error=f"the restore of {label} failed: {exc}")
    timings["restore"] = time.monotonic() - started
    server = ScratchServer(tool.cluster, datadir)
    started = time.monotonic()
    try:
        server.start()
        server.wait_promoted()
    except PgBackRestError as exc:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
        return outcome(restored=restored, error=str(exc))
    except BaseException:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    timings["replay"] = time.monotonic() - started
    return outcome(restored=restored, server=server, datadir=datadir)
