"""The step registry: each step sentence written once, with what it needs of a lab and what it touches.

`drill_step(kind, text, needs=..., touches=...)` wraps pytest-bdd's given/when/then (so pytest-bdd
runs the step as before) and records a DrillStep: its parser (a string, `parsers.parse` or
`parsers.re`, matched by pytest-bdd's own `is_matching`/`parse_arguments`), the lab capabilities it
needs (names of harness.lab.base.CAPABILITIES) and the blast-radius targets it touches. Everything
else derives from this one record: what a plan needs (harness.steps.needs), what its faults touch
(harness.steps.impact, by each provider's names), `drill steps`.

`touches` is provider-independent: each entry is a symbol, formatted with the step's own arguments
("api-{instance}", "{platform}-api", proxy("platforms.{platform}")). A provider turns a symbol into
its own target names (`TargetNames`; the external provider from its configuration); a provider
without a blast radius keeps the symbol as the name (`same_names`).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from pytest_bdd import given, then, when
from pytest_bdd.parsers import StepParser, get_parser

from ..lab.base import CAPABILITIES
from ..lab.targets import TargetNames, same_names

Kind = Literal["given", "when", "then"]
F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class DrillStep:
    """One step of the vocabulary: written once, read by pytest-bdd, the plan checks and `drill steps`."""

    kind: Kind
    parser: StepParser
    needs: tuple[str, ...]
    touches: tuple[str, ...]
    func: Callable[..., object]

    @property
    def sentence(self) -> str:
        return self.parser.name

    @property
    def module(self) -> str:
        return self.func.__module__.rsplit(".", 1)[-1]

    @property
    def doc(self) -> str:
        return " ".join((self.func.__doc__ or "").split())

    def matches(self, sentence: str) -> bool:
        return bool(self.parser.is_matching(sentence))

    def targets(self, sentence: str, names: TargetNames = same_names) -> list[str]:
        """What this step touches when written as `sentence`, by the provider's names."""
        args = {k: str(v).strip() for k, v in (self.parser.parse_arguments(sentence) or {}).items()}
        found: list[str] = []
        for symbol in self.touches:
            for name in names(symbol.format(**args)):
                if name not in found:
                    found.append(name)
        return found


STEPS: list[DrillStep] = []
DECORATORS = {"given": given, "when": when, "then": then}


class StepDeclarationError(ValueError):
    """A step declared wrongly (unknown kind or capability, a target naming no step argument, twice)."""


def drill_step(
    kind: Kind, text: str | StepParser, needs: tuple[str, ...] = (), touches: tuple[str, ...] = ()
) -> Callable[[F], F]:
    """Declare a step once: pytest-bdd's given/when/then plus what it needs and touches.

    Refused at import (StepDeclarationError): an unknown kind or capability, a `touches` entry
    naming an argument the sentence does not have, the same sentence twice, a step without a
    docstring (`drill steps` prints it)."""
    if kind not in DECORATORS:
        raise StepDeclarationError(f"step kind {kind!r}: must be one of {', '.join(DECORATORS)}")
    parser = get_parser(text)
    unknown = [n for n in needs if n not in CAPABILITIES]
    if unknown:
        raise StepDeclarationError(
            f"step {parser.name!r}: unknown capability {', '.join(unknown)} (harness.lab.base.CAPABILITIES)"
        )
    fields = _fields(parser)
    for symbol in touches:
        extra = {f for _, f, _, _ in string.Formatter().parse(symbol) if f} - fields
        if extra:
            raise StepDeclarationError(
                f"step {parser.name!r}: touches {symbol!r} names {', '.join(sorted(extra))}, "
                f"not an argument of the sentence"
            )
    if any(s.kind == kind and s.sentence == parser.name for s in STEPS):
        raise StepDeclarationError(f"step {kind} {parser.name!r} declared twice")

    def decorate(func: F) -> F:
        if not (func.__doc__ or "").strip():
            raise StepDeclarationError(
                f"step {parser.name!r} ({func.__qualname__}): write a docstring, `drill steps` prints it"
            )
        # stacklevel 2: pytest-bdd puts its fixture in the module that declares the step, not here
        DECORATORS[kind](parser, stacklevel=2)(func)
        STEPS.append(DrillStep(kind, parser, tuple(needs), tuple(touches), func))
        return func

    return decorate


def _fields(parser: StepParser) -> set[str]:
    """The names of a parser's arguments."""
    inner = getattr(parser, "parser", None)  # parsers.parse / cfparse: a parse.Parser
    if inner is not None and hasattr(inner, "named_fields"):
        return set(inner.named_fields)
    regex = getattr(parser, "regex", None)  # parsers.re
    if isinstance(regex, re.Pattern):
        return set(regex.groupindex)
    return set()


def matching(sentence: str, kind: str | None = None, steps: list[DrillStep] | None = None) -> DrillStep | None:
    """The registered step a feature line is, as pytest-bdd matches it: its kind ("given", "when",
    "then"; None: any) and its sentence by the step's own parser. None: no step matches it."""
    for step in STEPS if steps is None else steps:
        if (kind is None or step.kind == kind) and step.matches(sentence):
            return step
    return None
