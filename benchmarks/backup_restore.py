"""Benchmark: the deployment's backup tool (pgBackRest) and the harness's restore drill on it, by size.

Real parts only: a PgCluster (PostgreSQL 15) per size as the deployment, MotoServer(tls=True) with
the two buckets as tests/lab/test_pgbackrest.py makes them (repo1 us-east-1; repo2 us-west-2 with
Object Lock, COMPLIANCE 90 days), and PgBackRest (harness/lab/pgbackrest.py) over both: WAL archived
to both, both encrypted, the backups in repo1. Per size:

1. fill the Control Plane database (controlplane/schema.sql) up to the size: intents, and one
   IntentCreated event per intent on a valid hash chain (the validation recomputes it), before
   archiving is turned on (the full backup holds the fill; its WAL is not replayed);
2. PgBackRest set-up (archiving on, stanza-create, check), a full backup into repo1, a few MB of
   writes after it (archived WAL for every restore to replay), `check` (the WAL switched and archived);
3. --runs times, interleaved, both to the end of the archived WAL:
   - the harness's drill: harness.restore.restore_newest_valid (verify, restore of the files,
     replay to promotion, each timed; the whole call timed), then the harness's validation
     timed apart: row counts of every table against the deployment's, every event read back
     with its hash recomputed and its link checked (harness.measure.eventstore.event_hash),
     the approvals counted;
   - the bare tool: `pgbackrest restore` into a new folder (no --set: the tool's newest), a
     ScratchServer started on it, wait for promotion. No verify, no validation.
   ratio = bare / harness-without-validation (median of each), target >= 0.9.

Once, on the first size's deployment, the backup RPO with PITR under a writer (one intent committed
every --write-interval, each acknowledged key and its time recorded by the writer): a diff backup
while it writes, --keep-writing seconds more, then the primary is killed (the disaster), and the
harness's drill restores to the latest point. RPO = the kill's time minus the acknowledgement time
of the newest acknowledged write found in the restore (every acknowledged write after it is
missing). Archive lag = the age, when the restore starts, of the newest WAL segment in repo1
(its name from `pgbackrest info`'s archive max, its push time from the tool's archive-push log,
cross-checked with the object's LastModified in the bucket). Run once per --archive-timeouts value
(PostgreSQL's archive_timeout; 0 = off, what the lab's PgBackRest sets today).

Run from the repository root:
    .venv/bin/python benchmarks/backup_restore.py --sizes 100MB,1GB
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.lab.moto import MotoServer  # noqa: E402
from harness.lab.pgbackrest import (  # noqa: E402
    REPO1_BUCKET,
    REPO_PATH,
    Credentials,
    PgBackRest,
    ScratchServer,
    lab_repos,
)
from harness.lab.postgres import APP_DATABASE, PgCluster  # noqa: E402
from harness.measure.eventstore import GENESIS, event_hash  # noqa: E402
from harness.restore import restore_newest_valid  # noqa: E402

MB = 1 << 20
TARGET_RATIO = 0.9
BATCH = 200_000  # at most this many intents (and events) per COPY between two size checks


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(MB|GB)\s*", text, re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: use e.g. 100MB or 1GB")
    return int(float(match[1]) * (MB if match[2].upper() == "MB" else 1024 * MB))


def db_size(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])


# ---- the deployment ------------------------------------------------------------------------


def _rows(first: int, last: int, prev: str) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...], str]]:
    """Intent g and its IntentCreated event (seq g), chained on prev: (intent row, event row, hash)."""
    import hashlib

    for g in range(first, last + 1):
        corr = hashlib.md5(f"corr{g}".encode()).hexdigest()
        payload = {
            "version": g,
            "artifact": hashlib.md5(str(g).encode()).hexdigest() + hashlib.md5(str(g * 7).encode()).hexdigest(),
            "config": hashlib.md5(str(g * 13).encode()).hexdigest() + hashlib.md5(str(g * 31).encode()).hexdigest(),
        }
        intent = (g, f"bench-{g}", f"ring-{g % 4}", f"platform-{g % 3}", json.dumps(payload))
        intent += (("Draft", "Approved", "Published")[g % 3], corr)
        event = {"seq": g, "type": "IntentCreated", "intent_id": g, "correlation_id": corr}
        event["payload"] = {"intent_id": g, "by": "bench"}
        digest = event_hash(prev, event)
        yield intent, (g, "IntentCreated", g, corr, json.dumps(event["payload"]), prev, digest), digest
        prev = digest


def fill(dsn: str, target: int) -> tuple[int, float]:
    """Intents and their events (a valid hash chain) until the database is ~target bytes; (rows, s)."""
    start = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute((ROOT / "controlplane" / "schema.sql").read_text())  # as `controlplane migrate`
        size, last, prev, batch = db_size(conn), 0, GENESIS, 5_000
        while size < 0.98 * target:
            rows = list(_rows(last + 1, last + batch, prev))
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(
                    "COPY intents (id, idempotency_key, ring, platform, payload, state, correlation_id) FROM STDIN"
                ) as copy:
                    for intent, _, _ in rows:
                        copy.write_row(intent)
                with cur.copy(
                    "COPY events (seq, type, intent_id, correlation_id, payload, prev_hash, hash) FROM STDIN"
                ) as copy:
                    for _, event, _ in rows:
                        copy.write_row(event)
            last, prev = last + batch, rows[-1][2]
            grown, size = size, db_size(conn)
            per_row = max(1.0, (size - grown) / batch)
            batch = max(1_000, min(BATCH, int((target - size) / per_row)))
        # what COPY's explicit ids leave behind: the identity, the sequence, the chain head
        conn.execute(sql.SQL("ALTER TABLE intents ALTER COLUMN id RESTART WITH {}").format(last + 1))
        conn.execute("SELECT setval(pg_get_serial_sequence('events', 'seq'), %s)", (last,))
        conn.execute("UPDATE event_chain_head SET (last_seq, last_hash) = (%s, %s) WHERE id = 1", (last, prev))
        conn.execute("VACUUM (ANALYZE) intents, events")  # hint bits set once, before any copy
    return last, time.monotonic() - start


def counts(dsn: str) -> dict[str, int]:
    """Rows of every table of public (as the harness's validation counts them)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1"
            ).fetchall()
        ]
        return {
            t: int(conn.execute(sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(t))).fetchone()[0])
            for t in tables
        }


