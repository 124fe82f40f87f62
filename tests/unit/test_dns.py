"""The embedded DNS server, on loopback sockets with random ports."""
from __future__ import annotations

import asyncio
import socket
import time
from contextlib import asynccontextmanager

import pytest
from dnslib import EDNS0, QTYPE, RCODE, RR, A, DNSRecord

from berth.network.dns import Resolver

LOOP = "127.0.0.1"


class Names:
    def __init__(self, upstreams=(), broken=False):
        self.ups = list(upstreams)
        self.broken = broken
        self.seen: list[tuple[str, str]] = []
        self.table = {"web": ["10.0.0.2", "10.0.0.3"], "db": ["10.0.0.4"]}

    def lookup(self, container_id, name):
        self.seen.append((container_id, name))
        if self.broken and name == "boom":
            raise RuntimeError("backend broke")
        return self.table.get(name)

    def reverse(self, container_id, ip):
        return {"10.0.0.4": "db.mynet"}.get(ip)

    def upstreams(self, container_id):
        return self.ups


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 5))


@asynccontextmanager
async def serving(names, timeout=0.3):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((LOOP, 0))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind((LOOP, 0))
    tcp.listen()
    r = Resolver(names, timeout=timeout)
    await r.add("c1", udp, tcp)
    try:
        yield r, udp.getsockname(), tcp.getsockname()
    finally:
        r.close()


def _fake_answer(data, rcode, got, proto):
    q = DNSRecord.parse(data)
    got.append((proto, q))
    r = q.reply()
    name = str(q.q.qname)
    if rcode is not None:
        r.header.rcode = rcode
    elif name == "example.com.":
        r.add_answer(RR(q.q.qname, QTYPE.A, rdata=A("1.2.3.4"), ttl=60))
    elif name == "big.example.":
        r.add_answer(RR(q.q.qname, QTYPE.A, rdata=A("5.6.7.8"), ttl=60))
        r.header.tc = 1
    else:
        r.header.rcode = RCODE.NXDOMAIN
    return r.pack()


@asynccontextmanager
async def fake_upstream(rcode=None):
    """A UDP+TCP DNS server on one random loopback port; ``got`` lists (proto, query)."""
    loop = asyncio.get_running_loop()
    got: list[tuple[str, DNSRecord]] = []

    class Udp(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            self.transport.sendto(_fake_answer(data, rcode, got, "udp"), addr)

    async def conn(reader, writer):
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(2), "big")
                out = _fake_answer(await reader.readexactly(size), rcode, got, "tcp")
                writer.write(len(out).to_bytes(2, "big") + out)
                await writer.drain()
        except EOFError:
            pass
        finally:
            writer.close()

    for _ in range(20):
        server = await asyncio.start_server(conn, LOOP, 0)
        port = server.sockets[0].getsockname()[1]
        try:
            transport, _ = await loop.create_datagram_endpoint(Udp, local_addr=(LOOP, port))
            break
        except OSError:
            server.close()
    try:
        yield (LOOP, port), got
    finally:
        transport.close()
        server.close()


def silent_upstream():
    """UDP and TCP sockets on one port that never answer (TCP connects, then hangs)."""
    for _ in range(20):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind((LOOP, 0))
        tcp.listen()
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(tcp.getsockname())
            return (LOOP, tcp.getsockname()[1]), [tcp, udp]
        except OSError:
            tcp.close()
            udp.close()
    raise RuntimeError("no free port")


async def ask_udp(addr, query, timeout=2.0, sock=None):
    loop = asyncio.get_running_loop()
    own = sock is None
    sock = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect(addr)
        data = query if isinstance(query, (bytes, bytearray)) else query.pack()
        await loop.sock_sendall(sock, data)
        raw = await asyncio.wait_for(loop.sock_recv(sock, 65535), timeout)
        return DNSRecord.parse(raw)
    finally:
        if own:
            sock.close()


async def ask_tcp(reader, writer, query):
    data = query if isinstance(query, (bytes, bytearray)) else query.pack()
    writer.write(len(data).to_bytes(2, "big") + data)
    await writer.drain()
    size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 2), "big")
    return DNSRecord.parse(await asyncio.wait_for(reader.readexactly(size), 2))


def addresses(reply):
    return sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A)


