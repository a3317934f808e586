"""python -m harness.toxiproxy [--host H] [--port P]: the embedded fault server."""

import argparse
import sys

from .server import main

parser = argparse.ArgumentParser(prog="python -m harness.toxiproxy")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8474)
parser.add_argument("--exit-with-parent", action="store_true",
                    help="shut down (healing every fault) when the parent process dies")
args = parser.parse_args()
sys.exit(main(args.host, args.port, args.exit_with_parent))
