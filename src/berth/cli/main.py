"""berth: the command line. Parse → client call → format; command modules load lazily."""
from __future__ import annotations

import sys

# command → (module under berth.cli.commands, function)
COMMANDS = {
    "run": ("containers", "run"), "create": ("containers", "create"), "start": ("containers", "start"),
    "stop": ("containers", "stop"), "kill": ("containers", "kill"), "restart": ("containers", "restart"),
    "rm": ("containers", "rm"), "ps": ("containers", "ps"), "logs": ("containers", "logs"),
    "wait": ("containers", "wait"), "attach": ("containers", "attach"), "exec": ("containers", "exec_"),
    "pause": ("control", "pause"), "unpause": ("control", "unpause"), "rename": ("control", "rename"),
    "update": ("control", "update"), "port": ("control", "port"),
    "cp": ("cp", "cp"), "diff": ("files", "diff"), "export": ("files", "export"), "commit": ("files", "commit"),
    "stats": ("monitoring", "stats"), "top": ("monitoring", "top"),
    "inspect": ("inspect", "inspect"),
    "images": ("images", "images"), "rmi": ("images", "rmi"), "tag": ("images", "tag"),
    "import": ("images", "import_"), "load": ("images", "load"), "save": ("images", "save"),
    "history": ("images", "history"), "build": ("build", "build"),
    "pull": ("distribution", "pull"), "push": ("distribution", "push"), "search": ("distribution", "search"),
    "info": ("system", "info"), "version": ("system", "version"), "events": ("events", "events"),
    "login": ("login", "login"), "logout": ("login", "logout"), "compose": ("compose", "compose"),
}
MANAGEMENT = {
    "container": {"ls": "ps", "list": "ps", "ps": "ps", "run": "run", "create": "create", "start": "start",
                  "stop": "stop", "kill": "kill", "restart": "restart", "rm": "rm", "remove": "rm", "logs": "logs",
                  "wait": "wait", "attach": "attach", "inspect": ("containers", "inspect_container"),
                  "pause": "pause", "unpause": "unpause", "rename": "rename", "exec": "exec", "cp": "cp",
                  "update": "update", "port": "port", "diff": "diff",
                  "export": "export", "commit": "commit", "stats": "stats", "top": "top",
                  "prune": ("containers", "prune")},
    "image": {"ls": "images", "list": "images", "rm": "rmi", "remove": "rmi", "tag": "tag", "import": "import",
              "load": "load", "save": "save", "history": "history", "inspect": ("images", "inspect_image"),
              "prune": ("images", "prune"), "build": "build", "pull": "pull", "push": "push"},
    "builder": {"build": "build", "prune": ("build", "builder_prune")},
    "system": {"df": ("system", "df"), "info": "info", "events": "events"},
    "network": {"create": ("networks", "create"), "ls": ("networks", "ls"), "list": ("networks", "ls"),
                "inspect": ("networks", "inspect"), "rm": ("networks", "rm"), "remove": ("networks", "rm"),
                "prune": ("networks", "prune"), "connect": ("networks", "connect"),
                "disconnect": ("networks", "disconnect")},
    "volume": {"create": ("volumes", "create"), "ls": ("volumes", "ls"), "list": ("volumes", "ls"),
               "inspect": ("volumes", "inspect"), "rm": ("volumes", "rm"), "remove": ("volumes", "rm"),
               "prune": ("volumes", "prune")},
    "registry": {"serve": ("registry", "serve"), "gc": ("registry", "gc")},
}
USAGE = """Usage:  berth [-H HOST] COMMAND

A container engine that speaks the Docker Engine API.

Commands:
  run create start stop kill restart rm ps logs wait attach exec inspect pause unpause rename
  cp diff export commit stats top update port
  images rmi tag import load save history build pull push search info version events login logout
  compose (up, down, ps, logs, ...: berth compose --help)
Management commands:
  container  (ls, run, create, start, stop, kill, restart, rm, logs, wait, inspect, prune, pause, unpause,
              rename, cp, diff, export, commit, stats, top)
  image      (ls, rm, tag, import, load, save, history, inspect, prune, build, pull, push)
  builder    (build, prune)
  system     (df, info)
  network    (create, ls, inspect, rm, prune, connect, disconnect)
  volume     (create, ls, inspect, rm, prune)
  registry   (serve, gc)

Options:
  -H, --host HOST   daemon socket (unix://PATH or tcp://127.0.0.1:PORT); also BERTH_HOST / DOCKER_HOST
"""


def _resolve(argv: list[str]) -> tuple[tuple[str, str] | None, list[str], str]:
    if not argv:
        return None, [], ""
    cmd, rest = argv[0], argv[1:]
    if cmd in MANAGEMENT:
        if not rest or rest[0] not in MANAGEMENT[cmd]:
            return None, [], f"berth {cmd}: unknown or missing subcommand"
        target = MANAGEMENT[cmd][rest[0]]
        name = f"{cmd} {rest[0]}"
        if isinstance(target, tuple):
            return target, rest[1:], name
        return COMMANDS[target], rest[1:], name
    if cmd in COMMANDS:
        return COMMANDS[cmd], rest, cmd
    return None, [], f"berth: '{cmd}' is not a berth command.\nSee 'berth --help'"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    host = None
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt in ("-H", "--host") and args:
            host = args.pop(0)
        elif opt.startswith("--host="):
            host = opt.split("=", 1)[1]
        elif opt in ("-h", "--help"):
            print(USAGE, end="")
            return 0
        elif opt in ("-v", "--version"):
            from berth import __version__
            print(f"Berth version {__version__}")
            return 0
        else:
            print(f"unknown flag: {opt}\nSee 'berth --help'", file=sys.stderr)
            return 125
    target, rest, name = _resolve(args)
    if target is None:
        print(name or USAGE, file=sys.stderr if name else sys.stdout)
        return 1 if name else 0
    import importlib
    module = importlib.import_module(f"berth.cli.commands.{target[0]}")
    from berth.cli.common import run_command
    return run_command(getattr(module, target[1]), name, rest, host)


if __name__ == "__main__":
    sys.exit(main())
