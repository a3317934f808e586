"""Shared fixtures of the backup tests: one real PostgreSQL cluster and one moto server per test
module; each test gets its own database (a small Control Plane-like schema: intents, approvals,
the hash-chained events with their chain head, cp_clock and cp_now()) and its own buckets."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import threading
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from psycopg import sql

from harness.backup import BackupStore, KeyVault, pg_restore_into, take_snapshot
from harness.lab.moto import MotoServer
from harness.lab.parts import store_client
from harness.lab.postgres import PgCluster, pg_bin_dir
from tests.support import wait_for

PG_BIN = pg_bin_dir()

# A reduced copy of the Control Plane's tables the backup reads (controlplane/schema.sql):
# the event store with its chain head, and the Control Plane's clock.
SCHEMA = """
CREATE TABLE intents (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    state text NOT NULL DEFAULT 'Draft',
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE approvals (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    intent_id bigint NOT NULL UNIQUE REFERENCES intents (id),
    approver text NOT NULL);
CREATE TABLE events (
    seq bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    type text NOT NULL,
    intent_id bigint,
    correlation_id text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    prev_hash text NOT NULL,
    hash text NOT NULL UNIQUE);
CREATE TABLE event_chain_head (
    id smallint PRIMARY KEY CHECK (id = 1),
    last_seq bigint NOT NULL,
    last_hash text NOT NULL);
INSERT INTO event_chain_head VALUES (1, 0, repeat('0', 64));
CREATE TABLE cp_clock (id smallint PRIMARY KEY CHECK (id = 1), offset_s double precision NOT NULL DEFAULT 0);
INSERT INTO cp_clock VALUES (1, 0);
CREATE FUNCTION cp_now() RETURNS timestamptz LANGUAGE sql VOLATILE AS $$
    SELECT clock_timestamp() + make_interval(secs => offset_s) FROM cp_clock WHERE id = 1
$$;
CREATE SCHEMA aside;
CREATE TABLE aside.blocker (x int);
"""

_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    with PgCluster(state_dir=tmp_path_factory.mktemp("drill-state")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    with MotoServer(state_dir=tmp_path_factory.mktemp("drill-state")) as server:
        yield server


@pytest.fixture(scope="module")
def s3(moto):
    return store_client("s3", moto.endpoint_url)


@pytest.fixture
def store(s3):
    n = next(_numbers)
    return BackupStore(s3, bucket=f"backups-{n}", dr_bucket=f"backups-dr-{n}", vault_bucket=f"keyvault-{n}").ensure()


@pytest.fixture
def vault(store):
    return KeyVault(store.s3, store.vault_bucket)


def app_dsn(pg: PgCluster, database: str) -> str:
    node = pg.primary
    return node.dsn_via(node.host, node.port, dbname=database)


def admin_dsn(pg: PgCluster, database: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(pg.primary.admin_dsn)
    return psycopg.conninfo.make_conninfo(**{**params, "dbname": database})


def new_database(pg: PgCluster, prefix: str = "db") -> str:
    name = f"{prefix}_{next(_numbers)}"
    pg.primary.query(sql.SQL("CREATE DATABASE {} OWNER controlplane").format(sql.Identifier(name)))
    return name


@pytest.fixture
def db(pg):
    """A fresh database with the schema and a few rows: 3 intents, 2 approvals, 5 events."""
    name = new_database(pg)
    dsn = app_dsn(pg, name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
    seed(dsn, 3, 2, tag="seed")
    return SimpleNamespace(name=name, dsn=dsn, password=pg.password, port=pg.primary.port)


def append_event(conn: psycopg.Connection, type_: str, intent_id: int | None = None, payload: dict | None = None):
    """Append one event to the hash chain, as the Control Plane does (head FOR UPDATE)."""
    last_seq, last_hash = conn.execute(
        "SELECT last_seq, last_hash FROM event_chain_head WHERE id = 1 FOR UPDATE"
    ).fetchone()
    body = json.dumps(payload or {}, sort_keys=True)
    digest = hashlib.sha256(f"{last_hash}|{type_}|{intent_id}|{body}".encode()).hexdigest()
    seq = conn.execute(
        "INSERT INTO events (type, intent_id, correlation_id, payload, prev_hash, hash) "
        "VALUES (%s, %s, %s, %s::jsonb, %s, %s) RETURNING seq",
        (type_, intent_id, f"corr-{digest[:8]}", body, last_hash, digest),
    ).fetchone()[0]
    conn.execute("UPDATE event_chain_head SET last_seq = %s, last_hash = %s WHERE id = 1", (seq, digest))


def seed(dsn: str, intents: int, approvals: int, tag: str) -> None:
    """intents new intents (each with an IntentCreated event), the first `approvals` of them
    approved (each with an ApprovalRecorded event); idempotency keys carry `tag`."""
    with psycopg.connect(dsn) as conn:
        for i in range(intents):
            intent = conn.execute(
                "INSERT INTO intents (idempotency_key) VALUES (%s) RETURNING id", (f"{tag}-{i}-{os.urandom(3).hex()}",)
            ).fetchone()[0]
            append_event(conn, "IntentCreated", intent, {"tag": tag})
            if i < approvals:
                conn.execute("INSERT INTO approvals (intent_id, approver) VALUES (%s, 'cab')", (intent,))
                append_event(conn, "ApprovalRecorded", intent, {"tag": tag})


def counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        return {
            t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0] for t in tables
        }


def chain_head(dsn: str) -> dict:
    with psycopg.connect(dsn, autocommit=True) as conn:
        seq, digest = conn.execute("SELECT last_seq, last_hash FROM event_chain_head WHERE id = 1").fetchone()
    return {"last_seq": seq, "last_hash": digest}


def approvals_recorded(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM events WHERE type = 'ApprovalRecorded'").fetchone()[0]


def set_clock(dsn: str, epoch: float) -> None:
    """Move the Control Plane's clock so that cp_now() reads `epoch` now."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE cp_clock SET offset_s = %s - extract(epoch FROM clock_timestamp())::float8 WHERE id = 1",
            (float(epoch),),
        )


