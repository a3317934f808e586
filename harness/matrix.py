"""The spec's failure-modes matrix (section 2), each row with its scenario and last verdict."""

from __future__ import annotations

import json
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


def last_verdicts(cab_log: Path) -> dict[str, tuple[str, str]]:
    """{feature file name: (verdict, finished_at)} from the newest report of each, via the CAB log."""
    found: dict[str, tuple[str, str]] = {}
    if not cab_log.exists():
        return found
    for line in cab_log.read_text().splitlines():
        try:
            entry = json.loads(line)
            results = json.loads((Path(entry["report"]).parent / "results.json").read_text())
        except (ValueError, KeyError, OSError, TypeError):
            continue
        for scenario in results.get("scenarios", []):
            feature = Path(str(scenario.get("feature", ""))).name
            found[feature] = (scenario.get("verdict", "unknown"), results.get("finished_at") or "")
    return found


def render(cab_log: Path, root: Path) -> str:
    verdicts = last_verdicts(cab_log)
    rows = []
    for i, row in enumerate(ROWS, 1):
        if row.feature is None:
            scenario, verdict = "(no scenario yet)", "-"
        else:
            scenario = row.feature if (root / row.feature).exists() else f"{row.feature} (missing)"
            if Path(row.feature).name in verdicts:
                verdict, when = verdicts[Path(row.feature).name]
                verdict = f"{verdict.upper()} {when}".strip()
            else:
                verdict = "never run"
        rows.append((str(i), row.component, row.failure, scenario, verdict))
    header = ("#", "Component", "Failure", "Scenario", "Last verdict")
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(4)]
    return "\n".join(" ".join(f"{cell:{w}}" for cell, w in zip(r, widths)) + " " + r[4] for r in [header, *rows])
