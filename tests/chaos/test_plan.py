"""Chaos plans: faults as data checked by the fault registry before anything runs, and the
seeded game day (the same seed gives the same sequence)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.chaos.plan import TIME_LIMIT_MARGIN_S, draw, load_chaos_plan, parse_chaos_plan
from harness.errors import PlanError

ROOT = Path(__file__).resolve().parents[2]
BASE = {
    "chaos": "t",
    "title": "t",
    "lab": "running",
    "blast_radius": ["db", "s3", "az1"],
    "faults": [{"type": "latency", "target": "db", "params": {"latency_ms": 200}, "duration": "5s"}],
}
GAME = {
    "gap": ["1s", "3s"],
    "faults": {
        "latency": {
            "type": "latency",
            "targets": ["db", "s3"],
            "params": {"latency_ms": [50, 300]},
            "duration": [2, 6],
        },
        "kill": {"type": "api_instance_kill", "targets": ["az1"], "duration": ["2s", "4s"]},
    },
}


def parse(**changes):
    return parse_chaos_plan({**BASE, **changes}, Path("chaos.yaml"))


def test_the_example_plans_load():
    for path in sorted((ROOT / "drills" / "chaos").glob("*.yaml")):
        plan = load_chaos_plan(path)
        assert plan.steps or plan.game_day, path


def test_a_fixed_fault_gets_a_server_side_time_limit_past_its_duration_and_a_kill_none():
    plan = parse(
        faults=[
            {"type": "latency", "target": "db", "params": {"latency_ms": 200}, "duration": "500ms"},
            {"type": "api_instance_kill", "target": "az1", "duration": 2, "after": "1m"},
        ]
    )
    latency, kill = plan.steps
    assert latency.duration == 0.5 and latency.spec.time_limit_s == 0.5 + TIME_LIMIT_MARGIN_S
    assert kill.spec.time_limit_s is None and kill.after == 60


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"faults": [{"type": "latancy", "target": "db", "duration": 1}]},
            r"faults\[0\]'.*unknown fault type 'latancy'",
        ),
        ({"faults": [{"type": "latency", "target": "db", "duration": 1}]}, r"missing required parameter 'latency_ms'"),
        (
            {"faults": [{"type": "latency", "target": "db", "params": {"latency_ms": "x"}, "duration": 1}]},
            r"'latency_ms' must be int",
        ),
        (
            {"faults": [{"type": "latency", "target": "pg-a", "params": {"latency_ms": 1}, "duration": 1}]},
            r"faults\[0\].target'.*outside the blast radius",
        ),
        (
            {"faults": [{"type": "latency", "target": "db", "params": {"latency_ms": 1}, "duration": "soon"}]},
            r"faults\[0\].duration'.*duration like 30s",
        ),
        (
            {"faults": [{"type": "latency", "target": "db", "params": {"latency_ms": 1}, "duration": 0}]},
            r"faults\[0\].duration'.*more than 0",
        ),
        ({"faults": []}, r"key 'faults'.*needs faults, or a game_day"),
        ({"blast_radius": []}, r"key 'blast_radius'"),
        ({"lab": "staging"}, r"key 'lab'"),
        ({"chaos": "Bad Id"}, r"key 'chaos'"),
        ({"stop_conditions": {"probe_failing": 3}}, r"stop_conditions.probe_failing'.*unknown"),
        ({"workload": "reads"}, r"key 'workload'"),
        (
            {
                "game_day": {
                    "faults": {"x": {"type": "latency", "targets": ["s3-replica"], "params": {"latency_ms": 1}}}
                }
            },
            r"game_day.faults.x.target'.*outside the blast radius",
        ),
        (
            {"game_day": {"faults": {"x": {"type": "latency", "targets": ["db"], "params": {"latency_ms": [-5, 10]}}}}},
            r"game_day.faults.x'.*must be >= 0",
        ),
    ],
)
def test_a_bad_plan_is_refused_with_the_key_and_the_fix(change, message):
    with pytest.raises(PlanError, match=message):
        parse(**change)


def test_a_plan_that_is_not_yaml_or_not_there_says_so(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("chaos: [unclosed\n")
    with pytest.raises(PlanError, match="not valid YAML"):
        load_chaos_plan(bad)
    with pytest.raises(PlanError, match="no such chaos plan"):
        load_chaos_plan(tmp_path / "missing.yaml")


def test_the_same_seed_draws_the_same_game_day_and_another_seed_another():
    plan = parse(game_day=GAME)
    one, again, other = draw(plan, 7, 120), draw(plan, 7, 120), draw(plan, 8, 120)
    assert [s.to_json() for s in one] == [s.to_json() for s in again]
    assert [s.to_json() for s in one] != [s.to_json() for s in other]
    assert sum(s.after + s.duration for s in one) <= 120
    assert {s.spec.type for s in one} == {"latency", "api_instance_kill"}
    for s in one:
        assert 1 <= s.after <= 3 and 2 <= s.duration <= 6
        if s.spec.type == "latency":
            assert 50 <= s.spec.params["latency_ms"] <= 300 and s.spec.target in ("db", "s3")
            assert s.spec.time_limit_s == s.duration + TIME_LIMIT_MARGIN_S


def test_a_game_day_draws_only_the_named_faults_of_the_allowed_set():
    plan = parse(game_day=GAME)
    assert {s.spec.type for s in draw(plan, 3, 60, ["latency"])} == {"latency"}
    with pytest.raises(PlanError, match="--faults partition: not in .* allowed set"):
        draw(plan, 3, 60, ["partition"])
    with pytest.raises(PlanError, match="too short"):
        draw(plan, 3, 1)
    with pytest.raises(PlanError, match="game_day"):
        draw(parse(), 3, 60)


def test_the_game_day_example_is_valid_yaml_with_latency_partition_and_kill():
    data = yaml.safe_load((ROOT / "drills" / "chaos" / "game-day.yaml").read_text())
    assert set(data["game_day"]["faults"]) == {"latency", "partition", "kill"}


def test_a_chaos_run_is_judged_on_rto_and_lost_writes_unless_the_plan_asks_for_more():
    assert parse().targets == {"rto_seconds": 28800.0, "lost_writes": 0.0}
    assert parse(targets={"rto_seconds": 30, "availability": 0.9999}).targets == {
        "rto_seconds": 30.0,
        "lost_writes": 0.0,
        "availability": 0.9999,
    }


TINY = {"tiny": {"type": "latency", "targets": ["db"], "params": {"latency_ms": 1}, "duration": ["100ms", "100ms"]}}


@pytest.mark.parametrize(
    "game_day, key",
    [
        ({"gap": [0, 0], "faults": TINY}, "game_day.gap"),
        ({"gap": ["50ms", "1s"], "faults": TINY}, "game_day.gap"),
        (
            {"gap": ["1s", "2s"], "faults": {"tiny": {**TINY["tiny"], "duration": ["10ms", "10ms"]}}},
            "game_day.faults.tiny.duration",
        ),
        (
            {"gap": ["1s", "2s"], "faults": {"tiny": {**TINY["tiny"], "duration": 0.05}}},
            "game_day.faults.tiny.duration",
        ),
    ],
)
def test_a_game_day_gap_or_fault_duration_under_100_ms_is_refused(game_day, key):
    """gap [0, 0] with 10 ms faults used to pass validation, then draw() never ended (each fault
    rounded to 0 s) and grew ~35 MB/s."""
    with pytest.raises(PlanError, match=rf"key '{key}': must be at least 100 ms"):
        parse(game_day=game_day)


def test_a_game_day_of_more_than_10000_faults_is_refused_naming_the_duration_and_the_gap():
    plan = parse(game_day={"gap": ["100ms", "100ms"], "faults": TINY})
    assert len(draw(plan, 1, 10)) == 50  # the smallest allowed: 0.2 s a fault
    with pytest.raises(PlanError) as err:
        draw(plan, 1, 3600)  # 18,000 faults
    assert "--duration 3600s" in str(err.value) and "more than 10000 faults" in str(err.value)
    assert "game_day.gap of 0.1-0.1 s" in str(err.value)


def test_control_characters_of_a_chaos_plan_are_escaped_in_its_messages():
    with pytest.raises(PlanError) as err:
        parse(**{"colour\x1b[31m": "red"})
    assert "\x1b" not in str(err.value) and "colour\\x1b[31m" in str(err.value)
    with pytest.raises(PlanError) as err:
        draw(parse(game_day=GAME), 1, 60, ["latency\x1b]0;owned\x07"])
    assert "\x1b" not in str(err.value) and "\x07" not in str(err.value)
    assert "latency\\x1b]0;owned\\x07" in str(err.value)


def test_an_external_target_of_a_chaos_plan_is_checked_when_the_plan_is():
    """validate said ok to any mapping with provider: external; drill chaos then refused it."""
    lab = {
        "provider": "external",
        "api_url": "http://[::1",
        "toxiproxy_url": "http://toxi:8474",
        "database": {"failover_target": "b", "nodes": {"a": {"dsn": "host=a"}, "b": {"dsn": "host=b"}}},
    }
    staging = {"class": "staging", "name": "staging-eu"}
    with pytest.raises(PlanError, match=r"key 'lab.api_url'"):
        parse(lab=lab, environment=staging)
    lab["api_url"] = "http://cp.staging.example"
    assert parse(lab=lab, environment=staging).lab == lab


# ---- the environment: a lab is a rehearsal, an external target says what it is ---------------------

EXTERNAL = {
    "provider": "external",
    "api_url": "http://cp.staging.example",
    "toxiproxy_url": "http://toxi:8474",
    "database": {"failover_target": "b", "nodes": {"a": {"dsn": "host=a"}, "b": {"dsn": "host=b"}}},
}


def test_a_chaos_plan_on_an_external_target_must_say_its_environment_and_one_on_a_lab_is_class_lab(tmp_path):
    with pytest.raises(PlanError) as err:
        parse(lab=EXTERNAL)
    assert "key 'environment': missing" in str(err.value) and "class: staging" in str(err.value)
    plan = parse(lab=EXTERNAL, environment={"class": "production", "name": "prod-eu"})
    assert plan.environment == {"class": "production", "name": "prod-eu"}
    assert parse().environment["class"] == "lab" and parse(lab="embedded").environment["class"] == "lab"
    for lab in ("running", "embedded"):
        with pytest.raises(PlanError, match=r"key 'environment.class': .*rehearsal: its class is lab, never staging"):
            parse(lab=lab, environment={"class": "staging", "name": "staging-eu"})
    # drill validate says so too, with exit 2
    from harness.cli import main

    path = tmp_path / "chaos.yaml"
    path.write_text(yaml.safe_dump({**BASE, "lab": EXTERNAL}))
    assert main(["validate", str(path)]) == 2
