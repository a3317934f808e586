"""One embedded lab shared by the tests of a module (starting one takes ~6 s on 2 cores)."""

from __future__ import annotations

import pytest

from harness.lab.embedded import EmbeddedLab


@pytest.fixture(scope="module")
def lab():
    with EmbeddedLab(replication="sync") as running:
        yield running
