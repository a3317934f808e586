"""WORM retention of the evidence objects (harness/gates/worm.py)."""

from __future__ import annotations

from harness.gates import Gate
from harness.gates.worm import WormRetention

from ..builder import H, wall
from .common import FAIL, PASS, UNKNOWN, Case, measured_has

CASES: dict[type[Gate], list[Case]] = {}


def locks(*objects: tuple, scope: str = "evidence", ok: bool = True) -> H:
    """The harness's HEAD of the objects the drill wrote: (mode, days held after the write) each."""
    value = [
        {
            "object_key": f"evidence/{i}/x.json",
            "region": "primary",
            "mode": mode,
            "retain_until": None if days is None else wall(5.0) + days * 86400.0,
            "written_at": wall(5.0),
        }
        for i, (mode, days) in enumerate(objects)
    ]
    return H().op(
        "store_lock",
        30.0,
        ok=ok,
        value=value if ok else None,
        detail={"scope": scope},
        error="" if ok else "connection refused",
    )


CASES[WormRetention] = [
    Case(
        "every object COMPLIANCE until 2557 days after its write",
        WormRetention(),
        locks(("COMPLIANCE", 2557), ("COMPLIANCE", 2557.5)).build(),
        PASS,
        measured_has(objects=2, modes=["COMPLIANCE"], min_retain_days=2557.0),
    ),
    Case(
        "GOVERNANCE for 1 day (the reference Control Plane before issue 24)",
        WormRetention(),
        locks(("GOVERNANCE", 1)).build(),
        FAIL,
        measured_has(not_locked=["evidence/0/x.json"]),
    ),
    Case("COMPLIANCE but 90 days only", WormRetention(), locks(("COMPLIANCE", 2557), ("COMPLIANCE", 90)).build(), FAIL),
    Case(
        "GOVERNANCE for 7 years (can be lifted by a privileged caller)",
        WormRetention(),
        locks(("GOVERNANCE", 2557)).build(),
        FAIL,
    ),
    Case("an object with no lock at all", WormRetention(), locks(("COMPLIANCE", 2557), (None, None)).build(), FAIL),
    Case("the locks were not read", WormRetention(), H().build(), UNKNOWN),
    Case("the store could not be read", WormRetention(), locks(ok=False).build(), UNKNOWN),
    Case("the drill wrote no object", WormRetention(), locks().build(), UNKNOWN),
    Case(
        "a read of the event-store exports does not judge the evidence objects",
        WormRetention(),
        locks(("COMPLIANCE", 2557), scope="eventstore").build(),
        UNKNOWN,
    ),
]
