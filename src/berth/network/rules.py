"""berth's packet rules: one nftables table (``ip berth``, or ``ip berth_<bridge>`` for a daemon with
its own ``--bridge``), rendered whole from state and swapped atomically.

Nothing outside that table is ever touched. Published ports are kernel DNAT (no userspace proxy);
outbound traffic from non-internal bridges is masqueraded; different bridges cannot reach each
other, except through a published port; internal bridges reach nothing beyond themselves.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass

from berth.errors import SystemError_



@dataclass(frozen=True)
class BridgeRule:
    bridge: str
    subnet: str
    internal: bool = False


@dataclass(frozen=True)
class PortRule:
    proto: str  # tcp | udp | sctp
    host_ip: str  # "" or 0.0.0.0: every local address
    host_port: int
    container_ip: str
    container_port: int


def render(bridges: list[BridgeRule], ports: list[PortRule], table: str = "berth") -> str:
    """The table's full text, as ``nft -f`` reads it (replacing the previous one in one transaction)."""
    names = ", ".join(f'"{b.bridge}"' for b in bridges)
    dnat, post, fwd = [], [], []
    for p in sorted(ports, key=lambda p: (p.proto, p.host_port, p.host_ip)):
        match = "" if p.host_ip in ("", "0.0.0.0") else f"ip daddr {p.host_ip} "
        dnat.append(f"{match}{p.proto} dport {p.host_port} dnat to {p.container_ip}:{p.container_port}")
    if bridges:
        post.append("ip saddr 127.0.0.0/8 oifname @bridges masquerade")
    for b in bridges:
        q = f'"{b.bridge}"'
        post.append(f"oifname {q} ip saddr {b.subnet} ct status dnat masquerade")
        if b.internal:
            fwd.append(f"iifname {q} oifname != {q} drop")
            fwd.append(f"oifname {q} iifname != {q} drop")
        else:
            post.append(f"ip saddr {b.subnet} oifname != {q} masquerade")
            fwd.append(f"iifname {q} oifname @bridges oifname != {q} drop")
    lines = [
        f"table ip {table}", f"delete table ip {table}", f"table ip {table} {{",
        "  set bridges { type ifname;" + (f" elements = {{ {names} }};" if names else "") + " }",
        "  chain prerouting { type nat hook prerouting priority dstnat; policy accept;"
        " fib daddr type local jump ports; }",
        "  chain output { type nat hook output priority -100; policy accept; fib daddr type local jump ports; }",
        "  chain ports {", *(f"    {r};" for r in dnat), "  }",
        "  chain postrouting { type nat hook postrouting priority srcnat; policy accept;",
        *(f"    {r};" for r in post), "  }",
        "  chain forward { type filter hook forward priority -1; policy accept;",
        "    ct status dnat accept;", "    ct state established,related accept;",
        *(f"    {r};" for r in fwd), "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


class Rules:
    """Applies rendered tables with the ``nft`` binary; skips the call when nothing changed."""

    def __init__(self, table: str = "berth", nft: str = "nft", enabled: bool = True) -> None:
        self.table = table
        self.nft = nft
        self.enabled = enabled
        self._current = ""

    def apply(self, bridges: list[BridgeRule], ports: list[PortRule]) -> None:
        if not self.enabled:
            return
        text = render(bridges, ports, self.table)
        if text == self._current:
            return
        self._run(text)
        self._current = text

    def remove(self) -> None:
        """Drop berth's table (nothing else)."""
        if self.enabled:
            self._run(f"table ip {self.table}\ndelete table ip {self.table}\n")
            self._current = ""

    def _run(self, text: str) -> None:
        try:
            r = subprocess.run([self.nft, "-f", "-"], input=text.encode(), capture_output=True, timeout=30)
        except FileNotFoundError:
            raise SystemError_(f"packet rules: {self.nft} not found (install nftables)") from None
        if r.returncode != 0:
            raise SystemError_(f"packet rules: nft: {r.stderr.decode(errors='replace').strip()}")
