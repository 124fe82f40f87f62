"""Docker's volume JSON, and a container's ``Mounts`` as inspect and the list API show them."""
from __future__ import annotations

from berth.errors import InvalidArgument
from berth.types.volume import MountPoint, Volume


def volume(v: Volume, mountpoint: str, usage: dict | None = None) -> dict:
    out = {"CreatedAt": v.created, "Driver": v.driver, "Labels": v.labels or None, "Mountpoint": mountpoint,
           "Name": v.name, "Options": v.options or None, "Scope": "local"}
    if usage is not None:
        out["UsageData"] = usage
    return out


def create_args(body: dict) -> dict:
    """``POST /volumes/create`` → VolumeService.create keyword arguments."""
    name = body.get("Name") or ""
    if not isinstance(name, str):
        raise InvalidArgument("invalid type for Name: expected string")
    for key in ("DriverOpts", "Labels"):
        v = body.get(key)
        if v is not None and not (isinstance(v, dict) and all(isinstance(x, str) for x in v.values())):
            raise InvalidArgument(f"invalid type for {key}: expected an object of strings")
    return {"name": name, "driver": body.get("Driver") or "local", "options": dict(body.get("DriverOpts") or {}),
            "labels": dict(body.get("Labels") or {})}


def mounts(points: list[dict], path_of) -> list[dict]:
    """``Mounts``: each mount point with its host source (``path_of(volume name)`` for volumes)."""
    out = []
    for raw in points:
        m = MountPoint.from_dict(raw)
        item = {"Type": m.type}
        if m.type == "volume":
            item.update(Name=m.source, Source=path_of(m.source), Destination=m.destination, Driver="local",
                        Mode=m.mode, RW=m.rw, Propagation="")
        elif m.type == "bind":
            item.update(Source=m.source, Destination=m.destination, Mode=m.mode, RW=m.rw,
                        Propagation=m.propagation or "rprivate")
        else:
            item.update(Source="", Destination=m.destination, Mode="", RW=m.rw, Propagation="")
        out.append(item)
    return out
