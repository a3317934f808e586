"""The fault library: validation before harm, every fault's effect and its heal, reset of a killed run."""

from __future__ import annotations

import threading
import time

import pytest

from harness.faults import REGISTRY, FaultContext, FaultError, ToxiproxyControl, build, injected, spec_from_dict
from harness.model import FaultSpec
from tests.support import TcpServer, connect, pattern, read_all, refuses, round_trip, source, wait_for


@pytest.fixture
def control(toxiproxy_server, toxi):
    return ToxiproxyControl(toxiproxy_server.url)


@pytest.fixture
def ctx(control):
    return FaultContext(toxiproxy=control)


@pytest.fixture
def link(control, echo_server):
    """A proxy named 'link' in front of the echo server."""
    return control.ensure_proxy("link", echo_server.address)


def fault(type_: str, **params):
    return build(FaultSpec(type=type_, target="link", params=params))


# -- validation: before anything runs ---------------------------------------------


def test_unknown_fault_type_is_refused_naming_the_known_ones():
    with pytest.raises(FaultError, match=r"unknown fault type 'meteor'; known: .*latency"):
        build(FaultSpec(type="meteor", target="link"))


def test_missing_required_parameter_is_named():
    with pytest.raises(FaultError, match="missing required parameter 'latency_ms'"):
        fault("latency")


def test_unknown_parameter_is_named():
    with pytest.raises(FaultError, match="unknown parameter.*latency_seconds"):
        fault("latency", latency_ms=1, latency_seconds=2)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"latency_ms": "slow"}, "must be int"),
        ({"latency_ms": -1}, "must be >= 0"),
        ({"latency_ms": 1, "stream": "sideways"}, "must be one of"),
        ({"latency_ms": True}, "must be int"),
    ],
)
def test_bad_parameter_values_are_refused(params, message):
    with pytest.raises(FaultError, match=message):
        fault("latency", **params)


def test_spec_from_plan_data_validates_now():
    spec = spec_from_dict({"type": "latency", "target": "db", "latency_ms": 5, "time_limit_s": 30})
    assert spec == FaultSpec("latency", "db", {"latency_ms": 5}, 30)
    with pytest.raises(FaultError, match="missing 'target'"):
        spec_from_dict({"type": "latency"}, where="drills/x.yaml: faults[0]")


def test_every_registered_fault_describes_itself():
    assert set(REGISTRY) == {
        "latency",
        "partition",
        "timeout",
        "reset",
        "bandwidth",
        "slow_close",
        "slicer",
        "data_limit",
        "proxy_down",
        "container_kill",
        "container_stop",
        "container_pause",
        "network_disconnect",
        "http_error",
        "event_store_block",
        "platform_degrade",
        "platform_down",
        "database_primary_kill",
        "api_instance_kill",
        "connector_worker_kill",
        "backup_halt",
        "backup_corrupt",
        "database_loss",
    }
    assert all(cls.DESCRIPTION for cls in REGISTRY.values())


def test_time_limited_faults_are_those_whose_mechanism_lifts_them_by_itself():
    limited = {name for name, cls in REGISTRY.items() if cls.TIME_LIMITED}
    assert limited == {
        "latency",
        "partition",
        "timeout",
        "reset",
        "bandwidth",
        "slow_close",
        "slicer",
        "data_limit",
        "proxy_down",
        "http_error",
        "platform_degrade",
        "event_store_block",
    }
    from harness.faults.base import Fault

    assert Fault.TIME_LIMITED is False  # kills and container faults cannot come back by themselves


def test_a_fault_on_an_unknown_proxy_fails_before_harm(ctx, link):
    with pytest.raises(FaultError, match="no Toxiproxy proxy named 'nowhere'"):
        build(FaultSpec("latency", "nowhere", {"latency_ms": 5})).inject(ctx)


# -- each fault: effect observed on a real socket, then healed ------------------------


def test_latency_fault_and_heal(ctx, link):
    with injected(fault("latency", latency_ms=120, stream="both"), ctx):
        with connect(link.listen) as sock:
            assert round_trip(sock) >= 0.235
    with connect(link.listen) as sock:
        assert round_trip(sock) < 0.1


def test_partition_blackholes_both_ways_until_healed(ctx, link):
    with connect(link.listen, timeout=0.3) as sock:
        with injected(fault("partition"), ctx):
            sock.sendall(b"x")
            with pytest.raises(TimeoutError):
                sock.recv(1)
        sock.settimeout(5)
        # the connection lived through the partition with bytes lost: the heal closes it
        assert sock.recv(1) == b""
    with connect(link.listen) as sock:
        assert round_trip(sock, b"y") < 1.0


