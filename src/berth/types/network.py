"""Networks and endpoints as berth keeps them (Docker's JSON is made in api/serialize/networks.py)."""
from __future__ import annotations

import dataclasses
import ipaddress
import json
from dataclasses import dataclass, field

PREDEFINED = ("bridge", "host", "none")
DEFAULT_BRIDGE = "berth0"
BRIDGE_PREFIX = "berth-"  # user networks' bridges: berth-<9 hex of the ID>; berth0 is the default one
BRIDGE_NAME_OPT = "com.docker.network.bridge.name"


@dataclass
class Pool:
    """One IPAM config entry: a subnet, its gateway and the range containers get addresses from."""

    subnet: str
    gateway: str = ""
    ip_range: str = ""
    aux: dict[str, str] = field(default_factory=dict)

    @property
    def net(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)


@dataclass
class Network:
    id: str
    name: str
    driver: str = "bridge"  # bridge | host | null
    created: str = ""
    internal: bool = False
    attachable: bool = False
    ipv6: bool = False
    pools: list[Pool] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    ipam_driver: str = "default"
    ipam_options: dict[str, str] = field(default_factory=dict)
    user_subnet: bool = False  # the client chose the subnet (fixed container addresses need that)

    @property
    def bridge(self) -> str:
        """The host interface of a bridge network."""
        return self.options.get(BRIDGE_NAME_OPT) or (BRIDGE_PREFIX + self.id[:9])

    @property
    def is_default(self) -> bool:
        return self.name == "bridge"

    @property
    def predefined(self) -> bool:
        return self.name in PREDEFINED

    @property
    def user_defined(self) -> bool:
        """Docker's embedded DNS and aliases exist on user-defined bridge networks only."""
        return self.driver == "bridge" and not self.is_default

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Network":
        raw = json.loads(text)
        raw["pools"] = [Pool(**p) for p in raw.get("pools", [])]
        return cls(**raw)


@dataclass
class EndpointConfig:
    """What a client asked for when attaching a container (create's NetworkingConfig or connect)."""

    aliases: list[str] = field(default_factory=list)
    ipv4: str = ""  # a fixed address (IPAMConfig.IPv4Address)
    mac: str = ""
    links: list[str] = field(default_factory=list)
    driver_opts: dict[str, str] = field(default_factory=dict)


@dataclass
class Endpoint:
    """A container's attachment to a network; the address fields are set only while it runs."""

    container_id: str
    network_id: str
    config: EndpointConfig = field(default_factory=EndpointConfig)
    endpoint_id: str = ""
    ip: str = ""
    prefix: int = 0
    gateway: str = ""
    mac: str = ""
    host_if: str = ""
    ports: list[dict] = field(default_factory=list)  # PortMapping fields, on the endpoint that publishes them

    @property
    def active(self) -> bool:
        return bool(self.ip)


@dataclass(frozen=True)
class PortMapping:
    """A published port in force: host address and port → container port."""

    proto: str
    container_port: int
    host_ip: str
    host_port: int

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"


def mac_for(ip: str) -> str:
    """Docker's classic MAC from an IPv4 address: 02:42 then the four bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)
