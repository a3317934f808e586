"""Lab capabilities are typed protocols: each capability name comes from exactly one protocol,
each member is declared on one protocol only, every method the drill calls on a lab is declared
on Lab (a capability is asked of its part), a provider is composed of part objects whose
protocols are its capabilities (no capability member on a lab class), lab.capability(P) returns
the part or names what the lab lacks, and nothing in harness/ probes a lab with hasattr/getattr."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from harness.errors import PlanError
from harness.lab import capabilities as caps
from harness.lab.base import CAPABILITIES, CapabilityMissing, Lab, LabNotUp
from harness.lab.capabilities import (
    GIVES,
    PROTOCOL_OF,
    ApiTier,
    Backups,
    Containers,
    DatabaseNodes,
    EvidenceStore,
    FailoverManagerEvents,
    PlanConfigured,
    Siem,
)
from harness.lab.containers import ContainerLab
from harness.lab.embedded import EmbeddedLab
from harness.lab.external import ExternalConfig, ExternalLab
from harness.lab.parts import SiemFile, TopologyLab

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "harness"
PROTOCOLS = [
    obj
    for obj in vars(caps).values()
    if isinstance(obj, type) and getattr(obj, "_is_protocol", False) and obj.__module__ == caps.__name__
]


def members(proto: type) -> set[str]:
    return {name for name in vars(proto) if not name.startswith("_")} | set(getattr(proto, "__annotations__", {}))


def external_lab() -> ExternalLab:
    data = {
        "provider": "external",
        "api_url": "https://cp.staging.example",
        "toxiproxy_url": "http://toxi:8474",
        "database": {
            "failover_target": "pg-b",
            "replication_proxy": "repl-pg-b",
            "nodes": {"pg-a": {"dsn": "host=pg-a"}, "pg-b": {"dsn": "host=pg-b"}},
        },
        "actions": {"kill_database_primary": {"http": {"url": "https://ops.example/kill", "token_env": "T"}}},
        "allow_destructive": True,
        "blast_radius": ["database-primary"],
    }
    config = ExternalConfig.parse(data, lambda key, message: PlanError(f"key '{key}': {message}"))
    return ExternalLab(config, confirmed=True)


def test_the_capability_names_are_derived_from_the_protocols_each_from_exactly_one():
    named = [name for names in GIVES.values() for name in names]
    assert len(named) == len(set(named))
    assert set(CAPABILITIES) == set(named) == set(PROTOCOL_OF)
    assert all(PROTOCOL_OF[name] in PROTOCOLS for name in named)


def test_no_member_is_declared_on_two_protocols():
    seen: dict[str, str] = {}
    for proto in PROTOCOLS:
        for name in members(proto):
            assert name not in seen, f"{name} is declared on {seen[name]} and {proto.__name__}"
            seen[name] = proto.__name__


def _calls_on_a_lab(path: Path) -> set[str]:
    """Attributes the code reads of a lab: lab.X, scn.lab.X, ctx.lab.X, self.lab.X (not plan.lab.X:
    the plan's lab spec)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            value = node.value
            if (isinstance(value, ast.Name) and value.id == "lab") or (
                isinstance(value, ast.Attribute)
                and value.attr == "lab"
                and not (isinstance(value.value, ast.Name) and value.value.id == "plan")
            ):
                found.add(node.attr)
    return found


# modules that hold a concrete provider, or a `lab` that is not a Lab (a plan's lab mapping)
CONCRETE = {"harness/cli.py", "harness/plan.py", "harness/chaos/plan.py"}


def test_every_method_the_drill_calls_on_a_lab_is_declared_on_the_lab():
    declared = set(dir(Lab)) | set(Lab.__annotations__)  # a capability's members: on its part, not the lab
    undeclared: dict[str, list[str]] = {}
    for path in sorted(HARNESS.rglob("*.py")):
        where = str(path.relative_to(ROOT))
        if where.startswith("harness/lab/") or where in CONCRETE:
            continue
        for name in sorted(_calls_on_a_lab(path) - declared):
            undeclared.setdefault(name, []).append(where)
    assert undeclared == {}


def test_capability_returns_the_part_that_implements_the_protocol_asked():
    lab = EmbeddedLab()
    for proto in (ApiTier, Backups, DatabaseNodes):
        part = lab.capability(proto)
        assert part in lab.parts() and isinstance(part, proto) and part is not lab
    containers = ContainerLab()
    assert containers.capability(Containers) in containers.parts()
    assert containers.find(Backups) is None and lab.find(Containers) is None


@pytest.mark.parametrize(
    "make, proto, words",
    [
        (ContainerLab, Backups, ("testcontainers", "Backups", "capability backups")),
        (EmbeddedLab, Containers, ("embedded", "Containers")),
        (external_lab, ApiTier, ("external", "ApiTier", "capability api_instances")),
        (external_lab, EvidenceStore, ("external", "evidence_read", "evidence_http_errors")),
    ],
)
def test_a_capability_the_lab_lacks_is_refused_naming_the_provider_and_the_capability(make, proto, words):
    with pytest.raises(CapabilityMissing) as caught:
        make().capability(proto)
    assert all(word in str(caught.value) for word in words), str(caught.value)
    assert isinstance(caught.value, NotImplementedError)  # what the drill already treats as "cannot"


def test_the_external_lab_has_what_its_plan_gives():
    lab = external_lab()
    assert lab.capability(DatabaseNodes) is lab.database
    configured = lab.capability(PlanConfigured)
    assert configured.blast_radius == ("database-primary",)
    assert EmbeddedLab().find(PlanConfigured) is None


@pytest.mark.parametrize(
    "make", [EmbeddedLab, ContainerLab, external_lab], ids=["embedded", "testcontainers", "external"]
)
def test_each_provider_implements_every_protocol_whose_capability_it_reports(make):
    lab = make()
    for name in lab.capabilities():
        assert isinstance(lab.capability(PROTOCOL_OF[name]), PROTOCOL_OF[name]), (lab.provider, name)


def test_only_the_labs_whose_failover_manager_posts_its_events_say_so():
    assert EmbeddedLab().find(FailoverManagerEvents) and ContainerLab().find(FailoverManagerEvents)
    assert external_lab().find(FailoverManagerEvents) is None


def test_a_part_asked_for_before_up_names_it():
    with pytest.raises(LabNotUp, match="the database cluster"):
        EmbeddedLab().capability(DatabaseNodes).database_primary()
    with pytest.raises(LabNotUp, match="failover observer"):
        EmbeddedLab().observer.state  # noqa: B018 - the read is the point


PROBE = re.compile(r"\b(hasattr|getattr)\(\s*(self\.|scn\.|ctx\.|run\.)?lab\b|\b(hasattr|getattr)\(\s*self\.lab\b")


def test_nothing_in_the_harness_probes_a_lab():
    probes = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in HARNESS.rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if PROBE.search(line)
    ]
    assert probes == []


