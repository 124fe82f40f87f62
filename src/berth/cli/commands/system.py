"""berth info, version, system df."""
from __future__ import annotations

import os
import sys

from berth import __version__
from berth.cli.common import parser
from berth.client.transport import DaemonUnreachable, Transport


def version(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "[OPTIONS]")
    p.add_argument("-f", "--format")
    a = p.parse_args(argv)
    pyver = "%d.%d.%d" % sys.version_info[:3]
    client = {"Version": __version__, "ApiVersion": "1.45", "Os": "linux", "Arch": os.uname().machine,
              "GoVersion": f"python{pyver}"}
    try:
        server = api.request("GET", "/version").json()
    except DaemonUnreachable as e:
        server, err = None, e
    else:
        err = None
    if a.format:
        from berth.cli import output
        print(output.render_template(a.format.replace("\\n", "\n"), {"Client": client, "Server": server}))
    else:
        print(f"Client:\n Version:           {client['Version']}\n API version:       {client['ApiVersion']}\n"
              f" Python version:    {pyver}\n OS/Arch:           linux/{client['Arch']}")
        if server:
            print(f"\nServer: {server.get('Platform', {}).get('Name', '')}\n Engine:\n"
                  f"  Version:          {server['Version']}\n"
                  f"  API version:      {server['ApiVersion']} (minimum version {server['MinAPIVersion']})\n"
                  f"  OS/Arch:          {server['Os']}/{server['Arch']}\n"
                  f"  Kernel version:   {server.get('KernelVersion', '')}")
    if err:
        print(err, file=sys.stderr)
        return 1
    return 0


def info(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "[OPTIONS]")
    p.add_argument("-f", "--format")
    a = p.parse_args(argv)
    i = api.request("GET", "/info").json()
    from berth.cli import output
    if a.format:
        print(output.render_template(a.format, i))
        return 0
    print(f"Server:\n Containers: {i['Containers']}\n  Running: {i['ContainersRunning']}\n"
          f"  Paused: {i['ContainersPaused']}\n  Stopped: {i['ContainersStopped']}\n Images: {i['Images']}\n"
          f" Server Version: {i['ServerVersion']}\n Storage Driver: {i['Driver']}\n"
          f" Logging Driver: {i['LoggingDriver']}\n Cgroup Driver: {i['CgroupDriver']}\n"
          f" Cgroup Version: {i['CgroupVersion']}\n Runtimes: {' '.join(i['Runtimes'])}\n"
          f" Default Runtime: {i['DefaultRuntime']}\n Kernel Version: {i['KernelVersion']}\n"
          f" Operating System: {i['OperatingSystem']}\n OSType: {i['OSType']}\n Architecture: {i['Architecture']}\n"
          f" CPUs: {i['NCPU']}\n Total Memory: {i['MemTotal'] / (1 << 30):.2f}GiB\n Name: {i['Name']}\n"
          f" Berth Root Dir: {i['DockerRootDir']}")
    return 0


def df(api: Transport, name: str, argv: list[str]) -> int:
    from berth.types.units import human_size
    p = parser(name, "[OPTIONS]")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--format")
    a = p.parse_args(argv)
    from berth.cli import output
    from berth.cli.commands import volumes
    d = api.request("GET", "/system/df").json()
    imgs, cs = d.get("Images") or [], d.get("Containers") or []
    active_imgs = sum(1 for i in imgs if i.get("Containers", 0) > 0)
    img_size = sum(i["Size"] for i in imgs)
    unused = sum(i["Size"] for i in imgs if not i.get("Containers"))
    c_size = sum(c.get("SizeRw", 0) for c in cs)
    c_unused = sum(c.get("SizeRw", 0) for c in cs if c["State"] != "running")

    def pct(part: int, whole: int) -> str:
        return f"{human_size(part)} ({part * 100 // whole if whole else 0}%)"

    rows = [
        {"Type": "Images", "TotalCount": str(len(imgs)), "Active": str(active_imgs), "Size": human_size(img_size),
         "Reclaimable": pct(unused, img_size)},
        {"Type": "Containers", "TotalCount": str(len(cs)), "Active": str(sum(c["State"] == "running" for c in cs)),
         "Size": human_size(c_size), "Reclaimable": pct(c_unused, c_size)},
        volumes.df_summary(d.get("Volumes") or []),
        {"Type": "Build Cache", "TotalCount": str(len(d.get("BuildCache") or [])), "Active": "0",
         "Size": human_size(sum(b.get("Size", 0) for b in d.get("BuildCache") or [])),
         "Reclaimable": human_size(sum(b.get("Size", 0) for b in d.get("BuildCache") or []))},
    ]
    if a.verbose and (not a.format or a.format == "table"):
        print(_df_images(imgs) + "\n\n" + _df_containers(cs) + "\n\n" + volumes.df_section(d.get("Volumes") or [])
              + "\n\n" + _df_build_cache(d.get("BuildCache") or []))
        return 0
    print(output.format_rows(rows, a.format, "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
                             {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
                              "Reclaimable": "RECLAIMABLE"}))
    return 0


