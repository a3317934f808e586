"""Drill plans: validated whole, with one message naming the file, the key and the fix."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from harness import spec_floors
from harness.errors import PlanError
from harness.plan import DEFAULT_TARGETS, load_plan

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
    assert (
        plan.targets == DEFAULT_TARGETS == {"rto_seconds": 28800.0, "rpo_seconds": 300.0, "backup_rpo_seconds": 86400.0}
    )
    assert plan.lab.replication == "sync"


def test_tier_1_sets_a_one_hour_backup_rpo_and_keeps_the_failover_rpo(tmp_path):
    plan = load_plan(write(tmp_path, GOOD + "tier: 1\n"), ROOT)
    assert plan.targets["backup_rpo_seconds"] == 3600.0 and plan.targets["rpo_seconds"] == 300.0


def test_no_shipped_failover_plan_judges_rpo_looser_than_the_spec():
    for path in sorted((ROOT / "drills").glob("*.yaml")):
        assert load_plan(path, ROOT).targets["rpo_seconds"] <= 300.0, path.name


@pytest.mark.parametrize(
    "extra, key, words",
    [
        ("targets: {rto_seconds: fast}\n", "targets.rto_seconds", "must be a number"),
        ("targets: {rto_seconds: 0}\n", "targets.rto_seconds", "must be > 0"),
        ("targets: {rto: 5}\n", "targets.rto", "unknown target"),
        ("schedule: every quarter\n", "schedule", "cron"),
        ("colour: blue\n", "colour", "unknown key"),
        ("tier: 7\n", "tier", "must be 1, 2 or 3"),
    ],
)
def test_a_bad_key_is_named_with_the_fix(tmp_path, extra, key, words):
    path = write(tmp_path, GOOD + extra)
    with pytest.raises(PlanError) as err:
        load_plan(path, ROOT)
    assert str(err.value).startswith(f"{path}: key '{key}'")
    assert words in str(err.value)


@pytest.mark.parametrize(
    "text, key",
    [
        (GOOD.replace("lab: embedded\n", ""), "lab"),
        (GOOD.replace("drill: quarterly-database", "drill: Quarterly DB!"), "drill"),
        (GOOD.replace("ha_domain: database", "ha_domain: moon"), "ha_domain"),
        (GOOD.replace("primary_failover.feature", "nope.feature"), "scenarios[0]"),
        (GOOD.replace("lab: embedded", "lab: {provider: cloud}"), "lab.provider"),
        (GOOD.replace("lab: embedded", "lab: {replication: eventual}"), "lab.replication"),
    ],
)
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
    plan = load_plan(
        write(
            tmp_path,
            GOOD.replace(
                "scenarios: [scenarios/database/primary_failover.feature]",
                "scenarios: '@quarterly and @ha-domain:database'",
            ),
        ),
        ROOT,
    )
    assert plan.tags == "@quarterly and @ha-domain:database"
    assert any(p.name == "primary_failover.feature" for p in plan.scenarios)


# ---- targets never looser than the spec (harness.spec_floors) ---------------------------------

TODAY = dt.date(2026, 7, 1)


@pytest.fixture
def today(monkeypatch):
    """Waivers judged on TODAY (UTC)."""
    monkeypatch.setattr(spec_floors, "today", lambda: TODAY)
    return TODAY


def waiver(gate: str = "rto_seconds", expires: str = "2026-09-30", **more: str) -> str:
    fields = {
        "gate": gate,
        "reason": "DR storage rebuilt (CHG0012399)",
        "approved_by": "J. Doe (CAB)",
        "expires": expires,
        **more,
    }
    return (
        "waivers:\n  - {"
        + ", ".join(
            f"{k}: {json.dumps(v)}" if k != "expires" else f"{k}: {v}" for k, v in fields.items() if v is not None
        )
        + "}\n"
    )


@pytest.mark.parametrize(
    "target, value, floor",
    [
        ("rto_seconds", "31536000", "at most 28800 s (8 h)"),
        ("rpo_seconds", "86400", "at most 300 s (5 min)"),
        ("availability", "0.5", "at least 0.999 (99.9%)"),
        ("backup_rpo_seconds", "172800", "at most 86400 s (1 d)"),
    ],
)
def test_a_target_looser_than_the_spec_is_refused_naming_key_value_and_floor(tmp_path, target, value, floor):
    with pytest.raises(PlanError) as err:
        load_plan(write(tmp_path, GOOD + f"targets: {{{target}: {value}}}\n"), ROOT)
    message = str(err.value)
    assert f"key 'targets.{target}': {value} is looser than the spec's floor: {floor}" in message
    assert "waivers:" in message


def test_validate_lists_every_looser_target_at_once(tmp_path):
    errors: list[PlanError] = []
    with pytest.raises(PlanError):
        load_plan(
            write(tmp_path, GOOD + "targets: {rto_seconds: 31536000, rpo_seconds: 86400, availability: 0.5}\n"),
            ROOT,
            errors=errors,
        )
    assert [str(e).split("key '")[1].split("'")[0] for e in errors] == [
        "targets.rto_seconds",
        "targets.rpo_seconds",
        "targets.availability",
    ]


def test_a_tighter_target_is_accepted(tmp_path):
    plan = load_plan(
        write(
            tmp_path,
            GOOD + "targets: {rto_seconds: 60, rpo_seconds: 0.5, availability: 0.9999, backup_rpo_seconds: 600}\n",
        ),
        ROOT,
    )
    assert plan.targets["rto_seconds"] == 60.0 and plan.targets["availability"] == 0.9999 and plan.waivers == {}


def test_a_tier_1_plan_is_held_to_the_one_hour_backup_rpo(tmp_path):
    with pytest.raises(
        PlanError,
        match=r"targets.backup_rpo_seconds': 86400 is looser than the spec's floor for a "
        r"tier-1 plan: at most 3600 s \(1 h\)",
    ):
        load_plan(write(tmp_path, GOOD + "tier: 1\ntargets: {backup_rpo_seconds: 86400}\n"), ROOT)


def test_a_waived_looser_target_is_accepted_and_bound_to_its_floor(tmp_path, today):
    plan = load_plan(write(tmp_path, GOOD + "targets: {rto_seconds: 43200}\n" + waiver()), ROOT)
    w = plan.waivers["rto_seconds"]
    assert plan.targets["rto_seconds"] == 43200.0
    assert (w.reason, w.approved_by, w.expires) == (
        "DR storage rebuilt (CHG0012399)",
        "J. Doe (CAB)",
        dt.date(2026, 9, 30),
    )
    assert (w.target, w.floor_value) == (43200.0, 28800.0)


def test_a_waiver_may_expire_today_or_one_quarter_ahead(tmp_path, today):
    for expires in ("2026-07-01", "2026-10-01", "'2026-08-15'"):  # today, +92 days, a quoted date
        load_plan(write(tmp_path, GOOD + "targets: {rto_seconds: 43200}\n" + waiver(expires=expires)), ROOT)


@pytest.mark.parametrize(
    "text, key, words",
    [
        (waiver(expires="2026-06-30"), "waivers[0].expires", "the waiver expired on 2026-06-30"),
        (waiver(expires="2026-10-02"), "waivers[0].expires", "more than one quarter (92 days) ahead"),
        (waiver(expires="2026-09-30T00:00:00Z"), "waivers[0].expires", "a day, no time"),
        (waiver(expires="'next quarter'"), "waivers[0].expires", "ISO date"),
        (waiver(reason=None), "waivers[0].reason", "missing"),
        (waiver(approved_by=None), "waivers[0].approved_by", "missing"),
        (waiver(expires=None), "waivers[0].expires", "missing"),
        (waiver(gate=None), "waivers[0].gate", "missing"),
        (waiver(approved_by=""), "waivers[0].approved_by", "one line of text"),
        (waiver(reason="ok\u202e"), "waivers[0].reason", "\\u202e"),
        (waiver(signed="x"), "waivers[0].signed", "unknown key"),
        (waiver(gate="lost_writes"), "waivers[0].gate", "a target with a spec floor"),
        (
            waiver() + "  - {gate: rto_seconds, reason: again, approved_by: me, expires: 2026-08-01}\n",
            "waivers[1].gate",
            "waived twice",
        ),
        ("waivers: {gate: rto_seconds}\n", "waivers", "must be a list"),
    ],
)
def test_a_bad_waiver_is_refused_naming_its_key(tmp_path, today, text, key, words):
    with pytest.raises(PlanError) as err:
        load_plan(write(tmp_path, GOOD + "targets: {rto_seconds: 43200}\n" + text), ROOT)
    assert f"key '{key}'" in str(err.value) and words in str(err.value)


def test_a_looser_target_whose_waiver_was_refused_is_refused_too(tmp_path, today):
    errors: list[PlanError] = []
    with pytest.raises(PlanError):
        load_plan(
            write(tmp_path, GOOD + "targets: {rto_seconds: 43200}\n" + waiver(expires="2026-01-01")),
            ROOT,
            errors=errors,
        )
    assert any("targets.rto_seconds': 43200 is looser" in str(e) for e in errors)


def test_a_waiver_of_a_target_that_is_not_looser_is_refused(tmp_path, today):
    for targets in ("targets: {rto_seconds: 28800}\n", ""):
        with pytest.raises(
            PlanError,
            match=r"key 'waivers.rto_seconds': the (plan's target 28800|default target) "
            r"is not looser than the spec's floor .*remove the waiver",
        ):
            load_plan(write(tmp_path, GOOD + targets + waiver()), ROOT)
