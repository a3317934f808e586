"""A fault acts on a typed lab (issue 25): FaultContext.lab is the Lab, and a fault asks for the
capability protocol it acts through (Fault.uses): no lab is a FaultError naming the fault, a lab
without the protocol's members a CapabilityMissing naming the protocol, never an AttributeError."""

from __future__ import annotations

import typing

import pytest

from harness.faults import FaultContext, FaultError, build
from harness.lab.base import Lab
from harness.lab.capabilities import Backups, CapabilityMissing
from harness.model import FaultSpec

SPECS = [
    FaultSpec("backup_halt", "backup-service"),
    FaultSpec("database_loss", "primary-region"),
    FaultSpec("database_primary_kill", "database-primary"),
    FaultSpec("api_instance_kill", "az1"),
    FaultSpec("connector_worker_kill", "intune"),
    FaultSpec("platform_degrade", "intune"),
    FaultSpec("platform_down", "intune"),
    FaultSpec("http_error", "s3"),
    FaultSpec("event_store_block", "database-primary"),
]


def test_the_context_names_the_lab_type_not_any():
    hints = typing.get_type_hints(FaultContext, localns={"Lab": Lab})  # Lab is imported for type checking only
    assert hints["lab"] == Lab | None


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_a_fault_without_a_lab_says_it_needs_one(spec):
    with pytest.raises(FaultError, match=f"fault '{spec.type}' needs a lab"):
        build(spec).inject(FaultContext())


class Unrelated:
    """Something that is no lab at all: it has none of any capability's members."""

    provider = "unrelated"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_a_lab_without_the_protocol_is_refused_naming_it(spec):
    with pytest.raises(
        CapabilityMissing,
        match=f"fault '{spec.type}' acts through [A-Za-z]+, which the lab "
        r"\(Unrelated\) lacks",
    ):
        build(spec).inject(FaultContext(lab=Unrelated()))  # type: ignore[arg-type]  # deliberately no lab


class BackupOnly:
    """Implements Backups and nothing else: the backup faults act through it alone."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def backup_service(self) -> BackupOnly:
        return self

    def halt(self) -> None:
        self.calls.append("halt")

    def resume(self) -> None:
        self.calls.append("resume")

    def lose_database(self) -> list[str]:
        self.calls.append("lose")
        return ["pg-a", "pg-b"]

    def database_lost(self) -> bool:
        return False

    def database_primary_lost(self) -> bool:
        raise AssertionError("not asked once database_lost() says no")

    def restore_database(self, bucket=None, verify=True, emit=None, validate=None):
        raise AssertionError("not asked once database_lost() says no")

    def rebuild_database_replicas(self) -> None:
        raise AssertionError("not asked once database_lost() says no")


def test_a_fault_acts_through_the_protocol_it_uses_and_no_more():
    lab = BackupOnly()
    assert isinstance(lab, Backups) and not isinstance(lab, Lab)
    ctx = FaultContext(lab=lab)  # type: ignore[arg-type]  # the protocol the faults use, not a whole Lab
    halt = build(FaultSpec("backup_halt", "backup-service"))
    halt.inject(ctx)
    halt.heal(ctx)
    loss = build(FaultSpec("database_loss", "primary-region"))
    loss.inject(ctx)
    loss.heal(ctx)
    assert lab.calls == ["halt", "resume", "lose"] and "pg-a, pg-b" in loss.describe()
    with pytest.raises(CapabilityMissing, match="DatabaseNodes"):  # another protocol: refused, named
        build(FaultSpec("database_primary_kill", "database-primary")).inject(ctx)


def test_the_context_names_the_toxiproxy_control_not_any():
    from harness.toxiproxy.client import ToxiproxyControl

    assert typing.get_type_hints(FaultContext, localns={"Lab": Lab})["toxiproxy"] == ToxiproxyControl | None


@pytest.mark.parametrize(
    "spec",
    [
        FaultSpec("latency", "pg-b", {"latency_ms": 100}),
        FaultSpec("partition", "pg-b"),
        FaultSpec("proxy_down", "pg-b"),
    ],
    ids=lambda s: s.type,
)
def test_a_link_fault_without_toxiproxy_says_it_needs_it(spec):
    with pytest.raises(FaultError, match=f"fault '{spec.type}' needs the Toxiproxy control of its links"):
        build(spec).inject(FaultContext())
    with pytest.raises(FaultError, match="needs the Toxiproxy control"):
        build(spec).heal(FaultContext())
