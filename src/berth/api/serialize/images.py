"""Docker's image JSON: inspect, list and history shapes."""
from __future__ import annotations

import json

from berth.runtime.logs import parse_time
from berth.types.image import ImageRecord


def _familiar_tags(img: ImageRecord, familiar) -> list[str]:
    return [familiar(t) for t in img.tags]


def inspect(img: ImageRecord, familiar, parent: str = "") -> dict:
    out = _inspect(img, familiar, parent)
    # Deprecated in API 1.44 but read by older clients (docker-compose 1.29 looks up its Volumes).
    out["Container"], out["ContainerConfig"] = "", dict(out["Config"])
    return out


def _inspect(img: ImageRecord, familiar, parent: str = "") -> dict:
    c = img.config
    return {
        "Id": img.id, "RepoTags": _familiar_tags(img, familiar), "RepoDigests": [familiar(d) for d in img.repo_digests], "Parent": parent, "Comment": "",
        "Created": img.created, "DockerVersion": "", "Author": c.author,
        "Config": {"Hostname": "", "Domainname": "", "User": c.user, "AttachStdin": False, "AttachStdout": False,
                   "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": c.env or None,
                   "Cmd": c.cmd, "Image": "", "Volumes": c.volumes or None, "WorkingDir": c.working_dir,
                   "Entrypoint": c.entrypoint, "OnBuild": c.onbuild or None, "Labels": c.labels or None,
                   **({"ExposedPorts": c.exposed_ports} if c.exposed_ports else {}),
                   **({"StopSignal": c.stop_signal} if c.stop_signal else {}),
                   **({"Healthcheck": c.healthcheck} if c.healthcheck else {}),
                   **({"Shell": c.shell} if c.shell else {})},
        "Architecture": c.architecture, "Os": c.os, "Size": img.size, "VirtualSize": img.size,
        "GraphDriver": {"Name": "overlay", "Data": None},
        "RootFS": {"Type": "layers", "Layers": c.diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


def list_item(img: ImageRecord, familiar) -> dict:
    return {
        "Id": img.id, "ParentId": "", "RepoTags": _familiar_tags(img, familiar), "RepoDigests": [familiar(d) for d in img.repo_digests],
        "Created": int(parse_time(img.created)), "Size": img.size, "SharedSize": -1, "VirtualSize": img.size,
        "Labels": img.config.labels or {}, "Containers": img.containers,
    }


def history(img: ImageRecord, familiar) -> list[dict]:
    """Newest first; each entry that made a layer carries that layer's size."""
    entries = img.config.history or [{"created": img.created, "created_by": ""}]
    sizes = list(img.layer_sizes)
    sized = []
    for h in entries:
        sized.append(0 if h.get("empty_layer") or not sizes else sizes.pop(0))
    out = []
    for i, (h, size) in enumerate(reversed(list(zip(entries, sized)))):
        top = i == 0
        out.append({
            "Id": img.id if top else "<missing>", "Created": int(parse_time(h.get("created", ""))),
            "CreatedBy": h.get("created_by", ""), "Tags": _familiar_tags(img, familiar) if top else None,
            "Size": size, "Comment": h.get("comment", ""),
        })
    return out


def dumps(obj) -> bytes:
    return json.dumps(obj).encode()
