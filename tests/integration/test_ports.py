"""Published ports against a real berthd: kernel DNAT from 127.0.0.1, from the host's other addresses, from a second
machine (a namespace wired to the host) and from containers on other networks; random ports, -P, UDP; ``berth port``,
inspect's NetworkSettings.Ports, the PORTS column; a port taken twice fails cleanly.

berthd runs in a network namespace of its own (tests/support/netns.py says why); "the host" below is that
namespace, "the peer" another one wired to it. Traffic goes only to loopback, to berth's bridges and
containers, and to namespaces made here. Needs root, runc, busybox, ip, nsenter and nft (the fixtures skip otherwise).
"""
from __future__ import annotations

import json
import os
import re
import uuid
from urllib.parse import urlencode

import pytest

from tests.support.daemon import wait_for
from tests.support.netns import (NetMade as Made, UdpEcho, http_get, inspect, made_with, net_daemon, peer_host,
                                 settled, udp_ask, uniq, wait_http)

HTTPD = "mkdir -p /w && echo {token} > /w/f && exec httpd -f -p {port} -h /w"


@pytest.fixture(scope="module")
def daemon():
    """One berthd in its own network namespace for this module (``made`` from conftest uses it too)."""
    yield from net_daemon()


@pytest.fixture(scope="module")
def peer(daemon):
    """A second machine: 198.18.0.2, reaching the host at 198.18.0.1."""
    yield from peer_host(daemon)


class Web:
    """busybox httpd published on host port 8080, serving /f with a token."""

    def __init__(self, made: Made) -> None:
        d = made.daemon
        self.token = uuid.uuid4().hex
        self.body = (self.token + "\n").encode()
        self.name = uniq("bt-web")
        self.id = made.run("--name", self.name, "-p", "8080:80", "busybox", "sh", "-c",
                           HTTPD.format(token=self.token, port=80))
        self.ip = inspect(d, self.id)["NetworkSettings"]["IPAddress"]
        wait_http(d.ns.path, "127.0.0.1", 8080, "/f", self.body)


@pytest.fixture(scope="module")
def web(daemon):
    yield from made_with(daemon, Web)


def get(d, ip: str, port: int, path: str = "/f"):
    """GET from the host (berthd's namespace)."""
    return http_get(d.ns.path, ip, port, path, timeout=2)


def host_port(d, ref: str, key: str) -> int:
    return int(inspect(d, ref)["NetworkSettings"]["Ports"][key][0]["HostPort"])


def running(d) -> int:
    """How many containers run (each here has one veth)."""
    status, items = d.api("GET", "/containers/json")
    return len(items)


def dnat_rules(d) -> list[str]:
    table = d.ns.nft("list", "table", "ip", "berth").stdout.decode()
    return [line.strip() for line in table.splitlines() if " dnat to " in line]


# -- reachability ----------------------------------------------------------------------------------------------------


def test_published_port_answers_on_loopback_host_addresses_and_from_a_peer(daemon, web, peer):
    d = daemon
    assert get(d, "127.0.0.1", 8080) == (200, web.body)
    # the host's other addresses: the default bridge's gateway, and the address on the wire to the peer
    assert get(d, "172.17.0.1", 8080) == (200, web.body)
    assert get(d, peer.host_ip, 8080) == (200, web.body)
    # another machine
    r = peer.wget(f"http://{peer.host_ip}:8080/f")
    assert r.returncode == 0 and r.stdout == web.body, r.stderr
    assert http_get(peer.ns.path, peer.host_ip, 8080, "/f", timeout=2) == (200, web.body)
    # kernel DNAT, no userspace proxy: the rule is there, and nothing listens on the host port
    assert f"tcp dport 8080 dnat to {web.ip}:80" in dnat_rules(d)
    listening = d.ns.run("ss", "-Hltn", "sport = :8080").stdout.decode()
    assert listening.strip() == "", listening
    # a port nobody published is refused
    assert get(d, "127.0.0.1", 8079) is None


