"""Runbook hooks of an external target: a command or an HTTP call, with secrets from the environment.

A hook is data from the plan: {"command": [argv...], "timeout_s": 60} or
{"http": {"url": ..., "method": "POST", "token_env": "NAME"}, "timeout_s": 60}.
The command runs without a shell; arguments of the call are passed as DRILL_* environment
variables (command), as a JSON body (HTTP POST/PUT) or as query parameters (HTTP GET). What a
hook answers (the HTTP body, or a command's standard output when it is JSON) is returned: the
reads of an external target (request logs, replacements) are hooks too. Output and tokens never
reach logs or results: a failure reports the exit code or HTTP status and a secret-free excerpt.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

# What scrub() masks (the value becomes ***, the name stays):
USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@]*):[^\s/@]*@")       # scheme://user:PASSWORD@
AUTHORIZATION = re.compile(r"""(?i)(\b(?:proxy-)?authorization["']?\s*[:=]\s*["']?)"""
                           r"""(?:(bearer|basic|token|digest|negotiate)\s+)?[^\s"',;]+""")   # the header, to its end
BEARER = re.compile(r"\b([Bb]earer|BEARER)\s+(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{6,}|\b(Basic)\s+[A-Za-z0-9+/=]{8,}")
SECRETISH = re.compile(r"""(?i)(["']?\b[\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key"""
                       r"""|credential|private[_-]?key|session)[\w-]*["']?\s*[=:]\s*["']?)[^\s&"',;{}\[\]]+""")
SECRET_QUERY = re.compile(r"(?i)^[\w-]*(password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
                          r"signature|sig|credential)[\w-]*$")


class HookError(RuntimeError):
    """A hook failed; the message names the hook and says how, without secrets."""


def scrub(text: str) -> str:
    """text with secret values masked: URI passwords, Authorization headers, Bearer/Basic
    credentials, and password=, secret=, token=, api_key= ... values (also as URL query
    parameters and JSON keys)."""
    text = USERINFO.sub(lambda m: m.group(1) + ":***@", text)
    text = AUTHORIZATION.sub(lambda m: m.group(1) + (m.group(2) + " " if m.group(2) else "") + "***", text)
    text = BEARER.sub(lambda m: (m.group(1) or m.group(2)) + " ***", text)
    return SECRETISH.sub(lambda m: m.group(1) + "***", text)


def public_url(url: str) -> str:
    """The URL for display: no user:password@, secret-looking query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = "&".join(p.split("=", 1)[0] + "=***" if "=" in p and SECRET_QUERY.match(p.split("=", 1)[0]) else p
                     for p in parts.query.split("&")) if parts.query else ""
    return parts._replace(netloc=netloc, query=query, fragment="").geturl()


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

    @staticmethod
    def parse(name: str, data: Any, fail, section: str = "lab.actions") -> "Hook":
        """From plan data (under `section`); `fail(key, message)` builds the plan error."""
        key = f"{section}.{name}"
        if not isinstance(data, dict):
            raise fail(key, "must be a mapping with 'command' (a list) or 'http' ({url, method})")
        timeout = data.get("timeout_s", 60)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise fail(f"{key}.timeout_s", "must be a number of seconds > 0")
        if "command" in data:
            command = data["command"]
            if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
                raise fail(f"{key}.command", "must be a non-empty list of strings (no shell)")
            return Hook(name, command=tuple(command), timeout_s=float(timeout))
        http = data.get("http")
        if not isinstance(http, dict) or not isinstance(http.get("url"), str) \
                or not http["url"].startswith(("http://", "https://")):
            raise fail(key, "needs 'command' (a list) or 'http' with an http(s) 'url'")
        secret = url_secret(http["url"])
        if secret:
            raise fail(f"{key}.http.url", f"a credential must not be written in the plan ({secret} in "
                                          f"{public_url(http['url'])}): put the token in an environment "
                                          f"variable and name it with token_env")
        method = http.get("method", "POST")
        method = method.upper() if isinstance(method, str) else method
        if method not in ("POST", "PUT", "GET"):
            raise fail(f"{key}.http.method", "must be POST, PUT or GET")
        token_env = http.get("token_env")
        if token_env is not None and not isinstance(token_env, str):
            raise fail(f"{key}.http.token_env", "must name an environment variable")
        return Hook(name, url=http["url"], method=method, token_env=token_env, timeout_s=float(timeout))

    def describe(self) -> str:
        return f"{self.name}: " + (" ".join(self.command[:1]) + " ..." if self.command
                                   else f"{self.method} {public_url(self.url or '')}")

    def run(self, **arguments: Any) -> Any:
        """Call the hook; returns its JSON answer (the HTTP body, or a command's standard output),
        or None. Raises HookError."""
        if self.command:
            env = {**os.environ, **{f"DRILL_{k.upper()}": str(v) for k, v in arguments.items()}}
            try:
                result = subprocess.run(self.command, env=env, capture_output=True, text=True,
                                        timeout=self.timeout_s, stdin=subprocess.DEVNULL)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise HookError(f"hook {self.name} ({self.command[0]}) did not run: {type(exc).__name__}") from None
            if result.returncode != 0:
                raise HookError(f"hook {self.name} exited {result.returncode}: "
                                f"{scrub(result.stderr.strip()[-300:])}")
            try:
                return json.loads(result.stdout) if result.stdout.strip() else None
            except ValueError:
                return None
        headers = {}
        if self.token_env:
            token = os.environ.get(self.token_env)
            if not token:
                raise HookError(f"hook {self.name}: environment variable {self.token_env} is not set")
            headers["Authorization"] = f"Bearer {token}"
        try:
            body = {"params": arguments} if self.method == "GET" else {"json": arguments}
            response = requests.request(self.method, self.url, headers=headers, timeout=self.timeout_s, **body)
        except requests.RequestException as exc:
            raise HookError(f"hook {self.name} ({self.method} {public_url(self.url or '')}) failed: "
                            f"{type(exc).__name__}") from None
        if response.status_code >= 400:
            raise HookError(f"hook {self.name} answered {response.status_code}: {scrub(response.text[:300])}")
        try:
            return response.json()
        except ValueError:
            return None
