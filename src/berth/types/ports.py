"""Published and exposed ports, as Docker spells them (pure; used by the CLI and the daemon).

* ``parse_port_specs`` reads ``-p/--publish`` values as the docker CLI 28 does
  (its ``convertToStandardNotation`` then go-connections v0.6 ``nat.ParsePortSpecs``):
  ``[IP:][HOSTPORT:]CONTAINERPORT[/PROTO]`` with ranges, ``[v6]`` addresses and the
  ``target=80,published=8080,protocol=udp`` long form.
* ``parse_expose`` reads ``--expose`` values as the docker CLI does.
* ``check_port_bindings`` is the daemon's validation of ``HostConfig.PortBindings``.
* ``format_ports`` is ``docker ps``'s PORTS column (docker/cli ``DisplayablePorts``).

Errors are ``InvalidArgument`` with Docker's texts.
"""
from __future__ import annotations

import re
from collections import namedtuple

from berth.errors import InvalidArgument

PROTOS = ("tcp", "udp", "sctp")
_DIGITS = re.compile(r"[0-9]+")


# One container port and one binding of it (nat.PortMapping): port "80/tcp"; host_port "", "8080",
# or "8000-8010" (a range to pick one from). A namedtuple: dataclasses would cost `berth ps` 8 ms.
PortMapping = namedtuple("PortMapping", "port host_ip host_port", defaults=("", ""))


def _parse_uint16(s: str) -> int:
    """Go's ``strconv.ParseUint(s, 10, 16)``; ValueError carries Go's text."""
    if not _DIGITS.fullmatch(s):
        raise ValueError(f'strconv.ParseUint: parsing "{_go_escape(s)}": invalid syntax')
    n = int(s)
    if n > 65535:
        raise ValueError(f'strconv.ParseUint: parsing "{_go_escape(s)}": value out of range')
    return n


def _go_escape(s: str) -> str:
    from berth.types.units import go_quote
    return go_quote(s)[1:-1]


def parse_port_range(ports: str) -> tuple[int, int]:
    """``nat.ParsePortRange``: "80" → (80, 80), "8000-8002" → (8000, 8002); ValueError with Go's text."""
    if not ports:
        raise ValueError("empty string specified for ports")
    if "-" not in ports:
        n = _parse_uint16(ports)
        return n, n
    parts = ports.split("-")  # as Go: "1-2-3" reads as 1-2
    start, end = _parse_uint16(parts[0]), _parse_uint16(parts[1])
    if end < start:
        raise ValueError("invalid range specified for port: " + ports)
    return start, end


def split_proto_port(raw: str) -> tuple[str, str]:
    """``nat.SplitProtoPort``: "80/udp" → ("udp", "80"), "80" → ("tcp", "80"), "" → ("", "")."""
    port, _, proto = raw.partition("/")
    if not port:
        return "", ""
    return proto or "tcp", port


def _split_parts(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _strip_brackets(ip: str) -> str:
    """Go's ``net.SplitHostPort(ip + ":")`` host part, for an address that starts with '['."""
    hostport = ip + ":"
    end = hostport.find("]")
    why = ""
    if end < 0:
        why = "missing ']' in address"
    elif end + 1 != len(hostport) - 1:
        why = "too many colons in address" if hostport[end + 1] == ":" else "missing port in address"
    elif "[" in hostport[1:] or "]" in hostport[end + 1:]:
        why = "unexpected '[' in address" if "[" in hostport[1:] else "unexpected ']' in address"
    if why:
        raise InvalidArgument(f"invalid IP address {ip}: address {hostport}: {why}")
    return hostport[1:end]


def parse_ip(s: str) -> str | None:
    """Go's ``net.ParseIP(s).String()``, or None when Go would not take it."""
    import ipaddress
    if "%" in s:
        return None
    try:
        ip = ipaddress.ip_address(s)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ip)


def parse_port_spec(raw: str) -> list[PortMapping]:
    """``nat.ParsePortSpec`` (go-connections v0.6, as vendored by docker CLI 28)."""
    ip, host_port, container_port = _split_parts(raw)
    proto, container_port = split_proto_port(container_port)
    proto = proto.lower()
    if proto not in PROTOS:
        raise InvalidArgument("invalid proto: " + proto)
    if ip.startswith("["):
        ip = _strip_brackets(ip)
    if ip and parse_ip(ip) is None:
        raise InvalidArgument("invalid IP address: " + ip)
    if not container_port:
        raise InvalidArgument(f"no port specified: {raw}<empty>")
    try:
        start, end = parse_port_range(container_port)
    except ValueError:
        raise InvalidArgument("invalid containerPort: " + container_port) from None
    hstart = hend = 0
    if host_port:
        try:
            hstart, hend = parse_port_range(host_port)
        except ValueError:
            raise InvalidArgument("invalid hostPort: " + host_port) from None
        if end - start != hend - hstart and end != start:
            raise InvalidArgument(f"invalid ranges specified for container and host Ports: "
                                  f"{container_port} and {host_port}")
    count = end - start + 1
    out = []
    for i in range(count):
        hport = ""
        if host_port:
            hport = str(hstart + i)
            if count == 1 and hstart != hend:  # one container port, a host range to pick from
                hport += f"-{hend}"
        out.append(PortMapping(f"{start + i}/{proto}", ip, hport))
    return out


def convert_publish(spec: str) -> str:
    """The docker CLI's long ``--publish`` form (``target=80,published=8080,protocol=udp``) → short form."""
    if "=" not in spec:
        return spec
    params = {"protocol": "tcp"}
    for param in spec.split(","):
        k, eq, v = param.partition("=")
        if not eq or not k:
            raise InvalidArgument(f"invalid publish opts format (should be name=value but got '{param}')")
        params[k] = v
    return f"{params.get('published', '')}:{params.get('target', '')}/{params['protocol']}"


