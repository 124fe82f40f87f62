"""Networks: ``berth network create|ls|inspect|rm|prune|connect|disconnect``, and the
network flags of ``berth run/create`` (``-p``, ``--network``, ``--dns`` ...), as docker CLI 28 sends them."""
from __future__ import annotations

import argparse
import re
import sys

from berth.cli.common import Exit, Usage, parser
from berth.client.transport import Transport, path_quote
from berth.errors import BerthError, InvalidArgument, NotFound

LS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
LS_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4",
              "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}
_NOT_USER_DEFINED = ("default", "bridge", "host", "none")


# ---------------------------------------------------------------- run / create flags

def add_run_flags(p: argparse.ArgumentParser, name: str) -> None:
    """The network and port flags of ``run``/``create``."""
    p.set_defaults(net_command=name)
    p.add_argument("-p", "--publish", action="append", default=[])
    p.add_argument("-P", "--publish-all", action="store_true")
    p.add_argument("--expose", action="append", default=[])
    p.add_argument("--network", "--net", action="append", default=[])
    p.add_argument("--network-alias", "--net-alias", action="append", default=[])
    p.add_argument("--ip", default="")
    p.add_argument("--ip6", default="")
    p.add_argument("--mac-address", default="")
    p.add_argument("--dns", action="append", default=[])
    p.add_argument("--dns-search", action="append", default=[])
    p.add_argument("--dns-option", "--dns-opt", action="append", default=[])


def apply_run_flags(body: dict, a: argparse.Namespace) -> None:
    """Put the network flags into a create body: ExposedPorts, HostConfig.{NetworkMode,
    PortBindings, PublishAllPorts, Dns, DnsSearch, DnsOptions} and NetworkingConfig."""
    from berth.types.ports import parse_expose, parse_port_specs
    host = body.setdefault("HostConfig", {})
    # Flag values first, as pflag checks them while parsing.
    host["Dns"] = [_flag(v, "--dns", _dns_ip) for v in a.dns]
    host["DnsSearch"] = [_flag(v, "--dns-search", _dns_search) for v in a.dns_search]
    host["DnsOptions"] = list(a.dns_option)
    networks = [_flag(v, "--network", _network_opt) for v in a.network]
    try:
        if a.mac_address:
            _check_mac(a.mac_address)
        exposed, bindings = parse_port_specs(a.publish)
        for key in parse_expose(a.expose):
            exposed.setdefault(key, {})
        endpoints = endpoints_config(networks, a)
    except InvalidArgument as e:
        cmd = getattr(a, "net_command", "run")
        raise Usage(f"berth: {e.message}\n\nRun 'berth {cmd} --help' for more information") from None
    mode = networks[0]["Target"] if networks else "default"
    if exposed:
        body["ExposedPorts"] = {**body.get("ExposedPorts", {}), **exposed}
    # No Config.MacAddress: for API >= 1.44 the docker client leaves the MAC to the endpoint.
    host.update({"NetworkMode": mode, "PortBindings": bindings, "PublishAllPorts": a.publish_all})
    body["NetworkingConfig"] = {"EndpointsConfig": endpoints}


def _flag(value: str, flag: str, check):
    try:
        return check(value)
    except InvalidArgument as e:
        raise Usage(f'invalid argument "{value}" for "{flag}" flag: {e.message}') from None


def _dns_ip(v: str) -> str:
    from berth.types.ports import parse_ip
    ip = parse_ip(v.strip())
    if ip is None:
        raise InvalidArgument(f"IP address is not correctly formatted: {v}")
    return ip


_DOMAIN = r"(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9]))"
_DOMAIN_RE = rf"^(:?{_DOMAIN}(:?\.{_DOMAIN})*)\.?\s*\Z"  # docker's regexp, typos included; compiled on use


def _dns_search(v: str) -> str:
    v = v.strip(" ")
    if v == ".":
        return v
    m = re.match(_DOMAIN_RE, v, re.ASCII) if re.search("[a-zA-Z]", v) else None
    if not m or len(m.group(1)) >= 255:
        raise InvalidArgument(f"{v} is not a valid domain")
    return m.group(1)


