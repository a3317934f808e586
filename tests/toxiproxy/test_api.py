"""The HTTP API of the embedded server, driven through toxiproxy-python and raw HTTP."""

from __future__ import annotations

import pytest
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from tests.support import TcpServer, connect, refuses, round_trip, wait_for


def test_version_answers_json(api):
    response = api("get", "/version")
    assert response.status_code == 200
    assert response.json()["version"].startswith("2.")


def test_proxy_created_with_toxiproxy_python_listens_on_loopback(toxi, echo_server):
    proxy = toxi.create(upstream=echo_server.address, name="echo")
    assert proxy.enabled is True
    host, port = proxy.listen.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    with connect(proxy.listen) as sock:
        round_trip(sock, b"hello")
    assert set(toxi.proxies()) == {"echo"}


def test_proxy_json_has_toxiproxy_fields(api, echo_server):
    response = api("post", "/proxies", json={"name": "p", "upstream": echo_server.address})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"name", "listen", "upstream", "enabled", "toxics"}
    assert body["toxics"] == [] and body["enabled"] is True
    assert api("get", "/proxies/p").json() == body
    assert api("get", "/proxies").json() == {"p": body}
    api("delete", "/proxies/p")


def test_duplicate_proxy_name_is_409(toxi, api, echo_server):
    toxi.create(upstream=echo_server.address, name="dup")
    response = api("post", "/proxies", json={"name": "dup", "upstream": echo_server.address})
    assert response.status_code == 409
    assert response.json() == {"error": "proxy already exists", "status": 409}


def test_listen_address_in_use_is_409(toxi, api, echo_server):
    first = toxi.create(upstream=echo_server.address, name="first")
    response = api("post", "/proxies", json={"name": "second", "listen": first.listen, "upstream": echo_server.address})
    assert response.status_code == 409
    assert "in use" in response.json()["error"]
    assert "second" not in toxi.proxies()


