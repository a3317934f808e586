"""Delivers the events the harness itself acted out to the event store (an adapter, never rule 2's
evidence on its own).

What the harness does during a drill (the fault journal's inject and heal, the restore runbook's
log) and, for a deployment whose failover events come from elsewhere (an external target: the
harness's own observation of its failover), are posted by the harness, each with its event id and
correlation id, to POST /events/operational, marked `emitter: harness-forwarder` (and detail
`forwarded: True`); a refused or lost post is retried until delivered or the drill ends. The lab's
failover manager posts its own events (harness.lab.eventpost): those are never forwarded.

Delivery is an act, not a check: the gate `correlation_ids_recorded` reads the store and the SIEM,
counts the forwarded events apart, and passes only on events the deployment logged by itself (the
Control Plane's audit events of the drill's operations, the failover manager's events).
"""

from __future__ import annotations

import queue
import threading

from ..model import Event
from ..wait import poll
from ..workload import ApiClient

RETRY_S = 0.25
EMITTER = "harness-forwarder"     # in the stored payload: this event was posted by the harness


class EventForwarder:
    def __init__(self, api_url: str, timeout: float = 5.0):
        self.client = ApiClient(api_url, timeout=timeout)
        self._queue: queue.Queue[Event] = queue.Queue()
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
            "emitter": EMITTER, "detail": {k: str(v) for k, v in event.detail.items()}})
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