def test_a_for_known_name_has_every_address():
    async def main():
        async with serving(Names()) as (_, udp, _tcp):
            q = DNSRecord.question("web")
            reply = await ask_udp(udp, q)
            assert reply.header.id == q.header.id and reply.header.qr == 1
            assert reply.header.rcode == RCODE.NOERROR
            assert reply.header.ra == 1 and reply.header.aa == 0 and reply.header.rd == 1
            assert str(reply.q.qname) == "web."
            assert addresses(reply) == ["10.0.0.2", "10.0.0.3"]
            assert {rr.ttl for rr in reply.rr} == {600}

    run(main())


def test_names_are_case_insensitive():
    async def main():
        names = Names()
        async with serving(names) as (_, udp, _tcp):
            reply = await ask_udp(udp, DNSRecord.question("DB."))
            assert addresses(reply) == ["10.0.0.4"]
            assert str(reply.rr[0].rname) == "DB."
            assert ("c1", "db") in names.seen

    run(main())


def test_aaaa_and_mx_for_known_name_are_empty_noerror():
    async def main():
        async with serving(Names()) as (_, udp, _tcp):
            for qtype in ("AAAA", "MX"):
                reply = await ask_udp(udp, DNSRecord.question("web", qtype))
                assert reply.header.rcode == RCODE.NOERROR
                assert reply.rr == []

    run(main())


def test_ptr_for_known_address_and_unknown_is_forwarded():
    async def main():
        async with fake_upstream() as (up, got), serving(Names([up])) as (_, udp, _tcp):
            reply = await ask_udp(udp, DNSRecord.question("4.0.0.10.in-addr.arpa", "PTR"))
            assert reply.header.rcode == RCODE.NOERROR
            assert [str(rr.rdata) for rr in reply.rr] == ["db.mynet."]
            assert reply.rr[0].ttl == 600
            reply = await ask_udp(udp, DNSRecord.question("9.0.0.10.in-addr.arpa", "PTR"))
            assert reply.header.rcode == RCODE.NXDOMAIN
            assert [str(q.q.qname) for _, q in got] == ["9.0.0.10.in-addr.arpa."]

    run(main())


def test_forward_over_udp_keeps_query_id():
    async def main():
        async with fake_upstream() as (up, got), serving(Names([up])) as (_, udp, _tcp):
            q = DNSRecord.question("example.com")
            reply = await ask_udp(udp, q)
            assert reply.header.id == q.header.id
            assert addresses(reply) == ["1.2.3.4"]
            reply = await ask_udp(udp, DNSRecord.question("nowhere.test"))
            assert reply.header.rcode == RCODE.NXDOMAIN
            # a known name but a type the resolver does not answer goes upstream too
            await ask_udp(udp, DNSRecord.question("web", "TXT"))
            assert [(p, str(r.q.qname)) for p, r in got] == [
                ("udp", "example.com."), ("udp", "nowhere.test."), ("udp", "web.")]
            assert got[0][1].header.id == q.header.id

    run(main())


def test_truncated_udp_answer_is_passed_back():
    async def main():
        async with fake_upstream() as (up, got), serving(Names([up])) as (_, udp, _tcp):
            reply = await ask_udp(udp, DNSRecord.question("big.example"))
            assert reply.header.tc == 1
            assert addresses(reply) == ["5.6.7.8"]
            assert [p for p, _ in got] == ["udp"]

    run(main())


def test_tcp_several_queries_on_one_connection_and_forwarding():
    async def main():
        async with fake_upstream() as (up, got), serving(Names([up])) as (_, _udp, tcp):
            reader, writer = await asyncio.open_connection(*tcp)
            try:
                assert addresses(await ask_tcp(reader, writer, DNSRecord.question("web"))) == [
                    "10.0.0.2", "10.0.0.3"]
                q = DNSRecord.question("example.com")
                reply = await ask_tcp(reader, writer, q)
                assert reply.header.id == q.header.id and addresses(reply) == ["1.2.3.4"]
                assert [p for p, _ in got] == ["tcp"]
            finally:
                writer.close()

    run(main())


def test_udp_local_answer_truncated_to_512_unless_edns():
    async def main():
        names = Names()
        names.table["many"] = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(60)]
        async with serving(names) as (_, udp, tcp):
            small = await ask_udp(udp, DNSRecord.question("many"))
            assert small.header.tc == 1 and 0 < len(small.rr) < 60
            assert len(small.pack()) <= 512
            q = DNSRecord.question("many")
            q.add_ar(EDNS0(udp_len=4096))
            assert len((await ask_udp(udp, q)).rr) == 60
            reader, writer = await asyncio.open_connection(*tcp)
            try:
                full = await ask_tcp(reader, writer, DNSRecord.question("many"))
                assert full.header.tc == 0 and len(full.rr) == 60
            finally:
                writer.close()

    run(main())