def restore_into_database(pg: PgCluster):
    """A rehydrate step into a new database of the module's cluster; returns (rehydrate, names)."""
    names: list[str] = []

    def rehydrate(dump: Path) -> None:
        name = f"restored_{next(_numbers)}"
        names.append(name)
        pg_restore_into(pg.primary.admin_dsn, PG_BIN, dump, database=name)

    return rehydrate, names


def corrupt(store: BackupStore, key: str, truncate: bool = False) -> None:
    """A new version of the object whose bytes are altered (one flipped byte) or cut in half."""
    data = bytearray(store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read())
    if truncate:
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    store.s3.put_object(Bucket=store.bucket, Key=key, Body=bytes(data))


class Events:
    """An emit callable that records (kind, name, detail)."""

    def __init__(self):
        self.items: list[tuple[str, str, dict]] = []

    def __call__(self, kind: str, name: str, detail: dict) -> None:
        self.items.append((kind, name, detail))

    def kinds(self) -> list[str]:
        return [k for k, _, _ in self.items]

    def of(self, kind: str) -> list[dict]:
        return [d for k, _, d in self.items if k == kind]


def pg_dump_cmdlines(port: int) -> list[str]:
    """The command lines of the pg_dump processes running against `port`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"/pg_dump") and f"port={port}".encode() in b" ".join(argv):
            found.append(b" ".join(argv).decode(errors="replace"))
    return found


class BlockedSnapshot:
    """take_snapshot in a thread, held on a lock this test holds (ACCESS EXCLUSIVE on `table`)
    until release(), which answers the manifest.

    - table "aside.blocker" (not in schema public, so never counted): the snapshot is exported
      and its figures read, pg_dump runs but waits for the lock, as it locks every table it dumps;
    - table "public.approvals" (counted first): the snapshot is exported, then its first row
      count waits: whatever commits meanwhile happened after the export and before pg_dump."""

    def __init__(self, pg: PgCluster, db, store: BackupStore, vault: KeyVault, table: str = "aside.blocker"):
        self.pg, self.db, self.store, self.vault, self.table = pg, db, store, vault, table
        self.result: dict = {}

    def _waiting(self):
        if self.table == "aside.blocker":
            extra = "application_name = 'pg_dump'"
        else:
            extra = "query LIKE 'SELECT count(*) FROM public.%%'"
        return self.pg.primary.query(
            f"SELECT 1 FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' AND {extra}",
            (self.db.name,),
        )

    def __enter__(self) -> BlockedSnapshot:
        self.lock = psycopg.connect(admin_dsn(self.pg, self.db.name))
        self.lock.execute(
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(*self.table.split(".")))
        )

        def run():
            try:
                self.result["manifest"] = take_snapshot(self.db.dsn, PG_BIN, self.store, self.vault)
            except BaseException as exc:  # noqa: BLE001 - re-raised in release()
                self.result["error"] = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        wait_for(
            lambda: self._waiting() or "error" in self.result,
            timeout=20,
            what=f"the snapshot waiting for the lock on {self.table}",
        )
        assert "error" not in self.result, self.result.get("error")
        return self

    def release(self):
        self.lock.rollback()
        self.lock.close()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "take_snapshot did not finish after the lock was released"
        if "error" in self.result:
            raise self.result["error"]
        return self.result["manifest"]

    def __exit__(self, *exc) -> None:
        if not self.lock.closed:
            self.lock.rollback()
            self.lock.close()
        self.thread.join(timeout=30)
