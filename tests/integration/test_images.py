"""Images against a real berthd: import with changes, tags and list filters, history, rmi, save and load
(including hostile archives, which must leave the store exactly as it was), prune and disk usage.

Needs root, runc and busybox (the ``daemon`` fixtures skip otherwise). Nothing is pulled.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import random
import tarfile
import uuid
from urllib.parse import quote, urlencode

import pytest
from tests.support.made import Made as BaseMade

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def uniq(prefix: str = "bt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- tar building --------------------------------------------------------------------------------------------------


def _ti(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.linkname, ti.mtime = kind, mode, size, link, 1700000000
    return ti


def reg(name: str, data: bytes = b"x\n", mode: int = 0o644):
    return _ti(name, tarfile.REGTYPE, mode, len(data)), data


def dirent(name: str):
    return _ti(name, tarfile.DIRTYPE, 0o755), None


def sym(name: str, target: str):
    return _ti(name, tarfile.SYMTYPE, 0o777, link=target), None


def hardlink(name: str, target: str):
    return _ti(name, tarfile.LNKTYPE, 0o644, link=target), None


def chardev(name: str, major: int, minor: int):
    ti = _ti(name, tarfile.CHRTYPE, 0o666)
    ti.devmajor, ti.devminor = major, minor
    return ti, None


def tar_bytes(members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for ti, data in members:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def image_config(diff_ids: list[str], label: str) -> bytes:
    return json.dumps({
        "architecture": ARCH, "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["sh"], "Labels": {"bt.case": label}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-02T03:04:05Z", "created_by": f"layer {i}"} for i in range(len(diff_ids))],
    }, sort_keys=True).encode()


def docker_archive(layers: list[bytes], tags=(), diff_ids: list[str] | None = None, config: bytes | None = None,
                   config_content: bytes | None = None, extra=(), label: str | None = None) -> bytes:
    """A docker-archive (manifest.json + blobs/sha256/...) holding one image."""
    diff_ids = diff_ids if diff_ids is not None else ["sha256:" + sha(layer) for layer in layers]
    config = config if config is not None else image_config(diff_ids, label or uniq())
    cfg_name = f"blobs/sha256/{sha(config)}"
    members = [dirent("blobs"), dirent("blobs/sha256"), reg(cfg_name, config_content or config)]
    seen = set()
    for layer in layers:
        if sha(layer) not in seen:
            seen.add(sha(layer))
            members.append(reg(f"blobs/sha256/{sha(layer)}", layer))
    manifest = [{"Config": cfg_name, "RepoTags": list(tags), "Layers": [f"blobs/sha256/{sha(x)}" for x in layers]}]
    members.append(reg("manifest.json", json.dumps(manifest).encode()))
    members += list(extra)
    return tar_bytes(members)


# -- daemon helpers ------------------------------------------------------------------------------------------------


class Made(BaseMade):
    """Containers and images a test made; removed at teardown."""

    def __init__(self, daemon) -> None:
        super().__init__(daemon)
        self.host_paths = self.paths

    def import_image(self, tar: bytes, repo: str = "", tag: str = "", changes=(), message: str = "") -> str:
        q = [("fromSrc", "-"), ("repo", repo), ("tag", tag)] + [("changes", c) for c in changes]
        if message:
            q.append(("message", message))
        status, body = self.daemon.api("POST", "/images/create?" + urlencode(q), tar,
                                       {"Content-Type": "application/x-tar"}, raw=True)
        assert status == 200, (status, body, self.daemon.tail_log())
        image_id = json.loads(body.splitlines()[0])["status"]
        assert image_id.startswith("sha256:"), body
        self.images.append(image_id)
        return image_id

    def busybox_variant(self, repo: str = "", tag: str = "", label: str | None = None) -> str:
        """busybox's rootfs imported again with a unique label: a new image sharing busybox's layer."""
        with open(os.path.join(self.daemon.dir, "busybox.tar"), "rb") as f:
            return self.import_image(f.read(), repo, tag, ['CMD ["sh"]', f"LABEL bt.variant={label or uniq()}"])

    def create(self, image: str, cmd=("true",)) -> str:
        status, r = self.daemon.api("POST", "/containers/create", {"Image": image, "Cmd": list(cmd)})
        assert status == 201, (status, r, self.daemon.tail_log())
        self.containers.append(r["Id"])
        return r["Id"]


def small_rootfs(marker: str) -> bytes:
    return tar_bytes([dirent("etc"), reg(f"etc/{marker}", marker.encode() + b"\n"), reg("hello.txt", b"hello\n")])


def inspect(daemon, name: str) -> dict:
    status, body = daemon.api("GET", f"/images/{quote(name, safe='/:@')}/json")
    assert status == 200, (status, body)
    return body


def list_images(daemon, filters: dict | None = None, all_: bool = False) -> list[dict]:
    q = []
    if filters:
        q.append(("filters", json.dumps(filters)))
    if all_:
        q.append(("all", "1"))
    status, body = daemon.api("GET", "/images/json" + ("?" + urlencode(q) if q else ""))
    assert status == 200, body
    return body


def store_state(daemon) -> tuple:
    """What a failed load must not change: the image list, and every file under blobs and snapshots."""
    images = sorted((i["Id"], tuple(sorted(i["RepoTags"] or []))) for i in list_images(daemon, all_=True))
    files = set()
    for sub in ("blobs/sha256", "snapshots"):
        root = os.path.join(daemon.data_root, sub)
        for dirpath, dirnames, filenames in os.walk(root):
            for n in dirnames + filenames:
                files.add(os.path.relpath(os.path.join(dirpath, n), daemon.data_root))
    return images, files


def leftovers(daemon) -> list[str]:
    """Files a request left in berthd's scratch directories."""
    out = []
    for sub in ("tmp", "staging", "ingest"):
        d = os.path.join(daemon.data_root, sub)
        if os.path.isdir(d):
            out += [f"{sub}/{n}" for n in os.listdir(d)]
    return out


