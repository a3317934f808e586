"""Every step sentence is classified (needs a capability, or plain), and a plan needing what a lab
lacks is refused naming the row, the capability and the step."""

from pathlib import Path

import pytest

from harness.lab.base import CAPABILITIES
from harness.runner.impact import feature_steps
from harness.runner.needs import NEEDS, classified, missing_capabilities, step_needs

ROOT = Path(__file__).resolve().parents[2]
FEATURES = sorted((ROOT / "scenarios").rglob("*.feature"))


def test_every_step_of_every_feature_is_classified():
    unclassified = [f"{p.name}: {s}" for p in FEATURES for s in feature_steps(p) if not classified(s)]
    assert not unclassified, "add these steps to harness/runner/needs.py (NEEDS or PLAIN):\n" + "\n".join(unclassified)


def test_every_capability_named_by_a_need_is_described():
    named = {cap for _, caps in NEEDS for cap in caps}
    assert named <= set(CAPABILITIES), named - set(CAPABILITIES)
    assert set(CAPABILITIES) <= named, set(CAPABILITIES) - named    # no capability nothing needs


@pytest.mark.parametrize("step, needs", [
    ("the API instance in az2 is killed", ("api_instances",)),
    ("the jamf API answers 503 to every request", ("platform_api_faults",)),
    ("the sccm site server is killed", ("platform_kill",)),
    ("the evidence store link is restored", ()),
    ("event store writes are blocked on the database primary", ("event_store_block",)),
])
def test_step_needs(step, needs):
    assert step_needs(step) == needs


def test_a_row_lacking_a_capability_is_named_with_the_step(tmp_path):
    feature = ROOT / "scenarios" / "eventstore" / "write_blocked.feature"
    lines = missing_capabilities([feature], frozenset({"database_kill"}))
    assert len(lines) == 1
    assert "row 'Event store / Write blocked' (eventstore/write_blocked.feature)" in lines[0]
    assert "capability event_store_block" in lines[0]
    assert "step 'event store writes are blocked on the database primary'" in lines[0]
    assert missing_capabilities([feature], frozenset(CAPABILITIES)) == []


def test_only_the_scenarios_the_tags_select_count(tmp_path):
    feature = tmp_path / "two.feature"
    feature.write_text("@quarterly\nFeature: Two\n  Scenario: kept\n    When the sccm site server is killed\n\n"
                       "  @adhoc\n  Scenario: other\n    When the database primary is killed\n")
    assert feature_steps(feature, "@adhoc") == ["the database primary is killed"]
    assert missing_capabilities([feature], frozenset({"platform_kill"}), "not @adhoc") == []
    assert "database_kill" in missing_capabilities([feature], frozenset({"platform_kill"}))[0]
