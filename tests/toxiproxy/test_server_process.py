"""The server as a process: the command, its shutdown, its dead-man switch, and how one is chosen."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest
import requests

from harness.toxiproxy.launcher import ToxiproxyUnavailable, api_version, start_embedded, start_toxiproxy
from tests.support import TcpServer, connect, echo, refuses, round_trip, wait_for


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_stopped_server_leaves_no_listener_behind():
    with TcpServer(echo) as upstream:
        server = start_embedded()
        pid = server.process.pid
        proxy = requests.post(f"{server.url}/proxies", json={"name": "e", "upstream": upstream.address}).json()
        conn = connect(proxy["listen"])
        round_trip(conn)
        server.stop()
        assert not alive(pid)
        assert refuses(server.url.split("//")[1])  # the API port
        assert refuses(proxy["listen"])  # the proxy port
        assert conn.recv(1) == b""  # the open connection was closed
        conn.close()


def test_drill_toxiproxy_server_command_runs_in_the_foreground():
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "toxiproxy-server", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening 127.0.0.1:")
        url = "http://" + line.split()[1]
        assert api_version(url).startswith("2.")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_port_in_use_is_one_clear_message_and_exit_2():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "harness.cli", "toxiproxy-server", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--port", "70000"], "--port 70000"),
        (["--port", "-1"], "--port -1"),
        (["--port", "0", "--host", "a" * 70], "a" * 70),  # a label longer than DNS allows
        (["--port", "0", "--host", "no such host"], "no such host"),
        (["--port", "0", "--host", "bad\x1bhost"], "bad\\x1bhost"),  # echoed escaped
        (["--port", "0", "--host", ""], "--host is empty"),
        (["--port", "0", "--allow-listen", "example.com"], "--allow-listen"),
        (["--port", "0", "--max-connections-per-proxy", "0"], "--max-connections-per-proxy 0"),
    ],
)
def test_bad_server_options_are_one_line_and_exit_2(flags, named):
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "toxiproxy-server", *flags], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("toxiproxy-server: "), lines
    assert named in lines[0] and "\x1b" not in lines[0]
    assert result.stdout == ""


def test_drill_toxiproxy_server_takes_allow_listen_and_the_connection_cap(echo_server):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "toxiproxy-server",
            "--port",
            "0",
            "--allow-listen",
            "10.0.0.1,0.0.0.0",
            "--max-connections-per-proxy",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = "http://" + proc.stdout.readline().split()[1]
        wide = requests.post(
            f"{url}/proxies",
            json={"name": "w", "listen": "0.0.0.0:0", "enabled": False, "upstream": echo_server.address},
            timeout=10,
        )
        assert wide.status_code == 201, wide.text
        proxy = requests.post(f"{url}/proxies", json={"name": "p", "upstream": echo_server.address}, timeout=10).json()
        with connect(proxy["listen"]) as first:
            round_trip(first)
            with connect(proxy["listen"]) as second:  # over the cap of 1: closed at once
                second.settimeout(5)
                try:
                    assert second.recv(1) == b""
                except ConnectionResetError:
                    pass
            round_trip(first)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_embedded_server_exits_when_its_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent("""
        import sys, time
        from harness.toxiproxy.launcher import start_embedded
        server = start_embedded()
        print(server.process.pid, server.url, flush=True)
        time.sleep(600)
    """)
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        child_pid, url = parent.stdout.readline().split()
        child_pid = int(child_pid)
        assert api_version(url)
        parent.send_signal(signal.SIGKILL)  # the harness dies without healing anything
        parent.wait()
        wait_for(lambda: not alive(child_pid), timeout=10)
        assert refuses(url.split("//")[1])
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


def test_toxiproxy_url_selects_an_existing_server(toxiproxy_server):
    chosen = start_toxiproxy({"TOXIPROXY_URL": toxiproxy_server.url + "/", "PATH": ""})
    assert chosen.kind == "external" and chosen.url == toxiproxy_server.url
    chosen.stop()  # stopping an external server is a no-op
    assert api_version(toxiproxy_server.url)


def test_unreachable_toxiproxy_url_says_what_to_do():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(ToxiproxyUnavailable, match="unset TOXIPROXY_URL"):
        start_toxiproxy({"TOXIPROXY_URL": url, "PATH": ""})


def test_a_toxiproxy_server_binary_on_path_is_preferred(tmp_path):
    # a stand-in binary with real Toxiproxy's flags (-host, -port) that runs our server
    binary = tmp_path / "toxiproxy-server"
    binary.write_text(
        textwrap.dedent(f"""\
        #!/bin/sh
        while [ $# -gt 0 ]; do case "$1" in -host) host=$2; shift 2;; -port) port=$2; shift 2;; *) shift;; esac; done
        exec {sys.executable} -m harness.toxiproxy --host "$host" --port "$port"
    """)
    )
    binary.chmod(0o755)
    server = start_toxiproxy({"PATH": str(tmp_path)})
    try:
        assert server.kind == "binary" and api_version(server.url)
    finally:
        server.stop()
    assert refuses(f"127.0.0.1:{server.port}")


def test_without_url_or_binary_the_embedded_server_starts():
    server = start_toxiproxy({"PATH": os.devnull})
    try:
        assert server.kind == "embedded" and api_version(server.url)
    finally:
        server.stop()