def load(daemon, data: bytes):
    return daemon.api("POST", "/images/load", data, {"Content-Type": "application/x-tar"}, raw=True)


def json_lines(raw: bytes) -> list[dict]:
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def tar_names(data: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for m in tar:
            if m.isreg():
                out[m.name] = tar.extractfile(m).read()
    return out


# -- import, inspect, tag, list ------------------------------------------------------------------------------------


def test_import_with_changes_shows_in_config(daemon, made):
    repo, label = uniq("bt-imp"), uniq()
    image_id = made.import_image(small_rootfs(label), repo, "v1", [
        'CMD ["/bin/echo", "hi there"]', "ENV FOO=bar", "ENV PATH=/usr/bin:/bin", "WORKDIR /srv/app",
        f"LABEL bt.label={label}", "LABEL com.example.two=2", "USER 65534", "EXPOSE 8080"])
    info = inspect(daemon, f"{repo}:v1")
    assert info["Id"] == image_id
    assert info["RepoTags"] == [f"{repo}:v1"]
    cfg = info["Config"]
    assert cfg["Cmd"] == ["/bin/echo", "hi there"]
    assert "FOO=bar" in cfg["Env"] and "PATH=/usr/bin:/bin" in cfg["Env"]
    assert cfg["WorkingDir"] == "/srv/app"
    assert cfg["Labels"] == {"bt.label": label, "com.example.two": "2"}
    assert cfg["User"] == "65534"
    assert cfg["ExposedPorts"] == {"8080/tcp": {}}
    assert info["Os"] == "linux"
    assert info["RootFS"]["Type"] == "layers" and len(info["RootFS"]["Layers"]) == 1
    assert info["RootFS"]["Layers"][0] == "sha256:" + sha(small_rootfs(label))
    assert info["Size"] > 0
    # by ID, short ID and sha256: prefix too
    assert inspect(daemon, image_id)["Id"] == image_id
    assert inspect(daemon, image_id[7:19])["Id"] == image_id
    assert inspect(daemon, image_id[:19])["Id"] == image_id


def test_import_with_bad_change_is_400(daemon, made):
    before = store_state(daemon)
    status, body = daemon.api("POST", "/images/create?" + urlencode(
        [("fromSrc", "-"), ("repo", uniq("bt-bad")), ("changes", "FROBNICATE yes")]),
        small_rootfs(uniq()), {"Content-Type": "application/x-tar"})
    assert status == 400, (status, body)
    assert store_state(daemon) == before


def test_tag_and_list_filters(daemon, made):
    u = uniq("bt-list")
    tagged = made.import_image(small_rootfs(u), f"{u}/a", "1", [f"LABEL bt.filter={u}", "LABEL bt.kind=tagged"])
    status, _ = daemon.api("POST", f"/images/{u}/a:1/tag?repo={u}/b&tag=2")
    assert status == 201
    dangling = made.import_image(small_rootfs(u + "-d"), changes=[f"LABEL bt.filter={u}", "LABEL bt.kind=dangling"])

    info = inspect(daemon, f"{u}/b:2")
    assert info["Id"] == tagged
    assert sorted(info["RepoTags"]) == [f"{u}/a:1", f"{u}/b:2"]

    def ids(filters):
        return {i["Id"] for i in list_images(daemon, filters)}

    assert ids({"label": [f"bt.filter={u}"]}) == {tagged, dangling}
    assert ids({"label": [f"bt.filter={u}", "bt.kind=tagged"]}) == {tagged}
    assert ids({"label": ["bt.kind"], "reference": [f"{u}/*"]}) == {tagged}
    assert ids({"reference": [f"{u}/a"]}) == {tagged}
    assert ids({"reference": [f"{u}/a:1"]}) == {tagged}
    assert ids({"reference": [f"{u}/a:2"]}) == set()
    assert ids({"reference": [f"{u}/*:2"]}) == {tagged}
    assert dangling in ids({"dangling": ["true"]})
    assert tagged not in ids({"dangling": ["true"]})
    assert ids({"dangling": ["true"], "label": [f"bt.filter={u}"]}) == {dangling}
    assert ids({"dangling": ["false"], "label": [f"bt.filter={u}"]}) == {tagged}
    # the map form Docker clients send works too
    assert {i["Id"] for i in list_images(daemon, {"label": {f"bt.filter={u}": True}})} == {tagged, dangling}

    row = next(i for i in list_images(daemon, {"label": [f"bt.filter={u}"]}) if i["Id"] == dangling)
    assert row["RepoTags"] == [] and row["Labels"]["bt.kind"] == "dangling"
    assert isinstance(row["Created"], int) and row["Size"] > 0

    status, body = daemon.api("GET", "/images/json?filters=" + quote(json.dumps({"dangling": ["maybe"]})))
    assert status == 400, body


def test_reference_filter_lists_only_matching_tags(daemon, made):
    """Docker's list shows, for a reference filter, only the tags that matched (docker images REPO)."""
    u = uniq("bt-ref")
    image_id = made.import_image(small_rootfs(u), f"{u}/a", "1")
    assert daemon.api("POST", f"/images/{u}/a:1/tag?repo={u}/b&tag=2")[0] == 201
    rows = list_images(daemon, {"reference": [f"{u}/a"]})
    assert [r["Id"] for r in rows] == [image_id]
    assert rows[0]["RepoTags"] == [f"{u}/a:1"]


def test_tag_errors(daemon, made):
    status, body = daemon.api("POST", f"/images/{uniq('nope')}:1/tag?repo=x&tag=y")
    assert status == 404 and body["message"].startswith("No such image: "), body
    status, body = daemon.api("POST", "/images/busybox:latest/tag?repo=Bad%20Repo&tag=1")
    assert status == 400, body
    status, body = daemon.api("POST", "/images/busybox:latest/tag?repo=x&tag=-bad")
    assert status == 400, body


def test_history(daemon, made):
    u = uniq("bt-hist")
    image_id = made.import_image(small_rootfs(u), u, "1")
    status, hist = daemon.api("GET", f"/images/{u}:1/history")
    assert status == 200
    assert len(hist) >= 1
    top = hist[0]
    assert top["Id"] == image_id
    assert top["Tags"] == [f"{u}:1"]
    assert isinstance(top["Created"], int) and top["Created"] > 0
    assert isinstance(top["CreatedBy"], str) and isinstance(top["Size"], int)
    assert top["Comment"] == "Imported from -"
    msg_id = made.import_image(small_rootfs(u + "m"), changes=(), message="made by the tests")
    status, hist = daemon.api("GET", f"/images/{msg_id}/history")
    assert status == 200 and hist[0]["Comment"] == "made by the tests"
    assert daemon.api("GET", f"/images/{uniq('nope')}/history")[0] == 404


# -- delete --------------------------------------------------------------------------------------------------------


def test_delete_untags_then_deletes(daemon, made):
    u = uniq("bt-rmi")
    image_id = made.import_image(small_rootfs(u), f"{u}/a", "1")
    assert daemon.api("POST", f"/images/{u}/a:1/tag?repo={u}/b&tag=2")[0] == 201
    before_files = store_state(daemon)[1]

    status, body = daemon.api("DELETE", f"/images/{u}/a:1")
    assert status == 200
    assert body == [{"Untagged": f"{u}/a:1"}]
    assert inspect(daemon, image_id)["RepoTags"] == [f"{u}/b:2"]
    assert daemon.api("GET", f"/images/{u}/a:1/json")[0] == 404

    status, body = daemon.api("DELETE", f"/images/{u}/b:2")
    assert status == 200
    assert body[0] == {"Untagged": f"{u}/b:2"}
    assert {"Deleted": image_id} in body
    assert all(set(x) <= {"Untagged", "Deleted"} for x in body), body
    assert daemon.api("GET", f"/images/{image_id}/json")[0] == 404
    assert image_id not in {i["Id"] for i in list_images(daemon, all_=True)}
    # its config blob, layer blob and snapshot are gone from disk
    after_files = store_state(daemon)[1]
    assert f"blobs/sha256/{image_id[7:]}" in before_files
    assert f"blobs/sha256/{image_id[7:]}" not in after_files
    assert f"blobs/sha256/{sha(small_rootfs(u))}" not in after_files
    assert not any(f.startswith("snapshots/tmp-") for f in after_files)
    assert len(after_files) < len(before_files)

    status, body = daemon.api("DELETE", f"/images/{u}/b:2")
    assert status == 404 and body["message"].startswith("No such image: "), body


def test_delete_by_id_with_two_tags_needs_force(daemon, made):
    u = uniq("bt-rmid")
    image_id = made.import_image(small_rootfs(u), f"{u}/a", "1")
    assert daemon.api("POST", f"/images/{u}/a:1/tag?repo={u}/b&tag=2")[0] == 201
    status, body = daemon.api("DELETE", f"/images/{image_id}")
    assert status == 409, body
    status, body = daemon.api("DELETE", f"/images/{image_id}?force=1")
    assert status == 200, body
    assert sorted(x["Untagged"] for x in body if "Untagged" in x) == [f"{u}/a:1", f"{u}/b:2"]
    assert {"Deleted": image_id} in body


def test_delete_image_used_by_container_is_409_unless_forced(daemon, made):
    u = uniq("bt-used")
    image_id = made.busybox_variant(u, "1")
    cid = made.create(f"{u}:1", ["echo", "still runs"])

    status, body = daemon.api("DELETE", f"/images/{u}:1")
    assert status == 409, body
    assert cid[:12] in body["message"], body
    assert inspect(daemon, f"{u}:1")["Id"] == image_id
    status, body = daemon.api("DELETE", f"/images/{image_id}")
    assert status == 409, body
    assert inspect(daemon, f"{u}:1")["Id"] == image_id

    status, body = daemon.api("DELETE", f"/images/{u}:1?force=1")
    assert status == 200, body
    assert body[0] == {"Untagged": f"{u}:1"}
    assert daemon.api("GET", f"/images/{u}:1/json")[0] == 404
    # the container it made still works
    assert daemon.api("POST", f"/containers/{cid}/start")[0] == 204, daemon.tail_log()
    status, w = daemon.api("POST", f"/containers/{cid}/wait")
    assert status == 200 and w["StatusCode"] == 0
    status, logs = daemon.api("GET", f"/containers/{cid}/logs?stdout=1", raw=True)
    assert logs.endswith(b"still runs\n"), logs


# -- load: hostile and broken archives -----------------------------------------------------------------------------


def _good_layer(u: str) -> bytes:
    return tar_bytes([dirent("data"), reg(f"data/good-{u}", b"good\n")])


def _second_layer(u: str, *evil) -> bytes:
    return tar_bytes([dirent("more"), reg(f"more/fine-{u}", b"fine\n"), *evil])


def _case(name: str, u: str) -> tuple[bytes, list[str]]:
    """(archive, host paths that must not appear) for one broken archive."""
    good = _good_layer(u)
    if name == "random-bytes":
        return random.Random(7).randbytes(64 * 1024), []
    if name == "empty":
        return b"", []
    if name == "gzip-garbage":
        return b"\x1f\x8b\x08\x00" + random.Random(8).randbytes(4096), []
    if name == "no-manifest":
        return tar_bytes([reg("hello.txt")]), []
    if name == "manifest-not-json":
        return tar_bytes([reg("manifest.json", b"{nope")]), []
    if name == "missing-layer":
        archive = docker_archive([good, _second_layer(u)])
        members = [(ti, data) for ti, data in _members(archive) if ti.name != f"blobs/sha256/{sha(_second_layer(u))}"]
        return tar_bytes(members), []
    if name == "dotdot":
        return docker_archive([good, _second_layer(u, reg(f"../evil-{u}"), reg(f"x/../../../evil2-{u}"))]), []
    if name == "absolute":
        return docker_archive([good, _second_layer(u, reg(f"/tmp/bt-abs-{u}"))]), [f"/tmp/bt-abs-{u}"]
    if name == "symlink-escape":
        return docker_archive([good, _second_layer(u, sym("link", "/"), reg(f"link/tmp/bt-sym-{u}"))]), \
            [f"/tmp/bt-sym-{u}"]
    if name == "relative-symlink-escape":
        return docker_archive([good, _second_layer(
            u, sym("up", "../../../../../../../../.."), reg(f"up/tmp/bt-rel-{u}"))]), [f"/tmp/bt-rel-{u}"]
    if name == "symlink-dir-escape":
        return docker_archive([good, _second_layer(u, sym("etc2", "/etc"), dirent("etc2/sub"),
                                                   reg(f"etc2/sub/bt-dir-{u}"))]), [f"/etc/sub/bt-dir-{u}"]
    if name == "hardlink-escape":
        return docker_archive([good, _second_layer(u, hardlink(f"passwd-{u}", "../../../../etc/passwd"))]), []
    if name == "device-node":
        return docker_archive([good, _second_layer(u, chardev(f"mem-{u}", 1, 1))]), []
    if name == "diff-id-mismatch":
        second = _second_layer(u)
        return docker_archive([good, second], diff_ids=["sha256:" + sha(good), "sha256:" + sha(second + b"x")]), []
    if name == "config-digest-mismatch":
        second = _second_layer(u)
        cfg = image_config(["sha256:" + sha(good), "sha256:" + sha(second)], u)
        return docker_archive([good, second], config=cfg, config_content=cfg.replace(b"layer 0", b"layer X")), []
    if name == "archive-member-dotdot":
        return docker_archive([good], extra=[reg(f"../evil-outer-{u}")]), []
    if name == "archive-member-absolute":
        return docker_archive([good], extra=[reg(f"/tmp/bt-outer-{u}")]), [f"/tmp/bt-outer-{u}"]
    raise AssertionError(name)


def _members(archive: bytes):
    out = []
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        for m in tar:
            out.append((m, tar.extractfile(m).read() if m.isreg() else None))
    return out


CASES = ["random-bytes", "empty", "gzip-garbage", "no-manifest", "manifest-not-json", "missing-layer", "dotdot",
         "absolute", "symlink-escape", "relative-symlink-escape", "symlink-dir-escape", "hardlink-escape",
         "device-node", "diff-id-mismatch", "config-digest-mismatch", "archive-member-dotdot",
         "archive-member-absolute"]


@pytest.mark.parametrize("case", CASES)
def test_load_of_broken_archive_is_400_and_changes_nothing(daemon, made, case):
    u = uniq("ev")
    archive, forbidden = _case(case, u)
    made.host_paths += forbidden
    before = store_state(daemon)
    status, body = load(daemon, archive)
    assert status == 400, (status, body[:500], daemon.tail_log())
    assert json.loads(body)["message"], body
    assert store_state(daemon) == before
    for p in forbidden:
        assert not os.path.lexists(p), f"{case}: {p} was written on the host"
    for dirpath, dirnames, filenames in os.walk(daemon.dir):
        for n in dirnames + filenames:
            assert u not in n, f"{case}: {os.path.join(dirpath, n)} is left behind"
    assert leftovers(daemon) == []


def test_load_of_well_formed_two_layer_archive(daemon, made):
    """The control for the broken cases: the same construction without the defect loads."""
    u = uniq("ok")
    good, second = _good_layer(u), _second_layer(u)
    archive = docker_archive([good, second], tags=[f"{u}:1"], label=u)
    status, body = load(daemon, archive)
    assert status == 200, (status, body, daemon.tail_log())
    assert any(f"Loaded image: {u}:1" in line.get("stream", "") for line in json_lines(body)), body
    info = inspect(daemon, f"{u}:1")
    made.images.append(info["Id"])
    assert info["Id"] == "sha256:" + sha(image_config(["sha256:" + sha(good), "sha256:" + sha(second)], u))
    assert info["RootFS"]["Layers"] == ["sha256:" + sha(good), "sha256:" + sha(second)]
    assert info["Config"]["Labels"] == {"bt.case": u}
    assert leftovers(daemon) == []


def test_truncated_save_archive_is_400_and_changes_nothing(daemon, made):
    u = uniq("bt-trunc")
    image_id = made.import_image(small_rootfs(u), u, "1")
    status, archive = daemon.api("GET", f"/images/get?names={u}:1", raw=True)
    assert status == 200 and len(archive) > 2048
    status, body = daemon.api("DELETE", f"/images/{u}:1")
    assert status == 200 and {"Deleted": image_id} in body
    before = store_state(daemon)
    where = {m.name: (m.offset, m.offset_data, m.size) for m, _ in _members(archive)}
    manifest_header, manifest_data, manifest_size = where["manifest.json"]
    _, layer_data, layer_size = where[f"blobs/sha256/{sha(small_rootfs(u))}"]
    # half way, inside a layer's data, inside the manifest's header, inside the manifest's data
    for cut in (len(archive) // 2, layer_data + layer_size // 2, manifest_header + 100,
                manifest_data + manifest_size // 2):
        status, body = load(daemon, archive[:cut])
        assert status == 400, (cut, status, body[:300])
        assert store_state(daemon) == before
    assert leftovers(daemon) == []
    # the whole archive still loads
    status, body = load(daemon, archive)
    assert status == 200, body
    assert inspect(daemon, f"{u}:1")["Id"] == image_id


# -- save and load -------------------------------------------------------------------------------------------------


def test_save_delete_load_round_trip(fresh_daemon):
    d = fresh_daemon
    image_id = inspect(d, "busybox:latest")["Id"]
    status, archive = d.api("GET", "/images/get?names=busybox:latest", raw=True)
    assert status == 200
    files = tar_names(archive)
    manifest = json.loads(files["manifest.json"])
    assert manifest[0]["RepoTags"] == ["busybox:latest"]
    assert sha(files[manifest[0]["Config"]]) == image_id[7:]

    status, body = d.api("DELETE", "/images/busybox:latest")
    assert status == 200
    assert body[0] == {"Untagged": "busybox:latest"} and {"Deleted": image_id} in body
    assert d.api("GET", "/images/busybox:latest/json")[0] == 404
    assert list_images(d, all_=True) == []
    _, files_left = store_state(d)
    assert not [f for f in files_left if f.startswith("blobs/")], files_left
    assert not [f for f in files_left if len(os.path.basename(f)) == 64], files_left

    status, body = load(d, archive)
    assert status == 200, (body, d.tail_log())
    assert any("Loaded image: busybox:latest" in line.get("stream", "") for line in json_lines(body)), body
    info = inspect(d, "busybox:latest")
    assert info["Id"] == image_id
    assert info["RepoTags"] == ["busybox:latest"]
    assert info["Config"]["Cmd"] == ["sh"]

    # and it runs
    status, r = d.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["echo", "reloaded"]})
    assert status == 201, r
    assert d.api("POST", f"/containers/{r['Id']}/start")[0] == 204, d.tail_log()
    assert d.api("POST", f"/containers/{r['Id']}/wait")[1]["StatusCode"] == 0
    status, logs = d.api("GET", f"/containers/{r['Id']}/logs?stdout=1", raw=True)
    assert logs[8:] == b"reloaded\n"
    assert d.api("DELETE", f"/containers/{r['Id']}")[0] == 204

    # loading what is already there is harmless
    before = store_state(d)
    status, body = load(d, archive)
    assert status == 200, body
    assert store_state(d) == before


