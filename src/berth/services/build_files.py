"""A build's files: the context (unpacked safely, ignored build files dropped) and COPY/ADD's sources,
their hashes for the cache, and Docker's rules for where they land and who owns them."""
from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import shutil
import stat
import tarfile

from berth.util import dockerignore as ignore
from berth.errors import BerthError, SystemError_
from berth.image.layers import decompress_stream
from berth.util.fs import resolve_in_root
from berth.util.tar import TreeExtractor


class BuildFailed(BerthError):
    status = 400

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code  # a failed RUN's exit code (errorDetail.code)


def owner_of(chown: str, root: str) -> tuple[int, int] | None:
    """``--chown=user[:group]`` (names looked up in the image's /etc/passwd and /etc/group; a lone user
    names the group too, as moby's parseChownFlag)."""
    if not chown:
        return None
    user, _, group = chown.partition(":")
    group = group or user
    return _lookup(user, root, "/etc/passwd", 2), _lookup(group, root, "/etc/group", 2)


def _lookup(name: str, root: str, path: str, field: int) -> int:
    if name.isdigit():
        return int(name)
    try:
        with open(resolve_in_root(root, path), encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) > field and parts[0] == name and parts[field].isdigit():
                    return int(parts[field])
    except OSError:
        pass
    kind = "user" if "passwd" in path else "group"
    raise BuildFailed(f"unable to convert uid/gid chown string to host mapping: can't find uid for {kind} "
                      f"{name}: no such {kind}: {name}")


def drop_ignored_build_files(ctx: str, dockerfile: str) -> None:
    """The clients always send the Dockerfile and .dockerignore; the daemon drops them again when
    .dockerignore excludes them (so ``COPY . /x`` does not copy them), as dockerd does."""
    path = os.path.join(ctx, ".dockerignore")
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        try:
            matcher = ignore.Matcher(ignore.read_patterns(f.read()))
        except ValueError:
            return
    for rel in (os.path.normpath(dockerfile), ".dockerignore"):
        full = resolve_in_root(ctx, rel)
        if os.path.isfile(full) and matcher.excluded(rel, False):
            os.unlink(full)


def read_dockerfile(ctx: str, name: str) -> str:
    path = resolve_in_root(ctx, name)
    if not os.path.isfile(path):
        raise SystemError_(f"Cannot locate specified Dockerfile: {name}")  # dockerd: 500
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def _extract_into(tar_path: str, dest: str) -> None:
    """A tar (plain or compressed), safely: nothing lands outside ``dest``."""
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with open(tar_path, "rb") as f:
            TreeExtractor(fd).run(decompress_stream(f))
    finally:
        os.close(fd)


def extract_context(tar_path: str, dest: str) -> None:
    size = os.path.getsize(tar_path)
    if size == 0:
        raise BuildFailed("the build context is empty: send a tar of the context")
    with open(tar_path, "rb+") as f:
        magic = f.read(6)
        if magic[:2] != b"\x1f\x8b" and not magic.startswith((b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd")):
            # docker CLI 28 sends -f - contexts without the last entry's padding and the end blocks
            f.seek(0, os.SEEK_END)
            f.write(b"\0" * ((-size) % 512 + 1024))
    _extract_into(tar_path, dest)


def expand_sources(root: str, sources: list[str], from_context: bool) -> list[str]:
    """Each source (globs allowed) as paths relative to ``root``; Docker's errors for missing ones."""
    out = []
    for s in sources:
        rel = os.path.normpath(s.lstrip("/")) if s not in (".", "./") else "."
        if rel.startswith(".."):
            raise BuildFailed(f"forbidden path outside the build context: {s} ()")
        if any(ch in rel for ch in "*?["):
            found = sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, rel)))
            if not found:
                raise BuildFailed("COPY failed: no source files were specified")
            out += found
            continue
        if not os.path.lexists(os.path.join(root, rel)):
            where = "build context" if from_context else "image"
            raise BuildFailed(f"COPY failed: file not found in {where} or excluded by .dockerignore: stat {s}: "
                              "file does not exist")
        out.append(rel)
    return out


