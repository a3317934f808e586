"""Toxiproxy 2.x HTTP API on aiohttp, in the same event loop as the proxies."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware

from .proxy import ApiError, ProxyCollection, bad_request, parse_time_limit

VERSION = "2.12.0-drill-harness"
log = logging.getLogger("toxiproxy.api")

COLLECTION = web.AppKey("collection", ProxyCollection)
READ_TIMEOUT_KEY = web.AppKey("read_timeout", float)
READ_TIMEOUT = 10.0  # seconds a client has to send the body of a request (after its head)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


def _error(message: str, status: int) -> web.Response:
    return _json({"error": message, "status": status}, status)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Toxiproxy refuses browsers, so a web page cannot drive the API (CSRF)
    if request.headers.get("User-Agent", "").startswith("Mozilla/"):
        return web.Response(text="User agent not allowed\n", status=403)
    try:
        return await handler(request)
    except ApiError as exc:
        response = _error(exc.message, exc.status)
        if exc.close:
            response.force_close()  # the connection cannot carry another request
        return response


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")  # Python's json takes NaN and Infinity


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e309 would be read as infinity
        raise ValueError(f"number {text[:40]} is out of range")
    return value


async def _body(request: web.Request) -> Any:
    """The request's JSON; anything that is not plain, finite JSON is a 400 (a body too slow to
    arrive, a 408; one over aiohttp's client_max_size, a 413)."""
    try:
        raw = await asyncio.wait_for(request.read(), request.app[READ_TIMEOUT_KEY])
    except TimeoutError:
        error = ApiError(f"request body not received within {request.app[READ_TIMEOUT_KEY]:g} s", 408)
        error.close = True
        raise error from None
    except (web.RequestPayloadError, HttpProcessingError) as exc:  # e.g. a gzip body that is not gzip
        error = bad_request(f"cannot read it: {str(exc)[:200]}")
        error.close = True
        raise error from None
    except web.HTTPRequestEntityTooLarge as exc:  # aiohttp's text answer, in our shape
        error = ApiError(f"request body too large: {exc.text}", exc.status)
        error.close = True
        raise error from None
    try:
        return json.loads(raw or b"null", parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise bad_request("JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:  # ValueError: also an int over 4300 digits
        raise bad_request(str(exc)[:200]) from None


def _collection(request: web.Request) -> ProxyCollection:
    return request.app[COLLECTION]


async def version_show(request: web.Request) -> web.Response:
    return web.Response(text=json.dumps({"version": VERSION}) + "\n", content_type="application/json", charset="utf-8")


async def proxy_index(request: web.Request) -> web.Response:
    return _json({name: p.to_json() for name, p in _collection(request).proxies.items()})


async def proxy_create(request: web.Request) -> web.Response:
    proxy = await _collection(request).create(await _body(request))
    return _json(proxy.to_json(), 201)


async def populate(request: web.Request) -> web.Response:
    try:
        proxies = await _collection(request).populate(await _body(request))
    except ApiError as exc:
        return _json({"error": exc.message, "status": exc.status, "proxies": None}, exc.status)
    return _json({"proxies": [p.to_json() for p in proxies]}, 201)


async def proxy_show(request: web.Request) -> web.Response:
    return _json(_collection(request).get(request.match_info["proxy"]).to_json())


async def proxy_update(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    body = await _body(request)
    if not isinstance(body, dict):
        raise bad_request("expected a JSON object")
    listen = body.get("listen", proxy.listen)
    upstream = body.get("upstream", proxy.upstream)
    enabled = body.get("enabled", proxy.enabled)
    if not isinstance(enabled, bool):
        raise bad_request("enabled must be true or false")
    if not isinstance(listen, str) or not isinstance(upstream, str):
        raise bad_request("listen and upstream must be strings")
    time_limit = parse_time_limit(body.get("time_limit_ms"))  # our addition: a disabled proxy's limit
    await proxy.update(listen, upstream, enabled, time_limit)
    return _json(proxy.to_json())


async def proxy_delete(request: web.Request) -> web.Response:
    await _collection(request).delete(request.match_info["proxy"])
    return web.Response(status=204)


async def reset(request: web.Request) -> web.Response:
    failed = await _collection(request).reset()
    if failed:
        # Toxiproxy stops at the first proxy it cannot start and answers that error. We reset every
        # proxy first, then answer 409 Conflict naming each one that stayed disabled (most often
        # its listen address is taken): a conflict with the machine's state, not a fault of this
        # server, so no 5xx; toxiproxy-python and other clients still see the reset failed.
        reasons = "; ".join(f"{name}: {why}" for name, why in failed)
        raise ApiError(f"reset: could not enable {len(failed)} proxies again ({reasons})", 409)
    return web.Response(status=204)


async def toxic_index(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return _json([t.to_json() for t in proxy.ordered_toxics()])


async def toxic_create(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return _json(proxy.add_toxic(await _body(request)).to_json())


async def toxic_show(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return _json(proxy.get_toxic(request.match_info["toxic"]).to_json())


async def toxic_update(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    entry = await proxy.update_toxic(request.match_info["toxic"], await _body(request))
    return _json(entry.to_json())


async def toxic_delete(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    await proxy.remove_toxic(request.match_info["toxic"])
    return web.Response(status=204)


def make_app(
    collection: ProxyCollection | None = None,
    read_timeout: float = READ_TIMEOUT,
    middlewares: Sequence[Middleware] = (),
) -> web.Application:
    """The API; `middlewares` run before its own (server.serve puts the head deadline there)."""
    app = web.Application(middlewares=[*middlewares, errors])
    app[COLLECTION] = collection or ProxyCollection()
    app[READ_TIMEOUT_KEY] = read_timeout
    app.router.add_post("/reset", reset)
    app.router.add_get("/version", version_show)
    app.router.add_get("/proxies", proxy_index)
    app.router.add_post("/proxies", proxy_create)
    app.router.add_post("/populate", populate)
    app.router.add_get("/proxies/{proxy}", proxy_show)
    app.router.add_post("/proxies/{proxy}", proxy_update)
    app.router.add_patch("/proxies/{proxy}", proxy_update)
    app.router.add_delete("/proxies/{proxy}", proxy_delete)
    app.router.add_get("/proxies/{proxy}/toxics", toxic_index)
    app.router.add_post("/proxies/{proxy}/toxics", toxic_create)
    app.router.add_get("/proxies/{proxy}/toxics/{toxic}", toxic_show)
    app.router.add_post("/proxies/{proxy}/toxics/{toxic}", toxic_update)
    app.router.add_patch("/proxies/{proxy}/toxics/{toxic}", toxic_update)
    app.router.add_delete("/proxies/{proxy}/toxics/{toxic}", toxic_delete)

    async def close_proxies(app: web.Application) -> None:
        await app[COLLECTION].close()

    app.on_shutdown.append(close_proxies)
    return app
