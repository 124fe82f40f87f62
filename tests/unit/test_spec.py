"""Container -> OCI runtime spec (berth.runtime.spec), checked against Docker's defaults."""
from __future__ import annotations

import pytest

from berth.errors import InvalidArgument
from berth.runtime.spec import (
    ALL_CAPS, DEFAULT_CAPS, HostFacts, ProcessUser, build_spec, capabilities, parse_user,
)
from berth.types.container import Container, ContainerSpec, ContainerState

CID = "4c01db0b339c" + "a" * 52
ROOTFS = "/var/lib/berth/containers/x/rootfs"
FILES = {"/etc/hostname": "/d/hostname", "/etc/hosts": "/d/hosts", "/etc/resolv.conf": "/d/resolv.conf"}

# Docker's default capability set (moby oci/caps DefaultCapabilities).
DOCKER_DEFAULT_CAPS = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}
# Docker's fixed masked paths (moby daemon/pkg/oci/defaults.go); Docker also masks each
# existing /sys/devices/system/cpu/cpuN/thermal_throttle, which depends on the host.
DOCKER_MASKED = {
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/sched_debug", "/proc/scsi", "/proc/timer_list", "/proc/timer_stats",
    "/sys/devices/virtual/powercap", "/sys/firmware",
}
DOCKER_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

FULL = HostFacts(frozenset(ALL_CAPS), True)
ROOT = ProcessUser(0, 0)


def make(**kw) -> Container:
    kw.setdefault("cmd", ["sh"])
    kw.setdefault("hostname", CID[:12])
    spec = ContainerSpec(image="busybox", **kw)
    return Container(CID, "web", "sha256:" + "b" * 64, "2024-01-01T00:00:00Z", spec, ContainerState())


def build(c: Container | None = None, user: ProcessUser = ROOT, files=None, facts: HostFacts = FULL,
          netns: str | None = None) -> dict:
    return build_spec(c or make(), ROOTFS, user, FILES if files is None else files, facts, netns)


def ns_types(spec: dict) -> list[str]:
    return [n["type"] for n in spec["linux"]["namespaces"]]


def mount(spec: dict, dest: str) -> dict:
    found = [m for m in spec["mounts"] if m["destination"] == dest]
    assert len(found) == 1, f"{dest}: {found}"
    return found[0]


# -- namespaces -----------------------------------------------------------------------------

def test_private_namespaces_without_netns_path():
    spec = build(netns=None)
    assert sorted(ns_types(spec)) == ["ipc", "mount", "network", "pid", "uts"]
    net = [n for n in spec["linux"]["namespaces"] if n["type"] == "network"][0]
    assert "path" not in net


def test_network_namespace_path_when_given():
    spec = build(netns="/run/berth/netns/abc")
    net = [n for n in spec["linux"]["namespaces"] if n["type"] == "network"]
    assert net == [{"type": "network", "path": "/run/berth/netns/abc"}]


def test_host_network_has_no_network_namespace():
    spec = build(make(network_mode="host"), netns="host")
    assert "network" not in ns_types(spec)
    assert {"pid", "ipc", "uts", "mount"} <= set(ns_types(spec))


def test_namespaces_not_duplicated():
    for netns in (None, "host", "/x"):
        t = ns_types(build(netns=netns))
        assert len(t) == len(set(t))


# -- capabilities -------------------------------------------------------------------------------

def test_default_caps_constant_is_dockers():
    assert set(DEFAULT_CAPS) == DOCKER_DEFAULT_CAPS and len(DEFAULT_CAPS) == 14