def test_host_ip_limits_where_the_port_answers(daemon, made, peer):
    d = daemon
    token = uuid.uuid4().hex
    cid = made.run("-p", "127.0.0.1:8081:80", "-p", f"{peer.host_ip}:8082:80", "busybox", "sh", "-c",
                   HTTPD.format(token=token, port=80))
    body = (token + "\n").encode()
    wait_http(d.ns.path, "127.0.0.1", 8081, "/f", body)
    # 8081 only on loopback
    assert get(d, peer.host_ip, 8081) is None
    assert http_get(peer.ns.path, peer.host_ip, 8081, "/f", timeout=2) is None
    # 8082 only on the peer-facing address, from the peer and from the host
    assert http_get(peer.ns.path, peer.host_ip, 8082, "/f", timeout=2) == (200, body)
    assert get(d, peer.host_ip, 8082) == (200, body)
    assert get(d, "127.0.0.1", 8082) is None
    ports = inspect(d, cid)["NetworkSettings"]["Ports"]
    assert sorted(ports["80/tcp"], key=lambda b: b["HostPort"]) == [{"HostIp": "127.0.0.1", "HostPort": "8081"},
                                                                    {"HostIp": peer.host_ip, "HostPort": "8082"}], ports
    assert sorted(d.cli("port", cid, "80").stdout.decode().split()) == ["127.0.0.1:8081", f"{peer.host_ip}:8082"]


def test_port_from_containers_on_other_networks_through_their_gateway(daemon, made, web):
    d = daemon
    net = uniq("bt-other")
    made.network(net)
    gw = json.loads(d.cli("network", "inspect", net).stdout)[0]["IPAM"]["Config"][0]["Gateway"]
    other = made.run("--network", net, "busybox", "sleep", "3600")
    r = d.cli("exec", other, "wget", "-q", "-O", "-", f"http://{gw}:8080/f", check=False)
    assert r.returncode == 0 and r.stdout == web.body, r.stderr
    # the container itself is out of reach from there (isolation), only the published port is
    r = d.cli("exec", other, "ping", "-c1", "-W1", web.ip, check=False)
    assert r.returncode != 0
    # and from a neighbour on the same default bridge, through the host (hairpin)
    near = made.run("busybox", "sleep", "3600")
    r = d.cli("exec", near, "wget", "-q", "-O", "-", "http://172.17.0.1:8080/f", check=False)
    assert r.returncode == 0 and r.stdout == web.body, r.stderr


def test_random_host_port_and_publish_all(daemon, made, peer):
    d = daemon
    token = uuid.uuid4().hex
    body = (token + "\n").encode()
    cid = made.run("-p", "80", "busybox", "sh", "-c", HTTPD.format(token=token, port=80))
    port = host_port(d, cid, "80/tcp")
    assert 1024 < port < 65536
    assert d.cli("port", cid, "80").stdout.decode() == f"0.0.0.0:{port}\n"
    wait_http(d.ns.path, "127.0.0.1", port, "/f", body)
    assert http_get(peer.ns.path, peer.host_ip, port, "/f", timeout=2) == (200, body)

    # -P publishes every EXPOSEd port (the image's and --expose's) on random ports
    image = f"bt-expose-{uuid.uuid4().hex[:8]}:1"
    with open(os.path.join(d.dir, "busybox.tar"), "rb") as f:
        q = [("fromSrc", "-"), ("repo", image.split(":")[0]), ("tag", "1"), ("changes", "EXPOSE 80 81/udp")]
        status, out = d.api("POST", "/images/create?" + urlencode(q), f.read(),
                            {"Content-Type": "application/x-tar"}, raw=True)
    assert status == 200, out
    made.image(image)
    cid = made.run("-P", "--expose", "82", image, "sh", "-c", HTTPD.format(token=token, port=80))
    ports = inspect(d, cid)["NetworkSettings"]["Ports"]
    assert set(ports) == {"80/tcp", "81/udp", "82/tcp"}, ports
    numbers = [int(ports[k][0]["HostPort"]) for k in ("80/tcp", "81/udp", "82/tcp")]
    assert all(ports[k][0]["HostIp"] == "0.0.0.0" for k in ports), ports
    assert len(set(numbers[::2])) == 2, numbers  # distinct tcp ports
    wait_http(d.ns.path, "127.0.0.1", numbers[0], "/f", body)
    lines = d.cli("port", cid).stdout.decode().splitlines()
    assert sorted(lines) == sorted([f"80/tcp -> 0.0.0.0:{numbers[0]}", f"81/udp -> 0.0.0.0:{numbers[1]}",
                                    f"82/tcp -> 0.0.0.0:{numbers[2]}"]), lines
    # without -P, exposed ports are not published
    plain = made.run(image, "sleep", "3600")
    assert inspect(d, plain)["NetworkSettings"]["Ports"] == {"80/tcp": None, "81/udp": None}
    assert d.cli("port", plain).stdout == b""


