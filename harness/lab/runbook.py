"""A running embedded lab's runbook endpoint, so it can stand in for a staging deployment.

`drill lab up` serves it on 127.0.0.1; an external-provider plan points its action and read
hooks here, as it would point them at a staging platform's automation. Every call needs the
bearer token written to the lab's secrets file (mode 0600). The lab's own failover controller
still fails over by itself, as a managed database does (also when the event store is blocked:
it fences the primary first), and its auto-scaling group replaces a lost connector worker.

    GET  /state                       roles of the database nodes, failover controller state
    POST /actions/kill-primary        SIGKILL the current primary (postmaster and children)
    POST /actions/rebuild   {node, synchronous}      rebuild a failed primary as a replica
    POST /actions/failback  {to, max_lag, synchronous}  409 when TransactionLag > max_lag
    POST /actions/kill-api-instance {instance}       SIGKILL an availability zone's API instance
    POST /actions/redeploy-api-instance {instance}   start it again; answers once it is live
    POST /actions/degrade-platform {platform, mode, retry_after, requests, for_s}
                                      the platform API answers 429/503/hangs (mode ok: normally);
                                      mode ok on a server that is down is nothing to undo: 200
    POST /actions/kill-platform {platform}           SIGKILL the platform's (site) server
    POST /actions/restart-platform {platform}        start it again
    POST /actions/block-event-store {node, time_limit_s}  EXCLUSIVE lock on the chain head of the
                                      primary (409 when `node` is not the primary any more)
    POST /actions/release-event-store {}             roll that lock back (a no-op once fenced)
    POST /actions/kill-connector-worker {platform}   SIGKILL the platform's worker: {pid}
    POST /actions/replace-connector-worker {platform}  what the auto-scaling group does: {pid}
    GET  /reads/platform-requests?platform=P         {requests: the stand-in's request log}
    GET  /reads/connector-replacements               {replacements: the auto-scaling group's log}
"""

from __future__ import annotations

import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import requests

from ..net import LOOPBACK
from .capabilities import ApiTier, ConnectorWorkers, DatabaseNodes, EventStoreBlock, PlatformStandIns
from .failover import FailbackRefused

if TYPE_CHECKING:
    from .embedded import EmbeddedLab


