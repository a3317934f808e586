"""Harness calls of part 3 of the quarterly failover drill (spec section 4, rollback validation:
"Ring 0 test ensures rollback pipeline works even if connectors were in failover"): every connector
worker is lost (the auto-scaling group replaces each), a ring rollback is requested through the
Control Plane's API meanwhile, and what reached each platform is read from the stand-ins' own
logs; the rule is the checker harness.gates.connectors.RingRollbackApplied."""

from __future__ import annotations

import time

from ..gates.connectors import RingRollbackApplied
from ..lab.capabilities import ConnectorWorkers
from ..model import FaultSpec, OpKind
from ..wait import poll
from ..workload import ControlPlane
from .common import PLATFORMS, applied_counts, platform_log
from .scenario import Scenario

FAILED_OVER = "connectors-failover"
# A message a worker had received when it was killed comes back after the queue's visibility
# timeout (30 s): the wait covers that redelivery.
DEADLINE = 90.0
RECEIVE_WAIT_S = 1.0 + 0.5  # the lab workers' long poll (harness.lab.connectors, --wait-time 1), and a margin


def connectors_fail_over(scn: Scenario) -> None:
    """SIGKILL every platform's connector worker, then wait until the auto-scaling group logged a
    replacement for each and the lost workers' outstanding receives have ended (a receive the
    queue answers after its consumer died hides the message it hands out for the visibility
    timeout, 30 s: a delay the rollback's figure would show, not a failure)."""
    workers = scn.lab.capability(ConnectorWorkers)
    before = len(workers.connector_replacements())
    scn.inject(FaultSpec("connector_worker_kill", "all"), FAILED_OVER)
    started = time.monotonic()
    replaced = poll(
        lambda: {r["platform"] for r in workers.connector_replacements()[before:]},
        until=lambda platforms: platforms >= set(PLATFORMS),
        timeout=DEADLINE,
        interval=0.1,
    )
    time.sleep(max(0.0, RECEIVE_WAIT_S - (time.monotonic() - started)))
    scn.observe(
        f"Every platform's connector worker killed (SIGKILL); the auto-scaling group replaced "
        f"{len(replaced.value)} of {len(PLATFORMS)} in {replaced.waited:.2f} s."
    )


def ring_rollback(scn: Scenario, ring: str) -> None:
    """Request the ring's rollback (with an Idempotency-Key, as a runbook would), wait until every
    platform's stand-in applied the key the Control Plane dispatched to it, then heal the failover
    (a worker running for every platform: a no-op once the group replaced them)."""
    op = scn.call(
        OpKind.RING_ROLLBACK,
        ControlPlane.ring_rollback(ring, f"{scn.correlation_id}/rollback-{ring}"),
        detail={"ring": ring},
        timeout=30,
        read=lambda body: body,
    )
    dispatched = ((op.value or {}).get("dispatched") or {}) if op.ok else {}
    if dispatched:
        arrived = poll(
            lambda: {p: applied_counts(scn, p).get(k, 0) for p, k in dispatched.items()},
            until=lambda counts: all(counts.values()),
            timeout=DEADLINE,
            interval=0.1,
        )
        applied = sum(1 for n in (arrived.value or {}).values() if n)
        if arrived.ok:  # the last platform's apply, by its own log, from the request's start
            last = max(
                r["at"]
                for p, k in dispatched.items()
                for r in platform_log(scn.lab, p) or ()
                if r.get("idempotency_key") == k and r.get("status") == 200 and r.get("path") == "/apply"
            )
            seconds = round(last - op.wall_invoke, 3)
            scn.figures["rollback_applied_s"] = seconds
            scn.observe(
                f"{ring} rollback {op.value.get('rollback_id')}: applied on all {applied} platforms, "
                f"the last {seconds:.2f} s after it was requested."
            )
        else:
            scn.observe(
                f"{ring} rollback {op.value.get('rollback_id')}: applied on {applied} of {len(dispatched)} "
                f"platforms within {DEADLINE:.0f} s."
            )
    else:
        scn.observe(f"The {ring} rollback was not accepted: {op.error or op.status}")
    scn.heal(FAILED_OVER)
    scn.expect(RingRollbackApplied(ring, FAILED_OVER, PLATFORMS))
