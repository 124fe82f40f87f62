"""What a process inside a berth container sees: its own hostname, PID, network and mount namespaces, Docker's
default capabilities, masked and read-only kernel paths, its user, /etc files, and a root filesystem whose
changes stay in the container.

Needs root, runc and busybox (the ``daemon`` fixture skips otherwise).
"""
from __future__ import annotations

import os
import struct
import uuid

import pytest
from tests.support.made import Made as BaseMade

DOCKER_DEFAULT_CAPS = 0x00000000A80425FB


def uniq(prefix: str = "bt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def demux(data: bytes) -> tuple[bytes, bytes]:
    out, err, i = [], [], 0
    while i < len(data):
        stream = data[i]
        (size,) = struct.unpack(">I", data[i + 4:i + 8])
        (out if stream == 1 else err).append(data[i + 8:i + 8 + size])
        i += 8 + size
    return b"".join(out), b"".join(err)


class Made(BaseMade):
    def __init__(self, daemon) -> None:
        super().__init__(daemon)
        self.ids = self.containers

    def run(self, cmd: list[str], **body) -> tuple[str, int, bytes, bytes]:
        """(id, exit code, stdout, stderr) of a container run to its end."""
        body.setdefault("Image", "busybox:latest")
        status, r = self.daemon.api("POST", "/containers/create", {**body, "Cmd": cmd})
        assert status == 201, (status, r)
        cid = r["Id"]
        self.ids.append(cid)
        status, r = self.daemon.api("POST", f"/containers/{cid}/start")
        assert status == 204, (status, r, self.daemon.tail_log())
        status, w = self.daemon.api("POST", f"/containers/{cid}/wait")
        assert status == 200, w
        status, raw = self.daemon.api("GET", f"/containers/{cid}/logs?stdout=1&stderr=1", raw=True)
        assert status == 200
        out, err = demux(raw)
        return cid, w["StatusCode"], out, err

    def sh(self, script: str, **body) -> tuple[str, int, bytes, bytes]:
        return self.run(["sh", "-c", script], **body)


def interfaces(proc_net_dev: str) -> set[str]:
    return {line.split(":", 1)[0].strip() for line in proc_net_dev.splitlines()[2:] if ":" in line}


def mount_points(mounts: str) -> set[str]:
    return {line.split()[1] for line in mounts.splitlines() if len(line.split()) > 2}


def test_hostname_is_short_id(daemon, made):
    cid, code, out, err = made.sh("hostname; cat /etc/hostname; echo $HOSTNAME")
    assert code == 0, err
    assert out.decode().split() == [cid[:12]] * 3


def test_hostname_from_config(daemon, made):
    _, code, out, _ = made.run(["hostname"], Hostname="box-one")
    assert code == 0 and out == b"box-one\n"


def test_pid_1_is_the_command(daemon, made):
    _, code, out, err = made.run(["cat", "/proc/1/cmdline"])
    assert code == 0, err
    assert out == b"cat\x00/proc/1/cmdline\x00"
    _, code, out, err = made.run(["ps", "-o", "pid,comm"])
    assert code == 0, err
    rows = [line.split() for line in out.decode().splitlines()[1:]]
    assert rows == [["1", "ps"]], out


def test_only_loopback_with_network_none(daemon, made):
    cid, code, out, err = made.run(["cat", "/proc/net/dev"], HostConfig={"NetworkMode": "none"})
    assert code == 0, err
    assert interfaces(out.decode()) == {"lo"}
    info = daemon.api("GET", f"/containers/{cid}/json")[1]
    assert info["HostConfig"]["NetworkMode"] == "none"


def test_default_network_is_the_bridge(daemon, made):
    cid, code, out, err = made.run(["cat", "/proc/net/dev"])
    assert code == 0, err
    assert interfaces(out.decode()) == {"lo", "eth0"}
    info = daemon.api("GET", f"/containers/{cid}/json")[1]
    assert info["HostConfig"]["NetworkMode"] == "bridge"


def test_host_network_sees_host_interfaces(daemon, made):
    with open("/proc/net/dev") as f:
        before = interfaces(f.read())
    cid, code, out, err = made.run(["cat", "/proc/net/dev"], HostConfig={"NetworkMode": "host"})
    assert code == 0, err
    with open("/proc/net/dev") as f:
        after = interfaces(f.read())
    seen = interfaces(out.decode())
    # Other tests' veths may come and go meanwhile: what stayed throughout must be seen, nothing unknown.
    assert before & after <= seen <= before | after | {n for n in seen if n.startswith(("bv", "veth"))}
    assert len(seen) > 1
    info = daemon.api("GET", f"/containers/{cid}/json")[1]
    assert info["HostConfig"]["NetworkMode"] == "host"


def test_default_capabilities_match_docker(daemon, made):
    _, code, out, err = made.run(["grep", "-E", "^Cap(Eff|Prm|Bnd|Inh|Amb):", "/proc/self/status"])
    assert code == 0, err
    caps = {k.rstrip(":"): int(v, 16) for k, v in (line.split() for line in out.decode().splitlines())}
    assert caps["CapEff"] == DOCKER_DEFAULT_CAPS, hex(caps["CapEff"])
    assert caps["CapPrm"] == DOCKER_DEFAULT_CAPS
    assert caps["CapBnd"] == DOCKER_DEFAULT_CAPS
    assert caps["CapInh"] == 0 and caps["CapAmb"] == 0


def test_capability_denied_operation_fails(daemon, made):
    # CAP_SYS_ADMIN is not in the default set: mounting must fail
    _, code, out, err = made.sh("mkdir -p /mnt/t && mount -t tmpfs none /mnt/t; echo rc=$?")
    assert b"rc=0" not in out, (out, err)


MASKED = ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats"]


def test_masked_paths(daemon, made):
    """Docker's masked /proc files read as empty (or not at all) inside; each one the host kernel has."""
    present = [p for p in MASKED if os.path.exists(p)]
    if not present:
        pytest.skip("the host kernel has none of the masked /proc files")
    script = "; ".join(f"echo \"{p} $(cat {p} 2>/dev/null | wc -c)\"" for p in present)
    _, code, out, err = made.sh(script + "; cat /proc/mounts")
    assert code == 0, err
    lines = out.decode().splitlines()
    sizes = dict(line.split() for line in lines[:len(present)])
    assert sizes == {p: "0" for p in present}, sizes
    covered = mount_points("\n".join(lines[len(present):]))
    assert set(present) <= covered, f"not masked by a mount: {set(present) - covered}"
    # /sys/firmware is hidden behind an empty, read-only directory
    _, code, out, _ = made.sh("ls -A /sys/firmware 2>/dev/null | wc -l")
    assert out.strip() == b"0"


def test_proc_sys_is_read_only(daemon, made):
    _, code, out, err = made.sh("echo foo > /proc/sys/kernel/hostname; echo rc=$?; "
                                "echo 1 > /proc/sys/vm/drop_caches; echo rc=$?; "
                                "grep -E ' /proc/sys ' /proc/mounts")
    text = out.decode()
    assert text.splitlines()[:2] == ["rc=1", "rc=1"], (out, err)
    assert b"Read-only file system" in err, err
    assert " ro," in text.splitlines()[2] or " ro " in text.splitlines()[2], text
    _, _, out, _ = made.run(["hostname"])
    assert out.strip() != b"foo"


def test_sys_is_read_only(daemon, made):
    _, code, out, err = made.sh("mkdir /sys/bt-test; echo rc=$?; touch /sys/kernel/bt-test; echo rc=$?; "
                                "grep -E '^sysfs /sys ' /proc/mounts")
    lines = out.decode().splitlines()
    assert lines[:2] == ["rc=1", "rc=1"], (out, err)
    assert lines[2].split()[3].split(",")[0] == "ro", lines[2]


ALLOWED_MOUNTS = {"/", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}


def _container_mount(point: str) -> bool:
    return point in ALLOWED_MOUNTS or point.split("/")[1] in ("proc", "dev", "sys")


def test_mount_namespace_is_private(daemon, made):
    with open("/proc/self/mounts") as f:
        host = f.read()
    cid, code, out, err = made.run(["cat", "/proc/mounts"])
    assert code == 0, err
    inside = out.decode()
    assert inside != host
    root = [line.split() for line in inside.splitlines() if line.split()[1] == "/"]
    assert root and root[0][2] == "overlay", inside
    assert {"/proc", "/dev", "/sys", "/etc/hosts", "/etc/resolv.conf"} <= mount_points(inside), inside
    strangers = {p for p in mount_points(inside) if not _container_mount(p)}
    assert not strangers, f"host mounts visible in the container: {strangers}"
    assert daemon.dir not in " ".join(line.split()[1] for line in inside.splitlines())


def test_user_from_config(daemon, made):
    _, code, out, err = made.sh("id -u; id -g; touch /root/x; echo rc=$?", User="65534")
    assert code == 0, err
    lines = out.decode().split()
    assert lines[:2] == ["65534", "65534"]
    assert lines[2] != "rc=0", "nobody must not write into root's home"
    _, code, out, err = made.run(["id", "-u"], User="nobody")
    assert out == b"65534\n", (out, err)
    _, code, out, err = made.run(["id"], User="1234:4321")
    assert code == 0 and out.startswith(b"uid=1234 gid=4321"), out
    _, code, out, _ = made.run(["id", "-u"])
    assert out == b"0\n"


def test_etc_hosts_and_resolv_conf(daemon, made):
    _, code, out, err = made.sh("cat /etc/hosts; echo ---; test -f /etc/resolv.conf && echo resolv-ok")
    assert code == 0, err
    hosts, _, rest = out.decode().partition("---")
    entries = [line.split() for line in hosts.splitlines() if line.strip() and not line.startswith("#")]
    assert ["127.0.0.1", "localhost"] in [e[:2] for e in entries], hosts
    assert any(e[0] == "::1" and "localhost" in e[1:] for e in entries), hosts
    assert "resolv-ok" in rest


def test_rootfs_changes_stay_in_the_container(daemon, made):
    marker = uniq("marker")
    cid, code, out, err = made.sh(f"echo hi > /{marker}; rm /bin/ls; echo changed > /etc/passwd; "
                                  f"cat /{marker}; ls /bin/ls 2>&1 || echo gone")
    assert code == 0, err
    assert out.decode().splitlines()[0] == "hi" and "gone" in out.decode()
    _, code, out, err = made.sh(f"test -e /{marker} && echo leaked; test -e /bin/ls && echo ls-ok; "
                                "head -c 5 /etc/passwd")
    assert code == 0, err
    assert out.decode().split() == ["ls-ok", "root:"], out
    # the image's layer on disk is untouched
    snapshots = os.path.join(daemon.data_root, "snapshots")
    for layer in os.listdir(snapshots):
        assert not os.path.lexists(os.path.join(snapshots, layer, marker))
    # the first container still has its own change
    upper = daemon.api("GET", f"/containers/{cid}/json")[1]["GraphDriver"]["Data"]["UpperDir"]
    with open(os.path.join(upper, marker)) as f:
        assert f.read() == "hi\n"


def test_read_only_rootfs(daemon, made):
    _, code, out, err = made.sh("touch /x; echo rc=$?", HostConfig={"ReadonlyRootfs": True})
    assert out == b"rc=1\n", (out, err)
