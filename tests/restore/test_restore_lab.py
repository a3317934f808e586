"""The restore core on the lab's own pgBackRest (PgBackRest, not read only): the same
restore_newest_valid, the backup's age on the deployment's clock (the tool's clock_offset)."""

from __future__ import annotations

import time

import pytest

from harness.lab.moto import MotoServer
from harness.lab.pgbackrest import Credentials, PgBackRest, lab_repo
from harness.lab.postgres import PgCluster
from harness.restore import restore_newest_valid
from tests.pgbackrest_deployment import require_pgbackrest

pytestmark = pytest.mark.integration

require_pgbackrest(faketime=True)

HOUR = 3600.0


def test_the_lab_tool_restores_the_newest_backup_and_its_age_is_on_the_deployments_clock() -> None:
    offset = {"s": 0.0}
    with MotoServer(tls=True) as moto, PgCluster() as pg:
        repo = lab_repo(moto, "lab-backups")
        with PgBackRest(
            pg, repo, None, Credentials.generate(), process_max=4, clock_offset=lambda: offset["s"]
        ) as tool:
            with pg.primary.connect() as conn:
                conn.execute("CREATE TABLE acks (id bigserial PRIMARY KEY, note text NOT NULL)")
                conn.execute("INSERT INTO acks (note) SELECT 'before' FROM generate_series(1, 5)")
                conn.commit()
            label = tool.backup("full")
            with pg.primary.connect() as conn:
                conn.execute("INSERT INTO acks (note) SELECT 'after' FROM generate_series(1, 7)")
                conn.commit()
            tool.check()
            offset["s"] = 2 * HOUR  # two hours pass on the deployment's clock
            started = time.time()
            outcome = restore_newest_valid(tool, pg.root, repo=1)
            try:
                assert outcome.ok, outcome.error
                assert [c.label for c in outcome.candidates] == [label] and outcome.candidates[0].refused is None
                assert outcome.verify_report is not None and outcome.verify_report.ok
                assert outcome.restored is not None and outcome.restored.label == label
                stop = outcome.restored.stop.timestamp()
                assert 2 * HOUR <= outcome.restored.age_s <= 2 * HOUR + (time.time() - stop) + 5
                assert outcome.server is not None
                rows = dict(outcome.server.query("SELECT note, count(*) FROM acks GROUP BY note"))
                assert rows == {"before": 5, "after": 7}
                datadir = outcome.datadir
                assert datadir is not None and pg.root in datadir.parents
            finally:
                outcome.close()
            assert not datadir.parent.exists()  # close() stops the server and removes the restored data
            assert time.time() - started < 120