# -- a provider is composed of part objects (issue 25): no capability member on a lab class ------
LAB_CLASSES = [Lab, TopologyLab, EmbeddedLab, ContainerLab, ExternalLab]


def test_no_member_of_a_capability_protocol_is_an_attribute_of_a_lab_class():
    protocol_members = {m for proto in PROTOCOLS for m in members(proto)}
    on_a_lab = sorted(f"{cls.__name__}.{m}" for cls in LAB_CLASSES for m in protocol_members if hasattr(cls, m))
    assert on_a_lab == []


def test_the_lab_base_has_no_not_implemented_default():
    assert "NotImplementedError" not in inspect.getsource(Lab)


@pytest.mark.parametrize(
    "make, expected",
    [
        (EmbeddedLab, set(CAPABILITIES)),
        (ContainerLab, set(CAPABILITIES) - {"backups"}),
        (external_lab, {"database_kill", "replication_cut"}),  # what its plan configures
    ],
    ids=["embedded", "testcontainers", "external"],
)
def test_a_providers_capabilities_are_the_protocols_its_parts_implement(make, expected):
    lab = make()
    implemented = {proto for proto in GIVES for part in lab.parts() if isinstance(part, proto)}
    reported = {PROTOCOL_OF[name] for name in lab.capabilities()}
    assert lab.capabilities() == expected
    if lab.provider == "external":  # narrowed to what the plan configures
        assert reported <= implemented and Backups not in implemented
    else:
        assert reported == implemented
    assert all(part is not lab for part in lab.parts())


class OnePart(Lab):
    """A provider of one part (its SIEM sink): it reports that protocol's names and no other."""

    provider = "one-part"
    up = down = endpoints = processes = steady_state_checks = set_replication = lambda self, *a: None

    def __init__(self) -> None:
        self.siem = SiemFile(lambda: None)

    def parts(self) -> tuple[object, ...]:
        return (self.siem,)


def test_capabilities_derive_from_the_parts_and_a_missing_part_is_named():
    lab = OnePart()
    assert lab.capabilities() == {"siem"} and lab.capability(Siem) is lab.siem
    with pytest.raises(CapabilityMissing, match="the one-part lab lacks ApiTier: capability api_instances"):
        lab.capability(ApiTier)
    with pytest.raises(CapabilityMissing, match=r"the one-part lab lacks Containers \(Each part in a container"):
        lab.part(Containers)
    assert lab.find(DatabaseNodes) is None


def test_part_answers_what_the_lab_has_whatever_its_plan_reports():
    lab = external_lab()  # its plan gives no api_instances: the part is there, the capability is not
    assert lab.part(ApiTier) is lab.api
    with pytest.raises(CapabilityMissing, match="capability api_instances"):
        lab.capability(ApiTier)
