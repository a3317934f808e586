"""Drill plans: validated whole, with one message naming the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.plan import DEFAULT_TARGETS, PlanError, load_plan

ROOT = Path(__file__).resolve().parents[2]
GOOD = """\
drill: quarterly-database
title: Database drill
ha_domain: database
lab: embedded
scenarios: [scenarios/database/primary_failover.feature]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


def test_the_shipped_plans_are_valid():
    for path in sorted((ROOT / "drills").glob("*.yaml")):
        plan = load_plan(path, ROOT)
        assert plan.scenarios and plan.targets["rto_seconds"] > 0


def test_targets_default_to_the_spec(tmp_path):
    plan = load_plan(write(tmp_path, GOOD), ROOT)
    # RTO 8 h; a failover under synchronous replication loses <= 5 min; a restore from backup <= 24 h
    assert plan.targets == DEFAULT_TARGETS == {"rto_seconds": 28800.0, "rpo_seconds": 300.0,
                                               "backup_rpo_seconds": 86400.0}
    assert plan.lab.replication == "sync"


def test_tier_1_sets_a_one_hour_backup_rpo_and_keeps_the_failover_rpo(tmp_path):
    plan = load_plan(write(tmp_path, GOOD + "tier: 1\n"), ROOT)
    assert plan.targets["backup_rpo_seconds"] == 3600.0 and plan.targets["rpo_seconds"] == 300.0


def test_no_shipped_failover_plan_judges_rpo_looser_than_the_spec():
    for path in sorted((ROOT / "drills").glob("*.yaml")):
        assert load_plan(path, ROOT).targets["rpo_seconds"] <= 300.0, path.name


@pytest.mark.parametrize("extra, key, words", [
    ("targets: {rto_seconds: fast}\n", "targets.rto_seconds", "must be a number"),
    ("targets: {rto_seconds: 0}\n", "targets.rto_seconds", "must be > 0"),
    ("targets: {rto: 5}\n", "targets.rto", "unknown target"),
    ("schedule: every quarter\n", "schedule", "cron"),
    ("colour: blue\n", "colour", "unknown key"),
    ("tier: 7\n", "tier", "must be 1, 2 or 3"),
])
def test_a_bad_key_is_named_with_the_fix(tmp_path, extra, key, words):
    path = write(tmp_path, GOOD + extra)
    with pytest.raises(PlanError) as err:
        load_plan(path, ROOT)
    assert str(err.value).startswith(f"{path}: key '{key}'")
    assert words in str(err.value)


@pytest.mark.parametrize("text, key", [
    (GOOD.replace("lab: embedded\n", ""), "lab"),
    (GOOD.replace("drill: quarterly-database", "drill: Quarterly DB!"), "drill"),
    (GOOD.replace("ha_domain: database", "ha_domain: moon"), "ha_domain"),
    (GOOD.replace("primary_failover.feature", "nope.feature"), "scenarios[0]"),
    (GOOD.replace("lab: embedded", "lab: {provider: cloud}"), "lab.provider"),
    (GOOD.replace("lab: embedded", "lab: {replication: eventual}"), "lab.replication"),
])
def test_missing_or_wrong_required_keys_are_named(tmp_path, text, key):
    with pytest.raises(PlanError) as err:
        load_plan(write(tmp_path, text), ROOT)
    assert f"key '{key}'" in str(err.value)


def test_yaml_syntax_errors_name_the_line(tmp_path):
    with pytest.raises(PlanError, match=r"plan.yaml: line 2: not valid YAML"):
        load_plan(write(tmp_path, "drill: x\ntitle: : bad\n"), ROOT)


def test_a_missing_plan_file_is_named(tmp_path):
    with pytest.raises(PlanError, match="no such drill plan"):
        load_plan(tmp_path / "absent.yaml", ROOT)


def test_a_tag_expression_selects_features(tmp_path):
    plan = load_plan(write(tmp_path, GOOD.replace(
        "scenarios: [scenarios/database/primary_failover.feature]",
        "scenarios: '@quarterly and @ha-domain:database'")), ROOT)
    assert plan.tags == "@quarterly and @ha-domain:database"
    assert any(p.name == "primary_failover.feature" for p in plan.scenarios)
