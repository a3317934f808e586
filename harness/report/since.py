"""Since last run: for each matrix row a drill covers and for its HA domain, the previous verified
drill's verdict and RTO/RPO from the CAB log, and what changed since (the plan, the harness, the
system under drill). Pure: results and CAB entries in, rows out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.matrix import ROWS

NOT_RUN = "not_run"  # a run (or scenario) that could not act (harness.faults.refused): no previous verdict


def _drills(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e.get("kind", "drill") == "drill" and not e.get("dry_run")]


def _harness_text(harness: dict[str, Any] | None) -> str:
    harness = harness or {}
    commit = harness.get("commit")
    return f"{harness.get('version') or 'unknown'}" + (f" ({commit})" if commit else "")


def changes(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between the previous record and this run, said plainly."""
    found = []
    if before.get("plan_sha256") != now.get("plan_sha256"):
        found.append(
            f"plan changed (sha256 {str(before.get('plan_sha256'))[:12]} -> {str(now.get('plan_sha256'))[:12]})"
        )
    if _harness_text(before.get("harness")) != _harness_text(now.get("harness")):
        found.append(f"harness {_harness_text(before.get('harness'))} -> {_harness_text(now.get('harness'))}")
    if before.get("system_version") != now.get("system_version"):
        found.append(
            f"system under drill {before.get('system_version') or 'unknown'} -> "
            f"{now.get('system_version') or 'unknown'}"
        )
    if before.get("environment_class") != now.get("environment_class"):
        found.append(
            f"environment {before.get('environment_class') or 'unknown'} -> {now.get('environment_class') or 'unknown'}"
        )
    return found


def _figures(scenario: dict[str, Any]) -> dict[str, Any]:
    m = scenario.get("measurements") if "measurements" in scenario else scenario
    return {
        "verdict": scenario.get("verdict"),
        "rto_seconds": (m or {}).get("rto_seconds"),
        "rpo_seconds": (m or {}).get("rpo_seconds"),
    }


def since_last_run(results: dict[str, Any], previous: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    drills = _drills(previous)
    rows: list[dict[str, Any]] = []
    for scenario in results.get("scenarios") or ():
        number = (scenario.get("matrix_row") or {}).get("number")
        if number is None or any(r.get("matrix_row") == number for r in rows):
            continue
        before, before_scenario = None, None
        for entry in reversed(drills):
            match = [
                s for s in entry.get("scenarios") or () if s.get("matrix_row") == number and s.get("verdict") != NOT_RUN
            ]
            if match:
                before, before_scenario = entry, match[0]
                break
        row = ROWS[number - 1]
        rows.append(
            {
                "subject": f"matrix row {number}: {row.component}, {row.failure}",
                "matrix_row": number,
                "now": _figures(scenario),
                **_previous(before, before_scenario, results),
            }
        )
    domain = results.get("ha_domain")
    if domain:
        before = next(
            (e for e in reversed(drills) if e.get("ha_domain") == domain and e.get("verdict") != NOT_RUN), None
        )
        rows.append(
            {
                "subject": f"HA domain {domain}",
                "matrix_row": None,
                "now": {"verdict": results.get("verdict")},
                **_previous(before, before, results),
            }
        )
    return rows


def _previous(entry: dict[str, Any] | None, scenario: dict[str, Any] | None, now: dict[str, Any]) -> dict[str, Any]:
    if entry is None:
        return {"previous": None, "changed": ["first recorded run"]}
    figures = _figures(scenario or {}) if scenario is not entry else {"verdict": entry.get("verdict")}
    return {
        "previous": {"drill": entry.get("drill"), "finished_at": entry.get("finished_at"), **figures},
        "changed": changes(entry, now) or ["nothing recorded changed"],
    }