def validate(server: ScratchServer, expected: dict[str, int]) -> float:
    """The harness's validation of a restored database: row counts per table against the
    deployment's, every event read back in seq order with its hash recomputed and its link to the
    one before checked, the approvals counted. SystemExit on any difference; answers the seconds
    the counts took (the rest is the chain)."""
    dsn = psycopg.conninfo.make_conninfo(server.dsn, dbname=APP_DATABASE)
    start = time.monotonic()
    found = counts(dsn)
    counts_s = time.monotonic() - start
    if found != expected:
        raise SystemExit(f"validate: the restored row counts {found} differ from the deployment's {expected}")
    columns = ("seq", "type", "intent_id", "correlation_id", "payload", "prev_hash", "hash")
    with psycopg.connect(dsn) as conn, conn.cursor(name="chain") as cur:
        cur.itersize = 20_000
        cur.execute(f"SELECT {', '.join(columns)} FROM events ORDER BY seq")
        prev, n = GENESIS, 0
        for row in cur:
            event = dict(zip(columns, row, strict=True))
            if event["prev_hash"] != prev or event["hash"] != event_hash(prev, event):
                raise SystemExit(f"validate: the event chain breaks at seq {event['seq']}")
            prev, n = event["hash"], n + 1
        head = conn.execute("SELECT last_seq, last_hash FROM event_chain_head WHERE id = 1").fetchone()
        conn.execute("SELECT count(*) FROM events WHERE type = 'ApprovalRecorded'").fetchone()
    if n != expected.get("events") or head is None or head[1] != prev:
        raise SystemExit(f"validate: {n} events chained, the chain head says {head}")
    return counts_s


# ---- the two restores ----------------------------------------------------------------------


def harness_restore(tool: PgBackRest, expected: dict[str, int]) -> dict[str, float]:
    """restore_newest_valid to the end of the WAL (its phases and its whole call), then validation."""
    start = time.monotonic()
    outcome = restore_newest_valid(tool, tool.cluster.root, repo=1)
    wall = time.monotonic() - start
    try:
        if not outcome.ok or outcome.server is None:
            raise SystemExit(f"the harness's restore failed: {outcome.error}")
        t = outcome.timings
        assert t.verify_s is not None and t.restore_s is not None and t.replay_s is not None
        start = time.monotonic()
        counts_s = validate(outcome.server, expected)
        validate_s = time.monotonic() - start
    finally:
        outcome.close()
    return {
        "verify": t.verify_s,
        "restore": t.restore_s,
        "replay": t.replay_s,
        "drill": wall,
        "other": wall - t.verify_s - t.restore_s - t.replay_s,  # the listing, the choice, the folder
        "validate": validate_s,
        "counts": counts_s,
    }


