"""docker-py 7.2 (``import docker``) against berthd's volumes and mounts: ``client.volumes.*``, ``Volume.remove``,
``containers.run/create(volumes=..., mounts=..., volumes_from=...)``, ``attrs["Mounts"]``, and the API errors
docker-py raises, with Docker's texts and statuses.

What Docker answers is taken from moby 26-28's sources (volume/service, volume/local, volume/mounts, daemon/volumes.go,
api/server/httpstatus) and, where a test says so, from dockerd 20.10 (../shared/peers) on this machine, whose volume
code is the same.

docker-py's ``containers.run`` pulls an image the daemon says it lacks; ``run_local`` refuses to call it unless the
image is already in berthd, so nothing here can reach a registry. Nothing here sends network traffic. Prunes are
scoped with a label of the test's own.

Needs root, runc and busybox (the ``daemon`` fixture skips otherwise).
"""
from __future__ import annotations

import os
import re
import uuid
from urllib.parse import quote

import docker
import pytest
from docker.types import Mount

from tests.support.nets import bridged_daemon
from tests.support.vols import ANON, BAD_NAME, HEX64, VolumesMade, mountpoint

BUSYBOX = "busybox:latest"

pytestmark = pytest.mark.root


class Made(VolumesMade):
    prefix = "pyvol"


def image_exists(daemon, ref: str) -> bool:
    return daemon.api("GET", f"/images/{quote(ref, safe='')}/json")[0] == 200


def run_local(daemon, client, *args, **kwargs):
    """``client.containers.run(busybox, ...)``, only once berthd has busybox (so docker-py never pulls)."""
    assert image_exists(daemon, BUSYBOX), f"{BUSYBOX} is not in berthd; refusing to let docker-py pull it"
    return client.containers.run(BUSYBOX, *args, **kwargs)


def create_local(daemon, client, *args, **kwargs):
    assert image_exists(daemon, BUSYBOX)
    return client.containers.create(BUSYBOX, *args, **kwargs)


def names(volumes) -> list[str]:
    return sorted(v.name for v in volumes)


@pytest.fixture(scope="module")
def daemon():
    """This module's own berthd (see ``tests.support.nets.bridged_daemon``); it overrides the session ``daemon``
    fixture in this module, so ``made`` and ``client`` use it."""
    yield from bridged_daemon()


# --- client.volumes: create, get, list, remove, prune -------------------------------------------------------


