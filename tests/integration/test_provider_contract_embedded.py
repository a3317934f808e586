"""The provider contract (tests/integration/provider_contract.py) on
the embedded lab: real PostgreSQL, HAProxy and Control Plane processes on loopback."""

from tests.integration.provider_contract import *  # noqa: F403 - the contract's fixture and tests, collected here

PROVIDER = "embedded"
