"""The real docker CLI (client 28.2.2) against berthd's networks: ``docker network ...``, ``docker run --network``,
``docker run -p``, ``docker port`` and the PORTS column, with Docker's own error texts.

Nothing here reaches a registry (every ``docker run`` is ``--pull=never`` on the ``daemon`` fixture's local busybox),
and traffic goes only to 127.0.0.1 (published ports) or between containers on berth's own bridges. Subnets are
picked at random in 10.200.0.0-10.249.255.0/24 and checked against the host's routes and berthd's networks first;
host ports are ones the kernel just handed out, retried if somebody took them in between.

Needs root, runc and busybox (the ``daemon`` fixture skips otherwise).
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import uuid

import pytest

from tests.support.daemon import wait_for
from tests.support.dockercli import err, out, refused, run
from tests.support.nets import NetworksMade, bridged_daemon, free_port, free_subnet, http_get, uniq

pytestmark = pytest.mark.root

HEX64 = re.compile(r"^[0-9a-f]{64}$")


class Made(NetworksMade):
    prefix = "cnet"


def subnet_and_gateway(daemon) -> tuple[str, str]:
    """(subnet, gateway): a /24 that neither the host's routes nor berthd's networks touch."""
    net = free_subnet(daemon)
    return str(net), str(net.network_address + 1)


def create_network(daemon, made, *opts: str, subnet: bool = True) -> tuple[str, str | None, str | None]:
    """(name, subnet, gateway) of a new bridge network, with a free subnet unless ``subnet`` is False."""
    name = made.network()
    sub = gw = None
    if subnet:
        sub, gw = subnet_and_gateway(daemon)
        opts = ("--subnet", sub, "--gateway", gw, *opts)
    p = daemon.docker("network", "create", *opts, name, check=False)
    assert p.returncode == 0, err(p)
    assert HEX64.match(out(p).strip()), out(p)
    return name, sub, gw


def inspect_network(daemon, name: str) -> dict:
    p = daemon.docker("network", "inspect", name, check=False)
    assert p.returncode == 0, err(p)
    items = json.loads(out(p))
    assert len(items) == 1
    return items[0]


def sleeper(daemon, made, *opts: str, prefix: str = "cnet") -> str:
    name = made.name(prefix)
    p = run(daemon, "-d", "--name", name, *opts, "busybox", "sleep", "300")
    assert p.returncode == 0, err(p)
    return name


def httpd(daemon, made, publish: str | None = None) -> tuple[str, int]:
    """(name, host port) of a busybox httpd serving /etc, published on 127.0.0.1 (a fresh port, retried if taken)."""
    for _ in range(5):
        port = free_port()
        spec = publish or f"127.0.0.1:{port}:80"
        name = made.name("cnet-web")
        p = run(daemon, "-d", "--name", name, "-p", spec.format(port=port), "busybox", "httpd", "-f", "-p", "80",
                "-h", "/etc")
        if p.returncode == 0:
            return name, port
        assert "port is already allocated" in err(p) or "address already in use" in err(p), err(p)
    raise AssertionError("no free host port after 5 tries")


@pytest.fixture(scope="module")
def daemon():
    """This module's own berthd, whose default bridge has a host link and a /24 of its own (see
    ``tests.support.nets.bridged_daemon``). It overrides the session ``daemon`` fixture in this module, so ``made``
    and ``client`` use it.
    """
    yield from bridged_daemon()


# --- network create / ls / inspect / rm --------------------------------------------------------------------


def test_default_networks_are_listed(daemon, made):
    p = daemon.docker("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}", check=False)
    assert p.returncode == 0, err(p)
    rows = set(out(p).splitlines())
    assert {"bridge bridge local", "host host local", "none null local"} <= rows

    bridge = inspect_network(daemon, "bridge")
    assert bridge["Name"] == "bridge" and bridge["Driver"] == "bridge"
    assert bridge["Options"].get("com.docker.network.bridge.default_bridge") == "true"
    assert bridge["IPAM"]["Config"][0]["Subnet"]


def test_network_create_with_options_inspect_and_rm(daemon, made):
    bridge_name = "bt" + uuid.uuid4().hex[:10]
    name, sub, gw = create_network(daemon, made, "--label", "tier=backend", "--label", "team=ops", "--internal",
                                   "-o", f"com.docker.network.bridge.name={bridge_name}")

    p = daemon.docker("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", name, check=False)
    assert (p.returncode, out(p)) == (0, f"{sub}\n"), err(p)
    p = daemon.docker("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", name, check=False)
    assert (p.returncode, out(p)) == (0, f"{gw}\n"), err(p)
    p = daemon.docker("network", "inspect", "-f", "{{json .Containers}}", name, check=False)
    assert (p.returncode, out(p)) == (0, "{}\n"), err(p)
    p = daemon.docker("network", "inspect", "-f", "{{.Internal}} {{.Driver}} {{.Scope}} {{index .Labels \"tier\"}}",
                      name, check=False)
    assert (p.returncode, out(p)) == (0, "true bridge local backend\n"), err(p)

    n = inspect_network(daemon, name)
    assert n["Name"] == name and HEX64.match(n["Id"])
    assert n["Driver"] == "bridge" and n["Scope"] == "local"
    assert n["Internal"] is True and n["Attachable"] is False and n["Ingress"] is False
    assert n["EnableIPv6"] is False
    assert n["IPAM"]["Driver"] == "default"
    assert n["IPAM"]["Config"] == [{"Subnet": sub, "Gateway": gw}]
    assert n["Labels"] == {"tier": "backend", "team": "ops"}
    assert n["Options"] == {"com.docker.network.bridge.name": bridge_name}
    assert n["Containers"] == {}

    # berthd made the host bridge under the name asked for
    assert subprocess.run(["ip", "link", "show", bridge_name], capture_output=True).returncode == 0

    p = daemon.docker("network", "rm", name, check=False)
    assert (p.returncode, out(p)) == (0, f"{name}\n"), err(p)
    assert subprocess.run(["ip", "link", "show", bridge_name], capture_output=True).returncode != 0
    p = daemon.docker("network", "inspect", name, check=False)
    assert p.returncode == 1
    assert f"Error response from daemon: network {name} not found" in err(p)


def test_network_ls_quiet_filters_and_format(daemon, made):
    label = "cnet-ls=" + uuid.uuid4().hex[:8]
    a, _, _ = create_network(daemon, made, "--label", label, subnet=False)
    b, _, _ = create_network(daemon, made, subnet=False)
    a_id = inspect_network(daemon, a)["Id"]

    p = daemon.docker("network", "ls", check=False)
    assert p.returncode == 0, err(p)
    lines = out(p).splitlines()
    assert lines[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert any(line.split() == [a_id[:12], a, "bridge", "local"] for line in lines[1:]), out(p)

    p = daemon.docker("network", "ls", "-q", "--filter", f"name={a}", check=False)
    assert (p.returncode, out(p)) == (0, f"{a_id[:12]}\n"), err(p)
    p = daemon.docker("network", "ls", "-q", "--no-trunc", "--filter", f"name={a}", check=False)
    assert (p.returncode, out(p)) == (0, f"{a_id}\n"), err(p)

    p = daemon.docker("network", "ls", "--filter", f"label={label}", "--format", "{{.Name}}", check=False)
    assert (p.returncode, out(p)) == (0, f"{a}\n"), err(p)
    p = daemon.docker("network", "ls", "--filter", f"label={label.split('=')[0]}", "--format", "{{.Name}}",
                      check=False)
    assert (p.returncode, out(p)) == (0, f"{a}\n"), err(p)

    p = daemon.docker("network", "ls", "--filter", "driver=bridge", "--format", "{{.Name}}", check=False)
    assert p.returncode == 0, err(p)
    names = out(p).splitlines()
    assert {"bridge", a, b} <= set(names) and "host" not in names and "none" not in names

    p = daemon.docker("network", "ls", "--filter", f"name={a}", "--format",
                      "{{.ID}}|{{.Name}}|{{.Driver}}|{{.Scope}}|{{.Internal}}|{{.IPv6}}|{{.Labels}}", check=False)
    assert (p.returncode, out(p)) == (0, f"{a_id[:12]}|{a}|bridge|local|false|false|{label}\n"), err(p)

    p = daemon.docker("network", "ls", "--filter", f"name={a}", "--format", "json", check=False)
    assert p.returncode == 0, err(p)
    row = json.loads(out(p))
    assert (row["Name"], row["Driver"], row["Scope"], row["ID"]) == (a, "bridge", "local", a_id[:12])


def test_network_prune_removes_only_unused(daemon, made):
    label = "cnet-prune=" + uuid.uuid4().hex[:8]
    unused1, _, _ = create_network(daemon, made, "--label", label, subnet=False)
    unused2, _, _ = create_network(daemon, made, "--label", label, subnet=False)
    used, _, _ = create_network(daemon, made, "--label", label)
    other, _, _ = create_network(daemon, made, subnet=False)  # no label: the filter keeps it
    sleeper(daemon, made, "--network", used)

    p = daemon.docker("network", "prune", "-f", "--filter", f"label={label}", check=False)
    assert p.returncode == 0, err(p)
    lines = out(p).splitlines()
    assert lines[0] == "Deleted Networks:"
    assert sorted(x for x in lines[1:] if x) == sorted([unused1, unused2])

    p = daemon.docker("network", "ls", "--format", "{{.Name}}", check=False)
    names = out(p).splitlines()
    assert used in names and other in names
    assert unused1 not in names and unused2 not in names


# --- containers on a user network --------------------------------------------------------------------------


def test_containers_reach_each_other_by_name(daemon, made):
    net, sub, _ = create_network(daemon, made)
    a = sleeper(daemon, made, "--network", net)

    p = run(daemon, "--rm", "--network", net, "busybox", "ping", "-c1", a)
    assert p.returncode == 0, (out(p), err(p))
    assert "1 packets received" in out(p)

    cid = daemon.docker("inspect", "-f", "{{.Id}}", a).stdout.decode().strip()
    p = daemon.docker("network", "inspect", "-f", "{{json .Containers}}", net, check=False)
    assert p.returncode == 0, err(p)
    containers = json.loads(out(p))
    assert list(containers) == [cid]
    entry = containers[cid]
    assert entry["Name"] == a
    ip = ipaddress.ip_interface(entry["IPv4Address"])
    assert str(ip.network) == sub and ip.ip != ipaddress.ip_network(sub).network_address + 1
    assert re.match(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$", entry["MacAddress"]), entry
    assert re.match(r"^[0-9a-f]{64}$", entry["EndpointID"]), entry
    p = run(daemon, "--rm", "--network", net, "busybox", "ping", "-c1", cid[:12])
    assert p.returncode == 0, (out(p), err(p))
    assert f"from {ip.ip}" in out(p)

    p = daemon.docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", a, check=False)
    nets = json.loads(out(p))
    assert list(nets) == [net]
    assert nets[net]["IPAddress"] == str(ip.ip) and nets[net]["IPPrefixLen"] == 24
    assert nets[net]["NetworkID"] == inspect_network(daemon, net)["Id"]


def test_connect_with_alias_then_disconnect(daemon, made):
    net1, _, _ = create_network(daemon, made)
    net2, sub2, gw2 = create_network(daemon, made)
    a = sleeper(daemon, made, "--network", net1)
    alias = uniq("web")

    p = daemon.docker("network", "connect", "--alias", alias, net2, a, check=False)
    assert (p.returncode, out(p)) == (0, ""), err(p)

    nets = json.loads(out(daemon.docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", a)))
    assert set(nets) == {net1, net2}
    assert alias in nets[net2]["Aliases"]
    assert ipaddress.ip_address(nets[net2]["IPAddress"]) in ipaddress.ip_network(sub2)
    assert nets[net2]["Gateway"] == gw2

    p = run(daemon, "--rm", "--network", net2, "busybox", "ping", "-c1", alias)
    assert p.returncode == 0, (out(p), err(p))
    assert f"from {nets[net2]['IPAddress']}" in out(p)

    # connecting twice: Docker's text, exit 1, nothing changed
    p = daemon.docker("network", "connect", net2, a, check=False)
    assert p.returncode == 1
    assert f"Error response from daemon: endpoint with name {a} already exists in network {net2}" in err(p)
    assert len(json.loads(out(daemon.docker("network", "inspect", "-f", "{{json .Containers}}", net2)))) == 1

    p = daemon.docker("network", "disconnect", net2, a, check=False)
    assert (p.returncode, out(p)) == (0, ""), err(p)
    nets = json.loads(out(daemon.docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", a)))
    assert set(nets) == {net1}
    assert out(daemon.docker("network", "inspect", "-f", "{{json .Containers}}", net2)) == "{}\n"

    cid = out(daemon.docker("inspect", "-f", "{{.Id}}", a)).strip()
    p = daemon.docker("network", "disconnect", net2, a, check=False)
    assert p.returncode == 1
    assert f"Error response from daemon: container {cid} is not connected to network {net2}" in err(p)


def test_network_modes_none_host_and_container(daemon, made):
    """Which network namespace each mode gives, told by the namespace's identity (``readlink /proc/self/ns/net``)."""
    host_ns = os.readlink("/proc/self/ns/net")
    show = "readlink /proc/self/ns/net; cat /proc/net/dev"

    p = run(daemon, "--rm", "--network", "none", "busybox", "sh", "-c", show)
    assert p.returncode == 0, err(p)
    ns, *dev = out(p).splitlines()
    assert ns.startswith("net:[") and ns != host_ns
    assert {line.split(":")[0].strip() for line in dev[2:]} == {"lo"}, out(p)

    p = run(daemon, "--rm", "--network", "host", "busybox", "sh", "-c", show)
    assert p.returncode == 0, err(p)
    assert out(p).splitlines()[0] == host_ns

    net, _, _ = create_network(daemon, made)
    a = sleeper(daemon, made, "--network", net)
    pid = int(out(daemon.docker("inspect", "-f", "{{.State.Pid}}", a)))
    a_ns = os.readlink(f"/proc/{pid}/ns/net")
    a_ip = out(daemon.docker("inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}",
                             a)).strip()
    p = run(daemon, "--rm", "--network", f"container:{a}", "busybox", "sh", "-c",
            "readlink /proc/self/ns/net; ip -o -4 addr show")
    assert p.returncode == 0, err(p)
    assert out(p).splitlines()[0] == a_ns != host_ns
    assert f"inet {a_ip}/24" in out(p)


