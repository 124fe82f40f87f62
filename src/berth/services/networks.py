"""Networks as objects: create, list, inspect, remove, prune; and checking a container's network choice.

The host side of each bridge network (its bridge link and packet rules) follows the rows here;
what containers plug into them at run time lives in services/sandboxes.py.
"""
from __future__ import annotations

import asyncio
import ipaddress
import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from berth.errors import Conflict, Forbidden, InvalidArgument, NotFound
from berth.network import ipam
from berth.network.links import Links, enable_forwarding
from berth.network.rules import BridgeRule, PortRule, Rules
from berth.runtime.logs import now_rfc3339, parse_time
from berth.store.networks import NetworkIndex
from berth.types import filters as flt
from berth.types.container import ContainerSpec
from berth.types.units import parse_timestamp
from berth.types.network import BRIDGE_NAME_OPT, DEFAULT_BRIDGE, EndpointConfig, Endpoint, Network, Pool
from berth.services.events import EventBus

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
LIST_FILTERS = {"driver", "id", "label", "name", "scope", "type", "dangling"}


@dataclass
class NetworkSettings:
    """Daemon-wide choices: the default bridge's address, the pools new networks come from, DNS."""

    bridge: str = DEFAULT_BRIDGE
    bip: str = ""
    pools: list[dict] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_opts: list[str] = field(default_factory=list)
    ip_forward: bool = True


class HostNet:
    """The host's links and packet rules, driven from one thread (netlink sockets are not shared)."""

    def __init__(self, links: Links, rules: Rules) -> None:
        self.links = links
        self.rules = rules
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="berth-net")

    async def call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.links.close()


