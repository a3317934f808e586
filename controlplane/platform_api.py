"""HTTP routes of the connector tier (matrix rows 4-6), mixed into controlplane.api.ControlPlane.

- ``GET /platforms``, ``GET /platforms/{p}``: health, ThrottleCount, PromotionsPaused, CAB pause,
  SCCM SiteHealth and the manual-import fallback (time rules applied on read, see platformstate);
- ``POST /platforms/{p}/observations``: a connector's report of a platform call or probe (with
  ``idempotency_key`` it addresses the dispatch by its key, else by intent_id and ring);
- ``GET /platforms/{p}/observations``: those reports (optionally of one intent);
- ``POST /platforms/{p}/resume`` {"approver"}: the CAB lifts its manual pause;
- ``POST /platforms/{p}/requeue`` {"operator"}: the runbook's requeue from the dead-letter queue;
- ``GET /metrics/queues``: per platform queue depth (``JamfQueueDepth``), dead letters, and the
  backlog age per ring (critical rings: no backlog older than 10 minutes);
- ``POST /_clock/advance`` {"seconds"}: move the Control Plane's clock (labs only:
  ``serve --allow-clock-control``, and the lab's bearer token from DRILL_CONTROL_TOKEN, else 401:
  controlplane.control_auth); recorded as a ClockAdvanced event.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from aiohttp import web
from psycopg.rows import dict_row

from controlplane import control_auth, events, gates
from controlplane import platformstate as ps
from controlplane.db import Database
from controlplane.dispatch import Dispatcher, QueueUnavailable
from controlplane.http import Refused, bad_request, json_body, reply, string_field
from controlplane.platforms import PLATFORMS

BACKLOG_LIMIT_S = 600.0  # spec: no queue backlog beyond 10 minutes for critical rings
OBSERVATION_FIELDS = ("op", "status", "attempt", "wait_s", "retry_after_s", "correlation_id")


def _platform(request: web.Request) -> str:
    name = request.match_info["platform"]
    if name not in PLATFORMS:
        raise web.HTTPNotFound(
            text=f'{{"error": "unknown platform {name!r}; known: {", ".join(PLATFORMS)}"}}',
            content_type="application/json",
        )
    return name


def _number(body: dict, name: str, kind=float):
    value = body.get(name)
    if value is None:
        return None
    try:
        value = kind(value)
    except (TypeError, ValueError):
        value = None
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        raise bad_request(f"field {name!r} must be a number", field=name)
    return value


class PlatformRoutes:
    """Needs self.write, self.read, self.db, self.dispatcher, self.allow_clock_control,
    self.unsafe_ignore_platform_health and self.critical_rings (see ControlPlane)."""

    db: Database
    dispatcher: Dispatcher | None
    allow_clock_control: bool
    unsafe_ignore_platform_health: bool
    critical_rings: frozenset[str]

    if TYPE_CHECKING:  # ControlPlane's

        async def commit(self, work: Any) -> tuple[int, dict[str, Any], list[Any]]: ...
        async def write(self, work: Any) -> web.Response: ...
        async def read(self, query: str, params: Any = ()) -> list[dict[str, Any]]: ...

    # ---- state --------------------------------------------------------------------------

    async def platform_view(self, platform: str, cid: str) -> dict:
        """The platform's view, time rules applied (their events committed) in one transaction."""

        async def work(conn):
            now = await ps.cp_now(conn)
            status, new = ps.tick(await ps.load(conn, platform), now)
            appended = []
            if new:
                await ps.save(conn, status)
                appended = [await events.append(conn, t, None, cid, p) for t, p in new]
            view = ps.view(status, await ps.throttle_count(conn, platform, now), now)
            return 200, view, appended

        return (await self.commit(work))[1]

    async def promotion_gate(self, platform: str, cid: str) -> gates.Refusal | None:
        """Refuse a ring promotion on a platform whose promotions are paused (SCCM: site not healthy)."""
        if self.unsafe_ignore_platform_health or platform not in PLATFORMS:
            return None
        view = await self.platform_view(platform, cid)
        if not view["PromotionsPaused"]:
            return None
        gate = view["gate"]
        what = f"{gate} = {view['health']}" if gate == "SCCM.SiteHealth" else f"{gate} ({platform})"
        return gates.Refusal(
            503,
            gate,
            f"promotion refused: {what}: {'; '.join(view['pause_reasons'])}",
            cause=f"platform:{platform}",
            extra={"PromotionsPaused": True, "platform": platform, "fallback": view.get("fallback")},
        )

    # ---- routes -------------------------------------------------------------------------

    async def platforms_list(self, request: web.Request) -> web.Response:
        return reply({"platforms": [await self.platform_view(p, request["correlation_id"]) for p in PLATFORMS]})

    async def platform_get(self, request: web.Request) -> web.Response:
        return reply(await self.platform_view(_platform(request), request["correlation_id"]))

    async def platform_observation(self, request: web.Request) -> web.Response:
        platform, cid = _platform(request), request["correlation_id"]
        body = await json_body(request)
        outcome = body.get("outcome")
        if outcome not in ps.OUTCOMES:
            raise bad_request(f"field 'outcome' must be one of {list(ps.OUTCOMES)}", field="outcome")
        fields = {
            "op": str(body.get("op") or "apply")[:32],
            "status": _number(body, "status", int),
            "attempt": _number(body, "attempt", int),
            "wait_s": _number(body, "wait_s"),
            "retry_after_s": _number(body, "retry_after_s"),
            "correlation_id": str(body.get("correlation_id") or cid)[:128],
        }
        # an intent id, or a ring rollback's "ring:<ring>" (no intent: stored as null)
        raw_intent = body.get("intent_id")
        intent = (
            None
            if isinstance(raw_intent, str) and not raw_intent.strip().isdigit()
            else _number(body, "intent_id", int)
        )
        ring = str(body.get("ring") or "")[:64]
        key = body.get("idempotency_key")  # addresses the dispatch (a ring rollback has no intent)
        key = key[:512] if isinstance(key, str) and key else None

        async def work(conn):
            now = await ps.cp_now(conn)
            await conn.execute(
                "INSERT INTO platform_observations (platform, at, outcome, intent_id, op, status, attempt,"
                " wait_s, retry_after_s, correlation_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (platform, now, outcome, intent, *(fields[k] for k in OBSERVATION_FIELDS)),
            )
            status, new = ps.observe(await ps.load(conn, platform), outcome, now)
            status, more = ps.tick(status, now)
            await ps.save(conn, status)
            where, params = (
                (" WHERE idempotency_key = %s", (key,))
                if key is not None
                else (" WHERE intent_id = %s AND ring = %s AND kind = 'deploy'", (intent, ring))
            )
            if (key is not None or intent is not None) and outcome == "ok" and fields["op"] == "apply":
                await conn.execute(
                    f"UPDATE dispatches SET state = 'applied', applied_at = %s{where} AND state <> 'applied'",
                    (now, *params),
                )
            elif (key is not None or intent is not None) and outcome == "dead_lettered":
                await conn.execute(
                    f"UPDATE dispatches SET state = 'dead_lettered'{where} AND state <> 'applied'", params
                )
            appended = [await events.append(conn, t, None, fields["correlation_id"], p) for t, p in new + more]
            return 201, ps.view(status, await ps.throttle_count(conn, platform, now), now), appended

        return await self.write(work)

    async def platform_observations(self, request: web.Request) -> web.Response:
        platform = _platform(request)
        intent = request.query.get("intent_id")
        rows = await self.read(
            "SELECT id, at, outcome, intent_id, op, status, attempt, wait_s, retry_after_s, correlation_id"
            " FROM platform_observations WHERE platform = %s AND (%s::bigint IS NULL OR intent_id = %s::bigint)"
            " ORDER BY id DESC LIMIT 500",
            (platform, intent, intent),
        )
        return reply({"platform": platform, "observations": rows[::-1]})

    async def platform_resume(self, request: web.Request) -> web.Response:
        platform, cid = _platform(request), request["correlation_id"]
        approver = string_field(await json_body(request), "approver")

        async def work(conn):
            now = await ps.cp_now(conn)
            status = await ps.load(conn, platform)
            count = await ps.throttle_count(conn, platform, now)
            lifted, why = ps.lift_pause(status, count)
            if why:
                raise Refused(
                    gates.Refusal(409, "CabManualPause", f"CAB pause not lifted: {why}", cause=f"platform:{platform}")
                )
            appended = []
            if lifted != status:
                await ps.save(conn, lifted)
                appended.append(
                    await events.append(conn, "CabPauseLifted", None, cid, {"platform": platform, "approver": approver})
                )
            return 200, ps.view(lifted, count, now), appended

        return await self.write(work)

    async def platform_requeue(self, request: web.Request) -> web.Response:
        platform, cid = _platform(request), request["correlation_id"]
        operator = string_field(await json_body(request), "operator")
        if self.dispatcher is None:
            return reply({"error": "no queues configured (serve --sqs-endpoint)", "cause": "queue"}, 503)
        try:
            moved = await self.dispatcher.requeue(platform)
        except QueueUnavailable as exc:
            return reply({"error": f"queue unavailable: {exc}", "cause": "queue"}, 503)
        ids = [int(m["intent_id"]) for m in moved if str(m.get("intent_id", "")).isdigit()]

        async def work(conn):
            for m in moved:
                if isinstance(m.get("idempotency_key"), str) and m["idempotency_key"]:
                    await conn.execute(
                        "UPDATE dispatches SET state = 'enqueued' WHERE idempotency_key = %s AND state <> 'applied'",
                        (m["idempotency_key"],),
                    )
                elif str(m.get("intent_id", "")).isdigit():
                    await conn.execute(
                        "UPDATE dispatches SET state = 'enqueued' WHERE intent_id = %s"
                        " AND ring = %s AND kind = 'deploy' AND state <> 'applied'",
                        (int(m["intent_id"]), m.get("ring")),
                    )
            event = await events.append(
                conn, "IntentsRequeued", None, cid, {"platform": platform, "operator": operator, "intent_ids": ids}
            )
            return 200, {"platform": platform, "requeued": len(moved), "intent_ids": ids}, [event]

        return await self.write(work)

    async def queue_metrics(self, request: web.Request) -> web.Response:
        queues, error = {}, None
        if self.dispatcher is not None:
            try:
                for platform in PLATFORMS:
                    queues[platform] = await self.dispatcher.depth(platform)
            except QueueUnavailable as exc:
                error = str(exc)

        async def work(conn):
            now = await ps.cp_now(conn)
            rows = await (
                await conn.cursor(row_factory=dict_row).execute(
                    "SELECT platform, ring, count(*) AS open,"
                    " extract(epoch FROM %s - min(created_at))::float AS oldest_age_s"
                    " FROM dispatches WHERE state IN ('pending', 'enqueued') GROUP BY platform, ring"
                    " ORDER BY platform, ring",
                    (now,),
                )
            ).fetchall()
            return rows

        backlog = await self.db.run(work)
        for row in backlog:
            row["critical"] = row["ring"] in self.critical_rings
            row["over_limit"] = row["critical"] and row["oldest_age_s"] > BACKLOG_LIMIT_S
        body = {
            "queues": queues,
            "queue_error": error,
            "JamfQueueDepth": queues.get("jamf", {}).get("queue_depth"),
            "backlog": backlog,
            "critical_rings": sorted(self.critical_rings),
            "backlog_limit_s": BACKLOG_LIMIT_S,
        }
        return reply(body, 200 if error is None else 503)

    async def clock_advance(self, request: web.Request) -> web.Response:
        if not self.allow_clock_control:
            return reply({"error": "clock control is off (serve --allow-clock-control, labs only)"}, 403)
        if not control_auth.authorized(request.headers.get("Authorization")):  # the lab's bearer token
            body, status, headers = control_auth.refusal()
            response = reply(body, status)
            response.headers.update(headers)
            return response
        seconds = _number(await json_body(request), "seconds")
        if seconds is None or not 0 < seconds <= 7 * 86400:
            raise bad_request("field 'seconds' must be a number in (0, 604800]", field="seconds")
        cid = request["correlation_id"]

        async def work(conn):
            row = await (
                await conn.execute(
                    "UPDATE cp_clock SET offset_s = offset_s + %s WHERE id = 1 RETURNING offset_s", (seconds,)
                )
            ).fetchone()
            event = await events.append(conn, "ClockAdvanced", None, cid, {"seconds": seconds, "offset_s": row[0]})
            return 200, {"advanced_s": seconds, "offset_s": row[0], "now": await ps.cp_now(conn)}, [event]

        return await self.write(work)

    def platform_routes(self) -> list:
        p = "/platforms/{platform}"
        return [
            web.get("/platforms", self.platforms_list),
            web.get(p, self.platform_get),
            web.post(f"{p}/observations", self.platform_observation),
            web.get(f"{p}/observations", self.platform_observations),
            web.post(f"{p}/resume", self.platform_resume),
            web.post(f"{p}/requeue", self.platform_requeue),
            web.get("/metrics/queues", self.queue_metrics),
            web.post("/_clock/advance", self.clock_advance),
        ]
