"""Module-scoped servers for the Control Plane tests: embedded PostgreSQL, moto, two instances."""

from __future__ import annotations

import secrets

import pytest

from harness.lab import reaper
from harness.lab.moto import MotoServer
from harness.lab.postgres import PgBinariesMissing, PgCluster, check_binaries, pg_bin_dir
from tests.controlplane.cplab import ControlPlaneLab, cp_env


@pytest.fixture(scope="module")
def cplab(tmp_path_factory):
    """A migrated Control Plane with instances az1 and az2, and a streaming replica (module scope)."""
    try:
        check_binaries(pg_bin_dir())
    except PgBinariesMissing as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    tag = "drillcp-" + secrets.token_hex(4)  # in every instance's command line (the SIEM path)
    workdir = tmp_path_factory.mktemp(tag)
    with PgCluster().with_replica("replica") as pg, MotoServer() as moto:
        registration = reaper.Registration(tag, "controlplane", tag=tag)
        lab = ControlPlaneLab(pg, moto, workdir, cp_env(pg.password), registration)
        try:
            result = lab.migrate()
            assert result.returncode == 0, result.stderr
            lab.serve("az1")
            lab.serve("az2")
            yield lab
        finally:
            for name in list(lab.instances):
                lab.stop(name)
            registration.close()
