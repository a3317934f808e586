"""The lab's failover manager's own delivery of its role-change events to the Control Plane.

A deployment's failover manager tells the Control Plane itself when it changed roles (Patroni runs
an on_role_change callback script; issue 27 puts the lab's database under Patroni): the lab's
FailoverController, the stand-in until then, does the same through this poster, a part of the lab,
not of the drill. Each event (detect, fence, promote, reconnect, rebuild, lag_check, failback,
restart, failover_error) is posted to POST /events/operational with its own event id, the time it
happened, `emitter: failover-manager`, and a correlation id of the manager's own: one per episode
(a new one at each detect, lag_check or restart), for the manager knows nothing of any drill. A
refused or lost post is retried until delivered or the lab goes down (harness.workload.poster).

The harness never posts these events (harness.runner.forwarder forwards only what the harness
itself did): that they reach the event store and the SIEM is what validation rule 2 judges
(harness.gates.eventstore.CorrelationIdsRecorded).
"""

from __future__ import annotations

import time
import uuid

from ..workload.poster import EventPoster

EMITTER = "failover-manager"
EPISODE_STARTS = ("detect", "lag_check", "restart")


class RoleChangePoster(EventPoster):
    """Posts the failover manager's events by itself, in order, each until it is acknowledged."""

    def __init__(self, api_url: str, name: str, timeout: float = 5.0):
        self.name = name  # the lab's id: in the correlation ids
        self._episode = 0
        self.correlation_id = f"{EMITTER}/{name}/0"
        super().__init__(api_url, "role-change-poster", timeout)

    def post(self, kind: str, name: str, detail: dict) -> None:
        """Queue one event, stamped now; a new episode (correlation id) starts at EPISODE_STARTS."""
        with self._lock:
            if kind in EPISODE_STARTS:
                self._episode += 1
                self.correlation_id = f"{EMITTER}/{self.name}/{self._episode}"
            cid = self.correlation_id
        self.send(
            cid,
            {
                "event_id": str(uuid.uuid4()),
                "kind": kind,
                "name": name,
                "at": time.time(),
                "emitter": EMITTER,
                "detail": {k: str(v) for k, v in detail.items()},
            },
        )
