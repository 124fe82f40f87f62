"""The Engine API's edges against a real berthd: ping and version negotiation, routes berth does not
implement, and the status codes and error texts Docker clients rely on for bad requests.

Needs root, runc and busybox (the session ``daemon`` fixture skips otherwise).
"""
from __future__ import annotations

import json
import threading
import uuid
from urllib.parse import quote

import pytest

from tests.support.made import Made as BaseMade
from tests.support.daemon import _Unix, wait_for


def uniq(prefix: str = "bt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def http(daemon, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """(status, headers, raw body) of one request, headers looked up case-insensitively."""
    conn = _Unix(daemon.socket, 30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.headers, data
    finally:
        conn.close()


class Made(BaseMade):
    """Containers a test made; removed with force at teardown."""

    def __init__(self, daemon) -> None:
        super().__init__(daemon)
        self.ids = self.containers

    def create(self, name: str | None = None, **body) -> str:
        body.setdefault("Image", "busybox:latest")
        path = "/containers/create" + (f"?name={name}" if name else "")
        status, r = self.daemon.api("POST", path, body)
        assert status == 201, (status, r, self.daemon.tail_log())
        self.ids.append(r["Id"])
        return r["Id"]

    def running(self, name: str | None = None) -> str:
        cid = self.create(name, Cmd=["sleep", "300"])
        status, r = self.daemon.api("POST", f"/containers/{cid}/start")
        assert status == 204, (status, r, self.daemon.tail_log())
        return cid


def all_containers(daemon) -> list[dict]:
    status, items = daemon.api("GET", "/containers/json?all=1")
    assert status == 200, items
    return items


def assert_error(status: int, body, want_status: int) -> str:
    """The status is ``want_status`` and the body Docker's JSON error; returns the message."""
    assert status == want_status, (status, body)
    assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"], body
    return body["message"]


# -- ping and version ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("prefix", ["", "/v1.45", "/v1.24"])
def test_ping_headers(daemon, method, prefix):
    status, headers, body = http(daemon, method, prefix + "/_ping")
    assert status == 200
    assert headers["Api-Version"] == "1.45"
    assert headers["Ostype"] == "linux"
    assert headers["Docker-Experimental"] in ("true", "false")
    assert headers["Builder-Version"]
    assert "no-cache" in headers.get("Cache-Control", "")
    assert body == (b"OK" if method == "GET" else b"")


def test_version_reports_api_range(daemon):
    status, v = daemon.api("GET", "/version")
    assert status == 200
    assert v["ApiVersion"] == "1.45"
    assert v["MinAPIVersion"] == "1.24"
    assert v["Os"] == "linux"
    assert isinstance(v["Version"], str) and v["Version"]
    assert isinstance(v["KernelVersion"], str) and v["KernelVersion"]


@pytest.mark.parametrize("path", ["/v1.24/version", "/v1.45/version", "/v1.30/version", "/v1.45/containers/json",
                                  "/v1.24/images/json", "/v1.45/info"])
def test_version_prefixes_are_accepted(daemon, path):
    status, body = daemon.api("GET", path)
    assert status == 200, body
    if path.endswith("/version"):
        assert body["ApiVersion"] == "1.45"


def test_too_new_api_version_is_400(daemon):
    status, body = daemon.api("GET", "/v1.99/version")
    msg = assert_error(status, body, 400)
    assert "1.99" in msg and "too new" in msg and "1.45" in msg, msg


def test_too_old_api_version_is_400(daemon):
    status, body = daemon.api("GET", "/v1.12/version")
    msg = assert_error(status, body, 400)
    assert "1.12" in msg and "too old" in msg and "1.24" in msg, msg


def test_version_prefix_checked_on_every_route(daemon):
    status, body = daemon.api("GET", "/v1.99/containers/json")
    assert "too new" in assert_error(status, body, 400)
    status, body = daemon.api("POST", "/v1.12/containers/create", {"Image": "busybox"})
    assert "too old" in assert_error(status, body, 400)


# -- routes berth does not implement -------------------------------------------------------------------------------


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1.45/swarm"), ("GET", "/nodes"), ("GET", "/services"),
    ("GET", "/v1.45/secrets"), ("POST", "/session"), ("GET", "/plugins"),
])
def test_unimplemented_route_is_501_json(daemon, method, path):
    body = b"not really a tar" if method == "POST" else None
    status, headers, raw = http(daemon, method, path, body, {"Content-Type": "application/x-tar"} if body else None)
    assert status == 501, (status, raw[:300])
    assert headers.get("Content-Type", "").startswith("application/json"), headers.get("Content-Type")
    assert not raw.lstrip().startswith(b"<"), raw[:200]
    msg = json.loads(raw)["message"]
    assert isinstance(msg, str) and msg