def test_get_single_image_archive(daemon, made):
    image_id = inspect(daemon, "busybox:latest")["Id"]
    for path in ("/images/busybox:latest/get", "/images/busybox/get", f"/images/{image_id[7:19]}/get"):
        status, archive = daemon.api("GET", path, raw=True)
        assert status == 200, (path, archive[:200])
        files = tar_names(archive)
        manifest = json.loads(files["manifest.json"])
        assert len(manifest) == 1
        assert sha(files[manifest[0]["Config"]]) == image_id[7:]
        for layer in manifest[0]["Layers"]:
            assert layer in files
        assert "index.json" in files and "oci-layout" in files
        if "busybox" in path:
            assert manifest[0]["RepoTags"] == ["busybox:latest"], path
    status, body = daemon.api("GET", f"/images/{uniq('nope')}:1/get")
    assert status == 404, body
    status, body = daemon.api("GET", f"/images/get?names={uniq('nope')}:1")
    assert status == 404, body


def test_save_two_images_in_one_archive(daemon, made):
    u = uniq("bt-two")
    a = made.import_image(small_rootfs(u + "a"), u, "a")
    b = made.import_image(small_rootfs(u + "b"), u, "b")
    status, archive = daemon.api("GET", f"/images/get?names={u}:a&names={u}:b", raw=True)
    assert status == 200
    manifest = json.loads(tar_names(archive)["manifest.json"])
    assert sorted(tuple(m["RepoTags"]) for m in manifest) == [(f"{u}:a",), (f"{u}:b",)]
    for ref in (f"{u}:a", f"{u}:b"):
        assert daemon.api("DELETE", f"/images/{ref}")[0] == 200
    status, body = load(daemon, archive)
    assert status == 200, body
    assert inspect(daemon, f"{u}:a")["Id"] == a and inspect(daemon, f"{u}:b")["Id"] == b


