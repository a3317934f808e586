"""A running embedded lab's runbook endpoint, so it can stand in for a staging deployment.

`drill lab up` serves it on 127.0.0.1; an external-provider plan points its action hooks here,
as it would point them at a staging platform's automation. Every call needs the bearer token
written to the lab's secrets file (mode 0600). The lab's own failover controller still fails
over by itself, as a managed database does.

    GET  /state                       roles of the database nodes, failover controller state
    POST /actions/kill-primary        SIGKILL the current primary (postmaster and children)
    POST /actions/rebuild   {node, synchronous}      rebuild a failed primary as a replica
    POST /actions/failback  {to, max_lag, synchronous}  409 when TransactionLag > max_lag
"""

from __future__ import annotations

import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..net import LOOPBACK
from .failover import FailbackRefused


class RunbookServer:
    def __init__(self, lab: Any, token: str):
        self.lab, self.token = lab, token
        self.lock = threading.Lock()          # one runbook action at a time
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:   # quiet; nothing secret is logged either way
                pass

            def do_GET(self) -> None:
                self.respond(*server.handle("GET", self.path, {}, self.headers.get("Authorization", "")))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    return self.respond(400, {"error": "body must be JSON"})
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

    def start(self) -> "RunbookServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, method: str, path: str, body: dict, authorization: str) -> tuple[int, dict]:
        if not hmac.compare_digest(authorization, f"Bearer {self.token}"):
            return 401, {"error": "missing or wrong bearer token"}
        lab, failover = self.lab, self.lab.failover
        try:
            with self.lock:
                if method == "GET" and path == "/state":
                    return 200, {"primary": lab.database_primary(), "failover": failover.state,
                                 "candidate": failover.candidate,
                                 "roles": {n: node.role for n, node in lab.cluster.nodes.items()}}
                if method == "POST" and path == "/actions/kill-primary":
                    node = lab.database_primary()
                    lab.kill_database_node(node)
                    return 200, {"killed": node}
                if method == "POST" and path == "/actions/rebuild":
                    failover.rebuild(str(body["node"]), synchronous=bool(body.get("synchronous", True)))
                    return 200, {"rebuilt": body["node"]}
                if method == "POST" and path == "/actions/failback":
                    lag = failover.failback(str(body["to"]), max_lag=float(body.get("max_lag", 5.0)),
                                            synchronous=bool(body.get("synchronous", True)))
                    return 200, {"primary": body["to"], "transaction_lag_s": lag}
        except FailbackRefused as refused:
            return 409, {"error": str(refused), "transaction_lag_s": refused.lag}
        except KeyError as missing:
            return 400, {"error": f"missing field {missing}"}
        except Exception as exc:
            return 500, {"error": f"{type(exc).__name__}: {exc}"}
        return 404, {"error": f"no runbook action {method} {path}"}
