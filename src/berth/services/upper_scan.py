"""What a container changed: its upper directory read against the image's layers (as overlayfs merges
them), as Docker's change list (``diff``) or as an image layer (``commit``)."""
from __future__ import annotations

import os
import posixpath
import stat
import tarfile
from dataclasses import dataclass, field

from berth.image.layers import OPAQUE, WHITEOUT
from berth.services.tree_tar import TarOut, TreeWriter, get_xattr, tar_info
from berth.util.tar import DIR_FLAGS, lstat_at

# What the runtime makes in a root it mounts things on: Docker keeps these in an
# "init" layer, so they never show in ``diff`` or a committed image.
_PLACEHOLDER_FILES = {"etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab", ".dockerenv", "dev/console"}
MOUNT_DIRS = {"proc", "sys", "dev", "dev/pts", "dev/shm", "dev/mqueue", "sys/fs/cgroup"}

ADDED, MODIFIED, DELETED = 1, 0, 2


@dataclass
class Entry:
    """One entry of a container's upper directory."""

    parts: tuple[str, ...]
    st: os.stat_result
    whiteout: bool = False
    lower: os.stat_result | None = None  # the same path under the image's layers
    opaque: bool = False
    children: list["Entry"] = field(default_factory=list)
    dropped_child: bool = False  # a runtime placeholder below was left out

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    @property
    def path(self) -> str:
        return "/" + "/".join(self.parts)

    def unchanged_dir(self) -> bool:
        """A directory only copied up: same type, owner and mode below, and same times unless
        only runtime placeholders changed it (Docker's "same directory" rule)."""
        lo = self.lower
        if lo is None or not self.is_dir or self.opaque or not stat.S_ISDIR(lo.st_mode):
            return False
        if (self.st.st_mode, self.st.st_uid, self.st.st_gid) != (lo.st_mode, lo.st_uid, lo.st_gid):
            return False
        return self.dropped_child or (self.st.st_size == lo.st_size and _same_time(self.st, lo))


def _same_time(a: os.stat_result, b: os.stat_result) -> bool:
    if a.st_mtime_ns == b.st_mtime_ns:
        return True
    sa, na = divmod(a.st_mtime_ns, 1_000_000_000)
    sb, nb = divmod(b.st_mtime_ns, 1_000_000_000)
    return sa == sb and (na == 0 or nb == 0)


class Lowers:
    """The image's layer directories, top first, read as overlayfs merges them."""

    def __init__(self, dirs: list[str]) -> None:
        self.dirs = dirs
        self._opaque: dict[str, bool] = {}

    def _is_opaque(self, path: str) -> bool:
        v = self._opaque.get(path)
        if v is None:
            try:
                v = os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
            except OSError:
                v = False
            self._opaque[path] = v
        return v

    def stat(self, parts: tuple[str, ...]) -> os.stat_result | None:
        for top in self.dirs:
            path = top
            hidden_below = False
            for i, name in enumerate(parts):
                path = os.path.join(path, name)
                try:
                    st = os.lstat(path)  # every component before was checked to be a directory
                except (FileNotFoundError, NotADirectoryError):
                    break
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    return None  # a whiteout
                if i == len(parts) - 1:
                    return st
                if not stat.S_ISDIR(st.st_mode):
                    return None
                hidden_below = hidden_below or self._is_opaque(path)
            if hidden_below:
                return None
        return None


def scan_upper(fd: int, parts: tuple[str, ...], lowers: Lowers, hidden: bool,
               skip_dirs: set[str]) -> tuple[list[Entry], bool]:
    """The entries below the open upper directory ``fd`` (sorted, nested), and whether any were left out."""
    out: list[Entry] = []
    dropped = False
    for name in sorted(os.listdir(fd)):
        st = lstat_at(fd, name)
        if st is None:
            continue
        p = parts + (name,)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            out.append(Entry(p, st, whiteout=True))
            continue
        lower = None if hidden else lowers.stat(p)
        rel = "/".join(p)
        if stat.S_ISDIR(st.st_mode):
            try:
                cfd = os.open(name, DIR_FLAGS, dir_fd=fd)
            except OSError:
                continue
            try:
                opaque = get_xattr(cfd, "trusted.overlay.opaque") == b"y"
                kids, kid_dropped = scan_upper(cfd, p, lowers, hidden or opaque, skip_dirs)
            finally:
                os.close(cfd)
            if lower is None and not kids and rel in skip_dirs:
                dropped = True
                continue
            out.append(Entry(p, st, lower=lower, opaque=opaque, children=kids, dropped_child=kid_dropped))
            continue
        if lower is None and stat.S_ISREG(st.st_mode) and st.st_size == 0 and rel in _PLACEHOLDER_FILES:
            dropped = True
            continue
        out.append(Entry(p, st, lower=lower))
    return out, dropped


def changes_of(entries: list[Entry]) -> list[dict]:
    """Docker's change list (overlay driver): pre-order, parents of additions and deletions as modified."""
    out: list[dict] = []
    changed_dirs: set[str] = set()

    def visit(items: list[Entry]) -> None:
        for e in items:
            path = e.path
            if e.whiteout:
                kind = DELETED
            elif e.is_dir and e.opaque and e.lower is not None and stat.S_ISDIR(e.lower.st_mode):
                kind = DELETED  # replaced wholesale, as Docker reports an opaque directory
            elif e.lower is None:
                kind = ADDED
            elif e.unchanged_dir():
                visit(e.children)
                continue
            else:
                kind = MODIFIED
            if e.is_dir:
                changed_dirs.add(path)
            if kind in (ADDED, DELETED):
                parent = posixpath.dirname(path)
                if parent != "/" and parent not in changed_dirs:
                    out.append({"Path": parent, "Kind": MODIFIED})
                    changed_dirs.add(parent)
            out.append({"Path": path, "Kind": kind})
            if e.is_dir:
                visit(e.children)

    visit(entries)
    return out


def prune_for_layer(entries: list[Entry]) -> list[Entry]:
    """Leave out directories that hold nothing for a layer: unchanged and empty once placeholders go."""
    out = []
    for e in entries:
        if e.is_dir and not e.whiteout:
            e.children = prune_for_layer(e.children)
            if not e.children and e.unchanged_dir() and e.dropped_child:
                continue
        out.append(e)
    return out


def write_layer(out: TarOut, upper_fd: int, entries: list[Entry]) -> None:
    """The entries of a container's upper directory as an image layer (whiteouts as ``.wh.`` files)."""
    writer = TreeWriter(out)

    def visit(fd: int, items: list[Entry]) -> None:
        for e in items:
            name = "/".join(e.parts)
            base = e.parts[-1]
            if e.whiteout:
                ti = tar_info(posixpath.join(posixpath.dirname(name), WHITEOUT + base), e.st, tarfile.REGTYPE)
                ti.mode = 0o600
                out.header(ti)
                continue
            mode = e.st.st_mode
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
                continue  # device nodes and sockets do not go into image layers
            if not e.is_dir:
                writer.entry(fd, base, name, e.parts)
                continue
            try:
                cfd = os.open(base, DIR_FLAGS, dir_fd=fd)
            except OSError:
                continue
            try:
                out.header(tar_info(name, os.fstat(cfd), tarfile.DIRTYPE))
                if e.opaque:
                    ti = tar_info(name + "/" + OPAQUE, e.st, tarfile.REGTYPE)
                    ti.mode = e.st.st_mode & 0o777
                    out.header(ti)
                visit(cfd, e.children)
            finally:
                os.close(cfd)

    visit(upper_fd, entries)
    out.close()
