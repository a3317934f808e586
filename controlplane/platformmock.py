"""A small real HTTP server standing in for one platform API (Intune, Jamf, SCCM, Landscape, Ansible).

Endpoints:

- ``POST /apply`` {"intent_id", "idempotency_key", "correlation_id", "ring"}: records the
  application; 200 {"applied": true} the first time a key is seen, {"applied": false} after
  (an intent is applied exactly once per idempotency key).
- ``GET /applied``: {"applied": [{"idempotency_key", "intent_id", "correlation_id", "ring",
  "count", "correlation_ids"}, ...]} in first-seen order; count = how often the key arrived.
- ``POST /_control`` {"mode": "ok"|"throttle"|"error"|"hang", "retry_after": seconds,
  "requests": n}: degrade the next n ``/apply`` requests (0 = until changed), then back to ok.
  throttle answers 429 with Retry-After, error answers 503, hang never answers.
- ``GET /_control``: the mode and the counters.
- ``GET /health``: 200, or what the current mode answers (429, 503, hang) without consuming
  one of the degraded requests.

Every request to /apply logs one JSON line to stderr (platform, correlation id, outcome).
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time

from aiohttp import web

MODES = ("ok", "throttle", "error", "hang")
HANG_SECONDS = 3600.0


def _log(**fields) -> None:
    print(json.dumps({"ts": round(time.time(), 3), "component": "platform-mock", **fields}),
          file=sys.stderr, flush=True)


def _retry_after_header(seconds: float) -> str:
    """delay-seconds as HTTP wants it (an integer), unless a sub-second value was asked for."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


class PlatformMock:
    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.mode = "ok"
        self.retry_after = 1.0
        self.remaining = 0  # degraded requests left; 0 = until changed
        self.records: dict[str, dict] = {}
        self.counters = {"requests": 0, "applied": 0, "duplicates": 0, "throttled_sent": 0,
                         "errors_sent": 0, "hung": 0, "bad_requests": 0, "control_changes": 0}

    def _degradation(self) -> str:
        """The mode for this request, consuming one of a limited degradation."""
        mode = self.mode
        if mode != "ok" and self.remaining > 0:
            self.remaining -= 1
            if self.remaining == 0:
                self.mode = "ok"
        return mode

    async def apply(self, request: web.Request) -> web.StreamResponse:
        self.counters["requests"] += 1
        header_cid = request.headers.get("X-Correlation-ID")
        mode = self._degradation()
        if mode == "throttle":
            self.counters["throttled_sent"] += 1
            _log(platform=self.platform, correlation_id=header_cid, outcome="throttled",
                 status=429, retry_after=self.retry_after)
            return web.json_response({"error": "throttled"}, status=429,
                                     headers={"Retry-After": _retry_after_header(self.retry_after)})
        if mode == "error":
            self.counters["errors_sent"] += 1
            _log(platform=self.platform, correlation_id=header_cid, outcome="error", status=503)
            return web.json_response({"error": "service unavailable"}, status=503)
        if mode == "hang":
            self.counters["hung"] += 1
            _log(platform=self.platform, correlation_id=header_cid, outcome="hang")
            await asyncio.sleep(HANG_SECONDS)  # until the client gives up (or we shut down)
            return web.json_response({"error": "hung"}, status=504)
        try:
            body = await request.json()
            key, intent = body["idempotency_key"], body["intent_id"]
            if not (isinstance(key, str) and key and isinstance(intent, str) and intent):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            self.counters["bad_requests"] += 1
            _log(platform=self.platform, correlation_id=header_cid, outcome="bad_request", status=400)
            return web.json_response({"error": "need JSON with intent_id and idempotency_key"}, status=400)
        cid = body.get("correlation_id") or header_cid
        record = self.records.get(key)
        if record is None:
            record = self.records[key] = {"idempotency_key": key, "intent_id": intent,
                                          "correlation_id": cid, "ring": body.get("ring"),
                                          "count": 0, "correlation_ids": []}
        record["count"] += 1
        if cid not in record["correlation_ids"]:
            record["correlation_ids"].append(cid)
        applied = record["count"] == 1
        self.counters["applied" if applied else "duplicates"] += 1
        _log(platform=self.platform, correlation_id=cid, intent_id=intent, idempotency_key=key,
             outcome="applied" if applied else "duplicate", status=200, count=record["count"])
        return web.json_response({"applied": applied, "idempotency_key": key, "count": record["count"]})

    async def health(self, request: web.Request) -> web.StreamResponse:
        """The platform's health as its mode says, without consuming a limited degradation."""
        if self.mode == "throttle":
            return web.json_response({"status": "throttled"}, status=429,
                                     headers={"Retry-After": _retry_after_header(self.retry_after)})
        if self.mode == "error":
            return web.json_response({"status": "unavailable"}, status=503)
        if self.mode == "hang":
            await asyncio.sleep(HANG_SECONDS)
        return web.json_response({"status": "ok", "platform": self.platform})

    async def applied(self, request: web.Request) -> web.Response:
        return web.json_response({"platform": self.platform, "applied": list(self.records.values())})

    def control_state(self) -> dict:
        return {"platform": self.platform, "mode": self.mode, "retry_after": self.retry_after,
                "requests_remaining": self.remaining, **self.counters}

    async def get_control(self, request: web.Request) -> web.Response:
        return web.json_response(self.control_state())

    async def post_control(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            mode = body["mode"]
            retry_after = float(body.get("retry_after", self.retry_after))
            requests = int(body.get("requests", 0))
            if mode not in MODES or retry_after < 0 or not math.isfinite(retry_after) or requests < 0:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": f"need JSON mode in {list(MODES)}, retry_after >= 0, "
                                               f"requests >= 0"}, status=400)
        self.mode, self.retry_after, self.remaining = mode, retry_after, requests
        self.counters["control_changes"] += 1
        _log(platform=self.platform, op="control", mode=mode, retry_after=retry_after, requests=requests)
        return web.json_response(self.control_state())


def make_app(platform: str) -> web.Application:
    mock = PlatformMock(platform)
    app = web.Application()
    app["mock"] = mock
    app.router.add_post("/apply", mock.apply)
    app.router.add_get("/applied", mock.applied)
    app.router.add_get("/health", mock.health)
    app.router.add_get("/_control", mock.get_control)
    app.router.add_post("/_control", mock.post_control)
    return app


def run(platform: str, host: str, port: int) -> None:
    _log(platform=platform, op="start", url=f"http://{host}:{port}")
    web.run_app(make_app(platform), host=host, port=port, print=None, access_log=None, shutdown_timeout=1.0)
