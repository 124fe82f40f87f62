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
