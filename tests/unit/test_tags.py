"""Tag expressions select scenarios as Gherkin's do."""

import pytest

from harness.runner.tags import TagExpressionError, matches

TAGS = {"quarterly", "ha-domain:database", "destructive"}


@pytest.mark.parametrize("expression, expected", [
    ("@quarterly", True),
    ("@adhoc", False),
    ("@quarterly and @ha-domain:database", True),
    ("@quarterly and not @destructive", False),
    ("@adhoc or @ha-domain:database", True),
    ("not (@adhoc or @ha-domain:api)", True),
    ("@quarterly and (@adhoc or @destructive)", True),
])
def test_expressions(expression, expected):
    assert matches(expression, TAGS) is expected


@pytest.mark.parametrize("expression", ["@a and", "(@a", "@a @b", "quarterly", "@a or or @b"])
def test_malformed_expressions_are_refused(expression):
    with pytest.raises(TagExpressionError):
        matches(expression, TAGS)