def _df_images(imgs: list[dict]) -> str:
    """``system df -v``'s "Images space usage:" section, as the docker CLI prints it."""
    import time
    from berth.cli import output
    from berth.types.units import format_created, human_size
    now, rows = time.time(), []
    for i in imgs:
        tags = i.get("RepoTags") or ["<none>:<none>"]
        for tag in tags:
            repo, _, t = tag.rpartition(":")
            shared = i.get("SharedSize", -1)  # -1: not computed, which the docker CLI shows as N/A
            rows.append({"Repository": repo, "Tag": t, "ID": i["Id"].split(":")[-1][:12],
                         "CreatedSince": format_created(i.get("Created", 0), now), "Size": human_size(i["Size"], 3),
                         "SharedSize": human_size(shared, 3) if shared >= 0 else "N/A",
                         "UniqueSize": human_size(i["Size"] - shared, 3) if shared >= 0 else "N/A",
                         "Containers": str(max(i.get("Containers", 0), 0))})
    table = ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}"
             "\t{{.UniqueSize}}\t{{.Containers}}")
    return "Images space usage:\n\n" + output.format_rows(rows, table, table, {
        "Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED", "Size": "SIZE",
        "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS"})


def _df_containers(cs: list[dict]) -> str:
    """``system df -v``'s "Containers space usage:" section."""
    import time
    from berth.cli import output
    from berth.types.units import format_created, human_size
    now, rows = time.time(), []
    for c in cs:
        command = c.get("Command", "")
        rows.append({"ID": c["Id"][:12], "Image": c.get("Image", ""),
                     "Command": '"' + (command if len(command) <= 20 else command[:19] + "…") + '"',
                     "LocalVolumes": str(sum(m.get("Type") == "volume" for m in c.get("Mounts") or [])),
                     "Size": human_size(c.get("SizeRw", 0)), "RunningFor": format_created(c.get("Created", 0), now),
                     "Status": c.get("Status", ""), "Names": ",".join(n.lstrip("/") for n in c.get("Names") or [])})
    table = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}"
             "\t{{.Status}}\t{{.Names}}")
    return "Containers space usage:\n\n" + output.format_rows(rows, table, table, {
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "LocalVolumes": "LOCAL VOLUMES",
        "Size": "SIZE", "RunningFor": "CREATED", "Status": "STATUS", "Names": "NAMES"})


def _df_build_cache(records: list[dict]) -> str:
    """``system df -v``'s build cache section: one row per cached build step."""
    import time
    from berth.cli import output
    from berth.types.units import format_created, human_size, parse_rfc3339
    now = time.time()
    rows = [{"ID": b.get("ID", ""), "CacheType": b.get("Type", ""), "Size": human_size(b.get("Size", 0)),
             "CreatedSince": format_created(parse_rfc3339(b.get("CreatedAt")) or now, now), "LastUsedSince": "",
             "UsageCount": str(b.get("UsageCount", 0)), "Shared": str(b.get("Shared", False)).lower()}
            for b in records]
    table = ("table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}"
             "\t{{.Shared}}")
    total = human_size(sum(b.get("Size", 0) for b in records))
    return f"Build cache usage: {total}\n\n" + output.format_rows(rows, table, table, {
        "ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED",
        "LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED"})
