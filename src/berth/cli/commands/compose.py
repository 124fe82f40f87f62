"""berth compose: Docker Compose v2's commands over berth's client (the compose package does the work)."""
from __future__ import annotations

import argparse
import os
import sys

from berth.cli.common import Usage
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


NAMELESS = {"down", "ps", "logs", "stop", "start", "restart", "kill", "rm", "pause", "unpause", "top", "images",
            "events", "port", "exec"}


class Ctx:
    """What every subcommand needs: the global options, the project (loaded once) and an executor."""

    def __init__(self, api: Transport, opts: argparse.Namespace, nameless_ok: bool = False) -> None:
        self.api, self.opts = api, opts
        self.nameless_ok = nameless_ok  # -p NAME alone is enough (down, ps, logs, ...: what the engine holds)
        self._project = None

    def project(self, services: list[str] | None = None):
        if self._project is None:
            from berth.compose.loader import find_files, load
            from berth.compose.resources import ComposeError
            cwd = self.opts.project_directory or os.getcwd()
            if self.nameless_ok and self.opts.project_name and not self.opts.file \
                    and not os.environ.get("COMPOSE_FILE") and not _has_files(find_files, cwd):
                from berth.compose.engine import Engine
                from berth.compose.resources import project_from_engine
                self._project = project_from_engine(self.opts.project_name, Engine(self.api.host), cwd)
                return self._project
            try:
                self._project, warnings = load(self.opts.file or None, self.opts.project_name, self.opts.profile,
                                               self.opts.env_file or None, None, services or [], cwd)
            except BerthError as e:
                raise ComposeError(e.message) from None
            for w in warnings:
                print(f"WARN[0000] {w}", file=sys.stderr)
        return self._project

    def executor(self, services: list[str] | None = None):
        from berth.compose.engine import Engine
        from berth.compose.executor import Executor
        return Executor(self.project(services), Engine(self.api.host), on_event=_event)


_VALUED = {"-f", "--file", "-p", "--project-name", "--profile", "--env-file", "--project-directory", "--ansi",
           "--progress"}


def _command_index(argv: list[str]) -> int:
    """Where the subcommand starts: compose's own options come before it (``run -p`` is run's)."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in _VALUED:
            i += 2
        elif a.startswith("-") and a != "-":
            i += 1
        else:
            return i
    return len(argv)


def _has_files(find_files, cwd: str) -> bool:
    try:
        return bool(find_files(cwd))
    except BerthError:
        return False


def _event(kind: str, name: str, status: str) -> None:
    """Compose v2's plain progress lines: `` Container proj-web-1  Started`` (one write each: threads print)."""
    line = f"WARN[0000] {status}\n" if kind == "warning" else f" {kind.capitalize()} {name}  {status}\n"
    sys.stderr.write(line)
    sys.stderr.flush()


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
    split = _command_index(argv)
    opts = g.parse_args(argv[:split])
    rest = argv[split:]
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
        return fn(Ctx(api, opts, cmd in NAMELESS), f"compose {cmd}", args) or 0
    except ComposeError as e:
        print(e.message, file=sys.stderr)
        return 1
