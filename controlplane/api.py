"""HTTP API of one Control Plane instance (aiohttp): intents, evidence, approvals, publish, ring
rollback, events.

Every request carries a correlation id (X-Correlation-Id, else a new uuid4), echoed in the
response and stored with every event it causes. Every write is one database transaction
holding the state change and its event; the SIEM sink is written after the commit.
A database failure answers 503 {"error": "database unavailable: ...", "cause": "database"}
(nothing was written); a COMMIT whose outcome is unknown answers 504 {"outcome": "unknown"}
so that clients count the write as indeterminate, never as refused or acknowledged. A replay
(idempotency key, approval, publish, promotion, operational event already recorded) is answered
only once what it found is durable (db.durable_replay): a row committed locally while the
synchronous standby was unreachable is visible, yet would be lost with the primary.

Evidence store outage (spec failure-modes matrix row 3): evidence-store calls on the request
path follow the retry policy of controlplane.evidence; a pack is copied to the alternate
region and validated (ValidatedCopyExists). Publish checks the pack in the primary store and
fails over to the validated copy when the primary is unavailable; otherwise it is blocked with
"Impact": "publish blocked" and an ImpactRecorded event (in its own transaction).
``unsafe_skip_evidence_check`` (serve --unsafe-skip-evidence-check) is a deliberate
misbehaviour for negative drills only: publish then ignores the evidence store entirely.
Approval (spec rule 1) is refused 409, gate EvidencePackState, until the intent has a Committed
evidence pack; ``unsafe_approve_without_evidence`` (serve --unsafe-approve-without-evidence,
negative drills only) records the approval without it.

GET /health (controlplane.health) answers 200 with ServiceHealth = Healthy, or 503 Unhealthy
when any of its parts is down: database (the primary, writable), event_store (append-only, not
write-blocked), evidence_store (primary or alternate region answers) and api_tier (at least
``min_instances`` instances, serve --min-instances, heartbeating into api_instances: each
instance runs the heartbeat task of controlplane.health while it serves) and, with a backup
catalogue (serve --backup-bucket), backups (the newest snapshot at most 24 h old on the Control
Plane's clock; controlplane.backups). GET /health/live answers 200 while the process serves,
whatever the parts say: it is the load balancer's probe.

Publish gates (controlplane.gates), in order: ServiceHealth = Healthy (cause: the first part
that is down, the backups part left out), BackupAgeHours <= 24 (503, cause "backup"; off
without --backup-bucket), Approval, then the evidence gate (EvidencePackReadable /
ValidatedCopyExists). ``unsafe_publish_while_unhealthy`` (serve --unsafe-publish-while-unhealthy)
is a deliberate misbehaviour for negative drills only: publish skips the ServiceHealth gate and
nothing else (BackupAgeHours still refuses).

POST /rings/{ring}/rollback {"approver"} (spec section 4, rollback validation) reverts the ring's
last deployment on every platform: one rollback dispatch per platform through the outbox and the
queues, and one RingRolledBack event, in one transaction; no ServiceHealth or BackupAgeHours gate
(see ControlPlane.ring_rollback, also for replays and the optional Idempotency-Key header).

The SIEM sink gets one line per committed event unless it is disabled (serve --unsafe-skip-siem,
negative drills only; the event store still gets every event).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from typing import Any

import psycopg
from aiohttp import web
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from controlplane import __version__, dispatch, events, gates, health
from controlplane.backups import Catalogue
from controlplane.db import CommitUnconfirmed, Database, DatabaseUnavailable, durable_replay
from controlplane.dispatch import Dispatcher, QueueUnavailable
from controlplane.evidence import EvidenceStore, EvidenceStoreUnavailable
from controlplane.http import Refused, _dumps, bad_request, json_body, reply, string_field
from controlplane.platform_api import PlatformRoutes
from controlplane.platforms import PLATFORMS
from controlplane.redact import scrub, short_cause
from controlplane.siem import SiemSink

log = logging.getLogger("controlplane.api")

CORRELATION_HEADER = "X-Correlation-Id"
IDEMPOTENCY_HEADER = "Idempotency-Key"
INTENT_COLUMNS = "id, idempotency_key, ring, platform, payload, state, correlation_id, created_at"


def intent_id(request: web.Request) -> int:
    return int(request.match_info["id"])


class ControlPlane(PlatformRoutes):
    """One API instance: its name, database, evidence store, SIEM sink and (optionally) the
    connectors' queues; the platform routes come from controlplane.platform_api."""

    def __init__(
        self,
        instance: str,
        db: Database,
        evidence: EvidenceStore,
        siem: SiemSink,
        unsafe_skip_evidence_check: bool = False,
        dispatcher: Dispatcher | None = None,
        allow_clock_control: bool = False,
        unsafe_ignore_platform_health: bool = False,
        critical_rings: tuple[str, ...] = ("ring0", "ring1"),
        min_instances: int = health.DEFAULT_MIN_INSTANCES,
        unsafe_publish_while_unhealthy: bool = False,
        backups: Catalogue | None = None,
        unsafe_approve_without_evidence: bool = False,
    ) -> None:
        self.instance = instance
        self.db = db
        self.evidence = evidence
        self.siem = siem
        self.unsafe_skip_evidence_check = unsafe_skip_evidence_check
        self.dispatcher = dispatcher
        self.allow_clock_control = allow_clock_control
        self.unsafe_ignore_platform_health = unsafe_ignore_platform_health
        self.critical_rings = frozenset(critical_rings)
        self.min_instances = min_instances
        self.unsafe_publish_while_unhealthy = unsafe_publish_while_unhealthy
        self.backups = backups
        self.unsafe_approve_without_evidence = unsafe_approve_without_evidence

    # ---- plumbing --------------------------------------------------------------------

    async def commit(self, work) -> tuple[int, dict, list]:
        """Run work(conn) -> (status, body, new_events) in one transaction, then feed the SIEM."""
        status, body, new_events = await self.db.run(work)
        if new_events:
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.siem.write, new_events)
            except OSError as exc:
                # Committed already: the event store holds the truth; the SIEM line is lost.
                log.error("SIEM sink %s not written: %s", self.siem.path, short_cause(exc))
        return status, body, new_events

    async def write(self, work) -> web.Response:
        status, body, _ = await self.commit(work)
        return reply(body, status)

    async def read(self, query: str, params=()) -> list[dict]:
        async def work(conn):
            return await (await conn.cursor(row_factory=dict_row).execute(query, params)).fetchall()

        return await self.db.run(work)

    # ---- health ----------------------------------------------------------------------

    async def live(self, request: web.Request) -> web.Response:
        return reply({"instance": self.instance, "status": "alive", "version": __version__})

    async def health_report(self) -> dict:
        return await health.report(self.instance, self.db, self.evidence, self.min_instances, catalogue=self.backups)

    async def health(self, request: web.Request) -> web.Response:
        report = await self.health_report()
        return reply(report, 200 if report["ServiceHealth"] == "Healthy" else 503)

    # ---- intents ---------------------------------------------------------------------

    async def intent_create(self, request: web.Request) -> web.Response:
        key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
        if not key:
            raise bad_request(f"header {IDEMPOTENCY_HEADER} is required", header=IDEMPOTENCY_HEADER)
        body = await json_body(request)
        ring, platform = string_field(body, "ring"), string_field(body, "platform")
        payload = body.get("payload", {})
        if not isinstance(payload, dict):
            raise bad_request("field 'payload' must be a JSON object", field="payload")
        cid = request["correlation_id"]

        async def work(conn):
            cur = conn.cursor(row_factory=dict_row)
            row = await (
                await cur.execute(
                    "INSERT INTO intents (idempotency_key, ring, platform, payload, correlation_id)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING"
                    " RETURNING id, idempotency_key, correlation_id, state",
                    (key, ring, platform, Jsonb(payload), cid),
                )
            ).fetchone()
            if row is None:  # Test-IdempotencyKey: a replay answers the original, no new event
                row = await (
                    await cur.execute(
                        "SELECT id, idempotency_key, correlation_id, state FROM intents WHERE idempotency_key = %s",
                        (key,),
                    )
                ).fetchone()
                await durable_replay(conn)
                return 200, row, []
            event = await events.append(
                conn, "IntentCreated", row["id"], cid, {"idempotency_key": key, "ring": ring, "platform": platform}
            )
            return 201, row, [event]

        return await self.write(work)

    async def intent_list(self, request: web.Request) -> web.Response:
        prefix = request.query.get("key_prefix", "")
        rows = await self.read(
            "SELECT id, idempotency_key, state FROM intents WHERE left(idempotency_key, length(%s)) = %s ORDER BY id",
            (prefix, prefix),
        )
        return reply({"intents": rows})

    async def intent_get(self, request: web.Request) -> web.Response:
        rows = await self.read(
            f"SELECT {INTENT_COLUMNS}, EXISTS (SELECT 1 FROM evidence_packs e WHERE e.intent_id = i.id"
            "   AND e.state = 'Committed') AS committed FROM intents i WHERE id = %s",
            (intent_id(request),),
        )
        if not rows:
            raise web.HTTPNotFound(text=_dumps({"error": "intent not found"}), content_type="application/json")
        row = rows[0]
        row["EvidencePackState"] = "Committed" if row.pop("committed") else "Pending"
        return reply(row)

    # ---- evidence, approval, publish -------------------------------------------------

    async def evidence_commit(self, request: web.Request) -> web.Response:
        iid = intent_id(request)
        content = (await json_body(request)).get("content")
        if not isinstance(content, str):
            raise bad_request("field 'content' is required and must be a string", field="content")
        cid = request["correlation_id"]
        if not await self.read("SELECT 1 FROM intents WHERE id = %s", (iid,)):
            raise web.HTTPNotFound(text=_dumps({"error": "intent not found"}), content_type="application/json")
        # 1. the object first: a pack is only recorded Committed once S3 holds it (WORM).
        #    A primary store that fails every attempt answers 503 (middleware), nothing recorded.
        stored = await self.evidence.put(iid, content)
        # 2. the alternate-region copy, read back and compared: never fails the request.
        replica = await self.evidence.replicate(stored["object_key"], stored["body"], stored["sha256"])
        if replica["replica_error"] and self.evidence.replica_bucket:
            log.warning(
                "evidence %s: no validated alternate-region copy: %s", stored["object_key"], replica["replica_error"]
            )
        returning = "intent_id, sha256, version_id, object_key, replica_version_id, replica_validated"

        # 3. then the pack and its event in one transaction. If this fails the objects stay
        #    as unreferenced locked versions; a retry records the pack.
        async def work(conn):
            cur = conn.cursor(row_factory=dict_row)
            row = await (
                await cur.execute(
                    "INSERT INTO evidence_packs (intent_id, bucket, object_key, version_id, sha256, state,"
                    " correlation_id, replica_bucket, replica_version_id, replica_validated)"
                    " VALUES (%s, %s, %s, %s, %s, 'Committed', %s, %s, %s, %s)"
                    f" ON CONFLICT (intent_id, sha256) DO NOTHING RETURNING {returning}",
                    (
                        iid,
                        self.evidence.bucket,
                        stored["object_key"],
                        stored["version_id"],
                        stored["sha256"],
                        cid,
                        replica["replica_bucket"],
                        replica["replica_version_id"],
                        replica["replica_validated"],
                    ),
                )
            ).fetchone()
            status, new_events = 201, []
            if row is None:
                if replica["replica_validated"]:  # a replay repairs a pack that had no validated copy
                    await cur.execute(
                        "UPDATE evidence_packs SET replica_bucket = %s, replica_version_id = %s,"
                        " replica_validated = true WHERE intent_id = %s AND sha256 = %s"
                        " AND NOT replica_validated",
                        (replica["replica_bucket"], replica["replica_version_id"], iid, stored["sha256"]),
                    )
                row = await (
                    await cur.execute(
                        f"SELECT {returning} FROM evidence_packs WHERE intent_id = %s AND sha256 = %s",
                        (iid, stored["sha256"]),
                    )
                ).fetchone()
                await durable_replay(conn)
                status = 200
            else:
                new_events.append(
                    await events.append(
                        conn,
                        "EvidenceCommitted",
                        iid,
                        cid,
                        {
                            "bucket": self.evidence.bucket,
                            "object_key": row["object_key"],
                            "version_id": row["version_id"],
                            "sha256": row["sha256"],
                            "replica_bucket": replica["replica_bucket"],
                            "replica_version_id": row["replica_version_id"],
                            "ValidatedCopyExists": row["replica_validated"],
                        },
                    )
                )
            validated = row.pop("replica_validated")
            return status, {**row, "EvidencePackState": "Committed", "ValidatedCopyExists": validated}, new_events

        return await self.write(work)

    async def approve(self, request: web.Request) -> web.Response:
        iid = intent_id(request)
        approver = string_field(await json_body(request), "approver")
        cid = request["correlation_id"]

        async def work(conn):
            cur = conn.cursor(row_factory=dict_row)
            intent = await (await cur.execute("SELECT state FROM intents WHERE id = %s FOR UPDATE", (iid,))).fetchone()
            if intent is None:
                raise Refused(gates.Refusal(404, "Intent", "intent not found"))
            existing = await (
                await cur.execute("SELECT approver FROM approvals WHERE intent_id = %s", (iid,))
            ).fetchone()
            if existing:  # replay (e.g. the retry after a broken connection): no second event
                await durable_replay(conn)
                return 200, {"intent_id": iid, "approver": existing["approver"], "state": intent["state"]}, []
            committed = await (
                await cur.execute(
                    "SELECT 1 FROM evidence_packs WHERE intent_id = %s AND state = 'Committed' LIMIT 1", (iid,)
                )
            ).fetchone()
            refusal = gates.evidence_committed(committed is not None)
            if refusal and self.unsafe_approve_without_evidence:  # negative drills only: rule 1 skipped
                log.warning(
                    "UNSAFE: intent %s approved without a Committed evidence pack (--unsafe-approve-without-evidence)",
                    iid,
                )
            elif refusal:
                raise Refused(refusal)
            await cur.execute(
                "INSERT INTO approvals (intent_id, approver, correlation_id) VALUES (%s, %s, %s)", (iid, approver, cid)
            )
            await cur.execute("UPDATE intents SET state = 'Approved' WHERE id = %s AND state = 'Draft'", (iid,))
            event = await events.append(conn, "ApprovalRecorded", iid, cid, {"approver": approver})
            return 200, {"intent_id": iid, "approver": approver, "state": "Approved"}, [event]

        return await self.write(work)

    async def record_impact(self, iid: int, cid: str) -> None:
        """Append ImpactRecorded (publish blocked by the evidence store) in its own transaction;
        a failure is logged, the refusal is answered anyway."""

        async def work(conn):
            event = await events.append(
                conn, "ImpactRecorded", iid, cid, {"Impact": gates.PUBLISH_BLOCKED, "cause": "evidence_store"}
            )
            return 201, {}, [event]

        try:
            await self.write(work)
        except DatabaseUnavailable as exc:
            log.error("ImpactRecorded for intent %s not written: %s", iid, exc)

    async def blocked(self, iid: int, cid: str, refusal: gates.Refusal) -> Refused:
        await self.record_impact(iid, cid)
        return Refused(refusal)

    async def evidence_gate(self, iid: int, cid: str) -> dict:
        """The evidence packs of an approved intent are readable: {"evidence_source": "primary"} or,
        the primary store being unavailable, {"evidence_source": "alternate-region", "attempts"}
        once every pack's validated copy is re-read with its recorded sha256; else Refused."""
        packs = await self.read(
            "SELECT object_key, version_id, sha256, replica_bucket, replica_version_id, replica_validated"
            " FROM evidence_packs WHERE intent_id = %s AND state = 'Committed' ORDER BY id",
            (iid,),
        )
        if not packs:
            raise Refused(gates.evidence_not_committed())
        try:
            for pack in packs:
                await self.evidence.check_object(pack["object_key"], pack["version_id"])
            return {"evidence_source": "primary"}
        except EvidenceStoreUnavailable as exc:
            primary = exc
        if not primary.retryable:  # a 4xx (e.g. missing object): no failover, it would hide it
            raise await self.blocked(
                iid,
                cid,
                gates.Refusal(
                    503,
                    "EvidencePackReadable",
                    f"publish blocked: evidence pack not readable ({primary})",
                    cause="evidence_store",
                    extra={"Impact": gates.PUBLISH_BLOCKED, "attempts": primary.attempts},
                ),
            )
        if not all(p["replica_validated"] for p in packs):
            raise await self.blocked(
                iid,
                cid,
                gates.evidence_unavailable(
                    f"{primary}; no validated alternate-region copy", primary.attempts, ValidatedCopyExists=False
                ),
            )
        try:
            for pack in packs:
                await self.evidence.verify_replica(
                    pack["replica_bucket"], pack["object_key"], pack["replica_version_id"], pack["sha256"]
                )
        except EvidenceStoreUnavailable as exc:
            raise await self.blocked(
                iid,
                cid,
                gates.evidence_unavailable(
                    f"{primary}; alternate-region copy not confirmed: {exc}",
                    primary.attempts,
                    ValidatedCopyExists=False,
                    replica_attempts=exc.attempts,
                ),
            ) from None
        log.warning(
            "intent %s: primary evidence store unavailable (%s); publishing from the validated alternate-region copy",
            iid,
            primary,
        )
        return {"evidence_source": "alternate-region", "attempts": primary.attempts}

    async def publish(self, request: web.Request) -> web.Response:
        iid = intent_id(request)
        cid = request["correlation_id"]
        unsafe = self.unsafe_skip_evidence_check
        # Gates in the order of controlplane.gates: ServiceHealth, BackupAgeHours, Approval,
        # ValidatedCopyExists.
        report = await self.health_report()
        if unsafe:  # negative drills only: the evidence store does not count for publish
            report = {**report, "components": {k: v for k, v in report["components"].items() if k != "evidence_store"}}
            if all(p["status"] != "down" for p in report["components"].values()):
                report["ServiceHealth"] = "Healthy"
        refusal = gates.service_health(report)
        if refusal and self.unsafe_publish_while_unhealthy:  # negative drills only: gate skipped
            log.warning(
                "UNSAFE: intent %s: ServiceHealth gate skipped (--unsafe-publish-while-unhealthy): %s",
                iid,
                refusal.error,
            )
            refusal = None
        backups = report["components"].get("backups")  # absent: no catalogue, the gate is off
        if refusal is None and backups is not None:
            refusal = gates.backup_age(backups.get("age_hours"), backups["detail"])
        if refusal:
            if refusal.cause == "evidence_store":
                raise await self.blocked(
                    iid, cid, dataclasses.replace(refusal, extra={**refusal.extra, "Impact": gates.PUBLISH_BLOCKED})
                )
            raise Refused(refusal)
        rows = await self.read("SELECT state FROM intents WHERE id = %s", (iid,))
        if not rows:
            raise Refused(gates.Refusal(404, "Intent", "intent not found"))
        evidence: dict[str, Any] = {}
        if rows[0]["state"] != "Published":  # a replay is answered from the transaction below
            refusal = gates.approved(rows[0]["state"])
            if refusal:
                raise Refused(refusal)
            evidence = {"evidence_source": "unchecked"} if unsafe else await self.evidence_gate(iid, cid)

        async def work(conn):
            cur = conn.cursor(row_factory=dict_row)
            intent = await (
                await cur.execute(
                    "SELECT state, platform, ring, idempotency_key, correlation_id FROM intents"
                    " WHERE id = %s FOR UPDATE",
                    (iid,),
                )
            ).fetchone()
            if intent is None:
                raise Refused(gates.Refusal(404, "Intent", "intent not found"))
            if intent["state"] == "Published":  # replay: no second event
                await durable_replay(conn)
                return 200, {"intent_id": iid, "state": "Published"}, []
            refusal = gates.approved(intent["state"])
            if refusal:
                raise Refused(refusal)
            await cur.execute(
                "INSERT INTO publishes (intent_id, instance, correlation_id) VALUES (%s, %s, %s)",
                (iid, self.instance, cid),
            )
            await cur.execute("UPDATE intents SET state = 'Published' WHERE id = %s", (iid,))
            if self.dispatcher is not None:  # the outbox row: sent to the platform's queue below
                await cur.execute(
                    "INSERT INTO dispatches (intent_id, platform, ring, idempotency_key, correlation_id,"
                    " created_at) VALUES (%s, %s, %s, %s, %s, cp_now())",
                    (iid, intent["platform"], intent["ring"], intent["idempotency_key"], cid),
                )
            new_events = []
            if evidence.get("evidence_source") == "alternate-region":
                new_events.append(
                    await events.append(
                        conn,
                        "EvidenceFailover",
                        iid,
                        cid,
                        {
                            "evidence_source": "alternate-region",
                            "primary_attempts": len(evidence["attempts"]),
                            "primary_error": evidence["attempts"][-1]["error"] if evidence["attempts"] else None,
                        },
                    )
                )
            new_events.append(
                await events.append(
                    conn,
                    "Published",
                    iid,
                    cid,
                    {"instance": self.instance, "evidence_source": evidence.get("evidence_source")},
                )
            )
            return (
                200,
                {
                    "intent_id": iid,
                    "state": "Published",
                    "instance": self.instance,
                    **evidence,
                    "platform": intent["platform"],
                    "ring": intent["ring"],
                    "idempotency_key": intent["idempotency_key"],
                },
                new_events,
            )

        status, body, new_events = await self.commit(work)
        if new_events and self.dispatcher is not None:
            body["dispatch"] = await self.dispatch(
                self.dispatcher, iid, body["platform"], body["ring"], body["idempotency_key"], cid
            )
        return reply(body, status)

    async def dispatch(
        self, dispatcher: Dispatcher, iid: int | None, platform: str, ring: str, key: str, cid: str, **extra
    ) -> str:
        """Send a just-published (or promoted, or rolled back) intent to its platform's queue:
        "enqueued", or "pending" (the dispatcher loop of any instance sends it later). extra:
        kind="rollback" and rollback_id for a ring rollback."""
        try:
            await dispatcher.send(
                {
                    "intent_id": iid,
                    "platform": platform,
                    "ring": ring,
                    "idempotency_key": key,
                    "correlation_id": cid,
                    **extra,
                }
            )
        except QueueUnavailable as exc:
            log.warning("%s: dispatch to %s pending: %s", key, platform, exc)
            return "pending"
        try:
            await self.db.run(lambda conn: dispatch.mark_enqueued(conn, key))
        except DatabaseUnavailable as exc:  # sent already; the loop may send it again (idempotent)
            log.warning("%s: enqueued, state not recorded: %s", key, exc)
        return "enqueued"

    async def promote(self, request: web.Request) -> web.Response:
        """Ring promotion of a published intent: refused while its platform's promotions are
        paused (PromotionsPaused, SCCM.SiteHealth); else the intent moves to ``to_ring`` and is
        dispatched again with the idempotency key ``<key>@<ring>``. A replay answers 200."""
        iid = intent_id(request)
        to_ring = string_field(await json_body(request), "to_ring")
        cid = request["correlation_id"]
        rows = await self.read("SELECT state, platform FROM intents WHERE id = %s", (iid,))
        if not rows:
            raise Refused(gates.Refusal(404, "Intent", "intent not found"))
        if rows[0]["state"] != "Published":
            raise Refused(
                gates.Refusal(409, "Published", f"promotion refused: intent is {rows[0]['state']}, not Published")
            )
        refusal = await self.promotion_gate(rows[0]["platform"], cid)
        if refusal:
            raise Refused(refusal)

        async def work(conn):
            cur = conn.cursor(row_factory=dict_row)
            intent = await (
                await cur.execute(
                    "SELECT ring, platform, idempotency_key FROM intents WHERE id = %s FOR UPDATE", (iid,)
                )
            ).fetchone()
            key = f"{intent['idempotency_key']}@{to_ring}"
            body = {"intent_id": iid, "ring": to_ring, "platform": intent["platform"], "idempotency_key": key}
            if intent["ring"] == to_ring:  # replay
                await durable_replay(conn)
                return 200, body, []
            await cur.execute("UPDATE intents SET ring = %s WHERE id = %s", (to_ring, iid))
            if self.dispatcher is not None:
                await cur.execute(
                    "INSERT INTO dispatches (intent_id, platform, ring, idempotency_key, correlation_id,"
                    " created_at) VALUES (%s, %s, %s, %s, %s, cp_now()) ON CONFLICT DO NOTHING",
                    (iid, intent["platform"], to_ring, key, cid),
                )
            event = await events.append(
                conn,
                "RingPromoted",
                iid,
                cid,
                {"from_ring": intent["ring"], "to_ring": to_ring, "platform": intent["platform"]},
            )
            return 200, body, [event]

        status, body, new_events = await self.commit(work)
        if new_events and self.dispatcher is not None:
            body["dispatch"] = await self.dispatch(
                self.dispatcher, iid, body["platform"], to_ring, body["idempotency_key"], cid
            )
        return reply(body, status)

    # ---- ring rollback ---------------------------------------------------------------

    async def ring_rollback(self, request: web.Request) -> web.Response:
        """Revert a ring's last deployment on every platform (spec section 4, rollback validation).

        One rollback dispatch per platform (controlplane.platforms), through the outbox and the
        queues like a publish: idempotency key ``rollback:<ring>:<rollback_id>:<platform>``
        (rollback_id a new uuid4 hex), intent_id the platform's last intent deployed to that ring
        (published to it or promoted into it), or "ring:<ring>" when it had none (a rollback
        reaches every platform). The dispatch rows and one RingRolledBack event {ring,
        rollback_id, approver, platforms: {platform: key}, intent_ids: {platform: id | null}}
        are one transaction. No ServiceHealth or BackupAgeHours gate: a rollback is what one
        does when things are wrong. Answers 200 {"rollback_id", "ring", "dispatched":
        {platform: key}, "dispatch": {platform: "enqueued"|"pending"}, "intent_ids"}; 400
        without an approver; 503 without queues (serve --sqs-endpoint).

        Replays: a request WITHOUT an Idempotency-Key header is a new rollback every time (a new
        rollback_id, new keys: the platforms revert again). With the header, the rollback is
        recorded once per key: a replay answers 200 with the original rollback_id, "replayed":
        true and the dispatches' recorded states (pending, enqueued, applied, dead_lettered),
        and records nothing; the same key for another ring is refused 409."""
        ring = request.match_info["ring"]
        if not ring.strip() or len(ring) > 64 or not ring.isprintable():
            raise bad_request("ring must be a printable name of at most 64 characters", field="ring")
        approver = string_field(await json_body(request), "approver")
        request_key = request.headers.get(IDEMPOTENCY_HEADER, "").strip() or None
        cid = request["correlation_id"]
        dispatcher = self.dispatcher
        if dispatcher is None:
            return reply(
                {"error": "rollback refused: no queues configured (serve --sqs-endpoint)", "cause": "queue"}, 503
            )
        rollback_id = uuid.uuid4().hex

        async def work(conn):
            cur = conn.cursor(row_factory=dict_row)
            # ON CONFLICT: a replay with the same Idempotency-Key (also one running concurrently:
            # it waits for the first to commit) records nothing and answers the first rollback.
            created = await (
                await cur.execute(
                    "INSERT INTO ring_rollbacks (rollback_id, ring, approver, request_key, correlation_id, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, cp_now()) ON CONFLICT (request_key) DO NOTHING RETURNING rollback_id",
                    (rollback_id, ring, approver, request_key, cid),
                )
            ).fetchone()
            if created is None:
                seen = await (
                    await cur.execute(
                        "SELECT rollback_id, ring FROM ring_rollbacks WHERE request_key = %s", (request_key,)
                    )
                ).fetchone()
                if seen["ring"] != ring:
                    raise Refused(
                        gates.Refusal(
                            409,
                            "Idempotency-Key",
                            f"{IDEMPOTENCY_HEADER} {request_key!r} was used for the "
                            f"rollback of ring {seen['ring']!r}, not {ring!r}",
                        )
                    )
                rows = await (
                    await cur.execute(
                        "SELECT platform, idempotency_key, intent_id, state FROM dispatches"
                        " WHERE kind = 'rollback' AND rollback_id = %s ORDER BY platform",
                        (seen["rollback_id"],),
                    )
                ).fetchall()
                await durable_replay(conn)
                return (
                    200,
                    {
                        "rollback_id": seen["rollback_id"],
                        "ring": ring,
                        "replayed": True,
                        "dispatched": {r["platform"]: r["idempotency_key"] for r in rows},
                        "dispatch": {r["platform"]: r["state"] for r in rows},
                        "intent_ids": {r["platform"]: dispatch.target(r["intent_id"], ring) for r in rows},
                    },
                    [],
                )
            last = {
                r["platform"]: r["intent_id"]
                for r in await (
                    await cur.execute(
                        "SELECT DISTINCT ON (platform) platform, intent_id FROM dispatches"
                        " WHERE kind = 'deploy' AND ring = %s AND platform = ANY(%s)"
                        " ORDER BY platform, created_at DESC, intent_id DESC",
                        (ring, list(PLATFORMS)),
                    )
                ).fetchall()
            }
            keys, intents = {}, {}
            for platform in PLATFORMS:
                key = keys[platform] = f"rollback:{ring}:{rollback_id}:{platform}"
                intents[platform] = last.get(platform)
                await cur.execute(
                    "INSERT INTO dispatches (intent_id, platform, ring, idempotency_key, correlation_id,"
                    " created_at, kind, rollback_id) VALUES (%s, %s, %s, %s, %s, cp_now(), 'rollback', %s)",
                    (intents[platform], platform, ring, key, cid, rollback_id),
                )
            event = await events.append(
                conn,
                "RingRolledBack",
                None,
                cid,
                {
                    "ring": ring,
                    "rollback_id": rollback_id,
                    "approver": approver,
                    "platforms": keys,
                    "intent_ids": intents,
                },
            )
            return (
                200,
                {
                    "rollback_id": rollback_id,
                    "ring": ring,
                    "dispatched": keys,
                    "intent_ids": {p: dispatch.target(i, ring) for p, i in intents.items()},
                    "_intents": intents,
                },
                [event],
            )

        status, body, new_events = await self.commit(work)
        intents = body.pop("_intents", None)
        if new_events:
            log.info("ring %s rolled back by %s: rollback %s", ring, approver, rollback_id)
            platforms = list(body["dispatched"])
            states = await asyncio.gather(
                *(
                    self.dispatch(
                        dispatcher,
                        intents[p],
                        p,
                        ring,
                        body["dispatched"][p],
                        cid,
                        kind="rollback",
                        rollback_id=rollback_id,
                    )
                    for p in platforms
                )
            )
            body["dispatch"] = dict(zip(platforms, states, strict=True))
        return reply(body, status)

    # ---- events ----------------------------------------------------------------------

    async def events_list(self, request: web.Request) -> web.Response:
        try:
            after = int(request.query.get("after", "0"))
            limit = min(max(int(request.query.get("limit", "100")), 1), 1000)
        except ValueError:
            raise bad_request("after and limit must be integers") from None
        cid, type_ = request.query.get("correlation_id"), request.query.get("type")
        rows = await self.read(
            f"SELECT {events.COLUMNS} FROM events WHERE seq > %s"
            f" AND (%s::text IS NULL OR correlation_id = %s)"
            f" AND (%s::text IS NULL OR type = %s) ORDER BY seq LIMIT %s",
            (after, cid, cid, type_, type_, limit),
        )
        return reply({"events": [events.as_json(r) for r in rows]})

    async def operational_event(self, request: web.Request) -> web.Response:
        """Record a drill's fault or recovery event (spec rule 2: correlation ids of every
        failover and recovery event in the event store and the SIEM). A replay appends nothing;
        it is acknowledged only once the event is durable (an event committed locally but never
        confirmed would be lost with the primary), and writes the SIEM line again: the first
        attempt's line was never written when its commit went unconfirmed (504), so the SIEM
        gets each event at least once. An optional "emitter" (who posted it: the deployment's
        failover manager, or "harness-forwarder" for an event a drill harness forwards) is kept in
        the payload as said; validation rule 2 does not take it on trust (the harness knows what it
        posted itself)."""
        body = await json_body(request)
        cid = request["correlation_id"]
        event_id = string_field(body, "event_id")
        payload: dict[str, Any] = {
            "event_id": event_id,
            "kind": string_field(body, "kind"),
            "name": string_field(body, "name"),
            "at": body.get("at"),
            "detail": body.get("detail") if isinstance(body.get("detail"), dict) else {},
        }
        if body.get("emitter") is not None:
            payload["emitter"] = string_field(body, "emitter")

        async def work(conn):
            seen = await (
                await conn.cursor(row_factory=dict_row).execute(
                    f"SELECT {events.COLUMNS} FROM events WHERE type = 'DrillEvent' AND payload->>'event_id' = %s",
                    (event_id,),
                )
            ).fetchone()
            if seen:  # replay: acknowledged once durable; its SIEM line written again (at least once)
                await durable_replay(conn)
                return 200, {"event_id": event_id, "recorded": False}, [seen]
            event = await events.append(conn, "DrillEvent", None, cid, payload)
            return 201, {"event_id": event_id, "recorded": True, "seq": event["seq"]}, [event]

        return await self.write(work)

    async def events_verify(self, request: web.Request) -> web.Response:
        return reply(await self.db.run(events.verify))

    async def events_count(self, request: web.Request) -> web.Response:
        type_ = request.query.get("type")
        rows = await self.read(
            "SELECT count(*) AS count FROM events WHERE %s::text IS NULL OR type = %s", (type_, type_)
        )
        return reply({"count": rows[0]["count"], "type": type_})


