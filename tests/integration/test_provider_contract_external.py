"""The provider contract (tests/integration/provider_contract.py) on
an external staging lab (a second embedded lab standing in for staging)."""

from tests.integration.provider_contract import *  # noqa: F403 - the contract's fixture and tests, collected here

PROVIDER = "external"
