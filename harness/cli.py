"""The `drill` command."""

from __future__ import annotations

import argparse
import sys


def _toxiproxy_server(args: argparse.Namespace) -> int:
    from .toxiproxy.server import main
    return main(args.host, args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drill", description="Disaster-recovery drill harness.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("toxiproxy-server",
                       help="run the embedded Toxiproxy-compatible fault server in the foreground")
    p.add_argument("--host", default="127.0.0.1", help="address of the HTTP API (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8474, help="port of the HTTP API (default 8474; 0 = free port)")
    p.set_defaults(func=_toxiproxy_server)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
