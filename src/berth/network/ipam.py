"""Address management, pure: subnets for new networks and addresses for endpoints (Docker's default IPAM)."""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

from berth.errors import Forbidden, InvalidArgument
from berth.types.network import Pool

V4 = ipaddress.IPv4Network
# Docker's default-address-pools: 172.17-31.0.0/16, then 192.168.0.0/16 cut into /20s.
DEFAULT_POOLS = [{"base": f"172.{n}.0.0/16", "size": 16} for n in range(17, 32)] + [
    {"base": "192.168.0.0/16", "size": 20}]


def candidates(pools: list[dict]) -> Iterator[V4]:
    """Every subnet the address pools offer, in order."""
    for p in pools or DEFAULT_POOLS:
        base = ipaddress.ip_network(p["base"], strict=False)
        if base.version != 4:
            continue
        size = int(p["size"])
        yield from ([base] if size <= base.prefixlen else base.subnets(new_prefix=size))


def elect_subnet(pools: list[dict], in_use: Iterable[V4], host_routes: Iterable[V4]) -> V4:
    """The first pool subnet that overlaps no network of ours and no route of the host's."""
    busy = list(in_use) + [r for r in host_routes if r.prefixlen > 0]
    for net in candidates(pools):
        if not any(net.overlaps(b) for b in busy):
            return net
    raise Forbidden("could not find an available, non-overlapping IPv4 address pool among the defaults "
                    "to assign to the network")


def check_pool(p: Pool) -> None:
    """moby's ValidateIPAM: well-formed subnet; gateway, range and aux addresses inside it."""
    errs = []
    try:
        subnet = ipaddress.ip_network(p.subnet, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid network config:\ninvalid subnet {p.subnet}: invalid CIDR block notation") \
            from None
    if subnet.version != 4:
        raise InvalidArgument("berth networks are IPv4 only: enable_ipv6 is not supported")
    if str(subnet) != p.subnet.strip():
        errs.append(f"invalid subnet {p.subnet}: it should be {subnet}")
    if p.ip_range:
        try:
            rng = ipaddress.ip_network(p.ip_range, strict=False)
        except ValueError:
            errs.append(f"invalid ip-range {p.ip_range}: invalid CIDR block notation")
        else:
            if rng.prefixlen < subnet.prefixlen:
                errs.append(f"invalid ip-range {p.ip_range}: CIDR block is bigger than its parent subnet {subnet}")
            if str(rng) != p.ip_range:
                errs.append(f"invalid ip-range {p.ip_range}: it should be {rng}")
            if not subnet.overlaps(rng):
                errs.append(f"invalid ip-range {p.ip_range}: parent subnet {subnet} doesn't contain ip-range")
    for what, addr in [("gateway", p.gateway)] + [(f"auxiliary address {k}", v) for k, v in p.aux.items()]:
        if addr and (err := _address_error(addr, subnet)):
            errs.append(f"invalid {what} {addr}: {err}" if what == "gateway" else f"invalid {what}: {err}")
    if errs:
        body = errs[0] if len(errs) == 1 else "* " + "\n* ".join(errs)
        raise InvalidArgument(f"invalid network config:\n{body}")


def _address_error(addr: str, subnet) -> str:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return "invalid address"
    if ip.version != subnet.version:
        return f"parent subnet is an IPv{subnet.version} block"
    if ip not in subnet:
        return f"parent subnet {subnet} doesn't contain this address"
    return ""


def check_overlap(new: V4, existing: Iterable[V4]) -> None:
    if any(new.overlaps(e) for e in existing):
        raise Forbidden("invalid pool request: Pool overlaps with other one on this address space")


def complete(p: Pool) -> Pool:
    """Fill in the gateway (the subnet's first host) when the client gave none."""
    net = p.net
    gw = p.gateway or str(net.network_address + 1)
    return Pool(str(net), gw, p.ip_range, dict(p.aux))


def check_fixed(pools: list[Pool], ip: str) -> None:
    """A requested endpoint address must lie in a subnet (or ip-range) of the network."""
    try:
        addr = ipaddress.IPv4Address(ip)
    except ValueError:
        raise InvalidArgument(f"invalid endpoint settings:\ninvalid IPv4 address: {ip}") from None
    for p in pools:
        if addr in ipaddress.IPv4Network(p.ip_range or p.subnet):
            return
    raise InvalidArgument(f"invalid endpoint settings:\nno configured subnet or ip-range contain the IP address {ip}")


def pick(pools: list[Pool], taken: set[str], reserved: set[str], want: str = "") -> tuple[str, int, str]:
    """An address for an endpoint: (ip, prefix length, gateway). ``reserved`` are others' fixed addresses."""
    busy = taken | {p.gateway for p in pools} | {a for p in pools for a in p.aux.values()}
    if want:
        if want in busy:
            raise Forbidden("Address already in use")
        for p in pools:
            if ipaddress.IPv4Address(want) in p.net:
                return want, p.net.prefixlen, p.gateway
    for p in pools:
        rng = ipaddress.IPv4Network(p.ip_range or p.subnet)
        last = rng.broadcast_address if rng.prefixlen < 31 else None
        for host in rng.hosts() if rng.prefixlen < 31 else rng:
            s = str(host)
            if host == last or s in busy or s in reserved:
                continue
            return s, p.net.prefixlen, p.gateway
    raise Forbidden("no available IPv4 addresses on this network's address pools")
