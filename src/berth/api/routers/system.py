"""/_ping, /version, /info, /system/df and the swarm stub."""
from __future__ import annotations

from aiohttp import web

from berth.api.middleware import json_response

from berth.api.routes import add
from berth.errors import Unavailable
from berth.services.system import API_VERSION

PING_HEADERS = {"Api-Version": API_VERSION, "Ostype": "linux", "Docker-Experimental": "false",
                "Builder-Version": "1", "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}


def routes(app: web.Application) -> list:
    system = app["system"]
    r: list = []

    async def ping(request: web.Request) -> web.Response:
        if request.method == "HEAD":
            return web.Response(headers={**PING_HEADERS, "Content-Type": "text/plain; charset=utf-8",
                                         "Content-Length": "0"})
        return web.Response(text="OK", headers=PING_HEADERS)

    async def version(request: web.Request) -> web.Response:
        v = system.version()
        return json_response({
            "Platform": {"Name": "Berth Engine"},
            "Components": [{"Name": "Engine", "Version": v["version"],
                            "Details": {"ApiVersion": v["api"], "MinAPIVersion": v["min_api"], "Os": "linux",
                                        "Arch": v["arch"], "KernelVersion": v["kernel"]}}],
            "Version": v["version"], "ApiVersion": v["api"], "MinAPIVersion": v["min_api"], "GitCommit": "berth",
            "GoVersion": "n/a", "Os": "linux", "Arch": v["arch"], "KernelVersion": v["kernel"], "BuildTime": "",
        })

    async def info(request: web.Request) -> web.Response:
        n, h = system.counts(), system.host()
        return json_response({
            "ID": "berth", "Containers": n["containers"], "ContainersRunning": n["running"],
            "ContainersPaused": n["paused"], "ContainersStopped": n["stopped"], "Images": n["images"],
            "Driver": "overlay", "DriverStatus": [["Backing Filesystem", "overlayfs"]], "Plugins": {
                "Volume": [], "Network": ["host", "null"], "Authorization": None, "Log": ["json-file"]},
            "MemoryLimit": True, "SwapLimit": False, "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True,
            "CPUSet": True, "PidsLimit": True, "IPv4Forwarding": False, "Debug": False, "NFd": 0,
            "OomKillDisable": False, "NGoroutines": 0, "SystemTime": _now(), "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs", "CgroupVersion": system.cgroup_version, "NEventsListener": 0,
            "KernelVersion": h["kernel"], "OperatingSystem": h["os"], "OSVersion": "", "OSType": "linux",
            "Architecture": h["arch"], "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": registry_config(request.app["distribution"].hosts),
            "NCPU": h["ncpu"], "MemTotal": h["mem"], "DockerRootDir": system.data_root, "Name": h["name"],
            "Labels": [], "ExperimentalBuild": False, "ServerVersion": system.version()["version"],
            "Runtimes": {k: {"path": v} for k, v in system.runtimes.items()}, "DefaultRuntime": system.default_runtime,
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                      "Error": "", "RemoteManagers": None},
            "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "", "SecurityOptions": ["name=seccomp,profile=unconfined"],
            "Warnings": None,
        })

    async def swarm_leave(request: web.Request) -> web.Response:
        raise Unavailable("This node is not part of a swarm")

    add(r, "GET", "/_ping", ping)
    add(r, "HEAD", "/_ping", ping)
    add(r, "GET", "/version", version)
    add(r, "GET", "/info", info)
    async def df(request: web.Request) -> web.Response:
        from berth.api.serialize import containers as cser
        from berth.api.serialize import images as iser
        from berth.services.images import familiar
        images, containers = app["images"], app["containers"]
        imgs = [iser.list_item(i, familiar) for i in images.list({})]
        layers = sum(images.index.db.one("SELECT coalesce(sum(size), 0) FROM snapshots"))
        cs = [cser.list_item(c, c.spec.image, containers.size(c)) for c in containers.list(True, -1, {})]
        from berth.api.serialize import volumes as vser
        vols = app["volumes"]
        used = vols.users()
        vs = [vser.volume(v, vols.path(v.name), vols.usage(v, used)) for v in vols.list({}) if not v.options]
        return json_response({"LayersSize": layers, "Images": imgs, "Containers": cs, "Volumes": vs,
                                  "BuildCache": app["builder"].usage()})

    add(r, "POST", "/swarm/leave", swarm_leave)
    add(r, "GET", "/system/df", df)
    return r


def _now() -> str:
    from berth.runtime.logs import now_rfc3339
    return now_rfc3339()


def registry_config(hosts) -> dict:
    """``RegistryConfig`` of ``GET /info``: what ``insecure-registries`` and ``registry-mirrors`` say."""
    configs = {"docker.io": {"Name": "docker.io", "Mirrors": hosts.mirror_urls, "Secure": True, "Official": True}}
    for name in hosts.insecure_names:
        configs[name] = {"Name": name, "Mirrors": [], "Secure": False, "Official": False}
    return {"AllowNondistributableArtifactsCIDRs": None, "AllowNondistributableArtifactsHostnames": None,
            "InsecureRegistryCIDRs": hosts.insecure_cidrs, "IndexConfigs": configs, "Mirrors": hosts.mirror_urls}