def test_create_get_list_remove(daemon, client, made):
    name = made.volume()
    v = client.volumes.create(name, driver="local", labels={"tier": "db"},
                              driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=2m"})
    assert isinstance(v, docker.models.volumes.Volume)
    assert v.id == v.name == name
    a = v.attrs
    assert (a["Name"], a["Driver"], a["Scope"]) == (name, "local", "local")
    assert a["Labels"] == {"tier": "db"}
    assert a["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=2m"}
    assert a["Mountpoint"] == mountpoint(daemon, name)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", a["CreatedAt"])

    got = client.volumes.get(name)
    assert got.attrs == a
    # the same name again: the volume that exists, unchanged
    again = client.volumes.create(name)
    assert again.attrs == a

    assert names(client.volumes.list(filters={"name": name})) == [name]
    assert names(client.volumes.list(filters={"label": "tier=db"})) == [name]
    assert client.volumes.list(filters={"label": "tier=web"}) == []
    assert name in names(client.volumes.list(filters={"dangling": True}))
    assert name in names(client.volumes.list())
    raw = client.api.volumes(filters={"name": name})
    assert raw["Volumes"][0]["Name"] == name and not raw.get("Warnings")

    got.remove()
    assert client.volumes.list(filters={"name": name}) == []
    with pytest.raises(docker.errors.NotFound) as info:
        client.volumes.get(name)
    assert info.value.status_code == 404
    assert info.value.explanation == f"get {name}: no such volume"


def test_create_without_name_is_anonymous(daemon, client, made):
    """moby's VolumesService.Create: no name → a random 64-hex name with the ``com.docker.volume.anonymous`` label,
    which ``volumes.prune()`` (anonymous volumes only, API >= 1.42) removes."""
    label = uuid.uuid4().hex[:8]
    v = client.volumes.create(labels={"pyvol-anon": label})
    made.adopt(v.name)
    assert HEX64.match(v.name)
    assert v.attrs["Labels"] == {"pyvol-anon": label, ANON: ""}
    assert client.volumes.prune(filters={"label": f"pyvol-anon={label}"})["VolumesDeleted"] == [v.name]


def test_volume_in_use_cannot_be_removed(daemon, client, made):
    name = made.volume()
    v = client.volumes.create(name)
    c = create_local(daemon, client, ["true"], name=made.name(), volumes={name: {"bind": "/data", "mode": "rw"}})

    assert name not in names(client.volumes.list(filters={"dangling": True}))
    assert name in names(client.volumes.list(filters={"dangling": False}))
    for force in (False, True):  # (docker-py drops force; the CLI test sends -f)
        with pytest.raises(docker.errors.APIError) as info:
            v.remove(force=force)
        assert info.value.status_code == 409
        assert info.value.explanation == f"remove {name}: volume is in use - [{c.id}]"
    assert client.volumes.get(name).name == name

    c.remove()
    v.remove()
    with pytest.raises(docker.errors.NotFound) as info:
        client.api.remove_volume(name)
    assert info.value.status_code == 404
    assert info.value.explanation == f"get {name}: no such volume"
    # docker-py 7.2 never sends ``force`` (remove_volume hands its params to _url, which drops them), so a missing
    # volume is 404 with force=True too, from dockerd as from berthd; the API's own force=1 forgives it
    with pytest.raises(docker.errors.NotFound):
        client.api.remove_volume(name, force=True)
    assert daemon.api("DELETE", f"/volumes/{name}?force=1")[0] == 204


def test_prune_anonymous_then_all(daemon, client, made):
    key = "pyvol-prune"
    label = uuid.uuid4().hex[:8]
    named, used = made.volume(), made.volume()
    for n in (named, used):
        client.volumes.create(n, labels={key: label})
    keep = create_local(daemon, client, ["true"], name=made.name(), volumes={used: {"bind": "/data", "mode": "rw"}})
    # an anonymous volume with the label, left behind by a removal without v=True
    c = create_local(daemon, client, ["true"], name=made.name(),
                     mounts=[Mount(target="/anon", source="", type="volume", labels={key: label})])
    anon = next(m["Name"] for m in c.attrs["Mounts"] if m["Destination"] == "/anon")
    made.adopt(anon)
    assert HEX64.match(anon)
    assert client.volumes.get(anon).attrs["Labels"] == {key: label, ANON: ""}
    c.remove()
    assert anon in names(client.volumes.list(filters={"label": f"{key}={label}"}))

    res = client.volumes.prune(filters={"label": f"{key}={label}"})
    assert res == {"VolumesDeleted": [anon], "SpaceReclaimed": 0}
    res = client.volumes.prune(filters={"label": f"{key}={label}", "all": "true"})
    assert res == {"VolumesDeleted": [named], "SpaceReclaimed": 0}
    assert names(client.volumes.list(filters={"label": f"{key}={label}"})) == [used]
    keep.remove()


def test_prune_with_nothing_to_prune(daemon, client, made):
    """moby answers an empty list, never null (PruneReport{VolumesDeleted: make([]string, 0, ...)}); dockerd
    20.10 here too."""
    label = uuid.uuid4().hex[:8]
    assert client.volumes.prune(filters={"label": f"pyvol-none={label}"}) == {"VolumesDeleted": [],
                                                                              "SpaceReclaimed": 0}


# --- containers with volumes, binds, tmpfs ------------------------------------------------------------------


def test_run_with_a_named_volume(daemon, client, made):
    name = made.volume()
    out = run_local(daemon, client, ["sh", "-c", "echo x > /data/f && cat /data/f"],
                    volumes={name: {"bind": "/data", "mode": "rw"}}, remove=True)
    assert out == b"x\n"
    assert client.volumes.get(name).name == name  # made on first use, kept by remove=True
    out = run_local(daemon, client, ["cat", "/data/f"], volumes={name: {"bind": "/data", "mode": "ro"}}, remove=True)
    assert out == b"x\n"
    out = run_local(daemon, client, ["cat", "/data/f"], volumes=[f"{name}:/data:ro"], remove=True)  # as a list
    assert out == b"x\n"

    with pytest.raises(docker.errors.ContainerError) as info:
        run_local(daemon, client, ["sh", "-c", "echo y > /data/f"], volumes={name: {"bind": "/data", "mode": "ro"}},
                  name=made.name())
    assert info.value.exit_status == 1
    assert b"can't create /data/f: Read-only file system" in info.value.stderr
    with open(os.path.join(mountpoint(daemon, name), "f")) as f:
        assert f.read() == "x\n"


def test_run_with_binds_as_a_list(daemon, client, made):
    host = made.host_dir()
    with open(os.path.join(host, "x"), "w") as f:
        f.write("from host\n")
    out = run_local(daemon, client, ["cat", "/h/x"], volumes=[f"{host}:/h:ro"], remove=True)
    assert out == b"from host\n"
    with pytest.raises(docker.errors.ContainerError) as info:
        run_local(daemon, client, ["sh", "-c", "echo y > /h/y"], volumes=[f"{host}:/h:ro"], name=made.name())
    assert info.value.exit_status == 1
    assert b"Read-only file system" in info.value.stderr
    assert os.listdir(host) == ["x"]


def test_tmpfs_mount_size(daemon, client, made):
    mounts = [Mount(target="/t", source="", type="tmpfs", tmpfs_size="1m")]
    out = run_local(daemon, client, ["grep", " /t ", "/proc/mounts"], mounts=mounts, remove=True)
    fields = out.decode().split()
    assert fields[:3] == ["tmpfs", "/t", "tmpfs"] and "size=1024k" in fields[3].split(","), out
    with pytest.raises(docker.errors.ContainerError) as info:
        run_local(daemon, client, ["dd", "if=/dev/zero", "of=/t/f", "bs=1k", "count=2048"], mounts=mounts,
                  name=made.name())
    assert b"No space left on device" in info.value.stderr


def test_container_attrs_mounts(daemon, client, made):
    name = made.volume()
    host = made.host_dir()
    c = create_local(daemon, client, ["true"], name=made.name(),
                     volumes={name: {"bind": "/data", "mode": "rw"}, host: {"bind": "/h", "mode": "ro"}},
                     mounts=[Mount(target="/t", source="", type="tmpfs", tmpfs_size=1 << 20)])
    by_dest = {m["Destination"]: m for m in c.attrs["Mounts"]}
    assert by_dest == {
        "/data": {"Type": "volume", "Name": name, "Source": mountpoint(daemon, name), "Destination": "/data",
                  "Driver": "local", "Mode": "rw", "RW": True, "Propagation": ""},
        "/h": {"Type": "bind", "Source": host, "Destination": "/h", "Mode": "ro", "RW": False,
               "Propagation": "rprivate"},
        "/t": {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": True, "Propagation": ""},
    }
    hc = c.attrs["HostConfig"]
    assert sorted(hc["Binds"]) == sorted([f"{name}:/data:rw", f"{host}:/h:ro"])
    # moby keeps HostConfig.Mounts as Go's mount.Mount: empty Source and false ReadOnly are omitted (omitempty)
    assert hc["Mounts"] == [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20}}]
    assert c.attrs["Config"]["Volumes"] == {"/data": {}, "/h": {}}


