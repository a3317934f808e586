"""The spec's failure-modes matrix (section 2), each row with its scenario and last verdict."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Row:
    component: str
    failure: str
    feature: str | None       # scenarios/... path, None while the row has no scenario yet


ROWS = (
    Row("Control Plane API/Policy services", "Stateless service outage", "scenarios/api/stateless_outage.feature"),
    Row("Database", "Primary unavailable", "scenarios/database/primary_failover.feature"),
    Row("Evidence store", "Object storage outage", "scenarios/evidence/object_storage_outage.feature"),
    Row("Intune Graph degraded", "publish/assignment fails", "scenarios/connectors/intune_graph_degraded.feature"),
    Row("Jamf API outage", "macOS distribution fails", "scenarios/connectors/jamf_outage.feature"),
    Row("SCCM site server down", "offline site distribution interrupted", "scenarios/connectors/sccm_site_down.feature"),
    Row("Event store write blocked", "Audit events not persisted", "scenarios/eventstore/write_blocked.feature"),
)


def row_of(feature: str | Path) -> tuple[int, Row] | None:
    """(row number from 1, row) of the matrix row whose scenario is this feature file, else None."""
    text = str(feature).replace("\\", "/")
    for number, row in enumerate(ROWS, 1):
        if row.feature is None:
            continue
        relative = row.feature.removeprefix("scenarios/")    # how a drill's results name it
        if text in (row.feature, relative) or text.endswith("/" + relative):
            return number, row
    return None


def matrix_order(features) -> list:
    """Feature paths in the matrix's row order; features of no row follow, in name order."""
    def key(path):
        found = row_of(path)
        return (found[0] if found else len(ROWS) + 1, str(path))
    return sorted(features, key=key)


def last_verdicts(entries) -> dict[str, tuple[str, str]]:
    """{feature file name: (verdict, finished_at)} of the newest drill that ran each, from verified
    CAB log entries (dry runs prove nothing and do not count)."""
    found: dict[str, tuple[str, str]] = {}
    for entry in entries:
        if entry.get("kind", "drill") != "drill" or entry.get("dry_run"):
            continue
        for scenario in entry.get("scenarios") or ():
            feature = Path(str(scenario.get("feature") or "")).name
            if feature:
                found[feature] = (scenario.get("verdict") or "unknown", entry.get("finished_at") or "")
    return found


def matrix_rows(entries, root: Path) -> list[dict]:
    verdicts = last_verdicts(entries)
    rows = []
    for i, row in enumerate(ROWS, 1):
        name = Path(row.feature).name if row.feature else None
        verdict, when = verdicts.get(name, (None, None)) if name else (None, None)
        rows.append({"row": i, "component": row.component, "failure": row.failure, "scenario": row.feature,
                     "scenario_present": bool(row.feature and (root / row.feature).exists()),
                     "last_verdict": verdict, "last_run": when})
    return rows


def render(entries, skipped: int, root: Path) -> str:
    table = []
    for r in matrix_rows(entries, root):
        if r["scenario"] is None:
            scenario, verdict = "(no scenario yet)", "-"
        else:
            scenario = r["scenario"] if r["scenario_present"] else f"{r['scenario']} (missing)"
            verdict = f"{r['last_verdict'].upper()} {r['last_run']}".strip() if r["last_verdict"] else "never run"
        table.append((str(r["row"]), r["component"], r["failure"], scenario, verdict))
    header = ("#", "Component", "Failure", "Scenario", "Last verdict")
    widths = [max(len(r[c]) for r in [header, *table]) for c in range(4)]
    lines = [" ".join(f"{cell:{w}}" for cell, w in zip(r, widths)) + " " + r[4] for r in [header, *table]]
    if skipped:
        lines.append(f"({skipped} CAB log line(s) skipped: not verified; `drill cab verify` names them)")
    return "\n".join(lines)
