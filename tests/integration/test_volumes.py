"""Volumes and mounts against a real berthd, runc and real mounts: named volumes that outlive their containers,
the image's content copied into a fresh volume (owners and modes kept, ``nocopy`` off), read-only mounts,
anonymous volumes (``rm -v``, ``--rm``), volumes in use, prune, ``--volumes-from``, tmpfs sizes, local-driver
tmpfs volumes, ``--read-only`` roots, binds, ``cp`` into volumes, data across a ``kill -9`` of berthd, the
``volume`` commands and the API, and bad input that must leave nothing behind. The docker CLI and docker-py
against berthd's volumes are in tests/compat/test_docker_cli_volumes.py and test_docker_py_volumes.py.

This module has a berthd of its own (``volume ls`` and ``volume prune`` see every volume of a daemon), and each
test leaves it with no container and no volume (``made`` checks). Where a test pins what Docker does beyond
the obvious, the docstring says how it was checked (dockerd 20.10 on this machine, or moby's source).
Needs root, runc and busybox (the fixtures skip otherwise).
"""
from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import quote, urlencode

import pytest

from tests.support.daemon import Daemon, can_run_containers, started, wait_for
from tests.support.made import Made as BaseMade

BUSYBOX = "busybox:latest"
ANON = "com.docker.volume.anonymous"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
LS_HEADER = "DRIVER    VOLUME NAME"


def uniq(prefix: str = "vol") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Made(BaseMade):
    """Containers (removed with their anonymous volumes), volumes, images and host paths of one test."""

    def __init__(self, daemon) -> None:
        super().__init__(daemon)
        self.volumes: list[str] = []

    def volume(self, name: str | None = None) -> str:
        name = name or uniq()
        self.volumes.append(name)
        return name

    def host_dir(self) -> str:
        path = tempfile.mkdtemp(prefix="bt-vol-", dir="/tmp")
        self.paths.append(path)
        return path

    def run(self, *args: str, check: bool = True):
        """``berth run --name NAME ARGS``; the result carries ``.name``."""
        name = self.container(uniq("vc"))
        r = self.daemon.cli("run", "--name", name, *args, check=check)
        r.name = name
        return r

    def create(self, *args: str) -> str:
        name = self.container(uniq("vc"))
        self.daemon.cli("create", "--name", name, *args)
        return name

    def cleanup(self) -> None:
        for ref in self.containers:
            self.daemon.api("DELETE", f"/containers/{quote(ref, safe='')}?force=1&v=1")
        self.containers = []
        super().cleanup()
        for v in self.volumes:
            self.daemon.api("DELETE", f"/volumes/{quote(v, safe='')}?force=1")


@pytest.fixture(scope="module")
def daemon():
    """This module's own berthd."""
    reason = can_run_containers()
    if reason:
        pytest.skip(reason)
    yield from started(Daemon())


@pytest.fixture
def made(daemon):
    """What the test made, removed at teardown; then the daemon must hold no container and no volume."""
    m = Made(daemon)
    yield m
    m.cleanup()
    containers = [c["Names"] for c in daemon.api("GET", "/containers/json?all=1")[1]]
    volumes = volume_names(daemon)
    for c in daemon.api("GET", "/containers/json?all=1")[1]:
        daemon.api("DELETE", f"/containers/{c['Id']}?force=1&v=1")
    for v in volume_names(daemon):
        daemon.api("DELETE", f"/volumes/{v}?force=1")
    assert containers == [] and volumes == [], f"left behind: containers {containers}, volumes {volumes}"


@pytest.fixture(scope="module")
def owned_image(daemon):
    """An image whose /x (a VOLUME) holds sub/f, owned 1000:1000, dirs 0750 and the file 0640."""
    ref = "vol-owned:" + uuid.uuid4().hex[:8]
    src = uniq("vc-src")
    daemon.cli("run", "--name", src, BUSYBOX, "sh", "-c",
               "mkdir -p /x/sub && echo img > /x/sub/f && chmod 640 /x/sub/f && chown -R 1000:1000 /x "
               "&& chmod 750 /x /x/sub")
    try:
        daemon.cli("commit", "--change", "VOLUME /x", src, ref)
    finally:
        daemon.cli("rm", src)
    yield ref
    daemon.api("DELETE", f"/images/{quote(ref, safe='')}?force=1")


# -- helpers -----------------------------------------------------------------------------------------------------------

def out(r) -> str:
    return r.stdout.decode(errors="replace")


def err(r) -> str:
    return r.stderr.decode(errors="replace")


def volume_names(d) -> list[str]:
    status, body = d.api("GET", "/volumes")
    assert status == 200, body
    return sorted(v["Name"] for v in body["Volumes"] or [])


def container_names(d) -> list[str]:
    status, body = d.api("GET", "/containers/json?all=1")
    assert status == 200, body
    return sorted(n for c in body for n in c["Names"])


def volume(d, name: str) -> dict:
    status, body = d.api("GET", f"/volumes/{quote(name, safe='')}")
    assert status == 200, (status, body)
    return body


def mountpoint(d, name: str) -> str:
    return volume(d, name)["Mountpoint"]


def inspect(d, ref: str) -> dict:
    status, body = d.api("GET", f"/containers/{quote(ref, safe='')}/json")
    assert status == 200, (status, body)
    return body


def mounts(d, ref: str) -> dict[str, dict]:
    """Destination → the container's ``Mounts`` entry."""
    return {m["Destination"]: m for m in inspect(d, ref)["Mounts"]}


def sh(d, container: str, script: str):
    return d.cli("exec", container, "sh", "-c", script, check=False)


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def write(path: str, text: str) -> str:
    with open(path, "w") as f:
        f.write(text)
    return path


