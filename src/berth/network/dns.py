"""Embedded DNS server for user-defined networks (Docker's 127.0.0.11).

Mirrors moby's ``libnetwork/resolver.go``: names of containers on the
querying container's networks are answered locally (A, empty AAAA/MX, PTR);
everything else is forwarded to the container's upstream servers over the
transport the client used, and SERVFAIL is returned when none answers.
The listening sockets are made by the daemon and handed to ``Resolver.add``.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
from dataclasses import dataclass, field
from typing import Callable, Protocol

from dnslib import CLASS, PTR, QTYPE, RCODE, RR, A, DNSBuffer, DNSHeader, DNSRecord

log = logging.getLogger(__name__)

_MAX_UPSTREAMS = 3  # moby maxExtDNS
_MAX_FORWARDS = 1024  # moby maxConcurrent
_TCP_MAX_QUERIES = 128  # miekg/dns maxTCPQueries
_MIN_UDP = 512  # miekg/dns MinMsgSize
_PTR_V4 = ".in-addr.arpa"


class NameSource(Protocol):
    """What the resolver asks about the networks a container is attached to."""

    def lookup(self, container_id: str, name: str) -> list[str] | None:
        """IPv4 addresses of ``name`` (lowercase, no trailing dot), or None if unknown."""

    def reverse(self, container_id: str, ip: str) -> str | None:
        """The name to answer a PTR query for IPv4 ``ip`` with, or None."""

    def upstreams(self, container_id: str) -> list[tuple[str, int]]:
        """(ip, port) of servers to forward other queries to; empty means none."""


@dataclass
class _Serving:
    udp_sock: socket.socket
    tcp_sock: socket.socket
    udp: asyncio.DatagramTransport | None = None
    server: asyncio.Server | None = None
    tasks: set[asyncio.Task] = field(default_factory=set)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, on_packet: Callable[[bytes, tuple], None]) -> None:
        self._on_packet = on_packet

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self._on_packet(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("dns: udp error: %s", exc)


class Resolver:
    """Serves DNS for many containers, each on its own pair of sockets."""

    tcp_first_timeout = 2.0  # miekg/dns ReadTimeout: wait for a connection's first query
    tcp_idle_timeout = 8.0  # miekg/dns IdleTimeout: wait for each further query

    def __init__(self, names: NameSource, ttl: int = 600, timeout: float = 4.0) -> None:
        self._names = names
        self._ttl = ttl
        self._timeout = timeout
        self._serving: dict[str, _Serving] = {}
        self._forwards = asyncio.Semaphore(_MAX_FORWARDS)

    async def add(self, container_id: str, udp: socket.socket, tcp: socket.socket) -> None:
        """Start serving ``container_id`` on a bound UDP and a listening TCP socket."""
        self.remove(container_id)
        s = _Serving(udp, tcp)
        loop = asyncio.get_running_loop()
        try:
            s.udp, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(lambda d, a: s.spawn(self._udp_query(container_id, s, d, a))),
                sock=udp,
            )
            s.server = await asyncio.start_server(
                lambda r, w: self._tcp_conn(container_id, s, r, w), sock=tcp
            )
        except BaseException:
            _shut(s)
            raise
        self._serving[container_id] = s

    def remove(self, container_id: str) -> None:
        """Stop serving ``container_id``; closes its sockets and connections. Idempotent."""
        s = self._serving.pop(container_id, None)
        if s is not None:
            _shut(s)

    def active(self) -> list[str]:
        """Ids of the containers being served."""
        return list(self._serving)

    def close(self) -> None:
        """Stop serving every container."""
        for container_id in list(self._serving):
            self.remove(container_id)

    async def _udp_query(self, cid: str, s: _Serving, data: bytes, addr: tuple) -> None:
        reply = await self._answer(cid, data, "udp")
        if reply is not None and s.udp is not None and not s.udp.is_closing():
            s.udp.sendto(reply, addr)

    async def _tcp_conn(
        self, cid: str, s: _Serving, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            s.tasks.add(task)
        s.writers.add(writer)
        try:
            for n in range(_TCP_MAX_QUERIES):
                wait = self.tcp_first_timeout if n == 0 else self.tcp_idle_timeout
                async with asyncio.timeout(wait):
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    data = await reader.readexactly(size)
                reply = await self._answer(cid, data, "tcp")
                if reply is not None:
                    writer.write(len(reply).to_bytes(2, "big") + reply)
                    await writer.drain()
        except (EOFError, OSError, TimeoutError, asyncio.CancelledError):
            pass  # ends the connection task quietly: 3.11's asyncio logs a cancelled one as an error
        finally:
            s.writers.discard(writer)
            if task is not None:
                s.tasks.discard(task)
            writer.close()

    async def _answer(self, cid: str, data: bytes, proto: str) -> bytes | None:
        """The reply to one query packet, or None to send nothing."""
        try:
            header = DNSHeader.parse(DNSBuffer(data))
        except Exception:
            return None  # not even a header: any reply could be used for amplification
        if header.qr:
            return None
        if header.opcode not in (0, 4):  # miekg/dns accepts only QUERY and NOTIFY
            return _bare(header, RCODE.NOTIMP)
        if header.q != 1 or header.a > 1 or header.auth > 1 or header.ar > 2:
            return _bare(header, RCODE.FORMERR)
        try:
            query = DNSRecord.parse(data)
        except Exception:
            return _bare(header, RCODE.FORMERR)
        try:
            local = self._local(cid, query)
            if local is not None:
                return _fit(local, query, proto)
            return await self._forward(cid, query, data, proto)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("dns: query %s failed: %r", query.q.qname, exc)
            return _reply(query, RCODE.SERVFAIL, ra=0).pack()

    def _local(self, cid: str, query: DNSRecord) -> DNSRecord | None:
        """A reply from the container's networks, or None to forward the query."""
        q = query.q
        name = str(q.qname).rstrip(".").lower()
        if not name:
            return None
        if q.qtype in (QTYPE.A, QTYPE.AAAA, QTYPE.MX):
            ips = self._names.lookup(cid, name)
            if ips is None:
                return None
            reply = _reply(query)  # AAAA and MX: known name, no records (NOERROR)
            if q.qtype == QTYPE.A:
                for ip in random.sample(ips, len(ips)):
                    reply.add_answer(RR(q.qname, QTYPE.A, CLASS.IN, self._ttl, A(ip)))
            return reply
        if q.qtype == QTYPE.PTR and name.endswith(_PTR_V4):
            try:
                ip = ipaddress.IPv4Address(".".join(reversed(name[: -len(_PTR_V4)].split("."))))
            except ValueError:
                return None
            host = self._names.reverse(cid, str(ip))
            if not host:
                return None
            reply = _reply(query)
            reply.add_answer(RR(q.qname, QTYPE.PTR, CLASS.IN, self._ttl, PTR(host.rstrip(".") + ".")))
            return reply
        return None

    async def _forward(self, cid: str, query: DNSRecord, data: bytes, proto: str) -> bytes:
        """Relay ``data`` to the upstreams in turn; the first usable answer, else SERVFAIL."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._forwards.acquire()
        except TimeoutError:
            return _reply(query, RCODE.REFUSED, ra=0).pack()
        try:
            for ip, port in self._names.upstreams(cid)[:_MAX_UPSTREAMS]:
                exchange = _udp_exchange if proto == "udp" else _tcp_exchange
                try:
                    async with asyncio.timeout(self._timeout):
                        raw = await exchange(ip, port, data, query.header.id)
                except (EOFError, OSError, TimeoutError, ValueError) as exc:
                    log.debug("dns: upstream %s:%d (%s) failed: %r", ip, port, proto, exc)
                    continue
                if raw is None or _rcode(raw) in (RCODE.SERVFAIL, RCODE.REFUSED, None):
                    continue
                return raw  # verbatim, TC bit and all, like moby
        finally:
            self._forwards.release()
        return _reply(query, RCODE.SERVFAIL, ra=0).pack()


def _shut(s: _Serving) -> None:
    if s.udp is not None:
        s.udp.close()
    if s.server is not None:
        s.server.close()
    for writer in list(s.writers):
        writer.close()
    for task in list(s.tasks):
        task.cancel()
    s.udp_sock.close()
    s.tcp_sock.close()


def _reply(query: DNSRecord, rcode: int = RCODE.NOERROR, ra: int = 1) -> DNSRecord:
    """miekg/dns ``SetReply``: id, opcode, RD and CD copied, AA clear, first question."""
    h = query.header
    header = DNSHeader(id=h.id, qr=1, opcode=h.opcode, rd=h.rd, cd=h.cd, ra=ra, rcode=rcode)
    return DNSRecord(header, q=query.q)


def _bare(h: DNSHeader, rcode: int) -> bytes:
    """A header-only error reply to a query that could not be parsed or accepted."""
    header = DNSHeader(id=h.id, qr=1, opcode=h.opcode, rd=h.rd, cd=h.cd, rcode=rcode)
    return DNSRecord(header).pack()


def _fit(reply: DNSRecord, query: DNSRecord, proto: str) -> bytes:
    """Pack a local answer, dropping records (and setting TC) past the UDP size limit."""
    packed = reply.pack()
    if proto != "udp":
        return packed
    limit = max([_MIN_UDP] + [rr.rclass for rr in query.ar if rr.rtype == QTYPE.OPT])
    while len(packed) > limit and reply.rr:
        reply.rr.pop()
        reply.header.tc = 1
        packed = reply.pack()
    return packed


def _rcode(raw: bytes) -> int | None:
    try:
        return DNSRecord.parse(raw).header.rcode
    except Exception:
        return None


def _is_answer(raw: bytes, qid: int) -> bool:
    try:
        header = DNSHeader.parse(DNSBuffer(raw))
    except Exception:
        return False
    return bool(header.qr) and header.id == qid


def _family(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET


async def _udp_exchange(ip: str, port: int, data: bytes, qid: int) -> bytes:
    loop = asyncio.get_running_loop()
    with socket.socket(_family(ip), socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect((ip, port))  # a connected socket only hears from the upstream
        await loop.sock_sendall(sock, data)
        while True:
            raw = await loop.sock_recv(sock, 65535)
            if _is_answer(raw, qid):
                return raw


async def _tcp_exchange(ip: str, port: int, data: bytes, qid: int) -> bytes | None:
    reader, writer = await asyncio.open_connection(ip, port)
    try:
        writer.write(len(data).to_bytes(2, "big") + data)
        await writer.drain()
        size = int.from_bytes(await reader.readexactly(2), "big")
        raw = await reader.readexactly(size)
        return raw if _is_answer(raw, qid) else None
    finally:
        writer.close()
