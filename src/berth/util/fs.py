"""Filesystem helpers: atomic writes and safe joins."""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def atomic_write(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to a temporary name, fsync it and rename it over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def fsync_dir(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_tree(path: str | os.PathLike) -> None:
    """Remove a directory tree or file if it exists; never follow symlinks out."""
    p = Path(path)
    if p.is_symlink() or p.is_file():
        p.unlink(missing_ok=True)
    elif p.exists():
        shutil.rmtree(p, ignore_errors=True)


def dir_size(path: str | os.PathLike) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def resolve_in_root(root: str, path: str) -> str:
    """Resolve ``path`` as the container would see it, never leaving ``root``.

    Symlinks are followed component by component with ``root`` as ``/``.
    """
    root = os.path.abspath(root)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    current = root
    seen = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = os.path.dirname(current) if current != root else root
            if not current.startswith(root):
                current = root
            continue
        candidate = os.path.join(current, part)
        if os.path.islink(candidate):
            seen += 1
            if seen > 40:
                raise OSError("too many levels of symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = root
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        current = candidate
    return current


def read_text(path: str | os.PathLike) -> str:
    """A file's text, or "" when it cannot be read (absent files are normal here)."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""

