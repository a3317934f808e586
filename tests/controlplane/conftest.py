"""Module-scoped servers for the Control Plane tests: embedded PostgreSQL, moto, two instances."""

from __future__ import annotations

import pytest

from harness.lab.postgres import PgBinariesMissing, PgCluster, check_binaries, pg_bin_dir
from tests.controlplane.cplab import control_plane_lab


@pytest.fixture(scope="module")
def cplab(tmp_path_factory):
    """A migrated Control Plane with instances az1 and az2 (both heartbeating, so the API tier
    has its minimum of 2), and a streaming replica (module scope)."""
    try:
        check_binaries(pg_bin_dir())
    except PgBinariesMissing as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    with PgCluster().with_replica("replica") as pg, control_plane_lab(pg, tmp_path_factory) as lab:
        yield lab
