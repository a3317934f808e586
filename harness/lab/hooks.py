"""Runbook hooks of an external target: a command or an HTTP call, with secrets from the environment
or a file.

A hook is data from the plan: {"command": [argv...], "timeout_s": 60} or
{"http": {"url": ..., "method": "POST", "token_env": "NAME"}, "timeout_s": 60} (or "token_file":
a file holding the bearer token, read at each call). Every key is checked: an unknown or
misspelled one is refused, naming it, so no key of a validated plan is silently dropped.
The command runs without a shell; arguments of the call are passed as DRILL_* environment
variables (command), as a JSON body (HTTP POST/PUT) or as query parameters (HTTP GET). What a
hook answers (the HTTP body, or a command's standard output when it is JSON) is returned: the
reads of an external target (request logs, replacements) are hooks too. Output and tokens never
reach logs or results: a failure reports the exit code or HTTP status and a secret-free excerpt.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from ..inputs import InputError, KiB, printable, read_capped
from ..redact import scrub

HOOK_KEYS = ("command", "http", "timeout_s")
HTTP_KEYS = ("url", "method", "token_env", "token_file")
MAX_TIMEOUT_S = 86400.0  # a day: a runbook step that takes longer is not waited on
TOKEN_MAX = 64 * KiB  # a token file holds one token
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # fullmatch

SECRET_QUERY = re.compile(
    r"(?i)^[\w-]*(password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
    r"signature|sig|credential)[\w-]*$"
)


# How a hook failed (HookError.kind), and what a run that could not act through it exits with
# (harness.faults.refused): the plan's credentials or keys are exit 2, a target that cannot be
# reached or refuses the action exit 4.
CREDENTIALS = "credentials"  # 401/403, the token's variable unset or its file unreadable
PLAN = "plan"  # 404/405 (the plan's URL names no such action), a program that cannot run
UNREACHABLE = "unreachable"  # no connection, a timeout, 408/429/5xx
REFUSED = "refused"  # another 4xx (409: not in that state), a command that exited non-zero


class HookError(RuntimeError):
    """A hook failed; the message names the hook and says how, without secrets. `kind` is one of
    CREDENTIALS, PLAN, UNREACHABLE, REFUSED; `acted` is False when the hook certainly did nothing
    (it was never called, or it answered 4xx), True when it may have acted (a timeout, a 5xx, a
    command that exited non-zero)."""

    def __init__(self, message: str, kind: str = REFUSED, acted: bool = True):
        super().__init__(message)
        self.kind, self.acted = kind, acted


def _request_failure(exc: requests.RequestException) -> tuple[str, bool]:
    """(kind, acted) of a call that got no answer: no connection made, nothing was asked; a
    timeout or a connection lost once the request was sent, it may have acted."""
    if isinstance(exc, requests.ConnectTimeout):
        return UNREACHABLE, False
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return UNREACHABLE, not isinstance(reason, urllib3.exceptions.NewConnectionError)
    if isinstance(exc, requests.Timeout):
        return UNREACHABLE, True
    return PLAN, False  # a URL or header requests cannot send


def _http_kind(status: int) -> tuple[str, bool]:
    """(kind, acted) of an HTTP error status a hook answered."""
    if status in (401, 403):
        return CREDENTIALS, False
    if status in (404, 405):
        return PLAN, False
    if status in (408, 429):
        return UNREACHABLE, False
    if status >= 500:
        return UNREACHABLE, True
    return REFUSED, False


def public_url(url: str) -> str:
    """The URL for display: no user:password@, secret-looking query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = (
        "&".join(
            p.split("=", 1)[0] + "=***" if "=" in p and SECRET_QUERY.match(p.split("=", 1)[0]) else p
            for p in parts.query.split("&")
        )
        if parts.query
        else ""
    )
    return parts._replace(netloc=netloc, query=query, fragment="").geturl()


