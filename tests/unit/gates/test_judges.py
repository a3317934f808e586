"""What each gate judges (system, runbook, lab): docs/verdicts.md lists every gate class with its
ids and its `judges` exactly as the code has them, and the outputs carry it: results.json, junit
properties, and the report's gate tables grouped by it (the system first, a lab gate marked)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.gates import GATES
from harness.gates.base import JUDGES
from harness.model import DrillResult
from harness.report import render_html, write_all

from .cases import CASES

DOC = Path(__file__).resolve().parents[3] / "docs" / "verdicts.md"
HEADER = "| Gate id | Class | Judges | What it reads |"


def doc_rows(text: str) -> dict[str, tuple[list[str], str, str]]:
    """{class: ([id patterns], judges, reads)} from the table of docs/verdicts.md."""
    lines = text.splitlines()
    start = lines.index(HEADER) + 2  # past the header and its |---| line
    rows: dict[str, tuple[list[str], str, str]] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == 4, f"a row of the table does not have 4 cells: {line}"
        ids, cls, judges, reads = cells
        assert cls not in rows, f"{cls} is listed twice"
        rows[cls] = (re.findall(r"`([^`]+)`", ids), judges, reads)
    return rows


def expected_row(cls: type) -> str:
    """The row the table needs for a gate class (its reads cell to be written by hand)."""
    ids = sorted({c.gate.id for c in CASES.get(cls, [])}) or [getattr(cls, "id", "") or "?"]
    return f"| {', '.join(f'`{i}`' for i in ids)} | {cls.__name__} | {cls.__dict__.get('judges')} | WHAT IT READS |"


def matches(pattern: str, gate_id: str) -> bool:
    regex = "".join(
        "[a-z0-9_]+" if part.startswith("<") else re.escape(part) for part in re.split(r"(<[a-z_]+>)", pattern)
    )
    return re.fullmatch(regex, gate_id) is not None


ROWS = doc_rows(DOC.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(GATES))
def test_docs_verdicts_lists_the_gate_with_what_it_judges(name):
    cls = GATES[name]
    assert name in ROWS, f"docs/verdicts.md lacks {name}; add the row:\n{expected_row(cls)}"
    patterns, judges, reads = ROWS[name]
    assert judges == cls.__dict__.get("judges"), (
        f"docs/verdicts.md says {name} judges {judges!r}; the code says {cls.__dict__.get('judges')!r}"
    )
    assert reads and "WHAT IT READS" not in reads, f"{name}: say in one line what the gate reads"
    ids = {c.gate.id for c in CASES.get(cls, [])} | ({cls.id} if isinstance(cls.__dict__.get("id"), str) else set())
    for gate_id in ids:
        assert any(matches(p, gate_id) for p in patterns), (
            f"{name} answers with id {gate_id!r}, which docs/verdicts.md does not list ({', '.join(patterns)})"
        )


def test_docs_verdicts_lists_no_gate_the_code_does_not_have():
    assert sorted(set(ROWS) - set(GATES)) == []
    assert {judges for _, judges, _ in ROWS.values()} <= set(JUDGES)


def test_the_docs_check_catches_a_wrong_judges_and_a_missing_gate():
    text = DOC.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if "| BackupRpo |" in line)
    wrong = doc_rows(text.replace(row, row.replace("| lab |", "| system |")))
    assert wrong["BackupRpo"][1] == "system" != GATES["BackupRpo"].judges
    assert "BackupRpo" not in doc_rows(text.replace(row + "\n", ""))


# ---- the outputs --------------------------------------------------------------------------------


def gate(gate_id: str, judges: str | None, verdict: str = "pass") -> dict:
    out = {
        "id": gate_id,
        "description": f"{gate_id} rule",
        "measured": 1,
        "threshold": "t",
        "verdict": verdict,
        "detail": "",
    }
    if judges is not None:
        out["judges"] = judges
    return out


def drill(*gates: dict) -> DrillResult:
    return DrillResult.from_json(
        {"drill": "d", "verdict": "pass", "scenarios": [{"name": "s1", "verdict": "pass", "gates": list(gates)}]}
    )


def gates_section(html: str) -> str:
    start = html.index("<h3>Gates</h3>")
    return html[start : html.index("<h3>Measurements</h3>", start)]


def test_the_report_groups_a_scenarios_gates_by_what_they_judge_system_first():
    html = render_html(
        drill(
            gate("hourly_snapshots", "lab"),
            gate("writes_after_failback", "runbook"),
            gate("rto_seconds", "system"),
            gate("old_gate", None),
        )
    )
    section = gates_section(html)
    order = [section.index(i) for i in ("rto_seconds", "writes_after_failback", "hourly_snapshots", "old_gate")]
    assert order == sorted(order)
    headings = re.findall(r"<h4[^>]*>([^<]+)</h4>", section)
    assert headings == [
        "The deployment under drill (system)",
        "The harness&#39;s runbook (runbook)",
        "Lab-only parts (lab): not evidence about the deployment",
        "Not stated",
    ]
    rows = re.findall(r"<tr>(.*?)</tr>", section, re.S)
    lab_row = next(r for r in rows if "hourly_snapshots" in r)
    assert 'class="tag judges-lab"' in lab_row and ">LAB<" in lab_row
    system_row = next(r for r in rows if "rto_seconds" in r)
    assert "judges-" not in system_row


def test_a_scenario_without_lab_gates_shows_no_lab_heading():
    section = gates_section(render_html(drill(gate("rto_seconds", "system"))))
    assert "Lab-only parts" not in section and "The deployment under drill (system)" in section


def test_judges_reaches_results_json_and_the_junit_properties(tmp_path):
    paths = write_all(drill(gate("hourly_snapshots", "lab", "fail"), gate("old_gate", None)), tmp_path)
    import json

    saved = json.loads(Path(paths["results"]).read_text())
    assert [g["judges"] for g in saved["scenarios"][0]["gates"]] == ["lab", None]
    cases = {c.get("name"): c for c in ET.parse(paths["junit"]).getroot().iter("testcase")}
    props = {c: {p.get("name"): p.get("value") for p in cases[c].findall("properties/property")} for c in cases}
    assert props["hourly_snapshots"]["judges"] == "lab"
    assert "judges" not in props["old_gate"]
