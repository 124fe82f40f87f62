"""The real docker CLI (client 28.2.2) against berthd's volumes and mounts: ``docker volume create/ls/inspect/rm/
prune``, ``docker run -v/--mount/--tmpfs/--volumes-from/--read-only``, ``Mounts`` in inspect, ``docker system df -v``,
``docker cp`` into a volume, and Docker's error texts for what the daemon refuses.

What Docker does is taken from moby 26-28's sources (volume/service, volume/local, volume/mounts/linux_parser.go,
daemon/volumes.go) and, where a test says so, from dockerd 20.10 (../shared/peers) on this machine, whose volume
code is the same.

Nothing here reaches a registry (every ``docker run``/``create`` is ``--pull=never`` on the ``daemon`` fixture's local
busybox) and nothing here sends network traffic. Volumes, containers and host directories each test makes are removed
at its end; prunes are scoped with a label of the test's own, so they never touch another test's volumes.

Needs root, runc and busybox (the ``daemon`` fixture skips otherwise).
"""
from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import datetime, timezone

import pytest

from tests.support.daemon import wait_for
from tests.support.dockercli import err, out, refused, run
from tests.support.nets import bridged_daemon, uniq
from tests.support.vols import ANON, BAD_NAME, HEX64, VolumesMade, mountpoint, volume_exists

pytestmark = pytest.mark.root


class Made(VolumesMade):
    prefix = "cvol"


def create(daemon, *args: str) -> str:
    p = daemon.docker("create", "--pull=never", *args, check=False)
    assert p.returncode == 0, err(p)
    return out(p).strip()