def test_run_on_unknown_network_fails(daemon, made):
    name = made.name()
    missing = uniq("no-such-net")
    p = run(daemon, "--name", name, "--network", missing, "busybox", "true")
    assert p.returncode == 125
    assert f"Error response from daemon: network {missing} not found" in err(p)


# --- errors, as docker prints them -------------------------------------------------------------------------


def test_duplicate_network_name(daemon, made):
    name, _, _ = create_network(daemon, made, subnet=False)
    before = inspect_network(daemon, name)["Id"]
    p = daemon.docker("network", "create", name, check=False)
    assert (p.returncode, out(p)) == (1, "")
    assert err(p).strip() == f"Error response from daemon: network with name {name} already exists"
    assert inspect_network(daemon, name)["Id"] == before
    p = daemon.docker("network", "ls", "-q", "--filter", f"name={name}", check=False)
    assert len(out(p).splitlines()) == 1


def test_overlapping_subnet(daemon, made):
    first, sub, _ = create_network(daemon, made)
    half = str(next(ipaddress.ip_network(sub).subnets(new_prefix=25)))
    second = made.network()
    p = daemon.docker("network", "create", "--subnet", half, second, check=False)
    assert (p.returncode, out(p)) == (1, "")
    assert err(p).strip() == ("Error response from daemon: invalid pool request: "
                              "Pool overlaps with other one on this address space")
    assert daemon.docker("network", "inspect", second, check=False).returncode == 1
    p = daemon.docker("network", "create", "--subnet", sub, second, check=False)
    assert p.returncode == 1 and "Pool overlaps with other one on this address space" in err(p)


