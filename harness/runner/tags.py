"""Gherkin tag expressions ("@quarterly and not @destructive") evaluated against a scenario's tags."""

from __future__ import annotations

import re

TOKEN = re.compile(r"\s*(\(|\)|@[^\s()]+|and\b|or\b|not\b)")


class TagExpressionError(ValueError):
    pass


def matches(expression: str, tags: set[str]) -> bool:
    """True if the tags (with or without '@') satisfy the expression."""
    tags = {t.lstrip("@") for t in tags}
    tokens = _tokens(expression)
    pos = 0

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
        token = peek()
        if token is None:
            raise TagExpressionError(f"tag expression {expression!r} ends too early")
        take()
        if token == "not":
            return not factor()
        if token == "(":
            value = expr()
            if peek() != ")":
                raise TagExpressionError(f"tag expression {expression!r}: missing ')'")
            take()
            return value
        if token.startswith("@"):
            return token[1:] in tags
        raise TagExpressionError(f"tag expression {expression!r}: unexpected {token!r}")

    result = expr()
    if pos != len(tokens):
        raise TagExpressionError(f"tag expression {expression!r}: unexpected {tokens[pos]!r}")
    return result


def _tokens(expression: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(expression.rstrip()):
        m = TOKEN.match(expression, pos)
        if not m:
            raise TagExpressionError(f"tag expression {expression!r}: cannot read {expression[pos:]!r}; "
                                     f"use @tags with and, or, not and parentheses")
        tokens.append(m.group(1))
        pos = m.end()
    return tokens
