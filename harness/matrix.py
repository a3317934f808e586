"""The spec's failure-modes matrix (section 2), each row with its scenario and last verdict."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .environments import DEFAULT_COUNT, LAB, class_of, count_words, lab_warning
from .inputs import printable


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
    Row("SCCM site server down", "offline site distribution interrupted",
        "scenarios/connectors/sccm_site_down.feature"),
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


def last_verdicts(entries, count=DEFAULT_COUNT) -> dict[str, tuple[str, str, str]]:
    """{feature file name: (verdict, finished_at, environment class)} of the newest drill that ran
    each, from verified CAB log entries, among the runs of the classes the policy `count`s (dry
    runs prove nothing and do not count; a lab run is a rehearsal unless the policy counts lab)."""
    found: dict[str, tuple[str, str, str]] = {}
    for entry in entries:
        if entry.get("kind", "drill") != "drill" or entry.get("dry_run") or class_of(entry) not in set(count):
            continue
        for scenario in entry.get("scenarios") or ():
            feature = Path(str(scenario.get("feature") or "")).name
            if feature and scenario.get("verdict") != "not_run":    # could not act: the row keeps its verdict
                found[feature] = (scenario.get("verdict") or "unknown", entry.get("finished_at") or "",
                                  class_of(entry))
    return found


def _newest_uncounted(entries, count) -> dict[str, tuple[str, str, str]]:
    others = [e for e in entries if class_of(e) not in set(count)]
    return last_verdicts(others, count=tuple({class_of(e) for e in others}))


def matrix_rows(entries, root: Path, count=DEFAULT_COUNT) -> list[dict]:
    entries = list(entries)
    verdicts = last_verdicts(entries, count)
    uncounted = _newest_uncounted(entries, count)
    rows = []
    for i, row in enumerate(ROWS, 1):
        name = Path(row.feature).name if row.feature else None
        verdict, when, cls = verdicts.get(name, (None, None, None)) if name else (None, None, None)
        other = uncounted.get(name) if name else None
        if other is not None and when is not None and other[1] <= when:
            other = None        # only a newer run that does not count is worth naming
        rows.append({"row": i, "component": row.component, "failure": row.failure, "scenario": row.feature,
                     "scenario_present": bool(row.feature and (root / row.feature).exists()),
                     "last_verdict": verdict, "last_run": when, "last_class": cls,
                     "newer_uncounted": None if other is None else
                     {"verdict": other[0], "finished_at": other[1], "class": other[2]}})
    return rows


def render(entries, skipped: int, root: Path, count=DEFAULT_COUNT) -> str:
    table = []
    for r in matrix_rows(entries, root, count):
        if r["scenario"] is None:
            scenario, verdict = "(no scenario yet)", "-"
        else:
            scenario = r["scenario"] if r["scenario_present"] else f"{r['scenario']} (missing)"
            verdict = f"{r['last_verdict'].upper()} {r['last_run']} ({r['last_class']})".strip() \
                if r["last_verdict"] else "never run"
            other = r["newer_uncounted"]
            if other:
                verdict += (f"; not counted: {other['verdict'].upper()} {other['finished_at']} ({other['class']}"
                            f"{': a rehearsal' if other['class'] == LAB else ''})")
        table.append((str(r["row"]), r["component"], r["failure"], scenario, printable(verdict)))
    header = ("#", "Component", "Failure", "Scenario", "Last verdict")
    widths = [max(len(r[c]) for r in [header, *table]) for c in range(4)]
    lines = [" ".join(f"{cell:{w}}" for cell, w in zip(r, widths, strict=False)) + " " + r[4] for r in [header, *table]]
    warning = lab_warning(count)
    lines.append(warning or f"(last verdicts of runs of class {count_words(count)}; --count chooses the classes)")
    if skipped:
        lines.append(f"({skipped} CAB log line(s) skipped: not verified; `drill cab verify` names them)")
    return "\n".join(lines)