class RunbookServer:
    def __init__(self, lab: EmbeddedLab, token: str):
        self.lab, self.token = lab, token
        self.lock = threading.Lock()  # one runbook action at a time (reads do not wait)
        self.block: Any = None  # the event store write block it holds
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet; nothing secret is logged either way
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                self.respond(
                    *server.handle("GET", url.path, dict(parse_qsl(url.query)), self.headers.get("Authorization", ""))
                )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    return self.respond(400, {"error": "body must be JSON"})
                if not isinstance(body, dict):
                    return self.respond(400, {"error": "body must be a JSON object"})
                self.respond(*server.handle("POST", self.path, body, self.headers.get("Authorization", "")))

            def respond(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> RunbookServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        block, self.block = self.block, None
        if block is not None:
            block.release()

    def handle(self, method: str, path: str, body: dict, authorization: str) -> tuple[int, dict]:
        if not hmac.compare_digest(authorization, f"Bearer {self.token}"):
            return 401, {"error": "missing or wrong bearer token"}
        try:
            if method == "GET" and path.startswith("/reads/"):
                return self.read(path, body)
            with self.lock:
                return self.act(method, path, body)
        except FailbackRefused as refused:
            return 409, {"error": str(refused), "transaction_lag_s": refused.lag}
        except KeyError as missing:
            return 400, {"error": f"missing or unknown {missing}"}
        except Exception as exc:
            return 500, {"error": f"{type(exc).__name__}: {exc}"}

    def read(self, path: str, query: dict) -> tuple[int, dict]:
        lab = self.lab
        if path == "/reads/platform-requests":
            return 200, {"requests": lab.part(PlatformStandIns).platform_requests(str(query["platform"]))}
        if path == "/reads/connector-replacements":
            return 200, {"replacements": lab.part(ConnectorWorkers).connector_replacements()}
        return 404, {"error": f"no runbook read GET {path}"}

    def act(self, method: str, path: str, body: dict) -> tuple[int, dict]:
        lab, failover = self.lab, self.lab.manager
        if method == "GET" and path == "/state":
            return 200, {
                "primary": lab.part(DatabaseNodes).database_primary(),
                "failover": failover.state,
                "candidate": failover.candidate,
                "roles": {n: node.role for n, node in lab.database.nodes.items()},
            }
        if method != "POST":
            return 404, {"error": f"no runbook action {method} {path}"}
        if path == "/actions/kill-primary":
            node = lab.part(DatabaseNodes).database_primary()
            lab.part(DatabaseNodes).kill_database_node(node)
            return 200, {"killed": node}
        if path == "/actions/rebuild":
            failover.rebuild(str(body["node"]), synchronous=bool(body.get("synchronous", True)))
            return 200, {"rebuilt": body["node"]}
        if path == "/actions/failback":
            lag = failover.failback(
                str(body["to"]),
                max_lag=float(body.get("max_lag", 5.0)),
                synchronous=bool(body.get("synchronous", True)),
            )
            return 200, {"primary": body["to"], "transaction_lag_s": lag}
        if path == "/actions/kill-api-instance":
            lab.part(ApiTier).kill_api_instance(self._instance(body))
            return 200, {"killed": body["instance"]}
        if path == "/actions/redeploy-api-instance":
            lab.part(ApiTier).redeploy_api_instance(self._instance(body))
            return 200, {"redeployed": body["instance"]}
        if path == "/actions/degrade-platform":
            platform = self._platform(body)
            mode = {k: body[k] for k in ("mode", "retry_after", "requests", "for_s") if body.get(k) is not None}
            try:
                lab.part(PlatformStandIns).set_platform_mode(platform, mode)
            except requests.ConnectionError:
                if mode.get("mode") != "ok":
                    raise
                return 200, {"platform": platform, "mode": "ok", "note": "its server is down: nothing to undo"}
            return 200, {"platform": platform, **mode}
        if path == "/actions/kill-platform":
            lab.part(PlatformStandIns).kill_platform(self._platform(body))
            return 200, {"killed": body["platform"]}
        if path == "/actions/restart-platform":
            lab.part(PlatformStandIns).restart_platform(self._platform(body))
            return 200, {"restarted": body["platform"]}
        if path == "/actions/block-event-store":
            primary = lab.part(DatabaseNodes).database_primary()
            if body.get("node") not in (None, primary):
                return 409, {"error": f"{body['node']} is not the primary ({primary} is)"}
            if self.block is not None:
                self.block.release()
            limit = body.get("time_limit_s")
            self.block = lab.part(EventStoreBlock).block_event_store_writes(
                time_limit_s=float(limit) if limit is not None else None
            )
            return 200, {"blocked": primary}
        if path == "/actions/release-event-store":
            block, self.block = self.block, None
            if block is not None:
                block.release()
            return 200, {"released": block is not None}
        if path == "/actions/kill-connector-worker":
            return 200, {"pid": lab.part(ConnectorWorkers).kill_connector_worker(self._platform(body))}
        if path == "/actions/replace-connector-worker":
            return 200, {"pid": lab.part(ConnectorWorkers).replace_connector_worker(self._platform(body))}
        return 404, {"error": f"no runbook action {method} {path}"}

    def _instance(self, body: dict) -> str:
        name = str(body["instance"])
        if name not in self.lab.part(ApiTier).api_instances():
            raise KeyError(f"instance {name!r}; known: {', '.join(self.lab.part(ApiTier).api_instances())}")
        return name

    def _platform(self, body: dict) -> str:
        name = str(body["platform"])
        if name not in self.lab.connector_tier.mocks:
            raise KeyError(f"platform {name!r}; known: {', '.join(self.lab.connector_tier.mocks)}")
        return name
