"""Keep secrets out of logs, responses and the SIEM file: mask conninfo, scrub known secrets."""

from __future__ import annotations

import os

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


def scrub(text: str) -> str:
    """text with every known secret value replaced by '***'."""
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def short_cause(exc: BaseException, limit: int = 200) -> str:
    """A one-line, secret-free description of exc for an API error or a log line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = scrub(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