def test_udp_port(daemon, made, peer):
    d = daemon
    cid = made.run("-p", "5353:53/udp", "busybox", "sleep", "3600")
    ip = inspect(d, cid)["NetworkSettings"]["IPAddress"]
    assert f"udp dport 5353 dnat to {ip}:53" in dnat_rules(d)
    # busybox has no UDP server: the test answers from inside the container's network namespace
    ns_path = os.path.join(d.exec_root, "netns", cid[:12])
    echo = UdpEcho(ns_path, 53)
    try:
        assert udp_ask(d.ns.path, "127.0.0.1", 5353, b"one") == b"echo:one"
        assert udp_ask(peer.ns.path, peer.host_ip, 5353, b"two") == b"echo:two"
        assert [data for data, _ in echo.seen] == [b"one", b"two"]
        # tcp on the same number is not published
        assert get(d, "127.0.0.1", 5353) is None
    finally:
        echo.close()
    assert d.cli("port", cid).stdout.decode() == "53/udp -> 0.0.0.0:5353\n"
    assert d.cli("port", cid, "53/udp").stdout.decode() == "0.0.0.0:5353\n"


# -- what a user reads -----------------------------------------------------------------------------------------------


def test_port_command_inspect_and_ps(daemon, made):
    d = daemon
    name = uniq("bt-ports")
    cid = made.run("--name", name, "-p", "8083:80", "-p", "127.0.0.1:8084:81", "-p", "8085:53/udp",
                   "busybox", "sleep", "3600")
    out = d.cli("port", name).stdout.decode()
    assert out == ("53/udp -> 0.0.0.0:8085\n"
                   "80/tcp -> 0.0.0.0:8083\n"
                   "81/tcp -> 127.0.0.1:8084\n"), out
    assert d.cli("port", name, "80").stdout.decode() == "0.0.0.0:8083\n"
    assert d.cli("port", name, "80/tcp").stdout.decode() == "0.0.0.0:8083\n"
    assert d.cli("port", name, "81").stdout.decode() == "127.0.0.1:8084\n"
    r = d.cli("port", name, "99/udp", check=False)
    assert r.returncode == 1 and r.stderr.decode() == f"Error: No public port '99/udp' published for {name}\n"

    info = inspect(d, cid)
    assert info["NetworkSettings"]["Ports"] == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8083"}],
        "81/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8084"}],
        "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "8085"}],
    }
    assert info["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8083"}],
        "81/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8084"}],
        "53/udp": [{"HostIp": "", "HostPort": "8085"}],
    }
    assert set(info["Config"]["ExposedPorts"]) == {"80/tcp", "81/tcp", "53/udp"}

    ps = d.cli("ps", "--filter", f"name={name}", "--format", "{{.Ports}}").stdout.decode()
    assert ps == "0.0.0.0:8085->53/udp, 0.0.0.0:8083->80/tcp, 127.0.0.1:8084->81/tcp\n", ps
    table = d.cli("ps", "--filter", f"name={name}").stdout.decode().splitlines()
    assert "PORTS" in table[0] and "0.0.0.0:8083->80/tcp" in table[1], table
    status, items = d.api("GET", "/containers/json?" + urlencode({"filters": json.dumps({"name": [name]})}))
    assert sorted(items[0]["Ports"], key=lambda p: p["PrivatePort"]) == [
        {"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 8085, "Type": "udp"},
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8083, "Type": "tcp"},
        {"IP": "127.0.0.1", "PrivatePort": 81, "PublicPort": 8084, "Type": "tcp"},
    ], items[0]["Ports"]

    # stopped: nothing published any more, and the ports are free for others
    d.cli("stop", "-t", "0", name)
    info = inspect(d, cid)
    assert not any(info["NetworkSettings"]["Ports"].values()), info["NetworkSettings"]["Ports"]
    assert d.cli("port", name).stdout == b""
    assert d.cli("ps", "-a", "--filter", f"name={name}", "--format", "{{.Names}}|{{.Ports}}").stdout.decode() \
        == f"{name}|\n"
    assert not any(":8083 " in r or "dport 8083 " in r for r in dnat_rules(d))
    again = made.run("-p", "8083:80", "-p", "8085:53/udp", "busybox", "sleep", "3600")
    assert host_port(d, again, "80/tcp") == 8083
    # and the stopped one, started again while they are held, fails
    r = d.cli("start", name, check=False)
    assert r.returncode != 0 and "port is already allocated" in r.stderr.decode(), r.stderr


