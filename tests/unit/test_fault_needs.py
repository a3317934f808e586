"""Each fault type declares what it needs of a lab (Fault.NEEDS), once: the chaos runner's check
before anything is injected reads it, and a type that declares nothing is refused when registered."""

from __future__ import annotations

from typing import ClassVar

import pytest

from harness.chaos import runner
from harness.chaos.plan import Step
from harness.faults import REGISTRY
from harness.faults.base import Fault, FaultContext, register
from harness.lab.base import CAPABILITIES
from harness.model import FaultSpec


class NoLab:
    """A lab that can do nothing but say so (pure logic: capability() asks only these two)."""

    provider = "embedded"

    def __init__(self, have: frozenset[str] = frozenset()):
        self.have = have

    def capabilities(self) -> frozenset[str]:
        return self.have


def step(fault_type: str, target: str) -> Step:
    return Step("f1", FaultSpec(fault_type, target), 1.0)


def test_every_fault_type_declares_what_it_needs_in_the_labs_capability_names():
    for name, cls in REGISTRY.items():
        assert isinstance(cls.NEEDS, frozenset) and cls.NEEDS <= set(CAPABILITIES), name
    assert REGISTRY["backup_halt"].NEEDS == {"backups"}
    assert REGISTRY["database_primary_kill"].NEEDS == {"database_kill"}
    assert REGISTRY["latency"].NEEDS == frozenset() and REGISTRY["container_kill"].NEEDS == frozenset()


def test_a_fault_type_without_needs_is_refused_when_registered():
    class Unsaid(Fault):
        TYPE = "unsaid_needs_for_test"

        def inject(self, ctx: FaultContext) -> None: ...
        def heal(self, ctx: FaultContext) -> None: ...

    with pytest.raises(TypeError, match="'unsaid_needs_for_test' .* declares no NEEDS"):
        register(Unsaid)
    assert "unsaid_needs_for_test" not in REGISTRY


def test_a_fault_types_needs_must_be_a_set_of_names():
    class Misspelt(Fault):
        TYPE = "misspelt_needs_for_test"
        NEEDS: ClassVar = "backups"  # a string, not a set of names

    with pytest.raises(TypeError, match="NEEDS must be a frozenset of capability names"):
        register(Misspelt)
    assert "misspelt_needs_for_test" not in REGISTRY


def test_a_family_base_may_declare_needs_for_its_types():
    class Family(Fault):
        NEEDS = frozenset({"clock"})

    class Member(Family):
        TYPE = "family_member_for_test"

    try:
        assert register(Member) is Member and REGISTRY["family_member_for_test"].NEEDS == {"clock"}
    finally:
        REGISTRY.pop("family_member_for_test", None)


def test_the_chaos_runner_refuses_a_fault_by_what_its_type_needs(monkeypatch):
    assert not hasattr(runner, "FAULT_NEEDS"), "a second copy of the fault types' needs"
    problem = runner.capability(step("backup_halt", "backup-service"), NoLab())
    assert problem == f"fault f1: the embedded lab cannot {CAPABILITIES['backups']} (capability backups)"
    assert runner.capability(step("backup_halt", "backup-service"), NoLab(frozenset({"backups"}))) is None
    monkeypatch.setattr(REGISTRY["backup_halt"], "NEEDS", frozenset({"clock"}))
    problem = runner.capability(step("backup_halt", "backup-service"), NoLab(frozenset({"backups"})))
    assert problem == f"fault f1: the embedded lab cannot {CAPABILITIES['clock']} (capability clock)"
