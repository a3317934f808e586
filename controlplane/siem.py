"""SIEM sink: one JSON line per committed event appended to a file (spec validation rule 2).

Several instances append to the same file: each line is one os.write() on an O_APPEND file
under an exclusive flock, so lines never interleave. Called only after the commit.

``disabled`` (serve --unsafe-skip-siem) is a deliberate misbehaviour for negative drills only:
the sink then writes nothing (the event store still gets every event), which a drill checking
validation rule 2 in the SIEM must catch.
"""

from __future__ import annotations

import fcntl
import json
import os


class SiemSink:
    """Appends {"at", "instance", "type", "intent_id", "correlation_id", "seq", "hash"} lines;
    a drill's fault/recovery event (type DrillEvent) also carries its "event_id", "kind" and
    "name". A disabled sink (UNSAFE) writes nothing."""

    def __init__(self, path: str, instance: str, disabled: bool = False) -> None:
        self.path = path
        self.instance = instance
        self.disabled = disabled

    def write(self, events: list[dict]) -> None:
        """Append one line per event (blocking: call it in an executor). None stands for an event
        that was not appended (only with the UNSAFE --unsafe-ignore-event-store) and is skipped.
        A disabled sink (only with the UNSAFE --unsafe-skip-siem) writes nothing at all."""
        events = [e for e in events if e is not None]
        if not events or self.disabled:
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
        record = {
            "at": e["at"].isoformat(),
            "instance": self.instance,
            "type": e["type"],
            "intent_id": e["intent_id"],
            "correlation_id": e["correlation_id"],
            "seq": e["seq"],
            "hash": e["hash"],
        }
        if e["type"] == "DrillEvent":
            record.update(
                event_id=e["payload"].get("event_id"), kind=e["payload"].get("kind"), name=e["payload"].get("name")
            )
        return record