def test_volumes_from(daemon, client, made):
    name = made.volume()
    src = run_local(daemon, client, ["sh", "-c", "echo shared > /data/f"], name=made.name(), detach=True,
                    volumes={name: {"bind": "/data", "mode": "rw"}})
    assert src.wait(timeout=30)["StatusCode"] == 0
    out = run_local(daemon, client, ["cat", "/data/f"], volumes_from=[src.id], remove=True)
    assert out == b"shared\n"
    with pytest.raises(docker.errors.ContainerError) as info:
        run_local(daemon, client, ["sh", "-c", "echo no > /data/g"], volumes_from=[f"{src.name}:ro"],
                  name=made.name())
    assert b"Read-only file system" in info.value.stderr
    c = create_local(daemon, client, ["true"], name=made.name(), volumes_from=[f"{src.name}:ro"])
    (m,) = c.attrs["Mounts"]
    assert (m["Name"], m["Destination"], m["RW"]) == (name, "/data", False)


# --- errors -------------------------------------------------------------------------------------------------


def test_bad_input_is_400(daemon, client, made):
    with pytest.raises(docker.errors.APIError) as info:
        client.volumes.create("a b")
    assert info.value.status_code == 400
    assert info.value.explanation == BAD_NAME.format("a b")

    with pytest.raises(docker.errors.APIError) as info:
        client.volumes.list(filters={"bogus": "1"})
    assert info.value.status_code == 400
    assert info.value.explanation == "invalid filter 'bogus'"

    missing = os.path.join(made.host_dir(), "missing")
    cases = [
        (Mount(target="rel", source="", type="tmpfs"),
         "invalid mount config for type \"tmpfs\": invalid mount path: 'rel' mount path must be absolute"),
        (Mount(target="/x", source=missing, type="bind"),
         f'invalid mount config for type "bind": bind source path does not exist: {missing}'),
        (Mount(target="/x", source="", type="volume", read_only=True),
         'invalid mount config for type "volume": must not set ReadOnly mode when using anonymous volumes'),
    ]
    for mount, text in cases:
        name = made.name()
        with pytest.raises(docker.errors.APIError) as info:
            create_local(daemon, client, ["true"], name=name, mounts=[mount])
        assert (info.value.status_code, info.value.explanation) == (400, text)
        assert daemon.api("GET", f"/containers/{name}/json")[0] == 404
    assert not os.path.exists(missing)


