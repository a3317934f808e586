"""Lab capabilities are typed protocols: each capability name comes from exactly one protocol,
each member is declared on one protocol only, every method the drill calls on a lab is declared,
lab.capability(P) returns the lab or names what it lacks, and nothing in harness/ probes a lab
with hasattr/getattr."""

from __future__ import annotations

import ast
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
)
from harness.lab.containers import ContainerLab
from harness.lab.embedded import EmbeddedLab
from harness.lab.external import ExternalConfig, ExternalLab

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


def test_every_method_the_drill_calls_on_a_lab_is_declared_on_the_lab_or_a_protocol():
    declared = set(dir(Lab)) | set(Lab.__annotations__) | {m for proto in PROTOCOLS for m in members(proto)}
    undeclared: dict[str, list[str]] = {}
    for path in sorted(HARNESS.rglob("*.py")):
        where = str(path.relative_to(ROOT))
        if where.startswith("harness/lab/") or where in CONCRETE:
            continue
        for name in sorted(_calls_on_a_lab(path) - declared):
            undeclared.setdefault(name, []).append(where)
    assert undeclared == {}


def test_capability_returns_the_lab_as_the_protocol_asked():
    lab = EmbeddedLab()
    assert lab.capability(ApiTier) is lab and lab.capability(Backups) is lab
    containers = ContainerLab()
    assert containers.capability(Containers) is containers


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
    assert lab.capability(DatabaseNodes) is lab
    assert isinstance(lab, PlanConfigured) and lab.blast_radius == ("database-primary",)
    assert not isinstance(EmbeddedLab(), PlanConfigured)


@pytest.mark.parametrize(
    "make", [EmbeddedLab, ContainerLab, external_lab], ids=["embedded", "testcontainers", "external"]
)
def test_each_provider_implements_every_protocol_whose_capability_it_reports(make):
    lab = make()
    for name in lab.capabilities():
        assert isinstance(lab, PROTOCOL_OF[name]), (lab.provider, name)


def test_only_the_labs_whose_failover_manager_posts_its_events_say_so():
    assert isinstance(EmbeddedLab(), FailoverManagerEvents) and isinstance(ContainerLab(), FailoverManagerEvents)
    assert not isinstance(external_lab(), FailoverManagerEvents)


def test_a_part_asked_for_before_up_names_it():
    with pytest.raises(LabNotUp, match="the database cluster"):
        EmbeddedLab().database_primary()
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
