"""The Control Plane's clock in a drill: advance_clock moves it and records the move, then a running
backup service takes what became due (follow_clock). Both the connector and the backup rows move the
clock; this module is below both, so neither imports the other for it."""

from __future__ import annotations

from typing import Any

import requests

from ..backup.schedule import HOUR
from ..lab.capabilities import Backups, Clock
from ..model import EventKind, OpKind
from ..wait import poll
from ..workload import ControlPlane
from .scenario import Scenario

CATCH_UP_S = 120.0  # the backup service takes what is due within a tick; pg_dump may be slow


def _service(scn: Scenario) -> Any:
    return scn.lab.capability(Backups).backup_service()


def wait_caught_up(scn: Scenario) -> None:
    """Until the backup service has taken what is due on the Control Plane's clock."""
    service = _service(scn)
    if not poll(service.caught_up, timeout=CATCH_UP_S, interval=0.1).ok:
        raise RuntimeError(
            f"the backup service did not catch up within {CATCH_UP_S:.0f} s: {service.last_error or 'no error logged'}"
        )


def follow_clock(scn: Scenario, seconds: float) -> None:
    """After the drill moved the Control Plane's clock: a running backup service takes what became
    due (an hour on means a snapshot) before the drill goes on, as it would have in that time; and
    after a move of a day or more, every API instance has read the new snapshot (each re-reads the
    catalogue every 2 s), so that no later step meets a backup that is only stale in between.
    Nothing to do on a lab without a backup service, or while the drill halted it."""
    try:
        service = scn.lab.part(Backups).backup_service()
    except NotImplementedError:
        return
    if service is None or service.halted:
        return
    wait_caught_up(scn)
    if seconds < 23 * HOUR:
        return

    def every_instance_fresh() -> bool:
        for url in scn.lab.endpoints().get("instances", {}).values():
            try:
                part = requests.get(f"{url}/health", timeout=3).json()["components"]["backups"]
            except (requests.RequestException, ValueError, KeyError, TypeError):
                continue  # an instance that is down reads it when it is back
            if part.get("status") != "up":
                return False
        return True

    poll(every_instance_fresh, timeout=30, interval=0.2)


def advance_clock(scn: Scenario, seconds: float, observe: bool = True) -> None:
    """Move the Control Plane's clock (the lab allows it): time rules run in seconds. The move is
    recorded at the moment it was asked for, so what the Control Plane does at once follows it.
    observe=False: the caller says what its moves amounted to, once."""
    op = scn.call(OpKind.CLOCK_ADVANCE, ControlPlane.advance_clock(seconds, scn.lab.part(Clock).control_headers()))
    if not op.ok:
        raise RuntimeError(f"the Control Plane's clock cannot be moved: {op.error}")
    scn.recorder.event(
        EventKind.CLOCK, f"advance:{seconds:g}s", scn.correlation_id, wall=op.wall_invoke, seconds=seconds
    )
    follow_clock(scn, seconds)
    if observe:
        amount = f"{seconds / 60:g} min" if seconds < 2 * 3600 else f"{seconds / 3600:.1f} h"
        scn.observe(f"Control Plane clock moved {amount} forward.")
