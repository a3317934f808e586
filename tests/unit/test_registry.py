"""The step registry (harness.steps.registry): a step is declared once, with what it needs and what it
touches; a wrong declaration is refused when its module is imported, and pytest-bdd runs what it declares."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_bdd import parsers

from harness.lab.targets import PLATFORM_API, proxy
from harness.steps import registry
from harness.steps.registry import STEPS, StepDeclarationError, drill_step, matching

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def scratch_registry():
    """Steps a test declares leave the shared registry as it was."""
    before = list(STEPS)
    yield
    STEPS[:] = before


def documented():
    """A step's body."""


def test_a_step_records_its_sentence_needs_and_touches_once(scratch_registry):
    drill_step(
        "when",
        parsers.parse("the {platform} wire gets {ms:d} ms of jitter"),
        needs=("platform_link",),
        touches=(proxy("platforms.{platform}"), PLATFORM_API),
    )(documented)
    step = matching("the jamf wire gets 20 ms of jitter", "when")
    assert step is STEPS[-1] and [s for s in STEPS if s.func is documented] == [step]
    assert (step.kind, step.sentence, step.needs, step.module) == (
        "when",
        "the {platform} wire gets {ms:d} ms of jitter",
        ("platform_link",),
        "test_registry",
    )
    assert step.targets("the jamf wire gets 20 ms of jitter") == ["proxy:platforms.jamf", "jamf-api"]
    # a provider's names for the symbols (several, one, or none)
    names = {"proxy:platforms.jamf": ("jamf-link", "jamf-link-b"), "jamf-api": ()}
    assert step.targets("the jamf wire gets 20 ms of jitter", lambda s: names[s]) == ["jamf-link", "jamf-link-b"]
    assert matching("the jamf wire gets 20 ms of jitter", "then") is None


def test_a_regex_steps_groups_name_its_targets(scratch_registry):
    drill_step("when", parsers.re(r"zone (?P<zone>\w+) goes dark"), touches=("api-{zone}",))(documented)
    assert matching("zone az7 goes dark").targets("zone az7 goes dark") == ["api-az7"]


@pytest.mark.parametrize(
    "kind, text, needs, touches, refusal",
    [
        ("whenever", "x happens", (), (), r"step kind 'whenever': must be one of given, when, then"),
        ("when", "x happens", ("teleport",), (), r"step 'x happens': unknown capability teleport"),
        (
            "when",
            parsers.parse("the {platform} is down"),
            (),
            ("{zone}-api",),
            r"touches '\{zone\}-api' names zone, not an argument of the sentence",
        ),
        (
            "when",
            "the database primary is killed",
            (),
            (),
            r"step when 'the database primary is killed' declared twice",
        ),
    ],
)
def test_a_wrong_declaration_is_refused(scratch_registry, kind, text, needs, touches, refusal):
    from harness.steps import plugin  # noqa: F401 - the shipped steps, for the one declared twice

    count = len(STEPS)
    with pytest.raises(StepDeclarationError, match=refusal):
        drill_step(kind, text, needs=needs, touches=touches)(documented)
    assert len(STEPS) == count


def test_a_step_without_a_docstring_is_refused(scratch_registry):
    def bare():
        pass

    with pytest.raises(StepDeclarationError, match=r"'nothing documented' \(.*bare\): write a docstring"):
        drill_step("then", "nothing documented")(bare)
    assert all(s.func is not bare for s in registry.STEPS)


def test_pytest_bdd_runs_a_declared_step(tmp_path):
    """The decorator hands the step to pytest-bdd in the declaring module (its fixture lands there)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "one.feature").write_text(
        "Feature: One\n  Scenario: runs\n    Given a registered thing\n    Then it counts 3\n"
    )
    (tmp_path / "test_one.py").write_text(
        "from pytest_bdd import parsers, scenarios\n"
        "from harness.steps.registry import drill_step\n\n"
        "@drill_step('given', 'a registered thing')\n"
        "def thing():\n    '''A thing.'''\n\n"
        "@drill_step('then', parsers.parse('it counts {n:d}'), needs=('clock',))\n"
        "def counts(n):\n    '''Counts.'''\n    assert n == 3\n\n"
        "scenarios('one.feature')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-c",
            str(tmp_path / "pytest.ini"),
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert "1 passed" in done.stdout, done.stdout + done.stderr