class NetworkService:
    def __init__(self, index: NetworkIndex, host: HostNet, settings: NetworkSettings, events: EventBus) -> None:
        self.index = index
        self.host = host
        self.settings = settings
        self.events = events
        self.port_rules: list[PortRule] = []  # kept by the sandboxes, rendered with the bridges here

    # -- start-up ---------------------------------------------------------------------
    async def ensure_predefined(self) -> None:
        """The ``bridge``, ``host`` and ``none`` networks exist, and every bridge network's link is up."""
        if self.settings.ip_forward:
            enable_forwarding()
        for name, driver in (("host", "host"), ("none", "null")):
            if self.index.by_name(name) is None:
                self.index.add(Network(secrets.token_hex(32), name, driver, now_rfc3339()))
        default = self.index.by_name("bridge")
        pool = await self._default_pool(default)
        if default is None:
            self.index.add(Network(secrets.token_hex(32), "bridge", "bridge", now_rfc3339(), pools=[pool], options={
                "com.docker.network.bridge.default_bridge": "true", "com.docker.network.bridge.enable_icc": "true",
                "com.docker.network.bridge.enable_ip_masquerade": "true",
                "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0", BRIDGE_NAME_OPT: self.settings.bridge,
                "com.docker.network.driver.mtu": "1500"}))
        elif (default.pools != [pool] or default.bridge != self.settings.bridge) and not any(
                e.active for e in self.index.endpoints(network=default.id)):
            old = default.bridge
            default.pools, default.options = [pool], {**default.options, BRIDGE_NAME_OPT: self.settings.bridge}
            self.index.replace(default)
            if old != default.bridge:
                await self.host.call(self.host.links.delete, old)
        for n in self.bridges():
            await self.host.call(self._up, n)
        await self.apply_rules()

    async def _default_pool(self, current: Network | None) -> Pool:
        if self.settings.bip:
            try:
                iface = ipaddress.IPv4Interface(self.settings.bip)
            except ValueError:
                raise InvalidArgument(f"invalid bip {self.settings.bip}: want an address with a prefix") from None
            return Pool(str(iface.network), str(iface.ip))
        if current is not None and current.pools:
            return current.pools[0]
        others = [p.net for n in self.bridges() for p in n.pools]
        routes = [r for r in await self.host.call(self.host.links.routes) if r.prefixlen]
        return ipam.complete(Pool(str(ipam.elect_subnet(self.settings.pools, others, routes))))

    def _up(self, n: Network) -> None:
        p = n.pools[0]
        self.host.links.ensure_bridge(n.bridge, p.gateway, p.net.prefixlen,
                                      int(n.options.get("com.docker.network.driver.mtu", "1500")))

    def bridges(self) -> list[Network]:
        return [n for n in self.index.all() if n.driver == "bridge"]

    async def apply_rules(self) -> None:
        rules = [BridgeRule(n.bridge, n.pools[0].subnet, n.internal) for n in self.bridges()]
        await self.host.call(self.host.rules.apply, rules, list(self.port_rules))

    # -- queries ----------------------------------------------------------------------
    def get(self, ref: str) -> Network:
        """By full ID, name, or unique ID prefix (Docker's order)."""
        n = self.index.get(ref) if len(ref) == 64 else None
        n = n or self.index.by_name(ref)
        if n is None and ref:
            found = self.index.by_prefix(ref)
            if len(found) > 1:
                raise InvalidArgument(f"network {ref} is ambiguous ({len(found)} matches found based on ID prefix)")
            n = found[0] if found else None
        if n is None:
            raise NotFound(f"network {ref} not found")
        return n

    def list(self, f: flt.Filters) -> list[Network]:
        return [n for n in self.index.all() if _matches(n, f, self.index)]

    def attachments(self, cid: str) -> list[tuple[Network, Endpoint]]:
        """A container's networks and endpoints, in the order it joined them."""
        out = []
        for e in self.index.endpoints(container=cid):
            n = self.index.get(e.network_id)
            if n is not None:
                out.append((n, e))
        return out

    def endpoints(self, n: Network) -> list[Endpoint]:
        return [e for e in self.index.endpoints(network=n.id) if e.active]

    # -- create / remove ----------------------------------------------------------------
    async def create(self, name: str, driver: str, pools: list[Pool], *, internal: bool = False,
                     attachable: bool = False, ipv6: bool = False, options: dict | None = None,
                     labels: dict | None = None, ipam_driver: str = "default", ipam_options: dict | None = None
                     ) -> Network:
        if not name:
            raise InvalidArgument("network name must not be empty")  # FIXME(moby text)
        if not _NAME.match(name):
            raise InvalidArgument(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        driver = driver or "bridge"
        if driver != "bridge":
            raise NotFound(f'plugin "{driver}" not found')
        if ipam_driver not in ("", "default"):
            raise NotFound(f'plugin "{ipam_driver}" not found')
        if ipv6:
            raise InvalidArgument("IPv6 networks are not supported by berth")
        if self.index.by_name(name) is not None:
            raise Conflict(f"network with name {name} already exists")
        options = dict(options or {})
        bridge = options.get(BRIDGE_NAME_OPT, "")
        if bridge and (len(bridge) > 15 or not re.match(r"^[a-zA-Z0-9_.-]+$", bridge)):
            raise InvalidArgument(f"invalid bridge name {bridge!r}: at most 15 of [a-zA-Z0-9_.-]")
        if bridge and any(n.bridge == bridge for n in self.bridges()):
            raise Forbidden(f"bridge name {bridge} is already in use by another network")
        for p in pools:
            ipam.check_pool(p)
        if len(pools) > 1:
            raise InvalidArgument("berth bridge networks take one IPv4 subnet")
        existing = [p.net for n in self.bridges() for p in n.pools]
        if pools:
            ipam.check_overlap(pools[0].net, existing)
            pool = ipam.complete(pools[0])
        else:
            routes = await self.host.call(self.host.links.routes)
            pool = ipam.complete(Pool(str(ipam.elect_subnet(self.settings.pools, existing,
                                                            [r for r in routes if r.prefixlen]))))
        n = Network(secrets.token_hex(32), name, "bridge", now_rfc3339(), internal, attachable, False, [pool],
                    options, dict(labels or {}), "default", dict(ipam_options or {}), bool(pools))
        self.index.add(n)
        try:
            await self.host.call(self._up, n)
            await self.apply_rules()
        except BaseException:
            await self.host.call(self.host.links.delete, n.bridge)
            self.index.delete(n.id)
            raise
        self.emit(n, "create")
        return n

    async def remove(self, ref: str, names: dict[str, str]) -> None:
        """Docker's rules: predefined networks stay; one with running containers on it stays (403)."""
        n = self.get(ref)
        if n.predefined:
            raise Forbidden(f"{n.name} is a pre-defined network and cannot be removed")
        active = self.endpoints(n)
        if active:
            listed = ", ".join(f'name:"{names.get(e.container_id, "")}" id:"{e.endpoint_id[:12]}"' for e in active)
            raise Forbidden(f"error while removing network: network {n.name} has active endpoints ({listed})")
        for e in self.index.endpoints(network=n.id):
            self.index.detach(e.container_id, n.id)
        self.index.delete(n.id)
        await self.host.call(self.host.links.delete, n.bridge)
        await self.apply_rules()
        self.emit(n, "destroy")

    async def prune(self, f: flt.Filters, names: dict[str, str]) -> list[str]:
        gone = []
        for n in self.index.all():
            if n.predefined or self.endpoints(n) or not _matches_prune(n, f):
                continue
            await self.remove(n.id, names)
            gone.append(n.name)
        return gone

    def emit(self, n: Network, action: str, **extra: str) -> None:
        self.events.publish("network", action, n.id, {"name": n.name, "type": n.driver, **extra})

    # -- a container's choice -----------------------------------------------------------
    def plan(self, spec: ContainerSpec, wanted: dict[str, EndpointConfig]) -> list[tuple[Network, EndpointConfig]]:
        """The networks a new container joins (its NetworkMode first), checked as Docker checks them."""
        mode = spec.network_mode
        wanted = {("bridge" if k in ("", "default") else k): v for k, v in wanted.items()}
        if mode in ("host", "none") or mode.startswith("container:"):
            if wanted and any(k != mode for k in wanted):
                raise InvalidArgument("conflicting options: only one network may be used with "
                                      f"network mode {mode.split(':')[0]}")  # FIXME(moby text)
            return []
        first = self.get(mode)
        if first.driver != "bridge":
            raise InvalidArgument(f"network {mode} is not a bridge network")
        plan = [(first, wanted.get(mode) or _by_id(wanted, first) or EndpointConfig())]
        for key, cfg in wanted.items():
            n = self.get(key)
            if n.id != first.id and n.driver == "bridge":
                plan.append((n, cfg))
        for n, cfg in plan:
            self.check_endpoint(n, cfg)
        return plan

    def check_endpoint(self, n: Network, cfg: EndpointConfig) -> None:
        if n.is_default and cfg.ipv4:
            raise InvalidArgument("user specified IP address is supported on user defined networks only")
        if n.is_default and cfg.aliases:
            raise InvalidArgument("network-scoped alias is supported only for containers in user defined networks")
        if cfg.ipv4 and not n.user_subnet:
            raise InvalidArgument("invalid endpoint settings:\nuser specified IP address is supported only when "
                                  "connecting to networks with user configured subnets")
        if cfg.ipv4:
            ipam.check_fixed(n.pools, cfg.ipv4)
            if cfg.ipv4 in {e.ip for e in self.index.endpoints(network=n.id)} | self.index.fixed_ips(n.id):
                raise Forbidden("Address already in use")


def _by_id(wanted: dict[str, EndpointConfig], n: Network) -> EndpointConfig | None:
    for k, v in wanted.items():
        if k and n.id.startswith(k):
            return v
    return None


def _matches(n: Network, f: flt.Filters, index: NetworkIndex) -> bool:
    if "driver" in f and n.driver not in f["driver"]:
        return False
    if "id" in f and not any(n.id.startswith(x) for x in f["id"]):
        return False
    if "name" in f and not any(x in n.name for x in f["name"]):
        return False
    if "scope" in f and "local" not in f["scope"]:
        return False
    if "type" in f:
        kind = "builtin" if n.predefined else "custom"
        if kind not in f["type"]:
            return False
    if "label" in f and not flt.match_labels(f["label"], n.labels):
        return False
    if "dangling" in f:
        want = f["dangling"][0] in ("true", "1")
        if (not n.predefined and not any(e.active for e in index.endpoints(network=n.id))) != want:
            return False
    return True


def _matches_prune(n: Network, f: flt.Filters) -> bool:
    if "label" in f and not flt.match_labels(f["label"], n.labels):
        return False
    if "label!" in f and flt.match_labels(f["label!"], n.labels):
        return False
    if "until" in f:
        if parse_time(n.created) >= parse_timestamp(f["until"][0], time.time()):
            return False
    return True
