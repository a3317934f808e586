"""Page 1 lists the rules not judged (issue 24): every unknown gate, with its reason, e.g. a time
rule on a target that grants no clock control."""

from __future__ import annotations

import html
import re

from harness.model import DrillResult
from harness.report.html import render_html
from tests.unit.test_report_page import page1, result

NO_CLOCK = {
    "id": "cab_manual_pause_jamf",
    "description": "CAB manual pause raised after 15 minutes",
    "verdict": "unknown",
    "measured": {"raised": 0, "held_s": 20.0},
    "threshold": "after > 15 min",
    "detail": "needs 15 min of real time or clock control (the fault was held 20 s on the Control Plane's clock)",
}


def page_text(page: str) -> str:
    first = page1(page)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", first[first.index("<body>") :])).split())


def test_page_one_lists_the_rules_not_judged_with_their_reason():
    base = result()
    data = base.to_json()
    data["scenarios"][0]["gates"].append(NO_CLOCK)
    text = page_text(render_html(DrillResult.from_json(data)))
    assert "Rules not judged (1, unknown, never a pass):" in text
    assert (
        "cab_manual_pause_jamf (primary crash): needs 15 min of real time or clock control "
        "(the fault was held 20 s on the Control Plane's clock)."
    ) in text


def test_page_one_has_no_such_line_when_every_rule_was_judged():
    assert "Rules not judged" not in page_text(render_html(result()))
