"""What compose asks of berthd, over the Engine API only: a thin typed wrapper over ``Transport``.

Answers are the API's JSON (plain dicts). Streaming calls (pull, build, logs, events) are iterators or take a
callback. ``Engine`` is safe to share between threads: each thread gets its own ``Transport``.
"""
from __future__ import annotations

import json
import struct
import threading
from collections.abc import Callable, Iterable, Iterator

from berth.client.transport import Hijacked, Response, Transport, path_quote
from berth.errors import BerthError, NotFound
from berth.types.reference import split_name

Message = Callable[[dict], None]


def label_filters(*labels: str, **others: list[str]) -> str:
    """The ``filters`` query value: ``{"label": [...], ...}`` as JSON."""
    f: dict[str, list[str]] = {}
    if labels:
        f["label"] = list(labels)
    for k, v in others.items():
        if v:
            f[k] = list(v)
    return json.dumps(f)


def _q(ref: str) -> str:
    return path_quote(ref)


def _stream_messages(resp: Response, on_message: Message | None) -> list[dict]:
    """Read a JSON-lines progress stream; raise on an ``error`` message."""
    out: list[dict] = []
    try:
        for line in resp.raw:
            line = line.strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            out.append(msg)
            if on_message:
                on_message(msg)
            if msg.get("error") or msg.get("errorDetail"):
                detail = msg.get("errorDetail") or {}
                raise BerthError(msg.get("error") or detail.get("message") or "unknown error")
    finally:
        resp.close()
    return out


