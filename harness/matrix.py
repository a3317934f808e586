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
    Row("Intune Graph degraded", "publish/assignment fails", None),
    Row("Jamf API outage", "macOS distribution fails", None),
    Row("SCCM site server down", "offline site distribution interrupted", None),
    Row("Event store write blocked", "Audit events not persisted", None),
)


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
    lines = [f"{'#':2} {'Component':36} {'Failure':38} {'Scenario':45} Last verdict"]
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
        lines.append(f"{i:<2} {row.component:36} {row.failure:38} {scenario:45} {verdict}")
    return "\n".join(lines)
