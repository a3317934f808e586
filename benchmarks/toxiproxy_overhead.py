"""Overhead of the embedded fault server: latency added per pass and single-connection throughput.

Direct vs proxied (no toxic), measured in one run, printed as figures and ratios. Peers run in
their own processes so the client's timing is not shared with them.
Toxiproxy's own suite fails when its average added latency per pass exceeds 300 us.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time

import requests

from harness.toxiproxy.launcher import start_embedded

ROUND_TRIPS = 3000
PAYLOAD = b"x" * 64
STREAM_BYTES = 256 * 1024 * 1024

PEER = r"""
import socket, sys
mode = sys.argv[1]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0)); srv.listen(16)
print(srv.getsockname()[1], flush=True)
block = b"\0" * (1 << 20)
while True:
    conn, _ = srv.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if mode == "echo":
        while data := conn.recv(65536):
            conn.sendall(data)
    else:
        total = int(conn.recv(64))
        while total > 0:
            conn.sendall(block[:min(total, len(block))]); total -= len(block)
    conn.close()
"""


def peer(mode: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", PEER, mode], stdout=subprocess.PIPE, text=True)
    return proc, f"127.0.0.1:{proc.stdout.readline().strip()}"


def connect(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def round_trips(address: str) -> list[float]:
    with connect(address) as sock:
        for _ in range(200):  # warm up
            sock.sendall(PAYLOAD)
            sock.recv(1024)
        samples = []
        for _ in range(ROUND_TRIPS):
            start = time.perf_counter()
            sock.sendall(PAYLOAD)
            got = 0
            while got < len(PAYLOAD):
                got += len(sock.recv(1024))
            samples.append(time.perf_counter() - start)
    return samples


def throughput(address: str) -> float:
    with connect(address) as sock:
        sock.sendall(str(STREAM_BYTES).encode().ljust(64))
        buf = bytearray(1 << 20)
        got, start = 0, time.perf_counter()
        while got < STREAM_BYTES:
            n = sock.recv_into(buf)
            if not n:
                break
            got += n
        return got / (time.perf_counter() - start) / 1e6


def pct(samples: list[float], p: float) -> float:
    return sorted(samples)[min(int(len(samples) * p), len(samples) - 1)]


def main() -> None:
    echo_proc, echo_addr = peer("echo")
    src_proc, src_addr = peer("source")
    server = start_embedded()
    try:
        api = server.url
        echo_listen = requests.post(f"{api}/proxies", json={"name": "echo", "upstream": echo_addr}).json()["listen"]
        src_listen = requests.post(f"{api}/proxies", json={"name": "src", "upstream": src_addr}).json()["listen"]

        direct, proxied = round_trips(echo_addr), round_trips(echo_listen)
        us = 1e6
        print(f"echo round trips, {ROUND_TRIPS} each, {len(PAYLOAD)}-byte payload, no toxic")
        for name, p in (("p50", 0.50), ("p99", 0.99)):
            d, x = pct(direct, p) * us, pct(proxied, p) * us
            print(
                f"  {name}: direct {d:7.1f} us   proxied {x:7.1f} us   "
                f"added per pass {(x - d) / 2:6.1f} us   ratio {x / d:5.2f}x"
            )
        mean_added = (statistics.mean(proxied) - statistics.mean(direct)) / 2 * us
        print(f"  mean added latency per pass: {mean_added:.1f} us (Toxiproxy's own limit: 300 us)")

        d_tp, x_tp = throughput(src_addr), throughput(src_listen)
        print(f"single-connection throughput, {STREAM_BYTES >> 20} MiB")
        print(f"  direct {d_tp:8.1f} MB/s   proxied {x_tp:8.1f} MB/s   ratio {x_tp / d_tp:5.2f}x")
    finally:
        server.stop()
        for proc in (echo_proc, src_proc):
            proc.kill()
            proc.wait()
            proc.stdout.close()


if __name__ == "__main__":
    main()