def test_default_capabilities():
    caps = build()["process"]["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        assert set(caps[kind]) == DOCKER_DEFAULT_CAPS
        assert len(caps[kind]) == 14


def test_no_inheritable_or_ambient_capabilities():
    # Docker (CVE-2022-24769) leaves the inheritable set empty.
    caps = build()["process"]["capabilities"]
    assert not caps.get("inheritable")
    assert not caps.get("ambient")


def test_default_capabilities_filtered_by_bounding_set():
    facts = HostFacts(frozenset(DOCKER_DEFAULT_CAPS - {"CAP_MKNOD", "CAP_AUDIT_WRITE"}), True)
    caps = build(facts=facts)["process"]["capabilities"]
    assert set(caps["bounding"]) == DOCKER_DEFAULT_CAPS - {"CAP_MKNOD", "CAP_AUDIT_WRITE"}


def test_privileged_gets_every_capability_of_the_bounding_set():
    assert set(build(make(privileged=True))["process"]["capabilities"]["bounding"]) == set(ALL_CAPS)
    small = frozenset(["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_BPF", "CAP_PERFMON"])
    caps = build(make(privileged=True), facts=HostFacts(small, False))["process"]["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        assert set(caps[kind]) == small


def test_privileged_host_without_newer_caps():
    # An older kernel's bounding set (no CAP_PERFMON/BPF/CHECKPOINT_RESTORE) must not be exceeded.
    older = frozenset(ALL_CAPS) - {"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"}
    caps = capabilities(make(privileged=True), HostFacts(older, True))
    assert set(caps) == older


def test_cap_add_and_drop_normalised():
    c = make(cap_add=["net_admin", "CAP_SYS_TIME"], cap_drop=["chown", "CAP_KILL"])
    caps = set(capabilities(c, FULL))
    assert caps == (DOCKER_DEFAULT_CAPS - {"CAP_CHOWN", "CAP_KILL"}) | {"CAP_NET_ADMIN", "CAP_SYS_TIME"}


def test_cap_add_all_except_dropped():
    caps = set(capabilities(make(cap_add=["ALL"], cap_drop=["SYS_ADMIN"]), FULL))
    assert caps == set(ALL_CAPS) - {"CAP_SYS_ADMIN"}


def test_cap_drop_all():
    assert capabilities(make(cap_drop=["ALL"]), FULL) == []


def test_cap_drop_all_then_add():
    # moby TweakCapabilities: with ALL in CapDrop, the result is exactly CapAdd.
    caps = capabilities(make(cap_drop=["ALL"], cap_add=["NET_BIND_SERVICE", "chown"]), FULL)
    assert set(caps) == {"CAP_NET_BIND_SERVICE", "CAP_CHOWN"}


def test_cap_add_filtered_by_bounding_set():
    facts = HostFacts(frozenset(DOCKER_DEFAULT_CAPS), True)
    assert "CAP_SYS_ADMIN" not in capabilities(make(cap_add=["SYS_ADMIN"]), facts)


def test_unknown_capability_rejected():
    # Docker: 'unknown capability: "CAP_BOGUS"' (InvalidParameter, HTTP 400).
    with pytest.raises(InvalidArgument) as e:
        build(make(cap_add=["BOGUS"]))
    assert "unknown capability" in e.value.message


# -- masked and read-only paths, mounts ------------------------------------------------------------

def test_masked_paths_as_docker():
    linux = build()["linux"]
    assert DOCKER_MASKED <= set(linux["maskedPaths"])
    extra = set(linux["maskedPaths"]) - DOCKER_MASKED
    assert all(p.startswith("/sys/devices/system/cpu/cpu") and p.endswith("/thermal_throttle") for p in extra)


def test_readonly_paths_as_docker():
    assert sorted(build()["linux"]["readonlyPaths"]) == sorted(DOCKER_READONLY)


def test_privileged_has_no_masked_or_readonly_paths():
    linux = build(make(privileged=True))["linux"]
    assert not linux.get("maskedPaths")
    assert not linux.get("readonlyPaths")


def test_standard_mounts():
    spec = build()
    assert mount(spec, "/proc")["type"] == "proc"
    assert mount(spec, "/dev")["type"] == "tmpfs"
    assert mount(spec, "/dev/pts")["type"] == "devpts"
    assert mount(spec, "/dev/shm")["type"] == "tmpfs"
    assert mount(spec, "/dev/mqueue")["type"] == "mqueue"
    sysfs = mount(spec, "/sys")
    assert "ro" in sysfs["options"]
    assert "ro" in mount(spec, "/sys/fs/cgroup")["options"]


def test_dev_shm_is_64m_like_docker():
    opts = mount(build(), "/dev/shm")["options"]
    assert "size=67108864" in opts or "size=65536k" in opts


def test_privileged_sysfs_is_writable():
    spec = build(make(privileged=True))
    assert "ro" not in mount(spec, "/sys")["options"]
    assert "ro" not in mount(spec, "/sys/fs/cgroup")["options"]


def test_etc_files_bind_mounted():
    spec = build()
    for dest, src in FILES.items():
        m = mount(spec, dest)
        assert m["type"] == "bind"
        assert m["source"] == src
        assert "rbind" in m["options"] or "bind" in m["options"]


def test_no_etc_files_no_binds():
    spec = build(files={})
    assert not [m for m in spec["mounts"] if m["destination"].startswith("/etc/")]


def test_mount_destinations_unique():
    for c in (make(), make(privileged=True)):
        for netns in (None, "host"):
            dests = [m["destination"] for m in build(c, netns=netns)["mounts"]]
            assert len(dests) == len(set(dests))


# -- root, process -------------------------------------------------------------------------------

def test_root_path_and_readonly_default():
    assert build()["root"] == {"path": ROOTFS, "readonly": False}


def test_readonly_rootfs():
    assert build(make(readonly_rootfs=True))["root"]["readonly"] is True


def test_process_args_entrypoint_then_cmd():
    spec = build(make(entrypoint=["/docker-entrypoint.sh", "-x"], cmd=["nginx", "-g", "daemon off;"]))
    assert spec["process"]["args"] == ["/docker-entrypoint.sh", "-x", "nginx", "-g", "daemon off;"]


def test_process_args_cmd_only_and_entrypoint_only():
    assert build(make(cmd=["echo", "hi"]))["process"]["args"] == ["echo", "hi"]
    assert build(make(entrypoint=["top"], cmd=None))["process"]["args"] == ["top"]


@pytest.mark.parametrize("kw", [
    {"cmd": None},
    {"cmd": []},
    {"cmd": None, "entrypoint": []},
])
def test_empty_argv_is_invalid(kw):
    with pytest.raises(InvalidArgument):
        build(make(**kw))


def test_cwd_defaults_to_root():
    assert build()["process"]["cwd"] == "/"
    assert build(make(working_dir="/app"))["process"]["cwd"] == "/app"


def test_env_gets_default_path_and_hostname():
    env = build(make(env=["A=1"], hostname="box"))["process"]["env"]
    assert DEFAULT_PATH in env
    assert "HOSTNAME=box" in env
    assert "A=1" in env
    assert len(env) == 3


def test_env_path_from_container_wins():
    env = build(make(env=["PATH=/opt/bin"], hostname="box"))["process"]["env"]
    assert [e for e in env if e.startswith("PATH=")] == ["PATH=/opt/bin"]
    assert "HOSTNAME=box" in env


def test_env_hostname_from_container_wins():
    env = build(make(env=["HOSTNAME=mine"], hostname="box"))["process"]["env"]
    assert [e for e in env if e.startswith("HOSTNAME=")] == ["HOSTNAME=mine"]


def test_env_term_xterm_with_tty():
    # Docker's CreateDaemonEnvironment adds TERM=xterm when the container has a TTY.
    env = build(make(tty=True))["process"]["env"]
    assert "TERM=xterm" in env
    assert "TERM=xterm" not in build(make(tty=False))["process"]["env"]


def test_env_term_from_container_wins_with_tty():
    env = build(make(tty=True, env=["TERM=dumb"]))["process"]["env"]
    assert [e for e in env if e.startswith("TERM=")] == ["TERM=dumb"]


def test_terminal_follows_tty():
    assert build(make(tty=True))["process"]["terminal"] is True
    assert build(make(tty=False))["process"]["terminal"] is False


def test_hostname():
    assert build(make(hostname="myhost"))["hostname"] == "myhost"


def test_no_rlimits_at_all():
    for c in (make(), make(privileged=True), make(tty=True)):
        for netns in (None, "host"):
            spec = build(c, netns=netns)
            assert "rlimits" not in spec["process"]
            assert "rlimits" not in spec.get("linux", {})


def test_user_in_spec():
    spec = build(user=ProcessUser(1000, 1001, (10, 20)))
    u = spec["process"]["user"]
    assert (u["uid"], u["gid"]) == (1000, 1001)
    assert {10, 20} <= set(u["additionalGids"])


def test_primary_gid_in_additional_gids():
    # Docker (since the CVE-2023-25173 fixes) always lists the primary GID in additionalGids:
    # `docker run --user 1000:1000 busybox id` prints "groups=1000".
    u = build(user=ProcessUser(1000, 1000))["process"]["user"]
    assert u.get("additionalGids", [])[:1] == [1000]


def test_devices_default_deny():
    devs = build()["linux"]["resources"]["devices"]
    assert devs[0] == {"allow": False, "access": "rwm"}
    allowed = {(d.get("type"), d.get("major"), d.get("minor")) for d in devs if d["allow"]}
    for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2)):
        assert ("c", major, minor) in allowed


