"""The lab's TLS moto keeps connections alive (HTTP/1.1), and closes the ones it closes with close_notify.

Without keep-alive every S3 request pgBackRest makes is a new TCP connection and TLS handshake
(about 45 ms each on this machine): a verify of one full backup took 50 s (docs/backups.md).
"""

from __future__ import annotations

import http.client
import re
import shutil
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.lab.moto import MotoServer

pytestmark = pytest.mark.integration

BUCKET = "drill-keepalive"


IDLE_S = 3.0


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    # idle 3 s: long beside a loaded machine's stall between two requests of one connection, short for
    # the idle test's wait
    with MotoServer(tls=True, base_dir=tmp_path_factory.mktemp("moto"), idle_timeout=IDLE_S) as server:
        s3 = server.client("s3")
        # public, so that the tests' plain http.client requests need no signature
        s3.create_bucket(Bucket=BUCKET, ACL="public-read-write")
        s3.put_object(Bucket=BUCKET, Key="small", Body=b"x" * 100, ACL="public-read")
        s3.put_object(Bucket=BUCKET, Key="large", Body=bytes(range(256)) * 8192, ACL="public-read")  # 2 MiB
        yield server


def context(moto: MotoServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(moto.ca_file))


def connection(moto: MotoServer) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("localhost", moto.port, timeout=10, context=context(moto))


def tls_socket(moto: MotoServer) -> ssl.SSLSocket:
    """A raw TLS connection that raises on an EOF without close_notify (no ragged EOFs)."""
    raw = socket.create_connection((moto.host, moto.port), timeout=10)
    return context(moto).wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)


def read_to_close(sock: ssl.SSLSocket) -> bytes:
    """Everything the server sends until it closes; SSLEOFError if it closed without close_notify."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_two_requests_share_one_connection(moto: MotoServer) -> None:
    conn = connection(moto)
    try:
        conn.request("GET", f"/{BUCKET}/small")
        first = conn.getresponse()
        assert first.read() == b"x" * 100
        assert first.getheader("Connection") is None, "the server asked to close after one request"
        sock = conn.sock
        assert sock is not None, "the connection was closed after the first response"
        conn.request("GET", f"/{BUCKET}/large", headers={"Range": "bytes=1000-1999"})
        second = conn.getresponse()
        assert second.status == 206
        assert second.read() == (bytes(range(256)) * 8192)[1000:2000]
        assert conn.sock is sock, "the second request went over a new connection"
    finally:
        conn.close()


def test_a_request_body_left_unread_does_not_become_the_next_request(moto: MotoServer) -> None:
    """A PUT into a bucket that does not exist is answered without its body read; the next request
    on the connection is still parsed from its own first byte."""
    conn = connection(moto)
    try:
        conn.request("PUT", "/drill-no-such-bucket/key", body=b"GET /not-a-request HTTP/1.1\r\n\r\n" * 2000)
        refused = conn.getresponse()
        assert refused.status == 404 and b"NoSuchBucket" in refused.read()
        sock = conn.sock
        assert sock is not None and refused.getheader("Connection") is None
        conn.request("HEAD", f"/{BUCKET}/small")
        head = conn.getresponse()
        head.read()
        assert head.status == 200 and head.getheader("Content-Length") == "100"
        conn.request("GET", f"/{BUCKET}/small")
        assert conn.getresponse().read() == b"x" * 100
        assert conn.sock is sock
    finally:
        conn.close()


def test_a_put_is_stored_whole_and_the_connection_stays_open(moto: MotoServer) -> None:
    body = bytes(range(251)) * 4000  # about 1 MB, several TLS records
    conn = connection(moto)
    try:
        conn.request("PUT", f"/{BUCKET}/put", body=body)
        stored = conn.getresponse()
        stored.read()
        assert stored.status == 200 and stored.getheader("Connection") is None
        sock = conn.sock
        conn.request("GET", f"/{BUCKET}/put")
        assert conn.getresponse().read() == body
        assert conn.sock is sock
    finally:
        conn.close()


def test_a_request_asking_to_close_is_answered_then_closed_with_close_notify(moto: MotoServer) -> None:
    with tls_socket(moto) as sock:
        sock.sendall(f"GET /{BUCKET}/small HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        answer = read_to_close(sock)  # SSLEOFError here: the server closed without close_notify
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"\r\nConnection: close" in head
    assert body == b"x" * 100


def test_an_http10_request_is_answered_then_closed_with_close_notify(moto: MotoServer) -> None:
    with tls_socket(moto) as sock:
        sock.sendall(f"GET /{BUCKET}/small HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
        answer = read_to_close(sock)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"x" * 100)


def test_an_idle_connection_is_closed_with_close_notify_after_the_idle_timeout(moto: MotoServer) -> None:
    with tls_socket(moto) as sock:
        sock.sendall(f"GET /{BUCKET}/small HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        started = time.monotonic()
        answer = read_to_close(sock)  # the response, then nothing until the server's idle timeout
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"x" * 100)
    assert b"Connection: close" not in answer
    assert 0.8 * IDLE_S <= waited < IDLE_S + 10.0, waited


@pytest.mark.skipif(shutil.which("pgbackrest") is None, reason="pgbackrest is not installed")
def test_pgbackrest_reuses_its_connections(tmp_path: Path) -> None:
    """A backup's requests go over a few TLS sessions (pgBackRest's own statistics), not one each."""
    from harness.lab.pgbackrest import Credentials, PgBackRest, lab_repo
    from harness.lab.postgres import PgCluster

    with MotoServer(tls=True, base_dir=tmp_path) as server, PgCluster() as pg:
        repo = lab_repo(server, BUCKET)
        with PgBackRest(pg, repo, None, Credentials.generate()) as tool:
            tool.backup("full")
            log = (tool.log_dir / "main-backup.log").read_text()
    stats = re.findall(r'"http\.request":\{"total":(\d+)\}.*"tls\.session":\{"total":(\d+)\}', log)
    assert stats, log[-2000:]
    requests, sessions = (int(n) for n in stats[-1])
    assert requests >= 10 and sessions * 4 <= requests, (requests, sessions)
