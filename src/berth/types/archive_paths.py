"""docker cp's path rules, shared by the CLI and the daemon.

Go's ``filepath`` Base/Clean/Join and moby's pkg/archive helpers
(PreserveTrailingDotOrSeparator, SplitPathDirEntry, GetRebaseName, the entry
renames of RebaseArchiveEntries), and the ``os.FileMode`` bits that Docker's
ContainerPathStat carries. Pure functions of strings and numbers; stdlib only.
"""
from __future__ import annotations

import posixpath
import stat

# Go's os.FileMode type bits.
MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_NAMED_PIPE = 1 << 25
MODE_SOCKET = 1 << 24
MODE_SETUID = 1 << 23
MODE_SETGID = 1 << 22
MODE_CHAR_DEVICE = 1 << 21
MODE_STICKY = 1 << 20
MODE_IRREGULAR = 1 << 19


def go_mode(st_mode: int) -> int:
    """A stat mode as Go's os.FileMode."""
    m = st_mode & 0o777
    kind = stat.S_IFMT(st_mode)
    m |= {stat.S_IFDIR: MODE_DIR, stat.S_IFLNK: MODE_SYMLINK, stat.S_IFBLK: MODE_DEVICE,
          stat.S_IFCHR: MODE_DEVICE | MODE_CHAR_DEVICE, stat.S_IFIFO: MODE_NAMED_PIPE,
          stat.S_IFSOCK: MODE_SOCKET}.get(kind, 0)
    if st_mode & stat.S_ISUID:
        m |= MODE_SETUID
    if st_mode & stat.S_ISGID:
        m |= MODE_SETGID
    if st_mode & stat.S_ISVTX:
        m |= MODE_STICKY
    return m


def go_base(path: str) -> str:
    """filepath.Base."""
    if path == "":
        return "."
    path = path.rstrip("/")
    if path == "":
        return "/"
    return path.rsplit("/", 1)[-1]


def go_clean(path: str) -> str:
    """filepath.Clean."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    out = posixpath.normpath(path)
    if rooted:
        out = "/" + out.lstrip("/")
    return out


def go_join(*parts: str) -> str:
    """filepath.Join."""
    return go_clean(posixpath.join(*parts))


def specifies_current_dir(path: str) -> bool:
    return go_base(path) == "."


def preserve_trailing(cleaned: str, original: str) -> str:
    """pkg/archive PreserveTrailingDotOrSeparator."""
    if not specifies_current_dir(cleaned) and specifies_current_dir(original):
        if not cleaned.endswith("/"):
            cleaned += "/"
        cleaned += "."
    if original.endswith("/") and not cleaned.endswith("/"):
        cleaned += "/"
    return cleaned


def split_dir_entry(path: str) -> tuple[str, str]:
    """pkg/archive SplitPathDirEntry: (directory, entry) with a trailing ``/.`` kept as ``.``."""
    cleaned = go_clean(path)
    if specifies_current_dir(path):
        cleaned += "/."
    return go_clean(posixpath.dirname(cleaned) or "."), go_base(cleaned)


def rebase_name(path: str, resolved: str) -> tuple[str, str]:
    """pkg/archive GetRebaseName: the resolved path, and the name its entries take ("" to keep theirs)."""
    if specifies_current_dir(path) and not specifies_current_dir(resolved):
        resolved += "/."
    if path.endswith("/") and not resolved.endswith("/"):
        resolved += "/"
    return resolved, (go_base(path) if go_base(path) != go_base(resolved) else "")


def rebase(name: str, renames: list[tuple[str, str]]) -> str:
    """A tar entry's name with each ``(old, new)`` prefix rename applied (RebaseArchiveEntries)."""
    for old, new in renames:
        name = name.replace("" if old == "/" else old, new, 1)
    return name
