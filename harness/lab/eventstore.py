"""The "event store write blocked" fault on a database node: a real lock, not a stand-in.

A superuser session on the node opens a transaction and takes
``LOCK TABLE event_chain_head IN EXCLUSIVE MODE``, then stays idle in it. Reads of the event
store still work (EXCLUSIVE does not conflict with plain SELECT); every appender's
``SELECT ... FOR UPDATE`` of the chain head waits, so no audit event can be written. Releasing
it rolls the transaction back; should the harness die, the closed socket ends the session and
the lock with it, so a killed run leaves nothing behind. A node that is gone (fenced by the
failover) took the lock with it: releasing is then a no-op.
"""

from __future__ import annotations

from typing import Callable

import psycopg

APPLICATION_NAME = "drill-fault-event-store-block"
LOCK_WAIT_S = 10      # how long taking the lock may wait for in-flight appenders


class EventStoreWriteBlock:
    """A held EXCLUSIVE lock on event_chain_head of one node; release() ends it (idempotent)."""

    def __init__(self, node: str, conn: psycopg.Connection):
        self.node = node
        self._conn: psycopg.Connection | None = conn

    @classmethod
    def hold(cls, node: str, connect: Callable[..., psycopg.Connection]) -> "EventStoreWriteBlock":
        """Take the lock through connect(**kwargs) (a superuser connection to the application
        database). Raises psycopg.Error (connection closed) when it cannot be taken."""
        conn = connect(autocommit=False, application_name=APPLICATION_NAME)
        try:
            conn.execute(f"SET lock_timeout = '{LOCK_WAIT_S}s'")
            conn.execute("SET idle_in_transaction_session_timeout = 0")
            conn.execute("LOCK TABLE event_chain_head IN EXCLUSIVE MODE")   # held until release()
        except BaseException:
            conn.close()
            raise
        return cls(node, conn)

    @property
    def held(self) -> bool:
        return self._conn is not None and not self._conn.closed and not self._conn.broken

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.rollback()
        except psycopg.Error:
            pass   # the node is gone (fenced): so is the lock
        finally:
            conn.close()

    def describe(self) -> str:
        return f"LOCK TABLE event_chain_head IN EXCLUSIVE MODE held on {self.node}"
