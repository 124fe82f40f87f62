"""``cp``: docker cp's rules (the CLI side of moby's pkg/archive copy logic).

A source ``DIR/.`` copies the directory's contents, a destination that exists
as a directory receives the source inside it, a missing destination is
created with the source's content under the destination's name, and a trailing
``/`` asserts a directory. Tars from a container are extracted without ever
writing through a symlink and without leaving the destination directory
(``berth.cli.local_tar``).
"""
from __future__ import annotations

import errno
import json
import os
import sys
from dataclasses import dataclass

from berth.cli.common import parser
from berth.cli.local_tar import CopyError, body_to_stdout, extract_local, tar_local
from berth.client.transport import Transport, path_quote
from berth.types.archive_paths import (
    MODE_DEVICE,
    MODE_DIR,
    MODE_IRREGULAR,
    MODE_SYMLINK,
    go_base,
    go_clean,
    go_join,
    preserve_trailing,
    rebase_name,
    specifies_current_dir,
    split_dir_entry,
)

_CHUNK = 1 << 20


def split_arg(arg: str) -> tuple[str, str]:
    """docker cp's splitCpArg: ("", path) for a local path, (container, path) otherwise."""
    if arg.startswith("/"):
        return "", arg
    container, sep, path = arg.partition(":")
    if not sep or container.startswith("."):
        return "", arg
    return container, path


@dataclass
class CopyInfo:
    path: str
    exists: bool = False
    is_dir: bool = False
    rebase: str = ""


def _local_abs(path: str) -> str:
    return preserve_trailing(os.path.abspath(path), path)


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CopyError(f"lstat {path}: {(e.strerror or str(e)).lower()}") from None


def destination_info(path: str) -> CopyInfo:
    """pkg/archive CopyInfoDestinationPath, on this machine."""
    original = path
    st = _lstat(path)
    import stat as st_
    if st is not None and not st_.S_ISLNK(st.st_mode):
        return CopyInfo(path, True, st_.S_ISDIR(st.st_mode))
    n = 0
    while st is not None and st_.S_ISLNK(st.st_mode):
        if n > 10:
            raise CopyError(f"too many symlinks in {original}")
        target = os.readlink(path)
        if not target.startswith("/"):
            target = go_join(split_dir_entry(path)[0], target)
        path = target
        st = _lstat(path)
        n += 1
    if st is None:
        parent = split_dir_entry(path)[0]
        try:
            pst = os.stat(parent)
        except OSError as e:
            raise CopyError(f"stat {parent}: {(e.strerror or str(e)).lower()}") from None
        if not st_.S_ISDIR(pst.st_mode):
            raise CopyError(f"stat {parent}: not a directory")
        return CopyInfo(path)
    return CopyInfo(path, True, st_.S_ISDIR(st.st_mode))


def validate_output_path(path: str) -> None:
    """docker's ValidateOutputPath: the parent directory exists; an existing path is a directory or a file."""
    import stat as st_
    parent = os.path.dirname(go_clean(path))
    if parent and parent != "." and not os.path.exists(parent):
        raise CopyError(f'invalid output path: directory "{parent}" does not exist')
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise CopyError(f"stat {path}: {(e.strerror or str(e)).lower()}") from None
    if not (st_.S_ISDIR(mode) or st_.S_ISREG(mode)):
        raise CopyError(f'invalid output path: "{path}" must be a directory or a regular file')


def source_info(path: str, follow: bool) -> CopyInfo:
    """pkg/archive CopyInfoSourcePath, on this machine."""
    try:
        if follow:
            resolved, rebase = rebase_name(path, os.path.realpath(path, strict=True))
        else:
            head, _, tail = path.rpartition("/")
            real_dir = os.path.realpath(head + "/" if head or path.startswith("/") else ".", strict=True)
            resolved = real_dir.rstrip("/") + "/" + tail
            rebase = go_base(path) if path.endswith("/") and go_base(path) != go_base(resolved) else ""
        st = os.lstat(resolved)
    except OSError as e:
        raise CopyError(f"lstat {path}: {(e.strerror or str(e)).lower()}") from None
    import stat as st_
    return CopyInfo(resolved, True, st_.S_ISDIR(st.st_mode), rebase)


def prepare_copy(src: CopyInfo, dst: CopyInfo) -> tuple[str, list[tuple[str, str]]]:
    """pkg/archive PrepareArchiveCopy: the directory to extract into and the renames of the entries."""
    dst_dir, dst_base = split_dir_entry(dst.path)
    src_base = src.rebase or split_dir_entry(src.path)[1]
    if dst.exists and dst.is_dir:
        return dst.path, []
    if dst.exists and src.is_dir:
        raise CopyError("cannot copy directory")
    if dst.exists or src.is_dir:
        return dst_dir, [(src_base, dst_base)]
    if dst.path.endswith("/") or specifies_current_dir(dst.path):
        raise CopyError("no such directory")
    return dst_dir, [(src_base, dst_base)]


