"""Networks for the compatibility tests (the docker CLI, docker-py): free subnets and ports, and a berthd of its own.

These tests run berthd on the host itself (not in a namespace, as tests/support/netns.py does), so what they
create must not clash with the host's routes or with other berthds: subnets are random /24s in
10.200.0.0-10.249.255.0 checked against the host's routes and berthd's networks, host ports are ones the kernel
just handed out, and ``bridged_daemon`` gives the module a default bridge and a /24 of its own.

Traffic from these helpers only goes to 127.0.0.1.
"""
from __future__ import annotations

import http.client
import ipaddress
import random
import socket
import subprocess
import uuid
from urllib.parse import quote

from tests.support.daemon import Daemon, can_run_containers, started
from tests.support.made import Made


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class NetworksMade(Made):
    """Containers and networks one test made; containers go first, then the networks they were on.

    A test module subclasses it with its own ``prefix`` for the names it makes (``PREFIX-…``, ``PREFIX-net-…``).
    """

    prefix = "net"

    def __init__(self, daemon) -> None:
        super().__init__(daemon)
        self.networks: list[str] = []

    def name(self, prefix: str | None = None) -> str:
        return self.container(uniq(prefix or self.prefix))

    def network(self, prefix: str | None = None) -> str:
        n = uniq(prefix or f"{self.prefix}-net")
        self.networks.append(n)
        return n

    def cleanup(self) -> None:
        super().cleanup()
        for n in self.networks:
            self.daemon.api("DELETE", f"/networks/{quote(n, safe='')}")


def host_routes() -> list[ipaddress.IPv4Network]:
    lines = subprocess.run(["ip", "-4", "-o", "route", "show", "table", "all"], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    nets = []
    for line in lines:
        words = line.split()
        dest = words[1] if words[0] in ("broadcast", "local", "unreachable", "blackhole", "prohibit",
                                        "multicast") else words[0]
        try:
            net = ipaddress.ip_network(dest, strict=False)
        except ValueError:
            continue  # "default"
        if net.prefixlen > 0:
            nets.append(net)
    return nets


def free_subnet_among(busy: list) -> ipaddress.IPv4Network:
    """A random /24 in 10.200.0.0-10.249.255.0 that overlaps none of ``busy``."""
    for _ in range(200):
        net = ipaddress.ip_network(f"10.{random.randint(200, 249)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(b) for b in busy):
            return net
    raise AssertionError("no free /24 in 10.200.0.0/13")


def berthd_subnets(daemon) -> list:
    status, nets = daemon.api("GET", "/networks")
    assert status == 200, nets
    return [ipaddress.ip_network(c["Subnet"], strict=False)
            for n in nets for c in ((n.get("IPAM") or {}).get("Config") or []) if c.get("Subnet")]


def free_subnet(daemon) -> ipaddress.IPv4Network:
    """A /24 that neither the host's routes nor berthd's networks touch."""
    return free_subnet_among(host_routes() + berthd_subnets(daemon))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, path: str) -> tuple[int, bytes] | None:
    """(status, body) from 127.0.0.1:PORT, or None while nothing answers. No proxy: http.client, not urllib."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except OSError:
        return None
    finally:
        conn.close()


def bridged_daemon():
    """A started berthd with busybox:latest whose default bridge has a host link and a /24 of its own (for a
    module's ``daemon`` fixture to ``yield from``); skips when it cannot run.

    Every berthd started with the defaults shares the host link berth0, 172.17.0.0/16 and the nftables table
    ``berth`` with any other such berthd on the machine (other sessions' test daemons): one of them stopping takes
    berth0 from the rest, and two of them hand out the same addresses. With ``-b``/``--bip`` this one shares
    nothing.
    """
    import pytest
    reason = can_run_containers()
    if reason:
        pytest.skip(reason)
    bridge = "bt" + uuid.uuid4().hex[:10]
    subnet = free_subnet_among(host_routes())
    try:
        yield from started(Daemon("-b", bridge, "--bip", f"{subnet.network_address + 1}/{subnet.prefixlen}"))
    finally:
        subprocess.run(["ip", "link", "delete", bridge], capture_output=True)
        subprocess.run(["nft", "delete", "table", "ip", f"berth_{bridge}"], capture_output=True)
