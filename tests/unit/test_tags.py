"""Tag expressions select scenarios as Gherkin's do."""

import pytest

from harness.tags import TagExpressionError, matches

TAGS = {"quarterly", "ha-domain:database", "destructive"}


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("@quarterly", True),
        ("@adhoc", False),
        ("@quarterly and @ha-domain:database", True),
        ("@quarterly and not @destructive", False),
        ("@adhoc or @ha-domain:database", True),
        ("not (@adhoc or @ha-domain:api)", True),
        ("@quarterly and (@adhoc or @destructive)", True),
    ],
)
def test_expressions(expression, expected):
    assert matches(expression, TAGS) is expected


@pytest.mark.parametrize("expression", ["@a and", "(@a", "@a @b", "quarterly", "@a or or @b"])
def test_malformed_expressions_are_refused(expression):
    with pytest.raises(TagExpressionError):
        matches(expression, TAGS)


@pytest.mark.parametrize(
    "expression",
    ["(" * 500 + "@a" + ")" * 500, "not " * 500 + "@a", "not " * 5000 + "@a", "(not " * 400 + "@a" + ")" * 400],
    ids=["500 parentheses", "500 nots", "5000 nots", "400 (not"],
)
def test_an_expression_nested_too_deep_is_refused_not_a_recursion_error(expression):
    with pytest.raises(TagExpressionError, match="more than 32 parentheses or 'not' inside one another") as err:
        matches(expression, TAGS)
    assert len(str(err.value)) < 300  # the expression is quoted shortened, not whole


def test_nesting_as_deep_as_the_limit_still_parses():
    assert matches("(" * 16 + "not " * 16 + "@quarterly" + ")" * 16, TAGS) is True


def test_control_characters_of_an_expression_are_escaped_in_the_message():
    with pytest.raises(TagExpressionError) as err:
        matches("@a and \x1b[31m", TAGS)
    assert "\x1b" not in str(err.value) and "\\x1b" in str(err.value)
