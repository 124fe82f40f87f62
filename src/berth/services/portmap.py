"""Published ports: which a container asks for, and host ports held for it.

A host port is reserved by binding a socket to it (never listening: the kernel's DNAT rules
send the traffic to the container), so neither another container nor another program can take it.
"""
from __future__ import annotations

import contextlib
import errno
import socket

from berth.errors import Conflict, InvalidArgument
from berth.types.container import ContainerSpec
from berth.types.network import PortMapping

_KINDS = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}


def wanted_ports(spec: ContainerSpec) -> list[tuple[str, int, str, str]]:
    """(proto, container port, host IP, host port spec) for each binding; ``-P`` adds every exposed port."""
    bindings = {k: list(v or [{}]) for k, v in spec.port_bindings.items()}
    if spec.publish_all_ports:
        for key in spec.exposed_ports:
            bindings.setdefault(key, [{}])
    out = []
    for key, entries in bindings.items():
        port, _, proto = key.partition("/")
        for b in entries:
            out.append((proto or "tcp", int(port), (b or {}).get("HostIp", "") or "", (b or {}).get("HostPort", "") or ""))
    return sorted(out, key=lambda w: (w[1], w[0]))


class PortReservations:
    def __init__(self) -> None:
        self._held: dict[str, list[tuple[socket.socket | None, PortMapping]]] = {}

    def owner(self, proto: str, port: int) -> str | None:
        for cid, held in self._held.items():
            if any(m.proto == proto and m.host_port == port for _, m in held):
                return cid
        return None

    def reserve(self, cid: str, wanted: list[tuple[str, int, str, str]], container_ip: str) -> list[PortMapping]:
        """Hold a host port for each wish; all or nothing."""
        held: list[tuple[socket.socket | None, PortMapping]] = []
        try:
            for proto, cport, host_ip, spec in wanted:
                ip = host_ip or "0.0.0.0"
                if ":" in ip:
                    continue  # IPv6 host addresses: berth publishes IPv4 only
                sock, port = self._bind_any(proto, ip, spec, cport, container_ip)
                held.append((sock, PortMapping(proto, cport, ip, port)))
        except BaseException:
            for sock, _ in held:
                if sock is not None:
                    sock.close()
            raise
        self._held.setdefault(cid, []).extend(held)
        return [m for _, m in held]

    def take(self, cid: str, mappings: list[PortMapping]) -> None:
        """Hold the ports of a container that was already running when the daemon started."""
        held = []
        for m in mappings:
            with contextlib.suppress(OSError, Conflict):
                held.append((self._bind(m.proto, m.host_ip, m.host_port, m.container_port, ""), m))
        self._held.setdefault(cid, []).extend(held)

    def _bind_any(self, proto: str, ip: str, spec: str, cport: int, cip: str) -> tuple[socket.socket | None, int]:
        if spec in ("", "0"):
            s = self._bind(proto, ip, 0, cport, cip)
            if s is None:
                raise InvalidArgument(f"{proto} ports need a host port")
            return s, s.getsockname()[1]
        lo, _, hi = spec.partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise InvalidArgument(f"invalid port specification: {spec!r}") from None
        err: Exception | None = None
        for port in range(first, last + 1):
            try:
                return self._bind(proto, ip, port, cport, cip), port
            except Conflict as e:
                err = e
        raise err or InvalidArgument(f"invalid port specification: {spec!r}")

    def _bind(self, proto: str, ip: str, port: int, cport: int, cip: str) -> socket.socket | None:
        if port and self.owner(proto, port):
            raise Conflict(f"Bind for {ip}:{port} failed: port is already allocated")
        kind = _KINDS.get(proto)
        if kind is None:
            return None  # sctp: no reservation, the rule alone
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((ip, port))
        except OSError as e:
            s.close()
            if e.errno == errno.EADDRINUSE:
                raise Conflict(f"failed to bind host port for {ip}:{port}:{cip}:{cport}/{proto}: "
                               "address already in use") from None
            raise Conflict(f"failed to bind host port for {ip}:{port}: {e.strerror}") from None
        return s

    def release(self, cid: str) -> None:
        for sock, _ in self._held.pop(cid, []):
            if sock is not None:
                sock.close()

    def close(self) -> None:
        for cid in list(self._held):
            self.release(cid)
