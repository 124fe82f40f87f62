"""File commands: cp, diff, export, commit.

``cp`` follows docker cp's rules (the CLI side of moby's pkg/archive copy
logic): a source ``DIR/.`` copies the directory's contents, a destination that
exists as a directory receives the source inside it, a missing destination is
created with the source's content under the destination's name, and a trailing
``/`` asserts a directory. Tars from a container are extracted without ever
writing through a symlink and without leaving the destination directory.
"""
from __future__ import annotations

import errno
import json
import os
import sys
from dataclasses import dataclass

from berth.cli.common import Usage, parser
from berth.client.transport import Transport, path_quote

MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_IRREGULAR = 1 << 19
_CHUNK = 1 << 20
_BLOCK = 512


class CopyError(Exception):
    pass


# -- Go's path rules, as docker cp applies them ---------------------------------------------------
def _base(path: str) -> str:
    if path == "":
        return "."
    path = path.rstrip("/")
    return "/" if path == "" else path.rsplit("/", 1)[-1]


def _clean(path: str) -> str:
    import posixpath
    if path == "":
        return "."
    out = posixpath.normpath(path)
    return "/" + out.lstrip("/") if path.startswith("/") else out


def _current_dir(path: str) -> bool:
    return _base(path) == "."


def _preserve(cleaned: str, original: str) -> str:
    if not _current_dir(cleaned) and _current_dir(original):
        if not cleaned.endswith("/"):
            cleaned += "/"
        cleaned += "."
    if original.endswith("/") and not cleaned.endswith("/"):
        cleaned += "/"
    return cleaned


def _split_entry(path: str) -> tuple[str, str]:
    import posixpath
    cleaned = _clean(path)
    if _current_dir(path):
        cleaned += "/."
    return _clean(posixpath.dirname(cleaned) or "."), _base(cleaned)


def _join(*parts: str) -> str:
    import posixpath
    return _clean(posixpath.join(*parts))


def _rebase_name(path: str, resolved: str) -> tuple[str, str]:
    """pkg/archive GetRebaseName."""
    if _current_dir(path) and not _current_dir(resolved):
        resolved += "/."
    if path.endswith("/") and not resolved.endswith("/"):
        resolved += "/"
    return resolved, (_base(path) if _base(path) != _base(resolved) else "")


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
    return _preserve(os.path.abspath(path), path)


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
            target = _join(_split_entry(path)[0], target)
        path = target
        st = _lstat(path)
        n += 1
    if st is None:
        parent = _split_entry(path)[0]
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
    parent = os.path.dirname(_clean(path))
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
            resolved, rebase = _rebase_name(path, os.path.realpath(path, strict=True))
        else:
            head, _, tail = path.rpartition("/")
            real_dir = os.path.realpath(head + "/" if head or path.startswith("/") else ".", strict=True)
            resolved = real_dir.rstrip("/") + "/" + tail
            rebase = _base(path) if path.endswith("/") and _base(path) != _base(resolved) else ""
        st = os.lstat(resolved)
    except OSError as e:
        raise CopyError(f"lstat {path}: {(e.strerror or str(e)).lower()}") from None
    import stat as st_
    return CopyInfo(resolved, True, st_.S_ISDIR(st.st_mode), rebase)


def prepare_copy(src: CopyInfo, dst: CopyInfo) -> tuple[str, list[tuple[str, str]]]:
    """pkg/archive PrepareArchiveCopy: the directory to extract into and the renames of the entries."""
    dst_dir, dst_base = _split_entry(dst.path)
    src_base = src.rebase or _split_entry(src.path)[1]
    if dst.exists and dst.is_dir:
        return dst.path, []
    if dst.exists and src.is_dir:
        raise CopyError("cannot copy directory")
    if dst.exists or src.is_dir:
        return dst_dir, [(src_base, dst_base)]
    if dst.path.endswith("/") or _current_dir(dst.path):
        raise CopyError("no such directory")
    return dst_dir, [(src_base, dst_base)]


def rebase(name: str, renames: list[tuple[str, str]]) -> str:
    for old, new in renames:
        name = name.replace("" if old == "/" else old, new, 1)
    return name