def test_privileged_devices_all_allowed():
    devs = build(make(privileged=True))["linux"]["resources"]["devices"]
    assert any(d["allow"] and "type" not in d and "major" not in d for d in devs)


def test_spec_is_json_serialisable():
    import json
    json.dumps(build(make(privileged=True, tty=True), netns="host"))


# -- parse_user ---------------------------------------------------------------------------------

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
app:x:1000:1000:App:/home/app:/bin/sh
web:x:1001:1001::/home/web:/bin/sh
"""
GROUP = """\
root:x:0:
daemon:x:1:
wheel:x:10:root
audio:x:29:app,web
video:x:44:app
nogroup:x:65534:
app:x:1000:
web:x:1001:
staff:x:50:
"""


def test_user_empty_is_root_with_its_groups():
    u = parse_user("", PASSWD, GROUP)
    assert (u.uid, u.gid) == (0, 0)
    assert 10 in u.additional_gids


def test_user_root():
    u = parse_user("root", PASSWD, GROUP)
    assert (u.uid, u.gid) == (0, 0)
    assert 10 in u.additional_gids


def test_user_numeric_in_passwd_takes_its_gid():
    u = parse_user("65534", PASSWD, GROUP)
    assert (u.uid, u.gid) == (65534, 65534)


def test_user_name():
    u = parse_user("nobody", PASSWD, GROUP)
    assert (u.uid, u.gid) == (65534, 65534)


def test_user_numeric_unknown_gets_gid_0():
    u = parse_user("4242", PASSWD, GROUP)
    assert (u.uid, u.gid) == (4242, 0)


def test_user_and_group_numeric():
    u = parse_user("1000:1000", PASSWD, GROUP)
    assert (u.uid, u.gid) == (1000, 1000)


def test_user_and_group_numeric_unknown():
    u = parse_user("5000:6000", PASSWD, GROUP)
    assert (u.uid, u.gid) == (5000, 6000)


def test_user_and_group_names():
    u = parse_user("nobody:nogroup", PASSWD, GROUP)
    assert (u.uid, u.gid) == (65534, 65534)


def test_user_name_with_other_group():
    u = parse_user("app:staff", PASSWD, GROUP)
    assert (u.uid, u.gid) == (1000, 50)


def test_explicit_group_means_no_supplementary_groups():
    # moby/sys/user: "Supplementary group ids only make sense if in the implicit form."
    u = parse_user("app:staff", PASSWD, GROUP)
    assert not (set(u.additional_gids) & {29, 44})


def test_supplementary_groups_from_membership():
    u = parse_user("app", PASSWD, GROUP)
    assert (u.uid, u.gid) == (1000, 1000)
    assert {29, 44} <= set(u.additional_gids)
    assert 10 not in u.additional_gids and 50 not in u.additional_gids


def test_supplementary_groups_for_numeric_user_with_entry():
    u = parse_user("1001", PASSWD, GROUP)
    assert (u.uid, u.gid) == (1001, 1001)
    assert 29 in u.additional_gids and 44 not in u.additional_gids


def test_unknown_user_name():
    with pytest.raises(InvalidArgument) as e:
        parse_user("bob", PASSWD, GROUP)
    assert e.value.message == "unable to find user bob: no matching entries in passwd file"


def test_unknown_user_name_without_passwd_file():
    with pytest.raises(InvalidArgument) as e:
        parse_user("bob", "", "")
    assert e.value.message == "unable to find user bob: no matching entries in passwd file"


def test_unknown_group_name():
    with pytest.raises(InvalidArgument) as e:
        parse_user("app:nosuch", PASSWD, GROUP)
    assert e.value.message == "unable to find group nosuch: no matching entries in group file"


def test_root_without_passwd_file():
    u = parse_user("", "", "")
    assert (u.uid, u.gid) == (0, 0)
    assert parse_user("1000:1000", "", "") == ProcessUser(1000, 1000)


def test_passwd_comments_and_blank_lines_ignored():
    passwd = "# comment\n\n" + PASSWD
    assert parse_user("app", passwd, GROUP).uid == 1000


def test_first_passwd_match_wins():
    passwd = PASSWD + "app:x:2000:2000::/:/bin/sh\n"
    assert parse_user("app", passwd, GROUP).uid == 1000


def test_numeric_user_is_always_a_uid():
    # moby/sys/user: "If the userArg is a valid numeric value, always treat it as a UID."
    passwd = "1000:x:5:5::/:/bin/sh\n" + PASSWD
    u = parse_user("1000", passwd, GROUP)
    assert (u.uid, u.gid) == (1000, 1000)


def test_second_name_for_same_uid_gets_its_own_groups():
    # Supplementary groups are looked up by the matched user *name*.
    passwd = PASSWD + "toor:x:0:0::/root:/bin/sh\n"
    group = GROUP + "toorgrp:x:77:toor\n"
    u = parse_user("toor", passwd, group)
    assert (u.uid, u.gid) == (0, 0)
    assert 77 in u.additional_gids
    assert 10 not in u.additional_gids


# -- resources (HostConfig → linux.resources) -----------------------------------------------------------

MIB = 1024 * 1024


def test_no_resources_by_default():
    res = build()["linux"]["resources"]
    assert set(res) == {"devices"}
    assert "oomScoreAdj" not in build()["process"]


def test_memory_resources():
    mem = build(make(memory=16 * MIB, memory_swap=32 * MIB, memory_reservation=8 * MIB,
                     oom_kill_disable=True))["linux"]["resources"]["memory"]
    assert mem == {"limit": 16 * MIB, "swap": 32 * MIB, "reservation": 8 * MIB, "disableOOMKiller": True}


def test_unlimited_swap_is_left_out():
    # Docker sets linux.resources.memory.swap only for a positive MemorySwap.
    assert build(make(memory=16 * MIB, memory_swap=-1))["linux"]["resources"]["memory"] == {"limit": 16 * MIB}


def test_nano_cpus_become_a_quota_of_a_100ms_period():
    cpu = build(make(nano_cpus=500_000_000))["linux"]["resources"]["cpu"]
    assert cpu == {"period": 100000, "quota": 50000}
    assert build(make(nano_cpus=2_000_000_000))["linux"]["resources"]["cpu"]["quota"] == 200000


def test_cpu_shares_period_quota_cpuset():
    cpu = build(make(cpu_shares=512, cpu_period=50000, cpu_quota=25000, cpuset_cpus="0-1",
                     cpuset_mems="0"))["linux"]["resources"]["cpu"]
    assert cpu == {"shares": 512, "period": 50000, "quota": 25000, "cpus": "0-1", "mems": "0"}


def test_pids_limit():
    assert build(make(pids_limit=20))["linux"]["resources"]["pids"] == {"limit": 20}
    assert "pids" not in build(make(pids_limit=None))["linux"]["resources"]


def test_oom_score_adj():
    assert build(make(oom_score_adj=500))["process"]["oomScoreAdj"] == 500


def test_ulimits_become_rlimits():
    spec = build(make(ulimits=[{"Name": "nofile", "Soft": 100, "Hard": 200}, {"Name": "core", "Soft": -1,
                                                                             "Hard": -1}]))
    assert spec["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
        {"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1},
    ]


def test_sysctls():
    assert build(make(sysctls={"net.ipv4.ip_forward": "1"}))["linux"]["sysctl"] == {"net.ipv4.ip_forward": "1"}
    assert "sysctl" not in build()["linux"]


def test_cgroups_path():
    from berth.runtime.spec import cgroups_path
    assert build()["linux"]["cgroupsPath"] == cgroups_path(CID) == f"/berth/{CID}"


# -- /dev/shm, tmpfs, devices, init -----------------------------------------------------------------------

def test_shm_size():
    assert "size=8388608" in mount(build(make(shm_size=8 * MIB)), "/dev/shm")["options"]


def test_tmpfs_mounts_with_dockers_default_options():
    m = mount(build(make(tmpfs={"/run/x": "size=1m,mode=1777"})), "/run/x")
    assert m["type"] == "tmpfs" and m["source"] == "tmpfs"
    assert m["options"] == ["noexec", "nosuid", "nodev", "size=1m", "mode=1777"]
    assert mount(build(make(tmpfs={"/x": "exec,rw"})), "/x")["options"] == ["exec", "nosuid", "nodev", "rw"]
    assert mount(build(make(tmpfs={"/x": ""})), "/x")["options"] == ["noexec", "nosuid", "nodev"]


def test_tmpfs_replaces_a_default_mount():
    spec = build(make(tmpfs={"/dev/shm": "size=1g"}))
    m = mount(spec, "/dev/shm")
    assert m["source"] == "tmpfs" and "size=1g" in m["options"]


def test_device_mapping():
    spec = build(make(devices=[{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull",
                                "CgroupPermissions": "rw"}]))
    dev = [d for d in spec["linux"]["devices"] if d["path"] == "/dev/mynull"]
    assert dev and (dev[0]["type"], dev[0]["major"], dev[0]["minor"]) == ("c", 1, 3)
    rules = spec["linux"]["resources"]["devices"]
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"} in rules
    assert rules[0] == {"allow": False, "access": "rwm"}


def test_missing_device_at_start():
    with pytest.raises(InvalidArgument) as e:
        build(make(devices=[{"PathOnHost": "/dev/berth-nope", "PathInContainer": "/dev/x",
                             "CgroupPermissions": "rwm"}]))
    assert "error gathering device information" in e.value.message and "/dev/berth-nope" in e.value.message


def test_privileged_gets_the_hosts_devices():
    spec = build(make(privileged=True))
    assert any(d["path"] == "/dev/null" for d in spec["linux"].get("devices", []))


def test_init_runs_tini_as_pid_1(monkeypatch):
    from berth.runtime import limits
    monkeypatch.setattr(limits, "find_init", lambda: "/usr/bin/tini-static")
    spec = build(make(init=True, entrypoint=["/app"], cmd=["x"]))
    assert spec["process"]["args"] == ["/sbin/docker-init", "--", "/app", "x"]
    m = mount(spec, "/sbin/docker-init")
    assert m["source"] == "/usr/bin/tini-static" and m["type"] == "bind" and "ro" in m["options"]
    assert build(make(entrypoint=["/app"], cmd=None))["process"]["args"] == ["/app"]


def test_init_without_a_binary(monkeypatch):
    from berth.runtime import limits
    monkeypatch.setattr(limits, "find_init", lambda: None)
    with pytest.raises(InvalidArgument) as e:
        build(make(init=True))
    assert "tini" in e.value.message


def test_group_add_numbers_in_additional_gids():
    u = build(make(group_add=["1234", "10"]), user=ProcessUser(0, 0, (10,)))["process"]["user"]
    assert u["additionalGids"] == [0, 10, 1234]


# -- seccomp ----------------------------------------------------------------------------------------------

def allowed(seccomp_rules: dict, name: str) -> list[dict]:
    """The rules that allow ``name`` (with or without argument conditions)."""
    return [r for r in seccomp_rules["syscalls"] if name in r["names"] and r["action"] == "SCMP_ACT_ALLOW"]


def test_default_seccomp_profile_applied():
    sc = build()["linux"]["seccomp"]
    assert sc["defaultAction"] == "SCMP_ACT_ERRNO" and sc["defaultErrnoRet"] == 1


def test_no_seccomp_when_privileged_or_unconfined():
    assert "seccomp" not in build(make(privileged=True))["linux"]
    assert "seccomp" not in build(make(seccomp_profile="unconfined"))["linux"]


def test_custom_seccomp_profile():
    import json
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    sc = build(make(seccomp_profile=json.dumps(profile)))["linux"]["seccomp"]
    assert sc == {"defaultAction": "SCMP_ACT_ALLOW",
                  "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}


def test_invalid_seccomp_profile():
    with pytest.raises(InvalidArgument) as e:
        build(make(seccomp_profile="{nope"))
    assert e.value.message.startswith("Decoding seccomp profile failed: ")


def _default(caps=DEFAULT_CAPS, arch="amd64", kernel=(6, 1)):
    from berth.runtime import seccomp
    return seccomp.to_oci(seccomp.default_profile(), list(caps), arch, kernel)


def test_default_profile_architectures():
    assert _default()["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert "architectures" not in _default(arch="s390x")  # not in the map: libseccomp's native one


@pytest.mark.parametrize("name", [
    "read", "write", "openat", "close", "execve", "exit_group", "mmap", "brk", "futex", "fork", "vfork",
    "pipe", "pipe2", "wait4", "rt_sigaction", "clock_gettime", "getdents64", "newfstatat", "statx", "prctl",
    "setuid", "chown", "capset", "arch_prctl", "sendmsg", "epoll_wait", "getrandom", "set_robust_list", "rseq",
    "chroot", "setgroups",
])
def test_default_profile_allows_what_programs_need(name):
    rules = allowed(_default(), name)
    assert rules and any("args" not in r for r in rules), name


@pytest.mark.parametrize("name", [
    "keyctl", "add_key", "request_key", "mount", "umount2", "unshare", "setns", "reboot", "swapon", "swapoff",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "acct", "bpf",
    "perf_event_open", "userfaultfd", "lookup_dcookie", "iopl", "ioperm", "settimeofday", "clock_settime",
    "open_by_handle_at", "syslog", "vhangup", "io_uring_setup", "pivot_root", "quotactl", "nfsservctl",
])
def test_default_profile_blocks(name):
    assert not allowed(_default(), name), name


def test_capabilities_unlock_their_syscalls():
    admin = _default(caps=[*DEFAULT_CAPS, "CAP_SYS_ADMIN"])
    for name in ("mount", "umount2", "unshare", "setns", "sethostname", "bpf", "perf_event_open"):
        assert allowed(admin, name), name
    assert allowed(_default(caps=[*DEFAULT_CAPS, "CAP_SYS_BOOT"]), "reboot")
    assert allowed(_default(caps=[*DEFAULT_CAPS, "CAP_SYS_MODULE"]), "finit_module")
    assert allowed(_default(caps=[*DEFAULT_CAPS, "CAP_SYS_RAWIO"]), "iopl")
    assert allowed(_default(caps=[*DEFAULT_CAPS, "CAP_SYS_TIME"]), "clock_settime")
    assert allowed(_default(caps=[*DEFAULT_CAPS, "CAP_BPF"]), "bpf")
    assert not allowed(_default(caps=[c for c in DEFAULT_CAPS if c != "CAP_SYS_CHROOT"]), "chroot")


def test_capabilities_follow_the_containers_bounding_set():
    sc = build(make(cap_add=["SYS_ADMIN"]))["linux"]["seccomp"]
    assert allowed(sc, "mount")
    assert not allowed(build()["linux"]["seccomp"], "mount")


def test_clone_without_namespace_flags_only():
    sc = _default()
    clone = allowed(sc, "clone")
    assert len(clone) == 1
    assert clone[0]["args"] == [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]
    clone3 = [r for r in sc["syscalls"] if "clone3" in r["names"]]
    assert clone3 == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]  # ENOSYS: libc falls back
    admin = _default(caps=[*DEFAULT_CAPS, "CAP_SYS_ADMIN"])
    assert any("args" not in r for r in allowed(admin, "clone"))
    assert not [r for r in admin["syscalls"] if "clone3" in r["names"] and r["action"] != "SCMP_ACT_ALLOW"]


def test_ptrace_from_kernel_4_8():
    assert allowed(_default(kernel=(4, 8)), "ptrace")
    assert not allowed(_default(kernel=(4, 4)), "ptrace")
    assert allowed(_default(kernel=(4, 4), caps=[*DEFAULT_CAPS, "CAP_SYS_PTRACE"]), "ptrace")


def test_personality_only_with_known_domains():
    values = {r["args"][0]["value"] for r in allowed(_default(), "personality")}
    assert values == {0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF}
    assert all(r["args"][0]["op"] == "SCMP_CMP_EQ" for r in allowed(_default(), "personality"))


def test_socket_except_vsock():
    rules = allowed(_default(), "socket")
    assert [r["args"] for r in rules] == [[{"index": 0, "value": 40, "valueTwo": 0, "op": "SCMP_CMP_NE"}]]


def test_profile_checks():
    from berth.runtime import seccomp
    with pytest.raises(InvalidArgument) as e:
        seccomp.load_profile('{"architectures": ["SCMP_ARCH_X86"], "archMap": [{"architecture": "x"}]}')
    assert "use either 'architectures' or 'archMap'" in e.value.message
    with pytest.raises(InvalidArgument):
        seccomp.load_profile('{"syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOPE"}]}')
    with pytest.raises(InvalidArgument):
        seccomp.load_profile('[]')
    assert seccomp.to_oci(seccomp.load_profile("{}"), []) is None  # an empty profile: no filter


# -- parse_user's extra groups -------------------------------------------------------------------------------

def test_extra_groups_by_name_and_number():
    u = parse_user("app", PASSWD, GROUP, ["staff", "4242", "29"])
    assert (u.uid, u.gid) == (1000, 1000)
    assert u.additional_gids == (29, 44, 50, 4242)


def test_extra_groups_with_an_explicit_group():
    u = parse_user("app:staff", PASSWD, GROUP, ["wheel"])
    assert u == ProcessUser(1000, 50, (10,))


def test_unknown_extra_group():
    with pytest.raises(InvalidArgument) as e:
        parse_user("", PASSWD, GROUP, ["nosuch"])
    assert e.value.message == "Unable to find group nosuch: no matching entries in group file"


# -- checks at create time (runtime.limits) -------------------------------------------------------------------

def check(**kw):
    from berth.runtime import limits
    return limits.check(ContainerSpec(image="busybox", **kw))


def test_check_fills_in_dockers_defaults():
    s = check(memory=16 * MIB)
    assert s.memory_swap in (32 * MIB, -1)  # -1 where the host cannot limit swap
    assert s.shm_size == 64 * MIB
    assert check(pids_limit=0).pids_limit is None and check(pids_limit=-5).pids_limit is None


@pytest.mark.parametrize("kw, message", [
    ({"memory": 5 * MIB}, "Minimum memory limit allowed is 6MB"),
    ({"memory_reservation": MIB}, "Minimum memory reservation allowed is 6MB"),
    ({"memory": 8 * MIB, "memory_reservation": 16 * MIB}, "Minimum memory limit can not be less than memory "
                                                           "reservation limit"),
    ({"nano_cpus": 10**14}, "as there are only"),
    ({"cpu_shares": -1}, "shares: invalid argument"),
    ({"cpu_quota": 10}, "CPU cfs quota can not be less than 1ms"),
    ({"cpuset_mems": "1-a"}, "Invalid value 1-a for cpuset mems"),
    ({"shm_size": -1}, "SHM size can not be less than 0"),
    ({"oom_score_adj": -1001}, "range for oom score adj is [-1000, 1000]"),
    ({"ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 2**62}]}, "above the host's hard limit"),
    ({"ulimits": [{"Name": "nofile", "Soft": "1", "Hard": 2}]}, "invalid type for HostConfig.Ulimits"),
    ({"devices": [{"PathOnHost": "/dev/null", "CgroupPermissions": "rwx"}]}, "invalid device mode: rwx"),
    ({"devices": [{"PathOnHost": "dev/null"}]}, "bad format for path: dev/null"),
    ({"sysctls": {"kernel.hostname": "x"}}, "sysctl 'kernel.hostname=x' is not allowed"),
    ({"sysctls": {"net.core.somaxconn": "1"}, "network_mode": "host"}, "not allowed in host network namespace"),
    ({"tmpfs": {"/": ""}}, "destination can't be '/'"),
    ({"group_add": [""]}, "invalid type for HostConfig.GroupAdd"),
])
def test_check_refuses(kw, message):
    with pytest.raises(InvalidArgument) as e:
        check(**kw)
    assert message in e.value.message


def test_check_accepts_namespaced_sysctls():
    assert check(sysctls={"kernel.shmmax": "1", "fs.mqueue.msg_max": "5", "net.ipv4.ip_forward": "1"}).sysctls


def test_security_options():
    from berth.runtime.limits import security_options
    assert security_options([]) == (False, "")
    assert security_options(["no-new-privileges"]) == (True, "")
    assert security_options(["no-new-privileges:false", "seccomp=unconfined"]) == (False, "unconfined")
    assert security_options(["seccomp:unconfined"]) == (False, "unconfined")
    assert security_options(['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}'])[1] == '{"defaultAction":"SCMP_ACT_ALLOW"}'
    for bad, text in (("seccomp=nope", "Decoding seccomp profile failed"), ("bogus", "invalid --security-opt 1"),
                      ("foo=bar", "invalid --security-opt 2"), ("no-new-privileges=maybe", "invalid --security-opt 2")):
        with pytest.raises(InvalidArgument) as e:
            security_options([bad])
        assert text in e.value.message


# -- OOM kills (runtime.oom) ----------------------------------------------------------------------------

def test_oom_killed_cgroup_v1(tmp_path):
    from berth.runtime.oom import oom_killed
    d = tmp_path / "memory" / "berth" / "abc"
    d.mkdir(parents=True)
    (d / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    assert not oom_killed("/berth/abc", str(tmp_path))
    (d / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert oom_killed("/berth/abc", str(tmp_path))
    assert not oom_killed("/berth/gone", str(tmp_path))


def test_oom_killed_cgroup_v2(tmp_path):
    from berth.runtime.oom import oom_killed
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    d = tmp_path / "berth" / "abc"
    d.mkdir(parents=True)
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 5\noom 1\noom_kill 0\noom_group_kill 0\n")
    assert not oom_killed("/berth/abc", str(tmp_path))
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\noom_group_kill 0\n")
    assert oom_killed("/berth/abc", str(tmp_path))


# -- Docker's create JSON and inspect (api.serialize.containers) ------------------------------------------------

def test_create_body_to_spec_and_back():
    from berth.api.serialize.containers import host_config, spec_from_create
    body = {"Image": "busybox", "HostConfig": {
        "Memory": 16 * MIB, "MemoryReservation": 8 * MIB, "NanoCpus": 500_000_000, "CpuShares": 512,
        "PidsLimit": 20, "Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}], "ShmSize": 8 * MIB,
        "OomKillDisable": True, "OomScoreAdj": 100, "Sysctls": {"net.ipv4.ip_forward": "1"}, "GroupAdd": ["1234"],
        "Tmpfs": {"/run": "size=1m"}, "Init": True, "SecurityOpt": ["seccomp=unconfined"],
        "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "", "CgroupPermissions": ""}]}}
    spec = spec_from_create(body)
    assert spec.seccomp_profile == "unconfined" and spec.pids_limit == 20
    c = Container(CID, "web", "sha256:" + "b" * 64, "2024-01-01T00:00:00Z", spec, ContainerState())
    h = host_config(c)
    assert (h["Memory"], h["MemoryReservation"], h["NanoCpus"], h["CpuShares"], h["PidsLimit"]) == \
        (16 * MIB, 8 * MIB, 500_000_000, 512, 20)
    assert h["MemorySwap"] in (32 * MIB, -1)
    assert h["Ulimits"] == [{"Name": "nofile", "Soft": 100, "Hard": 200}] and h["ShmSize"] == 8 * MIB
    assert h["OomKillDisable"] is True and h["OomScoreAdj"] == 100 and h["Init"] is True
    assert h["Sysctls"] == {"net.ipv4.ip_forward": "1"} and h["Tmpfs"] == {"/run": "size=1m"}
    assert h["GroupAdd"] == ["1234"] and h["SecurityOpt"] == ["seccomp=unconfined"]
    assert h["Devices"] == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/null", "CgroupPermissions": "rwm"}]
    # the spec survives the store's JSON
    assert ContainerSpec.from_json(spec.to_json()) == spec


def test_defaults_in_inspect():
    from berth.api.serialize.containers import host_config, spec_from_create
    spec = spec_from_create({"Image": "busybox"})
    h = host_config(Container(CID, "web", "sha256:" + "b" * 64, "2024-01-01T00:00:00Z", spec, ContainerState()))
    assert (h["Memory"], h["MemorySwap"], h["NanoCpus"], h["PidsLimit"], h["ShmSize"]) == (0, 0, 0, None, 64 * MIB)
    assert h["Ulimits"] is None and h["SecurityOpt"] is None and h["OomKillDisable"] is False
    assert "Sysctls" not in h and "Tmpfs" not in h
