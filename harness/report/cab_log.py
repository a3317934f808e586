"""CAB log: one hash-chained JSON line appended per drill, and a verifier of the chain."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from harness.model import DrillResult
from harness.report.files import iter_gates, plain, verdict_text

GENESIS = "0" * 64


class CabLogCorrupt(ValueError):
    """The log's last line cannot be chained onto (half-written or not a CAB entry)."""


def canonical(entry: dict[str, Any]) -> str:
    """Canonical JSON: sorted keys, no spaces, ASCII only, no NaN."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def entry_hash(entry: dict[str, Any]) -> str:
    """sha256 hex of canonical(entry without "hash") followed by entry["prev_hash"], UTF-8."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256((canonical(body) + entry["prev_hash"]).encode("utf-8")).hexdigest()


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


def cab_entry(result: DrillResult, report_path: str | os.PathLike[str] | None, prev_hash: str) -> dict[str, Any]:
    """The log line for a drill, hash included."""
    results = result.to_json()
    entry = plain({
        "drill": results.get("drill"),
        "ha_domain": results.get("ha_domain"),
        "correlation_id": results.get("correlation_id"),
        "started_at": results.get("started_at"),
        "finished_at": results.get("finished_at"),
        "verdict": verdict_text(results.get("verdict")),
        "gates": gates_summary(results),
        "report": os.fspath(report_path) if report_path is not None else None,
        **({"dry_run": True} if results.get("dry_run") else {}),
        "prev_hash": prev_hash,
    })
    entry["hash"] = entry_hash(entry)
    return entry


def append_cab_log(path: str | os.PathLike[str], result: DrillResult,
                   report_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Append one chained line for `result` to the log at `path`; returns the entry written."""
    return _append(path, lambda prev: cab_entry(result, report_path, prev))


def append_cab_record(path: str | os.PathLike[str], record: dict[str, Any]) -> dict[str, Any]:
    """Append a chained line that is not a drill's result (e.g. {"kind": "schedule", "event":
    "skipped", ...}: a scheduled run skipped, missed or late), so the CAB sees it beside the drills."""
    def build(prev: str) -> dict[str, Any]:
        entry = plain({**record, "prev_hash": prev})
        entry["hash"] = entry_hash(entry)
        return entry
    return _append(path, build)


def read_cab_entries(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every line of the log that parses as an entry (an absent log has none)."""
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


def _append(path: str | os.PathLike[str], build) -> dict[str, Any]:
    """Append one chained line built by `build(prev_hash)`:

    1. open in append mode and take an exclusive lock, so concurrent drills chain in turn;
    2. take prev_hash from the last line (64 zeros for an empty or new log);
    3. write the whole line in one write call, then flush and fsync.
    Raises CabLogCorrupt rather than chain onto a half-written or foreign last line.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        entry = build(_last_hash(path))
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
        raise CabLogCorrupt(f"{path}: last line is incomplete; run verify_cab_log and repair the log")
    last = text.rstrip("\n").rsplit("\n", 1)[-1]
    try:
        value = json.loads(last)["hash"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CabLogCorrupt(f"{path}: last line is not a CAB log entry ({exc})") from exc
    if not isinstance(value, str) or len(value) != 64:
        raise CabLogCorrupt(f"{path}: last line has no valid hash")
    return value


def verify_cab_log(path: str | os.PathLike[str]) -> tuple[bool, int | None]:
    """(True, None) when every line parses, chains onto the one before and hashes right;
    else (False, n) with n the 1-based number of the first bad line. An empty log is valid;
    a missing one raises FileNotFoundError.
    """
    text = Path(path).read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        return False, text.count("\n") + 1
    prev = GENESIS
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            entry = json.loads(line)
            ok = isinstance(entry, dict) and entry.get("prev_hash") == prev and entry.get("hash") == entry_hash(entry)
        except (ValueError, TypeError, KeyError):
            ok = False
        if not ok:
            return False, number
        prev = entry["hash"]
    return True, None
