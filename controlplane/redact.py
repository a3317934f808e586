"""Keep secrets out of logs, responses and the SIEM file: mask conninfo, scrub known secrets."""

from __future__ import annotations

import os
import re

import psycopg

# Environment variables whose values must never be printed.
SECRET_ENV = ("PGPASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def masked_conninfo(conninfo: str) -> str:
    """The conninfo without its password (for logs): 'host=... port=... dbname=... user=...'."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "<unparsable conninfo>"
    params.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in params.items() if v is not None)


def has_password(conninfo: str) -> bool:
    """True when the conninfo carries a password (which belongs in PGPASSWORD instead)."""
    try:
        return bool(psycopg.conninfo.conninfo_to_dict(conninfo).get("password"))
    except psycopg.ProgrammingError:
        return False


# Secrets by their shape, whatever their value (the name stays, the value becomes ***)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@]*):[^\s/@]*@")  # scheme://user:PASSWORD@
_AUTHORIZATION = re.compile(
    r"""(?i)(\b(?:proxy-)?authorization["']?\s*[:=]\s*["']?)"""
    r"""(?:(bearer|basic|token|digest|negotiate)\s+)?[^\s"',;]+"""
)
_BEARER = re.compile(
    r"\b([Bb]earer|BEARER)\s+(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{6,}"
    r"|\b(Basic)\s+[A-Za-z0-9+/=]{8,}"
)
_SECRET_VALUE = re.compile(
    r"""(?i)(["']?\b[\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey"""
    r"""|access[_-]?key|credential|private[_-]?key|session)[\w-]*["']?\s*[=:]\s*["']?)"""
    r"""[^\s&"',;{}\[\]]+"""
)


def scrub(text: str) -> str:
    """text with every known secret value replaced by '***' (the values of SECRET_ENV), and
    secrets by their shape: a URI's user:PASSWORD@, an Authorization header, Bearer and Basic
    credentials, password=/secret=/token=/api_key= values (key/value, query parameter or JSON)."""
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    text = _USERINFO.sub(lambda m: m.group(1) + ":***@", text)
    text = _AUTHORIZATION.sub(lambda m: m.group(1) + (m.group(2) + " " if m.group(2) else "") + "***", text)
    text = _BEARER.sub(lambda m: (m.group(1) or m.group(2)) + " ***", text)
    return _SECRET_VALUE.sub(lambda m: m.group(1) + "***", text)


def short_cause(exc: BaseException, limit: int = 200) -> str:
    """A one-line, secret-free description of exc for an API error or a log line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = scrub(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
