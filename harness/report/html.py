"""report.html: one self-contained page for the CAB (inline CSS and SVG, autoescaped Jinja2)."""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from pathlib import Path
from typing import Any

import jinja2

from harness.environments import REHEARSAL, environment_of
from harness.files import atomic_write_text, iter_gates, plain, verdict_text
from harness.measure.probes import PERIOD_DAYS, period_words
from harness.model import DrillResult
from harness.report.risk import assess, risk_of
from harness.text import human_seconds, show

FILENAME = "report.html"
TEMPLATE = "report.html.j2"
VERDICT_WORDS = {
    "pass": "PASS: every gate passed",
    "fail": "FAIL: at least one gate failed",
    "unknown": "UNKNOWN: at least one gate could not be evaluated",
    "waived": "WAIVED: a gate met only a target the plan waived, not the spec's floor: not a pass",
}
_SECRET = re.compile(r"pass(word|wd)?|secret|token|credential|private|api[_-]?key|access[_-]?key", re.I)

# Timeline chart geometry, in SVG user units.
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 720, 120, 48, 12, 12, 28
ROW_Y = {"ok": 30, "info": 55, "fail": 80}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),  # package data: works installed
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["show"] = show
    env.filters["human_seconds"] = human_seconds
    return env


MARKERS = ("detect", "promote", "reconnect", "first_write", "failback")


def fault_origin(events: list[dict[str, Any]], phases: dict[str, Any]) -> dict[str, Any] | None:
    """The injection the recovery phases count from (phases are seconds after it): the inject event
    whose offsets match the recorded events of the same names, else the first injection."""
    injects = [e for e in events if e.get("kind") == "inject" and isinstance(e.get("t"), (int, float))]
    for inject in injects:
        for e in events:
            kind = e.get("kind")
            phase = phases.get(kind) if isinstance(kind, str) else None
            if isinstance(phase, (int, float)) and abs(e["t"] - inject["t"] - phase) < 0.01:
                return inject
    return injects[0] if injects else None


def timeline(
    data: dict[str, Any] | None,
    events: list[dict[str, Any]] | None = None,
    phases: dict[str, Any] | None = None,
    rto: Any = None,
) -> dict[str, Any]:
    """SVG geometry of a scenario timeline on one time base, seconds from the fault: probe dots by
    status, shaded fault windows, the recovery markers (detect, promote, reconnect, first write,
    failback) and the RTO bracket. A window whose end is null runs to the right edge and is
    labelled "not healed"."""
    data = data or {}
    origin = fault_origin(events or [], phases or {})
    zero = float(origin["t"]) if origin else 0.0
    probes = [(float(t), str(s)) for t, s in data.get("probes") or () if t is not None]
    windows = [
        (w[0], w[1] if len(w) > 1 else None, w[2] if len(w) > 2 else "fault") for w in data.get("fault_windows") or ()
    ]
    times = [t for t, _ in probes] + [float(x) for w in windows for x in w[:2] if x is not None]
    t0 = min([0.0] + times)
    t1 = max([t0 + 1.0] + times)
    span = t1 - t0
    plot_w = WIDTH - LEFT - RIGHT

    def x(t: float) -> float:
        return round(LEFT + (t - t0) / span * plot_w, 2)

    markers = []
    if origin is not None:
        found = sorted(
            (at, name)
            for name in MARKERS
            if isinstance(at := (phases or {}).get(name), (int, float)) and t0 <= zero + at <= t1
        )
        last_label = -1e9
        for at, name in found:  # labels too close to the one before stay in the caption only
            words = f"{name.replace('_', ' ')} +{at:.3g} s"
            shown = x(zero + at) - last_label >= 70
            last_label = x(zero + at) if shown else last_label
            markers.append({"x": x(zero + at), "label": words if shown else "", "title": words})
    bracket = None
    if origin is not None and isinstance(rto, (int, float)) and not isinstance(rto, bool):
        bracket = {"x1": x(zero), "x2": x(min(t1, zero + rto)), "label": f"RTO {human_seconds(rto)}"}

    dots = [
        {"x": x(t), "y": ROW_Y.get(s, ROW_Y["info"]), "status": s if s in ROW_Y else "info", "title": f"{t:.1f} s: {s}"}
        for t, s in probes
    ]
    shaded = []
    for start, end, name in windows:
        left = x(float(start)) if start is not None else LEFT
        right = x(float(end)) if end is not None else WIDTH - RIGHT
        label = f"{name} (not healed)" if end is None else str(name)
        shaded.append({"x": left, "w": max(right - left, 1.0), "label": label})
    ticks = [{"x": x(t0 + span * i / 5), "label": _tick(t0 + span * i / 5 - zero, span)} for i in range(6)]
    wall = origin.get("wall") if origin else None
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "axis_y": HEIGHT - BOTTOM,
        "rows": ROW_Y,
        "dots": dots,
        "windows": shaded,
        "ticks": ticks,
        "empty": not probes,
        "counts": _counts(probes),
        "markers": markers,
        "bracket": bracket,
        "origin": None if origin is None else {"name": origin.get("name"), "wall": _wall(wall)},
    }


