"""A running `drill lab up` lab seen from another process, as an external target: its endpoints
and secret files make the `lab:` mapping of a plan of provider external (nothing is started)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import reaper


def attached_config(endpoints: dict[str, Any], password_file: str | Path) -> dict[str, Any]:
    """The `lab:` mapping for a lab with these endpoints (as `drill lab up` prints them) whose
    database password is in `password_file`: no action hooks, nothing destructive."""

    def node(address: str) -> dict:
        host, port = address.split(" ")[0].rsplit(":", 1)
        return {
            "dsn": f"host={host} port={port} dbname=controlplane user=controlplane",
            "password_file": str(password_file),
        }

    database = endpoints["database"]
    return {
        "provider": "external",
        "replication": "sync",
        "api_url": endpoints["api"],
        "toxiproxy_url": endpoints["toxiproxy"],
        "database": {
            "failover_target": "pg-b",
            "replication_proxy": "repl-pg-b",
            # each node's replication link while it is a replica (the failback drill)
            "replication_proxies": {"pg-a": "repl-pg-a", "pg-b": "repl-pg-b"},
            "nodes": {"pg-a": node(database["pg-a"]), "pg-b": node(database["pg-b"])},
        },
        # the lab's own proxies under their own names (the scenarios' names for them)
        "proxies": {
            "evidence_store": "s3",
            "evidence_replica": "s3-replica",
            "platforms": {p: f"platform-{p}" for p in endpoints.get("platforms") or ()},
        },
        "siem_file": endpoints.get("siem"),
        "allow_destructive": False,
    }


def running_lab_config() -> dict[str, Any]:
    """The one running `drill lab up` lab of this user's registry; ValueError says why not."""
    found = []
    for path in sorted(reaper.state_dir().glob("*.lab.json")):
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        password = reaper.state_dir() / f"{manifest.get('lab_id')}.secret.pg-password"
        if password.exists():
            found.append((manifest, password))
    if len(found) != 1:
        raise ValueError(
            f"{len(found)} labs started with `drill lab up` are running (in {reaper.state_dir()}); "
            f"start one, or name the target with --plan (a plan of provider external)"
        )
    manifest, password = found[0]
    return attached_config(manifest["endpoints"], password)
