"""restore_newest_valid's choice, on a stand-in for the tool (pure logic: the real tool is in
test_restore_external.py): which backups it refuses and why, which it restores with --set, and
what it answers when nothing is left."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from harness.lab.pgbackrest import PgBackRestError, VerifyReport
from harness.restore import RestoreInvalid, restore_newest_valid

T0 = datetime.datetime(2026, 12, 8, 1, 0, tzinfo=datetime.UTC).timestamp()


def backup(label: str, stop_h: float, kind: str, reference: list[str] | None = None) -> dict:
    stop = T0 + stop_h * 3600
    return {"label": label, "type": kind, "timestamp": {"start": stop - 5, "stop": stop}, "reference": reference}


def verify_text(invalid: set[str], labels: list[str]) -> str:
    lines = ["stanza: main", f"status: {'error' if invalid else 'ok'}", "  archiveId: 15-1, total WAL checked: 9"]
    for label in labels:
        if label in invalid:
            lines.append(f"  backup: {label}, status: invalid, total files checked: 10, total valid files: 9")
            lines.append("    missing: 1, checksum invalid: 0, size invalid: 0, other: 0")
        else:
            lines.append(f"  backup: {label}, status: valid, total files checked: 10, total valid files: 10")
    return "\n".join(lines) + "\n"


class StandIn:
    """What restore_newest_valid asks of the tool; its restore records the call and fails (so that no
    server is started: the choice is what is tested here)."""

    clock_offset = None

    def __init__(self, backups: list[dict], invalid: set[str]) -> None:
        self.listed = backups
        self.invalid = invalid
        self.restored: list[dict] = []
        self.verified = 0

    def backups(self, repo):
        return list(self.listed)

    def verify(self, repo):
        self.verified += 1
        return VerifyReport.parse(verify_text(self.invalid, [b["label"] for b in self.listed]))

    def _own(self, path):
        pass

    def restore(self, target_dir, target=None, target_type=None, repo=None, backup_set=None):
        self.restored.append({"dir": Path(target_dir), "set": backup_set, "target": target, "repo": repo})
        raise PgBackRestError("stand-in: no restore")


CHAIN = [
    backup("20261208-010000F", 0, "full"),
    backup("20261208-010000F_20261208-020000D", 1, "diff", ["20261208-010000F"]),
    backup("20261208-030000F", 2, "full"),
    backup("20261208-030000F_20261208-040000I", 3, "incr", ["20261208-030000F"]),
]


def test_an_invalid_full_takes_its_incr_with_it_and_the_diff_before_is_restored(tmp_path):
    tool = StandIn(CHAIN, invalid={"20261208-030000F"})
    outcome = restore_newest_valid(tool, tmp_path, repo=1)
    assert [(c.label, c.refused is None) for c in outcome.candidates] == [
        ("20261208-030000F_20261208-040000I", False),
        ("20261208-030000F", False),
        ("20261208-010000F_20261208-020000D", True),
    ]
    incr, full, _ = outcome.candidates
    assert incr.refused == f"depends on 20261208-030000F, which verify refused ({full.refused})"
    assert full.refused == (
        "pgbackrest verify: backup: 20261208-030000F, status: invalid, total files checked: 10, "
        "total valid files: 9; missing: 1, checksum invalid: 0, size invalid: 0, other: 0"
    )
    assert [r["set"] for r in tool.restored] == ["20261208-010000F_20261208-020000D"]
    assert outcome.restored is not None and outcome.restored.label == "20261208-010000F_20261208-020000D"
    assert outcome.error == "the restore of 20261208-010000F_20261208-020000D failed: stand-in: no restore"
    assert list(tmp_path.iterdir()) == []  # the failed restore's folder is removed


def test_the_newest_is_restored_when_verify_finds_nothing(tmp_path):
    tool = StandIn(CHAIN, invalid=set())
    outcome = restore_newest_valid(tool, tmp_path, repo=2)
    assert [c.label for c in outcome.candidates] == ["20261208-030000F_20261208-040000I"]
    assert tool.restored[0]["set"] == "20261208-030000F_20261208-040000I" and tool.restored[0]["repo"] == 2
    assert outcome.verified and tool.verified == 1


def test_without_verify_the_newest_is_restored_as_it_is(tmp_path):
    tool = StandIn(CHAIN, invalid={"20261208-030000F_20261208-040000I"})
    outcome = restore_newest_valid(tool, tmp_path, repo=1, verify=False)
    assert tool.verified == 0 and not outcome.verified and outcome.timings.verify_s is None
    assert tool.restored[0]["set"] == "20261208-030000F_20261208-040000I"


def test_a_time_target_skips_the_backups_that_stopped_after_it(tmp_path):
    tool = StandIn(CHAIN, invalid=set())
    outcome = restore_newest_valid(tool, tmp_path, repo=1, target="2026-12-08 02:30:00+00", target_type="time")
    assert [c.refused.split(" (")[0] if c.refused else None for c in outcome.candidates] == [
        "stopped after the restore point",
        "stopped after the restore point",
        None,
    ]
    assert tool.restored[0]["set"] == "20261208-010000F_20261208-020000D"
    assert tool.restored[0]["target"] == "2026-12-08 02:30:00+00"


def test_nothing_to_restore_is_said_and_nothing_restored(tmp_path):
    empty = StandIn([], invalid=set())
    outcome = restore_newest_valid(empty, tmp_path, repo=1)
    assert outcome.error == "repo1: no backup in the repository" and outcome.restored is None
    every = StandIn(CHAIN[:1], invalid={"20261208-010000F"})
    outcome = restore_newest_valid(every, tmp_path, repo=1)
    assert outcome.error == "repo1: no backup left to restore: every one was refused"
    assert empty.restored == every.restored == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target, target_type", [("2026-12-08 02:30:00+00", None), (None, "time"), ("x", "lsn")])
def test_a_target_needs_its_type(tmp_path, target, target_type):
    with pytest.raises(RestoreInvalid, match="a target needs its type, one of time, name"):
        restore_newest_valid(StandIn(CHAIN, set()), tmp_path, repo=1, target=target, target_type=target_type)
