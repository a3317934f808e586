"""python -m harness.toxiproxy [--host H] [--port P] [...]: the embedded fault server."""

import argparse
import sys

from .api import READ_TIMEOUT
from .guard import MAX_CONNECTIONS
from .server import main, split_hosts

parser = argparse.ArgumentParser(prog="python -m harness.toxiproxy")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8474)
parser.add_argument(
    "--exit-with-parent", action="store_true", help="shut down (healing every fault) when the parent process dies"
)
parser.add_argument(
    "--read-timeout",
    type=float,
    default=READ_TIMEOUT,
    metavar="SECONDS",
    help="close an API connection that sends no whole request head within this many "
    f"seconds, and answer 408 to a body as slow (default {READ_TIMEOUT:g})",
)
parser.add_argument(
    "--allow-listen",
    action="append",
    metavar="HOST[,HOST]",
    help="addresses proxies may listen on besides loopback and the API's own "
    "(0.0.0.0 or :: for every interface); repeatable",
)
parser.add_argument(
    "--max-connections-per-proxy",
    type=int,
    default=MAX_CONNECTIONS,
    metavar="N",
    help=f"connections one proxy holds at most; more are closed at once (default {MAX_CONNECTIONS})",
)
args = parser.parse_args()
if not args.read_timeout > 0:
    parser.error("--read-timeout must be > 0")
sys.exit(
    main(
        args.host,
        args.port,
        args.exit_with_parent,
        args.read_timeout,
        split_hosts(args.allow_listen),
        args.max_connections_per_proxy,
    )
)