def _check_mac(mac: str) -> None:
    """Go's net.ParseMAC (6, 8 or 20 bytes; ``:``, ``-`` or dotted)."""
    s = mac.strip()
    h2, h4 = "[0-9a-fA-F]{2}", "[0-9a-fA-F]{4}"
    forms = [rf"{h2}(?:{sep}{h2}){{{n - 1}}}" for sep in (":", "-") for n in (6, 8, 20)]
    forms += [rf"{h4}(?:\.{h4}){{{n - 1}}}" for n in (3, 4, 10)]
    if not any(re.fullmatch(f, s) for f in forms):
        raise InvalidArgument(f"{mac} is not a valid mac address")


def _network_opt(value: str) -> dict:
    """One ``--network`` value: a name, or docker's ``name=N,alias=A,ip=...`` form (lowercased, as docker does)."""
    if not re.search(r"[0-9A-Za-z_]+=[0-9A-Za-z_]+", value):
        return {"Target": value}
    import csv
    opt: dict = {"Target": "", "Aliases": [], "LinkLocalIPs": [], "DriverOpts": {}}
    for field in next(csv.reader([value]), []):
        key, eq, val = field.lower().partition("=")
        if not eq or not key:
            raise InvalidArgument(f"invalid field {field}")
        key, val = key.strip(), val.strip()
        if key in ("name", "ip", "ip6", "mac-address"):
            opt[{"name": "Target", "ip": "IPv4Address", "ip6": "IPv6Address", "mac-address": "MacAddress"}[key]] = val
        elif key in ("alias", "link-local-ip"):
            opt["Aliases" if key == "alias" else "LinkLocalIPs"].append(val)
        elif key == "driver-opt":
            k, eq, v = val.partition("=")
            if not eq or not k:
                raise InvalidArgument("invalid key value pair format in driver options")
            opt["DriverOpts"][k.strip()] = v.strip()
        elif key == "gw-priority":
            if not re.fullmatch(r"[+-]?[0-9]+", val):
                raise InvalidArgument(f"invalid gw-priority ({val}): invalid syntax")
            opt["GwPriority"] = int(val)
        else:
            raise InvalidArgument(f"invalid field key {key}")
    if not opt["Target"]:
        raise InvalidArgument("network name/id is not specified")
    return opt


def _user_defined(target: str) -> bool:
    return target not in _NOT_USER_DEFINED and not target.startswith("container:")