def hash_sources(root: str, rels: list[str]) -> tuple[str, dict[str, str]]:
    """The content and metadata of every source file, as one digest (Docker's ``file:``/``dir:`` hash),
    and each file's own digest (what ``--explain`` compares)."""
    h = hashlib.sha256()
    files: dict[str, str] = {}
    for rel in rels:
        top = os.path.join(root, rel)
        walk = [top] if not os.path.isdir(top) or os.path.islink(top) else sorted(
            [top] + [os.path.join(d, n) for d, dirs, files in os.walk(top) for n in dirs + files])
        for p in walk:
            st = os.lstat(p)
            one = hashlib.sha256(f"{st.st_mode}\x00{st.st_uid}\x00{st.st_gid}\x00".encode())
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        one.update(chunk)
            elif stat.S_ISLNK(st.st_mode):
                one.update(os.readlink(p).encode())
            rel_p = os.path.relpath(p, root)
            files[rel_p] = one.hexdigest()
            h.update(f"{rel_p}\x00{files[rel_p]}\x00".encode())
    kind = "dir" if len(rels) == 1 and os.path.isdir(os.path.join(root, rels[0])) else "file"
    return (f"{kind}:{h.hexdigest()}" if len(rels) == 1 else f"multi:{h.hexdigest()}"), files


def copy_into(root: str, src_root: str, rels: list[str], dest: str, owner, chmod: str, extract: bool,
               dest_is_dir: bool) -> None:
    """Docker's COPY rules: a directory's content (not itself) goes into dest; a file goes to dest, or
    into it when dest ends with / or several sources are given; ADD unpacks local tar archives."""
    target = resolve_in_root(root, dest)
    if dest_is_dir:
        os.makedirs(target, 0o755, exist_ok=True)
    for rel in rels:
        src = os.path.join(src_root, rel)
        if os.path.isdir(src) and not os.path.islink(src):
            _copy_tree(src, target, owner, chmod)
            continue
        if extract and tarfile.is_tarfile(src):  # ADD unpacks a local archive into dest
            os.makedirs(target, 0o755, exist_ok=True)
            _extract_into(src, target)
            continue
        to = os.path.join(target, os.path.basename(rel)) if dest_is_dir else target
        os.makedirs(os.path.dirname(to), 0o755, exist_ok=True)
        _copy_one(src, to, owner, chmod)


def _copy_tree(src: str, dst: str, owner, chmod: str) -> None:
    os.makedirs(dst, exist_ok=True)
    for entry in os.scandir(src):
        s, d = entry.path, os.path.join(dst, entry.name)
        if entry.is_dir(follow_symlinks=False):
            os.makedirs(d, exist_ok=True)
            shutil.copystat(s, d)
            own(d, owner, chmod, s)
            _copy_tree(s, d, owner, chmod)
        else:
            _copy_one(s, d, owner, chmod)


def _copy_one(src: str, dst: str, owner, chmod: str) -> None:
    if os.path.lexists(dst) and not os.path.isdir(dst):
        os.unlink(dst)
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
    else:
        shutil.copy2(src, dst)
    own(dst, owner, chmod, src)


def own(path: str, owner, chmod: str, src: str) -> None:
    """Docker's COPY: files belong to root (or --chown; ``None`` keeps the source's, for --from), with
    their modes (or --chmod)."""
    if owner is None:
        st = os.lstat(src)
        owner = (st.st_uid, st.st_gid)
    os.lchown(path, *owner)
    if chmod and not os.path.islink(path):
        os.chmod(path, int(chmod, 8))


def fetch_url(url: str, staging: str) -> str:
    """ADD <url>: download into ``staging`` (mode 0600, mtime from Last-Modified, as Docker) and return
    its path relative to ``staging``."""
    import email.utils
    import urllib.parse
    import urllib.request
    name = os.path.basename(urllib.parse.urlparse(url).path) or "__unnamed__"
    os.makedirs(staging, exist_ok=True)
    path = os.path.join(staging, name)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(path, "wb") as out:
            shutil.copyfileobj(resp, out)
            modified = resp.headers.get("Last-Modified")
    except OSError as e:
        raise BuildFailed(f"failed to GET {url}: {getattr(e, 'reason', e)}") from None
    os.chmod(path, 0o600)
    if modified:
        with contextlib.suppress(TypeError, ValueError):
            t = email.utils.parsedate_to_datetime(modified).timestamp()
            os.utime(path, (t, t))
    return name
