#!/usr/bin/env python3
"""Registry benchmarks (issue 7), side by side with docker, in one run (never a test).

usage: sudo .venv/bin/python bench/registry.py [--runs 15] [--big-mb 200] [--big-runs 3] [--peers] [--json OUT]

Starts its own berthd (tests/support/daemon.Daemon), a docker-registry 2.8 (Debian's, plain HTTP) and a
`berth registry`, each on a free 127.0.0.1 port, and seeds the images with skopeo:
  small  one 2 MB layer of random bytes (2 MB compressed too), as the issue's "2 MB image";
  big    --big-mb of random bytes in 8 layers, each a few files (8 x 25 MB for 200).
Times whole CLI commands, `berth -H SOCK pull -q` / `push -q`, and with --peers `docker pull -q` / `push -q`
against dockerd 20.10 (../shared/peers/setup-peers.sh; 127.0.0.0/8 is insecure by default there too), run by
run across engines (common.lockstep), medians and p90s:
  1. cold pull of small (the image and its layer removed after each run, untimed);
  2. pull of small with the image present (`Image is up to date`: the manifest is fetched, nothing else);
  3. push of small with every blob in the registry already (HEADs and the manifest PUT);
  4. cold pull of big (--big-runs each), and berth's unpack rate: big's uncompressed bytes / pull time;
  5. 50 concurrent pulls of small (manifest + config + layer, digests checked) by an aiohttp client,
     from `berth registry` and from docker-registry: pulls/s and MB/s.
Targets: big cold pull no slower than docker, unpacking >= 200 MB/s. Everything made is removed at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import Engine, Failed, cell, lockstep, parse_root_args, ratio_cell, render  # noqa: E402
from engine import LAB_DOCKER, Daemon  # noqa: E402

from tests.support.distribution import DistributionRegistry, make_image_archive, seed  # noqa: E402
from tests.support.registry_server import BerthRegistry  # noqa: E402


def random_layers(total_mb: int, layers: int) -> list[dict[str, bytes]]:
    per = total_mb * 1_000_000 // layers
    return [{f"data{i}/f{j}.bin": os.urandom(per // 4) for j in range(4)} for i in range(layers)]


def engines(d: Daemon, peers: bool) -> list[Engine]:
    py = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = [Engine("berth", [str(Path(sys.executable).parent / "berth"), "-H", d.host], "", py)]
    if peers:
        if os.path.exists(LAB_DOCKER):
            out.append(Engine("docker", ["docker"], "", {**os.environ, "DOCKER_HOST": "unix://" + LAB_DOCKER}))
        else:
            print(f"docker: skipped, no {LAB_DOCKER} (run ../shared/peers/setup-peers.sh)", file=sys.stderr)
    return out


def purge(e: Engine, ref: str) -> None:
    e.sh("rmi", "-f", ref)


async def concurrent_pulls(addr: str, repo: str, tag: str, n: int) -> tuple[float, int]:
    """(seconds, bytes) for ``n`` simultaneous manifest+blob fetches of one image, digests checked."""
    import aiohttp
    accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"

    async def one(s: aiohttp.ClientSession) -> int:
        async with s.get(f"http://{addr}/v2/{repo}/manifests/{tag}", headers={"Accept": accept}) as r:
            m = json.loads(await r.read())
        got = 0
        for desc in [m["config"], *m["layers"]]:
            h = hashlib.sha256()
            async with s.get(f"http://{addr}/v2/{repo}/blobs/{desc['digest']}") as r:
                async for chunk in r.content.iter_chunked(1 << 20):
                    h.update(chunk)
                    got += len(chunk)
            if "sha256:" + h.hexdigest() != desc["digest"]:
                raise Failed(f"{addr}: blob {desc['digest']} does not match")
        return got

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=n)) as s:
        await one(s)  # warm
        t0 = time.perf_counter()
        sizes = await asyncio.gather(*(one(s) for _ in range(n)))
        return time.perf_counter() - t0, sum(sizes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--big-mb", type=int, default=200)
    ap.add_argument("--big-runs", type=int, default=3)
    ap.add_argument("--concurrent", type=int, default=50)
    a = parse_root_args(ap, "berthd needs root")
    tmp = tempfile.mkdtemp(prefix="bt-bench-reg-", dir="/tmp")
    res: dict = {}
    d = Daemon()
    dist = DistributionRegistry(os.path.join(tmp, "dist"))
    os.makedirs(dist.workdir)
    ours = BerthRegistry(os.path.join(tmp, "berth-registry"))
    es: list[Engine] = []
    try:
        d.start()
        dist.start()
        ours.start()
        make_image_archive(os.path.join(tmp, "small.tar"), [{"blob.bin": os.urandom(2_000_000)}], "gzip")
        big_mb = a.big_mb
        make_image_archive(os.path.join(tmp, "big.tar"), random_layers(big_mb, 8), "gzip")
        for reg in (dist, ours):
            seed(reg, "bench/small:1", os.path.join(tmp, "small.tar"))
        seed(dist, "bench/big:1", os.path.join(tmp, "big.tar"))
        es = engines(d, a.peers)
        for e in es:
            res[e.name] = {}
        small_ref, big_ref = f"{dist.addr}/bench/small:1", f"{dist.addr}/bench/big:1"
        push_ref = f"{dist.addr}/bench/pushed:1"

        lockstep(es, res, "cold pull", lambda e, i: e.sh("pull", "-q", small_ref),
                 a.runs, after=lambda e, i: purge(e, small_ref))
        for e in es:
            e.sh("pull", "-q", small_ref)
        lockstep(es, res, "pull, present", lambda e, i: e.sh("pull", "-q", small_ref), a.runs)
        for e in es:
            e.sh("tag", small_ref, push_ref)
            e.sh("push", "-q", push_ref)
        lockstep(es, res, "push, present", lambda e, i: e.sh("push", "-q", push_ref), a.runs)
        for e in es:
            purge(e, push_ref)
            purge(e, small_ref)
        lockstep(es, res, "big cold pull", lambda e, i: e.sh("pull", "-q", big_ref, timeout=600),
                 a.big_runs, warmup=0, after=lambda e, i: purge(e, big_ref))
        unpacked = big_mb * 1_000_000  # the payload (tar headers are noise)
        for e in es:
            v = res[e.name].get("big cold pull")
            if isinstance(v, tuple):
                res[e.name]["unpack MB/s"] = unpacked / 1e6 / (v[0] / 1000)
        for reg, name in ((ours, "berth registry"), (dist, "docker-registry")):
            secs, total = asyncio.run(concurrent_pulls(reg.addr, "bench/small", "1", a.concurrent))
            res.setdefault("serve", {})[name] = (a.concurrent / secs, total / 1e6 / secs)
    except Failed as err:
        print(f"failed: {err}", file=sys.stderr)
        res["error"] = str(err)
    finally:
        for e in es:
            e.cleanup()
        ours.close() if hasattr(ours, "close") else ours.stop()
        dist.stop()
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    who = [e.name for e in es] or ["berth"]
    cols = ["measure (ms, median / p90)"] + who + (["berth/docker"] if "docker" in who else [])
    rows = []
    for m in ("cold pull", "pull, present", "push, present", "big cold pull"):
        row = [m] + [cell(res.get(w, {}).get(m)) for w in who]
        if "docker" in who:
            row.append(ratio_cell(res["berth"].get(m), res["docker"].get(m)))
        rows.append(row)
    rows.append(["big unpack MB/s"] + [f"{res.get(w, {}).get('unpack MB/s', 0):.0f}" for w in who]
                + ([""] if "docker" in who else []))
    print(render(res, who, cols, rows, f"runs {a.runs}, big {big_mb} MB x {a.big_runs}"))
    for name, (pps, mbs) in res.get("serve", {}).items():
        print(f"{a.concurrent} concurrent pulls of a 2 MB image from {name}: {pps:.0f} pulls/s, {mbs:.0f} MB/s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1, default=str)


if __name__ == "__main__":
    main()
