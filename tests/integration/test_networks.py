"""Networks against a real berthd, runc, veths and nftables: the default bridge, user networks with their embedded
DNS (names, aliases, short IDs, renames, connect/disconnect, forwarding), isolation between networks, --internal,
the network commands and their JSON, Docker's errors for bad input, and nothing left behind (also after kill -9).

berthd runs in a network namespace of its own (tests/support/netns.py says why); "the host" below is that
namespace. Traffic goes only to loopback, to berth's bridges and containers, and to namespaces made here.
Needs root, runc, busybox, ip, nsenter and nft (the fixtures skip otherwise).
"""
from __future__ import annotations

import ipaddress
import secrets
import json
import os
import re
import signal
import uuid
from urllib.parse import urlencode

import pytest

from tests.support.daemon import wait_for
from tests.support.netns import NetMade as Made
from tests.support.netns import (FakeUpstream, assert_nothing_left, daemon_sockets, http_get, inspect, leftovers,
                                 made_with, net_daemon, peer_host, sh, uniq, wait_http)

HTTPD = "mkdir -p /w && echo {token} > /w/f && exec httpd -f -p 80 -h /w"


@pytest.fixture(scope="module")
def daemon():
    """One berthd in its own network namespace for this module (``made`` from conftest uses it too)."""
    yield from net_daemon()


def net_inspect(d, ref: str) -> dict:
    status, info = d.api("GET", f"/networks/{ref}")
    assert status == 200, (status, info)
    return info


def ip_on(d, container: str, network: str) -> str:
    return inspect(d, container)["NetworkSettings"]["Networks"][network]["IPAddress"]


def sh_in(d, container: str, script: str):
    """``berth exec CONTAINER sh -c SCRIPT``: (exit code, stdout + stderr as text)."""
    r = d.cli("exec", container, "sh", "-c", script, check=False)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def resolve(d, container: str, name: str) -> str | None:
    """The address ``ping`` in the container resolves ``name`` to (the first line says it), or None."""
    _, out = sh_in(d, container, f"ping -c1 -W1 {name}")
    m = re.search(r"^PING \S+ \(([\d.]+)\)", out, re.M)
    if m is None:
        assert "bad address" in out, out
    return m[1] if m else None


def pings(d, container: str, target: str) -> bool:
    code, _ = sh_in(d, container, f"ping -c1 -W1 {target}")
    return code == 0


def fetch(d, container: str, url: str) -> str | None:
    code, out = sh_in(d, container, f"wget -q -O - {url}")
    return out if code == 0 else None


def interfaces(d, container: str) -> dict[str, str]:
    """name → IPv4 address/prefix inside the container."""
    code, out = sh_in(d, container, "ip -o -4 addr show")
    assert code == 0, out
    return {m[1]: m[2] for m in re.finditer(r"^\d+: (\S+)\s+inet (\S+)", out, re.M)}


class Lan:
    """Two user networks: ``a`` with web (httpd, alias www), ca and cab; ``b`` with cb and cab."""

    def __init__(self, made: Made) -> None:
        d = made.daemon
        t = uuid.uuid4().hex[:6]
        self.a, self.b = f"bt-a-{t}", f"bt-b-{t}"
        self.web, self.www, self.ca, self.cb, self.cab = (f"{x}-{t}" for x in ("web", "www", "ca", "cb", "cab"))
        self.token = uuid.uuid4().hex
        made.network(self.a)
        made.network(self.b)
        self.web_id = made.run("--name", self.web, "--network", self.a, "--network-alias", self.www, "busybox",
                               "sh", "-c", HTTPD.format(token=self.token))
        for name, net in ((self.ca, self.a), (self.cb, self.b), (self.cab, self.a)):
            made.run("--name", name, "--network", net, "busybox", "sleep", "3600")
        d.cli("network", "connect", self.b, self.cab)
        wait_for(lambda: fetch(d, self.ca, f"http://{self.web}/f") == self.token + "\n", 15,
                 what="web's httpd, fetched by name from ca")


@pytest.fixture(scope="module")
def lan(daemon):
    yield from made_with(daemon, Lan)


# -- the default bridge ----------------------------------------------------------------------------------------------


