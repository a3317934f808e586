"""BackupAgeHours from pgBackRest's own catalogue (issue 26), against real processes: a PostgreSQL
with pgBackRest (harness/lab/pgbackrest.py: archiving on, one encrypted repository in moto over
TLS), a Control Plane instance started with --backup-pgbackrest-config/--backup-pgbackrest-include/
--backup-stanza, and its /health read over HTTP before and after the first backup.

One backup in all (about 5 s); the unit module test_backups_pgbackrest_unit.py has every JSON shape.
"""

from __future__ import annotations

import secrets
import shutil
from contextlib import ExitStack

import pytest

from harness.lab.moto import MotoServer
from harness.lab.pgbackrest import Credentials, PgBackRest, lab_repo
from harness.lab.postgres import PgBinariesMissing, PgCluster, check_binaries, pg_bin_dir
from tests.controlplane.cplab import control_plane_lab, health, poll

pytestmark = pytest.mark.timeout(240)

CACHE_DEADLINE = 15.0  # the part is cached 2 s per instance: a new backup shows within that


@pytest.fixture(scope="module")
def pgbr_lab(tmp_path_factory):
    if shutil.which("pgbackrest") is None:
        pytest.skip("pgbackrest is not installed (./run installs it; or apt-get install pgbackrest)")
    try:
        check_binaries(pg_bin_dir())
    except PgBinariesMissing as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    with ExitStack() as stack:
        store = stack.enter_context(MotoServer(tls=True))
        pg = stack.enter_context(PgCluster())
        repo1 = lab_repo(store, "cp-backups-" + secrets.token_hex(3))
        credentials = Credentials.generate()
        tool = stack.enter_context(PgBackRest(pg, repo1, None, credentials))  # archiving on: a restart
        lab = stack.enter_context(control_plane_lab(pg, tmp_path_factory))
        yield lab, tool, credentials


def serve_with_pgbackrest(lab, tool: PgBackRest, stanza: str):
    return lab.serve(
        "pgbr-" + secrets.token_hex(3),
        extra=(
            "--backup-pgbackrest-config",
            str(tool.config),
            "--backup-pgbackrest-include",
            str(tool.secrets_file.parent),
            "--backup-stanza",
            stanza,
        ),
    )


def backups_part(instance) -> dict:
    return health(instance)[1]["components"]["backups"]


def test_health_reads_the_newest_backup_from_pgbackrest_info(pgbr_lab):
    lab, tool, credentials = pgbr_lab
    instance = serve_with_pgbackrest(lab, tool, tool.stanza)
    wrong = serve_with_pgbackrest(lab, tool, "nope")

    before = backups_part(instance)
    assert (before["status"], before["age_hours"], before["snapshot_id"]) == ("down", None, None)
    assert before["detail"] == f"no backup (searched stanza {tool.stanza}: repo1)"
    code, body = health(instance)
    assert (code, body["ServiceHealth"]) == (503, "Unhealthy")

    label = tool.backup("full")
    part = poll(
        lambda: (p := backups_part(instance))["status"] == "up" and p,
        CACHE_DEADLINE,
        "the backups part up after the first backup",
    )
    assert part["snapshot_id"] == label and part["bucket"] == "repo1"
    assert 0.0 <= part["age_hours"] < 0.05  # the backup ended seconds ago, on one clock
    assert part["detail"] == f"newest backup {part['age_hours']:.1f} h old ({label})"
    assert health(instance)[1]["ServiceHealth"] == "Healthy"

    stanza_missing = backups_part(wrong)
    assert (stanza_missing["status"], stanza_missing["age_hours"]) == ("down", None)
    assert stanza_missing["detail"] == "backup catalogue unreadable: repo1: stanza nope: missing stanza path"

    logs = instance.log_text() + wrong.log_text()
    assert "BackupAgeHours <= 24 enforced: pgBackRest stanza main" in instance.log_text()
    for secret in credentials.values():
        assert secret not in logs and secret not in str(part) and secret not in str(stanza_missing)
