"""What every command shares: argument parsing, the client, and error reporting."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from berth.cli.progress import StreamError
from berth.client.transport import DaemonUnreachable, Transport
from berth.errors import BerthError


class Usage(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise Usage(f"berth {self.prog.split(' ', 1)[-1]}: {message}\nSee 'berth {self.prog.split(' ', 1)[-1]} --help'.")


def parser(name: str, usage: str) -> Parser:
    return Parser(prog=f"berth {name}", usage=f"berth {name} {usage}", add_help=True)


def prune_parser(name: str, all_flag: bool = False) -> Parser:
    """``prune [-f] [--filter K=V]...`` (and ``-a`` where ``all_flag``), as the docker CLI's prune commands."""
    p = parser(name, "[OPTIONS]")
    if all_flag:
        p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    return p


def confirmed(warning: str) -> bool:
    """Docker's prune prompt: ``WARNING! This will remove ...`` then ``[y/N]``; y or yes goes on."""
    import sys
    print(f"WARNING! This will remove {warning}.\nAre you sure you want to continue? [y/N] ", end="", flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


class Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def run_command(fn: Callable, name: str, argv: list[str], host: str | None) -> int:
    api = Transport(host)
    try:
        return fn(api, name, argv) or 0
    except Usage as e:
        print(e, file=sys.stderr)
        return 125
    except DaemonUnreachable as e:
        print(e, file=sys.stderr)
        return 1
    except BerthError as e:
        print(f"Error response from daemon: {e.message}", file=sys.stderr)
        return 125 if name in ("run", "container run") else 1
    except StreamError as e:
        print(str(e), file=sys.stderr)
        return 125 if name in ("run", "container run", "create", "container create") else 1
    except Exit as e:
        return e.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except SystemExit as e:
        return int(e.code or 0)