def test_default_bridge_address_route_hosts_resolv(daemon, made):
    d = daemon
    cid = made.run("busybox", "sleep", "3600")
    info = inspect(d, cid)
    net = info["NetworkSettings"]["Networks"]["bridge"]
    ip, gw = net["IPAddress"], net["Gateway"]
    assert ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("172.17.0.0/16"), net
    assert gw == "172.17.0.1" and net["IPPrefixLen"] == 16, net
    assert info["NetworkSettings"]["IPAddress"] == ip and info["NetworkSettings"]["Gateway"] == gw
    assert net["MacAddress"] and net["NetworkID"] == net_inspect(d, "bridge")["Id"]
    bridge = net_inspect(d, "bridge")
    assert bridge["IPAM"]["Config"] == [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]
    assert bridge["Containers"][cid]["IPv4Address"] == f"{ip}/16"
    assert bridge["Options"]["com.docker.network.bridge.name"] == "berth0"
    # the host side: berth0 holds the gateway address
    addrs = json.loads(d.ns.ip("-j", "-4", "addr", "show", "dev", "berth0").stdout)
    assert [f"{a['local']}/{a['prefixlen']}" for a in addrs[0]["addr_info"]] == ["172.17.0.1/16"]

    # what the process sees
    assert interfaces(d, cid)["eth0"] == f"{ip}/16"
    code, route = sh_in(d, cid, "ip route")
    assert "default via 172.17.0.1 dev eth0" in route, route
    code, out = sh_in(d, cid, "ip link show eth0")
    assert net["MacAddress"] in out, out
    code, hosts = sh_in(d, cid, "cat /etc/hosts")
    assert f"{ip}\t{cid[:12]}" in hosts.splitlines(), hosts
    assert "127.0.0.1\tlocalhost" in hosts.splitlines(), hosts
    code, resolv = sh_in(d, cid, "cat /etc/resolv.conf")
    servers = re.findall(r"^nameserver (\S+)", resolv, re.M)
    # the daemon's only server is a loopback one: dropped, and Docker's fallback used (no embedded DNS here)
    assert servers == ["8.8.8.8", "8.8.4.4"], resolv
    # the gateway is the host: reachable
    assert pings(d, cid, "172.17.0.1")


def test_second_container_gets_the_next_address_and_they_talk(daemon, made):
    d = daemon
    token = uuid.uuid4().hex
    srv = made.run("busybox", "sh", "-c", HTTPD.format(token=token))
    cli = made.run("busybox", "sleep", "3600")
    srv_ip, cli_ip = ip_on(d, srv, "bridge"), ip_on(d, cli, "bridge")
    assert srv_ip != cli_ip
    wait_for(lambda: fetch(d, cli, f"http://{srv_ip}/f") == token + "\n", 15, what="httpd on the default bridge")
    assert pings(d, srv, cli_ip)
    # (no name lookups from the default bridge: its resolv.conf points beyond this machine)


# -- user networks: names --------------------------------------------------------------------------------------------


def test_containers_reach_each_other_by_name(daemon, lan):
    d = daemon
    web_ip = ip_on(d, lan.web, lan.a)
    assert resolve(d, lan.ca, lan.web) == web_ip
    assert pings(d, lan.ca, lan.web)
    assert fetch(d, lan.ca, f"http://{lan.web}/f") == lan.token + "\n"
    # and back, by name
    assert resolve(d, lan.web, lan.ca) == ip_on(d, lan.ca, lan.a)
    assert pings(d, lan.web, lan.ca)
    code, resolv = sh_in(d, lan.ca, "cat /etc/resolv.conf")
    assert re.findall(r"^nameserver (\S+)", resolv, re.M) == ["127.0.0.11"], resolv


def test_alias_short_id_and_network_qualified_names_resolve(daemon, lan):
    d = daemon
    web_ip = ip_on(d, lan.web, lan.a)
    assert resolve(d, lan.ca, lan.www) == web_ip
    assert fetch(d, lan.ca, f"http://{lan.www}/f") == lan.token + "\n"
    assert resolve(d, lan.ca, lan.web_id[:12]) == web_ip
    assert resolve(d, lan.ca, f"{lan.web}.{lan.a}") == web_ip
    assert resolve(d, lan.ca, lan.web.upper()) == web_ip  # DNS names are case-insensitive
    aliases = inspect(d, lan.web)["NetworkSettings"]["Networks"][lan.a]["Aliases"]
    assert lan.www in aliases, aliases


def test_names_do_not_cross_networks(daemon, lan):
    d = daemon
    assert resolve(d, lan.cb, lan.web) is None
    assert resolve(d, lan.cb, lan.www) is None
    assert resolve(d, lan.cb, lan.ca) is None
    assert resolve(d, lan.ca, lan.cb) is None
    assert resolve(d, lan.cb, f"{lan.web}.{lan.a}") is None
    # the container on both networks resolves names on each, with that network's address
    assert resolve(d, lan.cab, lan.web) == ip_on(d, lan.web, lan.a)
    assert resolve(d, lan.cab, lan.cb) == ip_on(d, lan.cb, lan.b)
    # and is found from each network at its address there
    assert resolve(d, lan.ca, lan.cab) == ip_on(d, lan.cab, lan.a)
    assert resolve(d, lan.cb, lan.cab) == ip_on(d, lan.cab, lan.b)


def test_different_networks_cannot_reach_each_other(daemon, lan):
    d = daemon
    web_ip, cb_ip = ip_on(d, lan.web, lan.a), ip_on(d, lan.cb, lan.b)
    assert not pings(d, lan.cb, web_ip)
    assert not pings(d, lan.ca, cb_ip)
    # nor the default bridge's containers, nor they them
    other = Made(d)
    try:
        plain = other.run("busybox", "sleep", "3600")
        plain_ip = ip_on(d, plain, "bridge")
        assert not pings(d, lan.ca, plain_ip)
        assert not pings(d, plain, web_ip)
    finally:
        other.cleanup()
    # a container on both reaches both
    assert pings(d, lan.cab, web_ip)
    assert pings(d, lan.cab, cb_ip)
    assert fetch(d, lan.cab, f"http://{web_ip}/f") == lan.token + "\n"


