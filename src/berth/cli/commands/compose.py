"""berth compose: Docker Compose v2's commands over berth's client (the compose package does the work)."""
from __future__ import annotations

import argparse
import json
import os
import sys

from berth.cli.common import Usage, parser
from berth.client.transport import Transport
from berth.errors import BerthError

USAGE = """Usage:  berth compose [OPTIONS] COMMAND

Define and run multi-container applications.

Options:
  -f, --file FILE              compose file (repeatable)
  -p, --project-name NAME      project name
      --profile PROFILE        enable a profile (repeatable)
      --env-file FILE          environment file (repeatable)
      --project-directory DIR  working directory (default: the first file's)

Commands:
  up down ps logs build pull push exec run start stop restart rm kill pause unpause top port images
  config events scale watch ls version
"""


class Ctx:
    """What every subcommand needs: the global options, the project (loaded once) and an executor."""

    def __init__(self, api: Transport, opts: argparse.Namespace) -> None:
        self.api, self.opts = api, opts
        self._project = None

    def project(self, services: list[str] | None = None):
        if self._project is None:
            from berth.compose.loader import load
            cwd = self.opts.project_directory or os.getcwd()
            self._project, warnings = load(self.opts.file or None, self.opts.project_name, self.opts.profile,
                                           self.opts.env_file or None, None, services or [], cwd)
            for w in warnings:
                print(f"WARN[0000] {w}", file=sys.stderr)
        return self._project

    def executor(self, services: list[str] | None = None):
        from berth.compose.engine import Engine
        from berth.compose.executor import Executor
        return Executor(self.project(services), Engine(self.api.host), on_event=_event)


def _event(kind: str, name: str, status: str) -> None:
    """Compose v2's plain progress lines: `` Container proj-web-1  Started``."""
    if kind == "warning":
        print(f"WARN[0000] {status}", file=sys.stderr, flush=True)
        return
    print(f" {kind.capitalize()} {name}  {status}", file=sys.stderr, flush=True)


def compose(api: Transport, name: str, argv: list[str]) -> int:
    from berth.compose.resources import ComposeError
    g = argparse.ArgumentParser(prog="berth compose", add_help=False)
    g.add_argument("-f", "--file", action="append", default=[])
    g.add_argument("-p", "--project-name")
    g.add_argument("--profile", action="append", default=[])
    g.add_argument("--env-file", action="append", default=[])
    g.add_argument("--project-directory")
    g.add_argument("--ansi", default="auto")
    g.add_argument("--progress", default="auto")
    g.add_argument("-h", "--help", action="store_true")
    opts, rest = g.parse_known_args(argv)
    if opts.help or not rest or rest[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    cmd, args = rest[0], rest[1:]
    if cmd.startswith("-"):
        raise Usage(f"unknown flag: {cmd}")
    from berth.cli import compose_cmds
    fn = compose_cmds.COMMANDS.get(cmd)
    if fn is None:
        raise Usage(f"berth compose: unknown command {cmd!r}\nSee 'berth compose --help'.")
    if not opts.profile and os.environ.get("COMPOSE_PROFILES"):
        opts.profile = [p for p in os.environ["COMPOSE_PROFILES"].split(",") if p]
    if not opts.project_name and os.environ.get("COMPOSE_PROJECT_NAME"):
        opts.project_name = os.environ["COMPOSE_PROJECT_NAME"]
    try:
        return fn(Ctx(api, opts), f"compose {cmd}", args) or 0
    except ComposeError as e:
        print(e.message, file=sys.stderr)
        return 1
    except BerthError as e:
        if "compose" in type(e).__module__ or e.message.startswith(("/", "service ")):
            print(e.message, file=sys.stderr)
            return 1
        raise


def service_parser(name: str, usage: str = "[OPTIONS] [SERVICE...]") -> argparse.ArgumentParser:
    p = parser(f"berth {name}", usage)
    return p


def print_json_lines(items: list[dict]) -> None:
    for item in items:
        print(json.dumps(item))