@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_upstream_timeout_or_failure_tries_next(proto):
    async def main():
        dead, socks = silent_upstream()
        try:
            async with fake_upstream(RCODE.REFUSED) as (refusing, rgot), fake_upstream() as (up, got):
                async with serving(Names([dead, refusing, up]), timeout=0.3) as (_, udp, tcp):
                    q = DNSRecord.question("example.com")
                    if proto == "udp":
                        reply = await ask_udp(udp, q)
                    else:
                        reader, writer = await asyncio.open_connection(*tcp)
                        reply = await ask_tcp(reader, writer, q)
                        writer.close()
                    assert addresses(reply) == ["1.2.3.4"]
                    assert [p for p, _ in rgot] == [proto] and [p for p, _ in got] == [proto]
        finally:
            for s in socks:
                s.close()

    run(main())


def test_all_upstreams_failing_gives_servfail():
    async def main():
        dead, socks = silent_upstream()
        try:
            async with serving(Names([dead]), timeout=0.2) as (_, udp, _tcp):
                start = time.monotonic()
                reply = await ask_udp(udp, DNSRecord.question("example.com"))
                assert reply.header.rcode == RCODE.SERVFAIL
                assert str(reply.q.qname) == "example.com."
                assert 0.15 < time.monotonic() - start < 1.5
        finally:
            for s in socks:
                s.close()

    run(main())


def test_no_upstreams_gives_servfail():
    async def main():
        async with serving(Names([])) as (_, udp, _tcp):
            q = DNSRecord.question("example.com")
            reply = await ask_udp(udp, q)
            assert reply.header.rcode == RCODE.SERVFAIL and reply.header.id == q.header.id

    run(main())


def test_malformed_packets_do_not_stop_the_server():
    async def main():
        async with serving(Names([])) as (_, udp, tcp):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.connect(udp)
                loop = asyncio.get_running_loop()
                await loop.sock_sendall(sock, b"\x12\x34junk")  # shorter than a header: dropped
                answer = DNSRecord.question("web").reply().pack()
                await loop.sock_sendall(sock, answer)  # a response, not a query: dropped
                q = DNSRecord.question("web")
                reply = await ask_udp(udp, q, sock=sock)
                assert reply.header.id == q.header.id and len(reply.rr) == 2
                # a header announcing a question that is not there: FORMERR
                bad = DNSRecord.question("web").pack()[:14]
                reply = await ask_udp(udp, bad, sock=sock)
                assert reply.header.rcode == RCODE.FORMERR
                assert reply.header.id == int.from_bytes(bad[:2], "big")
            finally:
                sock.close()
            reader, writer = await asyncio.open_connection(*tcp)
            try:
                assert (await ask_tcp(reader, writer, bad)).header.rcode == RCODE.FORMERR
                assert len((await ask_tcp(reader, writer, DNSRecord.question("db"))).rr) == 1
            finally:
                writer.close()

    run(main())


def test_backend_error_is_servfail_and_server_keeps_going():
    async def main():
        async with serving(Names(broken=True)) as (_, udp, _tcp):
            assert (await ask_udp(udp, DNSRecord.question("boom"))).header.rcode == RCODE.SERVFAIL
            assert len((await ask_udp(udp, DNSRecord.question("web"))).rr) == 2

    run(main())


def test_tcp_connection_closed_when_idle():
    async def main():
        async with serving(Names()) as (r, _udp, tcp):
            r.tcp_first_timeout = r.tcp_idle_timeout = 0.2
            reader, writer = await asyncio.open_connection(*tcp)
            try:
                await ask_tcp(reader, writer, DNSRecord.question("web"))
                assert await asyncio.wait_for(reader.read(), 2) == b""
            finally:
                writer.close()

    run(main())


def test_remove_closes_sockets_and_connections():
    async def main():
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((LOOP, 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind((LOOP, 0))
        tcp.listen()
        tcp_addr = tcp.getsockname()
        r = Resolver(Names())
        await r.add("c1", udp, tcp)
        assert r.active() == ["c1"]
        reader, writer = await asyncio.open_connection(*tcp_addr)
        await ask_tcp(reader, writer, DNSRecord.question("web"))
        r.remove("c1")
        r.remove("c1")
        r.close()
        assert r.active() == []
        assert udp.fileno() == -1 and tcp.fileno() == -1
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
        with pytest.raises(OSError):
            await asyncio.open_connection(*tcp_addr)

    run(main())