def path_stat(api: Transport, container: str, path: str) -> dict | None:
    """The container path's stat (HEAD archive), or None when it cannot be had."""
    from berth.errors import BerthError
    try:
        resp = api.request("HEAD", f"/containers/{path_quote(container)}/archive", {"path": path})
    except BerthError:
        return None
    resp.close()
    return decode_stat(resp.headers.get("x-docker-container-path-stat", ""))


def decode_stat(value: str) -> dict | None:
    import base64
    if not value:
        return None
    try:
        return json.loads(base64.b64decode(value))
    except ValueError:
        return None


def cp(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n"
                     "       berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH")
    p.add_argument("-a", "--archive", action="store_true")
    p.add_argument("-L", "--follow-link", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("source")
    p.add_argument("destination")
    a = p.parse_args(argv)
    src_container, src_path = split_arg(a.source)
    dst_container, dst_path = split_arg(a.destination)
    quiet = a.quiet or not sys.stderr.isatty()
    try:
        if src_container and dst_container:
            raise CopyError("copying between containers is not supported")
        if not src_container and not dst_container:
            raise CopyError("must specify at least one container source")
        if not src_path:
            raise CopyError("source can not be empty")
        if not dst_path:
            raise CopyError("destination can not be empty")
        if src_container:
            return _from_container(api, src_container, src_path, dst_path, a.follow_link, a.archive, quiet)
        return _to_container(api, src_path, dst_container, dst_path, a.follow_link, a.archive, quiet)
    except CopyError as e:
        print(e, file=sys.stderr)
        return 1
    except OSError as e:  # this machine's side: a file that cannot be read or written
        if e.errno == errno.EPIPE:
            raise
        print(f"{e.strerror or e}: {e.filename}" if e.filename else str(e), file=sys.stderr)
        return 1


def _from_container(api: Transport, container: str, src_path: str, dst: str, follow: bool, keep_ids: bool,
                    quiet: bool) -> int:
    if dst != "-":
        dst = _local_abs(dst)
        validate_output_path(dst)
    rebase_to = ""
    if follow:
        st = path_stat(api, container, src_path)
        if st and st.get("mode", 0) & MODE_SYMLINK:
            target = st.get("linkTarget") or ""
            if not target.startswith("/"):
                target = go_join(split_dir_entry(src_path)[0], target)
            src_path, rebase_to = rebase_name(src_path, target)
    if dst != "-":
        dst_info = destination_info(dst)  # before anything is read: a bad destination fails early
    resp = api.request("GET", f"/containers/{path_quote(container)}/archive", {"path": src_path})
    if dst == "-":
        body_to_stdout(resp)
        return 0
    st = decode_stat(resp.headers.get("x-docker-container-path-stat", "")) or {}
    src = CopyInfo(src_path, True, bool(st.get("mode", 0) & MODE_DIR), rebase_to)
    renames = []
    if src.rebase:
        renames.append((split_dir_entry(src.path)[1], src.rebase))
    dst_dir, more = prepare_copy(src, dst_info)
    counted = _Counting(resp.raw)
    try:
        extract_local(counted, dst_dir, renames + more, keep_ids)
    finally:
        resp.close()
    if not quiet:
        from berth.types.units import human_size
        print(f"Successfully copied {human_size(counted.n, 3)} to {dst}", file=sys.stderr)
    return 0


class _Counting:
    def __init__(self, raw) -> None:
        self.raw, self.n = raw, 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.n += len(data)
        return data


def _to_container(api: Transport, src_path: str, container: str, dst_path: str, follow: bool, keep_ids: bool,
                  quiet: bool) -> int:
    dst = CopyInfo(dst_path)
    st = path_stat(api, container, dst_path)
    if st and st.get("mode", 0) & MODE_SYMLINK:
        target = st.get("linkTarget") or ""
        if not target.startswith("/"):
            target = go_join(split_dir_entry(dst_path)[0], target)
        dst.path = target
        st = path_stat(api, container, target)
    if st:
        mode = st.get("mode", 0)
        if mode & (MODE_DEVICE | MODE_IRREGULAR):  # ValidateOutputPathFileMode
            raise CopyError(f'destination "{container}:{dst_path}" must be a directory or a regular file')
        dst.exists, dst.is_dir = True, bool(mode & MODE_DIR)
    sent = _Counter()
    if src_path == "-":
        if not dst.is_dir:
            raise CopyError(f'destination "{container}:{dst_path}" must be a directory')
        resolved = dst.path
        stdin = sys.stdin.buffer

        def body():
            while data := stdin.read(_CHUNK):
                yield data
        chunks = body()
    else:
        src = source_info(_local_abs(src_path), follow)
        resolved, renames = prepare_copy(src, dst)
        chunks = tar_local(src.path, src.rebase, renames, keep_ids)
    query = {"path": resolved, "noOverwriteDirNonDir": "true", "copyUIDGID": "true" if keep_ids else None}
    api.request("PUT", f"/containers/{path_quote(container)}/archive", query, sent.wrap(chunks),
                {"Content-Type": "application/x-tar"}).close()
    if not quiet:
        from berth.types.units import human_size
        print(f"Successfully copied {human_size(sent.n, 3)} to {container}:{dst_path}", file=sys.stderr)
    return 0


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def wrap(self, chunks):
        for c in chunks:
            self.n += len(c)
            yield c