def test_port_taken_twice_fails_and_leaves_nothing(daemon, made, web):
    d = daemon
    before = settled(d, running(d))
    rules = dnat_rules(d)
    name = uniq("bt-second")
    made.containers.append(name)
    r = d.cli("run", "-d", "--name", name, "-p", "8080:80", "busybox", "sleep", "3600", check=False)
    assert r.returncode == 125
    err = r.stderr.decode()
    assert re.search(r"Error response from daemon: .*driver failed programming external connectivity on endpoint "
                     rf"{name} \([0-9a-f]+\): Bind for 0\.0\.0\.0:8080 failed: port is already allocated", err), err
    info = inspect(d, name)
    assert info["State"]["Status"] == "created" and info["State"]["Pid"] == 0, info["State"]
    assert not any(info["NetworkSettings"]["Ports"].values())
    # nothing half-made: no veth, namespace, address or rule for it; the first one still answers
    assert settled(d, len(before["veths"])) == before
    assert dnat_rules(d) == rules
    assert get(d, "127.0.0.1", 8080) == (200, web.body)
    status, net = d.api("GET", "/networks/bridge")
    assert info["Id"] not in net["Containers"]
    # a second try fails the same way
    r = d.cli("start", name, check=False)
    assert r.returncode == 1 and "Bind for 0.0.0.0:8080 failed: port is already allocated" in r.stderr.decode()
    assert inspect(d, name)["State"]["Status"] == "created"
    assert settled(d, len(before["veths"])) == before

    # the same host port for another protocol, or on another port, is fine
    udp = made.run("-p", "8080:80/udp", "busybox", "sleep", "3600")
    assert host_port(d, udp, "80/udp") == 8080
    # and a range takes the next free port
    ranged = made.run("-p", "8080-8090:80", "busybox", "sleep", "3600")
    assert 8080 < host_port(d, ranged, "80/tcp") <= 8090


def test_second_port_failing_releases_the_first(daemon, made, web):
    """All or nothing: of two ports, the second is taken; the first is not held for the failed container."""
    d = daemon
    before = settled(d, running(d))
    name = uniq("bt-half")
    made.containers.append(name)
    r = d.cli("run", "-d", "--name", name, "-p", "8086:80", "-p", "8080:81", "busybox", "sleep", "3600",
              check=False)
    assert r.returncode == 125 and "Bind for 0.0.0.0:8080 failed: port is already allocated" in r.stderr.decode()
    assert settled(d, len(before["veths"])) == before
    free = made.run("-p", "8086:80", "busybox", "sleep", "3600")
    assert host_port(d, free, "80/tcp") == 8086
    wait_for(lambda: any("dport 8086 " in rule for rule in dnat_rules(d)), 5, what="8086's rule")


def test_port_names_an_unpublished_port_as_given(daemon, made):
    """docker CLI 28: ``docker port C 99`` says "No public port '99' published for C" (no /tcp added)."""
    d = daemon
    name = uniq("bt-ask")
    made.run("--name", name, "-p", "8088:80", "busybox", "sleep", "3600")
    r = d.cli("port", name, "99", check=False)
    assert r.returncode == 1 and r.stderr.decode() == f"Error: No public port '99' published for {name}\n", r.stderr


def test_ps_prints_an_empty_ports_value_as_an_empty_line(daemon, made):
    """docker CLI 28 prints one line per container, even when the template gives nothing for it."""
    d = daemon
    name = uniq("bt-noports")
    made.containers.append(name)
    d.cli("create", "--name", name, "-p", "8087:80", "busybox", "true")
    out = d.cli("ps", "-a", "--filter", f"name={name}", "--format", "{{.Ports}}").stdout
    assert out == b"\n", out


def test_start_failing_on_a_taken_port_says_which_container(daemon, made, web):
    """docker CLI 28: the daemon's error, then "Error: failed to start containers: NAME", exit status 1."""
    d = daemon
    name = uniq("bt-late")
    made.containers.append(name)
    d.cli("create", "--name", name, "-p", "8080:80", "busybox", "sleep", "3600")
    r = d.cli("start", name, check=False)
    err = r.stderr.decode()
    assert r.returncode == 1
    assert err.startswith("Error response from daemon: ") and \
        "Bind for 0.0.0.0:8080 failed: port is already allocated\n" in err, err
    assert err.endswith(f"Error: failed to start containers: {name}\n"), err
