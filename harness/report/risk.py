"""Risk scores for missed thresholds (spec section 4: "failures require a new risk score if
thresholds missed"): score = likelihood x impact, each 1-5. Pure: it reads results and the
verified CAB history, nothing else.

Impact, from what the failure-modes matrix row says the failure does (its Impact column), or the
HA domain's for a scenario of no row; a tier-1 plan adds 1, tier 3 takes 1 (within 1-5).

Likelihood, from how far the measure missed and how often it missed before:
- a numeric gate (operator and limit): the miss ratio r is measured / limit for "at most" rules,
  limit / measured for "at least" rules, and (1 - measured) / (1 - limit) for "at least" ratios
  such as availability (the unavailability against the allowed unavailability); r <= 1.5 gives 2,
  <= 3 gives 3, <= 10 gives 4, more (or a limit of 0 exceeded) gives 5;
- a rule that is not a single number (a refusal, an order of events) missed: 3;
- a gate that could not be judged (unknown): 3, the rule unproven;
- a waived gate (it met only a target the plan loosened under a waiver, not the spec's floor): a
  miss, its ratio taken against the spec's floor (a waiver accepts the risk, it does not remove it);
- then +1 when the same gate of the same drill missed in 1 or 2 of its last 4 verified runs, +2 in
  3 or 4 of them (at most 5).
Level: 1-4 low, 5-9 medium, 10-15 high, 16-25 critical. The drill's residual risk is its highest.

The availability error budget (gate availability_budget): over the drill allowance the gate fails
and is scored as any numeric miss. Within the allowance but more than 0% used, the gate passes and
still counts, at least "low", never "none": real requests were not served. Likelihood 1 (the drill
caused it on purpose, within what the plan allows), impact 1-4 by the share of the allowance used
(up to a quarter 1, a half 2, three quarters 3, more 4): a score of 1-4, level low.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from harness.files import iter_gates, verdict_text
from harness.matrix import numbered
from harness.text import human_seconds, show

DOMAIN_IMPACT = {
    "database": 5,
    "event-store": 5,
    "backup-restore": 5,
    "evidence-store": 4,
    "api": 4,
    "connectors": 3,
    "all": 4,
}
HISTORY_RUNS = 4
AT_MOST, AT_LEAST = ("<=", "<"), (">=", ">")


def level(score: int) -> str:
    if score <= 0:
        return "none"
    return "low" if score <= 4 else "medium" if score <= 9 else "high" if score <= 15 else "critical"


def impact_of(matrix_row: int | None, ha_domain: str | None, tier: int | None) -> tuple[int, str]:
    row = numbered(matrix_row)
    if row is not None:
        base, why = row.impact, f"matrix row {matrix_row}: {row.impact_words}"
    else:
        base = DOMAIN_IMPACT.get(str(ha_domain), 3)
        why = f"HA domain {ha_domain or 'unknown'}"
    if tier == 1:
        return min(5, base + 1), why + "; tier 1 (+1)"
    if tier == 3:
        return max(1, base - 1), why + "; tier 3 (-1)"
    return base, why


def _number(value: Any) -> int | float | None:
    """A gate's number (an int or a float, never a bool), else None."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def miss_ratio(gate: dict[str, Any]) -> float | None:
    """How many times over its limit a failed numeric gate is; None when the rule is not numeric."""
    operator, limit, measured = gate.get("operator"), _number(gate.get("limit")), _number(gate.get("measured"))
    if operator not in AT_MOST + AT_LEAST or limit is None or measured is None:
        return None
    if operator in AT_MOST:
        return measured / limit if limit > 0 else (math.inf if measured > limit else 1.0)
    if gate.get("unit") == "ratio" and limit < 1:
        return (1 - measured) / (1 - limit)
    return limit / measured if measured > 0 else math.inf


def against_floor(gate: dict[str, Any]) -> dict[str, Any]:
    """A waived gate as judged against the spec's floor (its waiver's), for the miss ratio and the words."""
    waiver = gate.get("waiver") or {}
    floor = waiver.get("floor")
    if not isinstance(floor, (int, float)) or isinstance(floor, bool):
        return gate
    return {**gate, "limit": floor, "operator": waiver.get("operator") or gate.get("operator")}


def likelihood_of(gate: dict[str, Any], verdict: str, misses_before: int, runs_before: int) -> tuple[int, str]:
    if verdict == "unknown":
        base, why = 3, "could not be judged: the rule is unproven"
    elif verdict == "waived":
        ratio = miss_ratio(against_floor(gate))
        base = 3 if ratio is None else 2 if ratio <= 1.5 else 3 if ratio <= 3 else 4 if ratio <= 10 else 5
        why = "waived: " + (
            "the spec's floor was missed"
            if ratio is None
            else "over a floor of 0"
            if math.isinf(ratio)
            else f"{ratio:.3g} times the spec's floor"
        )
    else:
        ratio = miss_ratio(gate)
        if ratio is None:
            base, why = 3, "a rule that is not a single number was missed"
        else:
            base = 2 if ratio <= 1.5 else 3 if ratio <= 3 else 4 if ratio <= 10 else 5
            why = "over a limit of 0" if math.isinf(ratio) else f"{ratio:.3g} times the limit"
    if misses_before:
        extra = 2 if misses_before >= 3 else 1
        base = min(5, base + extra)
        why += f"; missed in {misses_before} of the last {runs_before} runs (+{extra})"
    return base, why


