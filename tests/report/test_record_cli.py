"""The record's commands as a user runs them: drill verify, drill cab verify, drill report --pdf,
drill history, drill matrix --json, drill --version and the exit codes in --help. The output
folders are written by the runner's own write_outputs from a result built here (no lab)."""

from __future__ import annotations

import json

import pytest

from harness.report.browser import available

from .conftest import drill


def test_an_intact_folder_verifies_and_an_edited_file_is_named(recorded):
    first, second = recorded["dirs"]
    ok = drill("verify", str(second), *recorded["args"])
    assert ok.returncode == 0 and "INTACT" in ok.stdout and "line 2" in ok.stdout
    results = json.loads((first / "results.json").read_text())
    assert results["since_last_run"][0]["changed"] == ["first recorded run"]
    assert json.loads((second / "results.json").read_text())["since_last_run"][0]["previous"]["verdict"] == "fail"
    edited = (first / "results.json").read_text().replace('"verdict": "fail"', '"verdict": "pass"')
    (first / "results.json").write_text(edited)
    bad = drill("verify", str(first), *recorded["args"])
    assert bad.returncode == 1 and "results.json: changed since the drill wrote it" in bad.stdout
    refused = drill("report", str(first), *recorded["args"])
    assert refused.returncode == 1 and "not rebuilding" in refused.stdout


def test_a_forged_manifest_does_not_match_the_cab_line(recorded):
    folder = recorded["dirs"][1]
    (folder / "report.html").write_text("<p>all fine</p>")
    manifest = json.loads((folder / "manifest.json").read_text())
    import hashlib

    manifest["files"]["report.html"] = hashlib.sha256(b"<p>all fine</p>").hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    bad = drill("verify", str(folder), *recorded["args"])
    assert bad.returncode == 1 and "manifest.json: its sha256 is not the one" in bad.stdout and "line 2" in bad.stdout


def test_cab_verify_names_the_first_bad_line_and_matrix_skips_it(recorded):
    assert drill("cab", "verify", *recorded["args"]).returncode == 0
    lines = recorded["log"].read_text().splitlines()
    entry = json.loads(lines[0])
    entry["verdict"] = "pass"
    recorded["log"].write_text(json.dumps(entry) + "\n" + lines[1] + "\n")
    bad = drill("cab", "verify", *recorded["args"])
    assert bad.returncode == 1 and "line 1: its hash does not match its content" in bad.stdout
    # the fixture's runs are embedded-lab rehearsals: counted here only because --count says so
    matrix = json.loads(drill("matrix", "--json", "--count", "lab,staging,production", *recorded["args"]).stdout)
    assert matrix["skipped_unverified"] == 1 and matrix["lab_runs_counted"]
    assert matrix["rows"][1]["last_verdict"] == "pass" and matrix["rows"][1]["last_run"].startswith("2026-07")
    assert matrix["rows"][1]["last_class"] == "lab"
    default = json.loads(drill("matrix", "--json", *recorded["args"]).stdout)
    assert default["rows"][1]["last_verdict"] is None and default["rows"][1]["newer_uncounted"]["class"] == "lab"
    missing = drill("cab", "verify", "--cab-log", str(recorded["log"]), "--cab-key", "/nonexistent.key")
    assert missing.returncode == 2 and "no CAB key" in missing.stderr


def test_history_json_and_its_trend_page(recorded, tmp_path):
    page = tmp_path / "history.html"
    done = drill("history", "--json", "--html", str(page), *recorded["args"])
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    database = next(d for d in data["domains"] if d["domain"] == "database")
    assert [(q["quarter"], q["passed"], q["rto_max_s"]) for q in database["quarters"]] == [
        ("2026-Q2", 0, 40000.0),
        ("2026-Q3", 1, 1.5),
    ]
    # embedded-lab runs: shown with their class, and they make no domain current
    assert [q["classes"] for q in database["quarters"]] == [{"lab": 1}, {"lab": 1}]
    assert database["last_pass"] is None and database["overdue"] and data["runs_by_class"] == {"lab": 2}
    assert page.read_text().count('<svg class="chart"') == 6


@pytest.mark.skipif(available() is not None, reason=f"headless Chromium unavailable: {available()}")
def test_report_rebuilds_with_a_pdf_and_the_rebuild_is_recorded(recorded):
    folder = recorded["dirs"][1]
    done = drill("report", str(folder), "--pdf", *recorded["args"])
    assert done.returncode == 0, done.stderr
    assert (folder / "report.pdf").read_bytes().startswith(b"%PDF")
    assert "report.pdf" in json.loads((folder / "manifest.json").read_text())["files"]
    last = json.loads(recorded["log"].read_text().splitlines()[-1])
    assert (last["kind"], last["event"], last["files"]) == ("report", "rebuilt", ["report.html", "report.pdf"])
    assert drill("verify", str(folder), *recorded["args"]).returncode == 0  # the newest line naming it


def test_version_and_the_exit_codes_in_help():
    version = drill("--version")
    assert version.returncode == 0 and version.stdout.startswith("drill 0.")
    helptext = drill("--help").stdout
    for line in (
        "0    pass",
        "1    a gate failed",
        "2    invalid input",
        "3    a gate could not be judged",
        "4    the lab or the target could not be reached",
        "130  interrupted",
    ):
        assert line in helptext


def test_a_run_outside_its_window_is_refused_before_any_lab_starts(tmp_path):
    done = drill(
        "run",
        "drills/quarterly-database.yaml",
        "--out",
        str(tmp_path / "out"),
        "--window",
        "2020-01-01T00:00Z/2020-01-01T02:00Z",
    )
    assert done.returncode == 2 and "outside the change window" in done.stderr and "--outside-window" in done.stderr
    assert not (tmp_path / "out").exists() and "lab" not in done.stderr.split("outside")[0]