# -- prune and disk usage ------------------------------------------------------------------------------------------


def test_image_prune_removes_dangling_keeps_used(daemon, made):
    u = uniq("bt-prune")
    unused = made.import_image(small_rootfs(u + "-unused"))
    used = made.busybox_variant()
    cid = made.create(used)
    tagged = made.import_image(small_rootfs(u + "-tagged"), u, "1")
    busybox = inspect(daemon, "busybox:latest")["Id"]

    status, body = daemon.api("POST", "/images/prune")
    assert status == 200, body
    deleted = [x["Deleted"] for x in body["ImagesDeleted"] or [] if "Deleted" in x]
    assert unused in deleted
    assert used not in deleted and tagged not in deleted and busybox not in deleted
    assert isinstance(body["SpaceReclaimed"], int) and body["SpaceReclaimed"] > 0
    assert daemon.api("GET", f"/images/{unused}/json")[0] == 404
    for keep in (used, tagged, busybox):
        assert daemon.api("GET", f"/images/{keep}/json")[0] == 200, keep
    # the kept dangling image is still runnable by its container
    assert daemon.api("POST", f"/containers/{cid}/start")[0] == 204
    assert daemon.api("POST", f"/containers/{cid}/wait")[1]["StatusCode"] == 0


def test_system_df_lists_images_and_containers(daemon, made):
    u = uniq("bt-df")
    image_id = made.import_image(small_rootfs(u), u, "1")
    cid = made.create("busybox:latest")
    status, df = daemon.api("GET", "/system/df")
    assert status == 200
    assert isinstance(df["LayersSize"], int) and df["LayersSize"] > 0
    images = {i["Id"]: i for i in df["Images"]}
    assert image_id in images and images[image_id]["RepoTags"] == [f"{u}:1"]
    busybox = inspect(daemon, "busybox:latest")["Id"]
    assert images[busybox]["Containers"] >= 1
    containers = {c["Id"]: c for c in df["Containers"]}
    assert cid in containers
    assert containers[cid]["State"] == "created"
    assert containers[cid]["ImageID"] == busybox
    assert df["Volumes"] == [] and df["BuildCache"] == []