def test_rm_network_with_running_container(daemon, made):
    net, _, _ = create_network(daemon, made)
    a = sleeper(daemon, made, "--network", net)
    endpoint = json.loads(out(daemon.docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", a)))[net][
        "EndpointID"]

    p = daemon.docker("network", "rm", net, check=False)
    assert p.returncode == 1
    # moby 28: libnetwork's ActiveEndpointsError lists endpoint names and short *endpoint* IDs
    assert (f"Error response from daemon: error while removing network: network {net} has active endpoints "
            f'(name:"{a}" id:"{endpoint[:12]}")') in err(p), err(p)
    assert inspect_network(daemon, net)["Name"] == net

    daemon.docker("rm", "-f", a)
    p = daemon.docker("network", "rm", net, check=False)
    assert (p.returncode, out(p)) == (0, f"{net}\n"), err(p)


def test_invalid_port_specs_are_refused_by_the_client(daemon, made):
    e = refused(daemon, made, "-p", "70000:80")
    assert e.startswith("docker: invalid hostPort: 70000"), e
    e = refused(daemon, made, "-p", "abc")
    assert e.startswith("docker: invalid containerPort: abc"), e


# --- published ports ---------------------------------------------------------------------------------------


def test_published_port_serves_http_and_is_reported(daemon, made):
    name, port = httpd(daemon, made)
    cid = out(daemon.docker("inspect", "-f", "{{.Id}}", name)).strip()
    hostname = out(daemon.docker("exec", name, "cat", "/etc/hostname"))
    assert hostname == cid[:12] + "\n"

    got = wait_for(lambda: http_get(port, "/hostname"), 10, what=f"httpd to answer on 127.0.0.1:{port}")
    assert got == (200, hostname.encode())

    p = daemon.docker("port", name, check=False)
    assert (p.returncode, out(p)) == (0, f"80/tcp -> 127.0.0.1:{port}\n"), err(p)
    p = daemon.docker("port", name, "80", check=False)
    assert (p.returncode, out(p)) == (0, f"127.0.0.1:{port}\n"), err(p)
    p = daemon.docker("port", name, "80/tcp", check=False)
    assert (p.returncode, out(p)) == (0, f"127.0.0.1:{port}\n"), err(p)
    p = daemon.docker("port", name, "81", check=False)
    assert p.returncode == 1
    assert err(p) == f"Error: No public port '81' published for {name}\n"

    p = daemon.docker("ps", "--filter", f"name={name}", "--format", "{{.Names}} {{.Ports}}", check=False)
    assert (p.returncode, out(p)) == (0, f"{name} 127.0.0.1:{port}->80/tcp\n"), err(p)
    p = daemon.docker("ps", "--filter", f"name={name}", check=False)
    header, row = out(p).splitlines()
    assert "PORTS" in header.split()
    assert row[header.index("PORTS"):].split()[0] == f"127.0.0.1:{port}->80/tcp"

    p = daemon.docker("inspect", "-f", "{{json .NetworkSettings.Ports}}", name, check=False)
    assert p.returncode == 0, err(p)
    assert json.loads(out(p)) == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    p = daemon.docker("inspect", "-f", "{{json .HostConfig.PortBindings}}", name, check=False)
    assert json.loads(out(p)) == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}

    daemon.docker("rm", "-f", name)
    wait_for(lambda: http_get(port, "/hostname") is None, 10, what="the published port to close")