def test_rename_is_followed(daemon, made, lan):
    d = daemon
    old, new = uniq("bt-old"), uniq("bt-new")
    cid = made.run("--name", old, "--network", lan.a, "busybox", "sleep", "3600")
    made.containers.append(new)
    ip = ip_on(d, cid, lan.a)
    assert resolve(d, lan.ca, old) == ip
    d.cli("rename", old, new)
    assert resolve(d, lan.ca, new) == ip
    assert resolve(d, lan.ca, old) is None
    assert resolve(d, lan.ca, cid[:12]) == ip
    assert net_inspect(d, lan.a)["Containers"][cid]["Name"] == new


def test_connect_and_disconnect_live(daemon, made, lan):
    d = daemon
    name, alias = uniq("bt-mover"), uniq("bt-alias")
    cid = made.run("--name", name, "--network", lan.b, "busybox", "sleep", "3600")
    assert list(interfaces(d, cid)) == ["lo", "eth0"]
    assert resolve(d, name, lan.web) is None
    assert resolve(d, lan.ca, name) is None

    d.cli("network", "connect", "--alias", alias, lan.a, name)
    ifs = interfaces(d, cid)
    ip = ip_on(d, cid, lan.a)
    assert ifs.get("eth1") == f"{ip}/16", ifs
    assert ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(net_inspect(d, lan.a)["IPAM"]["Config"][0]["Subnet"])
    assert resolve(d, lan.ca, name) == ip
    assert resolve(d, lan.ca, alias) == ip
    assert resolve(d, name, lan.web) == ip_on(d, lan.web, lan.a)
    assert fetch(d, name, f"http://{lan.web}/f") == lan.token + "\n"
    assert net_inspect(d, lan.a)["Containers"][cid]["IPv4Address"] == f"{ip}/16"
    # still on its first network, with its route there
    code, route = sh_in(d, cid, "ip route")
    assert f"default via {net_inspect(d, lan.b)['IPAM']['Config'][0]['Gateway']} dev eth0" in route, route

    d.cli("network", "disconnect", lan.a, name)
    assert list(interfaces(d, cid)) == ["lo", "eth0"]
    assert resolve(d, lan.ca, name) is None
    assert resolve(d, lan.ca, alias) is None
    assert resolve(d, name, lan.web) is None
    assert not pings(d, name, ip_on(d, lan.web, lan.a))
    assert cid not in net_inspect(d, lan.a)["Containers"]
    assert lan.a not in inspect(d, cid)["NetworkSettings"]["Networks"]
    # its own network still works
    assert resolve(d, lan.cb, name) == ip_on(d, cid, lan.b)


def test_connect_a_stopped_container_takes_effect_at_start(daemon, made, lan):
    d = daemon
    name = uniq("bt-later")
    made.containers.append(name)
    d.cli("create", "--name", name, "--network", lan.b, "busybox", "sleep", "3600")
    d.cli("network", "connect", lan.a, name)
    d.cli("start", name)
    assert set(interfaces(d, name)) == {"lo", "eth0", "eth1"}
    assert resolve(d, lan.ca, name) == ip_on(d, name, lan.a)
    assert resolve(d, lan.cb, name) == ip_on(d, name, lan.b)


def test_create_time_networking_config_and_connect_with_a_fixed_ip(daemon, made, lan):
    """The API's NetworkingConfig (aliases, IPAMConfig) at create, and ``connect --ip --alias`` later."""
    d = daemon
    net = uniq("bt-fixed")
    made.network(net, "--subnet", "10.127.0.0/24")
    name = uniq("bt-api")
    status, body = d.api("POST", f"/containers/create?name={name}", {
        "Image": "busybox:latest", "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": net},
        "NetworkingConfig": {"EndpointsConfig": {net: {"IPAMConfig": {"IPv4Address": "10.127.0.42"},
                                                       "Aliases": ["db-primary"]}}}})
    assert status == 201, body
    made.containers.append(body["Id"])
    assert d.api("POST", f"/containers/{body['Id']}/start")[0] == 204
    ep = inspect(d, name)["NetworkSettings"]["Networks"][net]
    assert ep["IPAddress"] == "10.127.0.42" and ep["IPAMConfig"]["IPv4Address"] == "10.127.0.42", ep
    assert "db-primary" in ep["Aliases"], ep
    assert interfaces(d, name)["eth0"] == "10.127.0.42/24"
    peer_name = uniq("bt-peer")
    made.run("--name", peer_name, "--network", net, "busybox", "sleep", "3600")
    assert resolve(d, peer_name, "db-primary") == "10.127.0.42"
    assert resolve(d, peer_name, name) == "10.127.0.42"

    d.cli("network", "connect", "--ip", "10.127.0.43", "--alias", "cache", net, lan.cb)
    try:
        assert interfaces(d, lan.cb)["eth1"] == "10.127.0.43/24"
        assert resolve(d, peer_name, "cache") == "10.127.0.43"
        assert net_inspect(d, net)["Containers"][inspect(d, lan.cb)["Id"]]["IPv4Address"] == "10.127.0.43/24"
    finally:
        d.cli("network", "disconnect", net, lan.cb)
    # the fixed address is the container's: after a restart it has it again
    d.cli("restart", "-t", "0", name)
    assert interfaces(d, name)["eth0"] == "10.127.0.42/24"
    assert resolve(d, peer_name, "db-primary") == "10.127.0.42"


