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

from ..model import Event
from ..workload.poster import EventPoster

EMITTER = "harness-forwarder"  # in the stored payload: this event was posted by the harness


class EventForwarder(EventPoster):
    def __init__(self, api_url: str, timeout: float = 5.0):
        super().__init__(api_url, "event-forwarder", timeout)

    def submit(self, event: Event) -> None:
        self.send(
            event.correlation_id,
            {
                "event_id": event.event_id,
                "kind": event.kind,
                "name": event.name,
                "at": event.wall,
                "emitter": EMITTER,
                "detail": {k: str(v) for k, v in event.detail.items()},
            },
        )