def ok(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 0, (p.args, out(p), err(p))
    return out(p)


def volume_names(daemon, *filters: str) -> list[str]:
    args = [a for f in filters for a in ("--filter", f)]
    return ok(daemon.docker("volume", "ls", "-q", *args, check=False)).split()


def inspect_volume(daemon, name: str) -> dict:
    items = json.loads(ok(daemon.docker("volume", "inspect", name, check=False)))
    assert len(items) == 1
    return items[0]


def mounts_of(daemon, container: str) -> dict[str, dict]:
    """``{{json .Mounts}}`` by destination (Docker lists them in map order)."""
    items = json.loads(ok(daemon.docker("inspect", "-f", "{{json .Mounts}}", container, check=False)))
    by_dest = {m["Destination"]: m for m in items}
    assert len(by_dest) == len(items), items
    return by_dest


@pytest.fixture(scope="module")
def daemon():
    """This module's own berthd (see ``tests.support.nets.bridged_daemon``); it overrides the session ``daemon``
    fixture in this module, so ``made`` uses it."""
    yield from bridged_daemon()


# --- docker volume create / inspect / ls / rm ---------------------------------------------------------------


def test_volume_create_with_labels_and_options_then_inspect_and_rm(daemon, made):
    name = made.volume()
    p = daemon.docker("volume", "create", "--label", "tier=db", "-o", "type=tmpfs", "-o", "device=tmpfs",
                      "-o", "o=size=1m", name, check=False)
    assert (p.returncode, out(p)) == (0, f"{name}\n"), err(p)

    v = inspect_volume(daemon, name)
    assert v["Name"] == name and v["Driver"] == "local" and v["Scope"] == "local"
    assert v["Labels"] == {"tier": "db"}
    assert v["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
    assert v["Mountpoint"] == mountpoint(daemon, name)
    assert os.path.isdir(v["Mountpoint"])
    created = datetime.fromisoformat(v["CreatedAt"])
    assert created.tzinfo is not None and abs((datetime.now(timezone.utc) - created).total_seconds()) < 120

    p = daemon.docker("volume", "inspect", "-f", "{{.Mountpoint}}", name, check=False)
    assert (p.returncode, out(p)) == (0, mountpoint(daemon, name) + "\n"), err(p)
    p = daemon.docker("volume", "inspect", "-f", '{{.Driver}} {{.Scope}} {{index .Labels "tier"}} {{.Options.o}}',
                      name, check=False)
    assert (p.returncode, out(p)) == (0, "local local db size=1m\n"), err(p)

    # the local driver's options are applied when a container uses the volume: a 1 MiB tmpfs
    p = run(daemon, "--rm", "-v", f"{name}:/data", "busybox", "sh", "-c", "grep ' /data ' /proc/mounts")
    assert p.returncode == 0, err(p)
    assert out(p).startswith("tmpfs /data tmpfs ") and "size=1024k" in out(p), out(p)

    # creating an existing name again gives the same volume back
    p = daemon.docker("volume", "create", name, check=False)
    assert (p.returncode, out(p)) == (0, f"{name}\n"), err(p)
    assert inspect_volume(daemon, name)["CreatedAt"] == v["CreatedAt"]

    p = daemon.docker("volume", "rm", name, check=False)
    assert (p.returncode, out(p)) == (0, f"{name}\n"), err(p)
    assert not os.path.exists(os.path.dirname(mountpoint(daemon, name)))
    p = daemon.docker("volume", "inspect", name, check=False)
    assert p.returncode == 1
    assert err(p) == f"Error response from daemon: get {name}: no such volume\n"


def test_volume_create_without_name_is_anonymous(daemon, made):
    """moby's VolumesService.Create: no name → a random 64-hex name and the ``com.docker.volume.anonymous`` label,
    so ``volume prune`` (anonymous volumes only, API >= 1.42) removes it."""
    label = "cvol-anon=" + uuid.uuid4().hex[:8]
    name = made.adopt(ok(daemon.docker("volume", "create", "--label", label, check=False)).strip())
    assert HEX64.match(name), name
    v = inspect_volume(daemon, name)
    assert v["Labels"] == {label.split("=")[0]: label.split("=")[1], ANON: ""}

    p = daemon.docker("volume", "prune", "-f", "--filter", f"label={label}", check=False)
    assert p.returncode == 0, err(p)
    assert out(p).splitlines()[:2] == ["Deleted Volumes:", name], out(p)
    assert not volume_exists(daemon, name)


def test_volume_create_bad_name(daemon, made):
    for bad in ("a b", "rel/dir", "bad!name", "_under"):
        p = daemon.docker("volume", "create", bad, check=False)
        assert (p.returncode, out(p)) == (1, "")
        assert err(p) == f"Error response from daemon: {BAD_NAME.format(bad)}\n"
    assert volume_names(daemon, "name=dir") == []


def test_volume_create_bad_option_and_unknown_driver(daemon, made):
    """moby wraps the local driver's and the driver lookup's errors in the store's OpErr ("create NAME: ...");
    dockerd 20.10 here prints the same texts."""
    name = made.volume()
    p = daemon.docker("volume", "create", "-o", "bogus=1", name, check=False)
    assert (p.returncode, out(p)) == (1, "")
    assert err(p) == f'Error response from daemon: create {name}: invalid option: "bogus"\n'
    p = daemon.docker("volume", "create", "--driver", "no-such-driver", name, check=False)
    assert (p.returncode, out(p)) == (1, "")
    assert err(p) == (f"Error response from daemon: create {name}: error looking up volume plugin no-such-driver: "
                      'plugin "no-such-driver" not found\n')
    assert not volume_exists(daemon, name)


def test_volume_ls_quiet_filters_and_format(daemon, made):
    label = "cvol-ls=" + uuid.uuid4().hex[:8]
    key = label.split("=")[0]
    a, b, used = made.volume(), made.volume(), made.volume()
    ok(daemon.docker("volume", "create", "--label", label, a, check=False))
    ok(daemon.docker("volume", "create", "--label", f"{key}=other", b, check=False))
    ok(daemon.docker("volume", "create", used, check=False))
    create(daemon, "--name", made.name(), "-v", f"{used}:/data", "busybox", "true")  # created, never started

    lines = ok(daemon.docker("volume", "ls", check=False)).splitlines()
    assert lines[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert {(d, n) for d, n in (line.split() for line in lines[1:])} >= {("local", a), ("local", b), ("local", used)}

    assert set(volume_names(daemon)) >= {a, b, used}
    assert volume_names(daemon, f"name={a}") == [a]
    assert volume_names(daemon, f"label={label}") == [a]
    assert sorted(volume_names(daemon, f"label={key}")) == sorted([a, b])
    assert sorted(volume_names(daemon, f"label={key}", "dangling=true")) == sorted([a, b])
    assert used not in volume_names(daemon, "dangling=true")
    dangling_false = volume_names(daemon, "dangling=false")
    assert used in dangling_false and a not in dangling_false and b not in dangling_false
    assert volume_names(daemon, "driver=local", f"name={a}") == [a]

    p = daemon.docker("volume", "ls", "--filter", f"name={a}", "--format",
                      "{{.Name}}|{{.Driver}}|{{.Scope}}|{{.Labels}}|{{.Mountpoint}}", check=False)
    assert (p.returncode, out(p)) == (0, f"{a}|local|local|{label}|{mountpoint(daemon, a)}\n"), err(p)
    row = json.loads(ok(daemon.docker("volume", "ls", "--filter", f"name={a}", "--format", "json", check=False)))
    assert (row["Name"], row["Driver"], row["Scope"], row["Labels"], row["Mountpoint"]) == (
        a, "local", "local", label, mountpoint(daemon, a))


def test_volume_ls_name_filter_is_a_regexp(daemon, made):
    """moby filters volume names with ``filters.Args.Match``: each value is a regular expression (dockerd 20.10
    here: ``name=^PREFIX`` and ``name=SUFFIX$`` match)."""
    name = made.volume("cvolre")
    ok(daemon.docker("volume", "create", name, check=False))
    assert volume_names(daemon, f"name={name[:8]}") == [name]
    assert volume_names(daemon, "name=^cvolre-") == [name]
    assert volume_names(daemon, f"name={name[-4:]}$") == [name]
    assert volume_names(daemon, f"name=^{name[-4:]}") == []


def test_volume_ls_bad_filters(daemon, made):
    """Filters are checked before any volume is looked at: the answer is the same with no volume and with one.
    (filters.Args.GetBoolOrDefault prints a bad value as a Go slice.)"""
    for _ in ("as the daemon is", "with a volume"):
        p = daemon.docker("volume", "ls", "--filter", "bogus=1", check=False)
        assert (p.returncode, out(p)) == (1, "")
        assert err(p) == "Error response from daemon: invalid filter 'bogus'\n"
        p = daemon.docker("volume", "ls", "--filter", "dangling=maybe", check=False)
        assert (p.returncode, out(p)) == (1, ""), "dangling=maybe accepted"
        assert err(p) == "Error response from daemon: invalid filter 'dangling=[maybe]'\n"
        ok(daemon.docker("volume", "create", made.volume(), check=False))


def test_volume_rm_in_use_missing_and_force(daemon, made):
    name = made.volume()
    ok(daemon.docker("volume", "create", name, check=False))
    c = made.name()
    cid = create(daemon, "--name", c, "-v", f"{name}:/data", "busybox", "true")

    for force in ([], ["-f"]):  # -f forgives a missing volume, never one in use
        p = daemon.docker("volume", "rm", *force, name, check=False)
        assert (p.returncode, out(p)) == (1, "")
        assert err(p) == f"Error response from daemon: remove {name}: volume is in use - [{cid}]\n"
    assert volume_exists(daemon, name)

    ok(daemon.docker("rm", c, check=False))
    p = daemon.docker("volume", "rm", name, check=False)
    assert (p.returncode, out(p)) == (0, f"{name}\n"), err(p)

    p = daemon.docker("volume", "rm", name, check=False)
    assert (p.returncode, out(p)) == (1, "")
    assert err(p) == f"Error response from daemon: get {name}: no such volume\n"
    p = daemon.docker("volume", "rm", "-f", name, check=False)
    assert (p.returncode, out(p), err(p)) == (0, f"{name}\n", "")


def test_volume_prune_anonymous_then_all(daemon, made):
    """``prune -f`` removes unused anonymous volumes only; ``-a`` unused named ones too; a volume a container uses
    (even a stopped one) is never pruned. Scoped to this test's label."""
    label = "cvol-prune=" + uuid.uuid4().hex[:8]
    named, used = made.volume(), made.volume()
    for v in (named, used):
        ok(daemon.docker("volume", "create", "--label", label, v, check=False))
    create(daemon, "--name", made.name(), "-v", f"{used}:/data", "busybox", "true")
    # an anonymous volume with the label (--mount volume-label), 6 bytes in it, left behind by `docker rm` (no -v)
    c = made.name()
    ok(run(daemon, "--name", c, "--mount", f"type=volume,target=/anon,volume-label={label}", "busybox", "sh", "-c",
           "echo 12345 > /anon/f"))
    anon = mounts_of(daemon, c)["/anon"]["Name"]
    assert HEX64.match(anon)
    made.adopt(anon)
    assert inspect_volume(daemon, anon)["Labels"] == {label.split("=")[0]: label.split("=")[1], ANON: ""}
    ok(daemon.docker("rm", c, check=False))
    assert volume_exists(daemon, anon)

    p = daemon.docker("volume", "prune", "-f", "--filter", f"label={label}", check=False)
    assert (p.returncode, out(p)) == (0, f"Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 6B\n"), err(p)
    assert sorted(volume_names(daemon, f"label={label}")) == sorted([named, used])

    p = daemon.docker("volume", "prune", "-a", "-f", "--filter", f"label={label}", check=False)
    assert (p.returncode, out(p)) == (0, f"Deleted Volumes:\n{named}\n\nTotal reclaimed space: 0B\n"), err(p)
    assert volume_names(daemon, f"label={label}") == [used]

    p = daemon.docker("volume", "prune", "-a", "-f", "--filter", f"label={label}", check=False)
    assert (p.returncode, out(p)) == (0, "Total reclaimed space: 0B\n"), err(p)


def test_v_without_a_source_makes_an_anonymous_volume(daemon, made):
    """``-v /anon`` makes an anonymous volume (a 64-hex name and the ``com.docker.volume.anonymous`` label), which
    ``docker rm`` without -v leaves dangling: what ``volume prune`` (anonymous volumes only) removes."""
    c = made.name()
    ok(run(daemon, "--name", c, "-v", "/anon", "busybox", "true"))
    anon = made.adopt(mounts_of(daemon, c)["/anon"]["Name"])
    assert HEX64.match(anon)
    assert inspect_volume(daemon, anon)["Labels"] == {ANON: ""}
    ok(daemon.docker("rm", c, check=False))
    assert anon in volume_names(daemon, "dangling=true", f"label={ANON}")


def test_volume_prune_keeps_volumes_with_driver_options(daemon, made):
    """moby's VolumesService.Prune skips volumes with options (``len(Options()) == 0``): pruning a tmpfs or a
    bind-by-options volume would reclaim nothing. dockerd 20.10 here keeps them too."""
    label = "cvol-pruneopts=" + uuid.uuid4().hex[:8]
    plain, opts = made.volume(), made.volume()
    ok(daemon.docker("volume", "create", "--label", label, plain, check=False))
    ok(daemon.docker("volume", "create", "--label", label, "-o", "type=tmpfs", "-o", "device=tmpfs", opts,
                     check=False))
    p = daemon.docker("volume", "prune", "-a", "-f", "--filter", f"label={label}", check=False)
    assert (p.returncode, out(p)) == (0, f"Deleted Volumes:\n{plain}\n\nTotal reclaimed space: 0B\n"), err(p)
    assert volume_names(daemon, f"label={label}") == [opts]


# --- docker run with volumes and mounts ---------------------------------------------------------------------


def test_named_volume_outlives_its_containers(daemon, made):
    name = made.volume()
    assert not volume_exists(daemon, name)
    p = run(daemon, "--rm", "-v", f"{name}:/data", "busybox", "sh", "-c", "echo x > /data/f")
    assert (p.returncode, out(p)) == (0, ""), err(p)
    assert volume_exists(daemon, name)  # -v NAME:... made it
    assert name in volume_names(daemon, "dangling=true")  # --rm keeps named volumes
    with open(os.path.join(mountpoint(daemon, name), "f")) as f:
        assert f.read() == "x\n"

    p = run(daemon, "--rm", "-v", f"{name}:/data", "busybox", "cat", "/data/f")
    assert (p.returncode, out(p)) == (0, "x\n"), err(p)

    p = run(daemon, "--rm", "-v", f"{name}:/data:ro", "busybox", "sh", "-c", "cat /data/f; echo y > /data/f")
    assert p.returncode == 1
    assert out(p) == "x\n"
    assert "can't create /data/f: Read-only file system" in err(p)

    # --read-only root, writable volume
    p = run(daemon, "--rm", "--read-only", "-v", f"{name}:/data", "busybox", "sh", "-c",
            "echo z >> /data/f && cat /data/f && ! touch /rootfile 2>/dev/null")
    assert (p.returncode, out(p)) == (0, "x\nz\n"), err(p)


def test_empty_named_volume_gets_the_image_content(daemon, made):
    name, bare = made.volume(), made.volume()
    p = run(daemon, "--rm", "-v", f"{name}:/etc", "busybox", "sh", "-c", "grep ^root: /etc/passwd")
    assert p.returncode == 0 and out(p).startswith("root:"), err(p)
    host_passwd = os.path.join(mountpoint(daemon, name), "passwd")
    st = os.stat(host_passwd)
    assert (st.st_uid, st.st_gid) == (0, 0)
    # nocopy: nothing of the image's /etc (only the mount points of /etc/hostname, hosts, resolv.conf)
    p = run(daemon, "--rm", "-v", f"{bare}:/etc:nocopy", "busybox", "ls", "-A", "/etc")
    assert p.returncode == 0, err(p)
    assert set(out(p).split()) <= {"hostname", "hosts", "resolv.conf"}, out(p)
    assert "passwd" not in os.listdir(mountpoint(daemon, bare))


def test_bind_mounts_ro_rw_and_missing_sources(daemon, made):
    host = made.host_dir()
    with open(os.path.join(host, "x"), "w") as f:
        f.write("from host\n")

    p = run(daemon, "--rm", "-v", f"{host}:/h:ro", "busybox", "sh", "-c", "cat /h/x; echo y > /h/y")
    assert p.returncode == 1
    assert out(p) == "from host\n"
    assert "can't create /h/y: Read-only file system" in err(p)
    assert not os.path.exists(os.path.join(host, "y"))

    p = run(daemon, "--rm", "-v", f"{host}:/h", "busybox", "sh", "-c", "echo y > /h/y")
    assert p.returncode == 0, err(p)
    with open(os.path.join(host, "y")) as f:
        assert f.read() == "y\n"

    # -v makes a missing host directory; --mount refuses it
    missing = os.path.join(host, "made-by-v")
    p = run(daemon, "--rm", "-v", f"{missing}:/m", "busybox", "true")
    assert p.returncode == 0, err(p)
    assert os.path.isdir(missing)
    missing2 = os.path.join(host, "refused-by-mount")
    e = refused(daemon, made, "--rm", "--mount", f"type=bind,source={missing2},target=/m")
    assert e.startswith("docker: Error response from daemon: invalid mount config for type \"bind\": "
                        f"bind source path does not exist: {missing2}\n"), e
    assert not os.path.exists(missing2)


def test_tmpfs_mounts_have_their_size(daemon, made):
    p = run(daemon, "--rm", "--mount", "type=tmpfs,target=/t,tmpfs-size=1m", "busybox", "sh", "-c",
            "grep ' /t ' /proc/mounts; dd if=/dev/zero of=/t/f bs=1k count=2048")
    assert p.returncode == 1
    line = out(p).splitlines()[0].split()
    assert line[:3] == ["tmpfs", "/t", "tmpfs"] and "size=1024k" in line[3].split(","), out(p)
    assert "No space left on device" in err(p)

    p = run(daemon, "--rm", "--tmpfs", "/t2:size=512k", "busybox", "sh", "-c",
            "grep ' /t2 ' /proc/mounts; dd if=/dev/zero of=/t2/f bs=1k count=400 2>/dev/null && echo fits")
    assert p.returncode == 0, err(p)
    first, second = out(p).splitlines()
    assert first.split()[:3] == ["tmpfs", "/t2", "tmpfs"] and "size=512k" in first.split()[3].split(","), out(p)
    assert second == "fits"


def test_volumes_from_shares_volumes_and_binds(daemon, made):
    name = made.volume()
    host = made.host_dir()
    with open(os.path.join(host, "x"), "w") as f:
        f.write("bound\n")
    src = made.name()
    p = run(daemon, "--name", src, "-v", f"{name}:/data", "-v", "/anon", "-v", f"{host}:/h:ro", "busybox", "sh",
            "-c", "echo named > /data/f; echo anon > /anon/f")
    assert p.returncode == 0, err(p)

    p = run(daemon, "--rm", "--volumes-from", src, "busybox", "sh", "-c",
            "cat /data/f /anon/f /h/x; echo more >> /data/f")
    assert (p.returncode, out(p)) == (0, "named\nanon\nbound\n"), err(p)
    with open(os.path.join(mountpoint(daemon, name), "f")) as f:
        assert f.read() == "named\nmore\n"

    p = run(daemon, "--rm", "--volumes-from", f"{src}:ro", "busybox", "sh", "-c", "echo no > /anon/g")
    assert p.returncode == 1
    assert "can't create /anon/g: Read-only file system" in err(p)

    missing = uniq("no-such-container")
    p = run(daemon, "--rm", "--volumes-from", missing, "busybox", "true")
    assert p.returncode == 125
    assert err(p).startswith(f"docker: Error response from daemon: No such container: {missing}\n"), err(p)


def test_rm_v_and_auto_remove_take_anonymous_volumes_only(daemon, made):
    label = "cvol-rmv=" + uuid.uuid4().hex[:8]
    named = made.volume()
    mount_anon = f"type=volume,target=/anon,volume-label={label}"

    ok(run(daemon, "--rm", "-v", f"{named}:/data", "--mount", mount_anon, "busybox", "true"))
    wait_for(lambda: volume_names(daemon, f"label={label}") == [], 10, what="--rm to remove the anonymous volume")
    assert volume_exists(daemon, named)

    kept = made.name()
    ok(run(daemon, "--name", kept, "--mount", mount_anon, "busybox", "true"))
    ok(daemon.docker("rm", kept, check=False))
    left = volume_names(daemon, f"label={label}")
    assert len(left) == 1  # plain rm keeps it
    made.adopt(left[0])

    gone = made.name()
    ok(run(daemon, "--name", gone, "-v", f"{named}:/data", "--mount", mount_anon, "busybox", "true"))
    assert len(volume_names(daemon, f"label={label}")) == 2
    ok(daemon.docker("rm", "-v", gone, check=False))
    assert volume_names(daemon, f"label={label}") == left
    assert volume_exists(daemon, named)


def test_cp_into_a_volume_path(daemon, made):
    name = made.volume()
    c = made.name()
    create(daemon, "--name", c, "-v", f"{name}:/data", "busybox", "true")  # never started
    src = os.path.join(made.host_dir(), "copied")
    with open(src, "w") as f:
        f.write("copied in\n")
    p = daemon.docker("cp", src, f"{c}:/data/", check=False)
    assert p.returncode == 0, err(p)
    with open(os.path.join(mountpoint(daemon, name), "copied")) as f:
        assert f.read() == "copied in\n"
    p = run(daemon, "--rm", "-v", f"{name}:/v", "busybox", "cat", "/v/copied")
    assert (p.returncode, out(p)) == (0, "copied in\n"), err(p)


# --- inspect, system df -------------------------------------------------------------------------------------


def test_inspect_mounts_shape(daemon, made):
    name, ro = made.volume(), made.volume()
    host = made.host_dir()
    c = made.name()
    create(daemon, "--name", c, "-v", f"{name}:/data", "-v", f"{ro}:/ro:ro", "-v", "/anon", "-v", f"{host}:/h:ro",
           "--mount", "type=tmpfs,target=/t,tmpfs-size=1m", "busybox", "true")
    m = mounts_of(daemon, c)
    anon = m["/anon"]["Name"]
    assert HEX64.match(anon)
    assert m == {
        "/data": {"Type": "volume", "Name": name, "Source": mountpoint(daemon, name), "Destination": "/data",
                  "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""},
        "/ro": {"Type": "volume", "Name": ro, "Source": mountpoint(daemon, ro), "Destination": "/ro",
                "Driver": "local", "Mode": "ro", "RW": False, "Propagation": ""},
        "/anon": {"Type": "volume", "Name": anon, "Source": mountpoint(daemon, anon), "Destination": "/anon",
                  "Driver": "local", "Mode": "", "RW": True, "Propagation": ""},
        "/h": {"Type": "bind", "Source": host, "Destination": "/h", "Mode": "ro", "RW": False,
               "Propagation": "rprivate"},
        "/t": {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": True, "Propagation": ""},
    }
    p = daemon.docker("inspect", "-f", "{{json .HostConfig.Binds}}", c, check=False)
    # the CLI sends -v binds in its map's order, not the command line's
    assert sorted(json.loads(ok(p))) == sorted([f"{name}:/data", f"{ro}:/ro:ro", f"{host}:/h:ro"])
    p = daemon.docker("inspect", "-f", "{{json .HostConfig.Mounts}}", c, check=False)
    assert json.loads(ok(p)) == [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576}}]
    p = daemon.docker("inspect", "-f", "{{json .Config.Volumes}}", c, check=False)
    assert json.loads(ok(p)) == {"/anon": {}}
    # the MOUNTS column: volume names, else sources (a tmpfs has neither)
    p = daemon.docker("ps", "-a", "--no-trunc", "--filter", f"name={c}", "--format", "{{.Mounts}}", check=False)
    assert sorted(ok(p).rstrip("\n").split(",")) == sorted([name, ro, anon, host, ""]), out(p)


def test_inspect_mode_of_mount_volumes_is_z(daemon, made):
    """daemon/volumes.go: a local volume from ``--mount type=volume`` gets Mode "z" (setBindModeIfNull), named or
    anonymous; dockerd 20.10 here shows "z" for both."""
    name = made.volume()
    c = made.name()
    create(daemon, "--name", c, "--mount", f"type=volume,source={name},target=/n", "--mount",
           "type=volume,target=/m", "busybox", "true")
    m = mounts_of(daemon, c)
    assert (m["/n"]["Mode"], m["/n"]["RW"]) == ("z", True)
    assert HEX64.match(m["/m"]["Name"])
    assert (m["/m"]["Mode"], m["/m"]["RW"]) == ("z", True)


def test_inspect_mounts_from_volumes_from(daemon, made):
    """daemon/volumes.go copies each mount point for --volumes-from without its Mode (RW from the mode asked);
    dockerd 20.10 here shows Mode "" on every copied mount."""
    name = made.volume()
    host = made.host_dir()
    src = made.name()
    create(daemon, "--name", src, "-v", f"{name}:/data", "-v", f"{host}:/h:ro", "busybox", "true")
    c = made.name()
    create(daemon, "--name", c, "--volumes-from", f"{src}:ro", "busybox", "true")
    m = mounts_of(daemon, c)
    assert m == {
        "/data": {"Type": "volume", "Name": name, "Source": mountpoint(daemon, name), "Destination": "/data",
                  "Driver": "local", "Mode": "", "RW": False, "Propagation": ""},
        "/h": {"Type": "bind", "Source": host, "Destination": "/h", "Mode": "", "RW": False,
               "Propagation": "rprivate"},
    }


def test_system_df_verbose_lists_volumes(daemon, made):
    used, idle = made.volume(), made.volume()
    ok(run(daemon, "--name", made.name(), "-v", f"{used}:/data", "busybox", "sh", "-c", "printf 123456789 > /data/f"))
    ok(daemon.docker("volume", "create", idle, check=False))

    text = ok(daemon.docker("system", "df", "-v", check=False))
    section = text.split("Local Volumes space usage:\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert section[0].split() == ["VOLUME", "NAME", "LINKS", "SIZE"]
    rows = {r.split()[0]: r.split()[1:] for r in section[1:]}
    assert rows[used] == ["1", "9B"]
    assert rows[idle] == ["0", "0B"]

    p = daemon.docker("system", "df", "--format", "{{.Type}} {{.TotalCount}}", check=False)
    counts = dict(line.rsplit(" ", 1) for line in ok(p).splitlines())
    assert int(counts["Local Volumes"]) >= 2


# --- bad specs: what the daemon refuses, as docker prints it ------------------------------------------------


def test_bad_volume_specs_are_refused_and_nothing_is_made(daemon, made):
    host = made.host_dir()
    cases = [
        (f"{host}/a:/y:rw,ro", "invalid mode: rw,ro"),
        (f"{host}/b:/y:bogus", "invalid mode: bogus"),
        (f"{host}/c:/y:z:w", f"invalid volume specification: '{host}/c:/y:z:w'"),
        (f"{host}/d:rel", f"invalid volume specification: '{host}/d:rel': invalid mount config for type \"bind\": "
                          "invalid mount path: 'rel' mount path must be absolute"),
        ("a b:/x", BAD_NAME.format("a b")),
        ("rel/dir:/x", BAD_NAME.format("rel/dir")),
    ]
    for spec, text in cases:
        e = refused(daemon, made, "-v", spec)
        assert e.startswith(f"docker: Error response from daemon: {text}\n"), (spec, e)
    assert os.listdir(host) == []  # no host directory was made for a refused spec
    assert volume_names(daemon, "name=dir") == []

    mount_cases = [
        ("type=bogus,target=/x", 'invalid mount config for type "bogus": mount type unknown'),
        ("type=tmpfs,target=rel", "invalid mount config for type \"tmpfs\": invalid mount path: 'rel' mount path "
                                  "must be absolute"),
        ("type=volume,target=/x,readonly", 'invalid mount config for type "volume": must not set ReadOnly mode '
                                           "when using anonymous volumes"),
    ]
    for spec, text in mount_cases:
        e = refused(daemon, made, "--mount", spec)
        assert e.startswith(f"docker: Error response from daemon: {text}\n"), (spec, e)


def test_specs_the_cli_refuses_itself(daemon, made):
    e = refused(daemon, made, "-v", ":/x")
    assert e.startswith("docker: invalid spec: :/x: empty section between colons\n"), e
    e = refused(daemon, made, "--mount", "type=tmpfs,target=/t,tmpfs-size=lots")
    assert "invalid value for tmpfs-size: lots" in e, e
