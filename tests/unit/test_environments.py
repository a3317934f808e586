"""Lab runs are rehearsals (issue 24, section 4): every run records environment {class, name}; a
lab is class lab whatever its plan says; an external target's plan must say staging or production
(exit 2 from validate, run and the schedule's plan loading otherwise); results.json, the CAB line
and the report carry the class; a lab run's page 1 carries the red REHEARSAL banner."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from harness.cab.ledger import load_key, verified_entries
from harness.cli import main
from harness.environments import REHEARSAL, class_of, environment_of, parse_count, run_environment
from harness.errors import PlanError
from harness.model import DrillResult
from harness.plan import load_plan
from harness.report.html import render_html
from harness.report.record import Recording, complete, write_outputs
from harness.schedule.daemon import load_plans

from .test_external_plan import database_lab

ROOT = Path(__file__).resolve().parents[2]
FEATURE = "scenarios/database/primary_failover.feature"


class NoLab:
    api_url = None


def plan_file(folder: Path, lab, environment=None, drill: str = "env-test") -> Path:
    data = {"drill": drill, "title": "Environment test", "ha_domain": "database", "lab": lab, "scenarios": [FEATURE]}
    if environment is not None:
        data["environment"] = environment
    path = folder / f"{drill}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# ---- the plan ------------------------------------------------------------------------------------------


def test_an_external_plan_without_its_environment_is_refused_by_validate_naming_the_key_and_the_fix(tmp_path, capsys):
    path = plan_file(tmp_path, database_lab())
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert "key 'environment': missing" in out and "environment: {class: staging, name: staging-eu}" in out


def test_drill_run_of_an_external_plan_without_its_environment_exits_2_and_writes_nothing(tmp_path, capsys):
    path = plan_file(tmp_path, database_lab())
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "--cab-log", str(tmp_path / "cab.jsonl")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "key 'environment'" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "cab.jsonl").exists()


def test_the_schedule_skips_an_external_plan_without_its_environment_naming_the_key(tmp_path):
    plan_file(tmp_path, database_lab(), drill="no-environment")
    plan_file(tmp_path, database_lab(), {"class": "staging", "name": "staging-eu"}, drill="staging-db")
    plans, errors = load_plans(tmp_path, ROOT)
    assert list(plans) == ["staging-db"] and plans["staging-db"].environment == {
        "class": "staging",
        "name": "staging-eu",
    }
    assert len(errors) == 1 and "no-environment.yaml: key 'environment': missing" in errors[0]


@pytest.mark.parametrize("lab", ["embedded", {"provider": "testcontainers"}])
@pytest.mark.parametrize("claimed", ["staging", "production"])
def test_a_lab_plan_claiming_staging_or_production_is_refused(tmp_path, lab, claimed, capsys):
    path = plan_file(tmp_path, lab, {"class": claimed, "name": "prod-eu"})
    with pytest.raises(PlanError) as err:
        load_plan(path, ROOT)
    assert "key 'environment.class'" in str(err.value) and f"its class is lab, never {claimed}" in str(err.value)
    assert main(["validate", str(path)]) == 2
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "environment, key",
    [
        ({"class": "qa", "name": "x"}, "environment.class"),
        ({"class": "staging"}, "environment.name"),
        ({"class": "staging", "name": "  "}, "environment.name"),
        ({"class": "staging", "name": "eu\x1b[31m"}, "environment.name"),
        ({"class": "staging", "name": "eu", "region": "x"}, "environment.region"),
        ("staging", "environment"),
    ],
)
def test_a_bad_environment_is_named(tmp_path, environment, key):
    with pytest.raises(PlanError, match=rf"key '{key}'"):
        load_plan(plan_file(tmp_path, database_lab(), environment), ROOT)


def test_the_shipped_lab_plans_are_class_lab():
    for path in sorted((ROOT / "drills").glob("*.yaml")):
        plan = load_plan(path, ROOT)
        assert plan.lab.provider in ("embedded", "testcontainers") and plan.environment["class"] == "lab", path
    assert (
        load_plan(ROOT / "drills" / "quarterly-database-containers.yaml", ROOT).environment["name"] == "container lab"
    )


def test_a_lab_provider_is_recorded_lab_whatever_the_environment_given():
    assert run_environment({"class": "production", "name": "prod"}, "embedded") == {"class": "lab", "name": "prod"}
    assert run_environment(None, "testcontainers") == {"class": "lab", "name": "container lab"}
    assert run_environment({"class": "staging", "name": "staging-eu"}, "external") == {
        "class": "staging",
        "name": "staging-eu",
    }
    assert run_environment({}, "external")["class"] == "lab"  # never counted on a guess


def test_count_takes_known_classes_only():
    assert parse_count("production, staging") == ("staging", "production")
    assert parse_count("lab,staging,production") == ("lab", "staging", "production")
    for bad in ("", ",", "lab,qa", "unknown"):
        with pytest.raises(ValueError, match="--count staging,production"):
            parse_count(bad)


# ---- the record: results.json and the CAB line carry the class ------------------------------------------


def record(tmp_path: Path, plan_path: Path, name: str) -> tuple[dict, dict]:
    key_path = tmp_path / "cab.key"
    if not key_path.exists():
        key_path.write_text(os.urandom(32).hex())
    plan = load_plan(plan_path, ROOT)
    rec = Recording(tmp_path / "cab.jsonl", key=load_key(key_path))
    result = DrillResult.from_json(
        {
            "drill": plan.drill,
            "title": plan.title,
            "ha_domain": "database",
            "verdict": "pass",
            "finished_at": "2026-10-01T06:00:00+00:00",
            "environment": {"provider": plan.lab.provider},
            "scenarios": [],
        }
    )
    complete(result, plan, NoLab(), rec)
    out = tmp_path / name
    write_outputs(result, plan, out, rec, log=lambda *a, **k: None)
    results = json.loads((out / "results.json").read_text())
    entries, skipped = verified_entries(rec.cab_log, load_key(key_path))
    assert skipped == 0
    return results, entries[-1]


def test_each_run_records_its_environment_in_results_and_in_the_cab_line(tmp_path):
    results, line = record(tmp_path, ROOT / "drills" / "quarterly-database.yaml", "lab")
    assert results["environment"]["class"] == "lab" and results["environment"]["name"] == "embedded lab"
    assert results["environment"]["provider"] == "embedded"  # beside the host's description
    assert line["environment"] == {"class": "lab", "name": "embedded lab"}

    staging = plan_file(tmp_path, database_lab(), {"class": "staging", "name": "staging-eu"})
    results, line = record(tmp_path, staging, "staging")
    assert results["environment"]["class"] == "staging" and line["environment"] == {
        "class": "staging",
        "name": "staging-eu",
    }
    page = (tmp_path / "staging" / "report.html").read_text()
    assert REHEARSAL not in page and '<strong class="envkind">STAGING</strong> staging-eu' in page


def test_a_chaos_run_on_a_lab_is_recorded_lab():
    from harness.chaos.plan import load_chaos_plan
    from harness.chaos.runner import as_plan

    for path in sorted((ROOT / "drills" / "chaos").glob("*.yaml")):
        plan = as_plan(load_chaos_plan(path), "external")  # the running lab is reached as an external one
        assert run_environment(plan.environment, plan.lab.provider)["class"] == "lab", path


# ---- the report's page 1 --------------------------------------------------------------------------------


def test_a_lab_runs_page_one_carries_the_red_rehearsal_banner_and_a_staging_runs_does_not():
    lab = DrillResult.from_json(
        {
            "drill": "d",
            "verdict": "pass",
            "environment": {"provider": "embedded", "class": "lab", "name": "embedded lab"},
        }
    )
    page = render_html(lab)
    banner = f'<div class="rehearsal" role="alert">{REHEARSAL}'
    assert banner in page and page.index(banner) < page.index('<div class="banner pass"')
    assert ".rehearsal { background: #cf222e;" in page
    # an old results.json (no class): its environment_class says lab, so does the page
    old = DrillResult.from_json(
        {"drill": "d", "verdict": "pass", "environment_class": "embedded lab: local processes, not production evidence"}
    )
    assert banner in render_html(old)
    staging = DrillResult.from_json(
        {"drill": "d", "verdict": "pass", "environment": {"provider": "external", "class": "staging", "name": "stg"}}
    )
    assert 'class="rehearsal"' not in render_html(staging)


def test_an_old_record_reads_its_class_from_environment_class():
    assert class_of({"environment_class": "containers: a lab of local containers, not production evidence"}) == "lab"
    assert class_of({"environment_class": "external: staging-eu"}) == "unknown"
    assert environment_of({"environment": {"provider": "testcontainers"}})["class"] == "lab"
    assert class_of({}) == "unknown"