# -- tars -----------------------------------------------------------------------------------------
def _header(ti) -> bytes:
    import tarfile
    return ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def tar_local(src: CopyInfo, renames: list[tuple[str, str]], keep_ids: bool):
    """A tar of a local file or directory as docker cp uploads it, in chunks."""
    import stat as st_
    import tarfile
    source_dir, source_base = _split_entry(src.path)
    if src.rebase:
        renames = [(source_base, src.rebase)] + renames
    links: dict[tuple[int, int], str] = {}
    buf = bytearray()

    def info(name: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(rebase(name, renames))
        ti.type, ti.mode, ti.mtime = kind, st.st_mode & 0o7777, int(st.st_mtime)
        ti.uid, ti.gid = (st.st_uid, st.st_gid) if keep_ids else (0, 0)
        ti.uname = ti.gname = ""
        return ti

    def walk(path: str, name: str):
        nonlocal buf
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        mode = st.st_mode
        if st_.S_ISDIR(mode):
            buf += _header(info(name, st, tarfile.DIRTYPE))
            for child in sorted(os.listdir(path)):
                yield from walk(os.path.join(path, child), name.rstrip("/") + "/" + child)
        elif st_.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                ti = info(name, st, tarfile.LNKTYPE)
                ti.linkname = rebase(links[key], renames)
                buf += _header(ti)
                return
            if st.st_nlink > 1:
                links[key] = name
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                ti = info(name, st, tarfile.REGTYPE)
                ti.size = size
                buf += _header(ti)
                left = size
                while left > 0:
                    chunk = f.read(min(_CHUNK, left))
                    if not chunk:
                        break
                    buf += chunk
                    left -= len(chunk)
                    if len(buf) >= _CHUNK:
                        yield bytes(buf)
                        buf = bytearray()
                buf += b"\0" * left + b"\0" * (-size % _BLOCK)
        elif st_.S_ISLNK(mode):
            ti = info(name, st, tarfile.SYMTYPE)
            ti.linkname = os.readlink(path)
            buf += _header(ti)
        elif st_.S_ISFIFO(mode):
            buf += _header(info(name, st, tarfile.FIFOTYPE))
        elif st_.S_ISCHR(mode) or st_.S_ISBLK(mode):
            ti = info(name, st, tarfile.CHRTYPE if st_.S_ISCHR(mode) else tarfile.BLKTYPE)
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            buf += _header(ti)
        if len(buf) >= _CHUNK:
            yield bytes(buf)
            buf = bytearray()

    def chunks():
        nonlocal buf
        yield from walk(os.path.join(source_dir, source_base), source_base)
        buf += b"\0" * (2 * _BLOCK)
        yield bytes(buf)

    return chunks()


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _clean_parts(name: str) -> tuple[str, ...]:
    out: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                raise CopyError(f"invalid tar entry {name!r}: it would be outside the destination directory")
            out.pop()
        else:
            out.append(part)
    return tuple(out)


def _open_parent(dest: int, parts: tuple[str, ...], name: str) -> int:
    """Directory ``parts`` under ``dest`` (created 0755 if missing), never through a symlink."""
    fd = os.dup(dest)
    try:
        for part in parts:
            try:
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                os.mkdir(part, 0o755, dir_fd=fd)
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                raise CopyError(f"invalid tar entry {name!r}: {part!r} on its way is a symlink or not a "
                                "directory") from None
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def extract_local(stream, dest_dir: str, renames: list[tuple[str, str]], keep_ids: bool) -> None:
    """Extract a tar from a container into ``dest_dir`` (Docker's Untar with NoOverwriteDirNonDir)."""
    import shutil
    import stat as st_
    import tarfile
    dest = os.open(dest_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    dir_times: list[tuple[tuple[str, ...], float]] = []
    chown = keep_ids and os.geteuid() == 0
    try:
        try:
            tar = tarfile.open(fileobj=stream, mode="r|")
        except tarfile.TarError as e:
            raise CopyError(f"invalid tar from the daemon: {e}") from None
        with tar:
            for m in tar:
                tar.members.clear()
                name = rebase(m.name, renames)
                parts = _clean_parts(name.lstrip("/"))
                if not parts:
                    continue
                if m.ischr() or m.isblk():
                    continue  # device nodes are not made on this machine
                pfd = _open_parent(dest, parts[:-1], m.name)
                try:
                    base = parts[-1]
                    shown = os.path.join(dest_dir, *parts)
                    try:
                        existing = os.lstat(base, dir_fd=pfd)
                    except FileNotFoundError:
                        existing = None
                    if existing is not None:
                        if st_.S_ISDIR(existing.st_mode) and not m.isdir():
                            raise CopyError(f'cannot overwrite directory "{shown}" with non-directory "{m.name}"')
                        if not st_.S_ISDIR(existing.st_mode) and m.isdir():
                            raise CopyError(f'cannot overwrite non-directory "{shown}" with directory "{m.name}"')
                        if not m.isdir():
                            os.unlink(base, dir_fd=pfd)
                    if m.isdir():
                        if existing is None:
                            os.mkdir(base, 0o700, dir_fd=pfd)
                        fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
                        try:
                            if chown:
                                os.fchown(fd, m.uid, m.gid)
                            os.fchmod(fd, m.mode & 0o7777)
                        finally:
                            os.close(fd)
                        dir_times.append((parts, m.mtime))
                    elif m.isreg():
                        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                                     dir_fd=pfd)
                        with open(fd, "wb") as out:
                            src = tar.extractfile(m)
                            if src is not None:
                                shutil.copyfileobj(src, out, _CHUNK)
                            out.flush()
                            if chown:
                                os.fchown(fd, m.uid, m.gid)
                            os.fchmod(fd, m.mode & 0o7777)
                            os.utime(fd, (m.mtime, m.mtime))
                    elif m.issym():
                        target = m.linkname
                        if not target.startswith("/"):
                            try:
                                _clean_parts("/".join(parts[:-1] + (target,)))
                            except CopyError:
                                raise CopyError(f"invalid symlink {shown!r} -> {target!r}: it points outside "
                                                "the destination directory") from None
                        os.symlink(target, base, dir_fd=pfd)
                        if chown:
                            os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
                        os.utime(base, (m.mtime, m.mtime), dir_fd=pfd, follow_symlinks=False)
                    elif m.islnk():
                        target = _clean_parts(rebase(m.linkname, renames).lstrip("/"))
                        if not target:
                            raise CopyError(f"invalid hardlink {m.name!r} -> {m.linkname!r}")
                        tfd = _open_parent(dest, target[:-1], m.name)
                        try:
                            os.link(target[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
                        finally:
                            os.close(tfd)
                    elif m.isfifo():
                        os.mkfifo(base, m.mode & 0o7777, dir_fd=pfd)
                finally:
                    os.close(pfd)
        for parts, mtime in reversed(dir_times):
            try:
                fd = _open_parent(dest, parts, "/".join(parts))
            except CopyError:
                continue
            try:
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)
    except tarfile.TarError as e:
        raise CopyError(f"invalid tar from the daemon: {e}") from None
    finally:
        os.close(dest)


# -- commands -------------------------------------------------------------------------------------
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
                target = _join(_split_entry(src_path)[0], target)
            src_path, rebase_to = _rebase_name(src_path, target)
    if dst != "-":
        dst_info = destination_info(dst)  # before anything is read: a bad destination fails early
    resp = api.request("GET", f"/containers/{path_quote(container)}/archive", {"path": src_path})
    if dst == "-":
        out = sys.stdout.buffer
        while data := resp.raw.read1(_CHUNK):
            out.write(data)
        out.flush()
        resp.close()
        return 0
    st = decode_stat(resp.headers.get("x-docker-container-path-stat", "")) or {}
    src = CopyInfo(src_path, True, bool(st.get("mode", 0) & MODE_DIR), rebase_to)
    renames = []
    if src.rebase:
        renames.append((_split_entry(src.path)[1], src.rebase))
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
            target = _join(_split_entry(dst_path)[0], target)
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
        chunks = tar_local(src, renames, keep_ids)
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


def diff(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "CONTAINER")
    p.add_argument("container")
    a = p.parse_args(argv)
    items = api.request("GET", f"/containers/{path_quote(a.container)}/changes").json() or []
    kinds = {0: "C", 1: "A", 2: "D"}
    for item in items:
        print(f"{kinds.get(item.get('Kind'), '?')} {item.get('Path')}")
    return 0


def export(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "[OPTIONS] CONTAINER")
    p.add_argument("-o", "--output")
    p.add_argument("container")
    a = p.parse_args(argv)
    if not a.output and sys.stdout.isatty():
        raise Usage("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    resp = api.request("GET", f"/containers/{path_quote(a.container)}/export")
    if not a.output:
        out = sys.stdout.buffer
        while data := resp.raw.read1(_CHUNK):
            out.write(data)
        out.flush()
        resp.close()
        return 0
    tmp = f"{a.output}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as out:
            while data := resp.raw.read1(_CHUNK):
                out.write(data)
        os.replace(tmp, a.output)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        resp.close()
    return 0


def commit(api: Transport, name: str, argv: list[str]) -> int:
    pause = True
    rest = []
    for arg in argv:  # -p/--pause is a boolean flag that also takes "=false"
        flag, eq, value = arg.partition("=")
        if flag in ("-p", "--pause"):
            pause = value.lower() not in ("false", "0") if eq else True
        else:
            rest.append(arg)
    p = parser(name, "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]")
    p.add_argument("-a", "--author", default="")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-m", "--message", default="")
    p.add_argument("container")
    p.add_argument("reference", nargs="?")
    a = p.parse_args(rest)
    repo, tag = a.reference, None
    if repo and ":" in repo.rsplit("/", 1)[-1]:
        repo, tag = repo.rsplit(":", 1)
    res = api.request("POST", "/commit", {"container": a.container, "repo": repo, "tag": tag,
                                          "comment": a.message or None, "author": a.author or None,
                                          "pause": "1" if pause else "0", "changes": a.change or None}).json()
    print(res["Id"])
    return 0
