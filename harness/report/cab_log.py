"""CAB log: one keyed, hash-chained JSON line appended per drill (and per schedule or report event).

Each line carries
- `prev_hash`: the previous line's `hash` (64 zeros for the first line);
- `key_id`: the first 16 hex digits of sha256(key), naming the key that signed it;
- `mac`: HMAC-SHA256 with the operator's key over canonical(line without hash and mac) + prev_hash;
- `hash`: sha256 of canonical(line without hash) + prev_hash.
Deleting, reordering or editing a line breaks the chain; re-hashing an edited line without the
key breaks its mac. The key is a file only the operator (or the scheduler's account) can read:
`--cab-key`, $DRILL_CAB_KEY, else ~/.config/drill/cab.key, created (0600) on first use.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.model import DrillResult
from harness.report.files import iter_gates, plain, verdict_text

GENESIS = "0" * 64
KEY_BYTES = 32


class CabLogCorrupt(ValueError):
    """The log's last line cannot be chained onto (half-written or not a CAB entry)."""


class CabKeyError(ValueError):
    """The CAB key cannot be read or is not a key: the message names the file and the fix."""


# ---- the key ------------------------------------------------------------------------------------

def default_key_path() -> Path:
    env = os.environ.get("DRILL_CAB_KEY")
    if env:
        return Path(env)
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "drill" / "cab.key"


@dataclass(frozen=True)
class CabKey:
    secret: bytes = field(repr=False)
    path: Path

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.secret).hexdigest()[:16]

    def mac(self, text: str) -> str:
        return hmac.new(self.secret, text.encode("utf-8"), hashlib.sha256).hexdigest()


def load_key(path: str | os.PathLike[str] | None = None, create: bool = False) -> CabKey:
    """The key in `path` (default_key_path() when None): at least 32 bytes, hex or raw. With
    `create`, a missing default key is made (0600, in a 0700 folder) and the creation reported."""
    path = Path(path) if path is not None else default_key_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if not create:
            raise CabKeyError(f"{path}: no CAB key; give the key the log was written with (--cab-key FILE "
                              f"or $DRILL_CAB_KEY)") from None
        return _create_key(path)
    except OSError as exc:
        raise CabKeyError(f"{path}: cannot read the CAB key: {exc.strerror}") from None
    text = data.strip()
    try:
        secret = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        secret = data
    if len(secret) < KEY_BYTES:
        raise CabKeyError(f"{path}: a CAB key needs at least {KEY_BYTES} bytes (e.g. `openssl rand -hex 32 > "
                          f"{path}`), this one has {len(secret)}")
    return CabKey(secret, path)


