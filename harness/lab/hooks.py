"""Runbook hooks of an external target: a command or an HTTP call, with secrets from the environment.

A hook is data from the plan: {"command": [argv...], "timeout_s": 60} or
{"http": {"url": ..., "method": "POST", "token_env": "NAME"}, "timeout_s": 60}.
The command runs without a shell; arguments of the call are passed as DRILL_* environment
variables (command) or as a JSON body (HTTP). Output and tokens never reach logs or results:
a failure reports the exit code or HTTP status and a secret-free excerpt.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any

import requests

SECRETISH = re.compile(r"(password|passwd|secret|token|authorization)\S*\s*[=:]\s*\S+", re.I)


class HookError(RuntimeError):
    """A hook failed; the message names the hook and says how, without secrets."""


def scrub(text: str) -> str:
    return SECRETISH.sub(lambda m: m.group(1) + "=***", text)


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
    def parse(name: str, data: Any, fail) -> "Hook":
        """From plan data; `fail(key, message)` builds the plan error."""
        key = f"lab.actions.{name}"
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
        method = str(http.get("method", "POST")).upper()
        if method not in ("POST", "PUT", "GET"):
            raise fail(f"{key}.http.method", "must be POST, PUT or GET")
        token_env = http.get("token_env")
        if token_env is not None and not isinstance(token_env, str):
            raise fail(f"{key}.http.token_env", "must name an environment variable")
        return Hook(name, url=http["url"], method=method, token_env=token_env, timeout_s=float(timeout))

    def describe(self) -> str:
        return f"{self.name}: " + (" ".join(self.command[:1]) + " ..." if self.command
                                   else f"{self.method} {self.url}")

    def run(self, **arguments: Any) -> Any:
        """Call the hook; returns the HTTP JSON body (or None). Raises HookError."""
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
            return None
        headers = {}
        if self.token_env:
            token = os.environ.get(self.token_env)
            if not token:
                raise HookError(f"hook {self.name}: environment variable {self.token_env} is not set")
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = requests.request(self.method, self.url, json=arguments, headers=headers,
                                        timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise HookError(f"hook {self.name} ({self.method} {self.url}) failed: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise HookError(f"hook {self.name} answered {response.status_code}: {scrub(response.text[:300])}")
        try:
            return response.json()
        except ValueError:
            return None
