"""Every step line of scenarios/ is matched by a registered step (which declares what it needs), and
a plan needing what a lab lacks is refused naming the row, the capability and the step."""

from pathlib import Path

import pytest

from harness.inputs import InputError
from harness.lab.base import CAPABILITIES
from harness.steps.impact import feature_lines, feature_steps
from harness.steps.needs import classified, missing_capabilities, step_needs
from harness.steps.registry import STEPS

ROOT = Path(__file__).resolve().parents[2]
FEATURES = sorted((ROOT / "scenarios").rglob("*.feature"))


def test_every_step_of_every_feature_is_classified():
    unclassified = [
        f"{p.name}: {kind} {s}" for p in FEATURES for kind, s in feature_lines(p) if not classified(s, kind)
    ]
    assert not unclassified, "declare these steps with harness.steps.registry.drill_step:\n" + "\n".join(unclassified)


def test_no_feature_line_is_matched_by_two_steps():
    ambiguous = {
        f"{kind} {s}": [x.func.__name__ for x in STEPS if x.kind == kind and x.matches(s)]
        for p in FEATURES
        for kind, s in feature_lines(p)
    }
    assert {line: funcs for line, funcs in ambiguous.items() if len(funcs) != 1} == {}


def test_every_capability_named_by_a_need_is_described():
    named = {cap for step in STEPS for cap in step.needs}
    assert named <= set(CAPABILITIES), named - set(CAPABILITIES)
    assert set(CAPABILITIES) <= named, set(CAPABILITIES) - named  # no capability nothing needs


@pytest.mark.parametrize(
    "step, needs",
    [
        ("the API instance in az2 is killed", ("api_instances",)),
        ("the jamf API answers 503 to every request", ("platform_api_faults",)),
        ("the sccm site server is killed", ("platform_kill",)),
        ("the evidence store link is restored", ()),
        ("event store writes are blocked on the database primary", ("event_store_block",)),
        (
            "a test Deployment Intent is submitted, its evidence pack ingested and its correlation id captured",
            ("evidence_read", "siem"),
        ),
        ("no such sentence", ()),
    ],
)
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
    feature.write_text(
        "@quarterly\nFeature: Two\n  Scenario: kept\n    When the sccm site server is killed\n\n"
        "  @adhoc\n  Scenario: other\n    When the database primary is killed\n"
    )
    assert feature_steps(feature, "@adhoc") == ["the database primary is killed"]
    assert missing_capabilities([feature], frozenset({"platform_kill"}), "not @adhoc") == []
    assert "database_kill" in missing_capabilities([feature], frozenset({"platform_kill"}))[0]


def test_lines_are_read_with_pytest_bdds_grammar(tmp_path):
    """And/But take the kind of the line before; the Background's lines come once, first; a
    sentence is matched only by a step of its kind, as pytest-bdd matches it."""
    feature = tmp_path / "kinds.feature"
    feature.write_text(
        "Feature: Kinds\n  Background:\n    Given the lab is in steady state\n\n"
        "  Scenario: one\n    When the sccm site server is killed\n"
        "    And the database primary is killed\n    Then writes resume\n"
        "    But the data is consistent\n"
    )
    assert feature_lines(feature) == [
        ("given", "the lab is in steady state"),
        ("when", "the sccm site server is killed"),
        ("when", "the database primary is killed"),
        ("then", "writes resume"),
        ("then", "the data is consistent"),
    ]
    assert step_needs("the database primary is killed", "when") == ("database_kill",)
    assert step_needs("the database primary is killed", "then") == ()  # no Then step says that
    assert not classified("the database primary is killed", "given")


def test_a_feature_pytest_bdd_cannot_parse_is_refused_naming_the_file(tmp_path):
    feature = tmp_path / "broken.feature"
    feature.write_text(
        "Feature: Broken\n  Scenario: one\n    When the database primary is killed\n"
        "  Scenario Outline: two\n    When <x> happens\n    Examples:\n      | x |\n      | a | b |\n"
    )
    with pytest.raises(InputError, match=r"broken\.feature: not a feature pytest-bdd can read"):
        feature_lines(feature)
    empty = tmp_path / "empty.feature"
    empty.write_text("# nothing yet\n")
    assert feature_lines(empty) == []