def test_network_modes_none_host_and_container(daemon, made, lan):
    d = daemon
    out, code, err = _run_rm(d, "--network", "none", "busybox", "sh", "-c", "ip -o link; ip route; cat /etc/hosts")
    assert code == 0, err
    assert re.findall(r"^\d+: (\S+):", out, re.M) == ["lo"], out
    assert "default" not in out
    # host: the host's own links (berth's bridges among them) and no namespace of its own
    out, code, err = _run_rm(d, "--network", "host", "busybox", "ip", "-o", "link")
    assert code == 0, err
    assert {"lo", "berth0"} <= set(re.findall(r"^\d+: ([^:@]+)", out, re.M)), out
    # container:NAME: the other container's interfaces, and its services on loopback
    out, code, err = _run_rm(d, "--network", f"container:{lan.web}", "busybox", "sh", "-c",
                             "ip -o -4 addr show eth0; wget -q -O - http://127.0.0.1/f")
    assert code == 0, err
    assert f"inet {ip_on(d, lan.web, lan.a)}/16" in out and lan.token in out, out
    # which cannot be combined with other networks
    r = d.cli("run", "--rm", "--network", f"container:{lan.web}", "--network", lan.b, "busybox", "true", check=False)
    assert r.returncode == 125 and "conflicting options" in r.stderr.decode(), r.stderr
    joined = made.run("--network", f"container:{lan.web}", "busybox", "sleep", "3600")
    r = d.cli("network", "connect", lan.b, joined, check=False)
    assert r.returncode == 1 and r.stderr.decode() == (
        "Error response from daemon: container sharing network namespace with another container or host cannot be "
        "connected to any other network\n"), r.stderr


# -- --internal and egress -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def peer(daemon):
    """A test host beside berthd's host (198.18.0.2, reached through the host's 198.18.0.1)."""
    yield from peer_host(daemon)


def test_internal_network_blocks_egress(daemon, made, lan, peer):
    d = daemon
    inner = uniq("bt-int")
    made.network(inner, "--internal")
    info = net_inspect(d, inner)
    assert info["Internal"] is True
    gw = info["IPAM"]["Config"][0]["Gateway"]
    a, b = uniq("bt-in"), uniq("bt-in")
    for name in (a, b):
        made.run("--name", name, "--network", inner, "busybox", "sleep", "3600")

    # a normal network's container goes out (masqueraded) to the test host ...
    assert pings(d, lan.ca, peer.ip)
    # ... an internal one has no route out, reaches no other bridge's gateway or container, nor the test host
    code, route = sh_in(d, a, "ip route")
    assert "default" not in route, route
    for target in (peer.ip, "172.17.0.1", net_inspect(d, lan.a)["IPAM"]["Config"][0]["Gateway"],
                   ip_on(d, lan.web, lan.a)):
        code, out = sh_in(d, a, f"ping -c1 -W1 {target}")
        assert code != 0, (target, out)
    # even a container allowed to add the route itself is dropped beyond its bridge
    for target in (peer.ip, ip_on(d, lan.web, lan.a)):
        out, code, err = _run_rm(d, "--network", inner, "--cap-add", "NET_ADMIN", "busybox", "sh", "-c",
                                 f"ip route add default via {gw} || exit 9; ip route; ping -c1 -W1 {target}")
        assert code == 1 and f"default via {gw}" in out, (target, code, out, err)
    # inside the network, names and addresses work
    assert resolve(d, a, b) == ip_on(d, b, inner)
    assert pings(d, a, b)
    assert pings(d, a, gw)


def _run_rm(d, *args: str) -> tuple[str, int, str]:
    r = d.cli("run", "--rm", *args, check=False)
    return r.stdout.decode(), r.returncode, r.stderr.decode()


# -- DNS forwarding --------------------------------------------------------------------------------------------------


def test_unknown_names_are_forwarded_to_the_daemon_dns(daemon, made, lan):
    d = daemon
    try:
        upstream = FakeUpstream(d.ns.path, {"upstream.test": "127.0.0.1"})
    except OSError as e:
        pytest.skip(f"cannot serve DNS on the test resolver's address: {e}")
    try:
        # answered by the upstream (the container pings its own loopback at that address)
        _, out = sh_in(d, lan.ca, "ping -c1 -W1 upstream.test")
        assert out.startswith("PING upstream.test (127.0.0.1)"), out
        assert "1 packets received" in out, out
        assert "upstream.test A" in upstream.asked, upstream.asked
        # an unknown name: the upstream's NXDOMAIN comes back
        assert resolve(d, lan.ca, "nothing-here.test") is None
        assert "nothing-here.test A" in upstream.asked, upstream.asked
        # container names never reach the upstream
        asked = len(upstream.asked)
        assert resolve(d, lan.ca, lan.web) is not None
        assert upstream.asked[asked:] == [], upstream.asked
        # a container only on an internal network asks nobody outside
        inner = uniq("bt-int")
        made.network(inner, "--internal")
        box = made.run("--network", inner, "busybox", "sleep", "3600")
        asked = len(upstream.asked)
        assert resolve(d, box, "upstream.test") is None
        assert upstream.asked[asked:] == [], upstream.asked
    finally:
        upstream.close()