def _create_key(path: Path) -> CabKey:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = secrets.token_bytes(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:          # another drill made it first: use theirs
        return load_key(path)
    with os.fdopen(fd, "w") as f:
        f.write(secret.hex() + "\n")
    print(f"drill: created the CAB signing key {path} (0600); keep it from whoever can edit the CAB log, "
          f"and give it to `drill cab verify`", file=sys.stderr)
    return CabKey(secret, path)


# ---- lines --------------------------------------------------------------------------------------

def canonical(entry: dict[str, Any]) -> str:
    """Canonical JSON: sorted keys, no spaces, ASCII only, no NaN."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def entry_hash(entry: dict[str, Any]) -> str:
    """sha256 hex of canonical(entry without "hash") followed by entry["prev_hash"], UTF-8."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256((canonical(body) + entry["prev_hash"]).encode("utf-8")).hexdigest()


def entry_mac(entry: dict[str, Any], key: CabKey) -> str:
    body = {k: v for k, v in entry.items() if k not in ("hash", "mac")}
    return key.mac(canonical(body) + entry["prev_hash"])


def seal(record: dict[str, Any], prev_hash: str, key: CabKey) -> dict[str, Any]:
    """The record as a line of the log: chained onto prev_hash, signed with the key."""
    entry = plain({**record, "prev_hash": prev_hash, "key_id": key.key_id})
    entry["mac"] = entry_mac(entry, key)
    entry["hash"] = entry_hash(entry)
    return entry


def gates_summary(results: dict[str, Any]) -> dict[str, Any]:
    """Counts by verdict and the "scenario/gate" ids of every gate that did not pass."""
    counts: Counter[str] = Counter({"pass": 0, "fail": 0, "unknown": 0})
    not_passed = []
    for classname, gate in iter_gates(results):
        verdict = verdict_text(gate.get("verdict"))
        counts[verdict] += 1
        if verdict != "pass":
            not_passed.append(f"{classname}/{gate.get('id')}")
    return {**counts, "total": sum(counts.values()), "not_passed": not_passed}


SCENARIO_FIGURES = ("rto_seconds", "rpo_seconds", "lost_writes", "duplicated_writes", "availability")


def drill_record(result: DrillResult, report_path: str | os.PathLike[str] | None,
                 manifest: str | None = None, out_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """What the log keeps of a drill: enough for the matrix, the history and "since last run"
    without its output folder, plus the digest of that folder's manifest."""
    results = result.to_json()
    scenarios = [{"feature": s.get("feature"), "matrix_row": (s.get("matrix_row") or {}).get("number"),
                  "verdict": verdict_text(s.get("verdict")),
                  **{k: (s.get("measurements") or {}).get(k) for k in SCENARIO_FIGURES}}
                 for s in results.get("scenarios") or ()]
    record = {
        "kind": "drill",
        "drill": results.get("drill"),
        "ha_domain": results.get("ha_domain"),
        # the domains its scenarios drilled (an "all" plan may leave one out, e.g. on containers)
        "ha_domains": sorted({t.split(":", 1)[1].lstrip() for s in results.get("scenarios") or ()
                              for t in s.get("tags") or () if t.lstrip("@").startswith("ha-domain:")}),
        "correlation_id": results.get("correlation_id"),
        "started_at": results.get("started_at"),
        "finished_at": results.get("finished_at"),
        "verdict": verdict_text(results.get("verdict")),
        "gates": gates_summary(results),
        "scenarios": scenarios,
        "report": os.fspath(report_path) if report_path is not None else None,
        "out_dir": os.fspath(Path(out_dir).resolve()) if out_dir is not None else None,
        "manifest": manifest,
        "signoff": results.get("signoff"),
        "environment_class": results.get("environment_class"),
        "system_version": results.get("system_version"),
        "harness": results.get("harness"),
        "plan_sha256": results.get("plan_sha256"),
        "residual_risk": (results.get("risk") or {}).get("residual"),
    }
    if results.get("dry_run"):
        record["dry_run"] = True
    return record


def append_cab_log(path: str | os.PathLike[str], result: DrillResult,
                   report_path: str | os.PathLike[str] | None = None, key: CabKey | None = None,
                   manifest: str | None = None, out_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Append one keyed, chained line for `result` to the log at `path`; returns the entry written."""
    return append_cab_record(path, drill_record(result, report_path, manifest, out_dir), key)


def append_cab_record(path: str | os.PathLike[str], record: dict[str, Any], key: CabKey | None = None) -> dict[str, Any]:
    """Append a keyed, chained line. Besides drills: {"kind": "schedule", "event": "skipped", ...}
    (a scheduled run skipped, missed or late) and {"kind": "report", "event": "rebuilt", ...}, so the
    CAB sees them beside the drills.

    1. open in append mode and take an exclusive lock, so concurrent drills chain in turn;
    2. take prev_hash from the last line (64 zeros for an empty or new log);
    3. write the whole line in one write call, then flush and fsync.
    Raises CabLogCorrupt rather than chain onto a half-written or foreign last line.
    """
    key = key or load_key(create=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        entry = seal(record, _last_hash(path), key)
        data = (canonical(entry) + "\n").encode("utf-8")
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(f"short write to CAB log {path}: {written} of {len(data)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)  # also releases the lock
    return entry


def _last_hash(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if not text:
        return GENESIS
    if not text.endswith("\n"):
        raise CabLogCorrupt(f"{path}: last line is incomplete; run `drill cab verify` and repair the log")
    last = text.rstrip("\n").rsplit("\n", 1)[-1]
    try:
        value = json.loads(last)["hash"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CabLogCorrupt(f"{path}: last line is not a CAB log entry ({exc})") from exc
    if not isinstance(value, str) or len(value) != 64:
        raise CabLogCorrupt(f"{path}: last line has no valid hash")
    return value


# ---- reading and verifying ----------------------------------------------------------------------

def read_cab_entries(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every line of the log that parses as an entry, verified or not (an absent log has none)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


@dataclass
class LogCheck:
    """Each line of a log judged: `good` the entries that verify (own hash, mac with the key,
    chained onto the line before), `bad` (line number, reason) of the others, in order."""

    good: list[dict[str, Any]] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)
    lines: int = 0

    @property
    def intact(self) -> bool:
        return not self.bad

    @property
    def first_bad(self) -> tuple[int, str] | None:
        return self.bad[0] if self.bad else None


def check_line(entry: Any, prev: str | None, key: CabKey | None) -> str | None:
    """Why a parsed line does not verify, or None. `prev`: the line before's hash."""
    if not isinstance(entry, dict) or not isinstance(entry.get("prev_hash"), str):
        return "not a CAB log entry"
    if prev is not None and entry["prev_hash"] != prev:
        return "does not chain onto the line before (a line was removed, inserted or reordered)"
    try:
        if entry.get("hash") != entry_hash(entry):
            return "its hash does not match its content (edited)"
    except (TypeError, ValueError):
        return "not a CAB log entry"
    if "mac" not in entry:
        return "not signed (no mac): written without a key, or the mac was removed"
    if key is None:
        return "cannot be checked: no CAB key"
    if entry.get("key_id") != key.key_id:
        return f"signed with another key (key id {entry.get('key_id')}, not {key.key_id} of {key.path})"
    if not hmac.compare_digest(str(entry["mac"]), entry_mac(entry, key)):
        return "its mac does not match: edited and re-hashed without the key"
    return None


def check_log(path: str | os.PathLike[str], key: CabKey | None) -> LogCheck:
    """Judge every line; a missing log raises FileNotFoundError."""
    text = Path(path).read_text(encoding="utf-8")
    check = LogCheck()
    lines = text.splitlines()
    check.lines = len(lines)
    prev: str | None = GENESIS
    for number, line in enumerate(lines, start=1):
        if number == len(lines) and not text.endswith("\n"):
            check.bad.append((number, "incomplete last line (the write was cut short)"))
            break
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        reason = check_line(entry, prev, key)
        if reason is None:
            check.good.append(entry)
        else:
            check.bad.append((number, reason))
        prev = entry.get("hash") if isinstance(entry, dict) and isinstance(entry.get("hash"), str) else None
    return check


def verify_cab_log(path: str | os.PathLike[str], key: CabKey | None = None) -> tuple[bool, int | None]:
    """(True, None) when every line verifies, else (False, n) with n the first bad line (1-based).
    `key` None: the default key. An empty log is valid; a missing one raises FileNotFoundError."""
    check = check_log(path, key or load_key())
    return (True, None) if check.intact else (False, check.first_bad[0])


def verified_entries(path: str | os.PathLike[str], key: CabKey | None) -> tuple[list[dict[str, Any]], int]:
    """(entries that verify, how many lines did not): what the matrix, the history and "since last
    run" read. An absent log has neither."""
    try:
        check = check_log(path, key)
    except FileNotFoundError:
        return [], 0
    return check.good, len(check.bad)


def key_or_none(path: str | os.PathLike[str] | None = None) -> CabKey | None:
    """The key when it exists (readers: nothing to verify with is said as skipped lines)."""
    try:
        return load_key(path)
    except CabKeyError:
        return None
