"""An HTTP fault gateway: forwards every request to its upstream, or answers an injected status.

Toxiproxy works on bytes; "the object store answers 5xx" needs HTTP. The gateway sits between
the link's proxy and the real server (S3 on moto) and is driven over its own control path:

    POST   /_drill/fault   {"status": 503, "count": 0}   answer `status` (count 0 = until healed)
    DELETE /_drill/fault                                  heal: forward again
    GET    /_drill/fault                                  the fault and how many were answered

Run: python -m harness.lab.httpfault --port 0 --upstream http://127.0.0.1:5000
(listens on 127.0.0.1; prints "listening HOST:PORT" once bound).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import aiohttp
from aiohttp import web

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length", "host"}
CONTROL = "/_drill/fault"


def make_app(upstream: str) -> web.Application:
    state = {"status": None, "count": 0, "answered": 0, "forwarded": 0}

    async def control(request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                body = await request.json()
                status = int(body.get("status", 503))
                count = int(body.get("count", 0))
            except (ValueError, TypeError, AttributeError):
                return web.json_response({"error": "body must be {status, count}"}, status=400)
            if not 400 <= status <= 599 or count < 0:
                return web.json_response({"error": "status must be 4xx/5xx, count >= 0"}, status=400)
            state.update(status=status, count=count, answered=0)
        elif request.method == "DELETE":
            state.update(status=None, count=0)
        return web.json_response(state)

    async def forward(request: web.Request) -> web.StreamResponse:
        if state["status"] is not None and (state["count"] == 0 or state["answered"] < state["count"]):
            state["answered"] += 1
            body = ("<?xml version='1.0' encoding='UTF-8'?><Error><Code>ServiceUnavailable</Code>"
                    "<Message>injected by the drill harness</Message></Error>")
            return web.Response(status=state["status"], text=body, content_type="application/xml")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = request.headers.get("Host", "")
        data = await request.read()
        session: aiohttp.ClientSession = request.app["session"]
        try:
            async with session.request(request.method, upstream + request.path_qs, headers=headers,
                                       data=data, allow_redirects=False) as reply:
                payload = await reply.read()
                out = {k: v for k, v in reply.headers.items() if k.lower() not in HOP_BY_HOP}
                state["forwarded"] += 1
                return web.Response(status=reply.status, body=payload, headers=out)
        except aiohttp.ClientError as exc:
            return web.Response(status=502, text=f"upstream unreachable: {type(exc).__name__}")

    async def open_session(app: web.Application) -> None:
        app["session"] = aiohttp.ClientSession(auto_decompress=False,
                                               timeout=aiohttp.ClientTimeout(total=30))

    async def close_session(app: web.Application) -> None:
        await app["session"].close()

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    app.router.add_route("*", CONTROL, control)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def serve(port: int, upstream: str) -> None:
    runner = web.AppRunner(make_app(upstream.rstrip("/")), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    host, bound = runner.addresses[0][:2]
    print(f"listening {host}:{bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.lab.httpfault")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--tag", default="", help="a lab id, so a killed run's gateway is reaped")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port, args.upstream))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