# -- the network commands and their JSON -----------------------------------------------------------------------------


def test_network_ls_inspect_rm(daemon, made):
    d = daemon
    name = uniq("bt-cli")
    bridge = "btbr" + uuid.uuid4().hex[:8]
    nid = made.network(name, "--subnet", "10.123.0.0/16", "--gateway", "10.123.0.254", "--ip-range",
                       "10.123.5.0/24", "--label", "team=net", "--label", "tier", "-o",
                       f"com.docker.network.bridge.name={bridge}")
    assert re.fullmatch(r"[0-9a-f]{64}", nid), nid
    plain = uniq("bt-plain")
    plain_id = made.network(plain)

    out = d.cli("network", "ls").stdout.decode().splitlines()
    assert re.fullmatch(r"NETWORK ID\s+NAME\s+DRIVER\s+SCOPE", out[0]), out[0]
    rows = {line.split()[1]: line.split() for line in out[1:]}
    assert rows[name] == [nid[:12], name, "bridge", "local"]
    assert rows["bridge"][2:] == ["bridge", "local"]
    assert rows["host"][2:] == ["host", "local"] and rows["none"][2:] == ["null", "local"]
    assert d.cli("network", "ls", "-q", "--filter", f"name={name}").stdout.decode().split() == [nid[:12]]
    assert d.cli("network", "ls", "--filter", "label=team=net", "--format", "{{.Name}} {{.Driver}}").stdout.decode() \
        == f"{name} bridge\n"
    assert d.cli("network", "ls", "--no-trunc", "-q", "--filter", f"id={nid[:10]}").stdout.decode() == nid + "\n"

    [info] = json.loads(d.cli("network", "inspect", name).stdout)
    assert info["Name"] == name and info["Id"] == nid
    assert info["Driver"] == "bridge" and info["Scope"] == "local"
    assert info["Internal"] is False and info["Attachable"] is False and info["EnableIPv6"] is False
    assert info["IPAM"]["Driver"] == "default"
    assert info["IPAM"]["Config"] == [{"Subnet": "10.123.0.0/16", "IPRange": "10.123.5.0/24",
                                       "Gateway": "10.123.0.254"}]
    assert info["Labels"] == {"team": "net", "tier": ""}
    assert info["Options"] == {"com.docker.network.bridge.name": bridge}
    assert info["Containers"] == {}
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", info["Created"]), info["Created"]
    assert d.cli("network", "inspect", "-f", "{{.Name}} {{range .IPAM.Config}}{{.Gateway}}{{end}}", nid[:12]) \
        .stdout.decode() == f"{name} 10.123.0.254\n"
    # the bridges on the host: the chosen name, and berth-<9 hex of the ID> for the other
    addrs = json.loads(d.ns.ip("-j", "-4", "addr", "show", "dev", bridge).stdout)
    assert [f"{a['local']}/{a['prefixlen']}" for a in addrs[0]["addr_info"]] == ["10.123.0.254/16"]
    assert f"berth-{plain_id[:9]}" in d.ns.links()

    # containers appear in the Containers map, addressed from the ip-range
    c1 = made.run("--name", uniq("bt-c"), "--network", name, "busybox", "sleep", "3600")
    c2 = made.run("--name", uniq("bt-c"), "--network", name, "--ip", "10.123.5.200", "busybox", "sleep", "3600")
    status, info = d.api("GET", f"/networks/{nid}")
    assert status == 200
    cs = info["Containers"]
    assert set(cs) == {c1, c2}
    for cid in (c1, c2):
        ep = inspect(d, cid)["NetworkSettings"]["Networks"][name]
        assert cs[cid]["Name"] == inspect(d, cid)["Name"].lstrip("/")
        assert cs[cid]["IPv4Address"] == f"{ep['IPAddress']}/16"
        assert cs[cid]["MacAddress"] == ep["MacAddress"]
        assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", cs[cid]["MacAddress"])
        assert cs[cid]["EndpointID"] == ep["EndpointID"] and len(ep["EndpointID"]) == 64
        assert cs[cid]["IPv6Address"] == ""
        assert ep["NetworkID"] == nid and ep["Gateway"] == "10.123.0.254"
    assert ipaddress.IPv4Address(cs[c1]["IPv4Address"].split("/")[0]) in ipaddress.IPv4Network("10.123.5.0/24")
    assert cs[c2]["IPv4Address"] == "10.123.5.200/16"  # a fixed address must lie in the ip-range, as in Docker
    assert interfaces(d, c2)["eth0"] == "10.123.5.200/16"
    # GET /networks lists it with the same shape
    status, items = d.api("GET", "/networks?" + urlencode({"filters": json.dumps({"name": [name]})}))
    assert status == 200 and [n["Id"] for n in items] == [nid]
    assert items[0]["IPAM"] == info["IPAM"]

    # rm: refused while containers run on it, then it goes with its bridge
    for cid in (c1, c2):
        d.api("DELETE", f"/containers/{cid}?force=1")
    r = d.cli("network", "rm", name, plain)
    assert r.stdout.decode() == f"{name}\n{plain}\n"
    assert bridge not in d.ns.links() and f"berth-{plain_id[:9]}" not in d.ns.links()
    r = d.cli("network", "inspect", name, check=False)
    assert r.returncode == 1 and f"network {name} not found" in r.stderr.decode(), r.stderr
    r = d.cli("network", "rm", name, check=False)
    assert r.returncode == 1 and f"Error response from daemon: network {name} not found" in r.stderr.decode()
    # predefined networks stay
    r = d.cli("network", "rm", "bridge", check=False)
    assert r.returncode == 1 and "bridge is a pre-defined network and cannot be removed" in r.stderr.decode()