def _correlation_id(request: web.Request) -> str:
    given = request.headers.get(CORRELATION_HEADER, "").strip()
    # Printable and bounded: it lands in logs, the event store and the SIEM file.
    if given and len(given) <= 128 and given.isprintable():
        return given
    return str(uuid.uuid4())


@web.middleware
async def correlate_and_log(request: web.Request, handler) -> web.StreamResponse:
    """Correlation id in and out, errors as JSON, one log line per request."""
    started = time.monotonic()
    cid = request["correlation_id"] = _correlation_id(request)
    try:
        response = await handler(request)
    except Refused as exc:
        response = reply(exc.refusal.body(), exc.refusal.status)
    except CommitUnconfirmed as exc:
        response = reply({"error": f"write not confirmed: {exc}", "cause": "database", "outcome": "unknown"}, 504)
    except DatabaseUnavailable as exc:
        response = reply({"error": f"database unavailable: {exc}", "cause": "database"}, 503)
    except EvidenceStoreUnavailable as exc:
        response = reply(
            {
                "error": f"evidence store unavailable: {exc}",
                "cause": "evidence_store",
                "Impact": gates.PUBLISH_BLOCKED,
                "attempts": exc.attempts,
            },
            503,
        )
    except web.HTTPException as exc:
        if exc.content_type != "application/json" and exc.status >= 400:
            response = reply({"error": exc.reason}, exc.status)
        else:
            response = exc
    except psycopg.Error as exc:
        log.error("database error on %s %s: %s", request.method, request.path, short_cause(exc, 500))
        response = reply({"error": "internal error", "cause": "database"}, 500)
    except Exception as exc:  # noqa: BLE001 - answered 500, logged without secrets
        log.error(
            "unexpected %s on %s %s: %s", type(exc).__name__, request.method, request.path, scrub(repr(exc))[:500]
        )
        response = reply({"error": "internal error", "cause": "internal"}, 500)
    response.headers[CORRELATION_HEADER] = cid
    log.info(
        "method=%s path=%s status=%s correlation_id=%s ms=%.0f",
        request.method,
        request.path,
        response.status,
        cid,
        (time.monotonic() - started) * 1000,
    )
    return response


