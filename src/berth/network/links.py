"""Bridges, veth pairs, addresses and routes through netlink (pyroute2), never by parsing ``ip``.

Not thread-safe: the caller runs every call on one thread.
"""
from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from berth.network import netns

VETH_PREFIX = "bv"  # host ends of berth's veth pairs
_EEXIST, _ENODEV, _ENOENT = 17, 19, 2


@dataclass(frozen=True)
class Attachment:
    """One interface to put in a namespace: its address, and the default route when ``gateway`` is set."""

    bridge: str
    ifname: str  # inside the namespace: eth0, eth1, ...
    ip: str
    prefix: int
    mac: str
    gateway: str = ""


class Links:
    """``owner`` marks every link made here (its ifalias), so one daemon never touches another's."""

    def __init__(self, owner: str = "berth") -> None:
        self.owner = owner
        self._ipr: IPRoute | None = None

    @property
    def ipr(self) -> IPRoute:
        if self._ipr is None:
            self._ipr = IPRoute()
        return self._ipr

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    def _index(self, name: str) -> int | None:
        found = self.ipr.link_lookup(ifname=name)
        return found[0] if found else None

    # -- bridges ----------------------------------------------------------------------
    def ensure_bridge(self, name: str, gateway: str, prefix: int, mtu: int = 1500) -> None:
        """Create (or repair) bridge ``name`` with the gateway address, up; route_localnet for 127.0.0.1 ports."""
        idx = self._index(name)
        if idx is None:
            try:
                self.ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
            except NetlinkError as e:
                if e.code != _EEXIST:
                    raise
            idx = self._index(name)
        self.ipr.link("set", index=idx, ifalias=self.owner)
        want = f"{gateway}/{prefix}"
        have = {f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in self.ipr.get_addr(index=idx, family=2)}
        if want not in have:
            for stale in have:
                ip, plen = stale.split("/")
                self.ipr.addr("del", index=idx, address=ip, prefixlen=int(plen))
            self.ipr.addr("add", index=idx, address=gateway, prefixlen=prefix)
        self.ipr.link("set", index=idx, state="up")
        _sysctl(f"net/ipv4/conf/{name}/route_localnet", "1")

    def delete(self, name: str) -> None:
        """Remove a link (a bridge, or a veth pair by its host end); quietly done when it is gone."""
        idx = self._index(name)
        if idx is not None:
            try:
                self.ipr.link("del", index=idx)
            except NetlinkError as e:
                if e.code not in (_ENODEV, _ENOENT):
                    raise

    def mine(self) -> list[str]:
        """Names of the host links this owner made (bridges and veth host ends)."""
        return [link.get_attr("IFLA_IFNAME") for link in self.ipr.get_links()
                if link.get_attr("IFLA_IFALIAS") == self.owner]

    def routes(self) -> list[ipaddress.IPv4Network]:
        """The host's IPv4 routes (to keep new networks clear of them), but those through this owner's links."""
        skip = {link["index"] for link in self.ipr.get_links() if link.get_attr("IFLA_IFALIAS") == self.owner}
        out = []
        for r in self.ipr.get_routes(family=2, table=254):
            dst = r.get_attr("RTA_DST")
            if dst and r.get_attr("RTA_OIF") not in skip:
                out.append(ipaddress.IPv4Network(f"{dst}/{r['dst_len']}", strict=False))
        return out

    # -- endpoints --------------------------------------------------------------------
    def plug(self, ns_path: str, a: Attachment) -> str:
        """A veth pair from bridge ``a.bridge`` into the namespace, configured; returns the host end's name."""
        host_if = VETH_PREFIX + secrets.token_hex(5)
        fd = os.open(ns_path, os.O_RDONLY)
        try:
            self.ipr.link("add", ifname=host_if, kind="veth", peer={"ifname": a.ifname, "net_ns_fd": fd})
        finally:
            os.close(fd)
        try:
            idx = self._index(host_if)
            self.ipr.link("set", index=idx, master=self._index(a.bridge), ifalias=self.owner)
            self.ipr.link("set", index=idx, state="up")
            with netns.entered(ns_path):
                inner = IPRoute()
            try:
                i = inner.link_lookup(ifname=a.ifname)[0]
                inner.link("set", index=i, address=a.mac)
                inner.addr("add", index=i, address=a.ip, prefixlen=a.prefix)
                inner.link("set", index=i, state="up")
                inner.link("set", index=inner.link_lookup(ifname="lo")[0], state="up")
                if a.gateway:
                    inner.route("replace", dst="0.0.0.0/0", gateway=a.gateway)
            finally:
                inner.close()
        except BaseException:
            self.delete(host_if)
            raise
        return host_if

    def loopback_up(self, ns_path: str) -> None:
        with netns.entered(ns_path):
            inner = IPRoute()
        try:
            inner.link("set", index=inner.link_lookup(ifname="lo")[0], state="up")
        finally:
            inner.close()


def _sysctl(key: str, value: str) -> None:
    try:
        with open(f"/proc/sys/{key}", "w") as f:
            f.write(value)
    except OSError:
        pass


def enable_forwarding() -> None:
    """net.ipv4.ip_forward=1, as dockerd sets it, so bridge subnets reach beyond the host."""
    _sysctl("net/ipv4/ip_forward", "1")