def test_network_prune(daemon, made):
    d = daemon
    unused, busy, kept = uniq("bt-unused"), uniq("bt-busy"), uniq("bt-kept")
    made.network(unused)
    made.network(busy)
    made.network(kept, "--label", "keep=1")
    made.run("--network", busy, "busybox", "sleep", "3600")
    out = d.cli("network", "prune", "-f", "--filter", "label!=keep=1").stdout.decode()
    assert out.startswith("Deleted Networks:\n") and out.endswith("\n\n"), out
    deleted = out.splitlines()[1:-1]
    assert unused in deleted and busy not in deleted and kept not in deleted, out
    names = d.cli("network", "ls", "--format", "{{.Name}}").stdout.decode().split()
    assert unused not in names and busy in names and kept in names
    assert {"bridge", "host", "none"} <= set(names)
    status, res = d.api("POST", "/networks/prune?" + urlencode({"filters": json.dumps({"label": ["keep=1"]})}))
    assert status == 200 and res == {"NetworksDeleted": [kept]}, res


# -- bad input: Docker's texts, state unchanged ----------------------------------------------------------------------


def _snapshot(d) -> tuple:
    """Networks (with their containers), running containers, host links."""
    status, nets = d.api("GET", "/networks")
    status, cs = d.api("GET", "/containers/json")
    full = [net_inspect(d, n["Id"]) for n in nets]
    return (sorted((n["Name"], json.dumps(n["IPAM"], sort_keys=True), json.dumps(n["Containers"], sort_keys=True))
                   for n in full), sorted(c["Id"] for c in cs), sorted(d.ns.links()))


