"""Database access for the API: short timeouts, broken connections discarded, one retry.

Contract of ``Database.run(work)``:
- ``work(conn)`` runs inside ONE transaction; it commits only if work returns, so a state
  change and its events are written together or not at all;
- a connection that failed is closed and never reused (after a failover the endpoint's
  upstream changed and every open connection is dead);
- when the failure was a broken connection, work runs once more on a fresh connection
  (safe: every write is idempotent: idempotency keys, one approval and one publish per intent);
- the whole call answers within about ``3 x timeout + 1`` seconds, also when packets are
  black-holed: a stuck attempt is abandoned (and its connection closed in the background);
- every database failure surfaces as ``DatabaseUnavailable`` with a short, secret-free cause;
  when the failure came while the COMMIT was in flight, it is ``CommitUnconfirmed`` instead:
  the write may have been applied, so the API must not say it was refused.

Synchronous replication: when the standby does not confirm a commit, PostgreSQL's
statement_timeout cancels the wait and the COMMIT *succeeds* locally, with only a WARNING
("canceling wait for synchronous replication"). Acknowledging that write would lose it on
failover, so such a commit is reported as ``CommitUnconfirmed``, never as success.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
from psycopg import errors

from controlplane.redact import short_cause

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_IDLE = 4

# Errors that mean "the database cannot take this write now", answered 503, not 500.
UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, errors.ReadOnlySqlTransaction)


class DatabaseUnavailable(Exception):
    """The database did not answer, refused, or is read-only; str() is the short cause."""


class CommitUnconfirmed(DatabaseUnavailable):
    """The COMMIT was sent but not confirmed (durably replicated): the outcome is unknown."""


SYNC_WAIT_CANCELED = "canceling wait for synchronous replication"


class Database:
    """A tiny pool of async connections to one conninfo (password from PGPASSWORD)."""

    def __init__(self, conninfo: str, timeout: float = 2.0, application_name: str = "controlplane") -> None:
        self.conninfo = conninfo
        self.timeout = timeout
        self.application_name = application_name
        self._idle: list[psycopg.AsyncConnection] = []

    async def run(self, work: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
        """Run work(conn) in one transaction (see the module docstring)."""
        for attempt in (1, 2):
            conn = await self._acquire(fresh=attempt > 1)
            phase = {"committing": False, "abandoned": False}
            try:
                result: T = await self._bounded(conn, work, phase)
            except UNAVAILABLE as exc:
                broken = conn.broken or conn.closed
                await self._discard(conn)
                if phase["committing"]:
                    raise CommitUnconfirmed(f"commit outcome unknown: {short_cause(exc)}") from exc
                if broken and attempt == 1:
                    log.info("database connection broken (%s); retrying once on a fresh one", short_cause(exc))
                    await self.close()  # the idle ones went to the same (old) upstream
                    continue
                raise DatabaseUnavailable(short_cause(exc)) from exc
            except DatabaseUnavailable:
                raise  # abandoned attempt, or an unconfirmed commit: its connection is closed once the attempt settles
            except Exception:
                # A refusal raised by work (404, 409, ...) rolled the transaction back and
                # leaves a healthy connection; anything else may not.
                if conn.closed or conn.broken or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    await self._discard(conn)
                else:
                    self._release(conn)
                raise
            self._release(conn)
            return result
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Close every idle connection."""
        while self._idle:
            await self._discard(self._idle.pop())

    # ---- internals -------------------------------------------------------------------

    async def _acquire(self, fresh: bool = False) -> psycopg.AsyncConnection:
        while self._idle and not fresh:
            conn = self._idle.pop()
            if not (conn.closed or conn.broken):
                return conn
        ms = int(self.timeout * 1000)
        try:
            # connect_timeout bounds the TCP connect and handshake (libpq rounds it up to
            # >= 2 s); wait_for is the outer guard against a peer that never answers.
            return await asyncio.wait_for(
                psycopg.AsyncConnection.connect(
                    self.conninfo,
                    connect_timeout=max(1, round(self.timeout)),
                    application_name=self.application_name,
                    options=f"-c statement_timeout={ms} -c lock_timeout={ms} "
                    f"-c idle_in_transaction_session_timeout={ms * 5}",
                ),
                timeout=self.timeout + 1.0,
            )
        except TimeoutError:
            raise DatabaseUnavailable(f"no connection within {self.timeout + 1.0:.1f} s") from None
        except UNAVAILABLE as exc:
            raise DatabaseUnavailable(short_cause(exc)) from exc

    async def _bounded(self, conn: psycopg.AsyncConnection, work, phase: dict) -> T:
        """work in a transaction, abandoned after 2 x timeout (statement_timeout covers a slow
        server; this covers a silent network, where no server-side timeout can fire)."""
        warnings: list[str] = []

        def notice(diag) -> None:
            warnings.append(diag.message_primary or "")

        async def attempt() -> T:
            conn.add_notice_handler(notice)
            try:
                async with conn.transaction():
                    result = await work(conn)
                    # the caller may have given up on this attempt (answered 503 "nothing written")
                    # while work went on: a cancellation the driver swallowed (it cancels the query
                    # server-side and returns the statement's result if it had finished). Roll back
                    # then; the check and the flag below run with no await between them, so either
                    # the caller saw "committing" (504, outcome unknown) or this rolls back.
                    if phase["abandoned"]:
                        raise DatabaseUnavailable("attempt abandoned before its commit")
                    phase["committing"] = True  # the COMMIT is sent when this block exits
            finally:
                conn.remove_notice_handler(notice)
            if any(SYNC_WAIT_CANCELED in w for w in warnings):
                await self._discard(conn)
                raise CommitUnconfirmed(
                    "commit not confirmed by the synchronous standby (applied locally, may be lost on failover)"
                )
            return result

        task = asyncio.ensure_future(attempt())
        done, _ = await asyncio.wait({task}, timeout=2 * self.timeout)
        if task in done:
            return task.result()
        # Do not await the cancellation: psycopg may spend seconds trying to cancel the
        # query on a server that does not answer. Close the connection once it settles.
        phase["abandoned"] = True
        task.cancel()
        task.add_done_callback(lambda _t: asyncio.ensure_future(self._discard(conn)))
        if phase["committing"]:
            raise CommitUnconfirmed(f"commit not confirmed within {2 * self.timeout:.1f} s")
        raise DatabaseUnavailable(f"no answer within {2 * self.timeout:.1f} s")

    def _release(self, conn: psycopg.AsyncConnection) -> None:
        if len(self._idle) < MAX_IDLE and not (conn.closed or conn.broken):
            self._idle.append(conn)
        else:
            asyncio.ensure_future(self._discard(conn))

    @staticmethod
    async def _discard(conn: psycopg.AsyncConnection) -> None:
        try:
            await asyncio.wait_for(conn.close(), timeout=1.0)
        except Exception:  # noqa: BLE001 - already broken; nothing to save
            pass


async def durable_replay(conn) -> None:
    """Call in a transaction that answers a replay ("already recorded") without writing: it writes
    a barrier row, so its COMMIT waits for the synchronous standby as a write's does. A row
    committed locally but never confirmed (the standby was unreachable: the first attempt answered
    504) is visible to the replay, and would be lost with the primary; with the barrier the replay
    is acknowledged only once everything before it is replicated, or answers 504 itself. (A
    transaction id alone is not enough: PostgreSQL waits for the standby only when the
    transaction wrote WAL, so the barrier writes one row, keyed by the session.)"""
    await conn.execute(
        "INSERT INTO durability_barrier (backend_pid, at) VALUES (pg_backend_pid(), clock_timestamp())"
        " ON CONFLICT (backend_pid) DO UPDATE SET at = EXCLUDED.at"
    )
