"""docker-py 7.2 (``import docker``) against berthd.

docker-py's ``containers.run`` pulls an image that the daemon says it lacks; ``run_local`` below refuses to
call it unless the image is already in berthd, so nothing here can reach a registry.

Needs root, runc and busybox (the ``daemon`` fixture skips otherwise).
"""
from __future__ import annotations

import uuid
from urllib.parse import quote

import docker
import pytest

from tests.support.made import Made as BaseMade
from tests.support.daemon import wait_for

BUSYBOX = "busybox:latest"

pytestmark = pytest.mark.root


def uniq(prefix: str = "compat-py") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def image_exists(daemon, ref: str) -> bool:
    return daemon.api("GET", f"/images/{quote(ref, safe='')}/json")[0] == 200


class Made(BaseMade):
    def name(self) -> str:
        n = uniq()
        self.containers.append(n)
        return n


def run_local(daemon, client, image: str, *args, **kwargs):
    """``client.containers.run`` only for an image berthd already has (so docker-py never pulls)."""
    assert image_exists(daemon, image), f"{image} is not in berthd; refusing to let docker-py pull it"
    return client.containers.run(image, *args, **kwargs)


def test_run_remove_returns_output(daemon, client, made):
    name = made.name()
    assert run_local(daemon, client, BUSYBOX, "echo hi", remove=True, name=name) == b"hi\n"
    wait_for(lambda: daemon.api("GET", f"/containers/{name}/json")[0] == 404, 10, what="auto-removal")


def test_run_nonzero_exit_raises_container_error(daemon, client, made):
    with pytest.raises(docker.errors.ContainerError) as info:
        run_local(daemon, client, BUSYBOX, ["sh", "-c", "echo oops >&2; exit 3"], name=made.name())
    assert info.value.exit_status == 3
    assert b"oops" in info.value.stderr


def test_detached_logs_reload_stop_wait_remove(daemon, client, made):
    name = made.name()
    c = run_local(daemon, client, BUSYBOX, ["sh", "-c", "echo hello; sleep 100"], detach=True, name=name)
    assert isinstance(c, docker.models.containers.Container)
    assert c.name == name and len(c.id) == 64

    wait_for(lambda: b"hello" in c.logs(), 10, what="the container's first line in logs()")
    assert c.logs() == b"hello\n"
    c.reload()
    assert c.status == "running"
    assert c.attrs["State"]["Pid"] > 0
    assert c.image.id == client.images.get(BUSYBOX).id

    c.stop(timeout=1)
    result = c.wait(timeout=10)
    assert result["StatusCode"] == 137
    c.reload()
    assert c.status == "exited"
    assert c.attrs["State"]["ExitCode"] == 137

    c.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(name)


def test_wait_returns_exit_code(daemon, client, made):
    c = run_local(daemon, client, BUSYBOX, ["sh", "-c", "sleep 0.2; exit 7"], detach=True, name=made.name())
    assert c.wait(timeout=10)["StatusCode"] == 7
    assert c.wait(timeout=10)["StatusCode"] == 7  # again, once exited
    c.reload()
    assert c.status == "exited"


def test_list_with_label_filter_and_get(daemon, client, made):
    key = "compat.test." + uuid.uuid4().hex[:8]
    wanted, other = made.name(), made.name()
    assert image_exists(daemon, BUSYBOX)
    a = client.containers.create(BUSYBOX, "true", name=wanted, labels={key: "y"})
    b = client.containers.create(BUSYBOX, "true", name=other, labels={key: "n"})

    found = client.containers.list(all=True, filters={"label": f"{key}=y"})
    assert [c.id for c in found] == [a.id]
    assert found[0].labels == {key: "y"}
    both = client.containers.list(all=True, filters={"label": key})
    assert sorted(c.id for c in both) == sorted([a.id, b.id])
    # created containers are not running: without all=True they are not listed
    assert client.containers.list(filters={"label": key}) == []

    got = client.containers.get(wanted)
    assert got.id == a.id and got.name == wanted and got.status == "created"
    assert client.containers.get(a.id[:12]).id == a.id


def test_images_list_and_get(daemon, client):
    img = client.images.get(BUSYBOX)
    assert img.id.startswith("sha256:") and len(img.id) == 71
    assert BUSYBOX in img.tags
    assert img.short_id == img.id[:19]
    assert img.attrs["Config"]["Cmd"] == ["sh"]
    assert img.id in [i.id for i in client.images.list()]
    assert any(BUSYBOX in i.tags for i in client.images.list(name="busybox"))


def test_image_save_and_load(daemon, client, made):
    ref = made.image(f"compat/pysave:{uuid.uuid4().hex[:8]}")
    bb = client.images.get(BUSYBOX)
    assert bb.tag(ref) is True
    data = b"".join(client.images.get(ref).save(named=True))
    assert len(data) > 100_000
    client.images.remove(ref)
    assert not image_exists(daemon, ref)

    loaded = client.images.load(data)
    assert [i.id for i in loaded] == [bb.id]
    assert ref in client.images.get(ref).tags
    assert client.images.get(ref).id == bb.id


def test_not_found_errors(daemon, client):
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("nope")
    with pytest.raises(docker.errors.NotFound) as info:
        client.containers.get("nope")
    assert info.value.status_code == 404
    assert "No such container" in str(info.value.explanation)


def test_name_conflict_is_409(daemon, client, made):
    name = made.name()
    assert image_exists(daemon, BUSYBOX)
    client.containers.create(BUSYBOX, "true", name=name)
    with pytest.raises(docker.errors.APIError) as info:
        client.containers.create(BUSYBOX, "true", name=name)
    assert info.value.status_code == 409
    assert "is already in use" in str(info.value.explanation)


def test_version_ping_info(daemon, client):
    v = client.api.version()
    assert v["ApiVersion"] == "1.45"
    assert v["Os"] == "linux"
    assert client.version()["ApiVersion"] == "1.45"
    assert client.ping() is True
    info = client.info()
    assert info["Images"] >= 1
    assert {"Containers", "ContainersRunning", "ContainersStopped"} <= set(info)