def parse_port_specs(specs: list[str]) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """``-p`` values → (``ExposedPorts``, ``PortBindings``) as the docker CLI sends them."""
    exposed: dict[str, dict] = {}
    bindings: dict[str, list[dict]] = {}
    for spec in specs:
        for m in parse_port_spec(convert_publish(spec)):
            exposed.setdefault(m.port, {})
            bindings.setdefault(m.port, []).append({"HostIp": m.host_ip, "HostPort": m.host_port})
    return exposed, bindings


def parse_expose(specs: list[str]) -> dict[str, dict]:
    """``--expose`` values → ``ExposedPorts`` keys, as the docker CLI reads them (proto unchecked)."""
    out: dict[str, dict] = {}
    for e in specs:
        if ":" in e:
            raise InvalidArgument(f"invalid port format for --expose: {e}")
        proto, port = split_proto_port(e)
        try:
            start, end = parse_port_range(port)
        except ValueError as err:
            raise InvalidArgument(f"invalid range format for --expose: {e}, error: {err}") from None
        for p in range(start, end + 1):
            out.setdefault(f"{p}/{proto}", {})
    return out


def check_port_bindings(bindings: dict | None) -> None:
    """The daemon's check of ``HostConfig.PortBindings`` at create (moby ``validatePortBindings``)."""
    if bindings is not None and not isinstance(bindings, dict):
        raise InvalidArgument("invalid type for HostConfig.PortBindings: expected object")
    for key, entries in (bindings or {}).items():
        if entries is not None and not (isinstance(entries, list) and all(
                b is None or isinstance(b, dict) for b in entries)):
            raise InvalidArgument("invalid type for HostConfig.PortBindings: expected an array of port bindings")
        _, port = split_proto_port(str(key))
        if port:
            try:
                _parse_uint16(port)
            except ValueError:
                raise InvalidArgument(f"invalid port specification: {_quote(port)}") from None
        for b in entries or []:
            host_port = str((b or {}).get("HostPort") or "")
            _, hp = split_proto_port(host_port)
            if hp:
                try:
                    parse_port_range(hp)
                except ValueError:
                    raise InvalidArgument(f"invalid port specification: {_quote(host_port)}") from None


def _quote(s: str) -> str:
    from berth.types.units import go_quote
    return go_quote(s)


def join_host_port(host: str, port: object) -> str:
    """Go's ``net.JoinHostPort``: brackets around an address with a colon."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def port_list(ports: dict | None) -> list[dict]:
    """Inspect's ``NetworkSettings.Ports`` map → the list API's ``Ports`` entries (IP, PublicPort omitted when empty)."""
    out = []
    for key, bindings in (ports or {}).items():
        proto, port = split_proto_port(key)
        private = int(port) if _DIGITS.fullmatch(port) else 0
        if not bindings:
            out.append({"PrivatePort": private, "Type": proto})
            continue
        for b in bindings:
            hp = str(b.get("HostPort") or "")
            entry: dict = {"PrivatePort": private, "Type": proto}
            if b.get("HostIp"):
                entry["IP"] = b["HostIp"]
            if _DIGITS.fullmatch(hp) and int(hp):
                entry["PublicPort"] = int(hp)
            out.append(entry)
    return out


def format_ports(ports: dict | list | None) -> str:
    """``docker ps``'s PORTS text from the list API's ``Ports`` (or inspect's port map), ranges grouped.

    ``0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 53/udp``; as docker CLI 28, IPv6
    addresses are bracketed (``net.JoinHostPort``).
    """
    items = port_list(ports) if isinstance(ports, dict) else list(ports or [])
    items.sort(key=lambda p: (p.get("PrivatePort") or 0, p.get("IP") or "", p.get("PublicPort") or 0,
                              p.get("Type") or ""))
    groups: dict[str, list[int]] = {}  # key → [first, last]; insertion order is Go's groupMapKeys
    result: list[str] = []
    host_mappings: list[str] = []
    for p in items:
        current, ip, typ = p.get("PrivatePort") or 0, p.get("IP") or "", p.get("Type") or ""
        key = typ
        if ip:
            public = p.get("PublicPort") or 0
            if public != current:
                host_mappings.append(f"{join_host_port(ip, public)}->{current}/{typ}")
                continue
            key = f"{ip}/{typ}"
        group = groups.get(key)
        if group is None:
            groups[key] = [current, current]
        elif current == group[1] + 1:
            group[1] = current
        else:
            result.append(_form_group(key, *group))
            groups[key] = [current, current]
    result.extend(_form_group(k, *g) for k, g in groups.items())
    return ", ".join(result + host_mappings)


def _form_group(key: str, first: int, last: int) -> str:
    ip, _, typ = key.rpartition("/")
    text = str(first) if first == last else f"{first}-{last}"
    if ip:
        text = f"{join_host_port(ip, text)}->{text}"
    return f"{text}/{typ}"


def natural_key(s: str) -> tuple:
    """A sort key ordering like fvbommel/sortorder ``NaturalLess`` (``docker port``, ``docker network ls``)."""
    out = []
    for m in re.finditer(r"[0-9]+|[^0-9]", s):
        chunk = m.group()
        if chunk[0] in "0123456789":
            digits = chunk.lstrip("0")
            out.append((0, len(digits), digits, len(chunk) - len(digits)))
        else:
            out.append((1, chunk.encode()))
    return tuple(out)
