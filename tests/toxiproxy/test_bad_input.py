"""Bad and hostile input to the embedded server's API: always a 4xx with Toxiproxy's error shape,
never a 5xx, no partial state, no listener outside the API, no connection held forever."""

from __future__ import annotations

import gzip
import json
import random
import socket
import time
from urllib.parse import quote

import pytest
import requests

from harness.toxiproxy.launcher import start_embedded
from harness.toxiproxy.proxy import MAX_TIME_LIMIT_MS
from tests.support import connect, read_all, refuses, round_trip, wait_for

INT64_MAX = 2**63 - 1
JSON = {"Content-Type": "application/json"}


def raw_post(api, path: str, text: str | bytes, **kwargs) -> requests.Response:
    data = text.encode() if isinstance(text, str) else text
    return api("post", path, data=data, headers={**JSON, **kwargs.pop("headers", {})}, **kwargs)


def assert_error(response: requests.Response, status: int = 400) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == {"error", "status"} and body["status"] == status, body
    assert isinstance(body["error"], str) and body["error"]
    return body


def assert_serving(api) -> dict:
    assert api("get", "/version").status_code == 200
    listing = api("get", "/proxies")
    assert listing.status_code == 200, listing.text[:300]
    return listing.json()


def accepts(address: str) -> bool:
    try:
        connect(address, timeout=1.0).close()
        return True
    except OSError:
        return False


# -- 1. a time limit too big for a timer ------------------------------------------------------

# raw JSON: 1e309 is read as infinity, NaN and Infinity are literals Python's json accepts
HUGE_LIMITS = ["1e309", "1" + "0" * 400, "NaN", "Infinity", "-Infinity", "1e300", str(MAX_TIME_LIMIT_MS + 1)]


@pytest.mark.parametrize("limit", HUGE_LIMITS)
def test_time_limit_beyond_a_timer_is_400_and_adds_no_toxic(toxi, api, echo_server, limit):
    proxy = toxi.create(upstream=echo_server.address, name="t")
    response = raw_post(
        api, "/proxies/t/toxics", '{"type": "timeout", "attributes": {"timeout": 0}, "time_limit_ms": %s}' % limit
    )
    assert_error(response)
    assert api("get", "/proxies/t/toxics").json() == []
    assert assert_serving(api)["t"]["toxics"] == []
    with connect(proxy.listen) as sock:  # no toxic live without its timer
        round_trip(sock)
    longest = api("post", "/proxies/t/toxics", json={"type": "latency", "time_limit_ms": MAX_TIME_LIMIT_MS})
    assert longest.status_code == 200 and longest.json()["time_limit_ms"] == MAX_TIME_LIMIT_MS
    assert assert_serving(api)["t"]["toxics"][0]["expires_at"] > time.time()


@pytest.mark.parametrize("limit", HUGE_LIMITS)
def test_time_limit_beyond_a_timer_on_update_is_400_and_changes_nothing(toxi, api, echo_server, limit):
    proxy = toxi.create(upstream=echo_server.address, name="t")
    created = api("post", "/proxies/t/toxics", json={"type": "latency", "attributes": {"latency": 1}})
    before = api("get", "/proxies/t").json()
    assert_error(raw_post(api, "/proxies/t/toxics/latency_downstream", '{"time_limit_ms": %s}' % limit))
    assert_error(raw_post(api, "/proxies/t", '{"enabled": false, "time_limit_ms": %s}' % limit))
    assert api("get", "/proxies/t").json() == before
    assert api("get", "/proxies/t/toxics/latency_downstream").json() == created.json()
    assert assert_serving(api)["t"]["enabled"] is True
    with connect(proxy.listen) as sock:
        round_trip(sock)


# -- 2. concurrent creates of one name ---------------------------------------------------------


