"""SIEM sink: one JSON line per committed event appended to a file (spec validation rule 2).

Several instances append to the same file: each line is one os.write() on an O_APPEND file
under an exclusive flock, so lines never interleave. Called only after the commit.
"""

from __future__ import annotations

import fcntl
import json
import os


class SiemSink:
    """Appends {"at", "instance", "type", "intent_id", "correlation_id", "seq", "hash"} lines;
    a drill's fault/recovery event (type DrillEvent) also carries its "kind" and "name"."""

    def __init__(self, path: str, instance: str) -> None:
        self.path = path
        self.instance = instance

    def write(self, events: list[dict]) -> None:
        """Append one line per event (blocking: call it in an executor). None stands for an event
        that was not appended (only with the UNSAFE --unsafe-ignore-event-store) and is skipped."""
        events = [e for e in events if e is not None]
        if not events:
            return
        lines = [json.dumps(self.record(e), separators=(",", ":")) + "\n" for e in events]
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            for line in lines:
                os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)  # also releases the lock

    def record(self, e: dict) -> dict:
        record = {"at": e["at"].isoformat(), "instance": self.instance, "type": e["type"],
                  "intent_id": e["intent_id"], "correlation_id": e["correlation_id"],
                  "seq": e["seq"], "hash": e["hash"]}
        if e["type"] == "DrillEvent":
            record.update(kind=e["payload"].get("kind"), name=e["payload"].get("name"))
        return record
