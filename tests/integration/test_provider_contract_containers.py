"""The provider contract (tests/integration/provider_contract.py) on
the container lab (skipped, with the reason, without a container engine)."""

from tests.integration.provider_contract import *  # noqa: F403 - the contract's fixture and tests, collected here

PROVIDER = "testcontainers"
