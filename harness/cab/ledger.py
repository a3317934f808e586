"""The CAB ledger: one keyed, hash-chained JSON line appended per drill (and per schedule or report event).

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
import stat
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.environments import environment_of
from harness.files import iter_gates, plain, verdict_text
from harness.inputs import CAB_LINE_MAX, InputError, KiB, open_regular, parse_json, printable, read_capped
from harness.model import DrillResult

GENESIS = "0" * 64
KEY_BYTES = 32


class CabLogCorrupt(ValueError):
    """The log's last line cannot be chained onto (half-written or not a CAB entry)."""


class CabKeyError(InputError):
    """The CAB key cannot be read or is not a key: the message names the file and the fix."""


KEY_FILE_MAX = 4 * KiB  # a key is 32 bytes (64 hex digits); a key file is never larger than this


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
        data = read_capped(path, KEY_FILE_MAX, "the CAB key")
    except FileNotFoundError:
        if not create:
            raise CabKeyError(
                f"{printable(path)}: no CAB key; give the key the log was written with (--cab-key "
                f"FILE or $DRILL_CAB_KEY)"
            ) from None
        return _create_key(path)
    except InputError as exc:
        raise CabKeyError(f"{exc} (a CAB key file holds 64 hex digits, e.g. from `openssl rand -hex 32`)") from None
    text = data.strip()
    try:
        secret = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        secret = data
    if len(secret) < KEY_BYTES:
        raise CabKeyError(
            f"{printable(path)}: a CAB key needs at least {KEY_BYTES} bytes (e.g. `openssl rand -hex "
            f"32 > {printable(path)}`), this one has {len(secret)}"
        )
    return CabKey(secret, path)


def _create_key(path: Path) -> CabKey:
    secret = secrets.token_bytes(KEY_BYTES)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:  # another drill made it first: use theirs
        return load_key(path)
    except OSError as exc:
        raise CabKeyError(
            f"{printable(path)}: cannot create the CAB key: {exc.strerror or exc}; give "
            f"--cab-key FILE or $DRILL_CAB_KEY"
        ) from None
    with os.fdopen(fd, "w") as f:
        f.write(secret.hex() + "\n")
    print(
        f"drill: created the CAB signing key {path} (0600); keep it from whoever can edit the CAB log, "
        f"and give it to `drill cab verify`",
        file=sys.stderr,
    )
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
    """Counts by verdict (waived: met only a target the plan waived, not the spec's floor) and the
    "scenario/gate" ids of every gate that did not pass."""
    counts: Counter[str] = Counter({"pass": 0, "fail": 0, "unknown": 0, "waived": 0})
    not_passed = []
    for classname, gate in iter_gates(results):
        verdict = verdict_text(gate.get("verdict"))
        counts[verdict] += 1
        if verdict != "pass":
            not_passed.append(f"{classname}/{gate.get('id')}")
    return {**counts, "total": sum(counts.values()), "not_passed": not_passed}


SCENARIO_FIGURES = ("rto_seconds", "rpo_seconds", "lost_writes", "duplicated_writes", "availability")
NOT_RUN = "not_run"  # the verdict of a drill line (or scenario) that could not act: no verdict at all


