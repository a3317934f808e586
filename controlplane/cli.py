"""Command line: ``migrate`` (schema + buckets, idempotent) and ``serve`` (one API instance).

The connector tier: ``queues`` (SQS queues + dead-letter queues, idempotent), ``connector``
(one worker) and ``platform-mock`` (a degradable platform API stand-in).

Secrets never come on the command line: the database password comes from PGPASSWORD (read
by libpq), S3 credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION.
Exit status: 0 done, 2 bad arguments or a dependency unreachable (one message, no traceback).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib import resources

EXIT_UNAVAILABLE = 2


class ScrubSecrets(logging.Filter):
    """Replaces known secret values in every log record (belt and braces)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from controlplane.redact import scrub

        record.msg, record.args = scrub(record.getMessage()), None
        return True


def _setup_logging(instance: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ScrubSecrets())
    handler.setFormatter(logging.Formatter(f"%(asctime)s controlplane[{instance}] %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _fail(command: str, message: str) -> int:
    print(f"controlplane {command}: {message}", file=sys.stderr)
    return EXIT_UNAVAILABLE


def _check_conninfo(command: str, conninfo: str) -> str | None:
    """An error message when the conninfo is unusable or carries a password, else None."""
    import psycopg

    from controlplane.redact import has_password

    try:
        psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return (
            "--database is not a valid libpq conninfo "
            "(e.g. 'host=127.0.0.1 port=5432 dbname=controlplane user=controlplane')"
        )
    if has_password(conninfo):
        return "--database must not carry a password: put it in the environment variable PGPASSWORD"
    return None


def _check_pgbackrest(args: argparse.Namespace) -> str | None:
    """An error message when the pgBackRest source of the backups part is asked for wrongly."""
    pgbackrest = [
        flag
        for flag, value in (
            ("--backup-pgbackrest-config", args.backup_pgbackrest_config),
            ("--backup-pgbackrest-include", args.backup_pgbackrest_include),
            ("--backup-stanza", args.backup_stanza),
        )
        if value is not None
    ]
    if not pgbackrest:
        return None
    if args.backup_bucket:
        return f"{pgbackrest[0]} and --backup-bucket: the backups part has one source, choose one"
    if not (args.backup_pgbackrest_config or "").strip():
        return f"{pgbackrest[0]} needs --backup-pgbackrest-config FILE (pgBackRest's config)"
    stanza = args.backup_stanza or ""
    if not stanza.strip() or stanza.startswith("-") or any(c.isspace() for c in stanza):
        return "--backup-pgbackrest-config needs --backup-stanza NAME (the stanza, e.g. main)"
    if args.backup_pgbackrest_include is not None and not args.backup_pgbackrest_include.strip():
        return "--backup-pgbackrest-include needs a folder"
    if not args.backup_pgbackrest_timeout > 0:
        return "--backup-pgbackrest-timeout must be > 0"
    return None


def migrate(args: argparse.Namespace) -> int:
    """Apply schema.sql in one transaction (serialised by an advisory lock), then the buckets."""
    import botocore.exceptions
    import psycopg

    from controlplane.evidence import S3_ERRORS, ensure_bucket, s3_client
    from controlplane.redact import masked_conninfo, short_cause

    if error := _check_conninfo("migrate", args.database):
        return _fail("migrate", error)
    where = masked_conninfo(args.database)
    schema = resources.files("controlplane").joinpath("schema.sql").read_text()
    try:
        with psycopg.connect(args.database, connect_timeout=max(2, round(args.db_timeout))) as conn:
            with conn.transaction():
                # Two migrations at once (several instances starting) apply it one after the other.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('controlplane-migrate'))")
                conn.execute(schema)
    except psycopg.OperationalError as exc:
        return _fail("migrate", f"database unreachable ({where}): {short_cause(exc)}")
    except psycopg.Error as exc:
        return _fail("migrate", f"schema not applied ({where}): {short_cause(exc)}")

    client = s3_client(args.s3_endpoint, timeout=args.s3_timeout)
    replica_client = (
        s3_client(args.s3_replica_endpoint, timeout=args.s3_timeout) if args.s3_replica_endpoint else client
    )
    outcomes = []
    try:
        # Both buckets alike: versioning, Object Lock and the default retention rule.
        for bucket, c in [(args.evidence_bucket, client), (args.evidence_replica_bucket, replica_client)]:
            if bucket:
                outcomes.append(f"{bucket} {ensure_bucket(c, bucket, args.retention_days)}")
    except botocore.exceptions.NoCredentialsError:
        return _fail("migrate", "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    except botocore.exceptions.ClientError as exc:
        return _fail("migrate", f"evidence store at {args.s3_endpoint} refused: {short_cause(exc)}")
    except S3_ERRORS as exc:
        return _fail("migrate", f"evidence store unreachable at {args.s3_endpoint}: {short_cause(exc)}")
    print(f"controlplane migrate: schema applied ({where}); buckets: {', '.join(outcomes)} (versioning, Object Lock)")
    return 0


def serve(args: argparse.Namespace) -> int:
    """Run one API instance until SIGTERM/SIGINT."""
    from aiohttp import web

    from controlplane.api import ControlPlane, make_app
    from controlplane.db import Database
    from controlplane.dispatch import Dispatcher
    from controlplane.evidence import EvidenceStore, RetryPolicy
    from controlplane.redact import masked_conninfo
    from controlplane.siem import SiemSink

    if error := _check_conninfo("serve", args.database):
        return _fail("serve", error)
    if args.s3_retries < 1 or args.s3_backoff_base < 0:
        return _fail("serve", "--s3-retries must be >= 1 and --s3-backoff-base >= 0")
    if args.min_instances < 1:
        return _fail("serve", "--min-instances must be >= 1")
    if any(not b.strip() for b in args.backup_bucket):
        return _fail("serve", "--backup-bucket needs a bucket name")
    if error := _check_pgbackrest(args):
        return _fail("serve", error)
    _setup_logging(args.instance)
    from controlplane.backups import BackupCatalogue, Catalogue, PgBackRestCatalogue

    catalogue: Catalogue | None = None
    if args.backup_bucket:
        catalogue = BackupCatalogue(
            args.backup_endpoint or args.s3_endpoint, args.backup_bucket, timeout=args.s3_timeout
        )
    elif args.backup_pgbackrest_config:
        catalogue = PgBackRestCatalogue(
            os.path.abspath(args.backup_pgbackrest_config),
            args.backup_stanza,
            include=os.path.abspath(args.backup_pgbackrest_include) if args.backup_pgbackrest_include else None,
            timeout=args.backup_pgbackrest_timeout,
        )
    cp = ControlPlane(
        args.instance,
        Database(args.database, timeout=args.db_timeout, application_name=f"controlplane-{args.instance}"),
        EvidenceStore(
            args.s3_endpoint,
            args.evidence_bucket,
            timeout=args.s3_timeout,
            retention_days=args.retention_days,
            retry=RetryPolicy(attempts=args.s3_retries, base=args.s3_backoff_base),
            replica_bucket=args.evidence_replica_bucket,
            replica_endpoint_url=args.s3_replica_endpoint or args.s3_endpoint,
        ),
        SiemSink(args.siem, args.instance, disabled=args.unsafe_skip_siem),
        unsafe_skip_evidence_check=args.unsafe_skip_evidence_check,
        dispatcher=Dispatcher(args.sqs_endpoint, args.queue_prefix) if args.sqs_endpoint else None,
        allow_clock_control=args.allow_clock_control,
        unsafe_ignore_platform_health=args.unsafe_ignore_platform_health,
        critical_rings=tuple(args.critical_rings),
        min_instances=args.min_instances,
        unsafe_publish_while_unhealthy=args.unsafe_publish_while_unhealthy,
        backups=catalogue,
        unsafe_approve_without_evidence=args.unsafe_approve_without_evidence,
    )
    if catalogue is None:
        logging.getLogger("controlplane").warning(
            "BackupAgeHours is not enforced: no --backup-bucket or --backup-pgbackrest-config "
            "(no backups part in /health, no publish gate)"
        )
    elif isinstance(catalogue, PgBackRestCatalogue):
        logging.getLogger("controlplane").info(
            "BackupAgeHours <= 24 enforced: pgBackRest stanza %s (pgbackrest info, config %s) "
            "(/health part backups, publish gate)",
            catalogue.stanza,
            catalogue.config,
        )
    elif isinstance(catalogue, BackupCatalogue):
        logging.getLogger("controlplane").info(
            "BackupAgeHours <= 24 enforced: backup catalogue %s at %s (/health part backups, publish gate)",
            ", ".join(catalogue.buckets),
            catalogue.endpoint_url,
        )
    if args.unsafe_ignore_platform_health:
        logging.getLogger("controlplane").warning(
            "UNSAFE: --unsafe-ignore-platform-health: publish ignores paused platforms (negative drills only)"
        )
    if args.unsafe_skip_evidence_check:
        logging.getLogger("controlplane").warning(
            "UNSAFE: --unsafe-skip-evidence-check: publish ignores the evidence store (negative drills only)"
        )
    if args.unsafe_publish_while_unhealthy:
        logging.getLogger("controlplane").warning(
            "UNSAFE: --unsafe-publish-while-unhealthy: publish skips the ServiceHealth gate (negative drills only)"
        )
    if args.unsafe_approve_without_evidence:
        logging.getLogger("controlplane").warning(
            "UNSAFE: --unsafe-approve-without-evidence: approve records an approval without a Committed "
            "evidence pack, breaking spec rule 1 (EvidencePackState = Committed before approval; negative "
            "drills only)"
        )
    if args.unsafe_skip_siem:
        logging.getLogger("controlplane").warning(
            "UNSAFE: --unsafe-skip-siem: no SIEM line is written, the event store still gets every event "
            "(negative drills only)"
        )
    if args.unsafe_ignore_event_store:
        from controlplane import events

        events.POLICY.ignore_failures = True
        logging.getLogger("controlplane").warning(
            "UNSAFE: --unsafe-ignore-event-store: state changes commit without their audit event when "
            "the event store is write-blocked, and health ignores it (negative drills only)"
        )
    logging.getLogger("controlplane").info(
        "instance %s on http://%s:%s database=[%s] s3=%s bucket=%s replica=%s@%s siem=%s",
        args.instance,
        args.host,
        args.port,
        masked_conninfo(args.database),
        args.s3_endpoint,
        args.evidence_bucket,
        args.evidence_replica_bucket,
        args.s3_replica_endpoint or args.s3_endpoint,
        args.siem,
    )
    try:
        web.run_app(make_app(cp), host=args.host, port=args.port, print=None, access_log=None, shutdown_timeout=5.0)
    except OSError as exc:
        return _fail("serve", f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    return 0


def platform_mock(args: argparse.Namespace) -> int:
    """Run one platform API stand-in until SIGTERM/SIGINT."""
    from controlplane.platformmock import RequestLogError, run

    try:
        run(args.platform, args.host, args.port, request_log=args.request_log)
    except RequestLogError as exc:
        return _fail("platform-mock", f"--request-log cannot be replayed: {exc}")
    except OSError as exc:
        if args.request_log and exc.filename is not None:
            return _fail("platform-mock", f"--request-log {args.request_log}: {exc.strerror or exc}")
        return _fail("platform-mock", f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    return 0


def connector(args: argparse.Namespace) -> int:
    """Run one connector worker until SIGTERM/SIGINT."""
    from controlplane.connector import Settings, run

    if (
        args.base_interval < 0
        or args.max_attempts < 1
        or args.request_timeout <= 0
        or not 0 <= args.wait_time <= 20
        or args.max_backoff < 0
        or args.probe_interval <= 0
    ):
        return _fail(
            "connector",
            "need --base-interval >= 0, --max-attempts >= 1, --request-timeout > 0, "
            "0 <= --wait-time <= 20, --max-backoff >= 0, --probe-interval > 0",
        )
    return run(
        Settings(
            platform=args.platform,
            queue_url=args.queue_url,
            dlq_url=args.dlq_url,
            sqs_endpoint=args.sqs_endpoint,
            platform_url=args.platform_url,
            base_interval=args.base_interval,
            max_attempts=args.max_attempts,
            max_backoff=args.max_backoff,
            request_timeout=args.request_timeout,
            wait_time=args.wait_time,
            metrics_file=args.metrics_file,
            report_url=args.report_url,
            probe_interval=args.probe_interval,
        )
    )


def queues(args: argparse.Namespace) -> int:
    """Create (idempotently) the per-platform intent queues and dead-letter queues; print URLs as JSON."""
    import json

    import botocore.exceptions

    from controlplane.queues import ensure_queues, sqs_client
    from controlplane.redact import short_cause

    try:
        out = ensure_queues(
            sqs_client(args.sqs_endpoint),
            args.prefix,
            platforms=args.platforms,
            max_receive_count=args.max_receive_count,
            visibility_timeout=args.visibility_timeout,
        )
    except botocore.exceptions.NoCredentialsError:
        return _fail("queues", "no SQS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        return _fail("queues", f"SQS at {args.sqs_endpoint}: {short_cause(exc)}")
    print(json.dumps(out, indent=2))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database",
        required=True,
        metavar="CONNINFO",
        help="libpq conninfo without password (the password comes from PGPASSWORD)",
    )
    p.add_argument("--s3-endpoint", required=True, metavar="URL")
    p.add_argument("--evidence-bucket", required=True, metavar="NAME")
    p.add_argument(
        "--db-timeout",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="connect_timeout and statement_timeout (default 2.0)",
    )
    p.add_argument(
        "--s3-timeout", type=float, default=2.0, metavar="SECONDS", help="S3 connect and read timeout (default 2.0)"
    )
    p.add_argument(
        "--retention-days",
        type=int,
        default=2557,
        metavar="DAYS",  # evidence.SEVEN_YEARS_DAYS
        help="Object Lock (COMPLIANCE) retention of evidence objects (default 2557: 7 years, spec 1.3 and 3)",
    )
    p.add_argument(
        "--evidence-replica-bucket",
        metavar="NAME",
        help="the alternate-region copy bucket (versioning and Object Lock like the primary)",
    )
    p.add_argument(
        "--s3-replica-endpoint", metavar="URL", help="S3 endpoint of the replica bucket (default: the --s3-endpoint)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m controlplane", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("migrate", help="apply the schema and create the evidence buckets (idempotent)")
    _common(m)
    m.set_defaults(func=migrate)
    s = sub.add_parser("serve", help="run one API instance")
    _common(s)
    s.add_argument("--instance", required=True, metavar="NAME", help="e.g. az1")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--siem", required=True, metavar="PATH", help="JSON-lines file the SIEM sink appends to")
    s.add_argument(
        "--s3-retries",
        type=int,
        default=4,
        metavar="N",
        help="attempts per evidence-store call on the request path (default 4)",
    )
    s.add_argument(
        "--s3-backoff-base",
        type=float,
        default=0.2,
        metavar="SECONDS",
        help="wait base x 2^k after the k-th failed attempt (default 0.2: 0.2, 0.4, 0.8)",
    )
    s.add_argument(
        "--unsafe-skip-evidence-check",
        action="store_true",
        help="NEGATIVE DRILLS ONLY: publish ignores the evidence store (no ServiceHealth "
        "evidence part, no ValidatedCopyExists check); evidence_source = unchecked",
    )
    s.add_argument(
        "--sqs-endpoint",
        metavar="URL",
        help="SQS endpoint of the connector queues: published intents are sent to "
        "<queue-prefix>-<platform> (none: nothing is dispatched)",
    )
    s.add_argument("--queue-prefix", default="intents", help="queue name prefix (default intents)")
    s.add_argument(
        "--critical-rings",
        nargs="+",
        default=["ring0", "ring1"],
        metavar="RING",
        help="rings whose queue backlog must stay under 10 minutes (default ring0 ring1)",
    )
    s.add_argument(
        "--allow-clock-control",
        action="store_true",
        help="LABS ONLY: POST /_clock/advance moves the Control Plane's clock (time rules "
        "such as the 15-minute CAB pause then run in seconds)",
    )
    s.add_argument(
        "--unsafe-ignore-platform-health",
        action="store_true",
        help="NEGATIVE DRILLS ONLY: publish ignores PromotionsPaused and SCCM.SiteHealth",
    )
    s.add_argument(
        "--unsafe-ignore-event-store",
        action="store_true",
        help="NEGATIVE DRILLS ONLY: a state change whose audit event cannot be appended "
        "(event store write blocked) commits without it; health ignores the event store",
    )
    s.add_argument(
        "--min-instances",
        type=int,
        default=2,
        metavar="N",
        help="ServiceHealth needs at least N instances serving (heartbeat seen in the last "
        "3 s, this one included): the API tier's redundancy (default 2)",
    )
    s.add_argument(
        "--unsafe-publish-while-unhealthy",
        action="store_true",
        help="NEGATIVE DRILLS ONLY: publish skips the ServiceHealth gate (it publishes while "
        "ServiceHealth = Unhealthy); the BackupAgeHours, approval and evidence gates still apply",
    )
    s.add_argument(
        "--backup-bucket",
        action="append",
        default=[],
        metavar="NAME",
        help="a bucket of the backup catalogue (repeatable, e.g. backups and backups-dr): "
        "the newest snapshots/<id>/manifest.json taken_at gives BackupAgeHours, a /health "
        "part and a publish gate (<= 24 h); none: not enforced",
    )
    s.add_argument(
        "--backup-endpoint", metavar="URL", help="S3 endpoint of the backup buckets (default: the --s3-endpoint)"
    )
    s.add_argument(
        "--backup-pgbackrest-config",
        metavar="FILE",
        help="instead of --backup-bucket: pgBackRest's config; `pgbackrest info --output=json` of "
        "--backup-stanza gives BackupAgeHours (the newest backup's timestamp.stop over every repository)",
    )
    s.add_argument(
        "--backup-pgbackrest-include",
        metavar="DIR",
        help="pgBackRest's --config-include-path (the folder of the config files holding the secrets)",
    )
    s.add_argument("--backup-stanza", metavar="NAME", help="the pgBackRest stanza (with --backup-pgbackrest-config)")
    s.add_argument(
        "--backup-pgbackrest-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="one pgbackrest info run is killed past it (default 10)",
    )
    s.add_argument(
        "--unsafe-approve-without-evidence",
        action="store_true",
        help="NEGATIVE DRILLS ONLY: approve skips the EvidencePackState = Committed check (spec "
        "rule 1): an intent is approved although its evidence pack was never committed",
    )
    s.add_argument(
        "--unsafe-skip-siem",
        action="store_true",
        help="NEGATIVE DRILLS ONLY: write no SIEM line (the event store still gets every event)",
    )
    s.set_defaults(func=serve)
    from controlplane.platforms import PLATFORMS

    pm = sub.add_parser("platform-mock", help="run a platform API stand-in (degradable: 429, 503, hang)")
    pm.add_argument("--platform", required=True, choices=PLATFORMS)
    pm.add_argument("--host", default="127.0.0.1")
    pm.add_argument("--port", type=int, required=True)
    pm.add_argument("--tag", help="a label in the command line (a lab finds its processes by it)")
    pm.add_argument(
        "--request-log",
        metavar="FILE",
        help="append one JSON line per POST /apply to FILE (the evidence of what reached "
        "the platform and what it answered), and replay it on start so applied keys "
        "survive a restart (default: memory only)",
    )
    pm.set_defaults(func=platform_mock)
    c = sub.add_parser("connector", help="run one connector worker: SQS intent queue -> platform API")
    c.add_argument("--platform", required=True, choices=PLATFORMS)
    c.add_argument("--queue-url", required=True, metavar="URL")
    c.add_argument("--dlq-url", required=True, metavar="URL")
    c.add_argument("--sqs-endpoint", required=True, metavar="URL")
    c.add_argument("--platform-url", required=True, metavar="URL")
    c.add_argument(
        "--base-interval",
        type=float,
        default=0.2,
        metavar="SECONDS",
        help="backoff base: wait base x 2^(attempt-1), or Retry-After when larger (default 0.2)",
    )
    c.add_argument(
        "--max-attempts",
        type=int,
        default=5,
        metavar="N",
        help="receipts of a message before it goes to the dead-letter queue (default 5)",
    )
    c.add_argument("--max-backoff", type=float, default=300.0, metavar="SECONDS", help="cap of a wait (default 300)")
    c.add_argument(
        "--request-timeout", type=float, default=5.0, metavar="SECONDS", help="platform call timeout (default 5)"
    )
    c.add_argument("--wait-time", type=int, default=5, metavar="SECONDS", help="SQS long-poll wait, 0-20 (default 5)")
    c.add_argument("--metrics-file", metavar="PATH", help="JSON counters rewritten atomically every second")
    c.add_argument(
        "--report-url",
        metavar="URL",
        help="Control Plane API: every platform call and probe outcome is reported to "
        "POST <url>/platforms/<platform>/observations (best effort)",
    )
    c.add_argument(
        "--probe-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="when idle, probe GET <platform-url>/health this often; a changed outcome is reported (default 5)",
    )
    c.set_defaults(func=connector)
    q = sub.add_parser("queues", help="create the per-platform intent and dead-letter queues (idempotent)")
    q.add_argument("--sqs-endpoint", required=True, metavar="URL")
    q.add_argument("--prefix", required=True)
    q.add_argument("--platforms", nargs="+", choices=PLATFORMS, default=list(PLATFORMS))
    q.add_argument("--max-receive-count", type=int, default=5, metavar="N", help="redrive policy (default 5)")
    q.add_argument("--visibility-timeout", type=int, default=30, metavar="SECONDS", help="default 30")
    q.set_defaults(func=queues)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