def demux(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Split the multiplexed stream (8-byte headers: stream, 0, 0, 0, big-endian size) into (stream, data)."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        while len(buf) >= 8:
            stream, size = struct.unpack(">BxxxI", buf[:8])
            if len(buf) < 8 + size:
                break
            yield stream, buf[8:8 + size]
            buf = buf[8 + size:]
    if buf:
        yield 1, buf


def _chunks(resp: Response) -> Iterator[bytes]:
    try:
        while data := resp.raw.read1(65536):
            yield data
    finally:
        resp.close()


class Engine:
    """One daemon address; methods map one-to-one onto Engine API calls."""

    def __init__(self, host: str | None = None) -> None:
        self.host = host
        self._local = threading.local()

    @property
    def api(self) -> Transport:
        t = getattr(self._local, "transport", None)
        if t is None:
            t = self._local.transport = Transport(self.host)
        return t

    def _call(self, method: str, path: str, query: dict | None = None, body=None, headers: dict | None = None):
        return self.api.request(method, path, query, body, headers)

    def _json(self, method: str, path: str, query: dict | None = None, body=None):
        return self._call(method, path, query, body).json()

    def _void(self, method: str, path: str, query: dict | None = None, body=None) -> None:
        self._call(method, path, query, body).close()

    # ------------------------------------------------------------------ containers

    def containers(self, *labels: str, all: bool = True) -> list[dict]:
        """``GET /containers/json`` with label filters (``key`` or ``key=value``)."""
        return self._json("GET", "/containers/json", {"all": 1 if all else None,
                                                       "filters": label_filters(*labels) if labels else None}) or []

    def inspect_container(self, ref: str) -> dict:
        return self._json("GET", f"/containers/{_q(ref)}/json")

    def create_container(self, name: str | None, body: dict) -> str:
        """``POST /containers/create``; the new container's ID."""
        return self._json("POST", "/containers/create", {"name": name or None}, body)["Id"]

    def start(self, ref: str) -> None:
        self._void("POST", f"/containers/{_q(ref)}/start")

    def stop(self, ref: str, timeout: float | None = None, signal: str | None = None) -> None:
        self._void("POST", f"/containers/{_q(ref)}/stop",
                   {"t": None if timeout is None else int(timeout), "signal": signal})

    def kill(self, ref: str, signal: str | None = None) -> None:
        self._void("POST", f"/containers/{_q(ref)}/kill", {"signal": signal})

    def restart(self, ref: str, timeout: float | None = None) -> None:
        self._void("POST", f"/containers/{_q(ref)}/restart", {"t": None if timeout is None else int(timeout)})

    def pause(self, ref: str) -> None:
        self._void("POST", f"/containers/{_q(ref)}/pause")

    def unpause(self, ref: str) -> None:
        self._void("POST", f"/containers/{_q(ref)}/unpause")

    def remove_container(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        self._void("DELETE", f"/containers/{_q(ref)}", {"force": int(force), "v": int(volumes)})

    def wait(self, ref: str, condition: str = "not-running") -> int:
        """``POST /containers/{id}/wait``: blocks; the exit code."""
        res = self._json("POST", f"/containers/{_q(ref)}/wait", {"condition": condition})
        if res.get("Error") and res["Error"].get("Message"):
            raise BerthError(res["Error"]["Message"])
        return int(res.get("StatusCode", 0))

    def put_archive(self, ref: str, path: str, tar: bytes) -> None:
        """``PUT /containers/{id}/archive``: unpack ``tar`` at ``path`` in the container."""
        self._call("PUT", f"/containers/{_q(ref)}/archive", {"path": path}, tar,
                   {"Content-Type": "application/x-tar"}).close()

    def rename(self, ref: str, new_name: str) -> None:
        self._void("POST", f"/containers/{_q(ref)}/rename", {"name": new_name})

    def logs(self, ref: str, follow: bool = False, tail: str | int = "all", timestamps: bool = False,
             since: str | None = None, until: str | None = None, tty: bool | None = None) -> Iterator[tuple[int, bytes]]:
        """(stream, data) pairs: 1 stdout, 2 stderr (a TTY container's output is all stream 1)."""
        if tty is None:
            tty = bool(self.inspect_container(ref).get("Config", {}).get("Tty"))
        resp = self._call("GET", f"/containers/{_q(ref)}/logs", {
            "stdout": 1, "stderr": 1, "follow": int(follow), "tail": str(tail), "timestamps": int(timestamps),
            "since": since, "until": until})
        if tty:
            return ((1, c) for c in _chunks(resp))
        return demux(_chunks(resp))

    def exec_create(self, ref: str, cmd: list[str], *, tty: bool = False, stdin: bool = False, user: str = "",
                    workdir: str = "", env: list[str] = (), privileged: bool = False) -> str:
        body = {"Cmd": list(cmd), "Tty": tty, "AttachStdin": stdin, "AttachStdout": True, "AttachStderr": True,
                "Privileged": privileged}
        if user:
            body["User"] = user
        if workdir:
            body["WorkingDir"] = workdir
        if env:
            body["Env"] = list(env)
        return self._json("POST", f"/containers/{_q(ref)}/exec", None, body)["Id"]

    def exec_start(self, exec_id: str, tty: bool = False) -> Iterator[tuple[int, bytes]]:
        """Run a created exec, collecting its output as (stream, data) pairs."""
        resp = self._call("POST", f"/exec/{exec_id}/start", None, {"Detach": False, "Tty": tty})
        return ((1, c) for c in _chunks(resp)) if tty else demux(_chunks(resp))

    def exec_start_detached(self, exec_id: str) -> None:
        self._void("POST", f"/exec/{exec_id}/start", None, {"Detach": True, "Tty": False})

    def exec_attach(self, exec_id: str, tty: bool = False) -> Hijacked:
        """Start an exec on a hijacked two-way connection (interactive ``compose exec``)."""
        return self.api.hijack(f"/exec/{exec_id}/start", {}, {"Detach": False, "Tty": tty})

    def exec_inspect(self, exec_id: str) -> dict:
        return self._json("GET", f"/exec/{exec_id}/json")

    # ------------------------------------------------------------------ networks

    def networks(self, *labels: str, name: str | None = None) -> list[dict]:
        f = label_filters(*labels, name=[name] if name else [])
        return self._json("GET", "/networks", {"filters": f if f != "{}" else None}) or []

    def create_network(self, body: dict) -> str:
        return self._json("POST", "/networks/create", None, body)["Id"]

    def inspect_network(self, ref: str) -> dict:
        return self._json("GET", f"/networks/{_q(ref)}")

    def remove_network(self, ref: str) -> None:
        self._void("DELETE", f"/networks/{_q(ref)}")

    def connect(self, network: str, container: str, endpoint: dict | None = None) -> None:
        body: dict = {"Container": container}
        if endpoint:
            body["EndpointConfig"] = endpoint
        self._void("POST", f"/networks/{_q(network)}/connect", None, body)

    def disconnect(self, network: str, container: str, force: bool = False) -> None:
        self._void("POST", f"/networks/{_q(network)}/disconnect", None, {"Container": container, "Force": force})

    # ------------------------------------------------------------------ volumes

    def volumes(self, *labels: str) -> list[dict]:
        res = self._json("GET", "/volumes", {"filters": label_filters(*labels) if labels else None}) or {}
        return res.get("Volumes") or []

    def create_volume(self, body: dict) -> dict:
        return self._json("POST", "/volumes/create", None, body)

    def inspect_volume(self, name: str) -> dict:
        return self._json("GET", f"/volumes/{_q(name)}")

    def remove_volume(self, name: str, force: bool = False) -> None:
        self._void("DELETE", f"/volumes/{_q(name)}", {"force": int(force) or None})

    # ------------------------------------------------------------------ images

    def inspect_image(self, ref: str) -> dict:
        return self._json("GET", f"/images/{path_quote(ref)}/json")

    def image_exists(self, ref: str) -> bool:
        try:
            self.inspect_image(ref)
            return True
        except NotFound:
            return False

    def pull(self, image: str, on_message: Message | None = None, platform: str = "",
             auth: str | None = None) -> list[dict]:
        """``POST /images/create?fromImage=&tag=``; the progress messages (an ``error`` one raises)."""
        name, tag = split_name(image)
        q = {"fromImage": name, "tag": tag or None, "platform": platform or None}
        headers = {"X-Registry-Auth": auth} if auth else None
        return _stream_messages(self._call("POST", "/images/create", q, None, headers), on_message)

    def remove_image(self, ref: str, force: bool = False) -> list[dict]:
        return self._json("DELETE", f"/images/{path_quote(ref)}", {"force": int(force) or None}) or []

    def build(self, context: Iterable[bytes] | bytes, *, tag: str = "", dockerfile: str = "",
              args: dict[str, str] | None = None, target: str = "", labels: dict[str, str] | None = None,
              no_cache: bool = False, pull: bool = False, network: str = "", extra_hosts: Iterable[str] = (),
              cache_from: Iterable[str] = (), on_message: Message | None = None) -> str:
        """``POST /build`` with a tar context; the built image's ID."""
        q = {"t": tag or None, "dockerfile": dockerfile or None, "target": target or None,
             "buildargs": json.dumps(args) if args else None, "labels": json.dumps(labels) if labels else None,
             "nocache": int(no_cache) or None, "pull": int(pull) or None, "networkmode": network or None,
             "extrahosts": ",".join(extra_hosts) or None, "rm": 1,
             "cachefrom": json.dumps(list(cache_from)) if cache_from else None}
        from berth.client.credentials import registry_config_header
        resp = self._call("POST", "/build", q, context, {"Content-Type": "application/x-tar",
                                                         "X-Registry-Config": registry_config_header()})
        image_id = ""
        for msg in _stream_messages(resp, on_message):
            aux = msg.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = aux["ID"]
            elif isinstance(msg.get("stream"), str) and msg["stream"].startswith("Successfully built "):
                image_id = image_id or msg["stream"].split()[-1]
        if not image_id and tag:
            image_id = self.inspect_image(tag)["Id"]
        return image_id

    # ------------------------------------------------------------------ events

    def events(self, *labels: str, since: str | None = None, until: str | None = None,
               types: Iterable[str] = ()) -> Iterator[dict]:
        """``GET /events``: one dict per event until the stream ends (``until``) or the caller stops."""
        f = label_filters(*labels, type=list(types))
        resp = self._call("GET", "/events", {"filters": f if f != "{}" else None, "since": since, "until": until})
        try:
            for line in resp.raw:
                line = line.strip()
                if line:
                    try:
                        yield json.loads(line)
                    except ValueError:
                        continue
        finally:
            resp.close()

