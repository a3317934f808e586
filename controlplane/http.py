"""JSON helpers of the HTTP API: answers, 400s, body parsing, and a gate's refusal."""

from __future__ import annotations

import datetime as dt
import functools
import json

from aiohttp import web

from controlplane import gates


class Refused(Exception):
    """Raised inside a transaction to roll it back and answer with a gate's refusal."""

    def __init__(self, refusal: gates.Refusal) -> None:
        super().__init__(refusal.error)
        self.refusal = refusal


def _default(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


_dumps = functools.partial(json.dumps, default=_default)


def reply(body: dict, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=_dumps)


def bad_request(error: str, **extra) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=_dumps({"error": error, **extra}), content_type="application/json")


async def json_body(request: web.Request) -> dict:
    """The request body as a JSON object, else 400."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise bad_request("body must be a JSON object") from None
    if not isinstance(body, dict):
        raise bad_request("body must be a JSON object")
    return body


def string_field(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"field {name!r} is required and must be a non-empty string", field=name)
    return value