def ticker(sent: list[int]):
    """A server sending numbered lines ("0\n", "1\n", ...) every half millisecond until the client
    goes; sent[0] counts the lines sent."""
    pace = threading.Event()

    def handle(sock):
        while True:
            sock.sendall(b"%d\n" % sent[0])
            sent[0] += 1
            pace.wait(0.0005)

    return handle


def numbered_lines(n: int) -> bytes:
    return b"".join(b"%d\n" % i for i in range(n))


def test_partition_heal_never_delivers_bytes_after_the_gap(ctx, control):
    """Bytes black-holed inside a live connection must never be followed by later bytes on it: the
    heal closes the connection while the toxic still drops. (A PostgreSQL replica fed a WAL stream
    with a hole wrote the later bytes after the hole and could never stream again.)"""
    sent = [0]
    with TcpServer(ticker(sent)) as server:
        control.ensure_proxy("link", server.address)
        with connect(control.proxy("link").listen, timeout=10) as sock:
            received = b""
            while received.count(b"\n") < 10:
                chunk = sock.recv(65536)
                assert chunk, f"closed before the partition, after {received!r}"
                received += chunk
            with injected(fault("partition"), ctx):
                mark = sent[0]
                wait_for(lambda: sent[0] > mark + 50, what="50 lines sent into the partition")
            received += read_all(sock)[0]
    expected = numbered_lines(sent[0])
    gap = next((i for i, (a, b) in enumerate(zip(received, expected, strict=False)) if a != b), None)
    assert gap is None and len(received) <= len(expected), (
        f"bytes after the gap: {received[max(0, (gap or 0) - 20) : (gap or 0) + 20]!r} at offset {gap}"
    )


def test_timeout_fault_closes_connections(ctx, link):
    with injected(fault("timeout", timeout_ms=200), ctx):
        with connect(link.listen) as sock:
            sock.sendall(b"x")
            assert sock.recv(1) == b""


def test_reset_fault_resets_connections(ctx, link):
    with injected(fault("reset"), ctx):
        with connect(link.listen) as sock:
            sock.sendall(b"x")
            with pytest.raises(ConnectionResetError):
                while sock.recv(10):
                    pass
    with connect(link.listen) as sock:
        assert round_trip(sock) < 1.0


def test_bandwidth_fault_slows_transfer(ctx, control):
    with TcpServer(source(100_000)) as server:
        control.ensure_proxy("link", server.address)
        with injected(fault("bandwidth", rate_kbps=200), ctx):
            with connect(control.proxy("link").listen, timeout=10) as sock:
                start = time.perf_counter()
                data, _ = read_all(sock)
                assert time.perf_counter() - start >= 0.4  # 100 KB at 200 KB/s = 0.5 s
        assert data == pattern(100_000)


def test_slow_close_fault_delays_close(ctx, control):
    with TcpServer(source(5)) as server:
        control.ensure_proxy("link", server.address)
        with injected(fault("slow_close", delay_ms=300), ctx):
            with connect(control.proxy("link").listen) as sock:
                start = time.perf_counter()
                read_all(sock)
                assert time.perf_counter() - start >= 0.28


def test_slicer_fault_slices(ctx, control):
    with TcpServer(source(600)) as server:
        control.ensure_proxy("link", server.address)
        with injected(fault("slicer", average_size=6, delay_us=2000), ctx):
            with connect(control.proxy("link").listen) as sock:
                data, sizes = read_all(sock)
        assert data == pattern(600) and len(sizes) >= 20


def test_data_limit_fault_truncates(ctx, control):
    with TcpServer(source(5000, then_close=False)) as server:
        control.ensure_proxy("link", server.address)
        with injected(fault("data_limit", bytes=700), ctx):
            with connect(control.proxy("link").listen) as sock:
                data, _ = read_all(sock)
        assert data == pattern(700)


def test_proxy_down_refuses_then_heals(ctx, link):
    with injected(fault("proxy_down"), ctx):
        assert refuses(link.listen)
    with connect(link.listen) as sock:
        assert round_trip(sock) < 1.0


def test_proxy_down_with_a_time_limit_comes_back_by_itself(ctx, control, api, link):
    f = build(FaultSpec("proxy_down", "link", time_limit_s=0.4))
    f.inject(ctx)
    shown = api("get", "/proxies/link").json()
    assert shown["enabled"] is False and shown["time_limit_ms"] == 400
    assert refuses(link.listen)
    wait_for(lambda: not refuses(link.listen), timeout=10, interval=0.05)  # the server's dead-man switch
    with connect(link.listen) as sock:
        assert round_trip(sock) < 1.0
    assert control.proxy("link").enabled is True
    f.heal(ctx)  # safe after the server enabled it
    assert "time_limit_ms" not in api("get", "/proxies/link").json()