def test_bad_network_input(daemon, made):
    d = daemon
    base = uniq("bt-base")
    made.network(base, "--subnet", "10.124.0.0/24", "--gateway", "10.124.0.1")
    holder = uniq("bt-holder")
    hid = made.run("--name", holder, "--network", base, "--ip", "10.124.0.5", "busybox", "sleep", "3600")
    before = _snapshot(d)

    other = uniq("bt-other")
    made.networks.append(other)
    r = d.cli("network", "create", "--subnet", "10.124.0.0/16", other, check=False)
    assert r.returncode == 1
    assert r.stderr.decode() == ("Error response from daemon: invalid pool request: "
                                 "Pool overlaps with other one on this address space\n")
    status, body = d.api("POST", "/networks/create",
                         {"Name": other, "IPAM": {"Config": [{"Subnet": "10.124.0.128/25"}]}})
    assert status == 403 and body["message"] == \
        "invalid pool request: Pool overlaps with other one on this address space", body

    status, body = d.api("POST", "/networks/create",
                         {"Name": other, "IPAM": {"Config": [{"Subnet": "10.125.0.0/24", "Gateway": "10.126.0.1"}]}})
    assert status == 400 and body["message"] == ("invalid network config:\ninvalid gateway 10.126.0.1: "
                                                 "parent subnet 10.125.0.0/24 doesn't contain this address"), body
    # the docker CLI checks this one itself, and so does berth's
    r = d.cli("network", "create", "--subnet", "10.125.0.0/24", "--gateway", "10.126.0.1", other, check=False)
    assert r.returncode == 1 and r.stderr.decode() == "no matching subnet for gateway 10.126.0.1\n"

    r = d.cli("network", "create", base, check=False)
    assert r.returncode == 1
    assert r.stderr.decode() == f"Error response from daemon: network with name {base} already exists\n"
    status, body = d.api("POST", "/networks/create", {"Name": base})
    assert status == 409 and body["message"] == f"network with name {base} already exists"

    r = d.cli("run", "-d", "--network", base, "--ip", "10.99.0.5", "busybox", "sleep", "3600", check=False)
    assert r.returncode == 125
    assert "Error response from daemon: invalid endpoint settings:\n" \
           "no configured subnet or ip-range contain the IP address 10.99.0.5" in r.stderr.decode(), r.stderr
    r = d.cli("run", "-d", "--network", base, "--ip", "10.124.0.5", "busybox", "sleep", "3600", check=False)
    assert r.returncode == 125
    assert "Error response from daemon: Address already in use" in r.stderr.decode(), r.stderr
    made.containers += [c["Id"] for c in d.api("GET", "/containers/json?all=1")[1]]  # Docker would keep them, Created

    ep_id = inspect(d, hid)["NetworkSettings"]["Networks"][base]["EndpointID"]
    r = d.cli("network", "rm", base, check=False)
    assert r.returncode == 1
    assert r.stderr.decode().startswith(
        f'Error response from daemon: error while removing network: network {base} has active endpoints '
        f'(name:"{holder}" id:"{ep_id[:12]}")\n'), r.stderr  # the endpoint's ID, as moby's ActiveEndpointsError
    status, body = d.api("DELETE", f"/networks/{base}")
    assert status == 403 and "has active endpoints" in body["message"]

    r = d.cli("network", "connect", base, holder, check=False)
    assert r.returncode == 1
    assert r.stderr.decode() == \
        f"Error response from daemon: endpoint with name {holder} already exists in network {base}\n"

    r = d.cli("network", "connect", "no-such-network", holder, check=False)
    assert r.returncode == 1 and "network no-such-network not found" in r.stderr.decode()

    for spec, text in (("70000:80", "invalid hostPort: 70000"), ("abc", "invalid containerPort: abc")):
        r = d.cli("run", "-d", "-p", spec, "busybox", "true", check=False)
        assert r.returncode == 125 and r.stderr.decode().startswith(f"berth: {text}\n"), r.stderr
        r = d.cli("create", "-p", spec, "busybox", "true", check=False)
        assert r.returncode == 125 and r.stderr.decode().startswith(f"berth: {text}\n"), r.stderr

    # nothing changed: same networks, containers, links; the holder keeps its address
    assert _snapshot(d) == before
    assert ip_on(d, holder, base) == "10.124.0.5"
    assert interfaces(d, holder)["eth0"] == "10.124.0.5/24"


def test_fixed_ip_needs_a_user_configured_subnet(daemon, made):
    """Docker refuses --ip on a network whose subnet it chose itself, even for an address inside it."""
    d = daemon
    net = "auto-" + secrets.token_hex(3)
    d.cli("network", "create", net)
    try:
        subnet = ipaddress.IPv4Network(net_inspect(d, net)["IPAM"]["Config"][0]["Subnet"])
        inside = str(subnet.network_address + 200)
        text = ("Error response from daemon: invalid endpoint settings:\n"
                "user specified IP address is supported only when connecting to networks with user configured subnets")
        r = d.cli("run", "-d", "--network", net, "--ip", inside, "busybox", "sleep", "3600", check=False)
        if r.returncode == 0:
            made.containers.append(r.stdout.decode().strip())
        assert r.returncode == 125 and text in r.stderr.decode(), r.stderr
        other = d.cli("create", "busybox", "true").stdout.decode().strip()
        made.containers.append(other)
        r = d.cli("network", "connect", "--ip", inside, net, other, check=False)
        assert r.returncode == 1 and text in r.stderr.decode(), r.stderr
    finally:
        d.cli("network", "rm", net, check=False)
    # and on the default bridge
    r = d.cli("run", "-d", "--ip", "172.17.0.200", "busybox", "sleep", "3600", check=False)
    assert r.returncode == 125 and "user specified IP address is supported on user defined networks only" \
        in r.stderr.decode(), r.stderr


# -- nothing left behind ---------------------------------------------------------------------------------------------


def _remove_everything(d) -> None:
    d.remove_all_containers()
    status, nets = d.api("GET", "/networks")
    for n in nets:
        if n["Name"] not in ("bridge", "host", "none"):
            status, body = d.api("DELETE", f"/networks/{n['Id']}")
            assert status == 204, (n["Name"], status, body)


def test_nothing_left_after_removing_everything(daemon, made):
    d = daemon
    _remove_everything(d)  # what earlier tests shared (the module's ``lan``) goes too: count from zero
    assert_nothing_left(d)
    net1, net2 = uniq("bt-leak"), uniq("bt-leak")
    made.network(net1)
    made.network(net2, "--internal")
    made.run("--network", net1, "-p", "18080:80", "busybox", "sleep", "3600")
    made.run("-p", "18081:80", "-p", "18082:81/udp", "busybox", "sleep", "3600")
    both = made.run("--network", net1, "busybox", "sleep", "3600")
    d.cli("network", "connect", net2, both)
    made.run("--network", "none", "busybox", "sleep", "3600")
    stopped = made.run("--network", net2, "-p", "18083:80", "busybox", "sleep", "3600")
    d.cli("kill", stopped)
    d.cli("wait", stopped)
    # what is in use now: a veth per attachment, a namespace per container with a bridge network, a rule per port
    now = wait_for(lambda: (lambda n: n if len(n["veths"]) == 4 else None)(leftovers(d)), 5,
                   what="the killed container's veth to go")
    assert len(now["bridges"]) == 2 and len(now["netns files"]) == 3 and len(now["netns mounts"]) == 3, now
    assert len(now["dnat rules"]) == 3, now

    _remove_everything(d)
    assert_nothing_left(d)
    # no DNS listener or reserved host port is left open either
    wait_for(lambda: daemon_sockets(d) <= d.baseline_sockets, 5,
             what=f"berthd's sockets to come back to {d.baseline_sockets}")


