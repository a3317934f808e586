"""One ordered, retrying delivery of events to the Control Plane's POST /events/operational.

Used by two parties that must stay apart: the harness's forwarder (harness.runner.forwarder, what
the harness itself did) and the lab's failover manager (harness.lab.eventpost, what the deployment
logs by itself). Each event is posted in order, retried every RETRY_S until acknowledged (200 or
201) or the poster is closed; flush() waits until every event queued so far was acknowledged.
"""

from __future__ import annotations

import queue
import threading

from ..wait import poll
from .client import ApiClient, ControlPlane

RETRY_S = 0.25


class EventPoster:
    def __init__(self, api_url: str, thread_name: str, timeout: float = 5.0):
        self.client = ApiClient(api_url, timeout=timeout)
        self._queue: queue.Queue[tuple[str, dict]] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self.failures: dict[str, str] = {}  # event id -> its last error, while undelivered
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    def send(self, correlation_id: str, body: dict) -> None:
        """Queue one event body (with its "event_id", "kind" and "name") under `correlation_id`."""
        with self._lock:
            self._pending += 1
        self._queue.put((correlation_id, body))

    def _deliver(self, correlation_id: str, body: dict) -> bool:
        reply = self.client.send(ControlPlane.operational_event(body), correlation_id)
        if reply.status in (200, 201):
            self.failures.pop(body["event_id"], None)
            return True
        self.failures[body["event_id"]] = f"{body['kind']}:{body['name']}: {reply.error or reply.status}"
        return False

    def _run(self) -> None:
        while not self._halt.is_set():
            try:
                correlation_id, body = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            while not self._deliver(correlation_id, body):
                if self._halt.wait(RETRY_S):
                    return
            with self._lock:
                self._pending -= 1

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every event queued so far was acknowledged; False at the deadline."""
        return poll(lambda: self._pending == 0, timeout=timeout).ok

    def close(self) -> None:
        self._halt.set()
        self._thread.join(10)
        self.client.close()