def host_mount(path: str) -> list[str] | None:
    """The fields of this host's mountinfo line for ``path``, or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == path:
                return fields
    return None


# -- named volumes ---------------------------------------------------------------------------------------------------

def test_named_volume_outlives_its_containers(daemon, made):
    d = daemon
    vol = made.volume()
    assert vol not in volume_names(d)
    w = made.run("-v", f"{vol}:/data", BUSYBOX, "sh", "-c",
                 "echo persisted > /data/f && mkdir /data/dir && echo deep > /data/dir/g")
    assert vol in volume_names(d), "-v NAME:/path creates the volume on first use"
    d.cli("rm", w.name)
    assert "/" + w.name not in container_names(d)

    r = made.run("--rm", "-v", f"{vol}:/again", BUSYBOX, "cat", "/again/f", "/again/dir/g")
    assert out(r) == "persisted\ndeep\n"
    assert vol in volume_names(d), "--rm keeps a named volume"
    mp = mountpoint(d, vol)
    assert mp == os.path.join(d.data_root, "volumes", vol, "_data")
    assert read(os.path.join(mp, "f")) == "persisted\n" and read(os.path.join(mp, "dir", "g")) == "deep\n"

    # two running containers share it, each under its own path
    a = made.run("-d", "-v", f"{vol}:/data", BUSYBOX, "sleep", "300")
    b = made.run("-d", "-v", f"{vol}:/shared", BUSYBOX, "sleep", "300")
    assert sh(d, a.name, "echo from-a > /data/a").returncode == 0
    assert out(sh(d, b.name, "cat /shared/a /shared/f")) == "from-a\npersisted\n"


def test_image_content_copied_into_a_fresh_volume_with_owner_and_mode(daemon, made, owned_image):
    d = daemon
    vol = made.volume()
    r = made.run("-v", f"{vol}:/x", owned_image, "sh", "-c",
                 "stat -c '%u:%g %a %n' /x /x/sub /x/sub/f; cat /x/sub/f")
    assert out(r).splitlines() == ["1000:1000 750 /x", "1000:1000 750 /x/sub", "1000:1000 640 /x/sub/f", "img"]
    mp = mountpoint(d, vol)
    for path, mode in ((mp, 0o750), (os.path.join(mp, "sub"), 0o750), (os.path.join(mp, "sub", "f"), 0o640)):
        st = os.stat(path)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, mode), path
    assert read(os.path.join(mp, "sub", "f")) == "img\n"

    # copied once, while empty: what the volume holds later wins over the image
    write(os.path.join(mp, "sub", "f"), "changed\n")
    r = made.run("--rm", "-v", f"{vol}:/x", owned_image, "cat", "/x/sub/f")
    assert out(r) == "changed\n"
    full = made.volume()
    made.run("--rm", "-v", f"{full}:/x", BUSYBOX, "sh", "-c", "echo mine > /x/mine")
    r = made.run("--rm", "-v", f"{full}:/x", owned_image, "ls", "-A", "/x")
    assert out(r) == "mine\n", "a volume that holds data is not merged with the image's files"

    # the image's own VOLUME (an anonymous volume) gets the content too
    r = made.run("--rm", owned_image, "stat", "-c", "%u:%g %a", "/x", "/x/sub/f")
    assert out(r) == "1000:1000 750\n1000:1000 640\n"

    # nocopy: -v NAME:/x:nocopy and --mount ...,volume-nocopy leave the fresh volume empty
    n1, n2 = made.volume(), made.volume()
    r = made.run("--rm", "-v", f"{n1}:/x:nocopy", owned_image, "ls", "-A", "/x")
    assert out(r) == "" and os.listdir(mountpoint(d, n1)) == []
    r = made.run("--rm", "--mount", f"type=volume,source={n2},target=/x,volume-nocopy", owned_image, "ls", "-A", "/x")
    assert out(r) == "" and os.listdir(mountpoint(d, n2)) == []


def test_read_only_mounts_refuse_writes(daemon, made):
    d = daemon
    vol = made.volume()
    made.run("--rm", "-v", f"{vol}:/d", BUSYBOX, "sh", "-c", "echo orig > /d/f")
    host = made.host_dir()
    write(os.path.join(host, "f"), "orig\n")
    for flags in (["-v", f"{vol}:/d:ro"], ["--mount", f"type=volume,source={vol},target=/d,readonly"],
                  ["-v", f"{host}:/d:ro"], ["--mount", f"type=bind,source={host},target=/d,readonly"]):
        r = made.run(*flags, BUSYBOX, "sh", "-c", "cat /d/f; echo new > /d/f; echo made > /d/g", check=False)
        assert r.returncode == 1, (flags, out(r), err(r))
        assert out(r) == "orig\n", flags
        assert "can't create /d/f: Read-only file system" in err(r), (flags, err(r))
        assert "can't create /d/g: Read-only file system" in err(r), (flags, err(r))
        assert mounts(d, r.name)["/d"]["RW"] is False, flags
    for data in (mountpoint(d, vol), host):
        assert sorted(os.listdir(data)) == ["f"] and read(os.path.join(data, "f")) == "orig\n"


# -- anonymous volumes -------------------------------------------------------------------------------------------------

def test_anonymous_volumes_kept_without_v_removed_by_rm_v_and_rm(daemon, made, owned_image):
    d = daemon
    # kept: a container removed without -v leaves its anonymous volume, dangling
    k = made.run("-v", "/a", BUSYBOX, "sh", "-c", "echo keep > /a/f")
    anon = mounts(d, k.name)["/a"]["Name"]
    made.volume(anon)
    assert HEX64.match(anon), anon
    assert volume(d, anon)["Labels"] == {ANON: ""}
    d.cli("rm", k.name)
    assert anon in volume_names(d)
    assert out(d.cli("volume", "ls", "-q", "-f", "dangling=true")).split() == [anon]
    assert read(os.path.join(mountpoint(d, anon), "f")) == "keep\n"

    # rm -v: the anonymous ones (image VOLUME, -v /p, --mount without source) go, the named one stays
    named = made.volume()
    c = made.run("-v", "/p", "--mount", "type=volume,target=/m", "-v", f"{named}:/n", owned_image, "true")
    ms = mounts(d, c.name)
    anons = {ms[p]["Name"] for p in ("/x", "/p", "/m")}
    assert len(anons) == 3 and all(HEX64.match(n) for n in anons), ms
    assert ms["/n"]["Name"] == named
    assert anons < set(volume_names(d))
    assert out(d.cli("rm", "-v", c.name)) == c.name + "\n"
    assert volume_names(d) == sorted([anon, named])

    # --rm: the same, once the container is gone
    r = made.run("-d", "--rm", "-v", "/p", "--mount", "type=volume,target=/m", "-v", f"{named}:/n", owned_image,
                 "sleep", "300")
    ms = mounts(d, r.name)
    anons = {ms[p]["Name"] for p in ("/x", "/p", "/m")}
    assert len(anons) == 3 and anons < set(volume_names(d))
    d.cli("stop", "-t", "0", r.name)
    wait_for(lambda: "/" + r.name not in container_names(d), 15, what="the --rm container to be removed")
    wait_for(lambda: volume_names(d) == sorted([anon, named]), 10,
             what=f"--rm to remove the anonymous volumes {anons}")

    # rm -v spares an anonymous volume another container still uses (--volumes-from), as Docker does
    c1 = made.run("-v", "/shared", BUSYBOX, "true")
    shared = mounts(d, c1.name)["/shared"]["Name"]
    c2 = made.run("--volumes-from", c1.name, BUSYBOX, "true")
    d.cli("rm", "-v", c1.name)
    assert shared in volume_names(d)
    d.cli("rm", "-v", c2.name)
    assert shared not in volume_names(d)


def test_volume_in_use_cannot_be_removed(daemon, made):
    d = daemon
    vol = made.volume()
    r = made.run("-d", "-v", f"{vol}:/d", BUSYBOX, "sleep", "300")
    cid = inspect(d, r.name)["Id"]
    msg = f"remove {vol}: volume is in use - [{cid}]"
    assert d.api("DELETE", f"/volumes/{vol}") == (409, {"message": msg})
    rm = d.cli("volume", "rm", vol, check=False)
    assert (rm.returncode, out(rm), err(rm)) == (1, "", f"Error response from daemon: {msg}\n")
    rm = d.cli("volume", "rm", "-f", vol, check=False)
    assert (rm.returncode, err(rm)) == (1, f"Error response from daemon: {msg}\n"), "-f does not override in use"

    # stopped, still in use; and a second (created, never started) user is named too
    d.cli("stop", "-t", "0", r.name)
    assert d.api("DELETE", f"/volumes/{vol}") == (409, {"message": msg})
    other = made.create("-v", f"{vol}:/e", BUSYBOX, "true")
    oid = inspect(d, other)["Id"]
    status, body = d.api("DELETE", f"/volumes/{vol}")
    m = re.fullmatch(rf"remove {vol}: volume is in use - \[(.*)\]", body["message"])
    assert status == 409 and m and sorted(m[1].split(", ")) == sorted([cid, oid]), body
    assert vol in volume_names(d)
    assert out(d.cli("ps", "-a", "-q", "--no-trunc", "--filter", f"volume={vol}")).split() == [oid, cid]

    # once the containers are gone, it goes
    d.cli("rm", r.name, other)
    rm = d.cli("volume", "rm", vol)
    assert out(rm) == vol + "\n"
    assert vol not in volume_names(d)
    assert d.api("DELETE", f"/volumes/{vol}") == (404, {"message": f"get {vol}: no such volume"})


def test_prune_anonymous_by_default_all_with_a_never_in_use(daemon, made):
    d = daemon
    used_named = made.volume()
    made.create("-v", f"{used_named}:/d", BUSYBOX, "true")  # a stopped user
    runner = made.run("-d", "-v", "/busy", BUSYBOX, "sleep", "300")
    used_anon = made.volume(mounts(d, runner.name)["/busy"]["Name"])
    free_named = made.volume()
    d.cli("volume", "create", free_named)
    labelled = made.volume()
    d.cli("volume", "create", "--label", "prune-me=yes", labelled)
    gone = made.run("-v", "/gone", BUSYBOX, "sh", "-c",
                    "dd if=/dev/zero of=/gone/a bs=1000 count=1 2>/dev/null && "
                    "dd if=/dev/zero of=/gone/b bs=500 count=1 2>/dev/null")
    free_anon = made.volume(mounts(d, gone.name)["/gone"]["Name"])
    d.cli("rm", gone.name)
    every = sorted([used_named, used_anon, free_named, labelled, free_anon])
    assert volume_names(d) == every

    # asked, and answered no: nothing goes
    r = d.cli("volume", "prune", input=b"n\n")
    assert "WARNING! This will remove anonymous local volumes not used by at least one container." in out(r)
    assert volume_names(d) == every

    r = d.cli("volume", "prune", "-f")
    assert out(r) == f"Deleted Volumes:\n{free_anon}\n\nTotal reclaimed space: 1.5kB\n"
    assert volume_names(d) == sorted([used_named, used_anon, free_named, labelled])

    # the API with a label filter (and all): only that one
    status, body = d.api("POST", "/volumes/prune?" + urlencode(
        {"filters": json.dumps({"all": ["true"], "label": ["prune-me=yes"]})}))
    assert (status, body) == (200, {"VolumesDeleted": [labelled], "SpaceReclaimed": 0})

    r = d.cli("volume", "prune", "-f", "-a")
    assert out(r) == f"Deleted Volumes:\n{free_named}\n\nTotal reclaimed space: 0B\n"
    assert volume_names(d) == sorted([used_named, used_anon]), "prune never removes a volume in use"
    assert out(d.cli("volume", "prune", "-f", "--all")) == "Total reclaimed space: 0B\n"
    # an empty list, not null: moby's Prune starts its report with make([]string, 0, n), and dockerd 20.10
    # here answers {"VolumesDeleted":[],"SpaceReclaimed":0}
    assert d.api("POST", "/volumes/prune") == (200, {"VolumesDeleted": [], "SpaceReclaimed": 0})


def test_prune_and_df_leave_out_volumes_with_mount_options(daemon, made):
    """Docker's prune and ``system df`` skip local volumes that have mount options (moby
    volume/service/service.go, Prune and LocalVolumesSize: ``len(dv.Options()) == 0``; dockerd 20.10 here
    keeps a ``-o type=tmpfs`` volume through ``volume prune -f`` and leaves it out of ``system df -v``)."""
    d = daemon
    tv, plain = made.volume(), made.volume()
    d.cli("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", tv)
    d.cli("volume", "create", plain)
    in_df = [v["Name"] for v in d.api("GET", "/system/df")[1]["Volumes"]]
    in_df_v = out(d.cli("system", "df", "-v")).split("Local Volumes space usage:", 1)[1].split("Build cache")[0]
    pruned = out(d.cli("volume", "prune", "-f", "-a"))
    assert (in_df, tv in in_df_v, pruned, volume_names(d)) == \
        ([plain], False, f"Deleted Volumes:\n{plain}\n\nTotal reclaimed space: 0B\n", [tv])


# -- --volumes-from, tmpfs, --read-only --------------------------------------------------------------------------------

def test_volumes_from_shares_volumes_rw_and_ro(daemon, made):
    d = daemon
    vol = made.volume()
    src = made.run("-d", "-v", f"{vol}:/data", "-v", "/anon", BUSYBOX, "sh", "-c",
                   "echo from-src > /data/f; echo a > /anon/a; touch /data/ready; exec sleep 300")
    made.volume(mounts(d, src.name)["/anon"]["Name"])
    wait_for(lambda: os.path.exists(os.path.join(mountpoint(d, vol), "ready")), 10, what="the source's files")

    r = made.run("--volumes-from", src.name, BUSYBOX, "sh", "-c", "cat /data/f /anon/a; echo more >> /data/f")
    assert out(r) == "from-src\na\n"
    assert out(sh(d, src.name, "cat /data/f")) == "from-src\nmore\n", "the source sees the writes"
    ms = mounts(d, r.name)
    assert {p: (m["Name"], m["RW"]) for p, m in ms.items()} == {
        "/data": (vol, True), "/anon": (mounts(d, src.name)["/anon"]["Name"], True)}
    assert inspect(d, r.name)["HostConfig"]["VolumesFrom"] == [src.name]

    ro = made.run("--volumes-from", f"{src.name}:ro", BUSYBOX, "sh", "-c",
                  "cat /data/f; echo x >> /data/f; echo y > /anon/b", check=False)
    assert ro.returncode == 1 and out(ro) == "from-src\nmore\n"
    assert "can't create /data/f: Read-only file system" in err(ro)
    assert "can't create /anon/b: Read-only file system" in err(ro)
    assert {p: m["RW"] for p, m in mounts(d, ro.name).items()} == {"/data": False, "/anon": False}
    assert inspect(d, ro.name)["HostConfig"]["VolumesFrom"] == [f"{src.name}:ro"]

    # from a stopped container too
    d.cli("stop", "-t", "0", src.name)
    r = made.run("--rm", "--volumes-from", src.name, BUSYBOX, "cat", "/anon/a")
    assert out(r) == "a\n"

    missing = uniq("no-such")
    before = (volume_names(d), container_names(d))
    r = d.cli("run", "--rm", "--volumes-from", missing, BUSYBOX, "true", check=False)
    assert r.returncode == 125 and f"No such container: {missing}" in err(r), err(r)
    assert (volume_names(d), container_names(d)) == before


SIZE_SCRIPT = ("grep ' /t ' /proc/self/mountinfo; stat -c %a /t; "
               "if dd if=/dev/zero of=/t/f bs=1k count=2048 2>/tmp/err; then echo wrote-all; else cat /tmp/err; fi; "
               "wc -c < /t/f")


@pytest.mark.parametrize("flags,mode", [
    (["--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770"], "1770"),
    (["--tmpfs", "/t:size=1m"], None),
], ids=["mount-tmpfs", "tmpfs-flag"])
def test_tmpfs_size_is_enforced(daemon, made, flags, mode):
    r = made.run("--rm", *flags, BUSYBOX, "sh", "-c", SIZE_SCRIPT)
    lines = out(r).splitlines()
    fields = lines[0].split()
    assert fields[fields.index("-") + 1] == "tmpfs" and "size=1024k" in fields[-1].split(","), lines[0]
    if mode:
        assert lines[1] == mode
    assert "wrote-all" not in lines
    assert any("No space left on device" in line for line in lines), lines
    assert int(lines[-1]) <= 1024 * 1024


def test_local_volume_with_tmpfs_options(daemon, made):
    d = daemon
    tv = made.volume()
    assert out(d.cli("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", tv)) == tv + "\n"
    assert volume(d, tv)["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
    mp = mountpoint(d, tv)
    assert host_mount(mp) is None

    r = made.run("-d", "-v", f"{tv}:/t", BUSYBOX, "sleep", "300")
    on_host = host_mount(mp)
    assert on_host is not None and on_host[on_host.index("-") + 1] == "tmpfs", on_host
    code_out = out(sh(d, r.name, "grep ' /t ' /proc/self/mountinfo"))
    assert " - tmpfs " in code_out and "size=1024k" in code_out, code_out
    w = sh(d, r.name, "echo hi > /t/f && dd if=/dev/zero of=/t/big bs=1k count=2048")
    assert w.returncode != 0 and "No space left on device" in err(w), err(w)
    assert read(os.path.join(mp, "f")) == "hi\n"

    d.cli("stop", "-t", "0", r.name)
    wait_for(lambda: host_mount(mp) is None, 10, what="the tmpfs volume to be unmounted after the container stops")
    assert os.listdir(mp) == []
    d.cli("rm", r.name)

    # --mount type=volume with volume-opt makes such a volume on first use
    mv = made.volume()
    r = made.run("--rm", "--mount", f"type=volume,source={mv},target=/v,volume-opt=type=tmpfs,"
                 "volume-opt=device=tmpfs,volume-opt=o=size=2m", BUSYBOX, "grep", " /v ", "/proc/self/mountinfo")
    assert " - tmpfs " in out(r) and "size=2048k" in out(r), out(r)
    assert volume(d, mv)["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=2m"}
    assert host_mount(mountpoint(d, mv)) is None


def test_read_only_root_with_a_writable_volume(daemon, made):
    d = daemon
    vol = made.volume()
    r = made.run("--read-only", "-v", f"{vol}:/w", "--tmpfs", "/run", BUSYBOX, "sh", "-c",
                 "echo ok > /w/f && cat /w/f; echo y > /run/y && echo tmpfs-ok; echo x > /rootfile", check=False)
    assert r.returncode == 1 and out(r) == "ok\ntmpfs-ok\n", (out(r), err(r))
    assert "can't create /rootfile: Read-only file system" in err(r)
    assert inspect(d, r.name)["HostConfig"]["ReadonlyRootfs"] is True
    assert read(os.path.join(mountpoint(d, vol), "f")) == "ok\n"


# -- binds -------------------------------------------------------------------------------------------------------------

def test_bind_mounts(daemon, made):
    d = daemon
    host = made.host_dir()
    new = os.path.join(host, "made-by-v", "sub")
    r = made.run("-v", f"{new}:/b:rw,z", BUSYBOX, "sh", "-c", "echo from-container > /b/f")
    st = os.stat(new)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755 and st.st_uid == 0, "-v makes the dir"
    assert read(os.path.join(new, "f")) == "from-container\n"
    assert mounts(d, r.name)["/b"] == {"Type": "bind", "Source": new, "Destination": "/b", "Mode": "rw,z",
                                        "RW": True, "Propagation": "rprivate"}

    write(os.path.join(host, "in.txt"), "from-host\n")
    r = made.run("--rm", "-v", f"{host}:/h", "-v", f"{host}/in.txt:/etc/in.txt:ro", BUSYBOX, "cat", "/h/in.txt",
                 "/etc/in.txt")
    assert out(r) == "from-host\nfrom-host\n"
    r = made.run("--mount", f"type=bind,source={host},target=/h,bind-propagation=rprivate", BUSYBOX, "sh", "-c",
                 "cat /h/in.txt; echo back > /h/back")
    assert out(r) == "from-host\n" and read(os.path.join(host, "back")) == "back\n"
    assert mounts(d, r.name)["/h"]["Propagation"] == "rprivate"

    # --mount refuses a missing source, makes nothing
    missing = os.path.join(host, "missing")
    before = (volume_names(d), container_names(d))
    name = uniq("vc")
    r = d.cli("run", "--name", name, "--mount", f"type=bind,source={missing},target=/y", BUSYBOX, "true",
              check=False)
    assert r.returncode == 125
    assert err(r).startswith('Error response from daemon: invalid mount config for type "bind": '
                             f"bind source path does not exist: {missing}\n"), err(r)
    assert not os.path.exists(missing)
    assert (volume_names(d), container_names(d)) == before


# -- cp ---------------------------------------------------------------------------------------------------------------

def test_cp_into_and_out_of_volumes_and_binds(daemon, made):
    d = daemon
    vol = made.volume()
    host = made.host_dir()
    bound = os.path.join(host, "bound")
    c = made.run("-d", "-v", f"{vol}:/data", "-v", f"{bound}:/bound", BUSYBOX, "sleep", "300")
    mp = mountpoint(d, vol)

    src = write(os.path.join(host, "running.txt"), "copied-running\n")
    d.cli("cp", src, f"{c.name}:/data/")
    d.cli("cp", src, f"{c.name}:/bound/in-bind.txt")
    assert read(os.path.join(mp, "running.txt")) == "copied-running\n"
    assert read(os.path.join(bound, "in-bind.txt")) == "copied-running\n"
    assert out(sh(d, c.name, "cat /data/running.txt")) == "copied-running\n"
    os.makedirs(os.path.join(host, "tree", "sub"))
    write(os.path.join(host, "tree", "sub", "g"), "deep\n")
    d.cli("cp", os.path.join(host, "tree"), f"{c.name}:/data/")
    assert read(os.path.join(mp, "tree", "sub", "g")) == "deep\n"

    write(os.path.join(mp, "host.txt"), "written-on-host\n")
    d.cli("cp", f"{c.name}:/data/host.txt", os.path.join(host, "out1.txt"))
    assert read(os.path.join(host, "out1.txt")) == "written-on-host\n"

    d.cli("stop", "-t", "0", c.name)
    src = write(os.path.join(host, "stopped.txt"), "copied-stopped\n")
    d.cli("cp", src, f"{c.name}:/data/stopped.txt")
    d.cli("cp", src, f"{c.name}:/bound/stopped.txt")
    assert read(os.path.join(mp, "stopped.txt")) == "copied-stopped\n"
    assert read(os.path.join(bound, "stopped.txt")) == "copied-stopped\n"
    d.cli("cp", f"{c.name}:/data/running.txt", os.path.join(host, "out2.txt"))
    assert read(os.path.join(host, "out2.txt")) == "copied-running\n"

    r = made.run("--rm", "-v", f"{vol}:/v", BUSYBOX, "cat", "/v/running.txt", "/v/stopped.txt", "/v/tree/sub/g")
    assert out(r) == "copied-running\ncopied-stopped\ndeep\n"


# -- berthd killed -----------------------------------------------------------------------------------------------------

def test_volume_data_survives_kill9_of_berthd(fresh_daemon):
    d = fresh_daemon
    d.cli("run", "--name", "writer", "-v", "kept:/data", BUSYBOX, "sh", "-c", "echo before-crash > /data/f")
    d.cli("run", "-d", "--name", "holder", "-v", "held:/d", BUSYBOX, "sleep", "300")
    assert d.cli("exec", "holder", "sh", "-c", "echo held-data > /d/f").returncode == 0
    d.cli("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "tv")
    gated = d.cli("run", "-d", "--name", "gated", "-v", "tv:/t", BUSYBOX, "sh", "-c",
                  "while [ ! -e /t/go ]; do sleep 0.05; done; exit 3")
    gated_id = out(gated).strip()
    tv_mp = mountpoint(d, "tv")
    assert host_mount(tv_mp) is not None
    held_id = inspect(d, "holder")["Id"]
    d.kill9()

    # while berthd is dead, the gated container exits (its tmpfs volume stays mounted: nobody undid it)
    write(os.path.join(tv_mp, "go"), "")
    wait_for(lambda: os.path.exists(os.path.join(d.exec_root, "containers", gated_id, "exit")), 15,
             what="the gated container's shim to record its exit")
    d.start()

    assert volume_names(d) == ["held", "kept", "tv"]
    r = d.cli("run", "--rm", "-v", "kept:/again", BUSYBOX, "cat", "/again/f")
    assert out(r) == "before-crash\n"
    assert out(d.cli("exec", "holder", "cat", "/d/f")) == "held-data\n"
    assert d.api("DELETE", "/volumes/held") == (409, {"message": f"remove held: volume is in use - [{held_id}]"})
    assert inspect(d, "gated")["State"]["ExitCode"] == 3
    wait_for(lambda: host_mount(tv_mp) is None, 10,
             what="the restarted berthd to unmount the tmpfs volume no running container uses")
    src = os.path.join(d.dir, "after.txt")
    write(src, "after-restart\n")
    d.cli("cp", src, "holder:/d/")
    assert read(os.path.join(mountpoint(d, "held"), "after.txt")) == "after-restart\n"
    d.cli("rm", "-f", "holder", "writer", "gated")
    assert out(d.cli("volume", "rm", "held", "kept", "tv")) == "held\nkept\ntv\n"


# -- the volume commands and the API -----------------------------------------------------------------------------------

def test_volume_commands_output(daemon, made):
    d = daemon
    t = uuid.uuid4().hex[:6]
    a, b = made.volume(f"cli-a-{t}"), made.volume(f"cli-b-{t}")
    assert out(d.cli("volume", "create", "--label", "team=blue", "--label", "tier", a)) == a + "\n"
    assert out(d.cli("volume", "create", b)) == b + "\n"
    created = volume(d, a)["CreatedAt"]
    assert out(d.cli("volume", "create", a)) == a + "\n", "an existing name gives back the existing volume"
    assert volume(d, a)["CreatedAt"] == created and volume(d, a)["Labels"] == {"team": "blue", "tier": ""}

    assert out(d.cli("volume", "ls")) == f"{LS_HEADER}\nlocal     {a}\nlocal     {b}\n"
    assert out(d.cli("volume", "ls", "-q")) == f"{a}\n{b}\n"
    rows = out(d.cli("volume", "ls", "--format", "{{.Name}}|{{.Driver}}|{{.Scope}}|{{.Mountpoint}}|{{.Labels}}"))
    first, second = rows.splitlines()
    fa = first.split("|")
    assert fa[:4] == [a, "local", "local", os.path.join(d.data_root, "volumes", a, "_data")]
    assert sorted(fa[4].split(",")) == ["team=blue", "tier="]
    assert second == f"{b}|local|local|{os.path.join(d.data_root, 'volumes', b, '_data')}|"

    def ls(*filters: str) -> list[str]:
        return out(d.cli("volume", "ls", "-q", *(x for f in filters for x in ("-f", f)))).split()

    user = made.create("-v", f"{b}:/b", BUSYBOX, "true")
    assert ls("dangling=true") == [a] and ls("dangling=false") == [b]
    assert ls("label=team=blue") == [a] and ls("label=tier") == [a] and ls("label=team=red") == []
    assert ls(f"name=cli-b-{t}") == [b] and ls(f"name={t}") == [a, b]
    assert ls("driver=local") == [a, b] and ls("driver=other") == []
    bad = d.cli("volume", "ls", "-f", "bogus=1", check=False)
    assert bad.returncode == 1 and err(bad) == "Error response from daemon: invalid filter 'bogus'\n"

    doc = json.loads(out(d.cli("volume", "inspect", a)))
    assert doc == [{"CreatedAt": created, "Driver": "local", "Labels": {"team": "blue", "tier": ""},
                    "Mountpoint": os.path.join(d.data_root, "volumes", a, "_data"), "Name": a, "Options": None,
                    "Scope": "local"}]
    when = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs(when.timestamp() - time.time()) < 120
    assert [v["Name"] for v in json.loads(out(d.cli("volume", "inspect", a, b)))] == [a, b]
    assert out(d.cli("volume", "inspect", "-f", "{{.Mountpoint}} {{.Driver}}", b)) == \
        f"{os.path.join(d.data_root, 'volumes', b, '_data')} local\n"
    missing = d.cli("volume", "inspect", "nope-" + t, check=False)
    assert (missing.returncode, out(missing), err(missing)) == \
        (1, "[]\n", f"Error response from daemon: get nope-{t}: no such volume\n")

    d.cli("rm", user)
    r = d.cli("volume", "rm", a, "nope-" + t, b, check=False)
    assert (r.returncode, out(r), err(r)) == \
        (1, f"{a}\n{b}\n", f"Error response from daemon: get nope-{t}: no such volume\n")
    r = d.cli("volume", "rm", "-f", "nope-" + t)
    assert out(r) == f"nope-{t}\n"
    assert out(d.cli("volume", "ls")) == LS_HEADER + "\n"


def test_volume_api_shapes_and_system_df(daemon, made):
    d = daemon
    name = made.volume()
    status, body = d.api("POST", "/volumes/create", {"Name": name, "Labels": {"k": "v"}, "DriverOpts": {}})
    assert status == 201, body
    assert set(body) == {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"}
    assert (body["Name"], body["Driver"], body["Scope"], body["Labels"]) == (name, "local", "local", {"k": "v"})
    assert body["Mountpoint"] == os.path.join(d.data_root, "volumes", name, "_data")
    assert os.path.isdir(body["Mountpoint"])
    assert d.api("GET", f"/volumes/{name}") == (200, body)
    status, listing = d.api("GET", "/volumes")
    assert status == 200 and listing == {"Volumes": [body], "Warnings": None}
    filters = json.dumps({"label": ["k=v"]})
    assert d.api("GET", "/volumes?" + urlencode({"filters": filters}))[1]["Volumes"] == [body]
    filters = json.dumps({"label": ["k=other"]})
    assert d.api("GET", "/volumes?" + urlencode({"filters": filters}))[1]["Volumes"] == []

    # usage: 1500 bytes written, two containers (one running) referencing it
    made.run("-v", f"{name}:/d", BUSYBOX, "sh", "-c", "dd if=/dev/zero of=/d/f bs=1500 count=1 2>/dev/null")
    made.run("-d", "-v", f"{name}:/d", BUSYBOX, "sleep", "300")
    status, df = d.api("GET", "/system/df")
    assert status == 200
    assert df["Volumes"] == [{**body, "UsageData": {"Size": 1500, "RefCount": 2}}]
    text = out(d.cli("system", "df", "-v"))
    section = text.split("Local Volumes space usage:\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert re.split(r"\s{2,}", section[0]) == ["VOLUME NAME", "LINKS", "SIZE"]
    assert [re.split(r"\s{2,}", row) for row in section[1:]] == [[name, "2", "1.5kB"]]

    assert d.api("DELETE", f"/volumes/{name}")[0] == 409
    for c in list(made.containers):
        d.api("DELETE", f"/containers/{c}?force=1")
    assert d.api("DELETE", f"/volumes/{name}", raw=True) == (204, b"")
    assert d.api("GET", f"/volumes/{name}") == (404, {"message": f"get {name}: no such volume"})
    assert d.api("DELETE", f"/volumes/{name}") == (404, {"message": f"get {name}: no such volume"})
    assert d.api("DELETE", f"/volumes/{name}?force=1", raw=True) == (204, b"")

    # refusals
    assert d.api("POST", "/volumes/create", {"Name": "x-" + name, "Driver": "nope"}) == \
        (404, {"message": f'create x-{name}: error looking up volume plugin nope: plugin "nope" not found'})
    assert d.api("POST", "/volumes/create", {"Name": "x-" + name, "DriverOpts": {"bogus": "1"}}) == \
        (400, {"message": f'create x-{name}: invalid option: "bogus"'})
    status, body = d.api("POST", "/volumes/create", {"Name": "b@d"})
    assert status == 400 and body["message"].startswith('create b@d: "b@d" includes invalid characters for a local '
                                                         'volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed')
    assert d.api("GET", "/volumes?" + urlencode({"filters": json.dumps({"bogus": ["1"]})})) == \
        (400, {"message": "invalid filter 'bogus'"})
    assert volume_names(d) == []


def test_unnamed_volume_create_is_anonymous(daemon, made):
    """POST /volumes/create without a Name (``docker volume create`` with no name) makes an anonymous volume:
    moby's VolumesService.Create adds the ``com.docker.volume.anonymous`` label when the name is empty, so
    ``volume prune`` (anonymous only) removes it."""
    d = daemon
    status, body = d.api("POST", "/volumes/create", {"Labels": {"mine": "1"}})
    assert status == 201, body
    name = made.volume(body["Name"])
    assert HEX64.match(name)
    pruned = d.api("POST", "/volumes/prune")[1]["VolumesDeleted"] or []
    assert (body["Labels"], name in pruned) == ({"mine": "1", ANON: ""}, True)


def test_inspect_mounts_match_docker(daemon, made):
    """The ``Mounts`` of every kind of mount, as dockerd 20.10 on this machine shows them: Mode "z" for each
    local volume set up from -v NAME or --mount type=volume (named or not), "" for -v /path and the image's
    VOLUME, the -v mode text for binds; "" for what --volumes-from copies (moby copies no Mode)."""
    d = daemon
    host = made.host_dir()
    named, mnamed = made.volume(), made.volume()
    c = made.run("-v", f"{host}/b:/b:ro,Z", "--mount", f"type=bind,source={host},target=/c,readonly",
                 "--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770", "--tmpfs", "/u:size=1m",
                 "-v", f"{named}:/data", "-v", "/anon", "--mount", "type=volume,target=/m",
                 "--mount", f"type=volume,source={mnamed},target=/n", BUSYBOX, "true")
    ms = mounts(d, c.name)
    vols = os.path.join(d.data_root, "volumes")

    def vol(name: str, dest: str, mode: str, rw: bool = True) -> dict:
        return {"Type": "volume", "Name": name, "Source": os.path.join(vols, name, "_data"), "Destination": dest,
                "Driver": "local", "Mode": mode, "RW": rw, "Propagation": ""}

    anon, manon = ms["/anon"]["Name"], ms["/m"]["Name"]
    info = inspect(d, c.name)
    assert info["HostConfig"]["Binds"] == [f"{host}/b:/b:ro,Z", f"{named}:/data"]
    assert info["HostConfig"]["Tmpfs"] == {"/u": "size=1m"}
    assert [(m["Type"], m["Target"]) for m in info["HostConfig"]["Mounts"]] == [
        ("bind", "/c"), ("tmpfs", "/t"), ("volume", "/m"), ("volume", "/n")]
    expected = {
        "/b": {"Type": "bind", "Source": f"{host}/b", "Destination": "/b", "Mode": "ro,Z", "RW": False,
               "Propagation": "rprivate"},
        "/c": {"Type": "bind", "Source": host, "Destination": "/c", "Mode": "", "RW": False,
               "Propagation": "rprivate"},
        "/t": {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": True, "Propagation": ""},
        "/data": vol(named, "/data", "z"),
        "/anon": vol(anon, "/anon", ""),
        "/m": vol(manon, "/m", "z"),
        "/n": vol(mnamed, "/n", "z"),
    }

    # ps --filter volume= by name and by destination (an exited container, with -a)
    ps = out(d.cli("ps", "-a", "--format", "{{.Names}}", "--filter", f"volume={named}"))
    assert ps == c.name + "\n"
    assert out(d.cli("ps", "-a", "--format", "{{.Names}}", "--filter", "volume=/anon")) == c.name + "\n"

    # --volumes-from copies the binds and volumes, read-only here, with no Mode. (berth leaves the tmpfs out;
    # dockerd 20.10 refuses --volumes-from a container that has a --mount tmpfs: "get: no such volume".)
    f = made.run("--volumes-from", f"{c.name}:ro", BUSYBOX, "true")
    expected_from = {
        "/b": {"Type": "bind", "Source": f"{host}/b", "Destination": "/b", "Mode": "", "RW": False,
               "Propagation": "rprivate"},
        "/c": {"Type": "bind", "Source": host, "Destination": "/c", "Mode": "", "RW": False,
               "Propagation": "rprivate"},
        "/data": vol(named, "/data", "", rw=False),
        "/anon": vol(anon, "/anon", "", rw=False),
        "/m": vol(manon, "/m", "", rw=False),
        "/n": vol(mnamed, "/n", "", rw=False),
    }
    assert (ms, mounts(d, f.name)) == (expected, expected_from)


# -- bad input ---------------------------------------------------------------------------------------------------------

NAME_RULE = ('includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. '
             "If you intended to pass a host directory, use absolute path")


def test_bad_input_is_refused_and_creates_nothing(daemon, made):
    d = daemon
    host = made.host_dir()
    nx = os.path.join(host, "not-made")
    cases = [
        (["-v", "rel/x:/y"], f'create rel/x: "rel/x" {NAME_RULE}'),
        (["-v", f"{nx}:y"], f"invalid volume specification: '{nx}:y': invalid mount config for type \"bind\": "
                            "invalid mount path: 'y' mount path must be absolute"),
        (["-v", f"{nx}:/y:rw,ro"], "invalid mode: rw,ro"),
        (["-v", "okname:/y:bogus"], "invalid mode: bogus"),
        (["--mount", "type=foo,target=/y"], 'invalid mount config for type "foo": mount type unknown'),
        (["--mount", "type=volume,source=okname,target=y"],
         "invalid mount config for type \"volume\": invalid mount path: 'y' mount path must be absolute"),
        (["-v", "b@d:/y"], f'create b@d: "b@d" {NAME_RULE}'),
        (["--mount", "type=volume,source=b@d,target=/y"], f'create b@d: "b@d" {NAME_RULE}'),
        (["-v", f"{nx}:/proc"], 'invalid mount config for type "bind": "/proc" cannot be mounted because it is not '
                                "of type proc"),
        (["-v", f"{nx}:/proc/sys/x"], 'invalid mount config for type "bind": "/proc/sys/x" cannot be mounted '
                                      "because it is inside /proc"),
        (["-v", "okname:/y", "-v", "okname2:/y"], "Duplicate mount point: /y"),
    ]
    before = (volume_names(d), container_names(d))
    for flags, message in cases:
        name = uniq("vc")
        r = d.cli("run", "--name", name, *flags, BUSYBOX, "true", check=False)
        assert r.returncode == 125, (flags, err(r))
        assert err(r).startswith(f"Error response from daemon: {message}\n"), (flags, err(r))
        assert (volume_names(d), container_names(d)) == before, flags
        assert not os.path.exists(nx), flags
    # the CLI refuses an unknown --mount option itself
    r = d.cli("run", "--rm", "--mount", f"type=bind,source={host},target=/y,foo=bar", BUSYBOX, "true", check=False)
    assert r.returncode == 125 and "unexpected key 'foo' in 'foo=bar'" in err(r), err(r)
    r = d.cli("volume", "create", "b@d", check=False)
    assert (r.returncode, err(r)) == (1, f'Error response from daemon: create b@d: "b@d" {NAME_RULE}\n')
    r = d.cli("volume", "create", "-o", "bogus=1", "okname", check=False)
    assert (r.returncode, err(r)) == (1, 'Error response from daemon: create okname: invalid option: "bogus"\n')

    # the same through the API: 400, nothing made
    api_cases = [
        {"Binds": ["rel/x:/y"]}, {"Binds": [f"{nx}:y"]}, {"Binds": [f"{nx}:/y:rw,ro"]}, {"Binds": [f"{nx}:/proc"]},
        {"Mounts": [{"Type": "foo", "Target": "/y"}]},
        {"Mounts": [{"Type": "bind", "Source": nx, "Target": "/y"}]},
        {"Mounts": [{"Type": "volume", "Source": "okname", "Target": "/y", "BindOptions": {"Propagation": "rslave"}}]},
        {"Mounts": [{"Type": "tmpfs", "Source": "x", "Target": "/y"}]},
    ]
    for hc in api_cases:
        status, body = d.api("POST", f"/containers/create?name={uniq('vc')}",
                             {"Image": BUSYBOX, "Cmd": ["true"], "HostConfig": hc})
        assert status == 400, (hc, status, body)
        assert (volume_names(d), container_names(d)) == before, hc
        assert not os.path.exists(nx), hc
    status, body = d.api("POST", "/containers/create", {"Image": BUSYBOX, "Cmd": ["true"], "Volumes": {"rel": {}}})
    assert status == 400, body
    assert (volume_names(d), container_names(d)) == before