def test_set_enabled_sends_the_time_limit_only_when_asked(control, api, link):
    control.set_enabled("link", False)
    assert "time_limit_ms" not in api("get", "/proxies/link").json()
    control.set_enabled("link", False, time_limit_s=30)
    assert api("get", "/proxies/link").json()["time_limit_ms"] == 30_000
    with pytest.raises(ValueError):
        control.set_enabled("link", True, time_limit_s=30)
    control.set_enabled("link", True)
    assert set(api("get", "/proxies/link").json()) == {"name", "listen", "upstream", "enabled", "toxics"}


# -- always healed ----------------------------------------------------------------------


def test_heal_runs_when_the_block_raises(ctx, control, link):
    events = []
    with pytest.raises(RuntimeError):
        with injected(fault("latency", latency_ms=500), ctx, on_event=lambda e, f: events.append(e)):
            assert control.toxics("link")
            raise RuntimeError("step failed")
    assert events == ["inject", "heal"]
    assert control.toxics("link") == {}


def test_heal_is_safe_twice_and_after_expiry(ctx, control, link):
    f = build(FaultSpec("latency", "link", {"latency_ms": 5}, time_limit_s=0.3))
    f.inject(ctx)
    assert control.toxics("link")["drill_latency_downstream"].attributes == {"latency": 5, "jitter": 0}
    wait_for(lambda: control.toxics("link") == {}, timeout=5, interval=0.05)  # the server's dead-man switch
    f.heal(ctx)
    f.heal(ctx)


def test_reset_all_clears_what_a_killed_run_left(control, api, link):
    # what a SIGKILLed harness leaves: a toxic with no time limit and a disabled proxy
    api("post", "/proxies/link/toxics", json={"type": "timeout", "attributes": {"timeout": 0}})
    api("post", "/proxies/link", json={"enabled": False})
    control.reset_all()
    assert control.toxics("link") == {}
    assert control.proxy("link").enabled is True
    with connect(link.listen) as sock:
        assert round_trip(sock) < 1.0


@pytest.mark.parametrize("reset", ["reset_all", "reset_proxies"])
def test_a_reset_closes_connections_that_lost_bytes_before_bytes_flow_again(control, api, link, reset):
    """A partition's toxic left by a killed run: the reset must not resume a connection after the gap."""
    with connect(link.listen, timeout=0.3) as sock:
        api("post", "/proxies/link/toxics", json={"type": "timeout", "attributes": {"timeout": 0}})
        sock.sendall(b"lost")
        with pytest.raises(TimeoutError):
            sock.recv(1)
        control.reset_all() if reset == "reset_all" else control.reset_proxies(["link"])
        sock.settimeout(5)
        assert sock.recv(1) == b""
    assert control.toxics("link") == {} and control.proxy("link").enabled is True
    with connect(link.listen) as sock:
        assert round_trip(sock) < 1.0


def test_ensure_proxy_replaces_a_proxy_with_another_upstream(control, echo_server):
    first = control.ensure_proxy("p", "127.0.0.1:1")
    second = control.ensure_proxy("p", echo_server.address)
    assert second.upstream == echo_server.address
    assert control.ensure_proxy("p", echo_server.address).listen == second.listen
    assert first.upstream != second.upstream


def test_bad_toxiproxy_url_is_refused():
    with pytest.raises(FaultError, match="must look like"):
        ToxiproxyControl("localhost")


def test_a_lab_on_a_shared_fault_server_resets_only_its_own_proxies(control, echo_server):
    """TOXIPROXY_URL shared by two drills: one's reset must not heal the other's faults."""
    from harness.lab.embedded import EmbeddedLab
    from harness.toxiproxy.launcher import ToxiproxyServer

    upstream = f"127.0.0.1:{echo_server.port}"
    for name in ("mine", "theirs"):
        control.ensure_proxy(name, upstream)
        control.add_toxic(name, f"{name}-latency", "latency", "downstream", {"latency": 100})
    control.set_enabled("theirs", False)
    lab = EmbeddedLab()
    lab.toxi_server, lab.toxiproxy, lab._proxies = ToxiproxyServer(control.url, "external"), control, ["mine"]
    lab.reset_faults()
    assert control.toxics("mine") == {} and control.proxy("mine").enabled
    assert list(control.toxics("theirs")) == ["theirs-latency"] and not control.proxy("theirs").enabled
    lab.toxi_server = ToxiproxyServer(control.url, "embedded")  # a server of its own: everything
    lab.reset_faults()
    assert control.toxics("theirs") == {} and control.proxy("theirs").enabled
