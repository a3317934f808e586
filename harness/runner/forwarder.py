"""Delivers the lab's fault and recovery events to the event store (validation rule 2).

The fault journal and the failover controller emit events while they happen, often while the
Control Plane or its database is down. Each is posted, with its event id and correlation id, to
POST /events/operational (the Control Plane appends it to its hash-chained store and writes the
SIEM line); a refused or lost post is retried until delivered or the drill ends. Delivery is an
act, not a check: the gate `correlation_ids_recorded` later reads the store and the SIEM sink.
"""

from __future__ import annotations

import queue
import threading

from ..model import Event
from ..wait import poll
from ..workload import ApiClient

RETRY_S = 0.25


class EventForwarder:
    def __init__(self, api_url: str, timeout: float = 5.0):
        self.client = ApiClient(api_url, timeout=timeout)
        self._queue: "queue.Queue[Event]" = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self.failures: dict[str, str] = {}      # event id -> last error, while undelivered
        self._thread = threading.Thread(target=self._run, name="event-forwarder", daemon=True)
        self._thread.start()

    def submit(self, event: Event) -> None:
        with self._lock:
            self._pending += 1
        self._queue.put(event)

    def _deliver(self, event: Event) -> bool:
        reply = self.client.call("POST", "/events/operational", event.correlation_id, json={
            "event_id": event.event_id, "kind": event.kind, "name": event.name, "at": event.wall,
            "detail": {k: str(v) for k, v in event.detail.items()}})
        if reply.status in (200, 201):
            self.failures.pop(event.event_id, None)
            return True
        self.failures[event.event_id] = f"{event.kind}:{event.name}: {reply.error or reply.status}"
        return False

    def _run(self) -> None:
        while not self._halt.is_set():
            try:
                event = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            while not self._deliver(event):
                if self._halt.wait(RETRY_S):
                    return
            with self._lock:
                self._pending -= 1

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every event submitted so far was delivered; False at the deadline."""
        return poll(lambda: self._pending == 0, timeout=timeout).ok

    def close(self) -> None:
        self._halt.set()
        self._thread.join(10)
        self.client.close()
