"""Files in containers against a real berthd: the archive API (HEAD/GET/PUT), ``berth cp`` both ways on running and
stopped containers, symlink escapes, ``diff``, ``export`` and ``commit``; then the same through docker-py and the
docker CLI.

Needs root, runc and busybox (the ``daemon`` fixture skips otherwise).
"""
from __future__ import annotations

import base64
import gzip
import io
import json
import os
import stat
import struct
import tarfile
import uuid
from urllib.parse import quote, urlencode

import pytest

from tests.support.made import Made as BaseMade
from tests.support.daemon import _Unix, wait_for

BUSYBOX = "busybox:latest"
MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27


def uniq(prefix: str = "files") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def request(daemon, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """(status, headers with lower-case names, body) for one request."""
    conn = _Unix(daemon.socket, 60)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    hdrs = {k.lower(): v for k, v in resp.getheaders()}
    conn.close()
    return resp.status, hdrs, data


def archive_path(cid: str, path: str, **extra) -> str:
    return f"/containers/{quote(cid, safe='')}/archive?" + urlencode({"path": path, **extra})


def path_stat(daemon, cid: str, path: str) -> dict | None:
    status, hdrs, _ = request(daemon, "HEAD", archive_path(cid, path))
    if status != 200:
        return None
    return json.loads(base64.b64decode(hdrs["x-docker-container-path-stat"]))


def get_tar(daemon, cid: str, path: str) -> tarfile.TarFile:
    status, _, data = request(daemon, "GET", archive_path(cid, path))
    assert status == 200, data
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:")


def read_file(daemon, cid: str, path: str) -> bytes:
    with get_tar(daemon, cid, path) as tar:
        member = tar.next()
        assert member is not None and member.isreg(), member
        return tar.extractfile(member).read()


def tar_bytes(*entries: tuple[str, bytes, str | bytes]) -> bytes:
    """A tar of (name, type, data or link target) entries."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                ti.linkname = data
                tar.addfile(ti)
            elif kind == tarfile.REGTYPE:
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
            else:
                tar.addfile(ti)
    return buf.getvalue()


def demux(data: bytes) -> bytes:
    out, i = b"", 0
    while i + 8 <= len(data):
        (size,) = struct.unpack(">I", data[i + 4:i + 8])
        out += data[i + 8:i + 8 + size]
        i += 8 + size
    return out


class Made(BaseMade):
    """What a test makes; removed at the end whatever happens."""

    def create(self, cmd: list[str], image: str = BUSYBOX, **config) -> str:
        name = uniq()
        status, body = self.daemon.api("POST", f"/containers/create?name={name}",
                                       {"Image": image, "Cmd": cmd, **config})
        assert status == 201, body
        self.containers.append(name)
        return name

    def start(self, name: str) -> None:
        status, body = self.daemon.api("POST", f"/containers/{name}/start")
        assert status == 204, body

    def running(self, cmd: list[str], **config) -> str:
        name = self.create(cmd, **config)
        self.start(name)
        return name

    def exited(self, cmd: list[str], image: str = BUSYBOX) -> str:
        name = self.create(cmd, image)
        self.start(name)
        assert self.wait(name) == 0, self.logs(name)
        return name

    def wait(self, name: str) -> int:
        status, body = self.daemon.api("POST", f"/containers/{name}/wait", timeout=60)
        assert status == 200, body
        return body["StatusCode"]

    def logs(self, name: str) -> bytes:
        status, data = self.daemon.api("GET", f"/containers/{name}/logs?stdout=1&stderr=1", raw=True)
        assert status == 200
        return demux(data)


def container_id(daemon, name: str) -> str:
    return daemon.api("GET", f"/containers/{name}/json")[1]["Id"]


def rootfs_mounted(daemon, name: str) -> bool:
    return os.path.ismount(os.path.join(daemon.data_root, "containers", container_id(daemon, name), "rootfs"))


def wait_unmounted(daemon, name: str) -> None:
    """A stopped container's root goes once the last copy's stream has ended (just after its last byte)."""
    wait_for(lambda: not rootfs_mounted(daemon, name), 10, what="the stopped container's root to be unmounted")


@pytest.fixture
def host_tree(tmp_path):
    """On this machine: f.txt (0640), d/ with d/sub/g.txt and a relative symlink."""
    (tmp_path / "f.txt").write_bytes(b"hello from the host\n")
    os.chmod(tmp_path / "f.txt", 0o640)
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "top.txt").write_bytes(b"top\n")
    (tmp_path / "d" / "sub" / "g.txt").write_bytes(b"deep\n")
    os.symlink("sub/g.txt", tmp_path / "d" / "link")
    return tmp_path


# -- the archive API ------------------------------------------------------------------------------------
def test_head_stat_header(daemon, made):
    name = made.running(["sh", "-c", "ln -s /etc/passwd /pw; mkdir /made; touch /made/ready; exec sleep 300"])
    wait_for(lambda: path_stat(daemon, name, "/made/ready"), 10, what="the container's files")
    st = path_stat(daemon, name, "/etc/passwd")
    assert st["name"] == "passwd" and st["size"] == len(read_file(daemon, name, "/etc/passwd"))
    assert st["mode"] == 0o644 and st["linkTarget"] == ""
    assert st["mtime"].endswith("Z") and st["mtime"][:4].isdigit()
    d = path_stat(daemon, name, "/etc/")
    assert d["name"] == "etc" and d["mode"] & MODE_DIR and d["mode"] & 0o777 == 0o755
    link = path_stat(daemon, name, "/pw")
    assert link["mode"] & MODE_SYMLINK and link["linkTarget"] == "/etc/passwd"
    assert path_stat(daemon, name, "/")["name"] == "/"
    status, _, _ = request(daemon, "HEAD", archive_path(name, "/no/such/file"))
    assert status == 404
    status, _, body = request(daemon, "GET", archive_path(name, "/no/such/file"))
    assert status == 404 and json.loads(body)["message"] == f"Could not find the file /no/such/file in container {name}"
    status, _, _ = request(daemon, "HEAD", archive_path("no-such-container-" + uuid.uuid4().hex[:6], "/"))
    assert status == 404


def test_get_archive_names_follow_docker(daemon, made):
    name = made.create(["true"])
    with get_tar(daemon, name, "/etc") as tar:
        assert tar.getnames()[:1] == ["etc"] and "etc/passwd" in tar.getnames()
    with get_tar(daemon, name, "/etc/.") as tar:
        names = tar.getnames()
        assert names[0] == "." and "./passwd" in names
    with get_tar(daemon, name, "/bin/busybox") as tar:
        m = tar.next()
        assert m.name == "busybox" and m.mode == 0o755 and m.size > 100000
    with get_tar(daemon, name, "/bin/sh") as tar:  # the symlink itself, not what it points at
        m = tar.next()
        assert m.issym() and m.linkname == "/bin/busybox"


def test_put_archive_errors(daemon, made):
    name = made.create(["true"])
    ok = tar_bytes(("x", tarfile.REGTYPE, b"x"))
    status, _, body = request(daemon, "PUT", archive_path(name, "/missing/dir"), ok)
    assert status == 404 and json.loads(body)["message"] == f"Could not find the file /missing/dir in container {name}"
    status, _, body = request(daemon, "PUT", archive_path(name, "/etc/passwd"), ok)
    assert status == 400 and "not a directory" in json.loads(body)["message"]
    for kernel in ("/proc", "/sys"):
        status, _, _ = request(daemon, "PUT", archive_path(name, kernel), ok)
        assert status == 403
    status, _, body = request(daemon, "PUT", archive_path(name, "/tmp"), b"this is not a tar" * 100)
    assert status == 400, body
    ro = made.create(["true"], HostConfig={"ReadonlyRootfs": True})
    status, _, body = request(daemon, "PUT", archive_path(ro, "/tmp"), ok)
    assert status == 403 and "read-only" in json.loads(body)["message"]
    assert not rootfs_mounted(daemon, name) and not rootfs_mounted(daemon, ro)


def test_put_gzip_archive_and_no_overwrite(daemon, made):
    name = made.create(["true"])
    data = tar_bytes(("newdir", tarfile.DIRTYPE, b""), ("newdir/a.txt", tarfile.REGTYPE, b"gzipped\n"))
    status, _, body = request(daemon, "PUT", archive_path(name, "/"), gzip.compress(data))
    assert status == 200, body
    assert read_file(daemon, name, "/newdir/a.txt") == b"gzipped\n"
    clash = tar_bytes(("newdir", tarfile.REGTYPE, b"a file now"))
    status, _, body = request(daemon, "PUT", archive_path(name, "/", noOverwriteDirNonDir="true"), clash)
    assert status == 400 and "cannot overwrite directory" in json.loads(body)["message"]


def test_put_copy_uid_gid_takes_the_container_user(daemon, made):
    name = made.create(["true"], User="nobody")
    data = tar_bytes(("owned.txt", tarfile.REGTYPE, b"x"))
    status, _, body = request(daemon, "PUT", archive_path(name, "/tmp", copyUIDGID="1"), data)
    assert status == 200, body
    status, _, body = request(daemon, "PUT", archive_path(name, "/tmp"), tar_bytes(("plain.txt", tarfile.REGTYPE, b"x")))
    assert status == 200, body
    with get_tar(daemon, name, "/tmp") as tar:
        owners = {m.name: (m.uid, m.gid) for m in tar.getmembers()}
    assert owners["tmp/owned.txt"] == (65534, 65534) and owners["tmp/plain.txt"] == (0, 0)


# -- berth cp --------------------------------------------------------------------------------------------
def _cp_both_ways(daemon, name: str, host) -> None:
    cli = daemon.cli
    cli("cp", str(host / "f.txt"), f"{name}:/tmp/")
    assert read_file(daemon, name, "/tmp/f.txt") == b"hello from the host\n"
    assert path_stat(daemon, name, "/tmp/f.txt")["mode"] & 0o777 == 0o640
    cli("cp", str(host / "f.txt"), f"{name}:/tmp/renamed.txt")  # a missing destination takes the name
    assert read_file(daemon, name, "/tmp/renamed.txt") == b"hello from the host\n"
    cli("cp", str(host / "d"), f"{name}:/tmp")  # into an existing directory: /tmp/d
    assert read_file(daemon, name, "/tmp/d/sub/g.txt") == b"deep\n"
    assert path_stat(daemon, name, "/tmp/d/link")["linkTarget"] == "/tmp/d/sub/g.txt"
    cli("cp", str(host / "d"), f"{name}:/tmp/newname")  # missing: the directory is created under that name
    assert read_file(daemon, name, "/tmp/newname/top.txt") == b"top\n"
    cli("cp", str(host / "d") + "/.", f"{name}:/tmp/newname/")  # DIR/. copies the contents
    cli("cp", str(host / "d") + "/.", f"{name}:/etc")
    assert read_file(daemon, name, "/etc/top.txt") == b"top\n"
    bad = cli("cp", str(host / "f.txt"), f"{name}:/tmp/nodir/", check=False)
    assert bad.returncode == 1 and b"no such directory" in bad.stderr
    bad = cli("cp", str(host / "d"), f"{name}:/tmp/f.txt", check=False)
    assert bad.returncode == 1 and b"cannot copy directory" in bad.stderr
    bad = cli("cp", str(host / "f.txt"), f"{name}:/missing/sub/f", check=False)
    assert bad.returncode == 1 and f"Could not find the file /missing/sub in container {name}".encode() in bad.stderr

    out = host / "out"
    out.mkdir()
    cli("cp", f"{name}:/tmp/f.txt", str(out / "back.txt"))
    assert (out / "back.txt").read_bytes() == b"hello from the host\n"
    assert stat.S_IMODE(os.stat(out / "back.txt").st_mode) == 0o640
    cli("cp", f"{name}:/etc", str(out / "etc-copy"))  # missing: named after the destination
    assert (out / "etc-copy" / "passwd").read_bytes().startswith(b"root:")
    cli("cp", f"{name}:/etc", str(out))  # existing directory: out/etc
    assert (out / "etc" / "group").exists()
    (out / "contents").mkdir()
    cli("cp", f"{name}:/tmp/d/.", str(out / "contents"))
    assert (out / "contents" / "sub" / "g.txt").read_bytes() == b"deep\n"
    assert os.readlink(out / "contents" / "link") == "sub/g.txt"
    cli("cp", f"{name}:/tmp/d/top.txt", str(out / "back.txt"))  # an existing file is replaced
    assert (out / "back.txt").read_bytes() == b"top\n"
    bad = cli("cp", f"{name}:/etc/passwd", str(out / "nodir") + "/", check=False)
    assert bad.returncode == 1 and b"no such directory" in bad.stderr
    bad = cli("cp", f"{name}:/etc", str(out / "back.txt"), check=False)
    assert bad.returncode == 1 and b"cannot copy directory" in bad.stderr
    bad = cli("cp", f"{name}:/no/such", str(out), check=False)
    assert bad.returncode == 1 and b"Could not find the file /no/such" in bad.stderr

    raw = cli("cp", f"{name}:/tmp/f.txt", "-").stdout  # a tar on stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        assert tar.extractfile("f.txt").read() == b"hello from the host\n"
    cli("cp", "-", f"{name}:/tmp", input=tar_bytes(("stdin.txt", tarfile.REGTYPE, b"from stdin\n")))
    assert read_file(daemon, name, "/tmp/stdin.txt") == b"from stdin\n"


def test_cp_running_container(daemon, made, host_tree):
    name = made.running(["sh", "-c", "until [ -f /tmp/go ]; do sleep 0.05; done; cat /tmp/d/sub/g.txt /tmp/f.txt"])
    _cp_both_ways(daemon, name, host_tree)
    (host_tree / "go").write_bytes(b"")
    daemon.cli("cp", str(host_tree / "go"), f"{name}:/tmp/go")
    assert made.wait(name) == 0
    assert made.logs(name) == b"deep\nhello from the host\n"  # the running container saw the copies


def test_cp_stopped_container(daemon, made, host_tree):
    name = made.create(["sh", "-c", "cat /tmp/f.txt /etc/top.txt"])
    _cp_both_ways(daemon, name, host_tree)
    wait_unmounted(daemon, name)  # mounted for each call, unmounted after
    made.start(name)
    assert made.wait(name) == 0
    assert made.logs(name) == b"hello from the host\ntop\n"
    daemon.cli("cp", str(host_tree / "f.txt"), f"{name}:/tmp/after-exit.txt")
    assert read_file(daemon, name, "/tmp/after-exit.txt") == b"hello from the host\n"
    wait_unmounted(daemon, name)


def test_cp_hostname_is_the_containers(daemon, made, tmp_path):
    name = made.running(["sleep", "300"], Hostname="files-host")
    assert read_file(daemon, name, "/etc/hostname") == b"files-host\n"
    daemon.cli("cp", f"{name}:/etc/hostname", str(tmp_path / "h"))
    assert (tmp_path / "h").read_bytes() == b"files-host\n"


# -- symlinks never lead out of the container --------------------------------------------------------------
def test_symlinks_resolve_inside_the_container(daemon, made, tmp_path):
    name = made.running(["sh", "-c", "echo container-secret > /etc/shadow; ln -s /etc/shadow /x; "
                                     "ln -s ../../../../../../etc /up; ln -s / /rootlink; touch /ready; "
                                     "exec sleep 300"])
    wait_for(lambda: path_stat(daemon, name, "/ready"), 10, what="the container's symlinks")
    daemon.cli("cp", "-L", f"{name}:/x", str(tmp_path / "shadow"))
    assert (tmp_path / "shadow").read_bytes() == b"container-secret\n"  # the container's, not the host's
    daemon.cli("cp", f"{name}:/x", str(tmp_path / "link"))  # without -L: the link itself
    assert os.readlink(tmp_path / "link") == "/etc/shadow"
    assert read_file(daemon, name, "/up/shadow") == b"container-secret\n"
    assert read_file(daemon, name, "/rootlink/etc/shadow") == b"container-secret\n"
    assert path_stat(daemon, name, "/up")["linkTarget"] == "/etc"

    # into a directory reached through a container symlink: it lands in the container's /etc
    marker = f"berth-files-{uuid.uuid4().hex[:8]}.conf"
    status, _, body = request(daemon, "PUT", archive_path(name, "/up"), tar_bytes((marker, tarfile.REGTYPE, b"in")))
    assert status == 200, body
    assert read_file(daemon, name, f"/etc/{marker}") == b"in"
    assert not os.path.exists(f"/etc/{marker}")


def test_escaping_tars_are_refused(daemon, made, tmp_path):
    name = made.create(["true"])
    cid = container_id(daemon, name)
    sentinel = tmp_path / "sentinel"
    sentinel.write_bytes(b"untouched")
    evil = [
        tar_bytes(("../../evil", tarfile.REGTYPE, b"pwned")),
        tar_bytes(("l", tarfile.SYMTYPE, "/"), ("l" + str(sentinel), tarfile.REGTYPE, b"pwned")),
        tar_bytes(("l2", tarfile.SYMTYPE, str(tmp_path)), ("l2/sentinel", tarfile.REGTYPE, b"pwned")),
        tar_bytes(("up", tarfile.SYMTYPE, "../../../../../../../../" + str(tmp_path)[1:])),
        tar_bytes(("h", tarfile.LNKTYPE, "../../../../../../../" + str(sentinel)[1:])),
    ]
    for data in evil:
        for dest in ("/tmp", "/"):
            status, _, body = request(daemon, "PUT", archive_path(name, dest), data)
            assert status == 400, (dest, body)
    assert sentinel.read_bytes() == b"untouched"
    container_dir = os.path.join(daemon.data_root, "containers", cid)
    assert not os.path.exists(os.path.join(container_dir, "evil"))
    assert not os.path.exists(os.path.join(daemon.data_root, "evil"))
    assert os.listdir(tmp_path) == ["sentinel"]
    # an existing symlink in the container is never written through either
    link = tar_bytes(("esc", tarfile.SYMTYPE, str(tmp_path)))
    status, _, body = request(daemon, "PUT", archive_path(name, "/tmp"), link)
    assert status == 200, body
    through = tar_bytes(("esc/sentinel", tarfile.REGTYPE, b"pwned"))
    status, _, body = request(daemon, "PUT", archive_path(name, "/tmp"), through)
    assert status == 400, body
    assert sentinel.read_bytes() == b"untouched"


# -- diff, export, commit ----------------------------------------------------------------------------------
def test_diff_added_changed_deleted(daemon, made):
    name = made.exited(["sh", "-c", "touch /new; rm /bin/ls; echo >> /etc/passwd"])
    status, changes = daemon.api("GET", f"/containers/{name}/changes")
    assert status == 200
    got = {(c["Kind"], c["Path"]) for c in changes}
    assert {(1, "/new"), (2, "/bin/ls"), (0, "/etc/passwd"), (0, "/bin")} <= got
    assert not any(p.startswith(("/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/proc", "/sys", "/dev"))
                   for _, p in got)
    lines = daemon.cli("diff", name).stdout.decode().splitlines()
    assert {"A /new", "D /bin/ls", "C /etc/passwd", "C /bin"} <= set(lines)
    assert lines.index("C /bin") < lines.index("D /bin/ls")
    fresh = made.create(["true"])
    assert daemon.cli("diff", fresh).stdout == b""
    assert daemon.api("GET", "/containers/no-such-container/changes")[0] == 404


def test_export_running_and_stopped(daemon, made, tmp_path):
    stopped = made.exited(["sh", "-c", "echo exported > /marker"])
    out = tmp_path / "root.tar"
    daemon.cli("export", "-o", str(out), stopped)
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        assert {"bin/busybox", "etc/passwd", "marker"} <= names
        assert tar.extractfile("marker").read() == b"exported\n"
        assert tar.getmember("bin/sh").issym()
    wait_unmounted(daemon, stopped)
    running = made.running(["sleep", "300"])
    data = daemon.cli("export", running).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert "bin/busybox" in tar.getnames()
    assert rootfs_mounted(daemon, running)  # still the running container's


def test_commit_then_run(daemon, made):
    name = made.exited(["sh", "-c", "echo committed-content > /new; rm /bin/ls"])
    repo = made.image(f"berth-commit-{uuid.uuid4().hex[:8]}:v1")
    image_id = daemon.cli("commit", "-m", "a message", "-a", "me <me@example.com>", name, repo).stdout.decode().strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    status, img = daemon.api("GET", f"/images/{repo}/json")
    assert status == 200 and img["Id"] == image_id
    assert img["Config"]["Cmd"] == ["sh", "-c", "echo committed-content > /new; rm /bin/ls"]
    assert img["Author"] == "me <me@example.com>"
    status, history = daemon.api("GET", f"/images/{repo}/history")
    assert history[0]["Comment"] == "a message"
    run = made.exited(["sh", "-c", "cat /new; test ! -e /bin/ls && echo ls-gone"], image=repo)
    assert made.logs(run) == b"committed-content\nls-gone\n"


def test_commit_with_changes_and_body(daemon, made):
    name = made.exited(["true"])
    repo = made.image(f"berth-commit-{uuid.uuid4().hex[:8]}")
    image_id = daemon.cli("commit", "-c", 'CMD ["echo","committed"]', "-c", "ENV FOO=bar", name, repo).stdout.decode()
    status, img = daemon.api("GET", f"/images/{repo}:latest/json")
    assert status == 200 and img["Id"] == image_id.strip()
    assert img["Config"]["Cmd"] == ["echo", "committed"] and "FOO=bar" in img["Config"]["Env"]
    run = made.create([], image=repo)
    made.start(run)
    assert made.wait(run) == 0 and made.logs(run) == b"committed\n"

    q = urlencode({"container": name, "repo": repo, "tag": "body", "changes": "LABEL a=b"})
    status, res = daemon.api("POST", f"/commit?{q}", {"Cmd": ["echo", "from-body"], "Labels": {"x": "y"}})
    made.image(f"{repo}:body")
    assert status == 201 and res["Id"].startswith("sha256:")
    status, img = daemon.api("GET", f"/images/{repo}:body/json")
    assert img["Config"]["Cmd"] == ["echo", "from-body"] and img["Config"]["Labels"] == {"x": "y", "a": "b"}
    status, res = daemon.api("POST", "/commit?" + urlencode({"container": name, "changes": "ADD x /y"}))
    assert status == 400
    status, res = daemon.api("POST", "/commit?container=no-such-container")
    assert status == 404


def test_commit_running_container_pauses_and_resumes(daemon, made):
    name = made.running(["sh", "-c", "echo live > /live; exec sleep 300"])
    wait_for(lambda: path_stat(daemon, name, "/live"), 10, what="the container's file")
    status, res = daemon.api("POST", f"/commit?container={name}")
    assert status == 201, res
    made.image(res["Id"])
    assert daemon.api("GET", f"/containers/{name}/json")[1]["State"]["Status"] == "running"
    run = made.exited(["cat", "/live"], image=res["Id"])
    assert made.logs(run) == b"live\n"


# -- other clients -------------------------------------------------------------------------------------------
def test_docker_py_put_and_get_archive(daemon, made):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=daemon.host, timeout=30)
    try:
        name = made.running(["sleep", "300"])
        c = client.containers.get(name)
        assert c.put_archive("/tmp", tar_bytes(("py.txt", tarfile.REGTYPE, b"from docker-py\n"))) is True
        chunks, st = c.get_archive("/tmp/py.txt")
        assert st["name"] == "py.txt" and st["size"] == 15
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            assert tar.extractfile("py.txt").read() == b"from docker-py\n"
        with pytest.raises(docker.errors.NotFound):
            c.get_archive("/no/such/path")
        assert {"Path": "/tmp/py.txt", "Kind": 1} in c.diff()
        with tarfile.open(fileobj=io.BytesIO(b"".join(c.export()))) as tar:
            assert tar.extractfile("tmp/py.txt").read() == b"from docker-py\n"
        img = c.commit(repository=made.image(f"berth-py-{uuid.uuid4().hex[:8]}"), tag="latest",
                       changes=['CMD ["cat", "/tmp/py.txt"]'])
        assert img.attrs["Config"]["Cmd"] == ["cat", "/tmp/py.txt"]
        out = client.containers.run(img.id, remove=True)
        assert out == b"from docker-py\n"
    finally:
        client.close()


def test_docker_cli_cp_diff_export_commit(daemon, made, tmp_path):
    if not os.path.exists("/usr/local/bin/docker"):
        pytest.skip("the docker CLI is not installed")
    name = uniq()
    made.containers.append(name)
    daemon.docker("create", "--pull=never", "--name", name, BUSYBOX, "sh", "-c", "cat /tmp/in.txt", check=True)
    (tmp_path / "in.txt").write_bytes(b"via docker cp\n")
    daemon.docker("cp", str(tmp_path / "in.txt"), f"{name}:/tmp/", check=True)
    daemon.docker("cp", f"{name}:/tmp/in.txt", str(tmp_path / "back.txt"), check=True)
    assert (tmp_path / "back.txt").read_bytes() == b"via docker cp\n"
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "x").write_bytes(b"x")
    daemon.docker("cp", str(tmp_path / "tree"), f"{name}:/opt-tree", check=True)
    assert read_file(daemon, name, "/opt-tree/sub/x") == b"x"
    daemon.docker("cp", f"{name}:/opt-tree/.", str(tmp_path / "tree-back"), check=True)
    assert (tmp_path / "tree-back" / "sub" / "x").read_bytes() == b"x"
    bad = daemon.docker("cp", str(tmp_path / "in.txt"), f"{name}:/missing/sub/in.txt", check=False)
    assert bad.returncode != 0 and b"Could not find the file" in bad.stderr
    diff = daemon.docker("diff", name, check=True).stdout.decode().split("\n")
    assert "A /tmp/in.txt" in diff and "A /opt-tree/sub/x" in diff
    daemon.docker("export", "-o", str(tmp_path / "exp.tar"), name, check=True)
    with tarfile.open(tmp_path / "exp.tar") as tar:
        assert "tmp/in.txt" in tar.getnames()
    repo = made.image(f"berth-docker-{uuid.uuid4().hex[:8]}:latest")
    image_id = daemon.docker("commit", "-c", 'CMD ["cat","/tmp/in.txt"]', name, repo, check=True).stdout.decode()
    assert image_id.strip().startswith("sha256:")
    out = daemon.docker("run", "--pull=never", "--rm", repo, check=True).stdout
    assert out == b"via docker cp\n"
