"""A small real HTTP server standing in for one platform API (Intune, Jamf, SCCM, Landscape, Ansible).

Endpoints:

- ``POST /apply`` {"intent_id", "idempotency_key", "correlation_id", "ring"} (a ring rollback
  adds "action": "rollback" and "rollback_id"): records the application; 200 {"applied": true}
  the first time a key is seen, {"applied": false} after (an intent is applied exactly once per
  idempotency key). A record (and its log line) with an action carries "action".
- ``GET /applied``: {"applied": [{"idempotency_key", "intent_id", "correlation_id", "ring",
  "count", "correlation_ids"}, ...]} in first-seen order; count = how often the key arrived.
- ``GET /applied/{key}`` (the key URL-encoded; Test-IdempotencyKey, spec rule 4): 200
  {"idempotency_key", "applied": true, "count", "intent_id"} when the key was applied, 404
  {"idempotency_key", "applied": false} otherwise. Not affected by the degradation modes (it
  consumes none of a limited degradation); counted in ``key_tests``, not in ``requests``.
- ``POST /_control`` {"mode": "ok"|"throttle"|"error"|"hang", "retry_after": seconds,
  "requests": n, "for_s": seconds}: degrade the next n ``/apply`` requests (0 = until changed),
  then back to ok; with for_s (> 0) the mode also goes back to ok by itself after for_s seconds
  unless it was changed again meanwhile (a dead-man switch should the harness die).
  throttle answers 429 with Retry-After, error answers 503, hang never answers.
- ``GET /_control``: the mode, the counters, and ``until`` (epoch seconds) while a for_s limit
  is pending (else null).
- Both ``/_control`` calls need ``Authorization: Bearer <token>``, the token the stand-in got in
  DRILL_CONTROL_TOKEN (started without one, they answer 401 to every call).
- ``GET /health``: 200, or what the current mode answers (429, 503, hang) without consuming
  one of the degraded requests.

Every request to /apply logs one JSON line to stderr (platform, correlation id, outcome).

The request log (``request_log``, the CLI's ``--request-log FILE``): every ``POST /apply``, every
``GET /applied/{key}`` (path "/applied", outcome "tested"), and every ``GET /health`` answered
with anything but 200 (a connector counts those too), appends one JSON line to FILE, the
evidence a drill judges from (what reached the platform, and what it answered), whatever the
Control Plane says about itself::

    {"n", "at", "platform", "path", "idempotency_key", "intent_id", "ring", "correlation_id",
     "status", "outcome", "count"}

A line of an /apply with an action (a ring rollback) also has "action".
n is a sequence number continuing after the file's last one; at is the request's arrival
(epoch seconds); status is what was answered (null for a hang, logged when it arrives);
outcome is applied, duplicate, throttled, error, hang or bad_request (path /apply or /health),
or tested (path /applied: status 200 the key was applied, 404 it was not); count is how often the
key has now arrived (applied and duplicate; for tested, how often it had arrived, or null).
A tested line carries the key, the intent_id and ring of its record (null when not applied)
and the X-Correlation-ID of the request. Only /apply lines are applies. The file is opened with O_APPEND and each
line is one write. On start the stand-in replays it, so its applied records (and the "applied
the first time a key is seen" rule) survive a restart, as a real platform's would.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from pathlib import Path

from aiohttp import web

from controlplane import control_auth

MODES = ("ok", "throttle", "error", "hang")
HANG_SECONDS = 3600.0


class RequestLogError(ValueError):
    """The request log cannot be replayed (corrupt line, another platform's log)."""


def _log(**fields) -> None:
    print(
        json.dumps({"ts": round(time.time(), 3), "component": "platform-mock", **fields}), file=sys.stderr, flush=True
    )


def _retry_after_header(seconds: float) -> str:
    """delay-seconds as HTTP wants it (an integer), unless a sub-second value was asked for."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def read_request_log(path: str | os.PathLike) -> list[dict]:
    """The lines of a request log, in order. A torn last line (a write cut short by a kill, or
    one being written right now) is skipped; a bad line elsewhere raises RequestLogError."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    lines.pop()  # b"" when the file ends with a newline, else a torn last line (each line is
    out = []  # written with its newline in one write: without it, the write was cut short)
    for number, raw in enumerate(lines, 1):
        try:
            entry = json.loads(raw)
            if not isinstance(entry, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            raise RequestLogError(f"{path}: line {number} is not a request record: {exc}") from None
        out.append(entry)
    return out


class PlatformMock:
    def __init__(self, platform: str, request_log: str | os.PathLike | None = None) -> None:
        self.platform = platform
        self.mode = "ok"
        self.retry_after = 1.0
        self.remaining = 0  # degraded requests left; 0 = until changed
        self.until: float | None = None  # epoch seconds: the mode reverts to ok by itself
        self._revert: asyncio.TimerHandle | None = None
        self._hanging: set[asyncio.Task] = set()  # requests held in "hang" mode (cancelled at shutdown)
        self.records: dict[str, dict] = {}
        self.counters = {
            "requests": 0,
            "applied": 0,
            "duplicates": 0,
            "throttled_sent": 0,
            "errors_sent": 0,
            "hung": 0,
            "bad_requests": 0,
            "control_changes": 0,
            "key_tests": 0,
        }
        self.request_log = Path(request_log) if request_log is not None else None
        self._fd: int | None = None
        self._n = 0
        if self.request_log is not None:
            self._open_request_log()

    # -- the request log ---------------------------------------------------------------------
    def _open_request_log(self) -> None:
        """Replay the log (applied records, last n), drop a torn last line, open it for append."""
        path = self.request_log
        if path is None:
            return
        replayed = 0
        for entry in read_request_log(path):
            if entry.get("platform") not in (None, self.platform):
                raise RequestLogError(
                    f"{path} is the request log of {entry.get('platform')!r}, not of {self.platform!r}"
                )
            if isinstance(entry.get("n"), int):
                self._n = max(self._n, entry["n"])
            if entry.get("outcome") in ("applied", "duplicate") and isinstance(entry.get("idempotency_key"), str):
                self._record(
                    entry["idempotency_key"],
                    entry.get("intent_id"),
                    entry.get("correlation_id"),
                    entry.get("ring"),
                    entry.get("action"),
                )
                replayed += 1
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        if data and not data.endswith(b"\n"):  # a torn last line: appending would glue onto it
            keep = data.rfind(b"\n") + 1
            os.truncate(path, keep)
            _log(platform=self.platform, op="request_log", dropped_torn_bytes=len(data) - keep)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _log(
            platform=self.platform,
            op="request_log",
            path=str(path),
            last_n=self._n,
            replayed_applications=replayed,
            keys=len(self.records),
        )

    def _append(
        self,
        at: float,
        fields: dict | None,
        cid: str | None,
        status: int | None,
        outcome: str,
        count: int | None,
        path: str = "/apply",
    ) -> None:
        if self._fd is None:
            return
        self._n += 1
        fields = fields or {}
        entry = {
            "n": self._n,
            "at": round(at, 6),
            "platform": self.platform,
            "path": path,
            "idempotency_key": fields.get("idempotency_key"),
            "intent_id": fields.get("intent_id"),
            "ring": fields.get("ring"),
            "correlation_id": cid,
            "status": status,
            "outcome": outcome,
            "count": count,
        }
        if fields.get("action") and path == "/apply":  # a ring rollback: "action": "rollback"
            entry["action"] = fields["action"]
        line = json.dumps(entry) + "\n"
        data = line.encode()
        while data:  # one write per line (a short write on a regular file is
            written = os.write(self._fd, data)  # an edge case: finish the line)
            data = data[written:]

    async def _hang(self) -> None:
        """Hold the request until the client gives up. At shutdown (SIGTERM) stop_hanging() ends the
        wait as aiohttp would after its shutdown_timeout, twice over (about 2 s): no answer, the
        connection closed."""
        task = asyncio.current_task()
        if task is not None:
            self._hanging.add(task)
        try:
            await asyncio.sleep(HANG_SECONDS)
        finally:
            self._hanging.discard(task)

    def stop_hanging(self) -> None:
        for task in list(self._hanging):
            task.cancel()

    def close(self) -> None:
        if self._revert is not None:
            self._revert.cancel()
            self._revert = None
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    # -- degradation -------------------------------------------------------------------------
    def _set_mode(self, mode: str, retry_after: float, requests: int, for_s: float | None) -> None:
        if self._revert is not None:
            self._revert.cancel()
            self._revert = None
        self.until = None
        self.mode, self.retry_after, self.remaining = mode, retry_after, requests
        if for_s is not None and mode != "ok":
            self.until = time.time() + for_s
            self._revert = asyncio.get_running_loop().call_later(for_s, self._expire)

    def _expire(self) -> None:
        """The time limit passed with the mode unchanged: back to ok by itself."""
        self._revert = None
        mode, self.until = self.mode, None
        self.mode, self.remaining = "ok", 0
        _log(platform=self.platform, op="control", mode="ok", reverted_from=mode, reason="time limit")

    def _back_to_ok(self) -> None:
        """A limited degradation used up its requests: ok, and no pending time limit."""
        self.mode = "ok"
        if self._revert is not None:
            self._revert.cancel()
            self._revert = None
        self.until = None

    def _degradation(self) -> str:
        """The mode for this request, consuming one of a limited degradation."""
        mode = self.mode
        if mode != "ok" and self.remaining > 0:
            self.remaining -= 1
            if self.remaining == 0:
                self._back_to_ok()
        return mode

    # -- endpoints ---------------------------------------------------------------------------
    @staticmethod
    def _parse(raw: bytes) -> dict | None:
        """The intent's fields, or None when the body is not a valid request."""
        try:
            body = json.loads(raw)
            key, intent = body["idempotency_key"], body["intent_id"]
            if not (isinstance(key, str) and key and isinstance(intent, str) and intent):
                raise ValueError
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None
        ring, cid, action = body.get("ring"), body.get("correlation_id"), body.get("action")
        return {
            "idempotency_key": key,
            "intent_id": intent,
            "ring": ring if isinstance(ring, str) else None,
            "correlation_id": cid if isinstance(cid, str) and cid else None,
            "action": action if isinstance(action, str) and action else None,
        }

    def _record(
        self, key: str, intent: str | None, cid: str | None, ring: str | None, action: str | None = None
    ) -> dict:
        record = self.records.get(key)
        if record is None:
            record = self.records[key] = {
                "idempotency_key": key,
                "intent_id": intent,
                "correlation_id": cid,
                "ring": ring,
                "count": 0,
                "correlation_ids": [],
            }
            if action:
                record["action"] = action
        record["count"] += 1
        if cid not in record["correlation_ids"]:
            record["correlation_ids"].append(cid)
        return record

    async def apply(self, request: web.Request) -> web.StreamResponse:
        at = time.time()
        self.counters["requests"] += 1
        header_cid = request.headers.get("X-Correlation-ID")
        fields = self._parse(await request.read())
        cid = (fields or {}).get("correlation_id") or header_cid
        mode = self._degradation()
        if mode == "throttle":
            self.counters["throttled_sent"] += 1
            self._append(at, fields, cid, 429, "throttled", None)
            _log(
                platform=self.platform,
                correlation_id=cid,
                outcome="throttled",
                status=429,
                retry_after=self.retry_after,
            )
            return web.json_response(
                {"error": "throttled"}, status=429, headers={"Retry-After": _retry_after_header(self.retry_after)}
            )
        if mode == "error":
            self.counters["errors_sent"] += 1
            self._append(at, fields, cid, 503, "error", None)
            _log(platform=self.platform, correlation_id=cid, outcome="error", status=503)
            return web.json_response({"error": "service unavailable"}, status=503)
        if mode == "hang":
            self.counters["hung"] += 1
            self._append(at, fields, cid, None, "hang", None)
            _log(platform=self.platform, correlation_id=cid, outcome="hang")
            await self._hang()  # until the client gives up (or we shut down)
            return web.json_response({"error": "hung"}, status=504)
        if fields is None:
            self.counters["bad_requests"] += 1
            self._append(at, None, header_cid, 400, "bad_request", None)
            _log(platform=self.platform, correlation_id=header_cid, outcome="bad_request", status=400)
            return web.json_response({"error": "need JSON with intent_id and idempotency_key"}, status=400)
        key, intent = fields["idempotency_key"], fields["intent_id"]
        record = self._record(key, intent, cid, fields["ring"], fields["action"])
        applied = record["count"] == 1
        self.counters["applied" if applied else "duplicates"] += 1
        outcome = "applied" if applied else "duplicate"
        self._append(at, fields, cid, 200, outcome, record["count"])
        _log(
            platform=self.platform,
            correlation_id=cid,
            intent_id=intent,
            idempotency_key=key,
            outcome=outcome,
            status=200,
            count=record["count"],
        )
        return web.json_response({"applied": applied, "idempotency_key": key, "count": record["count"]})

    async def health(self, request: web.Request) -> web.StreamResponse:
        """The platform's health as its mode says, without consuming a limited degradation; an
        answer other than 200 is logged (a connector's probe counts it as a throttle or an error)."""
        at, cid = time.time(), request.headers.get("X-Correlation-ID")
        if self.mode == "throttle":
            self._append(at, None, cid, 429, "throttled", None, path="/health")
            return web.json_response(
                {"status": "throttled"}, status=429, headers={"Retry-After": _retry_after_header(self.retry_after)}
            )
        if self.mode == "error":
            self._append(at, None, cid, 503, "error", None, path="/health")
            return web.json_response({"status": "unavailable"}, status=503)
        if self.mode == "hang":
            self._append(at, None, cid, None, "hang", None, path="/health")
            await self._hang()
        return web.json_response({"status": "ok", "platform": self.platform})

    async def applied(self, request: web.Request) -> web.Response:
        return web.json_response({"platform": self.platform, "applied": list(self.records.values())})

    async def applied_key(self, request: web.Request) -> web.Response:
        """Test-IdempotencyKey: was this key applied? Whatever the degradation mode; logged."""
        at, cid = time.time(), request.headers.get("X-Correlation-ID")
        key = request.match_info["key"]
        self.counters["key_tests"] += 1
        record = self.records.get(key)
        if record is None:
            self._append(at, {"idempotency_key": key}, cid, 404, "tested", None, path="/applied")
            return web.json_response({"idempotency_key": key, "applied": False}, status=404)
        self._append(at, record, cid, 200, "tested", record["count"], path="/applied")
        return web.json_response(
            {"idempotency_key": key, "applied": True, "count": record["count"], "intent_id": record["intent_id"]}
        )

    def control_state(self) -> dict:
        return {
            "platform": self.platform,
            "mode": self.mode,
            "retry_after": self.retry_after,
            "requests_remaining": self.remaining,
            "until": round(self.until, 3) if self.until is not None else None,
            **self.counters,
        }

    @staticmethod
    def _refused(request: web.Request) -> web.Response | None:
        """401 unless the call carries the lab's bearer token (controlplane.control_auth)."""
        if control_auth.authorized(request.headers.get("Authorization")):
            return None
        body, status, headers = control_auth.refusal()
        return web.json_response(body, status=status, headers=headers)

    async def get_control(self, request: web.Request) -> web.Response:
        return self._refused(request) or web.json_response(self.control_state())

    async def post_control(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
            mode = body["mode"]
            retry_after = float(body.get("retry_after", self.retry_after))
            requests = int(body.get("requests", 0))
            for_s = body.get("for_s")
            if mode not in MODES or retry_after < 0 or not math.isfinite(retry_after) or requests < 0:
                raise ValueError
            if for_s is not None and (
                isinstance(for_s, bool) or not isinstance(for_s, (int, float)) or not math.isfinite(for_s) or for_s <= 0
            ):
                raise ValueError
        except (ValueError, KeyError, TypeError, AttributeError):
            return web.json_response(
                {
                    "error": f"need JSON mode in {list(MODES)}, retry_after >= 0, "
                    f"requests >= 0, for_s > 0 (seconds, optional)"
                },
                status=400,
            )
        self._set_mode(mode, retry_after, requests, for_s)
        self.counters["control_changes"] += 1
        _log(platform=self.platform, op="control", mode=mode, retry_after=retry_after, requests=requests, for_s=for_s)
        return web.json_response(self.control_state())


def make_app(platform: str, request_log: str | os.PathLike | None = None) -> web.Application:
    mock = PlatformMock(platform, request_log)
    app = web.Application()
    app["mock"] = mock
    app.router.add_post("/apply", mock.apply)
    app.router.add_get("/applied", mock.applied)
    app.router.add_get("/applied/{key:.+}", mock.applied_key)
    app.router.add_get("/health", mock.health)
    app.router.add_get("/_control", mock.get_control)
    app.router.add_post("/_control", mock.post_control)

    async def close(app: web.Application) -> None:
        mock.close()

    async def stop_hanging(app: web.Application) -> None:
        mock.stop_hanging()

    app.on_shutdown.append(stop_hanging)  # before aiohttp waits for the requests in progress
    app.on_cleanup.append(close)
    return app


def run(platform: str, host: str, port: int, request_log: str | os.PathLike | None = None) -> None:
    _log(
        platform=platform,
        op="start",
        url=f"http://{host}:{port}",
        request_log=str(request_log) if request_log is not None else None,
    )
    web.run_app(
        make_app(platform, request_log), host=host, port=port, print=None, access_log=None, shutdown_timeout=1.0
    )