def make_app(cp: ControlPlane) -> web.Application:
    """The aiohttp application of one instance: its routes, its heartbeat (controlplane.health)
    and, with a dispatcher, the dispatcher loop; closes the database pools on shutdown."""
    app = web.Application(middlewares=[correlate_and_log], client_max_size=8 * 1024 * 1024)
    app.add_routes(
        [
            web.get("/health/live", cp.live),
            web.get("/health", cp.health),
            web.post("/intents", cp.intent_create),
            web.get("/intents", cp.intent_list),
            web.get(r"/intents/{id:\d+}", cp.intent_get),
            web.post(r"/intents/{id:\d+}/evidence", cp.evidence_commit),
            web.post(r"/intents/{id:\d+}/approve", cp.approve),
            web.post(r"/intents/{id:\d+}/publish", cp.publish),
            web.post(r"/intents/{id:\d+}/promote", cp.promote),
            web.post("/rings/{ring}/rollback", cp.ring_rollback),
            web.get("/events", cp.events_list),
            web.get("/events/verify", cp.events_verify),
            web.post("/events/operational", cp.operational_event),
            web.get("/events/count", cp.events_count),
            web.get("/metrics/event-store", events.metrics_handler),
            *cp.platform_routes(),
        ]
    )

    async def dispatcher_loop(dispatcher: Dispatcher) -> None:
        """Send what an instance published but could not enqueue (SQS down, instance killed)."""
        while True:
            await asyncio.sleep(dispatch.LOOP_INTERVAL_S)
            try:
                await dispatch.flush_pending(cp.db, dispatcher)
            except DatabaseUnavailable as exc:
                log.debug("dispatcher: database unavailable: %s", exc)
            except Exception as exc:  # noqa: BLE001 - the loop must outlive one bad round
                log.error("dispatcher: %s: %s", type(exc).__name__, scrub(str(exc))[:300])

    # Its own pool: a heartbeat never takes a connection a request is waiting for.
    heartbeat_db = Database(
        cp.db.conninfo, timeout=cp.db.timeout, application_name=f"{cp.db.application_name}-heartbeat"
    )

    async def start_background(app: web.Application) -> None:
        app["heartbeat"] = asyncio.create_task(health.heartbeat_loop(heartbeat_db, cp.instance))
        if cp.dispatcher is not None:
            app["dispatcher"] = asyncio.create_task(dispatcher_loop(cp.dispatcher))

    async def close(app: web.Application) -> None:
        tasks = [t for t in (app.get("heartbeat"), app.get("dispatcher")) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await heartbeat_db.close()
        await cp.db.close()

    app.on_startup.append(start_background)
    app.on_cleanup.append(close)
    return app