def drill_record(
    result: DrillResult,
    report_path: str | os.PathLike[str] | None,
    manifest: str | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """What the log keeps of a drill: enough for the matrix, the history and "since last run"
    without its output folder, plus the digest of that folder's manifest."""
    results = result.to_json()
    # a run that could not act (harness.faults.refused): "not_run" with its cause, never a verdict
    not_run = results.get("not_run") or None
    skipped = set((not_run or {}).get("scenarios") or ())
    scenarios = [
        {
            "feature": s.get("feature"),
            "matrix_row": (s.get("matrix_row") or {}).get("number"),
            "verdict": NOT_RUN if s.get("name") in skipped else verdict_text(s.get("verdict")),
            **{k: (s.get("measurements") or {}).get(k) for k in SCENARIO_FIGURES},
        }
        for s in results.get("scenarios") or ()
    ]
    record = {
        "kind": "drill",
        "drill": results.get("drill"),
        "ha_domain": results.get("ha_domain"),
        # the domains its scenarios drilled (an "all" plan may leave one out, e.g. on containers)
        "ha_domains": sorted(
            {
                t.split(":", 1)[1].lstrip()
                for s in results.get("scenarios") or ()
                for t in s.get("tags") or ()
                if t.lstrip("@").startswith("ha-domain:")
            }
        ),
        "correlation_id": results.get("correlation_id"),
        "started_at": results.get("started_at"),
        "finished_at": results.get("finished_at"),
        "verdict": NOT_RUN if not_run else verdict_text(results.get("verdict")),
        "gates": gates_summary(results),
        "scenarios": scenarios,
        "report": os.fspath(report_path) if report_path is not None else None,
        "out_dir": os.fspath(Path(out_dir).resolve()) if out_dir is not None else None,
        "manifest": manifest,
        "signoff": results.get("signoff"),
        "environment_class": results.get("environment_class"),
        # {class, name}: what counts toward an HA domain's quarterly drill (harness.environments)
        "environment": environment_of(results),
        "system_version": results.get("system_version"),
        "harness": results.get("harness"),
        "plan_sha256": results.get("plan_sha256"),
        "residual_risk": (results.get("risk") or {}).get("residual"),
    }
    if results.get("waivers"):  # targets looser than the spec's floors, and the gates judged waived
        record["waivers"] = [
            {k: w.get(k) for k in ("gate", "reason", "approved_by", "expires", "target", "floor", "gates")}
            for w in results["waivers"]
        ]
    if results.get("dry_run"):
        record["dry_run"] = True
    if not_run:
        record["not_run"] = f"not run: {not_run.get('cause')}"
    return record


def append_cab_log(
    path: str | os.PathLike[str],
    result: DrillResult,
    report_path: str | os.PathLike[str] | None = None,
    key: CabKey | None = None,
    manifest: str | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Append one keyed, chained line for `result` to the log at `path`; returns the entry written."""
    return append_cab_record(path, drill_record(result, report_path, manifest, out_dir), key)


def append_cab_record(
    path: str | os.PathLike[str], record: dict[str, Any], key: CabKey | None = None
) -> dict[str, Any]:
    """Append a keyed, chained line. Besides drills: {"kind": "schedule", "event": "skipped", ...}
    (a scheduled run skipped, missed or late) and {"kind": "report", "event": "rebuilt", ...}, so the
    CAB sees them beside the drills.

    1. open in append mode (a regular file only: a folder, FIFO or device is refused) and take an
       exclusive lock, so concurrent drills chain in turn;
    2. take prev_hash from the last line (64 zeros for an empty or new log);
    3. write the whole line in one write call, then flush and fsync.
    Raises CabLogCorrupt rather than chain onto a half-written or foreign last line, InputError
    for a path that is not a log file.
    """
    key = key or load_key(create=True)
    path = Path(path)
    fd = _open_for_append(path)
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


def _open_for_append(path: Path) -> int:
    """A descriptor to append to the log at `path`, made (0644, with its folder) when missing."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as exc:  # a folder, a FIFO without a reader (ENXIO), a parent that is a file
        raise InputError(
            f"{printable(path)}: cannot append to the CAB log: {exc.strerror or exc}; give "
            f"--cab-log a file (default reports/cab-log.jsonl)"
        ) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise InputError(f"{printable(path)}: the CAB log is not a regular file; give --cab-log a file")
    os.set_blocking(fd, True)
    return fd


def check_appendable(path: str | os.PathLike[str]) -> None:
    """Before a drill starts: the log at `path` can take a line (absent, or a regular file whose
    last line is a complete entry). InputError or CabLogCorrupt, naming the fix, otherwise; so a
    drill is refused before its lab starts rather than failing to record at its end."""
    path = Path(path)
    try:
        if path.exists() or path.is_symlink():
            os.close(open_regular(path, "the CAB log"))
            _last_hash(path)
        elif path.parent.exists() and not path.parent.is_dir():
            raise InputError(f"{printable(path)}: {printable(path.parent)} is not a folder; give --cab-log a file")
    except OSError as exc:  # a name too long, a folder that cannot be searched
        raise InputError(
            f"{printable(path, 200)}: cannot use as the CAB log: {exc.strerror or exc}; give --cab-log a file"
        ) from None


def _last_hash(path: Path) -> str:
    last = None
    for line in log_lines(path):
        last = line
    if last is None:
        return GENESIS
    shown = printable(path)
    if not last.complete:
        raise CabLogCorrupt(f"{shown}: last line is incomplete; run `drill cab verify` and repair the log")
    if last.problem is not None or not isinstance(last.entry, dict):
        raise CabLogCorrupt(
            f"{shown}: last line is not a CAB log entry ({last.problem or 'not a mapping'}); "
            f"run `drill cab verify` and repair the log"
        )
    value = last.entry.get("hash")
    if not isinstance(value, str) or len(value) != 64:
        raise CabLogCorrupt(f"{shown}: last line has no valid hash; run `drill cab verify` and repair the log")
    return value


# ---- reading and verifying ----------------------------------------------------------------------


@dataclass
class LogLine:
    """One line of the log as read: its JSON value, or why it is none (`problem`)."""

    number: int
    entry: Any = None
    problem: str | None = None
    complete: bool = True  # ends with a newline (the last line of a cut-short write does not)


def log_lines(path: str | os.PathLike[str]) -> Iterator[LogLine]:
    """Every line of the log, parsed. The log must be a regular file (a folder, FIFO or device
    is an InputError); a missing one raises FileNotFoundError. A line over CAB_LINE_MAX bytes,
    not UTF-8, or not JSON (nested too deep to parse included) is a LogLine with a problem,
    never an exception."""
    fd = open_regular(path, "the CAB log")
    with os.fdopen(fd, "rb") as f:
        number = 0
        while True:
            raw = f.readline(CAB_LINE_MAX + 1)
            if not raw:
                return
            number += 1
            if len(raw) > CAB_LINE_MAX:
                while raw and not raw.endswith(b"\n"):  # skip the rest of the long line
                    raw = f.readline(CAB_LINE_MAX)
                yield LogLine(number, problem=f"longer than {CAB_LINE_MAX // (1 << 20)} MiB", complete=bool(raw))
                continue
            line = LogLine(number, complete=raw.endswith(b"\n"))
            try:
                line.entry = parse_json(raw.rstrip(b"\n"), "line")
            except InputError as exc:
                line.problem = str(exc).removeprefix("line: ")
            yield line


def read_cab_entries(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every line of the log that parses as an entry, verified or not (an absent log has none)."""
    try:
        return [line.entry for line in log_lines(path) if isinstance(line.entry, dict)]
    except FileNotFoundError:
        return []


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
    except (TypeError, ValueError, RecursionError):
        return "not a CAB log entry"
    if "mac" not in entry:
        return "not signed (no mac): written without a key, or the mac was removed"
    if key is None:
        return "cannot be checked: no CAB key"
    if entry.get("key_id") != key.key_id:
        return (
            f"signed with another key (key id {printable(entry.get('key_id'), 40)}, not {key.key_id} of "
            f"{printable(key.path)})"
        )
    if not hmac.compare_digest(str(entry["mac"]).encode("utf-8", "replace"), entry_mac(entry, key).encode()):
        return "its mac does not match: edited and re-hashed without the key"
    return None


def check_log(path: str | os.PathLike[str], key: CabKey | None) -> LogCheck:
    """Judge every line; a missing log raises FileNotFoundError, one that is not a regular file
    InputError."""
    check = LogCheck()
    prev: str | None = GENESIS
    for line in log_lines(path):
        check.lines = line.number
        if not line.complete:
            check.bad.append((line.number, "incomplete last line (the write was cut short)"))
            break
        reason = (
            f"not a CAB log entry ({line.problem})" if line.problem is not None else check_line(line.entry, prev, key)
        )
        if reason is None:
            check.good.append(line.entry)
        else:
            check.bad.append((line.number, reason))
        entry = line.entry
        prev = entry.get("hash") if isinstance(entry, dict) and isinstance(entry.get("hash"), str) else None
    return check


def verify_cab_log(path: str | os.PathLike[str], key: CabKey | None = None) -> tuple[bool, int | None]:
    """(True, None) when every line verifies, else (False, n) with n the first bad line (1-based).
    `key` None: the default key. An empty log is valid; a missing one raises FileNotFoundError."""
    check = check_log(path, key or load_key())
    first_bad = check.first_bad
    return (True, None) if first_bad is None else (False, first_bad[0])


def verified_entries(path: str | os.PathLike[str], key: CabKey | None) -> tuple[list[dict[str, Any]], int]:
    """(entries that verify, how many lines did not): what the matrix, the history and "since last
    run" read. An absent log has neither."""
    try:
        check = check_log(path, key)
    except FileNotFoundError:
        return [], 0
    return check.good, len(check.bad)


def key_or_none(path: str | os.PathLike[str] | None = None) -> CabKey | None:
    """The key when it exists (readers: nothing to verify with is said as skipped lines). A key
    named explicitly (`path`) must be usable: CabKeyError otherwise; only the default may be absent."""
    if path is not None:
        return load_key(path)
    try:
        return load_key()
    except CabKeyError:
        return None
