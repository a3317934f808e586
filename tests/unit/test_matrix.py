"""`drill matrix`: the spec's seven rows, each with its scenario and the last verdict from the CAB log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import matrix
from harness.cab.ledger import load_key, verified_entries
from harness.matrix import ROWS, Row, render
from harness.model import DrillResult
from harness.report import append_cab_log

ROOT = Path(__file__).resolve().parents[2]


def results(feature: str, verdict: str, finished: str, cls: str = "staging") -> dict:
    """The results of a run against staging (counted by default), or of the class `cls`."""
    return {
        "schema_version": 1,
        "drill": "d",
        "correlation_id": "c",
        "started_at": finished,
        "finished_at": finished,
        "verdict": verdict,
        "gates": [],
        "environment": {"provider": "external" if cls != "lab" else "embedded", "class": cls, "name": f"{cls}-1"},
        "scenarios": [{"name": "s", "feature": feature, "verdict": verdict, "gates": []}],
    }


def run(tmp_path: Path, cab: Path, name: str, data: dict) -> None:
    out = tmp_path / name
    out.mkdir()
    (out / "results.json").write_text(json.dumps(data))
    append_cab_log(cab, DrillResult.from_json(data), report_path=out / "report.html")


def test_the_matrix_has_the_specs_seven_rows_in_order():
    assert [r.component for r in ROWS][:2] == ["Control Plane API/Policy services", "Database"]
    assert len(ROWS) == 7
    assert all((ROOT / f).exists() for r in ROWS for f in r.features)


def test_every_row_carries_each_of_its_facts():
    from harness.calendar import DOMAINS

    for row in ROWS:
        assert row.component.strip() and row.failure.strip() and row.impact_words.strip(), row
        assert row.impact in range(1, 6) and row.ha_domain in DOMAINS, row
        assert row.features and all((ROOT / f).is_file() for f in row.features), row
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in row.links.items()), row
    assert [r.ha_domain for r in ROWS] == [
        "api",
        "database",
        "evidence-store",
        "connectors",
        "connectors",
        "connectors",
        "event-store",
    ]
    assert [r.impact for r in ROWS] == [4, 5, 4, 3, 3, 3, 5]
    assert matrix.links() == {"alternate region": "s3-replica", "evidence store": "s3"}


FULL = {
    "component": "C",
    "failure": "F",
    "impact": 4,
    "impact_words": "W",
    "ha_domain": "api",
    "links": {},
    "features": ("scenarios/api/stateless_outage.feature",),
}


@pytest.mark.parametrize("missing", sorted(FULL))
def test_a_row_missing_a_field_is_refused_where_it_is_defined(missing):
    with pytest.raises(TypeError, match=f"missing 1 required .*'{missing}'"):
        Row(**{k: v for k, v in FULL.items() if k != missing})


@pytest.mark.parametrize(
    "key, value",
    [
        ("impact", 6),
        ("impact", 0),
        ("impact", "4"),
        ("impact", True),
        ("ha_domain", ""),
        ("component", " "),
        ("impact_words", None),
        ("links", {"alternate region": ""}),
        ("links", ["s3"]),
        ("features", ("api/stateless_outage.feature",)),
        ("features", "scenarios/api/stateless_outage.feature"),  # a path, not a tuple of paths
        ("features", ["scenarios/api/stateless_outage.feature"]),
        ("features", None),
        ("features", ("scenarios/api/no_such_scenario.feature",)),
        ("features", ("scenarios/api/stateless_outage.feature", "scenarios/api/stateless_outage.feature")),
    ],
)
def test_a_row_with_a_field_out_of_range_is_refused_where_it_is_defined(key, value):
    with pytest.raises(ValueError, match=f"matrix row '.*': {key} must"):
        Row(**{**FULL, key: value})


def test_a_rows_links_cannot_be_changed_after_it_is_defined():
    with pytest.raises(TypeError):
        ROWS[2].links["evidence store"] = "elsewhere"  # type: ignore[index]


def test_risk_history_and_the_runner_read_the_row_not_a_table_of_their_own(monkeypatch):
    from harness.report import history, risk
    from harness.runner import common

    for module, table in ((risk, "ROW_IMPACT"), (history, "ROW_DOMAIN"), (common, "LINKS")):
        assert not hasattr(module, table), f"{module.__name__}.{table}: a second copy of the rows' facts"
    changed = Row(
        "Database",
        "Primary unavailable",
        2,
        "changed words",
        "backup-restore",
        {"a link": "proxy-x"},
        ("scenarios/database/primary_failover.feature",),
    )
    monkeypatch.setattr(matrix, "ROWS", (ROWS[0], changed, *ROWS[2:]))
    monkeypatch.setattr(matrix, "_BY_NUMBER", dict(enumerate(matrix.ROWS, 1)))
    assert risk.impact_of(2, "database", None) == (2, "matrix row 2: changed words")
    entry = {
        "kind": "drill",
        "finished_at": "2026-01-01T00:00:00+00:00",
        "drill": "d",
        "ha_domain": "all",
        "verdict": "pass",
        "scenarios": [{"matrix_row": 2, "verdict": "pass"}],
    }
    by_domain = history.runs_by_domain([entry])
    assert [r["drill"] for r in by_domain["backup-restore"]] == ["d"] and by_domain["database"] == []
    assert matrix.links()["a link"] == "proxy-x"


def test_a_matrix_row_number_that_is_no_row_has_none():
    assert matrix.numbered(1) is ROWS[0] and matrix.numbered(7) is ROWS[6]
    assert [matrix.numbered(n) for n in (0, 8, None, "1", [1], {"number": 1})] == [None] * 6


def test_the_last_verdict_of_each_row_comes_from_the_newest_report(tmp_path):
    cab = tmp_path / "cab.jsonl"
    run(tmp_path, cab, "a", results("database/primary_failover.feature", "fail", "2026-01-01T00:00:00+00:00"))
    run(tmp_path, cab, "b", results("database/primary_failover.feature", "pass", "2026-04-01T00:00:00+00:00"))
    entries, skipped = verified_entries(cab, load_key())
    table = render(entries, skipped, ROOT)
    database = next(line for line in table.splitlines() if line.startswith("2 "))
    assert "PASS 2026-04-01T00:00:00+00:00 (staging)" in database
    api = next(line for line in table.splitlines() if line.startswith("1 "))
    assert api.endswith("never run")
    event_store = next(line for line in table.splitlines() if line.startswith("7 "))
    assert "eventstore/write_blocked.feature" in event_store and event_store.endswith("never run")


def test_a_tag_selected_drill_runs_and_reports_the_rows_in_the_matrix_order():
    from harness.matrix import matrix_order, row_of

    features = sorted((ROOT / "scenarios").rglob("*.feature"))
    ordered = [row_of(f) for f in matrix_order(features)]
    numbers = [found[0] for found in ordered if found]
    assert numbers == sorted(numbers) and numbers[:3] == [1, 2, 3]
    assert ordered[-1] is None  # replication_cut.feature (no row of its own) goes last
    assert row_of(ROOT / "scenarios/connectors/jamf_outage.feature")[1].component == "Jamf API outage"
    assert row_of("scenarios/database/replication_cut.feature") is None


def test_the_matrix_reads_only_verified_lines_and_says_how_many_it_skipped(tmp_path):
    cab = tmp_path / "cab.jsonl"
    run(tmp_path, cab, "a", results("database/primary_failover.feature", "fail", "2026-01-01T00:00:00+00:00"))
    run(tmp_path, cab, "b", results("api/stateless_outage.feature", "fail", "2026-04-01T00:00:00+00:00"))
    lines = cab.read_text().splitlines()
    forged = json.loads(lines[0])
    forged["scenarios"][0]["verdict"] = "pass"  # edited without the key
    cab.write_text(json.dumps(forged) + "\n" + lines[1] + "\n")
    entries, skipped = verified_entries(cab, load_key())
    table = render(entries, skipped, ROOT).splitlines()
    assert next(line for line in table if line.startswith("2 ")).endswith("never run")
    assert "FAIL 2026-04-01" in next(line for line in table if line.startswith("1 "))
    assert "(1 CAB log line(s) skipped: not verified" in table[-1]  # the edited one; the next still chains


def test_a_lab_run_is_not_a_rows_last_verdict_unless_the_policy_counts_lab(tmp_path):
    cab = tmp_path / "cab.jsonl"
    run(tmp_path, cab, "a", results("database/primary_failover.feature", "fail", "2026-01-01T00:00:00+00:00"))
    run(tmp_path, cab, "b", results("database/primary_failover.feature", "pass", "2026-04-01T00:00:00+00:00", "lab"))
    run(tmp_path, cab, "c", results("api/stateless_outage.feature", "pass", "2026-04-01T00:00:00+00:00", "lab"))
    entries, skipped = verified_entries(cab, load_key())
    assert [e["environment"] for e in entries] == [
        {"class": "staging", "name": "staging-1"},
        {"class": "lab", "name": "lab-1"},
        {"class": "lab", "name": "lab-1"},
    ]
    table = render(entries, skipped, ROOT).splitlines()
    database = next(line for line in table if line.startswith("2 "))
    assert "FAIL 2026-01-01T00:00:00+00:00 (staging)" in database
    assert "not counted: PASS 2026-04-01T00:00:00+00:00 (lab: a rehearsal)" in database
    api = next(line for line in table if line.startswith("1 "))
    assert "never run; not counted: PASS" in api
    assert "last verdicts of runs of class staging or production" in table[-1]
    assert not any("lab runs counted" in line for line in table)

    counted = render(entries, skipped, ROOT, ("lab", "staging", "production")).splitlines()
    assert "PASS 2026-04-01T00:00:00+00:00 (lab)" in next(line for line in counted if line.startswith("2 "))
    assert counted[-1].startswith("WARNING: lab runs counted (--count lab,staging,production)")


def test_drill_matrix_takes_the_policy_from_count_and_refuses_a_class_it_does_not_know(tmp_path, capsys):
    import pytest

    from harness.cli import main

    key = tmp_path / "cab.key"
    key.write_text("ab" * 32)
    cab = tmp_path / "cab.jsonl"
    data = results("database/primary_failover.feature", "pass", "2026-04-01T00:00:00+00:00", "lab")
    append_cab_log(cab, DrillResult.from_json(data), key=load_key(key))
    args = ["matrix", "--cab-log", str(cab), "--cab-key", str(key), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"][1]["last_verdict"] is None and out["rows"][1]["newer_uncounted"]["class"] == "lab"
    assert out["count"] == ["staging", "production"] and not out["lab_runs_counted"]
    assert main([*args, "--count", "lab,staging,production"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["rows"][1]["last_verdict"], out["rows"][1]["last_class"]) == ("pass", "lab")
    assert out["lab_runs_counted"] and "lab runs counted" in out["warning"]
    with pytest.raises(SystemExit) as exit:
        main([*args, "--count", "lab,qa"])
    assert exit.value.code == 2 and "--count" in capsys.readouterr().err


def test_a_row_with_no_scenario_yet_has_no_features():
    row = Row(**{**FULL, "features": ()})
    assert row.features == ()


def two_features(monkeypatch) -> Row:
    """Row 2 (the database) drilled by two feature files: primary_failover and replication_cut."""
    both = Row(
        "Database",
        "Primary unavailable",
        5,
        "No reads/writes for policy/evidence",
        "database",
        {},
        ("scenarios/database/primary_failover.feature", "scenarios/database/replication_cut.feature"),
    )
    monkeypatch.setattr(matrix, "ROWS", (ROWS[0], both, *ROWS[2:]))
    monkeypatch.setattr(matrix, "_BY_NUMBER", dict(enumerate(matrix.ROWS, 1)))
    return both


def test_a_row_drilled_by_two_features_is_found_by_either(monkeypatch):
    from harness.matrix import row_of

    both = two_features(monkeypatch)
    assert row_of("scenarios/database/primary_failover.feature") == (2, both)
    assert row_of(ROOT / "scenarios/database/replication_cut.feature") == (2, both)
    assert row_of("database/replication_cut.feature") == (2, both)  # as a drill's results name it


def test_a_row_drilled_by_two_features_takes_the_newest_verdict_of_either(tmp_path, monkeypatch):
    two_features(monkeypatch)
    cab = tmp_path / "cab.jsonl"
    run(tmp_path, cab, "a", results("database/primary_failover.feature", "pass", "2026-01-01T00:00:00+00:00"))
    run(tmp_path, cab, "b", results("database/replication_cut.feature", "fail", "2026-04-01T00:00:00+00:00"))
    run(tmp_path, cab, "c", results("database/primary_failover.feature", "pass", "2026-05-01T00:00:00+00:00", "lab"))
    entries, skipped = verified_entries(cab, load_key())
    rows = matrix.matrix_rows(entries, ROOT)
    assert rows[1]["scenarios"] == [
        "scenarios/database/primary_failover.feature",
        "scenarios/database/replication_cut.feature",
    ]
    assert rows[1]["scenario"] == "scenarios/database/primary_failover.feature" and rows[1]["scenario_present"]
    assert (rows[1]["last_verdict"], rows[1]["last_run"]) == ("fail", "2026-04-01T00:00:00+00:00")
    assert rows[1]["newer_uncounted"] == {"verdict": "pass", "finished_at": "2026-05-01T00:00:00+00:00", "class": "lab"}
    database = next(line for line in render(entries, skipped, ROOT).splitlines() if line.startswith("2 "))
    assert "scenarios/database/primary_failover.feature, scenarios/database/replication_cut.feature" in database
    assert "FAIL 2026-04-01T00:00:00+00:00 (staging)" in database
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert "replication_cut.feature (missing)" in render(entries, skipped, elsewhere)


def test_the_matrix_json_keeps_scenario_for_a_row_of_one_feature_and_adds_scenarios():
    rows = matrix.matrix_rows([], ROOT)
    assert [(r["scenario"], r["scenarios"]) for r in rows][0] == (
        "scenarios/api/stateless_outage.feature",
        ["scenarios/api/stateless_outage.feature"],
    )
    assert all(r["scenario_present"] and r["scenarios"] == [r["scenario"]] for r in rows)