def test_published_random_host_port(daemon, made):
    name, _ = httpd(daemon, made, publish="127.0.0.1::80")
    p = daemon.docker("port", name, "80", check=False)
    assert p.returncode == 0, err(p)
    m = re.fullmatch(r"127\.0\.0\.1:(\d+)\n", out(p))
    assert m, out(p)
    port = int(m.group(1))
    assert 0 < port < 65536
    ports = json.loads(out(daemon.docker("inspect", "-f", "{{json .NetworkSettings.Ports}}", name)))
    assert ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    hostname = out(daemon.docker("exec", name, "cat", "/etc/hostname")).encode()
    assert wait_for(lambda: http_get(port, "/hostname"), 10, what="httpd on the random port") == (200, hostname)


def test_same_host_port_twice_is_refused(daemon, made):
    first, port = httpd(daemon, made)
    second = made.name()
    p = run(daemon, "-d", "--name", second, "-p", f"127.0.0.1:{port}:80", "busybox", "httpd", "-f", "-p", "80")
    assert p.returncode == 125
    assert f"Bind for 127.0.0.1:{port} failed: port is already allocated" in err(p), err(p)
    # the first one still serves
    hostname = out(daemon.docker("exec", first, "cat", "/etc/hostname")).encode()
    assert wait_for(lambda: http_get(port, "/hostname"), 10, what="the first httpd") == (200, hostname)
