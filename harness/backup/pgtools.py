"""PostgreSQL client tools (pg_dump, pg_restore) run without a password on their command line.

Contract: ``run_tool(pg_bin, "pg_dump", args, dsn)`` splits the password out of the conninfo
(``split_password``), passes the rest as ``--dbname`` and the password as PGPASSWORD in the
tool's environment (which holds no other inherited PG* variable), and raises ToolError with the
tail of its stderr (the password, should it appear, replaced by ***) on a non-zero exit.
``cp_clock(conn)`` reads the Control Plane's clock: ``extract(epoch FROM cp_now())`` when the
function cp_now() exists, else the database's now().
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import psycopg


class ToolError(RuntimeError):
    """A PostgreSQL client tool failed; the message holds its stderr tail (never a password)."""


def split_password(dsn: str) -> tuple[str, str | None]:
    """(conninfo without its password, the password or None)."""
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    password = params.pop("password", None)
    return psycopg.conninfo.make_conninfo("", **params), (str(password) if password is not None else None)


def with_dbname(dsn: str, dbname: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return psycopg.conninfo.make_conninfo("", **params)


def redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def tool_env(password: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    if password is not None:
        env["PGPASSWORD"] = password
    return env


def run_tool(
    pg_bin: Path, tool: str, args: list[str], dsn: str, timeout: float = 3600.0
) -> subprocess.CompletedProcess:
    """Run ``pg_bin/tool args --no-password --dbname <dsn without its password>``."""
    conninfo, password = split_password(dsn)
    cmd = [str(Path(pg_bin) / tool), *args, "--no-password", "--dbname", conninfo]
    with subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=tool_env(password),
        start_new_session=True,
    ) as child:
        try:
            stdout, stderr = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise ToolError(f"{tool} did not finish within {timeout:.0f} s") from None
    if child.returncode != 0:
        tail = "\n".join(redact(stderr, password).strip().splitlines()[-15:])
        raise ToolError(f"{tool} failed (exit {child.returncode}): {tail or 'no message'}")
    return subprocess.CompletedProcess(cmd, child.returncode, stdout, stderr)


def value_of(cursor: psycopg.Cursor[Any]) -> Any:
    """The first column of the one row a query of a value returns (an error if it returned none)."""
    row = cursor.fetchone()
    if row is None:
        raise psycopg.DataError("the query returned no row")
    return row[0]


def cp_clock(conn: psycopg.Connection[Any]) -> float:
    """The Control Plane's clock in epoch seconds (cp_now() if it exists, else now())."""
    if value_of(conn.execute("SELECT to_regprocedure('cp_now()') IS NOT NULL")):
        return float(value_of(conn.execute("SELECT extract(epoch FROM cp_now())::float8")))
    return float(value_of(conn.execute("SELECT extract(epoch FROM now())::float8")))


def cp_clock_of(dsn: str) -> float:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        return cp_clock(conn)
