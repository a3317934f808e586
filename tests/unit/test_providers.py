"""The lab providers in one registry (harness.lab.providers): plan parsing, the drill runner's
make_lab and the chaos runner's lab all read PROVIDERS, so a provider is one entry there."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.chaos import cli as chaos_cli
from harness.errors import PlanError
from harness.lab import providers
from harness.lab.containers import ContainerLab
from harness.lab.embedded import EmbeddedLab
from harness.lab.external import ExternalLab
from harness.lab.providers import PROVIDERS, LabSpec, Provider, external_spec, make_lab, parse_lab
from harness.plan import LAB_PROVIDERS, load_plan
from harness.runner import make_lab as runner_make_lab

ROOT = Path(__file__).resolve().parents[2]
PLAN = """\
drill: quarterly-database
title: Database drill
ha_domain: database
lab: {lab}
scenarios: [scenarios/database/primary_failover.feature]
"""
TARGET = {
    "provider": "external",
    "api_url": "https://cp.staging.example",
    "toxiproxy_url": "http://toxi:8474",
    "database": {
        "failover_target": "pg-b",
        "replication_proxy": "repl-pg-b",
        "nodes": {"pg-a": {"dsn": "host=pg-a"}, "pg-b": {"dsn": "host=pg-b"}},
    },
    "blast_radius": ["database-primary"],
}


def fail(key: str, message: str) -> PlanError:
    return PlanError(f"key '{key}': {message}")


def plan_of(tmp_path: Path, lab: str, more: str = ""):
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN.format(lab=lab) + more)
    return load_plan(path, ROOT)


def test_each_provider_reads_its_keys_and_makes_its_lab_not_started():
    embedded = make_lab(parse_lab({"provider": "embedded", "replication": "async"}, fail))
    assert type(embedded) is EmbeddedLab and embedded.replication == "async"
    spec = parse_lab({"provider": "testcontainers", "images": {"postgres": "postgres:16"}}, fail)
    assert spec.images == {"postgres": "postgres:16"} and type(make_lab(spec)) is ContainerLab
    spec = parse_lab(TARGET, fail)
    assert spec.external.api_url == "https://cp.staging.example"
    assert type(make_lab(spec, confirmed=True)) is ExternalLab
    assert list(PROVIDERS) == ["embedded", "testcontainers", "external"]
    assert LAB_PROVIDERS == ("embedded", "testcontainers")


@pytest.mark.parametrize(
    "lab, says",
    [
        ({"provider": "nosuch"}, "key 'lab.provider': must be one of embedded, testcontainers, external, got 'nosuch'"),
        ({"provider": ["embedded"]}, "key 'lab.provider': must be one of embedded, testcontainers, external, got "),
        (
            {"provider": "embedded", "images": {"postgres": "p"}},
            "key 'lab.images': a mapping of part to image, for provider testcontainers only",
        ),
        ({"provider": "embedded", "colour": 1}, "key 'lab.colour': unknown key; known: images, provider, replication"),
        ({"provider": "external"}, "key 'lab.api_url'"),
    ],
)
def test_a_bad_lab_is_refused_naming_the_key_and_the_choices(lab, says):
    with pytest.raises(PlanError) as raised:
        parse_lab(lab, fail)
    assert str(raised.value).startswith(says)


def test_a_provider_needs_a_parser_and_a_factory():
    with pytest.raises(TypeError, match="'factory'"):
        Provider(lambda value, fail: {})  # type: ignore[call-arg]


def test_which_providers_are_labs_is_said_once_in_environments():
    from harness import environments

    assert providers.LABS == LAB_PROVIDERS == tuple(environments.LABS) == ("embedded", "testcontainers")
    assert set(environments.LAB_PROVIDERS) == {*environments.LABS, environments.RUNNING}
    assert providers.labs(PROVIDERS, {"testcontainers": "t", "embedded": "e"}) == ("embedded", "testcontainers")
    assert providers.labs(PROVIDERS, {}) == ()
    with pytest.raises(TypeError, match="harness.environments.LABS names rack, which is no provider"):
        providers.labs(PROVIDERS, {"embedded": "embedded lab", "rack": "rack lab"})


def test_a_provider_added_to_the_registry_is_what_the_plan_the_runner_and_chaos_use(tmp_path, monkeypatch):
    made: list[tuple[LabSpec, bool]] = []
    sentinel = object()

    def factory(spec: LabSpec, confirmed: bool):
        made.append((spec, confirmed))
        return sentinel

    monkeypatch.setitem(PROVIDERS, "rack", Provider(lambda value, fail: {"images": None}, factory))
    plan = plan_of(tmp_path, "{provider: rack, replication: async}", "environment: {class: lab, name: rack-1}\n")
    assert plan.lab == LabSpec("rack", "async")
    assert runner_make_lab(plan, confirmed=True) is sentinel and made[-1] == (LabSpec("rack", "async"), True)
    with pytest.raises(PlanError, match="must be one of embedded, testcontainers, external, rack, got 'nosuch'"):
        plan_of(tmp_path, "nosuch")

    monkeypatch.setitem(PROVIDERS, "embedded", Provider(lambda value, fail: {"images": None}, factory))
    chaos_plan = SimpleNamespace(lab="embedded", path=tmp_path / "chaos.yaml", blast_radius=("db",), chaos="c")
    assert chaos_cli._open_lab(chaos_plan, None) == (sentinel, True) and made[-1] == (LabSpec("embedded"), False)


def test_a_chaos_plans_target_is_read_by_the_external_provider(monkeypatch):
    seen: list[dict] = []
    external = PROVIDERS["external"]

    def parse(value, fail):
        seen.append(dict(value))
        return external.parse_config(value, fail)

    monkeypatch.setitem(PROVIDERS, "external", Provider(parse, external.factory))
    chaos_plan = SimpleNamespace(
        lab=dict(TARGET), path=Path("chaos.yaml"), blast_radius=("database-primary",), chaos="c"
    )
    lab, owned = chaos_cli._open_lab(chaos_plan, "c")
    assert type(lab) is ExternalLab and owned is False and seen[-1]["blast_radius"] == ["database-primary"]
    assert external_spec(TARGET, fail).replication == "sync" and providers.make_lab is make_lab
