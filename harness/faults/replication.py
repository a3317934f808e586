"""The replication cut: a partition fault on the replication link to one database replica, made and
healed here, above the lab. The lab only names the link (DatabaseNodes.replication_proxy_name) and
says whether it can be cut (capability replication_cut); the lab layer never imports harness.faults.

Drills inject the cut through the journal (FaultSpec("partition", link)); these two are for a test
that holds a lab itself (tests/integration: the failback refusal, the provider contract)."""

from __future__ import annotations

from ..errors import LabStartError
from ..lab.base import Lab
from ..lab.capabilities import DatabaseNodes, PlanConfigured
from ..model import FaultSpec
from .base import Fault, FaultContext, build

CUT_TIME_LIMIT_S = 600  # the fault server removes the cut by itself after this long should the harness die


def partition_replication(lab: Lab, replica: str) -> Fault:
    """Cut the replication link to `replica` and return the fault (heal it with heal_replication).
    Refused before anything is injected: in a dry run (PermissionError naming the interlock), and
    when the lab cannot cut replication (LabStartError naming the plan keys that would let it)."""
    if lab.dry_run:
        raise PermissionError(f"dry run: fault refused ({lab.interlock()})")
    if "replication_cut" not in lab.capabilities():
        configured = lab.find(PlanConfigured)
        keys = configured.missing_keys("replication_cut") if configured is not None else []
        raise LabStartError(
            f"the plan has no {' and '.join(keys)} to cut"
            if keys
            else f"the {lab.provider or type(lab).__name__} lab cannot cut a replication link "
            f"(capability replication_cut)"
        )
    fault = build(
        FaultSpec(
            "partition", lab.capability(DatabaseNodes).replication_proxy_name(replica), time_limit_s=CUT_TIME_LIMIT_S
        )
    )
    fault.inject(_context(lab))
    return fault


def heal_replication(lab: Lab, cut: Fault) -> None:
    """Heal a cut partition_replication made (safe to call twice, as every heal)."""
    cut.heal(_context(lab))


def _context(lab: Lab) -> FaultContext:
    return FaultContext(toxiproxy=lab.toxiproxy, lab=lab)