def distinct_free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def burst(server, requests_: list[tuple[str, str, dict]]) -> list[int]:
    """Statuses of requests sent all at once: every connection opened first, then every request
    written, so the server reads them in one go and their handlers all start before any ends."""
    socks = [connect(f"{server.host}:{server.port}", timeout=20) for _ in requests_]
    try:
        for sock, (method, path, body) in zip(socks, requests_, strict=True):
            data = json.dumps(body).encode()
            sock.sendall(
                b"%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
                b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (method.encode(), path.encode(), len(data), data)
            )
        return [int(read_all(sock)[0].split(b" ", 2)[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def test_concurrent_creates_of_one_name_make_one_proxy(toxi, api, echo_server, toxiproxy_server):
    n = 80
    listens = [f"127.0.0.1:{port}" for port in distinct_free_ports(n)]  # each asks for its own port
    statuses = burst(
        toxiproxy_server,
        [
            ("POST", "/proxies", {"name": "race", "listen": listen, "upstream": echo_server.address})
            for listen in listens
        ],
    )
    assert sorted(statuses) == [201] + [409] * (n - 1)
    winner = listens[statuses.index(201)]
    proxies = assert_serving(api)
    assert list(proxies) == ["race"] and proxies["race"]["listen"] == winner
    losers = [address for address in listens if address != winner]
    assert [a for a in losers if not refuses(a)] == []  # no listener outside the API
    assert api("delete", "/proxies/race").status_code == 204
    assert refuses(winner)
    # a create whose start fails releases the name it reserved
    first = toxi.create(upstream=echo_server.address, name="first")
    assert_error(
        api("post", "/proxies", json={"name": "race", "listen": first.listen, "upstream": echo_server.address}), 409
    )
    assert api("post", "/proxies", json={"name": "race", "upstream": echo_server.address}).status_code == 201


def test_concurrent_moves_of_one_proxy_leave_one_listener(toxi, api, echo_server, toxiproxy_server):
    proxy = toxi.create(upstream=echo_server.address, name="p")
    listens = [f"127.0.0.1:{port}" for port in distinct_free_ports(40)]
    statuses = burst(
        toxiproxy_server, [("POST", "/proxies/p", {"listen": listen, "enabled": True}) for listen in listens]
    )
    assert set(statuses) == {200}
    final = api("get", "/proxies/p").json()["listen"]
    assert final in listens and refuses(proxy.listen)
    assert [a for a in listens if a != final and not refuses(a)] == []  # each move closed the last
    with connect(final) as sock:
        round_trip(sock)
    moves = [("POST", "/proxies/p", {"listen": listen}) for listen in listens[:20]]
    statuses = burst(toxiproxy_server, moves + [("DELETE", "/proxies/p", {})] + moves)
    assert 204 in statuses and set(statuses) <= {200, 204, 404, 409}
    assert api("get", "/proxies").json() == {}
    assert [a for a in listens if not refuses(a)] == []  # deleted: nothing of it listens


# -- 3. reset goes on past a proxy it cannot enable ---------------------------------------------


def test_reset_resets_every_proxy_and_names_the_one_it_could_not_enable(toxi, api, echo_server):
    blocked = toxi.create(upstream=echo_server.address, name="a-blocked")  # first in reset order
    blocked.add_toxic(type="latency", attributes={"latency": 1000})
    others = []
    for name in ("b", "c"):
        proxy = toxi.create(upstream=echo_server.address, name=name)
        proxy.add_toxic(type="timeout", attributes={"timeout": 0})
        others.append(proxy)
    others[1].disable()
    blocked.disable()
    squatter = socket.socket()
    host, port = blocked.listen.rsplit(":", 1)
    squatter.bind((host, int(port)))  # its address is taken while it is down
    squatter.listen()
    try:
        response = api("post", "/reset")
        body = assert_error(response, 409)
        assert "a-blocked" in body["error"] and "in use" in body["error"]
        assert "b:" not in body["error"] and "c:" not in body["error"]
        state = assert_serving(api)
        assert all(p["toxics"] == [] for p in state.values())  # every toxic gone
        assert state["b"]["enabled"] and state["c"]["enabled"] and not state["a-blocked"]["enabled"]
        for proxy in others:
            with connect(proxy.listen) as sock:
                assert round_trip(sock) < 0.5
    finally:
        squatter.close()
    assert api("post", "/reset").status_code == 204  # free again: a reset heals it
    with connect(blocked.listen) as sock:
        assert round_trip(sock) < 0.5


# -- 4. bodies and numbers that used to crash a handler ---------------------------------------

BAD_BODIES = {
    "nested arrays": "[" * 20000,
    "nested objects": '{"a":' * 20000,
    "nested closed": "[" * 5000 + "]" * 5000,
    "NaN": "NaN",
    "Infinity in object": '{"name": "x", "upstream": Infinity}',
    "1e309": '{"name": "x", "upstream": "127.0.0.1:1", "enabled": 1e309}',
    "5000-digit int": '{"toxicity": ' + "9" * 5000 + "}",
    "not utf-8": b'{"name": "\xff\xfe"}',
    "empty": "",
    "truncated": '{"name": "x", ',
}


@pytest.mark.parametrize(
    "path", ["/proxies", "/populate", "/proxies/t", "/proxies/t/toxics", "/proxies/t/toxics/latency_downstream"]
)
@pytest.mark.parametrize("kind", list(BAD_BODIES))
def test_bad_bodies_are_400_with_the_error_shape(toxi, api, echo_server, path, kind):
    toxi.create(upstream=echo_server.address, name="t").add_toxic(type="latency", attributes={"latency": 1})
    before = api("get", "/proxies").json()
    response = raw_post(api, path, BAD_BODIES[kind])
    if path == "/populate":  # Toxiproxy's populate error also carries "proxies": null
        assert response.status_code == 400 and response.json()["status"] == 400
    else:
        assert_error(response)
    assert assert_serving(api) == before


def test_a_body_that_is_not_the_gzip_it_claims_is_400(toxi, api, echo_server):
    response = raw_post(api, "/proxies", b"not gzip", headers={"Content-Encoding": "gzip"})
    assert_error(response)
    good = gzip.compress(json.dumps({"name": "z", "upstream": echo_server.address}).encode())
    assert raw_post(api, "/proxies", good, headers={"Content-Encoding": "gzip"}).status_code == 201


def test_a_body_over_the_size_limit_is_413_with_the_error_shape(toxi, api):
    body = assert_error(raw_post(api, "/proxies", b'{"name": "' + b"x" * 2 * 1024**2 + b'"}'), 413)
    assert "too large" in body["error"]
    assert assert_serving(api) == {}


@pytest.mark.parametrize(
    "value",
    [
        "1" + "0" * 400,
        "1e309",
        "NaN",
        "Infinity",
        "-Infinity",
        str(INT64_MAX + 1),
        "1e19",
        "-1",
        "1.5",
        '"5"',
        "true",
        "[]",
    ],
)
@pytest.mark.parametrize(
    "type_, attribute",
    [
        ("latency", "latency"),
        ("latency", "jitter"),
        ("bandwidth", "rate"),
        ("slow_close", "delay"),
        ("timeout", "timeout"),
        ("reset_peer", "timeout"),
        ("slicer", "average_size"),
        ("slicer", "delay"),
        ("limit_data", "bytes"),
    ],
)
def test_attribute_out_of_int64_or_not_a_whole_number_is_400(toxi, api, echo_server, type_, attribute, value):
    toxi.create(upstream=echo_server.address, name="t")
    body = '{"type": "%s", "attributes": {"%s": %s}}' % (type_, attribute, value)
    assert_error(raw_post(api, "/proxies/t/toxics", body))
    assert api("get", "/proxies/t/toxics").json() == []
    api("post", "/proxies/t/toxics", json={"type": type_, "name": "ok"})
    assert_error(raw_post(api, "/proxies/t/toxics/ok", '{"attributes": {"%s": %s}}' % (attribute, value)))
    assert api("get", "/proxies/t/toxics/ok").json()["attributes"][attribute] == 0
    assert_serving(api)


def test_absurd_bandwidth_rate_is_400_and_int64_attributes_keep_connections_working(toxi, api, echo_server):
    # 1e306 KB/s is no int64, so it is refused (as Toxiproxy's decoder would); it used to be
    # taken, and its arithmetic overflowed and closed every connection through the proxy
    proxy = toxi.create(upstream=echo_server.address, name="t")
    assert_error(raw_post(api, "/proxies/t/toxics", '{"type": "bandwidth", "attributes": {"rate": 1e306}}'))
    largest = api("post", "/proxies/t/toxics", json={"type": "bandwidth", "attributes": {"rate": INT64_MAX}})
    assert largest.status_code == 200 and largest.json()["attributes"]["rate"] == INT64_MAX
    with connect(proxy.listen) as sock:
        for _ in range(3):
            assert round_trip(sock, b"y" * 100_000) < 2.0
    api("delete", "/proxies/t/toxics/bandwidth_downstream")
    for type_, attributes in [
        ("slicer", {"average_size": INT64_MAX, "size_variation": INT64_MAX - 1}),
        ("latency", {"latency": 0, "jitter": INT64_MAX}),
        ("limit_data", {"bytes": INT64_MAX}),
    ]:
        response = api("post", "/proxies/t/toxics", json={"type": type_, "attributes": attributes})
        assert response.status_code == 200, response.text
    api("delete", "/proxies/t/toxics/latency_downstream")
    with connect(proxy.listen) as sock:
        round_trip(sock, b"z" * 10_000)
        # the longest latency (292 million years) holds the data until the toxic goes
        api("post", "/proxies/t/toxics", json={"type": "latency", "attributes": {"latency": INT64_MAX}})
        with connect(proxy.listen) as held:
            held.sendall(b"held")
            held.settimeout(0.3)
            with pytest.raises(TimeoutError):
                held.recv(4)
            assert api("delete", "/proxies/t/toxics/latency_downstream").status_code == 204
            held.settimeout(5)
            assert held.recv(4) == b"held"
        round_trip(sock, b"z" * 10_000)
    assert_serving(api)


@pytest.mark.parametrize(
    "listen",
    [
        "a" * 70 + ":0",
        "bad\x00host:0",
        "127.0.0.1:+80",
        "127.0.0.1: 80",
        "127.0.0.1:٣",
        "127.0.0.1:" + "9" * 5000,
        "8.8.8.8:0",
    ],
)
def test_unusable_listen_address_is_400(toxi, api, echo_server, listen):
    assert_error(api("post", "/proxies", json={"name": "l", "listen": listen, "upstream": echo_server.address}))
    toxi.create(upstream=echo_server.address, name="t")
    before = api("get", "/proxies/t").json()
    assert_error(api("post", "/proxies/t", json={"listen": listen}), 400)
    assert set(assert_serving(api)) == {"t"}
    assert api("get", "/proxies/t").json() == before  # as it was, and listening again
    with connect(before["listen"]) as sock:
        round_trip(sock)


# listen and upstream values a client may send: each is a 2xx or a 4xx in the error shape, never a 5xx
ODD_ADDRESSES = [
    "",
    ":",
    "[]:0",
    "127.0.0.1:",
    "127.0.0.1:0",
    "127.0.0.1:65535",
    "127.0.0.1:65536",
    "127.0.0.1:-1",
    "127.0.0.1:99999",
    "127.0.0.1:00000000000000000001",
    "[::1]:0",
    "[::1]",
    "[::1:0",
    "[[::1]]:0",
    "::1:0",
    "[::]:0",
    "0.0.0.0:0",
    "[::ffff:127.0.0.1]:0",
    "[fe80::1%lo]:0",
    "[fe80::1%25lo]:0",
    "256.1.1.1:0",
    "1.2.3.4.5:0",
    "127.1:0",
    "0x7f.0.0.1:0",
    "localhost:0",
    "LOCALHOST:0",
    "日本:80",
    "é.invalid:0",
    "\U0001f600:0",
    "\u202e:0",
    "\x00:0",
    "bad\x1bhost:0",
    "\ud800:0",
    "a" * 63 + ":0",
    "a" * 64 + ":0",
    "a." * 200 + "x:0",
    "x" * 100_000 + ":0",
    "127.0.0.1:0" * 3,
    " 127.0.0.1:0",
    "127.0.0.1:0\n",
    "127.0.0.1:٣",
    "127.0.0.1:+1",
    "127.0.0.1:1_0",
]


def test_odd_listen_and_upstream_values_are_never_a_5xx(toxi, api, echo_server, toxiproxy_server):
    failures = []
    the_api = f"127.0.0.1:{toxiproxy_server.port}"
    refused = {
        ("listen", "[::]:0"),
        ("listen", "0.0.0.0:0"),
        ("upstream", the_api),  # not loopback;
        ("upstream", the_api.replace("127.0.0.1", "127.1")),  # the server itself
        ("upstream", the_api.replace("127.0.0.1", "0x7f.0.0.1")),
    }

    def check(what: str, field: str, value: str, response: requests.Response) -> None:
        wrong = response.status_code >= 500 or ((field, value) in refused and response.status_code != 400)
        if response.status_code >= 400 and not wrong:
            body = response.json()
            wrong = body.get("status") != response.status_code or not isinstance(body.get("error"), str)
        if wrong:
            failures.append((what, value[:60], response.status_code, response.text[:200]))

    for value in ODD_ADDRESSES + [the_api, *[v for f, v in refused if f == "upstream"]]:
        for field in ("listen", "upstream"):
            body = {"name": "o", "listen": "127.0.0.1:0", "upstream": echo_server.address, field: value}
            check(f"create {field}", field, value, api("post", "/proxies", json=body))
            check(f"populate {field}", field, value, api("post", "/populate", json=[body]))
            api("delete", "/proxies/o")
            api("post", "/proxies", json={"name": "t", "upstream": echo_server.address})
            check(f"update {field}", field, value, api("patch", "/proxies/t", json={field: value}))
            api("delete", "/proxies/t")
    assert failures == []
    assert api("get", "/version").status_code == 200
    assert assert_serving(api) == {}


# -- 5. a client that sends its request slowly, or not at all -------------------------------------


@pytest.fixture(scope="module")
def quick_server():
    """A server of its own with a 0.5 s read timeout (the default is 10 s)."""
    server = start_embedded(read_timeout=0.5)
    try:
        yield server
    finally:
        server.stop()


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True once the server closes the connection (EOF or reset), False if it is still open."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.mark.parametrize("sent", [b"", b"GET /vers", b"GET /version HTTP/1.1\r\nHost: x\r\n"])
def test_api_connection_without_a_whole_request_head_is_closed(quick_server, sent):
    with connect(f"{quick_server.host}:{quick_server.port}") as sock:
        sock.sendall(sent)
        started = time.monotonic()
        assert closed_by_server(sock, within=5.0)
        assert 0.3 < time.monotonic() - started < 5.0
    assert requests.get(f"{quick_server.url}/version", timeout=5).status_code == 200


def test_api_connection_idle_after_a_request_is_closed_but_a_busy_one_is_not(quick_server):
    with requests.Session() as session:
        for _ in range(5):  # requests within the timeout: the same connection serves them all
            assert session.get(f"{quick_server.url}/proxies", timeout=5).status_code == 200
    with connect(f"{quick_server.host}:{quick_server.port}") as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        assert closed_by_server(sock, within=5.0)  # then idle: closed


def test_a_body_slower_than_the_read_timeout_is_408(quick_server):
    with connect(f"{quick_server.host}:{quick_server.port}") as sock:
        sock.sendall(
            b'POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name"'
        )
        sock.settimeout(5)
        head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 408"), head[:100]
        assert b'"status": 408' in head or b'"status": 408' in sock.recv(65536)
    assert requests.get(f"{quick_server.url}/proxies", timeout=5).json() == {}


# -- 6. fuzz: random malformed requests ---------------------------------------------------------------

FIELDS = {
    "proxy": ["name", "listen", "upstream", "enabled", "time_limit_ms"],
    "toxic": ["name", "type", "stream", "toxicity", "attributes", "time_limit_ms"],
}
ATTRIBUTES = ["latency", "jitter", "rate", "delay", "timeout", "bytes", "average_size", "size_variation"]
TYPES = ["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "noop", "x"]
NAMES = ["p", "q", "é", "日本", "\U0001f600", "a b", "x%2Fy", "\ud800", "n" * 300]


class Junk:
    """Random JSON values, skewed to the edges: huge, non-finite, wrong type, odd unicode."""

    def __init__(self, rng: random.Random, upstream: str):
        self.rng = rng
        self.upstream = upstream

    def number(self):
        return self.rng.choice(
            [
                0,
                -1,
                1,
                0.5,
                1.5,
                -0.0,
                2**31,
                2**63 - 1,
                2**63,
                2**64,
                -(2**63),
                10 ** self.rng.randint(19, 1000),
                1e308,
                1e306,
                -1e308,
                float("nan"),
                float("inf"),
                float("-inf"),
                5e-324,
                self.rng.randint(-(10**6), 10**6),
                self.rng.uniform(-1e6, 1e6),
                self.rng.random(),
            ]
        )

    def string(self):
        rng = self.rng
        return rng.choice(
            [
                "",
                " ",
                "\x00",
                "\ud800",
                "\U0001f600" * rng.randint(1, 50),
                "é:0",
                "127.0.0.1:0",
                "127.0.0.1:99999",
                "127.0.0.1:-1",
                ":0",
                "[::1]:0",
                "localhost:0",
                "a" * 70 + ":0",
                "127.0.0.1:65536",
                "[::]:0",
                "0.0.0.0:0",
                "[::ffff:127.0.0.1]:0",
                "[[::1]]:0",
                "日本:80",
                "\U0001f600:0",
                "127.0.0.1:" + self.upstream.rsplit(":", 1)[1],
                "127.0.0.1:1",
                self.upstream,
                "x" * rng.choice([1, 1000, 100_000]),
                "upstream",
                "downstream",
                rng.choice(TYPES),
                rng.choice(NAMES),
                "".join(
                    chr(rng.choice([rng.randint(1, 0xD7FF), rng.randint(0xE000, 0x2FFFF)]))
                    for _ in range(rng.randint(1, 20))
                ),
            ]
        )

    def value(self, depth: int = 0):
        rng = self.rng
        kind = rng.randrange(7 if depth < 3 else 4)
        if kind == 0:
            return rng.choice([None, True, False])
        if kind == 1:
            return self.number()
        if kind in (2, 3):
            return self.string()
        if kind == 4:
            return [self.value(depth + 1) for _ in range(rng.randint(0, 4))]
        if kind == 5:
            return {self.string(): self.value(depth + 1) for _ in range(rng.randint(0, 4))}
        return self.attributes()

    def attributes(self):
        return {
            rng_name: self.value(3) if self.rng.random() < 0.5 else self.number()
            for rng_name in self.rng.sample(ATTRIBUTES, self.rng.randint(0, 4))
        }

    def fields(self, kind: str, good: dict) -> dict:
        """Each field either left out, good, or junk."""
        body = {}
        for field in FIELDS[kind]:
            roll = self.rng.random()
            if roll < 0.1:
                continue
            if roll < 0.75 and field in good:
                body[field] = good[field]
            elif field == "attributes" and roll < 0.8:
                body[field] = self.attributes()
            else:
                body[field] = self.value()
        return body


def fuzz_request(rng: random.Random, junk: Junk) -> tuple[str, str, bytes]:
    name = rng.choice(NAMES)
    proxy_path = "/proxies/" + quote(name, safe="", errors="surrogatepass")
    toxic_path = proxy_path + "/toxics/" + quote(rng.choice(["latency_downstream", "t", "é", "x/y"]), safe="")
    good_proxy = {"name": name, "listen": "127.0.0.1:0", "upstream": junk.upstream, "enabled": True}
    good_toxic = {
        "name": rng.choice(["t", "é", ""]),
        "type": rng.choice(TYPES),
        "stream": "upstream",
        "toxicity": 1,
        "time_limit_ms": 60_000,
    }
    roll = rng.randrange(12)
    if roll == 0:
        method, path, body = "POST", "/proxies", junk.fields("proxy", good_proxy)
    elif roll == 1:
        method, path, body = rng.choice(["POST", "PATCH"]), proxy_path, junk.fields("proxy", good_proxy)
    elif roll in (2, 3):
        method, path, body = "POST", proxy_path + "/toxics", junk.fields("toxic", good_toxic)
    elif roll == 4:
        method, path, body = rng.choice(["POST", "PATCH"]), toxic_path, junk.fields("toxic", good_toxic)
    elif roll == 5:
        body = [junk.fields("proxy", dict(good_proxy, name=rng.choice(NAMES))) for _ in range(rng.randint(0, 3))]
        method, path = "POST", "/populate"
        if rng.random() < 0.3:
            body = junk.value()
    elif roll == 6:
        method, path, body = "POST", rng.choice(["/proxies", proxy_path + "/toxics", "/populate"]), junk.value()
    elif roll == 7:
        raw = rng.choice(
            [
                b"",
                b"{",
                b"[" * 20000,
                b'{"a":' * 3000,
                b"\xff\xfe\x00",
                b"null",
                b"NaN",
                b"Infinity",
                b"-Infinity",
                b"1e309",
                b"9" * 5000,
                bytes(rng.randrange(256) for _ in range(40)),
            ]
        )
        return (
            rng.choice(["POST", "PATCH"]),
            rng.choice(["/proxies", proxy_path, proxy_path + "/toxics", toxic_path, "/populate", "/reset"]),
            raw,
        )
    elif roll == 8:
        return "DELETE", rng.choice([proxy_path, toxic_path]), b""
    elif roll == 9:
        return "GET", rng.choice([proxy_path, toxic_path, proxy_path + "/toxics", "/proxies", "/version"]), b""
    elif roll == 10:
        return "POST", "/reset", rng.choice([b"", b"junk"])
    else:
        method, path, body = (
            "POST",
            proxy_path + "/toxics",
            {"type": rng.choice(TYPES[:-2]), "attributes": junk.attributes(), "toxicity": junk.value()},
        )
    return method, path, json.dumps(body).encode()


def plant(session: requests.Session, url: str, upstream: str) -> None:
    """Valid proxies, each with a toxic, for the fuzz to update, break and delete."""
    for name in NAMES:
        if name != "\ud800":
            path = "/proxies/" + quote(name, safe="")
            session.post(url + "/proxies", json={"name": name, "upstream": upstream}, timeout=10)
            session.post(url + path + "/toxics", json={"type": "latency", "name": "t"}, timeout=10)


def test_fuzzed_requests_never_get_a_5xx(echo_server):
    rng = random.Random(20261128)
    server = start_embedded()
    try:
        junk = Junk(rng, echo_server.address)
        failures, changed = [], 0
        started = time.monotonic()
        with requests.Session() as session:
            for i in range(600):
                if i % 50 == 0:
                    plant(session, server.url, echo_server.address)
                method, path, body = fuzz_request(rng, junk)
                response = session.request(method, server.url + path, data=body, headers=JSON, timeout=10)
                if response.status_code >= 500:
                    failures.append((i, method, path, body[:200], response.status_code, response.text[:200]))
                elif response.status_code >= 400 and response.headers.get("Content-Type", "").startswith(
                    "application/json"
                ):
                    assert response.json()["status"] == response.status_code
                changed += method != "GET" and path != "/reset" and response.status_code < 300
            assert failures == []
            assert changed >= 40  # enough requests got past validation to change something
            assert time.monotonic() - started < 30
            version = session.get(server.url + "/version", timeout=5)
            assert version.status_code == 200 and version.json()["version"].startswith("2.")
            listing = session.get(server.url + "/proxies", timeout=5)
            assert listing.status_code == 200
            proxies = listing.json()
            assert all(set(p) >= {"name", "listen", "upstream", "enabled", "toxics"} for p in proxies.values())
            for name, proxy in proxies.items():  # every proxy the API lists is whole and usable
                if proxy["enabled"]:
                    wait_for(lambda proxy=proxy: accepts(proxy["listen"]), timeout=5)
                assert session.delete(f"{server.url}/proxies/{quote(name, safe='')}", timeout=10).status_code == 204
            assert session.get(server.url + "/proxies", timeout=5).json() == {}
    finally:
        server.stop()
