"""An HTTP fault gateway: forwards every request to its upstream, or answers an injected status.

Toxiproxy works on bytes; "the object store answers 5xx" needs HTTP. The gateway sits between
the link's proxy and the real server (S3 on moto) and is driven over its own control path:

    POST   /_drill/fault   {"status": 503, "count": 0, "for_s": 60}
                           answer `status` (count 0 = until healed); with for_s (> 0 seconds)
                           the gateway forwards again by itself after for_s unless the fault
                           was changed meanwhile (a dead-man switch should the harness die)
    DELETE /_drill/fault   heal: forward again
    GET    /_drill/fault   the fault, how many were answered, `until` (epoch) while a for_s is pending
    GET    /_drill/requests?after=N
                           {"requests": [{"n", "at", "method", "path", "status", "injected"}, ...]}:
                           every request forwarded or answered (not the control paths) with n > N,
                           in order; at = arrival (epoch seconds), path without the query string,
                           status = what the client was answered, injected = answered by the fault

Every /_drill/ call needs ``Authorization: Bearer <token>``: the token the gateway got in its
environment (DRILL_CONTROL_TOKEN, never on its command line); without one they answer 401.

Run: DRILL_CONTROL_TOKEN=... python -m harness.lab.httpfault --port 0 --upstream http://127.0.0.1:5000
(listens on 127.0.0.1; prints "listening HOST:PORT" once bound).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from typing import Any

import aiohttp
from aiohttp import web

from controlplane import control_auth

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}
CONTROL = "/_drill/fault"
REQUESTS = "/_drill/requests"


def _time_limit(value) -> float | None:
    """for_s: None, or a finite number of seconds > 0 (ValueError otherwise)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(value)
    return float(value)


def make_app(upstream: str) -> web.Application:
    state: dict[str, Any] = {"status": None, "count": 0, "answered": 0, "forwarded": 0, "until": None}
    requests_seen: list[dict] = []
    timer: dict[str, asyncio.TimerHandle | None] = {"handle": None}

    def disarm() -> None:
        if timer["handle"] is not None:
            timer["handle"].cancel()
            timer["handle"] = None
        state["until"] = None

    def expire() -> None:
        """The time limit passed with the fault unchanged: forward again."""
        timer["handle"] = None
        state.update(status=None, count=0, until=None)
        print("httpfault: the fault reached its time limit; forwarding again", file=sys.stderr, flush=True)

    def record(at: float, request: web.Request, status: int, injected: bool) -> None:
        requests_seen.append(
            {
                "n": len(requests_seen) + 1,
                "at": round(at, 6),
                "method": request.method,
                "path": request.path,
                "status": status,
                "injected": injected,
            }
        )

    @web.middleware
    async def control_token(request: web.Request, handler):
        """Every /_drill/ path needs the lab's bearer token (DRILL_CONTROL_TOKEN); the rest is
        forwarded as it is (S3 clients authenticate to S3, not to the gateway)."""
        if request.path.startswith("/_drill/") and not control_auth.authorized(request.headers.get("Authorization")):
            body, status, headers = control_auth.refusal()
            return web.json_response(body, status=status, headers=headers)
        return await handler(request)

    async def control(request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                body = await request.json()
                status = int(body.get("status", 503))
                count = int(body.get("count", 0))
                for_s = _time_limit(body.get("for_s"))
            except (ValueError, TypeError, AttributeError):
                return web.json_response(
                    {"error": "body must be {status, count, for_s (seconds > 0, optional)}"}, status=400
                )
            if not 400 <= status <= 599 or count < 0:
                return web.json_response({"error": "status must be 4xx/5xx, count >= 0"}, status=400)
            disarm()
            state.update(status=status, count=count, answered=0)
            if for_s is not None:
                state["until"] = round(time.time() + for_s, 3)
                timer["handle"] = asyncio.get_running_loop().call_later(for_s, expire)
        elif request.method == "DELETE":
            disarm()
            state.update(status=None, count=0)
        return web.json_response(state)

    async def requests_index(request: web.Request) -> web.Response:
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            return web.json_response({"error": "after must be an integer"}, status=400)
        # n is 1-based and dense: the slice is every record with n > after
        return web.json_response({"requests": requests_seen[max(after, 0) :]})

    async def forward(request: web.Request) -> web.StreamResponse:
        at = time.time()
        if state["status"] is not None and (state["count"] == 0 or state["answered"] < state["count"]):
            state["answered"] += 1
            status = state["status"]
            record(at, request, status, True)
            body = (
                "<?xml version='1.0' encoding='UTF-8'?><Error><Code>ServiceUnavailable</Code>"
                "<Message>injected by the drill harness</Message></Error>"
            )
            return web.Response(status=status, text=body, content_type="application/xml")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = request.headers.get("Host", "")
        data = await request.read()
        session: aiohttp.ClientSession = request.app["session"]
        try:
            async with session.request(
                request.method, upstream + request.path_qs, headers=headers, data=data, allow_redirects=False
            ) as reply:
                payload = await reply.read()
                out = {k: v for k, v in reply.headers.items() if k.lower() not in HOP_BY_HOP}
                state["forwarded"] += 1
                record(at, request, reply.status, False)
                return web.Response(status=reply.status, body=payload, headers=out)
        except aiohttp.ClientError as exc:
            record(at, request, 502, False)
            return web.Response(status=502, text=f"upstream unreachable: {type(exc).__name__}")
        except TimeoutError:
            record(at, request, 504, False)
            return web.Response(status=504, text="upstream did not answer in time")

    async def open_session(app: web.Application) -> None:
        app["session"] = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=30))

    async def close_session(app: web.Application) -> None:
        disarm()
        await app["session"].close()

    app = web.Application(client_max_size=256 * 1024 * 1024, middlewares=[control_token])
    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    app.router.add_route("*", CONTROL, control)
    app.router.add_get(REQUESTS, requests_index)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def serve(port: int, upstream: str, host: str = "127.0.0.1") -> None:
    runner = web.AppRunner(make_app(upstream.rstrip("/")), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    host, bound = runner.addresses[0][:2]
    print(f"listening {host}:{bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.lab.httpfault")
    parser.add_argument(
        "--host", default="127.0.0.1", help="default 127.0.0.1; 0.0.0.0 only inside a container's own network namespace"
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--tag", default="", help="a lab id, so a killed run's gateway is reaped")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port, args.upstream, args.host))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
