"""Gherkin tag expressions ("@quarterly and not @destructive") evaluated against a scenario's tags."""

from __future__ import annotations

import re

from .inputs import printable

TOKEN = re.compile(r"\s*(\(|\)|@[^\s()]+|and\b|or\b|not\b)")
MAX_NESTING = 32  # parentheses and 'not' inside one another: a real expression has two or three
SHOWN = 80  # characters of an expression quoted in a message


class TagExpressionError(ValueError):
    pass


def matches(expression: str, tags: set[str]) -> bool:
    """True if the tags (with or without '@') satisfy the expression."""
    tags = {t.lstrip("@") for t in tags}
    tokens = _tokens(expression)
    pos = depth = 0
    shown = _shown(expression)

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def expr() -> bool:
        value = term()
        while peek() == "or":
            take()
            value = term() or value
        return value

    def term() -> bool:
        value = factor()
        while peek() == "and":
            take()
            value = factor() and value
        return value

    def factor() -> bool:
        nonlocal depth
        token = peek()
        if token is None:
            raise TagExpressionError(f"tag expression {shown} ends too early")
        take()
        if token in ("not", "("):
            depth += 1  # bounded, so that no expression can exhaust the stack
            if depth > MAX_NESTING:
                raise TagExpressionError(
                    f"tag expression {shown}: more than {MAX_NESTING} parentheses or "
                    f"'not' inside one another; write it flatter"
                )
            if token == "not":
                value = not factor()
            else:
                value = expr()
                if peek() != ")":
                    raise TagExpressionError(f"tag expression {shown}: missing ')'")
                take()
            depth -= 1
            return value
        if token.startswith("@"):
            return token[1:] in tags
        raise TagExpressionError(f"tag expression {shown}: unexpected {_shown(token)}")

    result = expr()
    if pos != len(tokens):
        raise TagExpressionError(f"tag expression {shown}: unexpected {_shown(tokens[pos])}")
    return result


def _shown(text: str) -> str:
    """text quoted for a message: control characters escaped, at most SHOWN characters."""
    return "'" + printable(text, SHOWN) + "'"


def _tokens(expression: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(expression.rstrip()):
        m = TOKEN.match(expression, pos)
        if not m:
            raise TagExpressionError(
                f"tag expression {_shown(expression)}: cannot read {_shown(expression[pos:])}; "
                f"use @tags with and, or, not and parentheses"
            )
        tokens.append(m.group(1))
        pos = m.end()
    return tokens
