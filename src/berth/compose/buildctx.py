"""A build context as a tar (``tarfile``), honouring ``.dockerignore`` as Docker does.

A small port of moby/patternmatcher's semantics (``*``, ``?``, ``[...]``, ``**``, ``!`` exceptions, a pattern
matching a parent directory matches its contents); the Dockerfile and ``.dockerignore`` are always sent, and a
Dockerfile outside the context is added under a random name. (berth.build.ignore has the exact port but compose
may not import it.)
"""
from __future__ import annotations

import io
import os
import re
import tarfile
import tempfile


def read_ignore(path: str) -> list[str]:
    """The patterns of a .dockerignore file (none when it is missing)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        p = line.strip()
        if not p:
            continue
        neg = p.startswith("!")
        if neg:
            p = p[1:].strip()
        p = os.path.normpath(p).lstrip("/") if p else p
        if p == ".":
            p = ""
        if p or neg:
            out.append(("!" if neg else "") + p)
    return out


def _regex(pattern: str) -> re.Pattern:
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern[i:i + 2] == "**":
                i += 2
                if pattern[i:i + 1] == "/":
                    i += 1
                    out.append("(.*/)?")
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:j]
                if body.startswith("^"):
                    body = "!" + body[1:]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
                i = j
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("^" + "".join(out) + "$")


class Matcher:
    """Whether a context-relative path is excluded (the last matching pattern wins)."""

    def __init__(self, patterns: list[str]) -> None:
        self.rules = [(p.startswith("!"), _regex(p.lstrip("!")), p.lstrip("!")) for p in patterns]
        self.has_exceptions = any(neg for neg, _, _ in self.rules)

    def excluded(self, rel: str) -> bool:
        parts = rel.split("/")
        prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
        result = False
        for neg, rx, _ in self.rules:
            if any(rx.match(p) for p in prefixes):
                result = not neg
        return result

    def may_include_under(self, rel_dir: str) -> bool:
        """Whether an exception pattern could re-include something below an excluded directory."""
        return any(neg and (text.startswith(rel_dir + "/") or "*" in text or "?" in text or "[" in text)
                   for neg, _, text in self.rules)


def context_tar(context: str, dockerfile: str = "Dockerfile") -> tuple[tempfile.SpooledTemporaryFile, str]:
    """The tar of ``context`` (a spooled file at offset 0) and the Dockerfile name to send with it."""
    root = os.path.realpath(context)
    df_path = dockerfile if os.path.isabs(dockerfile) else os.path.join(root, dockerfile)
    df_real = os.path.realpath(df_path)
    rel_df = os.path.relpath(df_real, root)
    outside = rel_df.startswith("..")
    patterns = read_ignore(os.path.join(root, ".dockerignore"))
    if not outside:
        patterns += ["!" + rel_df, "!.dockerignore"]
    matcher = Matcher(patterns)
    out = tempfile.SpooledTemporaryFile(max_size=16 << 20)
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(path: str, rel: str) -> None:
            info = tar.gettarinfo(path, rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            elif info.isdir() or info.issym() or info.islnk() or info.isfifo():
                tar.addfile(info)

        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, root)
            rel_dir = "" if rel_dir == "." else rel_dir
            keep = []
            for d in dirnames:
                rel = f"{rel_dir}/{d}" if rel_dir else d
                full = os.path.join(dirpath, d)
                if os.path.islink(full):
                    if not matcher.excluded(rel):
                        add(full, rel)
                    continue
                if not matcher.excluded(rel):
                    add(full, rel)
                    keep.append(d)
                elif matcher.may_include_under(rel):
                    keep.append(d)
            dirnames[:] = keep
            for name in sorted(filenames):
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if not matcher.excluded(rel):
                    try:
                        add(os.path.join(dirpath, name), rel)
                    except OSError:
                        continue
        name = rel_df
        if outside:
            name = ".dockerfile." + os.urandom(10).hex()
            with open(df_path, "rb") as f:
                data = f.read()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    out.seek(0)
    return out, name


def chunks(f, size: int = 1 << 20):
    """A file's bytes in chunks (a streamed, chunked request body)."""
    while data := f.read(size):
        yield data