@pytest.mark.parametrize("body, missing", [({"upstream": "127.0.0.1:1"}, "name"), ({"name": "x"}, "upstream")])
def test_missing_field_is_400_naming_it(api, body, missing):
    response = api("post", "/proxies", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": f"missing required field: {missing}", "status": 400}


def test_unknown_proxy_is_404(toxi, api):
    for method, path in [
        ("get", "/proxies/nope"),
        ("post", "/proxies/nope"),
        ("delete", "/proxies/nope"),
        ("get", "/proxies/nope/toxics"),
        ("post", "/proxies/nope/toxics"),
        ("get", "/proxies/nope/toxics/t"),
        ("delete", "/proxies/nope/toxics/t"),
    ]:
        response = api(method, path, json={})
        assert response.status_code == 404, (method, path)
        assert response.json() == {"error": "proxy not found", "status": 404}
    with pytest.raises(NotFound):
        from toxiproxy.api import APIConsumer

        APIConsumer.get("/proxies/nope")


def test_disabled_proxy_refuses_and_drops_connections(toxi, echo_server):
    proxy = toxi.create(upstream=echo_server.address, name="echo")
    open_conn = connect(proxy.listen)
    round_trip(open_conn)
    proxy.disable()
    assert refuses(proxy.listen)
    assert open_conn.recv(10) == b""  # the open connection was dropped
    open_conn.close()
    proxy.enable()
    with connect(proxy.listen) as sock:
        round_trip(sock)


def test_context_manager_down_heals(toxi, echo_server):
    proxy = toxi.create(upstream=echo_server.address, name="echo")
    with proxy.down():
        assert refuses(proxy.listen)
    with connect(proxy.listen) as sock:
        round_trip(sock)


def test_update_changes_upstream_and_listen(api, echo_server):
    with TcpServer(lambda s: s.sendall(b"other")) as other:
        api("post", "/proxies", json={"name": "u", "upstream": echo_server.address})
        updated = api("post", "/proxies/u", json={"upstream": other.address})
        assert updated.status_code == 200
        body = updated.json()
        assert body["upstream"] == other.address and body["enabled"] is True
        with connect(body["listen"]) as sock:
            assert sock.recv(5) == b"other"
        patched = api("patch", "/proxies/u", json={"listen": "127.0.0.1:0", "upstream": echo_server.address})
        assert patched.status_code == 200 and patched.json()["upstream"] == echo_server.address
        with connect(patched.json()["listen"]) as sock:
            round_trip(sock)
    api("delete", "/proxies/u")


def test_delete_proxy_is_204_and_stops_listening(toxi, api, echo_server):
    proxy = toxi.create(upstream=echo_server.address, name="gone")
    response = api("delete", "/proxies/gone")
    assert response.status_code == 204 and response.content == b""
    assert refuses(proxy.listen)
    assert api("get", "/proxies/gone").status_code == 404


def test_populate_creates_keeps_and_replaces(toxi, api, echo_server):
    body = [
        {"name": "a", "listen": "127.0.0.1:0", "upstream": echo_server.address},
        {"name": "b", "upstream": echo_server.address, "enabled": False},
    ]
    response = api("post", "/populate", json=body)
    assert response.status_code == 201
    proxies = {p["name"]: p for p in response.json()["proxies"]}
    assert proxies["a"]["enabled"] is True and proxies["b"]["enabled"] is False
    # same listen and upstream: the existing proxy is kept as it is
    again = api(
        "post", "/populate", json=[{"name": "a", "listen": proxies["a"]["listen"], "upstream": echo_server.address}]
    )
    assert again.json()["proxies"][0]["listen"] == proxies["a"]["listen"]
    # toxiproxy-python's populate works too
    created = toxi.populate([{"name": "c", "listen": "127.0.0.1:0", "upstream": echo_server.address}])
    assert [p.name for p in created] == ["c"]


def test_populate_is_validated_whole_before_any_change(api, echo_server):
    body = [{"name": "ok", "upstream": echo_server.address}, {"name": "bad"}]
    response = api("post", "/populate", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "missing required field: upstream at proxy 2"
    assert "ok" not in api("get", "/proxies").json()


def test_toxic_crud_with_toxiproxy_shapes(toxi, api, echo_server):
    toxi.create(upstream=echo_server.address, name="t")
    created = api("post", "/proxies/t/toxics", json={"type": "latency", "attributes": {"latency": 50}})
    assert created.status_code == 200
    assert created.json() == {
        "attributes": {"latency": 50, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
    }
    assert api("get", "/proxies/t/toxics").json() == [created.json()]
    assert api("get", "/proxies/t/toxics/latency_downstream").json() == created.json()
    assert api("get", "/proxies/t").json()["toxics"] == [created.json()]
    updated = api("post", "/proxies/t/toxics/latency_downstream", json={"attributes": {"jitter": 5}, "toxicity": 0.5})
    assert updated.json()["attributes"] == {"latency": 50, "jitter": 5}
    assert updated.json()["toxicity"] == 0.5
    deleted = api("delete", "/proxies/t/toxics/latency_downstream")
    assert deleted.status_code == 204
    missing = api("get", "/proxies/t/toxics/latency_downstream")
    assert missing.status_code == 404 and missing.json() == {"error": "toxic not found", "status": 404}
    assert api("delete", "/proxies/t/toxics/latency_downstream").status_code == 404


def test_toxic_errors_have_toxiproxy_status_codes(toxi, api, echo_server):
    proxy = toxi.create(upstream=echo_server.address, name="t")
    proxy.add_toxic(type="latency", attributes={"latency": 1})
    dup = api("post", "/proxies/t/toxics", json={"type": "latency"})
    assert dup.status_code == 409 and dup.json()["error"] == "toxic already exists"
    stream = api("post", "/proxies/t/toxics", json={"type": "latency", "stream": "sideways"})
    assert stream.status_code == 400 and "stream was invalid" in stream.json()["error"]
    unknown = api("post", "/proxies/t/toxics", json={"type": "teleport"})
    assert unknown.status_code == 400 and unknown.json() == {"error": "invalid toxic type", "status": 400}
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="teleport")
    with pytest.raises(ProxyExists):
        proxy.add_toxic(type="latency")
    wrong = api("post", "/proxies/t/toxics", json={"type": "bandwidth", "attributes": {"rate": "fast"}})
    assert wrong.status_code == 400 and "bad request body" in wrong.json()["error"]


@pytest.mark.parametrize("path", ["/proxies", "/proxies/t/toxics", "/populate", "/proxies/t"])
def test_bad_json_is_400_and_the_server_keeps_serving(toxi, api, echo_server, path):
    toxi.create(upstream=echo_server.address, name="t")
    response = api("post", path, data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("bad request body")
    assert response.json()["status"] == 400
    assert api("get", "/version").status_code == 200


def test_reset_enables_proxies_and_removes_toxics(toxi, api, echo_server):
    a = toxi.create(upstream=echo_server.address, name="a")
    b = toxi.create(upstream=echo_server.address, name="b")
    a.add_toxic(type="timeout", attributes={"timeout": 0})
    b.add_toxic(type="latency", stream="upstream", attributes={"latency": 1000})
    b.disable()
    assert api("post", "/reset").status_code == 204
    state = api("get", "/proxies").json()
    assert all(p["enabled"] and p["toxics"] == [] for p in state.values())
    with connect(toxi.get_proxy("a").listen) as sock:
        assert round_trip(sock) < 0.5
    assert toxi.reset() is True


def test_browsers_are_refused(api):
    response = api("get", "/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert response.status_code == 403


def test_time_limit_removes_the_toxic_by_itself(toxi, api, echo_server):
    proxy = toxi.create(upstream=echo_server.address, name="t")
    created = api(
        "post", "/proxies/t/toxics", json={"type": "timeout", "attributes": {"timeout": 0}, "time_limit_ms": 400}
    )
    assert created.json()["time_limit_ms"] == 400 and created.json()["expires_at"] > 0
    with connect(proxy.listen, timeout=0.2) as sock, connect(proxy.listen, timeout=5) as quiet:
        sock.sendall(b"x")
        with pytest.raises(TimeoutError):
            sock.recv(1)  # blackholed while the toxic lives
        wait_for(lambda: api("get", "/proxies/t/toxics").json() == [], timeout=5)
        sock.settimeout(5)
        # the echo of "x" was dropped: that connection is closed, never resumed after the gap ...
        assert sock.recv(1) == b""
        # ... while one that lost nothing works on, and new ones pass
        assert round_trip(quiet, b"back") < 1.0
    with connect(proxy.listen) as sock:
        assert round_trip(sock, b"new") < 1.0


def test_toxic_without_time_limit_keeps_toxiproxy_shape(toxi, api, echo_server):
    toxi.create(upstream=echo_server.address, name="t")
    body = api("post", "/proxies/t/toxics", json={"type": "slow_close"}).json()
    assert "time_limit_ms" not in body and "expires_at" not in body


@pytest.mark.parametrize("value", [0, -5, "soon", 1.5])
def test_invalid_time_limit_is_400(toxi, api, echo_server, value):
    toxi.create(upstream=echo_server.address, name="t")
    response = api("post", "/proxies/t/toxics", json={"type": "latency", "time_limit_ms": value})
    assert response.status_code == 400 and "time_limit_ms" in response.json()["error"]
    assert api("get", "/proxies/t/toxics").json() == []


# -- a disabled proxy's time limit (our addition) ---------------------------------------------

TOXIPROXY_PROXY_KEYS = {"name", "listen", "upstream", "enabled", "toxics"}


def accepts(address: str) -> bool:
    try:
        connect(address, timeout=1.0).close()
        return True
    except OSError:
        return False


def test_disabled_proxy_with_time_limit_enables_itself(toxi, api, echo_server):
    import time

    proxy = toxi.create(upstream=echo_server.address, name="p")
    before = time.time()
    body = api("post", "/proxies/p", json={"enabled": False, "time_limit_ms": 400}).json()
    assert body["enabled"] is False and body["time_limit_ms"] == 400
    assert before + 0.4 <= body["expires_at"] <= time.time() + 0.4 + 0.01
    assert api("get", "/proxies/p").json() == body
    assert refuses(proxy.listen)
    wait_for(lambda: accepts(proxy.listen), timeout=10)  # the listener is back by itself
    with connect(proxy.listen) as sock:
        round_trip(sock, b"back")
    shown = api("get", "/proxies/p").json()
    assert set(shown) == TOXIPROXY_PROXY_KEYS and shown["enabled"] is True  # Toxiproxy's shape again


def _pending_and_clock(api, echo_server, name: str, clock_ms: int) -> str:
    """A second proxy disabled with a longer time limit than `name`'s, armed after it: once it is
    enabled again, `name`'s timer would have fired too (timers fire in deadline order)."""
    api("post", "/proxies", json={"name": "clock", "upstream": echo_server.address})
    reply = api("post", "/proxies/clock", json={"enabled": False, "time_limit_ms": clock_ms})
    assert reply.status_code == 200
    wait_for(lambda: api("get", "/proxies/clock").json()["enabled"], timeout=10)
    return api("get", f"/proxies/{name}").json()


def test_enabling_a_proxy_cancels_its_pending_re_enable(toxi, api, echo_server):
    proxy = toxi.create(upstream=echo_server.address, name="p")
    assert api("post", "/proxies/p", json={"enabled": False, "time_limit_ms": 300}).status_code == 200
    proxy.enable()  # toxiproxy-python: {"enabled": true}
    shown = api("get", "/proxies/p").json()
    assert set(shown) == TOXIPROXY_PROXY_KEYS and shown["enabled"] is True
    proxy.disable()  # disabled again, this time without a limit
    shown = _pending_and_clock(api, echo_server, "p", clock_ms=500)
    assert shown["enabled"] is False and set(shown) == TOXIPROXY_PROXY_KEYS
    assert refuses(proxy.listen)


def test_changing_a_disabled_proxy_cancels_its_pending_re_enable(toxi, api, echo_server):
    with TcpServer(lambda s: s.sendall(b"other")) as other:
        toxi.create(upstream=echo_server.address, name="p")
        api("post", "/proxies/p", json={"enabled": False, "time_limit_ms": 300})
        changed = api("post", "/proxies/p", json={"upstream": other.address})  # still disabled
        assert changed.status_code == 200 and set(changed.json()) == TOXIPROXY_PROXY_KEYS
        shown = _pending_and_clock(api, echo_server, "p", clock_ms=500)
        assert shown["enabled"] is False and shown["upstream"] == other.address


@pytest.mark.parametrize("value", [0, -5, "soon", 1.5, True])
def test_invalid_proxy_time_limit_is_400_and_changes_nothing(toxi, api, echo_server, value):
    proxy = toxi.create(upstream=echo_server.address, name="p")
    before = api("get", "/proxies/p").json()
    response = api("post", "/proxies/p", json={"enabled": False, "time_limit_ms": value})
    assert response.status_code == 400
    assert response.json()["status"] == 400 and "time_limit_ms" in response.json()["error"]
    assert response.json()["error"].startswith("bad request body")  # as for a toxic's time_limit_ms
    assert api("get", "/proxies/p").json() == before
    with connect(proxy.listen) as sock:
        round_trip(sock)


def test_time_limit_on_enabling_a_proxy_is_400(toxi, api, echo_server):
    toxi.create(upstream=echo_server.address, name="p")
    response = api("post", "/proxies/p", json={"enabled": True, "time_limit_ms": 500})
    assert response.status_code == 400 and "time_limit_ms" in response.json()["error"]


def test_reset_cancels_a_pending_re_enable(toxi, api, echo_server):
    proxy = toxi.create(upstream=echo_server.address, name="p")
    api("post", "/proxies/p", json={"enabled": False, "time_limit_ms": 60_000})
    assert "expires_at" in api("get", "/proxies/p").json()
    assert api("post", "/reset").status_code == 204
    shown = api("get", "/proxies/p").json()
    assert shown["enabled"] is True and set(shown) == TOXIPROXY_PROXY_KEYS
    with connect(proxy.listen) as sock:
        round_trip(sock)


def test_deleting_a_proxy_cancels_its_pending_re_enable(toxi, api, echo_server):
    proxy = toxi.create(upstream=echo_server.address, name="p")
    api("post", "/proxies/p", json={"enabled": False, "time_limit_ms": 300})
    assert api("delete", "/proxies/p").status_code == 204
    _pending_and_clock(api, echo_server, "clock", clock_ms=500)
    assert api("get", "/proxies/p").status_code == 404
    assert refuses(proxy.listen)  # nothing listens again on the deleted proxy's address


def test_toxiproxy_python_reads_proxies_with_and_without_a_limit(toxi, api, echo_server):
    toxi.create(upstream=echo_server.address, name="plain")
    limited = toxi.create(upstream=echo_server.address, name="limited")
    api("post", "/proxies/limited", json={"enabled": False, "time_limit_ms": 60_000})
    raw = api("get", "/proxies").json()
    assert set(raw["plain"]) == TOXIPROXY_PROXY_KEYS
    assert set(raw["limited"]) == TOXIPROXY_PROXY_KEYS | {"time_limit_ms", "expires_at"}
    proxies = toxi.proxies()
    assert proxies["plain"].enabled is True and proxies["limited"].enabled is False
    assert proxies["limited"].listen == limited.listen
    proxies["limited"].enable()
    assert set(api("get", "/proxies/limited").json()) == TOXIPROXY_PROXY_KEYS
