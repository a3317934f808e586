"""The fault server's guard rails: no proxy forwards to the server itself, proxies listen on
loopback unless the server allows more (--allow-listen), a proxy holds a bounded number of
connections (--max-connections-per-proxy), and client input reaches the log escaped."""

from __future__ import annotations

import ipaddress
import os
import socket
import time

import pytest
import requests

from harness.toxiproxy.guard import Guard, reaches
from harness.toxiproxy.launcher import start_embedded
from tests.support import TcpServer, connect, echo, refuses, round_trip, wait_for


def assert_400(response: requests.Response, *words: str, populate: bool = False) -> str:
    assert response.status_code == 400, (response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == ({"error", "status", "proxies"} if populate else {"error", "status"}), body
    assert body["status"] == 400
    for word in words:
        assert word in body["error"], body["error"]
    return body["error"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host_address() -> str:
    """An IPv4 address of this machine that is not loopback (the test is skipped without one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        except OSError:
            pytest.skip("no network interface besides loopback")
        address = probe.getsockname()[0]
    if ipaddress.ip_address(address).is_loopback:
        pytest.skip("no network interface besides loopback")
    return address


def fd_count(server) -> int:
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


def api_answers(server, within: float = 5.0) -> bool:
    started = time.monotonic()
    response = requests.get(f"{server.url}/version", timeout=within)
    return response.status_code == 200 and time.monotonic() - started < within


def closed_at_once(sock: socket.socket, within: float = 5.0) -> bool:
    """True when the server closes the connection (EOF or reset) before sending anything."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


# -- 1. a proxy whose upstream is the server itself ---------------------------------------------

SELF_SPELLINGS = ["127.0.0.1:{port}", "localhost:{port}", "0.0.0.0:{port}", "[::ffff:127.0.0.1]:{port}"]


@pytest.mark.parametrize("spelling", SELF_SPELLINGS)
def test_a_proxy_forwarding_to_its_own_listen_address_is_400(toxi, api, toxiproxy_server, spelling):
    port = free_port()
    response = api(
        "post", "/proxies", json={"name": "loop", "listen": f"127.0.0.1:{port}", "upstream": spelling.format(port=port)}
    )
    assert_400(response, "own listen address", "cannot forward to the server itself")
    assert api("get", "/proxies").json() == {}
    assert refuses(f"127.0.0.1:{port}")  # never listened
    assert api_answers(toxiproxy_server)


def test_a_self_loop_by_update_is_400_and_leaves_the_proxy_and_its_connections_as_they_were(toxi, api, echo_server):
    proxy = toxi.create(upstream=echo_server.address, name="a")  # listen port picked at bind
    before = api("get", "/proxies/a").json()
    with connect(proxy.listen) as sock:
        round_trip(sock)
        for method in ("patch", "post"):
            for body in (
                {"upstream": proxy.listen},
                {"upstream": proxy.listen, "enabled": False},
                {"upstream": "localhost:" + proxy.listen.rsplit(":", 1)[1]},
            ):
                assert_400(api(method, "/proxies/a", json=body), "own listen address")
        assert api("get", "/proxies/a").json() == before
        round_trip(sock)  # the open connection was kept
    # moving the listen address onto the upstream's is the same loop
    assert_400(api("patch", "/proxies/a", json={"listen": echo_server.address, "upstream": echo_server.address}))


def test_an_upstream_that_is_the_api_or_another_proxy_is_400(toxi, api, toxiproxy_server, echo_server):
    assert_400(
        api("post", "/proxies", json={"name": "x", "upstream": f"127.0.0.1:{toxiproxy_server.port}"}),
        "the API's address",
    )
    first = api("post", "/proxies", json={"name": "first", "upstream": echo_server.address}).json()
    assert_400(
        api("post", "/proxies", json={"name": "x", "upstream": first["listen"]}), "listen address of proxy 'first'"
    )
    assert_400(api("post", "/proxies", json={"name": "x", "upstream": first["listen"], "enabled": False}))
    # a disabled proxy keeps its address: forwarding to it would loop once it is enabled again
    assert api("post", "/proxies/first", json={"enabled": False}).status_code == 200
    assert_400(api("post", "/proxies", json={"name": "x", "upstream": first["listen"]}))
    assert api("post", "/proxies", json={"name": "second", "upstream": echo_server.address}).status_code == 201
    assert_400(api("patch", "/proxies/second", json={"upstream": first["listen"]}))
    assert set(api("get", "/proxies").json()) == {"first", "second"}
    assert api("get", "/proxies/second").json()["upstream"] == echo_server.address
    for name in ("first", "second"):
        api("delete", f"/proxies/{name}")


def test_populate_refuses_a_loop_and_creates_nothing(toxi, api, toxiproxy_server, echo_server):
    p1, p2 = free_port(), free_port()
    for body in (
        [
            {"name": "c", "listen": f"127.0.0.1:{p1}", "upstream": f"127.0.0.1:{p2}"},
            {"name": "d", "listen": f"127.0.0.1:{p2}", "upstream": f"127.0.0.1:{p1}"},
        ],
        [
            {"name": "ok", "upstream": echo_server.address},
            {"name": "self", "listen": f"127.0.0.1:{p1}", "upstream": f"localhost:{p1}"},
        ],
        [{"name": "api", "upstream": f"127.0.0.1:{toxiproxy_server.port}"}],
    ):
        response = api("post", "/populate", json=body)
        assert_400(response, "cannot forward to the server itself", populate=True)
        assert response.json()["proxies"] is None
        assert api("get", "/proxies").json() == {}
        assert refuses(f"127.0.0.1:{p1}") and refuses(f"127.0.0.1:{p2}")
    assert api_answers(toxiproxy_server)


def test_a_loop_through_two_servers_is_bounded_by_the_cap(tmp_path):
    """A -> B -> A through two servers (neither can see the other's addresses): one client
    connection used to open connections until the process ran out of descriptors."""
    cap = 32
    log = tmp_path / "a.log"
    a_server = start_embedded(max_connections=cap, log_path=str(log))
    b_server = start_embedded(max_connections=cap)
    clients = []
    try:
        baseline = max(fd_count(a_server), fd_count(b_server))
        a = requests.post(f"{a_server.url}/proxies", json={"name": "a", "upstream": "127.0.0.1:1"}, timeout=10).json()
        b = requests.post(f"{b_server.url}/proxies", json={"name": "b", "upstream": a["listen"]}, timeout=10).json()
        assert requests.post(f"{a_server.url}/proxies/a", json={"upstream": b["listen"]}, timeout=10).status_code == 200
        clients.append(connect(a["listen"]))
        # the loop runs until A holds `cap` connections; the one over it is closed, and that
        # close travels back to the client
        assert closed_at_once(clients[0], within=20)
        peak = 0
        for _ in range(10):  # more clients while A is full: each is closed at once
            clients.append(connect(a["listen"]))
            assert closed_at_once(clients[-1])
            peak = max(peak, fd_count(a_server), fd_count(b_server))
            assert api_answers(a_server) and api_answers(b_server)
        assert peak <= baseline + 2 * cap + 16, (baseline, peak)  # each link: client + upstream
        refusals = wait_for(
            lambda: [line for line in log.read_text().splitlines() if "closed at once" in line],
            what="the refusal logged",
        )
        assert len(refusals) == 1, refusals  # a flood is one line, not eleven
        assert "proxy a:" in refusals[0] and f"holds {cap}" in refusals[0]
        for sock in clients:
            sock.close()
        clients.clear()
        wait_for(
            lambda: max(fd_count(a_server), fd_count(b_server)) <= baseline + 4, what="the loop's connections closed"
        )
        assert api_answers(a_server) and api_answers(b_server)
    finally:
        for sock in clients:
            sock.close()
        a_server.stop()
        b_server.stop()


def test_connections_over_the_cap_are_closed_at_once_and_the_others_keep_working():
    cap = 4
    with TcpServer(echo) as upstream:
        server = start_embedded(max_connections=cap)
        held = []
        try:
            proxy = requests.post(
                f"{server.url}/proxies", json={"name": "p", "upstream": upstream.address}, timeout=10
            ).json()
            held = [connect(proxy["listen"]) for _ in range(cap)]
            for sock in held:
                round_trip(sock)
            with connect(proxy["listen"]) as extra:
                assert closed_at_once(extra)
            for sock in held:  # the ones under the cap are untouched
                round_trip(sock)
            held.pop().close()

            def one_more_works() -> bool:
                with connect(proxy["listen"]) as sock:
                    try:
                        round_trip(sock)
                        return True
                    except OSError:
                        return False

            wait_for(one_more_works, what="a connection accepted again once one closed")
        finally:
            for sock in held:
                sock.close()
            server.stop()


# -- 2. where a proxy may listen ------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]", "this machine's address"])
def test_a_listen_address_beyond_loopback_is_400_naming_the_flag(toxi, api, echo_server, host):
    port = free_port()
    shown = host_address() if host == "this machine's address" else host
    listen = f"{shown}:{port}"
    for enabled in (True, False):
        response = api(
            "post",
            "/proxies",
            json={"name": "w", "listen": listen, "upstream": echo_server.address, "enabled": enabled},
        )
        assert_400(response, listen, "--allow-listen " + shown)
    assert_400(
        api("post", "/populate", json=[{"name": "w", "listen": listen, "upstream": echo_server.address}]),
        "--allow-listen",
        populate=True,
    )
    created = api("post", "/proxies", json={"name": "t", "upstream": echo_server.address}).json()
    assert_400(api("patch", "/proxies/t", json={"listen": listen}), "--allow-listen")
    assert api("get", "/proxies").json() == {"t": created}
    assert refuses(f"127.0.0.1:{port}")
    with connect(created["listen"]) as sock:  # still where it was
        round_trip(sock)
    api("delete", "/proxies/t")


def test_loopback_listen_addresses_are_accepted(toxi, api, echo_server):
    for listen in ("127.0.0.1:0", "localhost:0", "[::1]:0", ":0", "127.0.0.2:0"):
        response = api("post", "/proxies", json={"name": "l", "listen": listen, "upstream": echo_server.address})
        assert response.status_code == 201, (listen, response.text)
        host, port = response.json()["listen"].rsplit(":", 1)
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5) as sock:
            round_trip(sock)
        assert api("delete", "/proxies/l").status_code == 204


def test_allow_listen_lets_proxies_listen_there_and_still_refuses_a_loop_through_it(echo_server):
    address = host_address()
    # disabled proxies: the rules are checked, nothing listens beyond loopback during the test
    server = start_embedded(allow_listen=["0.0.0.0"])
    try:

        def post(body):
            return requests.post(f"{server.url}/proxies", json={**body, "enabled": False}, timeout=10)

        port = free_port()
        assert post({"name": "any", "listen": f"0.0.0.0:{port}", "upstream": echo_server.address}).status_code == 201
        assert post({"name": "host", "listen": f"{address}:0", "upstream": echo_server.address}).status_code == 201
        assert_400(post({"name": "v6", "listen": "[::]:0", "upstream": echo_server.address}), "--allow-listen [::]")
        # every interface: a connection to this machine's own address on that port comes back to it
        assert_400(
            post({"name": "loop", "listen": f"0.0.0.0:{free_port()}", "upstream": f"{address}:{port}"}),
            "listen address of proxy 'any'",
        )
    finally:
        server.stop()


def test_guard_rules_for_the_api_address_and_wildcards():
    """The pure rules, for API addresses a test cannot listen on (they would not be loopback)."""
    ip = ipaddress.ip_address
    guard = Guard()
    guard.set_api([("192.0.2.7", 8474)])
    assert guard.listen_refusal("192.0.2.7:0", [ip("192.0.2.7")]) is None  # the API's own address
    assert "--allow-listen 192.0.2.8" in guard.listen_refusal("x", [ip("192.0.2.8")])
    assert "(192.0.2.7)" in guard.listen_refusal("x", [ip("0.0.0.0")])
    wide = Guard()
    wide.set_api([("0.0.0.0", 8474)])  # an API on every interface is not a licence for proxies
    assert "--allow-listen 0.0.0.0" in wide.listen_refusal("0.0.0.0:1", [ip("0.0.0.0")])
    allowed = Guard(["0.0.0.0", "[fd00::2]"])
    assert allowed.listen_refusal("x", [ip("192.0.2.8"), ip("0.0.0.0"), ip("fd00::2")]) is None
    assert "--allow-listen [::]" in allowed.listen_refusal("x", [ip("::")])
    # where a connection lands
    assert reaches(ip("0.0.0.0"), 5, (ip("127.0.0.1"), 5))  # 0.0.0.0 connects to loopback
    assert reaches(ip("::"), 5, (ip("::1"), 5))
    assert reaches(ip("127.0.0.9"), 5, (ip("0.0.0.0"), 5))
    assert not reaches(ip("127.0.0.1"), 5, (ip("127.0.0.1"), 6))
    assert not reaches(ip("::1"), 5, (ip("0.0.0.0"), 5))  # IPv6 does not reach an IPv4 socket
    assert not reaches(ip("203.0.113.5"), 5, (ip("0.0.0.0"), 5))  # not an address of this machine
    with pytest.raises(ValueError):
        Guard(["example.com"])
    with pytest.raises(ValueError):
        Guard(max_connections=0)


# -- 4. client input in the log -------------------------------------------------------------------


def test_names_and_addresses_reach_the_log_escaped(tmp_path):
    log = tmp_path / "server.log"
    server = start_embedded(log_path=str(log))
    try:
        name, toxic, upstream = "p\x1b[2J\u202e", "t\x1b]0;owned\x07", "h\x1b[31most:1"
        created = requests.post(f"{server.url}/proxies", json={"name": name, "upstream": upstream}, timeout=10)
        assert created.status_code == 201
        path = "/proxies/" + requests.utils.quote(name, safe="")
        assert (
            requests.post(f"{server.url}{path}/toxics", json={"type": "latency", "name": toxic}, timeout=10).status_code
            == 200
        )
        with connect(created.json()["listen"]) as sock:  # the upstream cannot be reached: logged
            assert closed_at_once(sock, within=15)
        assert (
            requests.delete(f"{server.url}{path}/toxics/{requests.utils.quote(toxic, safe='')}", timeout=10).status_code
            == 204
        )
        wait_for(lambda: b"removed" in log.read_bytes() and b"unreachable" in log.read_bytes(), what="the log lines")
        text = log.read_bytes()
        assert b"\x1b" not in text and b"\x07" not in text and "\u202e".encode() not in text
        assert rb"p\x1b[2J\u202e" in text and rb"t\x1b]0;owned\x07" in text and rb"h\x1b[31most:1" in text
    finally:
        server.stop()
