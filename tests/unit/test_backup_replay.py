"""Which writes the backup drill replays after a restore (harness.runner.backup.lost_to_restore):
those acknowledged after the restored snapshot and sent before the restore was done, never the
workload's own writes to the restored database."""

from __future__ import annotations

from harness.model import Op, Outcome
from harness.runner.backup import lost_to_restore

SNAPSHOT = 1_000.0  # the restored snapshot's time on the Control Plane's clock
RESTORED = 2_000.0  # wall time the restore was done
SHIFT = -50.0  # the Control Plane's clock runs 50 s behind the wall clock here


def cp(wall: float) -> float:
    return wall + SHIFT


def write(key: str, wall: float, ok: bool = True) -> Op:
    return Op(
        id=0,
        kind="write",
        t_invoke=wall,
        t_complete=wall + 0.01,
        outcome=Outcome.OK if ok else Outcome.FAIL,
        value=key,
        wall_invoke=wall,
    )


def test_only_writes_acknowledged_between_the_snapshot_and_the_restore_are_replayed():
    writes = [
        write("before-snapshot", SNAPSHOT - SHIFT - 5.0),
        write("just-before-snapshot", SNAPSHOT - SHIFT - 0.5),  # may be in it: the replay says so (200)
        write("after-snapshot", SNAPSHOT - SHIFT + 30.0),
        write("refused", SNAPSHOT - SHIFT + 40.0, ok=False),
        write("to-the-restored-database", RESTORED + 1.0),  # the workload ran on after the restore
        write("at-the-restore", RESTORED),
    ]
    assert lost_to_restore(writes, cp, SNAPSHOT, RESTORED) == ["just-before-snapshot", "after-snapshot"]
