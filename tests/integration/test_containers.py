"""Containers against a real berthd and runc: lifecycle and inspect, logs (multiplexed frames, json-file on
disk, rotation), list filters, wait conditions, auto-remove, prune, the berth CLI, and layer sharing.

Needs root, runc and busybox (the ``daemon`` fixture skips otherwise).
"""
from __future__ import annotations

import json
import os
import re
import socket
import struct
import tempfile
import time
import uuid
from datetime import datetime
from urllib.parse import quote, urlencode

import pytest

from tests.support.made import Made as BaseMade
from tests.support.daemon import _Unix, wait_for

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
STAMP = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) ")


def uniq(prefix: str = "bt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def unix_time(stamp: str) -> float:
    main, _, frac = stamp.rstrip("Z").partition(".")
    base = datetime.fromisoformat(main + "+00:00").timestamp()
    return base + float("0." + (frac or "0"))


def demux(data: bytes) -> list[tuple[int, bytes]]:
    """Docker's multiplexed stream: 8-byte headers (stream, 0, 0, 0, big-endian size) and payloads."""
    frames, i = [], 0
    while i < len(data):
        header = data[i:i + 8]
        assert len(header) == 8, f"short frame header at {i}: {data[i:]!r}"
        assert header[0] in (1, 2) and header[1:4] == b"\0\0\0", header
        (size,) = struct.unpack(">I", header[4:])
        payload = data[i + 8:i + 8 + size]
        assert len(payload) == size, f"short frame at {i}"
        frames.append((header[0], payload))
        i += 8 + size
    return frames


def joined(frames, stream: int) -> bytes:
    return b"".join(p for s, p in frames if s == stream)


def read_frame(resp) -> tuple[int, bytes] | None:
    header = resp.read(8)
    if not header:
        return None
    assert len(header) == 8, header
    (size,) = struct.unpack(">I", header[4:])
    return header[0], resp.read(size)


class Made(BaseMade):
    """Containers and images a test made; removed at teardown."""

    def __init__(self, daemon) -> None:
        super().__init__(daemon)
        self.ids = self.containers

    def create(self, name: str | None = None, **body) -> str:
        body.setdefault("Image", "busybox:latest")
        path = "/containers/create" + (f"?name={quote(name)}" if name else "")
        status, r = self.daemon.api("POST", path, body)
        assert status == 201, (status, r, self.daemon.tail_log())
        self.ids.append(r["Id"])
        return r["Id"]

    def start(self, cid: str) -> None:
        status, r = self.daemon.api("POST", f"/containers/{cid}/start")
        assert status == 204, (status, r, self.daemon.tail_log())

    def run(self, cmd: list[str], name: str | None = None, **body) -> tuple[str, int, bytes, bytes]:
        """Create, start and wait for a container; (id, exit code, stdout, stderr)."""
        cid = self.create(name, Cmd=cmd, **body)
        self.start(cid)
        status, w = self.daemon.api("POST", f"/containers/{cid}/wait")
        assert status == 200, w
        frames = logs(self.daemon, cid)
        return cid, w["StatusCode"], joined(frames, 1), joined(frames, 2)

    def import_busybox(self, changes: list[str], repo: str = "", tag: str = "") -> str:
        with open(os.path.join(self.daemon.dir, "busybox.tar"), "rb") as f:
            data = f.read()
        q = [("fromSrc", "-"), ("repo", repo), ("tag", tag)] + [("changes", c) for c in changes]
        status, body = self.daemon.api("POST", "/images/create?" + urlencode(q), data,
                                       {"Content-Type": "application/x-tar"}, raw=True)
        assert status == 200, body
        image_id = json.loads(body.splitlines()[0])["status"]
        self.images.append(image_id)
        return image_id


def inspect(daemon, ref: str) -> dict:
    status, info = daemon.api("GET", f"/containers/{ref}/json")
    assert status == 200, (status, info)
    return info


def logs(daemon, cid: str, **params) -> list[tuple[int, bytes]]:
    q = {"stdout": 1, "stderr": 1, **params}
    status, data = daemon.api("GET", f"/containers/{cid}/logs?" + urlencode(q), raw=True)
    assert status == 200, (status, data)
    return demux(data)


def list_ids(daemon, filters: dict | None = None, **params) -> list[str]:
    q = dict(params)
    if filters:
        q["filters"] = json.dumps(filters)
    status, items = daemon.api("GET", "/containers/json?" + urlencode(q))
    assert status == 200, items
    return [c["Id"] for c in items]


def open_wait(daemon, cid: str, condition: str = ""):
    """Send a wait request and return once its headers arrived (Docker: the wait is then registered)."""
    conn = _Unix(daemon.socket, 60)
    conn.request("POST", f"/containers/{cid}/wait" + (f"?condition={condition}" if condition else ""))
    resp = conn.getresponse()
    assert resp.status == 200, (resp.status, resp.read())
    return conn, resp


def finish_wait(conn, resp) -> dict:
    try:
        return json.loads(resp.read())
    finally:
        conn.close()


def trigger(daemon, cid: str, path: str = "tmp/go") -> None:
    """Create a file in a running container's root filesystem, from the host."""
    merged = inspect(daemon, cid)["GraphDriver"]["Data"]["MergedDir"]
    assert os.path.ismount(merged), merged
    with open(os.path.join(merged, path), "w") as f:
        f.write("go\n")


WAIT_FOR_GO = "while [ ! -e /tmp/go ]; do sleep 0.02; done"


# -- lifecycle and inspect -----------------------------------------------------------------------------------------


def test_create_start_wait_inspect(daemon, made):
    u = uniq("bt-life")
    image_id = made.import_busybox(['CMD ["sh"]', "ENV IMG=1 SHARED=image", "WORKDIR /srv",
                                    "LABEL img.label=x shared=image"], u, "1")
    script = 'echo "$IMG $SHARED $MINE"; pwd; echo oops >&2; exit 3'
    cid = made.create(u, Image=f"{u}:1", Cmd=["sh", "-c", script], Env=["SHARED=container", "MINE=m"],
                      Labels={"shared": "container", "mine": "1"})

    info = inspect(daemon, u)
    assert info["Id"] == cid
    assert info["Name"] == f"/{u}"
    assert info["Image"] == image_id
    assert info["Path"] == "sh" and info["Args"] == ["-c", script]
    assert RFC3339.match(info["Created"]), info["Created"]
    st = info["State"]
    assert st["Status"] == "created" and st["Running"] is False and st["ExitCode"] == 0 and st["Pid"] == 0
    cfg = info["Config"]
    assert cfg["Cmd"] == ["sh", "-c", script]
    assert cfg["Image"] == f"{u}:1"
    assert "IMG=1" in cfg["Env"] and "SHARED=container" in cfg["Env"] and "MINE=m" in cfg["Env"]
    assert "SHARED=image" not in cfg["Env"]
    assert cfg["Labels"] == {"img.label": "x", "shared": "container", "mine": "1"}
    assert cfg["WorkingDir"] == "/srv"
    assert cfg["Hostname"] == cid[:12]
    assert os.path.basename(info["LogPath"]) == f"{cid}-json.log"
    # the same container by short ID, full ID and /name
    for ref in (cid[:12], cid, f"/{u}"):
        assert inspect(daemon, quote(ref, safe=""))["Id"] == cid

    made.start(cid)
    status, w = daemon.api("POST", f"/containers/{cid}/wait")
    assert status == 200 and w["StatusCode"] == 3

    info = inspect(daemon, cid)
    st = info["State"]
    assert st["Status"] == "exited" and st["Running"] is False and st["ExitCode"] == 3 and st["Pid"] == 0
    assert RFC3339.match(st["StartedAt"]) and RFC3339.match(st["FinishedAt"])
    assert unix_time(st["FinishedAt"]) >= unix_time(st["StartedAt"]) >= unix_time(info["Created"]) - 1
    frames = logs(daemon, cid)
    assert joined(frames, 1) == b"1 container m\n/srv\n"
    assert joined(frames, 2) == b"oops\n"


def test_running_container_state(daemon, made):
    cid = made.create(Cmd=["sleep", "300"])
    made.start(cid)
    st = inspect(daemon, cid)["State"]
    assert st["Status"] == "running" and st["Running"] is True and st["Pid"] > 0
    assert os.path.exists(f"/proc/{st['Pid']}"), st
    def cmdline() -> bytes:
        with open(f"/proc/{st['Pid']}/cmdline", "rb") as f:
            return f.read()
    # runc start returns once the process may exec; it becomes `sleep` a moment later.
    wait_for(lambda: cmdline() == b"sleep\x00300\x00", 5, what=f"pid {st['Pid']} to be sleep")
    assert daemon.api("POST", f"/containers/{cid}/stop?t=1")[0] == 204
    st = inspect(daemon, cid)["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 137 and st["Pid"] == 0


def test_restart(daemon, made):
    cid = made.create(Cmd=["sleep", "300"])
    made.start(cid)
    first = inspect(daemon, cid)["State"]
    status, body = daemon.api("POST", f"/containers/{cid}/restart?t=1")
    assert status == 204, (body, daemon.tail_log())
    second = inspect(daemon, cid)["State"]
    assert second["Running"] is True and second["Status"] == "running"
    assert second["Pid"] > 0 and second["Pid"] != first["Pid"]
    assert unix_time(second["StartedAt"]) > unix_time(first["StartedAt"])
    # restart of a stopped container starts it
    assert daemon.api("POST", f"/containers/{cid}/kill")[0] == 204
    assert daemon.api("POST", f"/containers/{cid}/wait")[1]["StatusCode"] == 137
    assert daemon.api("POST", f"/containers/{cid}/restart?t=1")[0] == 204
    third = inspect(daemon, cid)["State"]
    assert third["Running"] is True and third["Pid"] not in (0, second["Pid"])


def test_start_of_exited_container_runs_it_again(daemon, made):
    cid, code, out, _ = made.run(["echo", "again"])
    assert code == 0 and out == b"again\n"
    made.start(cid)
    assert daemon.api("POST", f"/containers/{cid}/wait")[1]["StatusCode"] == 0
    assert joined(logs(daemon, cid), 1) == b"again\nagain\n"


# -- logs ----------------------------------------------------------------------------------------------------------


def test_logs_are_multiplexed_frames(daemon, made):
    cid, code, _, _ = made.run(["sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2; printf partial"])
    assert code == 0
    conn = _Unix(daemon.socket)
    conn.request("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/vnd.docker.multiplexed-stream"
    frames = demux(raw)
    assert joined(frames, 1) == b"out1\nout2\npartial"
    assert joined(frames, 2) == b"err1\nerr2\n"
    assert [p for s, p in frames if s == 1] == [b"out1\n", b"out2\n", b"partial"]
    assert {s for s, _ in logs(daemon, cid, stderr=0)} == {1}
    assert {s for s, _ in logs(daemon, cid, stdout=0)} == {2}


def test_logs_tail_and_timestamps(daemon, made):
    cid, code, out, _ = made.run(["sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done"])
    assert code == 0 and out == b"line1\nline2\nline3\nline4\nline5\n"
    assert [p for _, p in logs(daemon, cid, tail=2)] == [b"line4\n", b"line5\n"]
    assert [p for _, p in logs(daemon, cid, tail=1)] == [b"line5\n"]
    assert logs(daemon, cid, tail=0) == []
    assert len(logs(daemon, cid, tail="all")) == 5
    assert len(logs(daemon, cid, tail=100)) == 5
    started = unix_time(inspect(daemon, cid)["State"]["StartedAt"])
    stamped = logs(daemon, cid, timestamps=1)
    assert len(stamped) == 5
    previous = 0.0
    for i, (_, payload) in enumerate(stamped, 1):
        m = STAMP.match(payload)
        assert m, payload
        assert payload[m.end():] == f"line{i}\n".encode()
        t = unix_time(m.group(1).decode())
        assert started - 1 <= t <= time.time() + 1 and t >= previous
        previous = t
    assert [p[m.end():] for p in [x for _, x in logs(daemon, cid, timestamps=1, tail=1)]
            for m in [STAMP.match(p)]] == [b"line5\n"]


def test_logs_follow_until_exit_and_since(daemon, made):
    cid = made.create(Cmd=["sh", "-c", f"echo first; {WAIT_FOR_GO}; echo second; echo third >&2"])
    made.start(cid)
    wait_for(lambda: logs(daemon, cid) == [(1, b"first\n")], 10, what="the first line")
    between = time.time()

    conn = _Unix(daemon.socket, 30)
    conn.request("GET", f"/containers/{cid}/logs?stdout=1&stderr=1&follow=1")
    resp = conn.getresponse()
    assert resp.status == 200
    assert read_frame(resp) == (1, b"first\n")
    assert inspect(daemon, cid)["State"]["Running"] is True
    trigger(daemon, cid)
    rest = []
    while (f := read_frame(resp)) is not None:
        rest.append(f)
    conn.close()
    assert sorted(rest) == [(1, b"second\n"), (2, b"third\n")]
    assert inspect(daemon, cid)["State"]["Status"] == "exited"

    # since: only what came after the moment between the lines
    assert sorted(logs(daemon, cid, since=f"{between:.9f}")) == [(1, b"second\n"), (2, b"third\n")]
    assert logs(daemon, cid, since=f"{time.time() + 60:.0f}") == []
    assert len(logs(daemon, cid, since=f"{between - 3600:.0f}")) == 3
    # follow of an exited container returns what there is, and ends
    assert len(logs(daemon, cid, follow=1)) == 3


def test_json_file_log_format(daemon, made):
    cid, code, _, _ = made.run(["sh", "-c", 'echo hello; echo "q\\"uote \\\\ tab\t"; echo warn >&2'])
    assert code == 0
    path = inspect(daemon, cid)["LogPath"]
    assert path.endswith(f"/{cid}-json.log") and os.path.isfile(path)
    with open(path, "rb") as f:
        lines = f.read().splitlines()
    assert len(lines) == 3
    entries = []
    for line in lines:
        entry = json.loads(line)
        assert list(entry) == ["log", "stream", "time"], line
        assert entry["stream"] in ("stdout", "stderr")
        assert RFC3339.match(entry["time"]) and entry["time"].endswith("Z"), entry["time"]
        entries.append(entry)
    out = [e["log"] for e in entries if e["stream"] == "stdout"]
    err = [e["log"] for e in entries if e["stream"] == "stderr"]
    assert out == ["hello\n", 'q"uote \\ tab\t\n']
    assert err == ["warn\n"]


def test_log_rotation_keeps_at_most_max_file(daemon, made):
    script = 'i=100; while [ $i -lt 400 ]; do echo "line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; i=$((i+1)); done'
    cid, code, out, _ = made.run(["sh", "-c", script],
                                 HostConfig={"LogConfig": {"Type": "json-file",
                                                           "Config": {"max-size": "1k", "max-file": "2"}}})
    assert code == 0
    info = inspect(daemon, cid)
    assert info["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1k", "max-file": "2"}}
    path = info["LogPath"]
    directory = os.path.dirname(path)
    files = sorted(n for n in os.listdir(directory) if n.startswith(os.path.basename(path)))
    assert files == [f"{cid}-json.log", f"{cid}-json.log.1"], files
    for n in files:
        size = os.path.getsize(os.path.join(directory, n))
        assert 0 < size <= 1024, (n, size)
        with open(os.path.join(directory, n), "rb") as f:
            for line in f.read().splitlines():
                assert list(json.loads(line)) == ["log", "stream", "time"]
    got = [int(line.split(b"-")[1]) for line in out.splitlines()]
    assert got, out
    assert got[-1] == 399
    assert got == list(range(got[0], 400)), "the lines kept are the newest, in order, without gaps"
    assert got[0] > 100, "the oldest lines were rotated away"


# -- list ----------------------------------------------------------------------------------------------------------


def test_list_filters(daemon, made):
    u = uniq("bt-ls")
    scope = f"bt.list={u}"

    def make(suffix: str, cmd: list[str], **labels) -> str:
        return made.create(f"{u}-{suffix}", Cmd=cmd, Labels={"bt.list": u, **labels})

    running = make("running", ["sleep", "300"], role="a")
    ok = make("ok", ["true"])
    failed = make("failed", ["sh", "-c", "exit 3"])
    created = make("created", ["true"])
    for cid in (running, ok, failed):
        made.start(cid)
    for cid in (ok, failed):
        daemon.api("POST", f"/containers/{cid}/wait")

    def ids(**filters) -> set[str]:
        f = {"label": [scope]}
        for k, v in filters.items():
            f.setdefault(k, []).extend(v if isinstance(v, list) else [v])
        return set(list_ids(daemon, f, all=1))

    assert ids() == {running, ok, failed, created}
    assert ids(status="running") == {running}
    assert ids(status="exited") == {ok, failed}
    assert ids(status="created") == {created}
    assert ids(status=["created", "running"]) == {created, running}
    assert ids(exited="3") == {failed}
    assert ids(exited="0") == {ok}
    assert ids(label="role=a") == {running}
    assert ids(label="role") == {running}
    assert ids(label="role=b") == set()
    assert ids(name=f"{u}-ok") == {ok}
    assert ids(name=f"{u}-") == {running, ok, failed, created}
    assert ids(id=failed) == {failed}
    assert ids(id=failed[:12]) == {failed}
    assert ids(ancestor="busybox") == {running, ok, failed, created}
    assert ids(ancestor="busybox:latest") == {running, ok, failed, created}
    busybox_id = inspect(daemon, running)["Image"]
    assert ids(ancestor=busybox_id[7:19]) == {running, ok, failed, created}
    # without all, only running ones (filters for status/exited imply all)
    assert set(list_ids(daemon, {"label": [scope]})) == {running}
    assert set(list_ids(daemon, {"label": [scope], "exited": ["3"]})) == {failed}

    status, items = daemon.api("GET", "/containers/json?all=1&filters=" + quote(json.dumps({"id": [running]})))
    item = items[0]
    assert item["Names"] == [f"/{u}-running"] and item["State"] == "running"
    assert item["Status"].startswith("Up ") and item["Image"] in ("busybox", "busybox:latest")
    assert item["ImageID"] == busybox_id and item["Command"] == "sleep 300"
    assert item["Labels"] == {"bt.list": u, "role": "a"}
    assert isinstance(item["Created"], int)
    status, items = daemon.api("GET", "/containers/json?all=1&filters=" + quote(json.dumps({"id": [failed]})))
    assert items[0]["Status"].startswith("Exited (3) "), items[0]["Status"]


def test_name_filter_accepts_docker_anchored_form(daemon, made):
    """``docker ps -f name=^/NAME$`` is the common idiom for an exact match: names carry their slash."""
    u = uniq("bt-anchor")
    cid = made.create(u, Cmd=["true"])
    made.create(u + "-other", Cmd=["true"])
    assert list_ids(daemon, {"name": [f"^{u}$"]}, all=1) == [cid]
    assert list_ids(daemon, {"name": [f"^/{u}$"]}, all=1) == [cid]


def test_list_all_and_limit(daemon, made):
    u = uniq("bt-limit")
    made_ids = []
    for i in range(4):
        made_ids.append(made.create(f"{u}-{i}", Cmd=["true"], Labels={"bt.limit": u}))
    f = {"label": [f"bt.limit={u}"]}
    assert list_ids(daemon, f) == []
    assert list_ids(daemon, f, all=1) == list(reversed(made_ids)), "newest first"
    assert list_ids(daemon, f, limit=2) == list(reversed(made_ids))[:2]
    assert list_ids(daemon, f, all=1, limit=3) == list(reversed(made_ids))[:3]
    assert list_ids(daemon, f, all=1, limit=-1) == list(reversed(made_ids))


# -- wait, auto-remove, prune --------------------------------------------------------------------------------------


def test_wait_not_running(daemon, made):
    created = made.create(Cmd=["true"])
    status, w = daemon.api("POST", f"/containers/{created}/wait", timeout=10)
    assert status == 200 and w["StatusCode"] == 0, "a created container is not running"
    status, w = daemon.api("POST", f"/containers/{created}/wait?condition=not-running", timeout=10)
    assert status == 200 and w["StatusCode"] == 0

    cid = made.create(Cmd=["sleep", "300"])
    made.start(cid)
    conn, resp = open_wait(daemon, cid, "not-running")
    assert daemon.api("POST", f"/containers/{cid}/kill")[0] == 204
    assert finish_wait(conn, resp)["StatusCode"] == 137


def test_wait_next_exit(daemon, made):
    cid = made.create(Cmd=["sh", "-c", "exit 5"])
    conn, resp = open_wait(daemon, cid, "next-exit")
    made.start(cid)
    body = finish_wait(conn, resp)
    assert body["StatusCode"] == 5
    assert not (body.get("Error") or {}).get("Message")
    # next-exit on an exited container waits for the next run, not the last one
    conn, resp = open_wait(daemon, cid, "next-exit")
    made.start(cid)
    assert finish_wait(conn, resp)["StatusCode"] == 5


def test_wait_removed_with_auto_remove(daemon, made):
    cid = made.create(Cmd=["sh", "-c", "exit 2"], HostConfig={"AutoRemove": True})
    conn, resp = open_wait(daemon, cid, "removed")
    made.start(cid)
    assert finish_wait(conn, resp)["StatusCode"] == 2
    assert daemon.api("GET", f"/containers/{cid}/json")[0] == 404


def test_wait_removed_by_delete(daemon, made):
    cid, code, _, _ = made.run(["sh", "-c", "exit 4"])
    assert code == 4
    conn, resp = open_wait(daemon, cid, "removed")
    assert daemon.api("DELETE", f"/containers/{cid}")[0] == 204
    assert finish_wait(conn, resp)["StatusCode"] == 4


def test_auto_remove_container_disappears_after_exit(daemon, made):
    u = uniq("bt-rm")
    cid = made.create(u, Cmd=["echo", "bye"], HostConfig={"AutoRemove": True})
    assert inspect(daemon, cid)["HostConfig"]["AutoRemove"] is True
    made.start(cid)
    wait_for(lambda: daemon.api("GET", f"/containers/{cid}/json")[0] == 404, 10, what="auto-removal")
    assert cid not in list_ids(daemon, all=1)
    assert not os.path.exists(os.path.join(daemon.data_root, "containers", cid))
    # its name is free again
    made.create(u, Cmd=["true"])


def test_container_prune_removes_stopped_only(daemon, made):
    u = uniq("bt-prune")
    labels = {"bt.prune": u}
    running = made.create(Cmd=["sleep", "300"], Labels=labels)
    made.start(running)
    exited = made.create(Cmd=["true"], Labels=labels)
    made.start(exited)
    daemon.api("POST", f"/containers/{exited}/wait")
    created = made.create(Cmd=["true"], Labels=labels)
    other = made.create(Cmd=["true"], Labels={"bt.prune": u + "-other"})

    status, body = daemon.api("POST", "/containers/prune?filters=" + quote(json.dumps({"label": [f"bt.prune={u}"]})))
    assert status == 200, body
    assert sorted(body["ContainersDeleted"]) == sorted([exited, created])
    assert isinstance(body["SpaceReclaimed"], int)
    assert daemon.api("GET", f"/containers/{exited}/json")[0] == 404
    assert daemon.api("GET", f"/containers/{created}/json")[0] == 404
    assert inspect(daemon, running)["State"]["Running"] is True
    assert daemon.api("GET", f"/containers/{other}/json")[0] == 200


# -- the berth CLI -------------------------------------------------------------------------------------------------


def test_cli_run_rm_prints_output(daemon):
    before = set(list_ids(daemon, all=1))
    proc = daemon.cli("run", "--rm", "busybox", "echo", "hello")
    assert proc.returncode == 0
    assert proc.stdout == b"hello\n"
    assert set(list_ids(daemon, all=1)) == before
    proc = daemon.cli("run", "--rm", "busybox", "sh", "-c", "echo to-stderr >&2; exit 7", check=False)
    assert proc.returncode == 7
    assert proc.stdout == b"" and b"to-stderr\n" in proc.stderr
    assert set(list_ids(daemon, all=1)) == before


def test_cli_ps(daemon, made):
    u = uniq("bt-cli")
    exited = made.create(f"{u}-exited", Cmd=["true"], Labels={"bt.cli": u})
    made.start(exited)
    daemon.api("POST", f"/containers/{exited}/wait")
    running = made.create(f"{u}-running", Cmd=["sleep", "300"], Labels={"bt.cli": u})
    made.start(running)
    scope = ["--filter", f"label=bt.cli={u}"]

    out = daemon.cli("ps", "-a", "--format", "{{.Names}}", *scope).stdout.decode().split()
    assert sorted(out) == [f"{u}-exited", f"{u}-running"]
    out = daemon.cli("ps", "--format", "{{.Names}}", *scope).stdout.decode().split()
    assert out == [f"{u}-running"]
    out = daemon.cli("ps", "-a", "-q", *scope).stdout.decode().split()
    assert sorted(out) == sorted([exited[:12], running[:12]])
    out = daemon.cli("ps", "-a", "-q", "--no-trunc", *scope).stdout.decode().split()
    assert sorted(out) == sorted([exited, running])
    out = daemon.cli("ps", "-a", "-q", "--filter", f"name={u}-exited").stdout.decode().split()
    assert out == [exited[:12]]
    out = daemon.cli("ps", "-a", "-q", "--filter", "status=exited", *scope).stdout.decode().split()
    assert out == [exited[:12]]

    lines = daemon.cli("ps", "-a", "--format", "json", *scope).stdout.decode().splitlines()
    rows = {r["Names"]: r for r in map(json.loads, lines)}
    assert set(rows) == {f"{u}-exited", f"{u}-running"}
    row = rows[f"{u}-running"]
    assert row["ID"] == running[:12] and row["State"] == "running" and row["Status"].startswith("Up")
    assert row["Image"] in ("busybox", "busybox:latest")
    assert f"bt.cli={u}" in row["Labels"]
    assert {"Command", "CreatedAt", "RunningFor", "Ports", "Mounts", "Networks"} <= set(row)
    assert rows[f"{u}-exited"]["State"] == "exited"

    table = daemon.cli("ps", "-a", *scope).stdout.decode().splitlines()
    assert table[0].split()[:2] == ["CONTAINER", "ID"] and "NAMES" in table[0]
    assert len(table) == 3


def test_cli_logs_tail_and_inspect_format(daemon, made):
    u = uniq("bt-clilog")
    cid, code, _, _ = made.run(["sh", "-c", "echo a; echo b; echo c; echo e >&2; exit 3"], name=u)
    assert code == 3
    proc = daemon.cli("logs", "--tail", "1", u)
    assert proc.stdout + proc.stderr in (b"c\n", b"e\n")
    proc = daemon.cli("logs", u)
    assert proc.stdout == b"a\nb\nc\n" and proc.stderr == b"e\n"
    assert daemon.cli("inspect", "-f", "{{.State.ExitCode}}", u).stdout == b"3\n"
    proc = daemon.cli("inspect", "--format", "{{.Name}} {{.State.Status}}", cid[:12])
    assert proc.stdout == f"/{u} exited\n".encode()
    proc = daemon.cli("inspect", uniq("nope"), check=False)
    assert proc.returncode != 0 and b"No such" in proc.stderr


def test_cli_logs_tail_one_line(daemon, made):
    u = uniq("bt-tail")
    made.run(["sh", "-c", "echo one; echo two; echo three"], name=u)
    proc = daemon.cli("logs", "--tail", "1", u)
    assert proc.stdout == b"three\n" and proc.stderr == b""


def test_cli_rm_force(daemon, made):
    u = uniq("bt-clirm")
    cid = made.create(u, Cmd=["sleep", "300"])
    made.start(cid)
    proc = daemon.cli("rm", u, check=False)
    assert proc.returncode != 0 and b"Error response from daemon" in proc.stderr
    proc = daemon.cli("rm", "-f", u)
    assert proc.stdout == f"{u}\n".encode()
    assert daemon.api("GET", f"/containers/{cid}/json")[0] == 404


@pytest.mark.parametrize("kind", ["missing", "refused"])
@pytest.mark.parametrize("args", [("ps",), ("images",), ("run", "--rm", "busybox", "true"), ("logs", "x"),
                                  ("rm", "-f", "x"), ("inspect", "x")])
def test_cli_against_dead_socket(daemon, kind, args):
    with tempfile.TemporaryDirectory(prefix="bt-dead-") as d:
        path = os.path.join(d, "dead.sock")
        sock = None
        if kind == "refused":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(path)  # bound, never listening: connect is refused
        try:
            proc = daemon.cli("-H", f"unix://{path}", *args, check=False, timeout=20)
        finally:
            if sock:
                sock.close()
    err = proc.stderr.decode()
    assert proc.returncode != 0
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert "berthd" in err and path in err, err
    assert proc.stdout == b""


# -- layer sharing -------------------------------------------------------------------------------------------------


def _tree_size(path: str) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for n in filenames:
            total += os.lstat(os.path.join(dirpath, n)).st_size
    return total


def test_containers_share_image_layers(daemon, made):
    snapshots = os.path.join(daemon.data_root, "snapshots")
    before = sorted(os.listdir(snapshots))
    busybox = daemon.api("GET", "/images/busybox:latest/json")[1]
    ids = [made.create(Cmd=["sleep", "300"]) for _ in range(10)]
    for cid in ids:
        made.start(cid)
    assert sorted(os.listdir(snapshots)) == before, "containers must not copy or add snapshots"

    with open("/proc/self/mountinfo") as f:
        mountinfo = f.read().splitlines()
    uppers = set()
    for cid in ids:
        data = inspect(daemon, cid)["GraphDriver"]["Data"]
        merged, upper = data["MergedDir"], data["UpperDir"]
        line = next((m for m in mountinfo if m.split()[4] == merged), None)
        assert line is not None, f"{merged} is not mounted"
        opts = line.split(" - ", 1)[1]
        assert opts.startswith("overlay ")
        lower = re.search(r"lowerdir=([^,]+)", opts).group(1).split(":")
        assert all(os.path.dirname(p) == snapshots for p in lower), lower
        assert len(lower) == len(busybox["RootFS"]["Layers"])
        assert re.search(r"upperdir=([^,]+)", opts).group(1) == upper
        assert upper.startswith(os.path.join(daemon.data_root, "containers", cid))
        uppers.add(upper)
        # the container's own files are its upper dir and a few small ones, never a copy of the image
        own = _tree_size(upper) + sum(os.lstat(os.path.join(os.path.dirname(upper), n)).st_size
                                      for n in os.listdir(os.path.dirname(upper))
                                      if os.path.isfile(os.path.join(os.path.dirname(upper), n)))
        assert own < 256 * 1024, (cid, own)
    assert len(uppers) == 10
    assert sorted(os.listdir(snapshots)) == before


# -- attach --------------------------------------------------------------------------------------------------------


def attach_raw(daemon, cid: str) -> tuple[socket.socket, bytes]:
    """Docker's hijacked attach: (socket after the 101 answer, bytes already read past the head)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(daemon.socket)
    s.sendall(f"POST /v1.45/containers/{cid}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: berth\r\n"
              "Upgrade: tcp\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        assert chunk, buf
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    assert head.split(b" ", 2)[1] == b"101", head
    return s, rest


def test_attach_before_start_gets_all_output(daemon, made):
    cid = made.create(Cmd=["sh", "-c", "echo out; echo err >&2"], AttachStdout=True, AttachStderr=True)
    s, data = attach_raw(daemon, cid)
    made.start(cid)
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    frames = demux(data)
    assert joined(frames, 1) == b"out\n" and joined(frames, 2) == b"err\n"


def test_attach_before_start_under_concurrency(daemon, made):
    """What ``docker run`` does (attach, then start) must never lose the container's first output."""
    from concurrent.futures import ThreadPoolExecutor

    ids = [made.create(Cmd=["echo", f"hello-{i}"], AttachStdout=True, AttachStderr=True) for i in range(32)]

    def one(i: int) -> bytes:
        s, data = attach_raw(daemon, ids[i])
        made.start(ids[i])
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        return joined(demux(data), 1)

    with ThreadPoolExecutor(8) as ex:
        got = list(ex.map(one, range(len(ids))))
    lost = [(ids[i][:12], out) for i, out in enumerate(got) if out != f"hello-{i}\n".encode()]
    assert not lost, f"{len(lost)} of {len(ids)} attached runs lost their output: {lost}"
    # the output did reach the log each time
    for i, cid in enumerate(ids):
        assert joined(logs(daemon, cid), 1) == f"hello-{i}\n".encode()
