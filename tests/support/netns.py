"""Network namespaces for network tests: a private "host" for berthd, test hosts wired to it, a fake DNS upstream.

Network tests run their berthd inside a network namespace of its own (``NetDaemon``): its bridges, veths,
nft table and published host ports live there, so they need no unusual names (berth0, ``ip berth``, fixed
ports such as 8080 all work as a user sees them), cannot clash with other test daemons or services on the
machine, and deleting the namespace at the end frees whatever might be left. Another namespace wired to
it by a veth pair plays a second machine (``PeerHost``).

Traffic from these helpers only goes to loopback, to berth's bridges and containers, and to
namespaces made here.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import socket
import subprocess
import threading
import uuid

from tests.support.daemon import TEST_DNS, Daemon, started, wait_for
from tests.support.made import Made

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
CLONE_NEWNET = 0x40000000


def uniq(prefix: str = "bt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sh(*cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    r = subprocess.run(list(cmd), capture_output=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.decode(errors='replace')}")
    return r


@contextlib.contextmanager
def entered(path: str):
    """Run the body with this thread in the network namespace at ``path`` (sockets made there stay there)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {path}")
        try:
            yield
        finally:
            if _libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(target)
        os.close(home)


class NetNS:
    """A named network namespace (``ip netns add``) with its loopback up; ``delete`` frees it and its links."""

    def __init__(self, prefix: str = "bt") -> None:
        self.name = uniq(prefix)
        self.path = f"/run/netns/{self.name}"
        sh("ip", "netns", "add", self.name)
        sh("ip", "-n", self.name, "link", "set", "lo", "up")

    def run(self, *cmd: str, check: bool = False, timeout: float = 30) -> subprocess.CompletedProcess:
        """A command in this namespace only (its mount namespace stays the caller's)."""
        return sh("nsenter", f"--net={self.path}", "--", *cmd, check=check, timeout=timeout)

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("ip", "-n", self.name, *args, check=check)

    def links(self, alias: str | None = None) -> dict[str, str]:
        """Link name → kind (veth, bridge, ...), as ``ip -d link`` shows them; only those with ``alias`` if given."""
        import json
        out = json.loads(self.ip("-d", "-j", "link", "show").stdout or b"[]")
        return {li["ifname"]: (li.get("linkinfo") or {}).get("info_kind", "") for li in out
                if alias is None or li.get("ifalias") == alias}

    def nft(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return self.run("nft", *args, check=check)

    def delete(self) -> None:
        sh("ip", "netns", "del", self.name, check=False)


def wire(a: NetNS, a_ip: str, b: NetNS, b_ip: str, prefix: int = 30) -> tuple[str, str]:
    """A veth pair between two namespaces, with an address on each end; (name in a, name in b)."""
    tag = uuid.uuid4().hex[:6]
    ea, eb = f"bta{tag}", f"btb{tag}"
    sh("ip", "link", "add", ea, "netns", a.name, "type", "veth", "peer", "name", eb, "netns", b.name)
    a.ip("addr", "add", f"{a_ip}/{prefix}", "dev", ea)
    b.ip("addr", "add", f"{b_ip}/{prefix}", "dev", eb)
    a.ip("link", "set", ea, "up")
    b.ip("link", "set", eb, "up")
    return ea, eb


class NetDaemon(Daemon):
    """A berthd whose network namespace is ``self.ns`` (its "host"); everything else as ``Daemon``."""

    def __init__(self, *extra_args: str) -> None:
        super().__init__(*extra_args)
        # Alone in its namespace, it keeps the names a user gets: bridge berth0, nft table ip berth.
        if "--bridge" in self.extra_args:
            self.extra_args[self.extra_args.index("--bridge") + 1] = "berth0"
        else:
            self.extra_args += ["--bridge", "berth0"]
        self.bridge = "berth0"
        self.ns = NetNS("bt-host")

    def launcher(self) -> list[str]:
        return ["nsenter", f"--net={self.ns.path}", "--"]

    def cleanup(self) -> None:
        try:
            super().cleanup()
        finally:
            self.ns.delete()


def http_get(ns_path: str, ip: str, port: int, path: str = "/", timeout: float = 3.0) -> tuple[int, bytes] | None:
    """(status, body) of a GET from inside the namespace at ``ns_path``; None when nothing answers."""
    with entered(ns_path):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect((ip, port))
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        return None
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        return int(head.split(b" ", 2)[1]), body
    except (IndexError, ValueError):
        return None


def udp_ask(ns_path: str, ip: str, port: int, payload: bytes, timeout: float = 2.0) -> bytes | None:
    """Send one datagram from the namespace at ``ns_path``; the reply, or None."""
    with entered(ns_path):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(payload, (ip, port))
        return s.recv(65536)
    except OSError:
        return None
    finally:
        s.close()


class UdpServer:
    """A UDP socket bound inside a namespace, served by a thread: ``answer`` says what to send back to each datagram."""

    bufsize = 65536

    def __init__(self, ns_path: str, ip: str, port: int) -> None:
        with entered(ns_path):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((ip, port))
        except OSError:
            self.sock.close()
            raise
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def answer(self, data: bytes, addr: tuple) -> bytes | None:
        """The reply to ``data`` from ``addr``, or None for none."""
        raise NotImplementedError

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(self.bufsize)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self.answer(data, addr)
            if reply is not None:
                self.sock.sendto(reply, addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class UdpEcho(UdpServer):
    """A UDP server bound inside a namespace (e.g. a container's pinned one) that answers ``b"echo:" + data``."""

    def __init__(self, ns_path: str, port: int, ip: str = "0.0.0.0") -> None:
        self.seen: list[tuple[bytes, tuple]] = []
        super().__init__(ns_path, ip, port)

    def answer(self, data: bytes, addr: tuple) -> bytes:
        self.seen.append((data, addr))
        return b"echo:" + data


class FakeUpstream(UdpServer):
    """A DNS server on ``TEST_DNS``:53/udp inside a namespace, answering ``names`` (name → IPv4) and NXDOMAIN else."""

    bufsize = 4096

    def __init__(self, ns_path: str, names: dict[str, str], ip: str = TEST_DNS) -> None:
        __import__("dnslib")  # fail here, not in the thread, when dnslib is missing
        self.names = {k.rstrip(".").lower(): v for k, v in names.items()}
        self.asked: list[str] = []
        super().__init__(ns_path, ip, 53)

    def answer(self, data: bytes, addr: tuple) -> bytes | None:
        from dnslib import QTYPE, RCODE, RR, A, DNSRecord
        try:
            q = DNSRecord.parse(data)
        except Exception:
            return None
        name = str(q.q.qname).rstrip(".").lower()
        self.asked.append(f"{name} {QTYPE[q.q.qtype]}")
        reply = q.reply()
        if name in self.names:
            if q.q.qtype == QTYPE.A:
                reply.add_answer(RR(q.q.qname, QTYPE.A, rdata=A(self.names[name]), ttl=60))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply.pack()


# -- fixtures' building blocks ---------------------------------------------------------------------------------------


def skip_reason() -> str | None:
    """None when network tests can run here, else why not."""
    from tests.support.daemon import can_run_containers
    reason = can_run_containers()
    if reason:
        return reason
    import shutil
    for tool in ("ip", "nsenter", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def net_daemon():
    """A started ``NetDaemon`` with busybox:latest (for a fixture to ``yield from``); skips when it cannot run."""
    import pytest
    reason = skip_reason()
    if reason:
        pytest.skip(reason)

    def ready(d: NetDaemon) -> None:
        d.baseline_sockets = wait_for(lambda: daemon_sockets(d) or None, what="berthd's sockets")
    yield from started(NetDaemon(), ready)


def daemon_sockets(d: Daemon) -> int:
    """How many sockets berthd holds open (its API listener, netlink, DNS listeners, reserved host ports ...)."""
    fd_dir = f"/proc/{d.proc.pid}/fd"
    n = 0
    for fd in os.listdir(fd_dir):
        with contextlib.suppress(OSError):
            n += os.readlink(os.path.join(fd_dir, fd)).startswith("socket:")
    return n


def leftovers(d: NetDaemon) -> dict:
    """What berth made on its host that is still there: veths, bridges besides berth0, pinned namespaces, rules."""
    links = d.ns.links()
    marked = d.ns.links(alias=d.owner)
    nsdir = os.path.join(d.exec_root, "netns")
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(line.split()[4] for line in f if line.split()[4].startswith(nsdir + "/"))
    table = d.ns.nft("list", "table", "ip", "berth").stdout.decode()
    set_line = next((line.strip() for line in table.splitlines() if "elements" in line), "")
    return {
        "veths": sorted(n for n in links if n.startswith("bv")),
        "bridges": sorted(n for n, kind in links.items() if kind == "bridge" and n != "berth0"),
        "marked links": sorted(n for n in marked if n != "berth0"),  # what berthd marks as its own
        "netns files": sorted(os.listdir(nsdir)) if os.path.isdir(nsdir) else [],
        "netns mounts": mounts,
        "dnat rules": [line.strip() for line in table.splitlines() if " dnat to " in line],
        "bridges in rules": set_line,
    }


NOTHING_LEFT = {"veths": [], "bridges": [], "marked links": [], "netns files": [], "netns mounts": [], "dnat rules": [],
                "bridges in rules": 'elements = { "berth0" }'}


def inspect(d: Daemon, ref: str) -> dict:
    """A container's ``/containers/REF/json``."""
    status, info = d.api("GET", f"/containers/{ref}/json")
    assert status == 200, (status, info)
    return info


class NetMade(Made):
    """Containers (by name, through the berth CLI) and networks a test made; removed at teardown."""

    def __init__(self, daemon) -> None:
        super().__init__(daemon)
        self.networks: list[str] = []

    def run(self, *args: str) -> str:
        """``berth run -d ARGS``; the container's full ID."""
        r = self.daemon.cli("run", "-d", *args, check=False)
        name = _flag_value(args, "--name")
        self.containers.append(name or r.stdout.decode().strip())
        assert r.returncode == 0, (r.stderr.decode(), self.daemon.tail_log())
        return r.stdout.decode().strip()

    def network(self, name: str, *opts: str) -> str:
        """``berth network create OPTS NAME``; its full ID."""
        self.networks.append(name)
        return self.daemon.cli("network", "create", *opts, name).stdout.decode().strip()

    def cleanup(self) -> None:
        super().cleanup()
        for n in reversed(self.networks):
            self.daemon.api("DELETE", f"/networks/{n}")


def made_with(d: NetDaemon, build):
    """``build(made)``, for a ``NetMade`` of its own that is cleaned up afterwards (for a fixture to ``yield from``):
    what a module-scoped fixture sets up once for many tests."""
    m = NetMade(d)
    try:
        yield build(m)
    finally:
        m.cleanup()


def _flag_value(args: tuple[str, ...], flag: str) -> str:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return ""


def wait_http(ns_path: str, ip: str, port: int, path: str, want: bytes, timeout: float = 10) -> None:
    """Wait until GET http://ip:port/path from the namespace answers 200 with ``want``."""
    wait_for(lambda: http_get(ns_path, ip, port, path, timeout=1) == (200, want), timeout,
             what=f"http://{ip}:{port}{path} to answer {want!r}")


class PeerHost:
    """Another machine on the daemon host's network: a namespace wired to ``d.ns`` by a veth pair.

    The daemon's end has ``host_ip`` (one of the host's "other addresses"), the peer's end ``ip``;
    both come from 198.18.0.0/15, the benchmarking range, and exist only in these two namespaces.
    """

    def __init__(self, d: NetDaemon, host_ip: str = "198.18.0.1", ip: str = "198.18.0.2") -> None:
        self.ns = NetNS("bt-peer")
        self.host_ip, self.ip = host_ip, ip
        try:
            wire(d.ns, host_ip, self.ns, ip)
        except BaseException:
            self.ns.delete()
            raise

    def wget(self, url: str, timeout: float = 10) -> subprocess.CompletedProcess:
        """busybox wget from the peer (its veth end goes with the namespace)."""
        return self.ns.run("timeout", str(int(timeout)), "busybox", "wget", "-q", "-O", "-", url)

    def delete(self) -> None:
        self.ns.delete()


def peer_host(d: NetDaemon):
    """A ``PeerHost`` of ``d``'s, deleted afterwards (for a fixture to ``yield from``)."""
    p = PeerHost(d)
    yield p
    p.delete()


def settled(d: NetDaemon, veths: int, timeout: float = 3) -> dict:
    """``leftovers`` once exactly ``veths`` veths are left (a namespace's veths go with it, asynchronously)."""
    last: dict = {}

    def check():
        last.update(leftovers(d))
        return dict(last) if len(last["veths"]) == veths else None
    try:
        return wait_for(check, timeout, what=f"{veths} veths")
    except AssertionError:
        raise AssertionError(f"after {timeout}s still: {last}") from None


def assert_nothing_left(d: NetDaemon, timeout: float = 3) -> None:
    assert settled(d, 0, timeout) == NOTHING_LEFT