def _busybox_with(marker: str, tar_path: str) -> bytes:
    """The busybox root filesystem plus one file: a runnable image with a layer of its own."""
    out = io.BytesIO()
    with tarfile.open(tar_path) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m) if m.isreg() else None)
        data = marker.encode() + b"\n"
        dst.addfile(_ti("marker", tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    return out.getvalue()


def test_forced_rmi_of_a_stopped_containers_image(daemon):
    """Docker's rules: a running container's image cannot be deleted even by force; a stopped
    one's can, and the container keeps its layers (and still starts) until it goes too."""
    marker = uniq("rmif")
    status, _ = daemon.api("POST", f"/images/create?fromSrc=-&repo={marker}&tag=1",
                           _busybox_with(marker, os.path.join(daemon.dir, "busybox.tar")), raw=True)
    assert status == 200
    img = inspect(daemon, f"{marker}:1")["Id"]
    status, c = daemon.api("POST", "/containers/create", {"Image": f"{marker}:1", "Cmd": ["sleep", "1000"]})
    assert status == 201, c
    assert daemon.api("POST", f"/containers/{c['Id']}/start")[0] == 204
    status, msg = daemon.api("DELETE", f"/images/{img}?force=1")
    assert status == 409 and "cannot be forced" in msg["message"] and "running container" in msg["message"]
    assert daemon.api("POST", f"/containers/{c['Id']}/kill")[0] == 204
    status, msg = daemon.api("DELETE", f"/images/{img}")
    assert status == 409 and "must be forced" in msg["message"]
    snapshots = os.path.join(daemon.data_root, "snapshots")
    before = len(os.listdir(snapshots))
    status, res = daemon.api("DELETE", f"/images/{img}?force=1")
    assert status == 200, res
    assert {"Deleted": img} in res and {"Untagged": f"{marker}:1"} in res
    assert daemon.api("GET", f"/images/{img}/json")[0] == 404
    assert len(os.listdir(snapshots)) == before  # the container still holds its layer
    status, info = daemon.api("GET", f"/containers/{c['Id']}/json")
    assert info["Image"] == img
    assert daemon.api("POST", f"/containers/{c['Id']}/start")[0] == 204
    status, logs = daemon.api("POST", f"/containers/{c['Id']}/kill")
    assert daemon.api("DELETE", f"/containers/{c['Id']}?force=1")[0] == 204
    assert len(os.listdir(snapshots)) == before - 1  # and it goes with the container
