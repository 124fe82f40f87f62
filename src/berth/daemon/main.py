"""berthd: the daemon's entry point."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from berth.config import DaemonConfig
from berth.errors import BerthError

log = logging.getLogger("berthd")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="berthd", description="Berth container engine daemon")
    p.add_argument("-H", "--host", action="append", dest="hosts", help="unix://PATH or tcp://127.0.0.1:PORT")
    p.add_argument("--data-root", help="root of persistent state (default /var/lib/berth)")
    p.add_argument("--exec-root", help="root of runtime state (default /run/berth)")
    p.add_argument("--config-file", default="/etc/berth/daemon.json")
    p.add_argument("--runtime", help="default OCI runtime name or path (default runc)")
    p.add_argument("--add-runtime", action="append", default=[], help="NAME=PATH")
    p.add_argument("--shim", help="path of berth-shim")
    p.add_argument("--log-level", default=None)
    p.add_argument("-b", "--bridge", help="host link of the default bridge network (default berth0)")
    p.add_argument("--bip", help="the default bridge's address and prefix, e.g. 172.17.0.1/16")
    p.add_argument("--dns", action="append", default=[], help="DNS server for containers")
    p.add_argument("--dns-search", action="append", default=[])
    p.add_argument("--dns-opt", action="append", default=[], dest="dns_opts")
    p.add_argument("--iptables", default=None, type=lambda v: v.lower() in ("1", "true"),
                   help="manage packet rules (default true)")
    p.add_argument("--insecure-registry", action="append", default=[], dest="insecure_registries",
                   help="a registry host or CIDR that may be reached over plain HTTP")
    p.add_argument("--registry-mirror", action="append", default=[], dest="registry_mirrors",
                   help="a mirror tried before Docker Hub")
    p.add_argument("--max-concurrent-downloads", type=int, default=None)
    return p.parse_args(argv)


async def serve(cfg: DaemonConfig) -> None:
    from aiohttp import web

    from berth.api.app import make_app
    from berth.api.server import listen
    from berth.daemon.wiring import build
    from berth.services.recovery import recover

    engine = build(cfg)
    report = await recover(engine.images, engine.containers, engine.lifecycle)
    log.info("recovered: %s", report)
    app = make_app(engine.services())
    # Streams (logs -f, stats, events, attach) stay open; shutting down waits at most 2 s for them.
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await listen(runner, cfg.hosts)
    log.info("berthd listening on %s", ", ".join(cfg.hosts))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("berthd shutting down; containers keep running")
    await runner.cleanup()
    await engine.lifecycle.close()
    await engine.distribution.close()
    engine.sandboxes.close()
    engine.networks.host.close()
    engine.db.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    runtimes = dict(x.split("=", 1) for x in args.add_runtime if "=" in x)
    try:
        cfg = DaemonConfig.load(args.config_file, {
            "hosts": args.hosts, "data_root": args.data_root, "exec_root": args.exec_root,
            "runtime": args.runtime, "runtimes": runtimes, "shim": args.shim, "log_level": args.log_level,
            "bridge": args.bridge, "bip": args.bip, "dns": args.dns, "dns_search": args.dns_search, "dns_opts": args.dns_opts,
            "iptables": args.iptables, "insecure_registries": args.insecure_registries,
            "registry_mirrors": args.registry_mirrors, "max_concurrent_downloads": args.max_concurrent_downloads})
    except BerthError as e:
        print(f"berthd: {e.message}", file=sys.stderr)
        return 1
    logging.basicConfig(level=getattr(logging, cfg.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(cfg))
    except BerthError as e:
        print(f"berthd: {e.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
