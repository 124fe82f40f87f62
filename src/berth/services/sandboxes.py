"""A running container's network: its namespace, veths, addresses, published ports, DNS and /etc files.

``setup`` runs before the runtime creates the container and undoes itself on any failure;
``teardown`` runs after it exits. Endpoint addresses are kept in the store so a restarted
daemon knows what is in force (``reconcile``).
"""
from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import secrets
from dataclasses import dataclass, field

from berth.errors import BerthError, Conflict, Forbidden, NotFound, SystemError_
from berth.network import etc_files, ipam, netns
from berth.network.dns import Resolver
from berth.network.links import Attachment
from berth.network.rules import PortRule
from berth.types.container import Container
from berth.types.network import Endpoint, EndpointConfig, Network, PortMapping, mac_for
from berth.util.fs import atomic_write, read_text
from berth.services.containers import ContainerService
from berth.services.networks import NetworkService
from berth.services.portmap import PortReservations, wanted_ports

log = logging.getLogger(__name__)


@dataclass
class Sandbox:
    cid: str
    path: str  # the pinned namespace
    ports: list[PortMapping] = field(default_factory=list)
    dns: bool = False


class Sandboxes:
    def __init__(self, networks: NetworkService, containers: ContainerService, exec_root: str) -> None:
        self.networks = networks
        self.index = networks.index
        self.containers = containers
        self.dir = os.path.join(exec_root, "netns")
        self.boxes: dict[str, Sandbox] = {}
        self.ports = PortReservations()
        self.resolver = Resolver(self)

    def ns_path(self, cid: str) -> str:
        return os.path.join(self.dir, cid[:12])

    def _call(self, fn, *args):
        return self.networks.host.call(fn, *args)

    # -- start and exit -----------------------------------------------------------------
    async def setup(self, c: Container) -> tuple[str | None, dict[str, str]]:
        """The namespace for the runtime (None: a private one, "host", or a path) and the /etc files to mount."""
        mode = c.spec.network_mode
        files = self.containers.host_files(c.id)
        if mode == "host":
            return "host", files
        if mode == "none":
            return None, files
        if mode.startswith("container:"):
            other = self.containers.get(mode.split(":", 1)[1])
            if not other.state.running:
                raise Conflict(f"cannot join network namespace of a non running container: {other.id}")
            box = self.boxes.get(other.id)
            path = box.path if box else ("host" if other.spec.network_mode == "host" else f"/proc/{other.state.pid}/ns/net")
            return path, self.containers.host_files(other.id)
        eps = self.index.endpoints(container=c.id)
        if eps and self.index.get(eps[0].network_id) is None:
            raise NotFound(f"network {mode} not found")
        # Disconnected from every network: it still starts, with loopback only (as in Docker).
        box = self.boxes[c.id] = Sandbox(c.id, self.ns_path(c.id))
        try:
            await self._call(netns.create, box.path)
            await self._call(self.networks.host.links.loopback_up, box.path)
            routed = False
            for i, ep in enumerate(eps):
                n = self.index.get(ep.network_id)
                gw = not routed and not n.internal
                routed = routed or gw
                await self._plug(c, n, ep.config, f"eth{i}", box.path, gw)
            if eps:
                await self._publish(c, box, eps[0])
            if any(self.index.get(e.network_id).user_defined for e in eps):
                await self._serve_dns(box)
            self._write_files(c, box)
        except BaseException:
            await self.teardown(c.id)
            raise
        return box.path, files

    async def _plug(self, c: Container, n: Network, cfg: EndpointConfig, ifname: str, path: str, gw: bool) -> Endpoint:
        def choose(taken: set[str]) -> Endpoint:
            reserved = self.index.fixed_ips(n.id) - {cfg.ipv4}
            ip, prefix, gateway = ipam.pick(n.pools, taken, reserved, cfg.ipv4)
            return Endpoint(c.id, n.id, cfg, secrets.token_hex(32), ip, prefix, gateway, cfg.mac or mac_for(ip))
        ep = self.index.claim(c.id, n.id, choose)
        try:
            ep.host_if = await self._call(self.networks.host.links.plug, path, Attachment(
                n.bridge, ifname, ep.ip, ep.prefix, ep.mac, ep.gateway if gw else ""))
        except BaseException:
            self.index.set_state(c.id, n.id, None)
            raise
        self.index.set_state(c.id, n.id, ep)
        return ep

    async def _publish(self, c: Container, box: Sandbox, first: Endpoint) -> None:
        ep = self.index.endpoint(c.id, first.network_id)
        n = self.index.get(first.network_id)
        wanted = wanted_ports(c.spec)
        if not wanted or n.internal:
            return
        try:
            box.ports = self.ports.reserve(c.id, wanted, ep.ip)
        except BerthError as e:
            raise SystemError_(f"failed to set up container networking: driver failed programming external "
                               f"connectivity on endpoint {c.name} ({ep.endpoint_id}): {e.message}") from None
        ep.ports = [vars_(m) for m in box.ports]
        self.index.set_state(c.id, n.id, ep)
        await self._sync_rules()

    async def _sync_rules(self) -> None:
        rules = []
        for box in self.boxes.values():
            eps = self.index.endpoints(container=box.cid)
            ip = next((e.ip for e in eps if e.ports), "")
            rules += [PortRule(m.proto, m.host_ip, m.host_port, ip, m.container_port) for m in box.ports if ip]
        self.networks.port_rules = rules
        await self.networks.apply_rules()

    async def _serve_dns(self, box: Sandbox) -> None:
        udp, tcp = await self._call(netns.listeners, box.path, etc_files.EMBEDDED_DNS, 53)
        await self.resolver.add(box.cid, udp, tcp)
        box.dns = True

    def _write_files(self, c: Container, box: Sandbox) -> None:
        d = self.containers.dir(c.id)
        eps = [e for e in self.index.endpoints(container=c.id) if e.active]
        own = [(eps[0].ip, c.spec.hostname)] if eps else []
        default = self.index.by_name("bridge")
        gateway = default.pools[0].gateway if default and default.pools else ""
        atomic_write(os.path.join(d, "hosts"), etc_files.hosts(c.spec.extra_hosts, own, gateway).encode())
        s = self.networks.settings
        text, _ = etc_files.resolv_conf(
            etc_files.parse_resolv(read_text("/etc/resolv.conf")), dns=c.spec.dns or s.dns,
            search=c.spec.dns_search or s.dns_search, options=c.spec.dns_options or s.dns_opts,
            mode="embedded" if box.dns else "plain")
        atomic_write(os.path.join(d, "resolv.conf"), text.encode())

    async def teardown(self, cid: str) -> None:
        """Undo ``setup``: DNS, ports, rules, the namespace (its veths go with it), the addresses."""
        box = self.boxes.pop(cid, None)
        if box is None and not os.path.exists(self.ns_path(cid)):
            return
        self.resolver.remove(cid)
        self.ports.release(cid)
        if box and box.ports:
            await self._sync_rules()
        await self._call(netns.destroy, box.path if box else self.ns_path(cid))
        for ep in self.index.endpoints(container=cid):
            if ep.active:
                self.index.set_state(cid, ep.network_id, None)

    # -- connect / disconnect -------------------------------------------------------------
    async def connect(self, network: str, container: str, cfg: EndpointConfig) -> None:
        n, c = self.networks.get(network), self.containers.get(container)
        mode = c.spec.network_mode
        if n.driver == "host" or mode == "host":
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        if n.driver == "null" or mode == "none":
            raise Forbidden("container cannot be connected to multiple networks with one of the networks "
                            "in private (none) mode")
        if mode.startswith("container:"):
            raise Forbidden("container sharing network namespace with another container or host cannot be "
                            "connected to any other network")
        if self.index.endpoint(c.id, n.id) is not None:
            raise Forbidden(f"endpoint with name {c.name} already exists in network {n.name}")
        self.networks.check_endpoint(n, cfg)
        self.index.attach(c.id, n.id, cfg)
        box = self.boxes.get(c.id)
        if box is not None:
            try:
                count = len(self.index.endpoints(container=c.id)) - 1
                routed = any(e.active and not self.index.get(e.network_id).internal
                             for e in self.index.endpoints(container=c.id))
                await self._plug(c, n, cfg, f"eth{count}", box.path, not routed and not n.internal)
                if n.user_defined and not box.dns:
                    await self._serve_dns(box)
            except BaseException:
                self.index.detach(c.id, n.id)
                raise
        self.networks.emit(n, "connect", container=c.id)

    async def disconnect(self, network: str, container: str, force: bool = False) -> None:
        n, c = self.networks.get(network), self.containers.get(container)
        ep = self.index.endpoint(c.id, n.id)
        if ep is None:
            raise Forbidden(f"container {c.id} is not connected to network {n.name}")
        if c.spec.network_mode == "host" and n.driver == "host":
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        if ep.active and ep.host_if:
            await self._call(self.networks.host.links.delete, ep.host_if)
        self.index.detach(c.id, n.id)
        if ep.ports:
            self.ports.release(c.id)
            box = self.boxes.get(c.id)
            if box:
                box.ports = []
            await self._sync_rules()
        self.networks.emit(n, "disconnect", container=c.id)

    # -- the embedded DNS's view (berth.network.dns.NameSource) ------------------------------
    def _dns_networks(self, cid: str) -> list[Network]:
        out = []
        for e in self.index.endpoints(container=cid):
            n = self.index.get(e.network_id)
            if e.active and n is not None and n.user_defined:
                out.append(n)
        return out

    def lookup(self, container_id: str, name: str) -> list[str] | None:
        ips: list[str] = []
        for n in self._dns_networks(container_id):
            q = name[: -len(n.name) - 1] if name.endswith("." + n.name.lower()) else name
            for cid, cname, ep in self.index.active_names(n.id):
                if q in (cname.lower(), cid[:12]) or q in (a.lower() for a in ep.config.aliases):
                    if ep.ip not in ips:
                        ips.append(ep.ip)
        return ips or None

    def reverse(self, container_id: str, ip: str) -> str | None:
        for n in self._dns_networks(container_id):
            for _, cname, ep in self.index.active_names(n.id):
                if ep.ip == ip:
                    return f"{cname}.{n.name}"
        return None

    def upstreams(self, container_id: str) -> list[tuple[str, int]]:
        nets = self._dns_networks(container_id)
        if nets and all(n.internal for n in nets):
            return []
        c = self.containers.index.get(container_id)
        s = self.networks.settings
        servers = (c.spec.dns if c else []) or s.dns or etc_files.parse_resolv(read_text("/etc/resolv.conf")).nameservers
        return [(ip, 53) for ip in servers if _ipv4(ip)]

    # -- after a daemon restart -------------------------------------------------------------
    async def reconcile(self, running: dict[str, Container]) -> dict[str, int]:
        """Take back what running containers use; remove every namespace, veth, bridge and address nobody needs."""
        counts = {"namespaces": 0, "links": 0, "addresses": 0}
        for cid, c in running.items():
            path = self.ns_path(cid)
            if os.path.exists(path) and cid not in self.boxes:
                box = self.boxes[cid] = Sandbox(cid, path)
                eps = self.index.endpoints(container=cid)
                for ep in eps:
                    for m in ep.ports:
                        box.ports.append(PortMapping(**m))
                with contextlib.suppress(BerthError):
                    self.ports.take(cid, box.ports)
                if any(self.index.get(e.network_id).user_defined for e in eps if e.active):
                    with contextlib.suppress(OSError):
                        await self._serve_dns(box)
        keep = {self.ns_path(cid) for cid in self.boxes}
        for path in await self._call(netns.pinned, self.dir):
            if path not in keep:
                await self._call(netns.destroy, path)
                counts["namespaces"] += 1
        for ep in (e for n in self.index.all() for e in self.index.endpoints(network=n.id)):
            if ep.active and ep.container_id not in self.boxes:
                self.index.set_state(ep.container_id, ep.network_id, None)
                counts["addresses"] += 1
        in_use = {e.host_if for cid in self.boxes for e in self.index.endpoints(container=cid)}
        in_use |= {n.bridge for n in self.networks.bridges()}
        for name in await self._call(self.networks.host.links.mine):
            if name not in in_use:
                await self._call(self.networks.host.links.delete, name)
                counts["links"] += 1
        await self._sync_rules()
        return counts

    def close(self) -> None:
        self.resolver.close()
        self.ports.close()


def vars_(m: PortMapping) -> dict:
    return {"proto": m.proto, "container_port": m.container_port, "host_ip": m.host_ip, "host_port": m.host_port}


def _ipv4(ip: str) -> bool:
    try:
        ipaddress.IPv4Address(ip)
        return True
    except ValueError:
        return False
