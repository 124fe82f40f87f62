"""``compose watch``: follow ``develop.watch`` rules — copy changed files into the running containers
(``sync``), then restart them (``sync+restart``), or rebuild and recreate the service (``rebuild``).

Changes are found by polling file metadata every quarter second (no inotify in the standard library); a
burst of changes is handled once it has been quiet for a moment.
"""
from __future__ import annotations

import fnmatch
import io
import os
import posixpath
import tarfile
import time
from collections.abc import Callable

from berth.compose.model import Service, WatchRule

POLL = 0.25
QUIET = 0.3


def snapshot(root: str, ignore: tuple[str, ...]) -> dict[str, tuple[float, int]]:
    """Relative path → (mtime, size) of every file under ``root`` (``root`` itself if it is a file)."""
    if os.path.isfile(root):
        st = os.stat(root)
        return {"": (st.st_mtime, st.st_size)}
    out: dict[str, tuple[float, int]] = {}
    for dirpath, dirs, files in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirs[:] = [d for d in dirs if not _ignored(os.path.normpath(os.path.join(rel_dir, d)), ignore)]
        for f in files:
            rel = os.path.normpath(os.path.join(rel_dir, f))
            if _ignored(rel, ignore):
                continue
            try:
                st = os.stat(os.path.join(dirpath, f))
            except FileNotFoundError:
                continue
            out[rel] = (st.st_mtime, st.st_size)
    return out


def _ignored(rel: str, ignore: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(os.path.basename(rel), pat) for pat in ignore)


def tar_of(root: str, rels: list[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel in rels:
            path = root if rel == "" else os.path.join(root, rel)
            tar.add(path, arcname=os.path.basename(root) if rel == "" else rel, recursive=False)
    return buf.getvalue()


class Watcher:
    def __init__(self, executor, services: list[str], on_event: Callable[[str], None] | None = None) -> None:
        self.ex = executor
        self.say = on_event or (lambda msg: None)
        chosen = [s for s in executor.project.services if not services or s.name in services]
        self.rules: list[tuple[Service, WatchRule]] = [(s, r) for s in chosen for r in s.watch]
        self.state = {i: snapshot(r.path, r.ignore) for i, (_, r) in enumerate(self.rules)}

    def run(self, stop: Callable[[], bool] = lambda: False) -> None:
        self.say("Watch enabled")
        while not stop():
            time.sleep(POLL)
            self.check_once()

    def check_once(self) -> list[str]:
        """Apply what changed since the last look; the messages it gave."""
        said: list[str] = []
        for i, (svc, rule) in enumerate(self.rules):
            now = snapshot(rule.path, rule.ignore)
            if now == self.state[i]:
                continue
            time.sleep(QUIET)  # let a burst of writes finish
            now = snapshot(rule.path, rule.ignore)
            before, self.state[i] = self.state[i], now
            changed = sorted(k for k, v in now.items() if before.get(k) != v)
            gone = sorted(k for k in before if k not in now)
            said += self.apply(svc, rule, changed, gone)
        return said

    def apply(self, svc: Service, rule: WatchRule, changed: list[str], gone: list[str]) -> list[str]:
        msgs = []
        if rule.action == "rebuild":
            from berth.compose.executor import UpOptions
            msgs.append(f"Rebuilding service {svc.name!r} after changes were detected...")
            self.say(msgs[-1])
            self.ex.up(UpOptions(services=(svc.name,), no_deps=True, build=True))
            return msgs
        containers = [c for c in self.ex.containers([svc.name]) if c.get("State") == "running"]
        target = rule.target or rule.path
        for c in containers:
            if changed:
                base = target if os.path.isdir(rule.path) else posixpath.dirname(target)
                self.ex.engine.put_archive(c["Id"], base, tar_of(rule.path, changed))
            if gone:
                paths = [posixpath.join(target, g) for g in gone if g]
                if paths:
                    eid = self.ex.engine.exec_create(c["Id"], ["rm", "-rf", *paths])
                    list(self.ex.engine.exec_start(eid))
        msgs.append(f"Syncing service {svc.name!r} after {len(changed) + len(gone)} changed files")
        self.say(msgs[-1])
        if rule.action == "sync+restart":
            for c in containers:
                self.ex.engine.restart(c["Id"])
            msgs.append(f"service {svc.name!r} restarted")
            self.say(msgs[-1])
        return msgs
