"""Controlling running containers: pause, unpause, rename, update, port."""
from __future__ import annotations

from berth.cli.common import parser
from berth.client.transport import Transport, path_quote


def pause(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli.commands.containers import _each
    p = parser(name, "CONTAINER [CONTAINER...]")
    p.add_argument("containers", nargs="+")
    a = p.parse_args(argv)
    verb = "unpause" if name.endswith("unpause") else "pause"
    return min(1, len(_each(api, a.containers, lambda c: api.request("POST", f"/containers/{path_quote(c)}/{verb}").close())))


unpause = pause


def rename(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "CONTAINER NEW_NAME")
    p.add_argument("container")
    p.add_argument("new_name")
    a = p.parse_args(argv)
    api.request("POST", f"/containers/{path_quote(a.container)}/rename", {"name": a.new_name}).close()
    return 0


def update(api: Transport, name: str, argv: list[str]) -> int:
    from fractions import Fraction

    from berth.cli.commands.containers import _each
    from berth.cli.common import Usage
    from berth.types.units import parse_size
    p = parser(name, "[OPTIONS] CONTAINER [CONTAINER...]")
    p.add_argument("-m", "--memory")
    p.add_argument("--memory-swap")
    p.add_argument("--memory-reservation")
    p.add_argument("--cpus")
    p.add_argument("-c", "--cpu-shares", type=int)
    p.add_argument("--cpu-period", type=int)
    p.add_argument("--cpu-quota", type=int)
    p.add_argument("--cpuset-cpus")
    p.add_argument("--cpuset-mems")
    p.add_argument("--pids-limit", type=int)
    p.add_argument("--restart")
    p.add_argument("containers", nargs="+")
    a = p.parse_args(argv)
    body: dict = {}
    try:
        for flag, key in (("memory", "Memory"), ("memory_reservation", "MemoryReservation")):
            if getattr(a, flag):
                body[key] = parse_size(getattr(a, flag))
        if a.memory_swap:
            body["MemorySwap"] = -1 if a.memory_swap == "-1" else parse_size(a.memory_swap)
        if a.cpus:
            body["NanoCpus"] = int(Fraction(a.cpus) * 10**9)
    except ValueError as e:
        raise Usage(f"berth {name}: {e}") from None
    for flag, key in (("cpu_shares", "CpuShares"), ("cpu_period", "CpuPeriod"), ("cpu_quota", "CpuQuota"),
                      ("cpuset_cpus", "CpusetCpus"), ("cpuset_mems", "CpusetMems"), ("pids_limit", "PidsLimit")):
        if getattr(a, flag) is not None:
            body[key] = getattr(a, flag)
    if a.restart:
        policy, _, retries = a.restart.partition(":")
        body["RestartPolicy"] = {"Name": policy, "MaximumRetryCount": int(retries or 0)}
    return min(1, len(_each(api, a.containers, lambda c: api.request("POST", f"/containers/{path_quote(c)}/update",
                                                           None, body).close())))


def port(api: Transport, name: str, argv: list[str]) -> int:
    """``docker port``: lines sorted naturally, addresses as net.JoinHostPort writes them."""
    import sys

    from berth.types.ports import join_host_port, natural_key
    p = parser(name, "CONTAINER [PRIVATE_PORT[/PROTO]]")
    p.add_argument("container")
    p.add_argument("port", nargs="?")
    a = p.parse_args(argv)
    info = api.request("GET", f"/containers/{path_quote(a.container)}/json").json()
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if a.port:
        number, _, proto = a.port.partition("/")
        if not number.isascii() or not number.isdigit() or int(number) > 65535:
            why = "value out of range" if number.isascii() and number.isdigit() else "invalid syntax"
            print(f'Error: invalid port ({number}): strconv.ParseUint: parsing "{number}": {why}', file=sys.stderr)
            return 1
        key = f"{number}/{proto or 'tcp'}"
        bindings = ports.get(key)
        if not bindings:
            print(f"Error: No public port '{a.port}' published for {a.container}", file=sys.stderr)  # as typed
            return 1
        out = [join_host_port(b.get("HostIp") or "", b.get("HostPort") or "") for b in bindings]
    else:
        out = [f"{key} -> {join_host_port(b.get('HostIp') or '', b.get('HostPort') or '')}"
               for key, bindings in ports.items() for b in bindings or []]
    for line in sorted(out, key=natural_key):
        print(line)
    return 0