def test_bad_binds_are_refused(daemon, client, made):
    """Docker answers these with 500 (moby's ParseMountRaw errors carry no errdefs class; dockerd 20.10 here: 500
    for ``invalid mode``), except the volume name, which the local driver refuses with 400; berthd's 4xx is not
    pinned here, the texts are."""
    host = made.host_dir()
    for bind, text in [(f"{host}/a:/y:rw,ro", "invalid mode: rw,ro"),
                       (f"{host}/b:/y:z:w", f"invalid volume specification: '{host}/b:/y:z:w'")]:
        name = made.name()
        with pytest.raises(docker.errors.APIError) as info:
            create_local(daemon, client, ["true"], name=name, volumes=[bind])
        assert info.value.explanation == text
        assert daemon.api("GET", f"/containers/{name}/json")[0] == 404
    with pytest.raises(docker.errors.APIError) as info:
        create_local(daemon, client, ["true"], name=made.name(), volumes=["a b:/x"])
    assert info.value.status_code == 400
    assert info.value.explanation.startswith('create a b: "a b" includes invalid characters')
    assert os.listdir(host) == []


def test_bad_driver_options_and_unknown_driver(daemon, client, made):
    """The local driver's and the driver lookup's errors, wrapped in the store's OpErr ("create NAME: ..."), with
    their classes: InvalidParameter → 400, the plugin getter's NotFound → 404 (dockerd 20.10 here: same texts)."""
    name = made.volume()
    with pytest.raises(docker.errors.APIError) as info:
        client.volumes.create(name, driver_opts={"bogus": "1"})
    assert (info.value.status_code, info.value.explanation) == (400, f'create {name}: invalid option: "bogus"')
    with pytest.raises(docker.errors.APIError) as info:
        client.volumes.create(name, driver="no-such-driver")
    assert info.value.status_code == 404
    assert info.value.explanation == (f"create {name}: error looking up volume plugin no-such-driver: "
                                      'plugin "no-such-driver" not found')
    assert client.volumes.list(filters={"name": name}) == []