def test_wrong_method_on_known_path_is_json_not_html(daemon):
    status, headers, raw = http(daemon, "PUT", "/containers/json")
    assert status in (404, 405, 501), (status, raw[:200])
    assert headers.get("Content-Type", "").startswith("application/json")
    assert json.loads(raw)["message"]


def test_swarm_leave_is_503_not_a_swarm(daemon):
    status, body = daemon.api("POST", "/swarm/leave")
    assert assert_error(status, body, 503) == "This node is not part of a swarm"
    status, body = daemon.api("POST", "/v1.45/swarm/leave?force=1")
    assert assert_error(status, body, 503) == "This node is not part of a swarm"


# -- bad create requests -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b'{"Image": "busybox",', b"not json at all", b"[1, 2, 3]", b'"busybox"'])
def test_malformed_create_body_is_400(daemon, raw):
    before = len(all_containers(daemon))
    status, body = daemon.api("POST", "/containers/create", raw, {"Content-Type": "application/json"})
    assert_error(status, body, 400)
    assert len(all_containers(daemon)) == before


@pytest.mark.parametrize("body,field", [
    ({"Image": "busybox", "Cmd": 5}, "Cmd"),
    ({"Image": "busybox", "Env": "x"}, "Env"),
    ({"Image": "busybox", "HostConfig": {"AutoRemove": "yes"}}, "AutoRemove"),
    ({"Image": "busybox", "Labels": ["a=b"]}, "Labels"),
    ({"Image": 7}, "Image"),
    ({"Image": "busybox", "Tty": "true"}, "Tty"),
])
def test_wrong_field_type_is_400_naming_the_field(daemon, body, field):
    before = len(all_containers(daemon))
    status, resp = daemon.api("POST", f"/containers/create?name={uniq()}", body)
    msg = assert_error(status, resp, 400)
    assert field in msg, msg
    assert len(all_containers(daemon)) == before


def test_unknown_image_is_404_no_such_image(daemon):
    status, body = daemon.api("POST", "/containers/create", {"Image": "nope:latest"})
    assert assert_error(status, body, 404) == "No such image: nope:latest"
    status, body = daemon.api("POST", "/containers/create", {"Image": "nope"})
    msg = assert_error(status, body, 404)
    assert msg.startswith("No such image: nope"), msg
    status, body = daemon.api("GET", "/images/nope-at-all:1/json")
    assert assert_error(status, body, 404).startswith("No such image: ")


@pytest.mark.parametrize("method,suffix", [
    ("GET", "/json"), ("POST", "/start"), ("POST", "/stop"), ("POST", "/kill"), ("POST", "/restart"),
    ("GET", "/logs?stdout=1"), ("DELETE", ""), ("DELETE", "?force=1"), ("POST", "/wait"),
])
def test_unknown_container_is_404(daemon, method, suffix):
    name = uniq("x")
    path = f"/containers/{name}{suffix}"
    status, body = daemon.api(method, path)
    assert assert_error(status, body, 404) == f"No such container: {name}"


def test_name_conflict_is_409_with_dockers_text(daemon, made):
    name = uniq("dup")
    cid = made.create(name)
    status, body = daemon.api("POST", f"/containers/create?name={name}", {"Image": "busybox"})
    msg = assert_error(status, body, 409)
    assert msg == (f'Conflict. The container name "/{name}" is already in use by container "{cid}". '
                   "You have to remove (or rename) that container to be able to reuse that name.")
    # a leading slash names the same container
    status, body = daemon.api("POST", f"/containers/create?name=/{name}", {"Image": "busybox"})
    assert assert_error(status, body, 409) == msg
    assert [c["Id"] for c in all_containers(daemon) if f"/{name}" in c["Names"]] == [cid]


