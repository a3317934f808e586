"""A transaction the Control Plane's database layer gave up on never commits afterwards.

After 2 x timeout without an answer, Database.run answers DatabaseUnavailable (the API's 503 with a
cause, which clients take as "nothing written") and cancels the attempt without awaiting it. If the
cancellation is swallowed (the driver cancels the query server-side and hands back the statement's
result when it had already finished), the work goes on; it must then roll back, never commit behind
a 503 (the drills' ApprovalEventCount once saw an approval answered 503 and recorded)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from controlplane.db import CommitUnconfirmed, Database, DatabaseUnavailable
from harness.lab.postgres import PgCluster


@pytest.fixture(scope="module")
def dsn():
    with PgCluster() as cluster:
        with psycopg.connect(cluster.primary.admin_dsn, autocommit=True) as c:
            c.execute("CREATE TABLE written (k text)")
        yield cluster.primary.admin_dsn


def count(dsn: str, key: str) -> int:
    with psycopg.connect(dsn) as c:
        row = c.execute("SELECT count(*) FROM written WHERE k = %s", (key,)).fetchone()
    assert row is not None
    return int(row[0])


def run_outliving_work(dsn: str, key: str, timeout: float) -> BaseException | None:
    """Run work that inserts `key` and then waits 1 s, swallowing a cancellation; wait until every
    task settled; the exception Database.run raised (None: it answered)."""

    async def scenario() -> BaseException | None:
        db = Database(dsn, timeout=timeout)

        async def work(conn):
            await conn.execute("INSERT INTO written VALUES (%s)", (key,))
            try:
                await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                pass  # swallowed, as a driver handing back a finished statement's result does
            return "done"

        try:
            await db.run(work)
            raised = None
        except DatabaseUnavailable as exc:
            raised = exc
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if others:
            await asyncio.wait(others, timeout=15)
        await db.close()
        return raised

    return asyncio.run(scenario())


def test_work_that_outlives_its_abandoned_attempt_rolls_back_and_never_commits_behind_the_503(dsn):
    raised = run_outliving_work(dsn, "abandoned", timeout=0.2)
    assert isinstance(raised, DatabaseUnavailable) and not isinstance(raised, CommitUnconfirmed), raised
    assert count(dsn, "abandoned") == 0


def test_the_same_work_within_the_timeout_commits(dsn):
    assert run_outliving_work(dsn, "in-time", timeout=5.0) is None
    assert count(dsn, "in-time") == 1
