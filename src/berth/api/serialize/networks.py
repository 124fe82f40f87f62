"""Docker's network JSON: create bodies and endpoint settings in; network, endpoint and port shapes out."""
from __future__ import annotations

from berth.errors import InvalidArgument
from berth.types.container import Container
from berth.types.network import Endpoint, EndpointConfig, Network, Pool

_ZERO = "0001-01-01T00:00:00Z"


def create_args(body: dict) -> dict:
    """``POST /networks/create`` → NetworkService.create keyword arguments."""
    name = body.get("Name")
    if not isinstance(name, str):
        raise InvalidArgument("invalid type for Name: expected string")
    ipam = body.get("IPAM") or {}
    if not isinstance(ipam, dict):
        raise InvalidArgument("invalid type for IPAM: expected object")
    pools = []
    for cfg in ipam.get("Config") or []:
        if not isinstance(cfg, dict) or not cfg.get("Subnet"):
            if isinstance(cfg, dict) and not (cfg.get("Gateway") or cfg.get("IPRange")):
                continue
            raise InvalidArgument("invalid network config:\na subnet is required for each IPAM config")
        pools.append(Pool(cfg["Subnet"], cfg.get("Gateway") or "", cfg.get("IPRange") or "",
                          dict(cfg.get("AuxiliaryAddresses") or cfg.get("AuxAddress") or {})))
    for key in ("Options", "Labels"):
        v = body.get(key)
        if v is not None and not (isinstance(v, dict) and all(isinstance(x, str) for x in v.values())):
            raise InvalidArgument(f"invalid type for {key}: expected an object of strings")
    return {"name": name, "driver": body.get("Driver") or "bridge", "pools": pools,
            "internal": bool(body.get("Internal")), "attachable": bool(body.get("Attachable")),
            "ipv6": bool(body.get("EnableIPv6")), "options": dict(body.get("Options") or {}),
            "labels": dict(body.get("Labels") or {}), "ipam_driver": ipam.get("Driver") or "default",
            "ipam_options": dict(ipam.get("Options") or {})}


def endpoint_config(raw: dict | None) -> EndpointConfig:
    """An EndpointSettings body (create's NetworkingConfig entry, or connect's EndpointConfig)."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise InvalidArgument("invalid type for EndpointConfig: expected object")
    aliases = raw.get("Aliases") or []
    if not (isinstance(aliases, list) and all(isinstance(a, str) for a in aliases)):
        raise InvalidArgument("invalid type for Aliases: expected an array of strings")
    ipam = raw.get("IPAMConfig") or {}
    return EndpointConfig(list(aliases), ipam.get("IPv4Address") or "", raw.get("MacAddress") or "",
                          list(raw.get("Links") or []), dict(raw.get("DriverOpts") or {}))


def endpoints_from_create(body: dict) -> dict[str, EndpointConfig]:
    cfg = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    if not isinstance(cfg, dict):
        raise InvalidArgument("invalid type for NetworkingConfig.EndpointsConfig: expected object")
    return {name: endpoint_config(v) for name, v in cfg.items()}


def network(n: Network, members: list[tuple[str, str, Endpoint]] | None) -> dict:
    """GET /networks/{id}; ``members`` (container ID, name, endpoint) fill ``Containers`` (inspect only)."""
    out = {
        "Name": n.name, "Id": n.id, "Created": n.created or _ZERO, "Scope": "local", "Driver": n.driver,
        "EnableIPv4": n.driver == "bridge", "EnableIPv6": n.ipv6,
        "IPAM": {"Driver": n.ipam_driver or "default", "Options": n.ipam_options or None,
                 "Config": [_pool(p) for p in n.pools]},
        "Internal": n.internal, "Attachable": n.attachable, "Ingress": False, "ConfigFrom": {"Network": ""},
        "ConfigOnly": False, "Options": n.options, "Labels": n.labels,
    }
    if members is not None:
        out["Containers"] = {cid: {"Name": name, "EndpointID": ep.endpoint_id, "MacAddress": ep.mac,
                                   "IPv4Address": f"{ep.ip}/{ep.prefix}", "IPv6Address": ""}
                             for cid, name, ep in members}
    return out


def _pool(p: Pool) -> dict:
    out = {"Subnet": p.subnet}
    if p.ip_range:
        out["IPRange"] = p.ip_range
    if p.gateway:
        out["Gateway"] = p.gateway
    if p.aux:
        out["AuxiliaryAddresses"] = dict(p.aux)
    return out


def endpoint_settings(c: Container, n: Network, ep: Endpoint) -> dict:
    cfg = ep.config
    dns = ([c.name, c.id[:12]] + cfg.aliases) if n.user_defined else None
    return {"IPAMConfig": {"IPv4Address": cfg.ipv4} if cfg.ipv4 else None, "Links": cfg.links or None,
            "Aliases": cfg.aliases or None, "MacAddress": ep.mac, "DriverOpts": cfg.driver_opts or None,
            "GwPriority": 0, "NetworkID": n.id, "EndpointID": ep.endpoint_id, "Gateway": ep.gateway,
            "IPAddress": ep.ip, "IPPrefixLen": ep.prefix, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "DNSNames": dns}


def port_map(c: Container, eps: list[Endpoint]) -> dict:
    """NetworkSettings.Ports: every exposed port, with its host bindings while the container runs."""
    if not c.state.running:
        return {}
    out: dict = {k: None for k in c.spec.exposed_ports}
    for ep in eps:
        for m in ep.ports:
            key = f"{m['container_port']}/{m['proto']}"
            out.setdefault(key, None)
            out[key] = (out[key] or []) + [{"HostIp": m["host_ip"], "HostPort": str(m["host_port"])}]
    return out


def port_list(c: Container, eps: list[Endpoint]) -> list[dict]:
    """The list API's ``Ports``: published ones with their host side, exposed ones bare."""
    if not c.state.running:
        return []
    out, seen = [], set()
    for ep in eps:
        for m in ep.ports:
            seen.add(f"{m['container_port']}/{m['proto']}")
            out.append({"IP": m["host_ip"], "PrivatePort": m["container_port"], "PublicPort": m["host_port"],
                        "Type": m["proto"]})
    for key in c.spec.exposed_ports:
        if key not in seen:
            port, _, proto = key.partition("/")
            if port.isdigit():
                out.append({"PrivatePort": int(port), "Type": proto or "tcp"})
    return out


def network_settings(c: Container, attached: list[tuple[Network, Endpoint]], sandbox_key: str) -> dict:
    """inspect's NetworkSettings; the top-level address fields describe the default bridge only, as in Docker."""
    eps = [ep for _, ep in attached]
    nets = {n.name: endpoint_settings(c, n, ep) for n, ep in attached}
    mode = c.spec.network_mode
    if mode in ("host", "none"):
        nets = {mode: endpoint_settings(c, Network(mode, mode, "null"), Endpoint(c.id, ""))}
        nets[mode]["NetworkID"] = ""
    default = next((ep for n, ep in attached if n.is_default), None)
    running = c.state.running and any(ep.active for ep in eps)
    return {
        "Bridge": "", "SandboxID": (c.id if running else ""), "SandboxKey": sandbox_key if running else "",
        "Ports": port_map(c, eps), "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
        "EndpointID": default.endpoint_id if default else "", "Gateway": default.gateway if default else "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": default.ip if default else "",
        "IPPrefixLen": default.prefix if default else 0, "IPv6Gateway": "",
        "MacAddress": default.mac if default else "", "Networks": nets,
    }