def url_problem(url: str) -> str | None:
    """Why `url` cannot be called (no host, a bracket left open, a port out of range, a control
    character), or None."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # ValueError for a port that is not 0-65535
    except ValueError as exc:
        return f"not a URL that can be called ({printable(exc, 80)})"
    if not parts.hostname:
        return "the URL names no host"
    if not url.isprintable() or any(c.isspace() for c in url):
        return "the URL has a space or a control character"
    return None


def _known_keys(data: dict, key: str, known: tuple[str, ...], fail) -> None:
    for k in data:
        if not isinstance(k, str) or k not in known:
            raise fail(f"{key}.{printable(k, 40)}", f"unknown key; known: {', '.join(known)}")


def url_secret(url: str) -> str | None:
    """What of a hook URL is a credential written in the plan, or None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if "@" in parts.netloc:
        return "user:password@"
    for param in parts.query.split("&"):
        name = param.split("=", 1)[0]
        if "=" in param and SECRET_QUERY.match(name):
            return f"the query parameter {name[:40]}="
    return None


@dataclass(frozen=True)
class Hook:
    name: str
    command: tuple[str, ...] | None = None
    url: str | None = None
    method: str = "POST"
    token_env: str | None = None
    timeout_s: float = 60.0
    env: dict[str, str] = field(default_factory=dict)
    token_file: str | None = None

    @staticmethod
    def parse(name: str, data: Any, fail, section: str = "lab.actions") -> Hook:
        """From plan data (under `section`); `fail(key, message)` builds the plan error."""
        key = f"{section}.{name}"
        if not isinstance(data, dict):
            raise fail(key, "must be a mapping with 'command' (a list) or 'http' ({url, method})")
        _known_keys(data, key, HOOK_KEYS, fail)
        timeout = data.get("timeout_s", 60)
        # a bool is not a number; a 400-digit integer, nan, inf or 1e300 is no timeout either
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not (isinstance(timeout, int) or math.isfinite(timeout))
            or not 0 < timeout <= MAX_TIMEOUT_S
        ):
            raise fail(
                f"{key}.timeout_s", f"must be a number of seconds > 0 and at most {MAX_TIMEOUT_S:g} (a day), e.g. 60"
            )
        if "command" in data and "http" in data:
            raise fail(key, "give 'command' or 'http', not both")
        if "command" in data:
            command = data["command"]
            if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
                raise fail(f"{key}.command", "must be a non-empty list of strings (no shell)")
            if not command[0] or any("\0" in a for a in command):
                raise fail(f"{key}.command", "the program is named first, and no argument may hold a NUL character")
            return Hook(name, command=tuple(command), timeout_s=float(timeout))
        http = data.get("http")
        if (
            not isinstance(http, dict)
            or not isinstance(http.get("url"), str)
            or not http["url"].startswith(("http://", "https://"))
        ):
            raise fail(key, "needs 'command' (a list) or 'http' with an http(s) 'url'")
        _known_keys(http, f"{key}.http", HTTP_KEYS, fail)
        url = http["url"]
        problem = url_problem(url)
        if problem:
            raise fail(f"{key}.http.url", f"{problem}; give the http(s) URL of the runbook endpoint")
        secret = url_secret(url)
        if secret:
            raise fail(
                f"{key}.http.url",
                f"a credential must not be written in the plan ({secret} in "
                f"{public_url(url)}): put the token in an environment "
                f"variable or a file and name it with token_env or token_file",
            )
        method = http.get("method", "POST")
        method = method.upper() if isinstance(method, str) else method
        if method not in ("POST", "PUT", "GET"):
            raise fail(f"{key}.http.method", "must be POST, PUT or GET")
        token_env, token_file = http.get("token_env"), http.get("token_file")
        if token_env is not None and token_file is not None:
            raise fail(f"{key}.http", "give token_env or token_file, not both")
        if "token_env" in http and not (isinstance(token_env, str) and ENV_NAME.fullmatch(token_env)):
            raise fail(
                f"{key}.http.token_env",
                "must name an environment variable (letters, digits and '_'), "
                "e.g. OPS_TOKEN; leave the key out for a hook without a token",
            )
        if "token_file" in http and not (isinstance(token_file, str) and token_file.strip() and "\0" not in token_file):
            raise fail(
                f"{key}.http.token_file",
                "must name the file that holds the bearer token, e.g. "
                "/run/secrets/ops-token; leave the key out for a hook without a token",
            )
        return Hook(name, url=url, method=method, token_env=token_env, token_file=token_file, timeout_s=float(timeout))

    def _token(self) -> str | None:
        """The bearer token from the variable or the file the plan names (the file read at each
        call, as a rotated secret is); HookError names what is missing, never the value."""
        if self.token_env:
            token = os.environ.get(self.token_env)
            if not token:
                raise HookError(
                    f"hook {self.name}: environment variable {self.token_env} is not set", CREDENTIALS, acted=False
                )
            return token
        if self.token_file:
            where = f"hook {self.name}: token_file {printable(self.token_file, 200)}"
            try:
                token = read_capped(self.token_file, TOKEN_MAX, "the token file").decode("utf-8").strip()
            except FileNotFoundError:
                raise HookError(f"{where}: no such file", CREDENTIALS, acted=False) from None
            except (InputError, OSError):
                raise HookError(
                    f"{where}: cannot be read as a file of at most {TOKEN_MAX // KiB} KiB", CREDENTIALS, acted=False
                ) from None
            except UnicodeDecodeError:
                raise HookError(f"{where}: not UTF-8 text", CREDENTIALS, acted=False) from None
            if not token or any(c in token for c in "\r\n\0"):
                raise HookError(f"{where}: must hold one line, the token", CREDENTIALS, acted=False)
            return token
        return None

    def describe(self) -> str:
        return f"{self.name}: " + (
            " ".join(self.command[:1]) + " ..." if self.command else f"{self.method} {public_url(self.url or '')}"
        )

    def run(self, **arguments: Any) -> Any:
        """Call the hook; returns its JSON answer (the HTTP body, or a command's standard output),
        or None. Raises HookError."""
        if self.command:
            env = {**os.environ, **{f"DRILL_{k.upper()}": str(v) for k, v in arguments.items()}}
            try:
                result = subprocess.run(
                    self.command,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=self.timeout_s,
                    stdin=subprocess.DEVNULL,
                )
            except OSError as exc:  # no such program, not executable: the plan names it
                raise HookError(
                    f"hook {self.name} ({self.command[0]}) did not run: {type(exc).__name__}", PLAN, acted=False
                ) from None
            except subprocess.TimeoutExpired:
                raise HookError(
                    f"hook {self.name} ({self.command[0]}) did not finish within {self.timeout_s:g} s", UNREACHABLE
                ) from None
            if result.returncode != 0:
                raise HookError(
                    f"hook {self.name} exited {result.returncode}: {scrub(result.stderr.strip()[-300:])}", REFUSED
                )
            try:
                return json.loads(result.stdout) if result.stdout.strip() else None
            except ValueError:
                return None
        headers = {}
        token = self._token()
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            url = self.url or ""  # a hook is a command or a URL: here, a URL
            if self.method == "GET":
                response = requests.request(self.method, url, headers=headers, timeout=self.timeout_s, params=arguments)
            else:
                response = requests.request(self.method, url, headers=headers, timeout=self.timeout_s, json=arguments)
        except requests.RequestException as exc:
            raise HookError(
                f"hook {self.name} ({self.method} {public_url(self.url or '')}) failed: {type(exc).__name__}",
                *_request_failure(exc),
            ) from None
        if response.status_code >= 400:
            raise HookError(
                f"hook {self.name} answered {response.status_code}: {scrub(response.text[:300])}",
                *_http_kind(response.status_code),
            )
        try:
            return response.json()
        except ValueError:
            return None