def test_concurrent_creates_of_one_name(daemon, made):
    name = uniq("race")
    barrier = threading.Barrier(2)
    results: list[tuple[int, object]] = []
    lock = threading.Lock()

    def create() -> None:
        barrier.wait()
        r = daemon.api("POST", f"/containers/create?name={name}", {"Image": "busybox", "Cmd": ["true"]})
        with lock:
            results.append(r)

    threads = [threading.Thread(target=create) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for status, body in results:
        if status == 201:
            made.ids.append(body["Id"])
    assert sorted(s for s, _ in results) == [201, 409], results
    winner = next(b["Id"] for s, b in results if s == 201)
    loser = next(b for s, b in results if s == 409)
    assert f'"{winner}"' in loser["message"], loser
    assert [c["Id"] for c in all_containers(daemon) if f"/{name}" in c["Names"]] == [winner]
    status, info = daemon.api("GET", f"/containers/{name}/json")
    assert status == 200 and info["Id"] == winner


def test_invalid_name_is_400(daemon):
    status, body = daemon.api("POST", "/containers/create?name=bad%20name!", {"Image": "busybox"})
    assert_error(status, body, 400)


# -- state conflicts -----------------------------------------------------------------------------------------------


def test_remove_running_without_force_is_409(daemon, made):
    cid = made.running()
    status, body = daemon.api("DELETE", f"/containers/{cid}")
    assert_error(status, body, 409)
    status, info = daemon.api("GET", f"/containers/{cid}/json")
    assert status == 200 and info["State"]["Running"] is True
    status, _ = daemon.api("DELETE", f"/containers/{cid}?force=1")
    assert status == 204
    assert daemon.api("GET", f"/containers/{cid}/json")[0] == 404


def test_kill_of_stopped_container_is_409(daemon, made):
    cid = made.create(Cmd=["true"])
    status, body = daemon.api("POST", f"/containers/{cid}/kill")
    msg = assert_error(status, body, 409)
    assert "is not running" in msg, msg
    # and after it ran and exited
    assert daemon.api("POST", f"/containers/{cid}/start")[0] == 204
    assert daemon.api("POST", f"/containers/{cid}/wait")[1]["StatusCode"] == 0
    status, body = daemon.api("POST", f"/containers/{cid}/kill?signal=TERM")
    assert "is not running" in assert_error(status, body, 409)


def test_start_of_running_container_is_304(daemon, made):
    cid = made.running()
    status, headers, raw = http(daemon, "POST", f"/containers/{cid}/start")
    assert status == 304
    assert raw == b""
    status, info = daemon.api("GET", f"/containers/{cid}/json")
    assert info["State"]["Running"] is True


def test_stop_of_stopped_container_is_304(daemon, made):
    cid = made.create(Cmd=["true"])
    status, _, raw = http(daemon, "POST", f"/containers/{cid}/stop")
    assert status == 304 and raw == b""


@pytest.mark.parametrize("signal", ["FOO", "SIGNOPE", "999", "-1"])
def test_invalid_signal_is_400(daemon, made, signal):
    cid = made.running()
    status, body = daemon.api("POST", f"/containers/{cid}/kill?signal={signal}")
    assert_error(status, body, 400)
    status, info = daemon.api("GET", f"/containers/{cid}/json")
    assert info["State"]["Running"] is True


def test_valid_signal_names_kill(daemon, made):
    cid = made.running()
    assert daemon.api("POST", f"/containers/{cid}/kill?signal=SIGKILL")[0] == 204
    status, body = daemon.api("POST", f"/containers/{cid}/wait")
    assert status == 200 and body["StatusCode"] == 137


def test_invalid_wait_condition_is_400(daemon, made):
    cid = made.create(Cmd=["true"])
    status, body = daemon.api("POST", f"/containers/{cid}/wait?condition=bogus")
    assert_error(status, body, 400)


def test_invalid_filters_are_400(daemon):
    status, body = daemon.api("GET", "/containers/json?filters=%7Bnot-json")
    assert_error(status, body, 400)
    status, body = daemon.api("GET", "/containers/json?filters=" + quote(json.dumps({"nosuchfilter": ["x"]})))
    assert_error(status, body, 400)
    status, body = daemon.api("GET", "/containers/json?filters=" + quote(json.dumps({"status": ["sleeping"]})))
    assert_error(status, body, 400)


def test_logs_without_streams_is_400(daemon, made):
    cid = made.create(Cmd=["true"])
    status, body = daemon.api("GET", f"/containers/{cid}/logs")
    assert_error(status, body, 400)


def test_daemon_survives_the_errors(daemon):
    """None of the above left berthd broken or logged an internal error."""
    wait_for(lambda: daemon.api("GET", "/_ping")[0] == 200, 5, what="ping")
    assert "internal error" not in daemon.tail_log(200_000), daemon.tail_log()