@pytest.fixture
def own_daemon():
    """A berthd of the test's own, to kill -9."""
    yield from net_daemon()


def test_kill9_restart_reconciles(own_daemon):
    d = own_daemon
    m = Made(d)
    net = uniq("bt-crash")
    m.network(net)
    token = uuid.uuid4().hex
    svc = m.run("--name", "svc", "--network", net, "--network-alias", "api", "-p", "18090:80", "busybox",
                "sh", "-c", HTTPD.format(token=token))
    client = m.run("--name", "client", "--network", net, "busybox", "sleep", "3600")
    gone = m.run("--name", "gone", "--network", net, "-p", "18091:80", "busybox", "sleep", "3600")
    wait_http(d.ns.path, "127.0.0.1", 18090, "/f", token.encode() + b"\n")
    ips = {c: ip_on(d, c, net) for c in (svc, client)}
    gone_pid = inspect(d, gone)["State"]["Pid"]
    before = leftovers(d)

    d.kill9()
    # while berthd is away: one container dies (killed by hand), and a crash left things half-made
    os.kill(gone_pid, signal.SIGKILL)
    wait_for(lambda: os.path.exists(os.path.join(d.exec_root, "containers", gone, "exit")), 10,
             what="the shim to record gone's exit")
    stray_ns = os.path.join(d.exec_root, "netns", "0123456789ab")
    open(stray_ns, "w").close()
    sh("unshare", "--net", "--", "mount", "--bind", "/proc/self/ns/net", stray_ns)  # a namespace nobody owns
    # links berthd made (marked with its ifalias) that nothing uses any more, and one it did not make
    d.ns.ip("link", "add", "bv00deadbeef", "type", "veth", "peer", "name", "xv00deadbeef")
    d.ns.ip("link", "set", "bv00deadbeef", "alias", d.owner)
    d.ns.ip("link", "add", "berth-0deadbeef", "type", "bridge")
    d.ns.ip("link", "set", "berth-0deadbeef", "alias", d.owner)
    d.ns.ip("link", "add", "berth-1notmine", "type", "bridge")

    d.start()
    assert inspect(d, "svc")["State"]["Running"] and inspect(d, "client")["State"]["Running"]
    assert inspect(d, "gone")["State"]["Status"] == "exited"
    # running containers keep their addresses, names, aliases and published port
    assert {c: ip_on(d, c, net) for c in (svc, client)} == ips
    assert resolve(d, "client", "svc") == ips[svc]
    assert resolve(d, "client", "api") == ips[svc]
    assert resolve(d, "client", "gone") is None
    assert fetch(d, "client", "http://svc/f") == token + "\n"
    assert http_get(d.ns.path, "127.0.0.1", 18090, "/f") == (200, token.encode() + b"\n")
    # what the dead container and the crash left is gone
    now = leftovers(d)
    assert now["veths"] == [v for v in before["veths"] if v in now["veths"]] and len(now["veths"]) == 2, (before, now)
    assert now["bridges"] == sorted(before["bridges"] + ["berth-1notmine"]), now  # the unmarked one stays
    assert "xv00deadbeef" not in d.ns.links()  # gone with its pair
    assert now["netns files"] == sorted([svc[:12], client[:12]]) and now["netns mounts"] == sorted(
        os.path.join(d.exec_root, "netns", c[:12]) for c in (svc, client)), now
    assert now["dnat rules"] == [f"tcp dport 18090 dnat to {ips[svc]}:80"], now
    # the dead container's port is free again, and new containers get fresh addresses
    token2 = uuid.uuid4().hex
    fresh = m.run("--network", net, "-p", "18091:80", "busybox", "sh", "-c", HTTPD.format(token=token2))
    assert ip_on(d, fresh, net) not in ips.values()
    wait_http(d.ns.path, "127.0.0.1", 18091, "/f", token2.encode() + b"\n")
    assert resolve(d, "client", fresh[:12]) == ip_on(d, fresh, net)

    m.cleanup()
    _remove_everything(d)
    d.ns.ip("link", "del", "berth-1notmine")
    assert_nothing_left(d)


def test_a_container_disconnected_from_every_network_starts_with_loopback_only(daemon, made):
    d = daemon
    name, net = uniq("bt-alone"), uniq("bt-alone-net")
    made.network(net)
    made.container(name)
    d.cli("create", "--name", name, "--network", net, "busybox", "sleep", "3600")
    d.cli("network", "disconnect", net, name)
    d.cli("start", name)
    assert list(interfaces(d, name)) == ["lo"]