def bare_restore(tool: PgBackRest, expected: dict[str, int]) -> dict[str, float]:
    """pgbackrest restore (the tool's newest backup, no verify) + start + wait for promotion."""
    datadir = tool.scratch_dir("bare")
    try:
        start = time.monotonic()
        tool.restore(datadir)
        restored = time.monotonic()
        with ScratchServer(tool.cluster, datadir) as server:
            server.wait_promoted()
            done = time.monotonic()
            # not timed: that the bare restore restored the same data (the row counts)
            found = counts(psycopg.conninfo.make_conninfo(server.dsn, dbname=APP_DATABASE))
            if found != expected:
                raise SystemExit(f"the bare restore holds {found}, the deployment {expected}")
    finally:
        shutil.rmtree(datadir.parent, ignore_errors=True)
    return {"restore": restored - start, "replay": done - restored, "total": done - start}


def median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


# ---- RPO under a writer ------------------------------------------------------------------------


@dataclass
class Writer:
    """One intent committed every `interval` s on its own connection; acks: key -> time.time() after
    the commit returned. Stops at the first error (the primary killed) or at stop()."""

    dsn: str
    interval: float
    tag: str
    acks: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Writer:
        self._thread = threading.Thread(target=self._run, name="rpo-writer", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                began, n = time.monotonic(), 0
                while not self._stop.is_set():
                    key = f"rpo-{self.tag}-{n}"
                    conn.execute(
                        "INSERT INTO intents (idempotency_key, ring, platform, payload, state, correlation_id) "
                        "VALUES (%s, 'ring-0', 'platform-0', '{}', 'Draft', %s)",
                        (key, key),
                    )
                    self.acks[key] = time.time()
                    n += 1
                    self._stop.wait(max(0.0, began + n * self.interval - time.monotonic()))  # the pace
        except psycopg.Error as exc:
            self.error = type(exc).__name__

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def newest_segment(tool: PgBackRest, s3: Any) -> tuple[str, float | None]:
    """repo1's newest archived WAL segment (`pgbackrest info`'s archive max) and its object's
    LastModified in the bucket (whole seconds: moto's listing)."""
    archives = [a for a in tool.info(repo=1).get("archive", []) if a.get("database", {}).get("repo-key") == 1]
    segment = str(archives[-1]["max"])
    listed = None
    prefix = f"{REPO_PATH.strip('/')}/archive/{tool.stanza}/{archives[-1]['id']}/{segment[:16]}/{segment}"
    for obj in s3.list_objects_v2(Bucket=REPO1_BUCKET, Prefix=prefix).get("Contents", []):
        listed = obj["LastModified"].timestamp()
    return segment, listed


def rpo_run(tool: PgBackRest, s3: Any, archive_timeout: int, interval: float, keep_writing: float) -> dict[str, Any]:
    """A writer; a diff backup while it writes; keep_writing s more; the primary killed; the
    harness's drill restores to the latest point; what the writer had acknowledged and is missing."""
    primary = tool.cluster.primary
    if not primary.is_running():
        primary.start()
    with primary.connect(admin=True, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER SYSTEM SET archive_timeout = {}").format(sql.Literal(str(archive_timeout))))
        conn.execute("SELECT pg_reload_conf()")
    writer = Writer(primary.dsn, interval, f"t{archive_timeout}").start()
    archiver_conn = primary.connect(admin=True, autocommit=True)
    try:
        start = time.monotonic()
        label = tool.backup("diff")
        backup_s = time.monotonic() - start
        if writer._stop.wait(keep_writing) or writer.error:
            raise SystemExit(f"the writer stopped early: {writer.error}")
        # the server's own record of its newest archive_command success (microseconds), read just
        # before the disaster on a connection already open
        archiver = archiver_conn.execute(
            "SELECT last_archived_wal, extract(epoch FROM last_archived_time)::float8 FROM pg_stat_archiver"
        ).fetchone()
        killed = time.time()
        primary.kill()  # the disaster: the deployment's host is gone
    finally:
        writer.stop()
        archiver_conn.close()
    restore_at = time.time()
    segment, listed = newest_segment(tool, s3)
    # the archiver's newest may be the backup's history file (SEGMENT.OFFSET.backup), pushed after its segment
    same = archiver is not None and archiver[1] is not None and str(archiver[0])[:24] == segment
    pushed = float(archiver[1]) if same else None
    outcome = restore_newest_valid(tool, tool.cluster.root, repo=1)
    try:
        if not outcome.ok or outcome.server is None or outcome.restored is None:
            raise SystemExit(f"the RPO restore failed: {outcome.error}")
        keys = {
            r[0] for r in outcome.server.query("SELECT idempotency_key FROM intents WHERE idempotency_key LIKE 'rpo-%'")
        }
        restored_label = outcome.restored.label
    finally:
        outcome.close()
    acked = sorted(writer.acks.items(), key=lambda kv: kv[1])
    failed_at = max(killed, acked[-1][1])  # a commit acknowledged while the kill was under way counts
    present = [at for key, at in acked if key in keys]
    missing = [at for key, at in acked if key not in keys]
    holes = [at for at in missing if present and at < present[-1]]
    if holes:
        raise SystemExit(f"the restore lacks {len(holes)} acknowledged writes older than ones it holds")
    return {
        "archive_timeout": archive_timeout,
        "backup": label,
        "restored": restored_label,
        "backup_s": backup_s,
        "acked": len(acked),
        "lost": len(missing),
        "rpo_s": failed_at - present[-1] if present else float("nan"),
        "last_ack_s": acked[-1][1] - killed,
        "archiver": archiver[0] if archiver else None,
        "segment": segment,
        "lag_s": restore_at - pushed if pushed is not None else float("nan"),
        "lag_listed_s": restore_at - listed if listed is not None else float("nan"),
    }


# ---- per size ------------------------------------------------------------------------------


def one_size(label: str, target: int, moto: MotoServer, args: argparse.Namespace, rpo: bool) -> dict[str, Any]:
    moto.reset()  # the previous size's repositories gone
    repo1, repo2 = lab_repos(moto)  # the two buckets, as the lab makes them
    result: dict[str, Any] = {"label": label}
    with ExitStack() as stack:
        cluster = stack.enter_context(PgCluster())
        rows, result["fill_s"] = fill(cluster.primary.dsn, target)
        with psycopg.connect(cluster.primary.dsn) as conn:
            result["size"] = db_size(conn)
        tool = PgBackRest(cluster, repo1, repo2, Credentials.generate(), process_max=args.process_max)
        start = time.monotonic()
        stack.enter_context(tool)  # archiving on (a restart), stanza-create, check
        result["setup_s"] = time.monotonic() - start
        start = time.monotonic()
        result["backup"] = tool.backup("full")
        result["backup_s"] = time.monotonic() - start
        with psycopg.connect(cluster.primary.dsn, autocommit=True) as conn:  # WAL after the backup
            lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
            conn.execute(
                "INSERT INTO intents (idempotency_key, ring, platform, payload, state, correlation_id) "
                "SELECT 'after-' || g, 'ring-1', 'platform-1', jsonb_build_object('pad', repeat('x', 400)), "
                "'Draft', md5(g::text) FROM generate_series(1, %s) g",
                (args.after_rows,),
            )
            result["after_wal"] = int(conn.execute("SELECT pg_current_wal_lsn() - %s::pg_lsn", (lsn,)).fetchone()[0])
        tool.check()  # the WAL switched and in both repositories
        expected = counts(cluster.primary.dsn)
        result["rows"] = expected
        drills, bares = [], []
        for i in range(args.runs):  # interleaved (and alternating first), so that a drift hits both
            pair = (harness_restore, bare_restore) if i % 2 == 0 else (bare_restore, harness_restore)
            for fn in pair:
                (drills if fn is harness_restore else bares).append(fn(tool, expected))
        result["drill"], result["bare"] = median(drills), median(bares)
        result["drill_runs"], result["bare_runs"] = drills, bares
        if rpo:
            s3 = moto.client("s3")
            result["rpo"] = [
                rpo_run(tool, s3, timeout, args.write_interval, args.keep_writing) for timeout in args.archive_timeouts
            ]
    return result


def report(r: dict[str, Any], runs: int) -> None:
    d, b = r["drill"], r["bare"]
    rows = r["rows"]
    print(
        f"\n== {r['label']}: controlplane database {r['size'] / MB:.1f} MB (pg_database_size; intents "
        f"{rows['intents']:,} rows, events {rows['events']:,}), filled in {r['fill_s']:.1f} s"
    )
    print(f"  pgBackRest set-up {r['setup_s']:.2f} s; full backup to repo1 {r['backup_s']:.2f} s ({r['backup']})")
    print(f"  WAL after the backup to replay: {r['after_wal'] / MB:.1f} MB")
    print(f"  restore to the end of the WAL, median of {runs} (min-max), seconds")
    for key, name in (("verify", "verify"), ("restore", "restore (files)"), ("replay", "start+replay+promote")):
        vals = [x[key] for x in r["drill_runs"]]
        bare = f"{b[key]:8.2f}" if key in b else f"{'-':>8}"
        print(f"    {name:<22} drill {d[key]:7.2f} ({min(vals):.2f}-{max(vals):.2f})  bare {bare}")
    print(
        f"    {'drill whole call':<22} drill {d['drill']:7.2f} (listing and the rest {d['other']:.2f})  "
        f"bare {b['total']:8.2f}"
    )
    print(
        f"    {'validation (apart)':<22} drill {d['validate']:7.2f} (row counts {d['counts']:.2f}, "
        f"the event chain read and recomputed {d['validate'] - d['counts']:.2f})"
    )
    ratio = b["total"] / d["drill"]
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(f"  ratio bare / drill-without-validation {ratio:.2f}: {verdict} the target >= {TARGET_RATIO}")
    print(
        f"    without the verify (restore + replay only) {b['total'] / (d['drill'] - d['verify']):.2f}; "
        f"with the validation {b['total'] / (d['drill'] + d['validate']):.2f}"
    )
    for x in r.get("rpo", []):
        at = f"archive_timeout {x['archive_timeout']} s" if x["archive_timeout"] else "archive_timeout off"
        print(
            f"  RPO ({at}): {x['rpo_s']:.2f} s; {x['lost']} of {x['acked']} acknowledged writes lost "
            f"(the newest acknowledged at {x['last_ack_s'] * 1000:+.0f} ms from the kill's start); diff backup "
            f"under the writer {x['backup_s']:.2f} s; restored {x['restored']}"
        )
        print(
            f"    archive lag at the restore: {x['lag_s']:.2f} s (segment {x['segment']}: info's archive max; "
            f"pushed at pg_stat_archiver's last_archived_time; by the bucket's LastModified {x['lag_listed_s']:.1f} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        default="100MB,1GB",
        type=lambda s: sorted((parse_size(p), p.strip().upper()) for p in s.split(",")),
        help="database sizes, MB or GB, comma separated (default %(default)s)",
    )
    parser.add_argument("--runs", type=int, default=3, help="restores of each kind per size (median)")
    parser.add_argument("--process-max", type=int, default=1, help="pgBackRest process-max (the lab's default 1)")
    parser.add_argument("--after-rows", type=int, default=20_000, help="rows written after the backup (WAL to replay)")
    parser.add_argument("--write-interval", type=float, default=0.01, help="the RPO writer's pace, s")
    parser.add_argument("--keep-writing", type=float, default=15.0, help="s of writes after the RPO backup")
    parser.add_argument(
        "--archive-timeouts",
        default="0,10",
        type=lambda s: [int(p) for p in s.split(",")],
        help="PostgreSQL archive_timeout per RPO run, s (0 = off; default %(default)s)",
    )
    args = parser.parse_args()

    started = time.monotonic()
    results = []
    tmp = Path(tempfile.mkdtemp(prefix="drill-bench-backup-"))
    try:
        with MotoServer(tls=True, base_dir=tmp) as moto:
            for i, (target, label) in enumerate(args.sizes):
                t0 = time.monotonic()
                result = one_size(label, target, moto, args, rpo=i == 0)
                report(result, args.runs)
                print(f"  ({label} measured in {time.monotonic() - t0:.0f} s)", flush=True)
                results.append(result)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"\n{'size':>8} {'backup':>7} {'verify':>7} {'restore':>8} {'replay':>7} {'drill':>7} {'bare':>7} "
        f"{'ratio':>6} {'valid.':>7}"
    )
    for r in results:
        d, b = r["drill"], r["bare"]
        ratio = b["total"] / d["drill"]
        print(
            f"{r['size'] / MB:6.0f}MB {r['backup_s']:7.2f} {d['verify']:7.2f} {d['restore']:8.2f} {d['replay']:7.2f} "
            f"{d['drill']:7.2f} {b['total']:7.2f} {ratio:6.2f}{' ' if ratio >= TARGET_RATIO else '!'}"
            f"{d['validate']:7.2f}"
        )
    print(f"ratio = bare / drill without validation; target >= {TARGET_RATIO} ('!' = missed)")
    print(f"whole benchmark: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