def endpoints_config(networks: list[dict], a: argparse.Namespace) -> dict[str, dict]:
    """docker CLI's parseNetworkOpts: ``--network-alias``/``--ip``/``--ip6``/``--mac-address`` go to the
    first network; no ``--network`` means a "default" endpoint; a lone network without options is left out."""
    if not networks:
        networks, lone = [{"Target": "default"}], False
    else:
        networks, lone = [dict(n) for n in networks], len(networks) == 1
    first = networks[0]
    for flag, key, value, what in (
            ("--network-alias", "Aliases", a.network_alias, "per-network alias"),
            ("--ip", "IPv4Address", a.ip, "per-network IPv4 address"),
            ("--ip6", "IPv6Address", a.ip6, "per-network IPv6 address"),
            ("--mac-address", "MacAddress", a.mac_address, "per-network MAC address")):
        if value:
            if first.get(key):
                raise InvalidArgument(f"conflicting options: cannot specify both {flag} and {what}")
            first[key] = list(value) if isinstance(value, list) else value
    out: dict[str, dict] = {}
    kinds = set()
    for i, n in enumerate(networks):
        kinds.add(_user_defined(n["Target"]))
        ep = _endpoint(n)
        if n["Target"] in out:
            raise InvalidArgument(f'network "{n["Target"]}" is specified multiple times')
        if i == 0 and lone and not ep:
            continue
        out[n["Target"]] = ep
    if len(kinds) > 1:
        raise InvalidArgument("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
    return out


def _endpoint(n: dict) -> dict:
    """docker CLI's parseNetworkAttachmentOpt, keeping only the fields that are set."""
    if not n["Target"].strip():
        raise InvalidArgument("no name set for network")
    if n.get("Aliases") and not _user_defined(n["Target"]):
        raise InvalidArgument("network-scoped aliases are only supported for user-defined networks")
    ep: dict = {}
    if n.get("Aliases"):
        ep["Aliases"] = list(n["Aliases"])
    if n.get("DriverOpts"):
        ep["DriverOpts"] = dict(n["DriverOpts"])
    if n.get("GwPriority"):
        ep["GwPriority"] = n["GwPriority"]
    ipam = {k: n[k] for k in ("IPv4Address", "IPv6Address", "LinkLocalIPs") if n.get(k)}
    if ipam:
        ep["IPAMConfig"] = ipam
    if n.get("MacAddress"):
        _check_mac(n["MacAddress"])
        ep["MacAddress"] = n["MacAddress"]
    return ep


# ---------------------------------------------------------------- berth network ...

def _slice(values: list[str]) -> list[str]:
    """pflag's StringSlice: each value is a comma-separated list."""
    import csv
    return [x for v in values for x in next(csv.reader([v]), [])]


def _map(values: list[str]) -> dict[str, str]:
    """pflag MapOpts / ConvertKVStringsToMap: ``k=v`` (``k`` alone is ``k=""``)."""
    return dict((v.split("=", 1) + [""])[:2] for v in values)


def _go_bool(v: str, flag: str) -> bool:
    if v in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if v in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise Usage(f'invalid argument "{v}" for "{flag}" flag: strconv.ParseBool: parsing "{v}": invalid syntax')


def _parse_cidr(s: str):
    """Go's net.ParseCIDR → (ip, network); ValueError "invalid CIDR address: s"."""
    import ipaddress
    if "%" in s or not re.fullmatch(r"[^/]+/[0-9]{1,3}", s):
        raise ValueError(f"invalid CIDR address: {s}")
    try:
        iface = ipaddress.ip_interface(s)
    except ValueError:
        raise ValueError(f"invalid CIDR address: {s}") from None
    return iface.ip, iface.network


def _subnet_matches(subnet: str, data: str) -> bool:
    import ipaddress
    try:
        _, net = _parse_cidr(subnet)
    except ValueError as e:
        raise ValueError(f"invalid subnet: {e}") from None
    if "/" in data:
        ip = _parse_cidr(data)[0]
    else:
        try:
            ip = ipaddress.ip_address(data) if "%" not in data else None
        except ValueError:
            return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip is not None and ip.version == net.version and ip in net


def ipam_config(subnets: list[str], ip_ranges: list[str], gateways: list[str], aux: dict[str, str]) -> list[dict]:
    """docker CLI's createIPAMConfig: one entry per subnet, with its range, gateway and aux addresses."""
    if len(subnets) < len(ip_ranges) or len(subnets) < len(gateways):
        raise ValueError("every ip-range or gateway must have a corresponding subnet")
    data: dict[str, dict] = {}
    for s in subnets:
        for k in data:
            if _subnet_matches(s, k) or _subnet_matches(k, s):
                raise ValueError("multiple overlapping subnet configuration is not supported")
        data[s] = {"Subnet": s, "AuxiliaryAddresses": {}}
    for values, key, what in ((ip_ranges, "IPRange", "range"), (gateways, "Gateway", "gateway")):
        for r in values:
            match = False
            for s in subnets:
                if key == "IPRange":
                    _parse_cidr(r)
                if not _subnet_matches(s, r):
                    continue
                if data[s].get(key):
                    many = "multiple ranges" if key == "IPRange" else "multiple gateways"
                    prep = "on" if key == "IPRange" else "for"
                    raise ValueError(f"cannot configure {many} ({r}, {data[s][key]}) {prep} the same subnet ({s})")
                data[s][key] = r
                match = True
            if not match:
                raise ValueError(f"no matching subnet for {what} {r}")
    for name, addr in aux.items():
        match = False
        for s in subnets:
            if _subnet_matches(s, addr):
                data[s]["AuxiliaryAddresses"][name] = addr
                match = True
        if not match:
            raise ValueError(f"no matching subnet for aux-address {addr}")
    out = []
    for d in data.values():
        if not d["AuxiliaryAddresses"]:
            del d["AuxiliaryAddresses"]
        out.append(d)
    return out


def _create_parser(name: str) -> argparse.ArgumentParser:
    p = parser(name, "[OPTIONS] NETWORK")
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("-o", "--opt", action="append", default=[])
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("--internal", action="store_true")
    p.add_argument("--attachable", action="store_true")
    p.add_argument("--ipv4", nargs="?", const="true")
    p.add_argument("--ipv6", nargs="?", const="true")
    p.add_argument("--scope", default="")
    p.add_argument("--ipam-driver", default="default")
    p.add_argument("--subnet", action="append", default=[])
    p.add_argument("--ip-range", action="append", default=[])
    p.add_argument("--gateway", action="append", default=[])
    p.add_argument("--aux-address", action="append", default=[])
    p.add_argument("--ipam-opt", action="append", default=[])
    p.add_argument("name")
    return p


def create_body(a: argparse.Namespace) -> dict:
    """The POST /networks/create body docker CLI 28 sends (EnableIPv4/6 only when given)."""
    for label in a.label:
        key = label.partition("=")[0].lstrip(" \t")
        if not key:
            raise Usage(f'invalid argument "{label}" for "--label" flag: invalid label \'{label}\': empty name')
        if any(c in key for c in " \t"):
            raise Usage(f'invalid argument "{label}" for "--label" flag: label \'{key}\' contains whitespaces')
    try:
        config = ipam_config(_slice(a.subnet), _slice(a.ip_range), _slice(a.gateway), _map(a.aux_address))
    except ValueError as e:
        print(e, file=sys.stderr)
        raise Exit(1) from None
    body = {"Name": a.name, "Driver": a.driver, "Scope": a.scope, "Internal": a.internal,
            "Attachable": a.attachable, "Ingress": False, "ConfigOnly": False,
            "IPAM": {"Driver": a.ipam_driver, "Config": config, "Options": _map(a.ipam_opt)},
            "Options": _map(a.opt), "Labels": _map(a.label)}
    for flag, key, value in (("--ipv4", "EnableIPv4", a.ipv4), ("--ipv6", "EnableIPv6", a.ipv6)):
        if value is not None:
            body[key] = _go_bool(value, flag)
    return body


def create(api: Transport, name: str, argv: list[str]) -> int:
    body = create_body(_create_parser(name).parse_args(argv))
    resp = api.request("POST", "/networks/create", None, body).json() or {}
    if resp.get("Warning"):
        print(f"WARNING: {resp['Warning']}", file=sys.stderr)
    print(resp.get("Id", ""))
    return 0


def _go_time(s: str) -> str:
    """An RFC 3339 time as Go's time.String() prints it (``2024-05-01 10:00:00.5 +0000 UTC``)."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", s or "")
    if not m:
        return s or ""
    frac = (m[3] or "").rstrip("0").rstrip(".")
    zone = "+0000 UTC" if m[4] == "Z" else f"{m[4].replace(':', '')} {m[4].replace(':', '')}"
    return f"{m[1]} {m[2]}{frac} {zone}"


def ls(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli import output
    from berth.cli.commands.containers import _filters
    from berth.types.ports import natural_key
    p = parser(name, "[OPTIONS]")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    a = p.parse_args(argv)
    items = api.request("GET", "/networks", {"filters": _filters(a.filter)}).json() or []
    items.sort(key=lambda n: natural_key(n.get("Name", "")))
    rows = []
    for n in items:
        nid = n.get("Id", "")
        rows.append({"ID": nid if a.no_trunc else nid.removeprefix("sha256:")[:12], "Name": n.get("Name", ""),
                     "Driver": n.get("Driver", ""), "Scope": n.get("Scope", ""),
                     "IPv4": str(bool(n.get("EnableIPv4"))).lower(), "IPv6": str(bool(n.get("EnableIPv6"))).lower(),
                     "Internal": str(bool(n.get("Internal"))).lower(),
                     "Labels": ",".join(f"{k}={v}" for k, v in sorted((n.get("Labels") or {}).items())),
                     "CreatedAt": _go_time(n.get("Created", ""))})
    fmt = a.format
    if a.quiet and (not fmt or fmt == "table"):
        fmt = "{{.ID}}"
    text = output.format_rows(rows, fmt, LS_TABLE, LS_HEADERS)
    if text:
        print(text)
    return 0


def inspect(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli import output
    p = parser(name, "[OPTIONS] NETWORK [NETWORK...]")
    p.add_argument("-f", "--format")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("names", nargs="+")
    a = p.parse_args(argv)
    return output.print_inspect(lambda n: api.request("GET", f"/networks/{path_quote(n)}", {
        "verbose": "true" if a.verbose else None}).json(), a.names, a.format)


def rm(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "NETWORK [NETWORK...]")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("networks", nargs="+")
    a = p.parse_args(argv)
    status = 0
    for n in a.networks:
        try:
            api.request("DELETE", f"/networks/{path_quote(n)}").close()
        except NotFound as e:
            if a.force:
                continue
            print(f"Error response from daemon: {e.message}", file=sys.stderr)
            status = 1
            continue
        except BerthError as e:
            print(f"Error response from daemon: {e.message}", file=sys.stderr)
            status = 1
            continue
        print(n)
    if status:
        print(f"exit status {status}", file=sys.stderr)  # as docker CLI 28 (its StatusError's text)
    return status


def prune(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli.commands.containers import _filters
    from berth.cli.common import confirmed, prune_parser
    a = prune_parser(name).parse_args(argv)
    if not (a.force or confirmed("all custom networks not used by at least one container")):
        return 0
    res = api.request("POST", "/networks/prune", {"filters": _filters(a.filter)}).json() or {}
    if res.get("NetworksDeleted"):
        print("Deleted Networks:")
        for n in res["NetworksDeleted"]:
            print(n)
        print()
    return 0


def _connect_parser(name: str) -> argparse.ArgumentParser:
    p = parser(name, "[OPTIONS] NETWORK CONTAINER")
    p.add_argument("--alias", action="append", default=[])
    p.add_argument("--ip", default="")
    p.add_argument("--ip6", default="")
    p.add_argument("--link", action="append", default=[])
    p.add_argument("--link-local-ip", action="append", default=[])
    p.add_argument("--driver-opt", action="append", default=[])
    p.add_argument("network")
    p.add_argument("container")
    return p


def connect_body(a: argparse.Namespace) -> dict:
    """The POST /networks/{id}/connect body docker CLI 28 sends."""
    opts = {}
    for opt in _slice(a.driver_opt):
        k, eq, v = opt.partition("=")
        if not eq or not k.strip():
            print("invalid key/value pair format in driver options", file=sys.stderr)
            raise Exit(1)
        opts[k.strip()] = v.strip()
    ipam = {"IPv4Address": a.ip, "IPv6Address": a.ip6, "LinkLocalIPs": _slice(a.link_local_ip)}
    return {"Container": a.container,
            "EndpointConfig": {"IPAMConfig": {k: v for k, v in ipam.items() if v}, "Links": list(a.link) or None,
                               "Aliases": _slice(a.alias), "DriverOpts": opts}}


def connect(api: Transport, name: str, argv: list[str]) -> int:
    a = _connect_parser(name).parse_args(argv)
    api.request("POST", f"/networks/{path_quote(a.network)}/connect", None, connect_body(a)).close()
    return 0


def disconnect(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "[OPTIONS] NETWORK CONTAINER")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("network")
    p.add_argument("container")
    a = p.parse_args(argv)
    api.request("POST", f"/networks/{path_quote(a.network)}/disconnect", None,
                {"Container": a.container, "Force": a.force}).close()
    return 0
