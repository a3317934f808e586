"""The lab's failover manager's own delivery of its role-change events to the Control Plane.

A deployment's failover manager tells the Control Plane itself when it changed roles (Patroni runs
an on_role_change callback script; issue 27 puts the lab's database under Patroni): the lab's
FailoverController, the stand-in until then, does the same through this poster, a part of the lab,
not of the drill. Each event (detect, fence, promote, reconnect, rebuild, lag_check, failback,
restart, failover_error) is posted to POST /events/operational with its own event id, the time it
happened, `emitter: failover-manager`, and a correlation id of the manager's own: one per episode
(a new one at each detect, lag_check or restart), for the manager knows nothing of any drill. A
refused or lost post is retried every RETRY_S until delivered or the lab goes down.

The harness never posts these events (harness.runner.forwarder forwards only what the harness
itself did): that they reach the event store and the SIEM is what validation rule 2 judges
(harness.gates.eventstore.CorrelationIdsRecorded).
"""

from __future__ import annotations

import queue
import threading
import time
import uuid

from ..wait import poll
from ..workload import ApiClient

EMITTER = "failover-manager"
RETRY_S = 0.25
EPISODE_STARTS = ("detect", "lag_check", "restart")


class RoleChangePoster:
    """Posts the failover manager's events by itself, in order, each until it is acknowledged."""

    def __init__(self, api_url: str, name: str, timeout: float = 5.0):
        self.client = ApiClient(api_url, timeout=timeout)
        self.name = name                                  # the lab's id: in the correlation ids
        self._queue: queue.Queue[tuple[str, dict]] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._episode = 0
        self.correlation_id = f"{EMITTER}/{name}/0"
        self.last_error = ""
        self._thread = threading.Thread(target=self._run, name="role-change-poster", daemon=True)
        self._thread.start()

    def post(self, kind: str, name: str, detail: dict) -> None:
        """Queue one event, stamped now; a new episode (correlation id) starts at EPISODE_STARTS."""
        with self._lock:
            if kind in EPISODE_STARTS:
                self._episode += 1
                self.correlation_id = f"{EMITTER}/{self.name}/{self._episode}"
            self._pending += 1
            body = {"event_id": str(uuid.uuid4()), "kind": kind, "name": name, "at": time.time(),
                    "emitter": EMITTER, "detail": {k: str(v) for k, v in detail.items()}}
            self._queue.put((self.correlation_id, body))

    def _run(self) -> None:
        while not self._halt.is_set():
            try:
                cid, body = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            while True:
                reply = self.client.call("POST", "/events/operational", cid, json=body)
                if reply.status in (200, 201):
                    break
                self.last_error = f"{body['kind']}:{body['name']}: {reply.error or reply.status}"
                if self._halt.wait(RETRY_S):
                    return
            with self._lock:
                self._pending -= 1

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every event posted so far was acknowledged; False at the deadline."""
        return poll(lambda: self._pending == 0, timeout=timeout).ok

    def close(self) -> None:
        self._halt.set()
        self._thread.join(10)
        self.client.close()

