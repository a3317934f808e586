"""The CAB record's pure parts: sign-off and window, the keyed log, the manifest, risk scores and
"since last run"."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime

import pytest

from harness.cab.ledger import (
    CabKeyError,
    append_cab_log,
    check_log,
    entry_hash,
    load_key,
    verified_entries,
    verify_cab_log,
)
from harness.errors import PlanError
from harness.model import DrillResult
from harness.report.manifest import check_dir, write_manifest
from harness.report.risk import assess, level, miss_ratio
from harness.report.since import since_last_run
from harness.signoff import SignOff, check_window, parse_signoff, with_flags


def fail(key, message):
    return PlanError(f"{key}: {message}")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---- sign-off -------------------------------------------------------------------------------------


def test_flags_win_over_the_plan_and_the_operator_defaults_to_the_os_user(monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "sre-on-call")
    plan = parse_signoff({"owner": "Platform SRE", "approver": "A. Plan", "change_ticket": "CHG1"}, fail)
    merged = with_flags(plan, {"approver": "B. Flag", "owner": None}, fail)
    assert (merged.owner, merged.approver, merged.change_ticket, merged.operator) == (
        "Platform SRE",
        "B. Flag",
        "CHG1",
        "sre-on-call",
    )


def test_a_run_outside_its_window_is_refused_unless_asked_and_then_it_says_so():
    signoff = parse_signoff({"window": {"start": "2026-12-01T06:00:00Z", "end": "2026-12-01T08:00:00+00:00"}}, fail)
    inside, refused = check_window(signoff, at("2026-12-01T07:00:00Z"), allow_outside=False)
    assert refused is None and not inside.outside_window
    _, refused = check_window(signoff, at("2026-12-01T09:00:00Z"), allow_outside=False)
    assert "outside the change window 2026-12-01T06:00:00Z to 2026-12-01T08:00:00Z" in refused
    assert "--outside-window" in refused
    allowed, refused = check_window(signoff, at("2026-12-01T09:00:00Z"), allow_outside=True)
    assert refused is None and allowed.outside_window and allowed.to_json()["outside_window"] is True


@pytest.mark.parametrize(
    "data, says",
    [
        ({"window": {"start": "2026-12-01T06:00:00", "end": "2026-12-01T08:00:00Z"}}, "no time zone"),
        ({"window": {"start": "2026-12-01T08:00:00Z", "end": "2026-12-01T06:00:00Z"}}, "ends before it starts"),
        ({"window": "tomorrow"}, "must be {start: TIME, end: TIME}"),
        ({"window": {"start": "soon", "end": "2026-12-01T06:00:00Z"}}, "window.start: not an ISO 8601 time"),
        ({"approver": "a\nb"}, "approver: must be one line"),
        ({"change_ticket": ""}, "change_ticket: must be one line"),
        ({"owner": 42}, "owner: must be one line"),
    ],
)
def test_bad_sign_off_keys_are_refused_naming_the_key(data, says):
    with pytest.raises(PlanError, match=None) as caught:
        parse_signoff(data, fail)
    assert says in str(caught.value)


def test_the_window_flag_takes_start_slash_end():
    merged = with_flags(SignOff(), {"window": "2026-12-01T06:00Z/2026-12-01T08:00Z"}, fail)
    assert merged.window.text() == "2026-12-01T06:00:00Z to 2026-12-01T08:00:00Z"


# ---- the keyed log --------------------------------------------------------------------------------


def result(verdict="pass", drill="d", rto=1.0, feature="database/primary_failover.feature", row=2, **extra):
    data = {
        "drill": drill,
        "ha_domain": "database",
        "verdict": verdict,
        "finished_at": "2026-11-01T00:00:00Z",
        "scenarios": [
            {
                "name": "s",
                "feature": feature,
                "verdict": verdict,
                "matrix_row": {"number": row},
                "measurements": {"rto_seconds": rto, "rpo_seconds": 0.0},
                "gates": [
                    {
                        "id": "rto_seconds",
                        "verdict": verdict,
                        "measured": rto,
                        "threshold": "<= 8 s",
                        "operator": "<=",
                        "limit": 8,
                        "unit": "s",
                        "description": "RTO",
                    }
                ],
            }
        ],
        **extra,
    }
    return DrillResult.from_json(data)


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "cab.key"
    path.write_text(os.urandom(32).hex())
    return load_key(path)


def test_an_edited_line_rehashed_without_the_key_is_found(tmp_path, key):
    log = tmp_path / "cab.jsonl"
    for verdict in ("fail", "fail", "pass"):
        append_cab_log(log, result(verdict), key=key)
    lines = log.read_text().splitlines()
    forged = json.loads(lines[0])
    forged["verdict"] = "pass"
    forged["hash"] = entry_hash(forged)  # what an editor without the key can do
    lines[0] = json.dumps(forged, sort_keys=True, separators=(",", ":"))
    log.write_text("\n".join(lines) + "\n")
    check = check_log(log, key)
    assert check.bad[0] == (1, "its mac does not match: edited and re-hashed without the key")
    assert check.bad[1][0] == 2 and "does not chain" in check.bad[1][1]
    assert verify_cab_log(log, key) == (False, 1)


def test_another_key_and_an_unsigned_line_are_named(tmp_path, key):
    log = tmp_path / "cab.jsonl"
    append_cab_log(log, result(), key=key)
    other = tmp_path / "other.key"
    other.write_text(os.urandom(32).hex())
    assert "signed with another key" in check_log(log, load_key(other)).bad[0][1]
    entry = json.loads(log.read_text())
    del entry["mac"]
    entry["hash"] = entry_hash(entry)
    log.write_text(json.dumps(entry) + "\n")
    assert "not signed" in check_log(log, key).bad[0][1]


def test_verified_entries_skip_what_does_not_verify_and_count_it(tmp_path, key):
    log = tmp_path / "cab.jsonl"
    append_cab_log(log, result(), key=key)
    with log.open("a") as f:
        f.write('{"drill": "forged", "prev_hash": "x", "hash": "y"}\n')
    good, skipped = verified_entries(log, key)
    assert [e["drill"] for e in good] == ["d"] and skipped == 1
    assert verified_entries(tmp_path / "absent.jsonl", key) == ([], 0)


def test_the_default_key_is_made_private_on_first_use_and_a_short_key_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "config" / "drill" / "cab.key"
    monkeypatch.setenv("DRILL_CAB_KEY", str(path))
    made = load_key(create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and load_key().key_id == made.key_id
    path.write_text("abcd")
    with pytest.raises(CabKeyError, match="at least 32 bytes"):
        load_key()
    with pytest.raises(CabKeyError, match="no CAB key"):
        load_key(tmp_path / "missing.key")


# ---- the manifest ---------------------------------------------------------------------------------


def test_the_manifest_names_the_first_changed_or_missing_file(tmp_path):
    for name in ("results.json", "junit.xml", "report.html", "plan-as-run.yaml"):
        (tmp_path / name).write_text(name)
    (tmp_path / "drill.log").write_text("not covered")
    digest = write_manifest(tmp_path, {"drill": "d"})
    check = check_dir(tmp_path)
    assert check.intact and check.manifest_sha256 == digest
    assert set(json.loads((tmp_path / "manifest.json").read_text())["files"]) == {
        "results.json",
        "junit.xml",
        "report.html",
        "plan-as-run.yaml",
    }
    (tmp_path / "junit.xml").write_text("edited")
    assert "junit.xml: changed since the drill wrote it" in check_dir(tmp_path).problem
    (tmp_path / "junit.xml").unlink()
    assert "junit.xml: listed in the manifest but missing" in check_dir(tmp_path).problem
    assert "no manifest" in check_dir(tmp_path / "absent").problem


# ---- risk -----------------------------------------------------------------------------------------


def gate(verdict, measured, limit, operator="<=", unit="s", gate_id="rto_seconds"):
    return {
        "id": gate_id,
        "verdict": verdict,
        "measured": measured,
        "limit": limit,
        "operator": operator,
        "unit": unit,
        "description": "RTO",
        "threshold": f"{operator} {limit} {unit}",
    }


def results_with(*gates, row=2, drill="d"):
    return {
        "drill": drill,
        "ha_domain": "database",
        "scenarios": [{"name": "s", "matrix_row": {"number": row}, "gates": list(gates)}],
    }


def test_likelihood_grows_with_the_miss_and_impact_comes_from_the_row_and_tier():
    near = assess(results_with(gate("fail", 9.0, 8)), tier=None)["items"][0]
    far = assess(results_with(gate("fail", 100.0, 8)), tier=None)["items"][0]
    assert (near["likelihood"], near["impact"], near["score"]) == (2, 5, 10)
    assert (far["likelihood"], far["score"], far["level"]) == (5, 25, "critical")
    intune = assess(results_with(gate("fail", 9.0, 8), row=4), tier=1)["items"][0]
    assert intune["impact"] == 4 and "tier 1 (+1)" in intune["impact_why"]
    assert "measured 9 s where at most 8 s is required" in near["text"]


def test_availability_misses_count_the_unavailability_against_the_allowed():
    missed = gate("fail", 0.99, 0.999, operator=">=", unit="ratio", gate_id="availability")
    assert miss_ratio(missed) == pytest.approx(10.0)


def test_a_repeated_miss_is_more_likely_and_a_pass_has_no_risk():
    previous = [{"kind": "drill", "drill": "d", "gates": {"not_passed": ["s/rto_seconds"]}}] * 3
    again = assess(results_with(gate("fail", 9.0, 8)), None, previous)["items"][0]
    assert again["likelihood"] == 4 and "missed in 3 of the last 3 runs (+2)" in again["likelihood_why"]
    clean = assess(results_with(gate("pass", 1.0, 8)), None)
    assert clean["items"] == [] and clean["residual"]["level"] == "none"


def test_an_unknown_gate_is_scored_as_unproven_and_the_residual_is_the_highest():
    risk = assess(results_with(gate("unknown", None, 8), gate("fail", 100.0, 8, gate_id="rpo_seconds")), None)
    assert [i["gate"] for i in risk["items"]] == ["rpo_seconds", "rto_seconds"]
    assert risk["items"][1]["likelihood"] == 3 and "not proven" in risk["items"][1]["text"]
    assert risk["residual"]["score"] == 25 and risk["residual"]["gate"] == "rpo_seconds"
    assert [level(s) for s in (0, 4, 5, 10, 16)] == ["none", "low", "medium", "high", "critical"]


# ---- since last run -------------------------------------------------------------------------------


def test_since_last_run_gives_the_previous_verdict_figures_and_what_changed():
    previous = [
        {
            "kind": "drill",
            "drill": "d",
            "ha_domain": "database",
            "verdict": "fail",
            "finished_at": "2026-08-01T06:00:00Z",
            "plan_sha256": "a" * 64,
            "harness": {"version": "0.1.0", "commit": "abc"},
            "system_version": "1.0.0",
            "scenarios": [{"matrix_row": 2, "verdict": "fail", "rto_seconds": 12.5, "rpo_seconds": 0.0}],
        },
        {
            "kind": "drill",
            "drill": "x",
            "dry_run": True,
            "ha_domain": "database",
            "verdict": "pass",
            "scenarios": [{"matrix_row": 2, "verdict": "pass"}],
        },
    ]
    now = result("pass", rto=3.0).to_json() | {
        "plan_sha256": "b" * 64,
        "harness": {"version": "0.2.0"},
        "system_version": "1.0.0",
    }
    rows = since_last_run(now, previous)
    row2 = rows[0]
    assert row2["subject"] == "matrix row 2: Database, Primary unavailable"
    assert row2["previous"]["verdict"] == "fail" and row2["previous"]["rto_seconds"] == 12.5
    assert row2["now"]["rto_seconds"] == 3.0
    assert any(c.startswith("plan changed") for c in row2["changed"])
    assert "harness 0.1.0 (abc) -> 0.2.0" in row2["changed"]
    assert not any("system under drill" in c for c in row2["changed"])
    assert rows[1]["subject"] == "HA domain database" and rows[1]["previous"]["verdict"] == "fail"
    assert since_last_run(now, [])[0]["changed"] == ["first recorded run"]