def deviation_text(scenario: str, gate: dict[str, Any], verdict: str) -> str:
    """The deviation in plain words, for the CAB."""
    what = gate.get("description") or gate.get("id")
    unit = gate.get("unit")
    measured = show(gate.get("measured"))
    if verdict == "unknown":
        because = first_sentence(gate.get("detail")) or "the evidence was missing"
        return f"{scenario}: not proven whether {what} ({because})."
    if verdict == "waived":
        waiver = gate.get("waiver") or {}
        floor = against_floor(gate)
        required = (
            deviation_text(scenario, floor, "fail").rstrip(".")
            if miss_ratio(floor) is not None
            else f"{scenario}: {what}: the spec's floor was not met"
        )
        return (
            f"{required}; WAIVED: it met only the plan's waived target {show(gate.get('threshold'))} "
            f"(waiver: {show(waiver.get('reason'))}, approved by {show(waiver.get('approved_by'))}, "
            f"expires {show(waiver.get('expires'))})."
        )
    if miss_ratio(gate) is not None:
        if unit == "s":
            shown, limit = human_seconds(gate.get("measured")), human_seconds(gate.get("limit"))
        else:
            units = f" {unit}" if unit and unit != "ratio" else ""
            shown, limit = f"{measured}{units}", f"{show(gate.get('limit'))}{units}"
        words = {"<=": "at most", "<": "below", ">=": "at least", ">": "above"}[gate["operator"]]
        return f"{scenario}: {what}: measured {shown} where {words} {limit} is required."
    because = first_sentence(gate.get("detail"))
    return f"{scenario}: {what}: not met" + (f" ({because})." if because else ".")


def first_sentence(text: Any, limit: int = 160) -> str:
    text = " ".join(str(text or "").split())
    for stop in (". ", "; "):
        if stop in text:
            text = text.split(stop, 1)[0]
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "..."


def past_misses(previous: Iterable[dict[str, Any]], drill: str) -> tuple[dict[str, int], int]:
    """({"scenario/gate": times missed}, runs counted) over the drill's last HISTORY_RUNS verified runs."""
    runs = [
        e
        for e in previous
        if e.get("kind", "drill") == "drill"
        and e.get("drill") == drill
        and not e.get("dry_run")
        and e.get("verdict") != "not_run"
    ][-HISTORY_RUNS:]
    counts: dict[str, int] = {}
    for entry in runs:
        for gate_id in set((entry.get("gates") or {}).get("not_passed") or ()):
            counts[gate_id] = counts.get(gate_id, 0) + 1
    return counts, len(runs)


BUDGET_GATE = "availability_budget"


def budget_used(scenario: str, gate: dict[str, Any]) -> dict[str, Any] | None:
    """The risk item of an error budget used within the drill allowance (a passed availability_budget
    gate that measured more than 0%); None for any other gate, or nothing used."""
    used, allowance = _number(gate.get("measured")), _number(gate.get("limit"))
    if gate.get("id") != BUDGET_GATE or used is None or allowance is None or used <= 0:
        return None
    part = used / allowance if allowance > 0 else 1.0
    impact = 1 if part <= 0.25 else 2 if part <= 0.5 else 3 if part <= 0.75 else 4
    unit = "%" if gate.get("unit") == "%" else ""
    return {
        "scenario": scenario,
        "gate": BUDGET_GATE,
        "verdict": "pass",
        "likelihood": 1,
        "likelihood_why": "the drill caused it on purpose, within the plan's allowance",
        "impact": impact,
        "impact_why": f"{part:.0%} of the drill allowance used",
        "score": impact,
        "level": level(impact),
        "text": (
            f"{scenario}: {used:.3g}{unit} of the period's availability error budget used (allowance "
            f"{allowance:.3g}{unit}): within the allowance, but requests went unserved."
        ),
    }


def assess(results: dict[str, Any], tier: int | None, previous: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """{"items": a score per gate that did not pass, "residual": the highest, "rule": how}."""
    misses, runs = past_misses(previous, str(results.get("drill")))
    rows = {str(s.get("name")): (s.get("matrix_row") or {}).get("number") for s in results.get("scenarios") or ()}
    items = []
    for scenario, gate in iter_gates(results):
        verdict = verdict_text(gate.get("verdict"))
        if verdict == "pass":
            used = budget_used(scenario, gate)  # an error budget spent within the allowance: low
            if used is not None:
                items.append(used)
            continue
        gate_key = f"{scenario}/{gate.get('id')}"
        impact, impact_why = impact_of(rows.get(scenario), results.get("ha_domain"), tier)
        likelihood, likelihood_why = likelihood_of(gate, verdict, misses.get(gate_key, 0), runs)
        score = likelihood * impact
        items.append(
            {
                "scenario": scenario,
                "gate": gate.get("id"),
                "verdict": verdict,
                "likelihood": likelihood,
                "likelihood_why": likelihood_why,
                "impact": impact,
                "impact_why": impact_why,
                "score": score,
                "level": level(score),
                "text": deviation_text(scenario, gate, verdict),
            }
        )
    items.sort(key=lambda i: -i["score"])
    if items:
        top = items[0]
        residual = {
            "score": top["score"],
            "level": top["level"],
            "scenario": top["scenario"],
            "gate": top["gate"],
            "text": top["text"],
        }
    else:
        residual = {
            "score": 0,
            "level": "none",
            "scenario": None,
            "gate": None,
            "text": "no threshold was missed and every gate was judged",
        }
    return {"items": items, "residual": residual, "rule": "score = likelihood x impact, each 1-5 (README: Risk scores)"}


def risk_of(risk: dict[str, Any], scenario: str, gate_id: str) -> dict[str, Any] | None:
    for item in risk.get("items") or ():
        if item.get("scenario") == scenario and item.get("gate") == gate_id:
            return item
    return None