def _wall(epoch: Any) -> str | None:
    if not isinstance(epoch, (int, float)) or not epoch:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-4] + " UTC"


def _tick(t: float, span: float) -> str:
    sign = "+" if t > 0.05 else ""
    if span > 900:
        return f"{sign}{t / 60:.1f} min"
    return f"{sign}{t:.0f} s" if span >= 50 else f"{sign}{t:.1f} s"


def _counts(probes: list[tuple[float, str]]) -> dict[str, int]:
    counts = {"ok": 0, "fail": 0, "info": 0}
    for _, status in probes:
        counts[status if status in counts else "info"] += 1
    return counts


NOT_MEASURED = "n/a"


def against(measured: Any, target: Any) -> dict[str, Any]:
    """A time measured against its at-most target: the words and whether it was met."""
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (measured, target))
    if not numbers:
        return {
            "measured": human_seconds(measured),
            "target": human_seconds(target),
            "met": None,
            "margin": "not measured" if target is not None else "no target",
        }
    met = measured <= target
    gap = human_seconds(abs(target - measured))
    return {
        "measured": human_seconds(measured),
        "target": human_seconds(target),
        "met": met,
        "margin": f"met, {gap} to spare" if met else f"missed by {gap}",
    }


def summary_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Page 1: each scenario's RTO and RPO against the plan's targets, in words; a target the plan
    waived (looser than the spec's floor) is shown against the spec's floor."""
    targets = {k: floor_of(results, k, v) for k, v in (results.get("targets") or {}).items()}
    rows = []
    for s in results.get("scenarios") or ():
        m = s.get("measurements") or {}
        row = (s.get("matrix_row") or {}).get("number")
        rows.append(
            {
                "name": s.get("name"),
                "row": row,
                "verdict": verdict_text(s.get("verdict")),
                "rto": against(m.get("rto_seconds"), targets.get("rto_seconds")) if "rto_seconds" in m else None,
                "rpo": against(m.get("rpo_seconds"), targets.get("rpo_seconds")) if "rpo_seconds" in m else None,
                "lost": m.get("lost_writes"),
                "duplicated": m.get("duplicated_writes"),
            }
        )
    return rows


BUDGET_GATE = "availability_budget"
BUDGET_OUTCOME = {
    "pass": "met",
    "fail": "not met",
    "unknown": "not judged",
    "waived": "met only under the plan's waived per-window target, not the spec's 99.9% (waived)",
}


def _served(ratio: Any) -> str:
    """A served share as a percentage, truncated (never shown higher than measured): 99.38%."""
    if not isinstance(ratio, (int, float)) or isinstance(ratio, bool):
        return "n/a"
    return f"{math.floor(ratio * 10000 + 1e-6) / 100:.2f}%"


def _percent(value: Any) -> str:
    """11.574 -> "11.6%", 25.0 -> "25%", 0 -> "0%"."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "n/a"
    return f"{value:.1f}".rstrip("0").rstrip(".") + "%"


def budget_gate(scenario: dict[str, Any]) -> dict[str, Any] | None:
    return next((g for g in scenario.get("gates") or () if g.get("id") == BUDGET_GATE), None)


def availability_words(m: dict[str, Any], gate: dict[str, Any] | None) -> str | None:
    """One scenario's error budget in one sentence (no final stop), from its measurements and its
    availability_budget gate: "1 bad 5-minute window (99.38% served); 11.6% of the month's error
    budget, allowance 25%: met". None when neither was recorded (results of an older harness)."""
    if gate is None and "bad_windows" not in m:
        return None
    verdict = verdict_text((gate or {}).get("verdict"))
    if not m.get("windows_observed"):
        return "availability not measured: the scenario made no request to the system"
    bad = [w for w in m.get("availability_windows") or () if isinstance(w, dict) and not w.get("good")]
    count = m.get("bad_windows")
    count = len(bad) if not isinstance(count, int) else count
    if count == 0:
        observed = m.get("windows_observed")
        what = (
            f"no bad 5-minute window ({_served(m.get('availability'))} served at the lowest, "
            f"{observed} window{'' if observed == 1 else 's'} observed)"
        )
    else:
        ratios = ", ".join(_served(w.get("ratio")) for w in bad[:3]) + (", ..." if count > 3 else "")
        what = f"{count} bad 5-minute window{'' if count == 1 else 's'} ({ratios} served)"
    used = m.get("error_budget_used_pct")
    period = period_words(m.get("availability_period_days") or PERIOD_DAYS)
    used_words = "more than all" if used is None else _percent(used)
    return (
        f"{what}; {used_words} of {period} error budget, allowance {_percent(m.get('drill_allowance_pct'))}: "
        f"{BUDGET_OUTCOME.get(verdict, verdict)}"
    )


def availability_sentence(results: dict[str, Any]) -> str | None:
    """Page 1: the error budget each scenario used, one sentence each (one scenario: one sentence)."""
    said = []
    region = None
    for s in results.get("scenarios") or ():
        m = s.get("measurements") or {}
        words = availability_words(m, budget_gate(s))
        if words:
            said.append((str(s.get("name") or "scenario"), words))
            region = region or m.get("availability_region")
    if not said:
        return None
    where = f" in region {region}" if region else ""
    lead = f"Availability, on the harness's own requests{where}: "
    if len(said) == 1:
        return lead + said[0][1] + "."
    return lead + " ".join(f"{name}: {words}." for name, words in said)


def _clock(epoch: Any) -> str:
    if not isinstance(epoch, (int, float)) or isinstance(epoch, bool):
        return "?"
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%H:%M:%S").removesuffix(":00")


def _budget_sentence(m: dict[str, Any], gate: dict[str, Any] | None) -> str | None:
    """A scenario's error budget: the sentence of page 1, then each window it observed (UTC)."""
    words = availability_words(m, gate)
    if words is None:
        return None
    windows = [w for w in m.get("availability_windows") or () if isinstance(w, dict)]
    shown = []
    for w in windows[:12]:
        part = (
            f"{_clock(w.get('start'))}-{_clock(w.get('end'))} {w.get('served')} of {w.get('requests')} served"
            f"{'' if w.get('good') else ' (bad)'}"
        )
        start, end, first, last = (w.get(k) for k in ("start", "end", "observed_from", "observed_to"))
        if (
            isinstance(start, (int, float))
            and isinstance(end, (int, float))
            and isinstance(first, (int, float))
            and isinstance(last, (int, float))
            and (first - start > 10 or end - last > 10)
        ):
            part += f", observed {_clock(first)}-{_clock(last)} only"
        shown.append(part)
    more = f"; {len(windows) - 12} more" if len(windows) > 12 else ""
    listing = f" Windows (UTC): {'; '.join(shown)}{more}." if shown else ""
    return (
        f"{words[0].upper()}{words[1:]}. Every request of the harness counts (writes, reads, approvals, "
        f"publishes, evidence uploads, probes), served or not; what a probe's health report says does not count."
        f"{listing}"
    )


def _gates_view(gates: list[dict[str, Any]], scenario: str, risk: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        dict(
            g,
            verdict=verdict_text(g.get("verdict")),
            risk=risk_of(risk, scenario, str(g.get("id"))),
            judges=g.get("judges") if g.get("judges") in JUDGES_SHOWN else None,
        )
        for g in gates
    ]


# What a gate judges, as each scenario's gate tables are grouped: the deployment first; a lab gate
# says in words that it is no evidence about the deployment.
JUDGES_SHOWN = {
    "system": (
        "The deployment under drill (system)",
        "What the load balancer, the Control Plane, the database, the stores and the connectors did.",
    ),
    "runbook": (
        "The harness's runbook (runbook)",
        "A procedure the harness performed for the operator (a failback, the heal of its faults, the run "
        "itself): evidence about that procedure, not about the deployment by itself.",
    ),
    "lab": (
        "Lab-only parts (lab): not evidence about the deployment",
        "These gates judge parts that exist only in the lab (its backup service, its key-vault stand-in, made "
        "by harness code); whatever their verdict, they prove nothing about the deployment.",
    ),
    None: ("Not stated", "Results written before gates said what they judge."),
}


def gate_groups(gates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A scenario's gates grouped by what they judge (system, runbook, lab, then not stated), each
    group in the order judged; empty groups left out."""
    groups = []
    for judges, (title, note) in JUDGES_SHOWN.items():
        mine = [g for g in gates if g.get("judges") == judges]
        if mine:
            groups.append({"judges": judges or "unstated", "title": title, "note": note, "gates": mine})
    return groups


def _scenario_view(scenario: dict[str, Any], risk: dict[str, Any] | None = None) -> dict[str, Any]:
    measurements = scenario.get("measurements") or {}
    gates = _gates_view(scenario.get("gates") or [], str(scenario.get("name", "scenario")), risk or {})
    return {
        "faults": list(scenario.get("faults") or ()),
        "not_applicable": sorted((scenario.get("not_applicable") or {}).items()),
        "budget": _budget_sentence(measurements, budget_gate(scenario)),
        "name": scenario.get("name", "scenario"),
        "verdict": verdict_text(scenario.get("verdict")),
        "feature": scenario.get("feature"),
        "matrix_row": scenario.get("matrix_row"),
        "description": [line.strip() for line in (scenario.get("description") or "").splitlines() if line.strip()],
        "tags": list(scenario.get("tags") or ()),
        "error": scenario.get("error"),
        "observations": list(scenario.get("observations") or ()),
        "measurements": sorted(
            (k, v)
            for k, v in measurements.items()
            if k not in ("availability_buckets", "availability_windows", "sequence")
        ),
        "phases": sorted((scenario.get("phases") or {}).items(), key=lambda kv: (kv[1] is None, kv[1] or 0)),
        "lost_write_keys": list(scenario.get("lost_write_keys") or ()),
        "lost_measured": measurements.get("lost_writes") is not None,
        "correlation_ids": list(scenario.get("correlation_ids") or ()),
        "gates": gates,
        "gate_groups": gate_groups(gates),
        "timeline": timeline(
            scenario.get("timeline"), scenario.get("events"), scenario.get("phases"), measurements.get("rto_seconds")
        ),
        "duplicated": measurements.get("duplicated_writes"),
    }


def _redact(environment: dict[str, Any]) -> list[tuple[str, Any]]:
    # Secrets never appear in reports, even if a caller put one in the environment block.
    return [(k, "(redacted)" if _SECRET.search(str(k)) else v) for k, v in sorted(environment.items())]


def report_view(result: DrillResult) -> dict[str, Any]:
    """Everything the template shows, derived from the drill's result; missing fields read unknown."""
    results = plain(result.to_json())  # valid UTF-8, secret shapes masked, as in results.json
    verdict = verdict_text(results.get("verdict"))
    targets = results.get("targets") or {}
    risk = results.get("risk") or assess(results, None)  # a result not run through the runner: scored here
    not_passed = [(c, g) for c, g in iter_gates(results) if verdict_text(g.get("verdict")) != "pass"]
    return {
        "title": results.get("title") or results.get("drill") or "Disaster-recovery drill",
        "drill": results.get("drill"),
        "correlation_id": results.get("correlation_id"),
        "started_at": results.get("started_at"),
        "finished_at": results.get("finished_at"),
        "schema_version": results.get("schema_version"),
        "verdict": verdict,
        "verdict_words": VERDICT_WORDS[verdict],
        "dry_run": bool(results.get("dry_run")),
        "not_run": results.get("not_run") or None,
        "target_rows": [
            {
                "key": k,
                "target": v,
                **floor_view(k, v, results),
                "measured": [
                    (s.get("measurements") or {}).get(k, NOT_MEASURED) for s in results.get("scenarios") or ()
                ],
            }
            for k, v in targets.items()
        ],
        "not_passed": [
            {"scenario": c, "id": g.get("id"), "verdict": verdict_text(g.get("verdict")), "detail": g.get("detail")}
            for c, g in not_passed
        ],
        "drill_gates": _gates_view(results.get("gates") or [], str(results.get("drill")), risk),
        "scenarios": [_scenario_view(s, risk) for s in results.get("scenarios") or ()],
        "summary": summary_rows(results),
        "waived": waived_view(results),  # page 1, in red: each waived gate and its waiver
        "availability": availability_sentence(results),
        "risk": risk,
        "residual": risk.get("residual"),
        "signoff": results.get("signoff") or {},
        "environment_class": results.get("environment_class") or "unknown",
        "run_environment": environment_of(results),  # {class, name}: lab runs are rehearsals
        "rehearsal": environment_of(results)["class"] == "lab",
        "rehearsal_text": REHEARSAL,
        "system_version": results.get("system_version"),
        "harness": results.get("harness") or {},
        "plan": results.get("plan"),
        "plan_sha256": results.get("plan_sha256"),
        "since": list(results.get("since_last_run") or ()),
        "correlation_ids": list(results.get("correlation_ids") or ()),
        "environment": _redact(
            {k: v for k, v in (results.get("environment") or {}).items() if k not in ("class", "name")}
        ),
    }


def render_html(result: DrillResult) -> str:
    """The report page as text, from the package's `templates/report.html.j2` with autoescape on."""
    return _environment().get_template(TEMPLATE).render(report_view(result))


def write_html(result: DrillResult, out_dir: str | os.PathLike[str]) -> Path:
    """Write `out_dir/report.html` atomically; returns its path."""
    return atomic_write_text(Path(out_dir) / FILENAME, render_html(result))


def floor_view(key: str, target: Any, results: dict[str, Any]) -> dict[str, Any]:
    """The spec's floor beside a target (results.json's spec_floors; harness.spec_floors): its
    words, its clause and whether the plan's target is looser (then waived: a plan cannot run
    a looser one otherwise)."""
    floor = (results.get("spec_floors") or {}).get(key)
    if not isinstance(floor, dict) or not isinstance(floor.get("floor"), (int, float)):
        return {"floor": None, "clause": None, "looser": False}
    at_most = floor.get("operator") == "<="
    number = isinstance(target, (int, float)) and not isinstance(target, bool)
    looser = number and (target > floor["floor"] if at_most else target < floor["floor"])
    return {
        "floor": f"{'at most' if at_most else 'at least'} {show(floor['floor'])}",
        "clause": floor.get("clause"),
        "looser": bool(looser),
    }


def waived_view(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every gate judged waived (it met only the plan's waived target, not the spec's floor), with
    its waiver's reason, approver and expiry, for page 1."""
    rows = []
    for scenario, gate in iter_gates(results):
        if verdict_text(gate.get("verdict")) != "waived":
            continue
        waiver = gate.get("waiver") or {}
        unit = f" {gate['unit']}" if gate.get("unit") and gate.get("unit") != "ratio" else ""
        rows.append(
            {
                "scenario": scenario,
                "id": gate.get("id"),
                "measured": f"{show(gate.get('measured'))}{unit}",
                "target": show(gate.get("threshold")),
                "floor": f"{show(waiver.get('operator'))} {show(waiver.get('floor'))}{unit}",
                "clause": waiver.get("clause"),
                "reason": waiver.get("reason"),
                "approved_by": waiver.get("approved_by"),
                "expires": waiver.get("expires"),
            }
        )
    return rows


def floor_of(results: dict[str, Any], key: str, target: Any) -> Any:
    """The target, or the spec's floor when the (waived) target is looser."""
    floor = (results.get("spec_floors") or {}).get(key)
    looser = floor_view(key, target, results)["looser"]  # only where floor is a mapping with a number
    return floor["floor"] if looser and isinstance(floor, dict) else target
