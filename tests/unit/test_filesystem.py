"""The pieces behind cp / diff / export / commit: Go path rules, tar writing, safe extraction, overlay changes."""
from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile

import pytest

from berth.cli.commands import cp as cli
from berth.errors import InvalidArgument
from berth.image.layers import decompress_stream
from berth.services import archive, tree_tar, upper_scan
from berth.types import archive_paths as paths
from berth.util.tar import DIR_FLAGS

ROOT = os.geteuid() == 0


# -- Go's path rules -------------------------------------------------------------------------------
@pytest.mark.parametrize("cleaned, original, want", [
    ("/etc", "etc/", "/etc/"), ("/etc", "etc/.", "/etc/."), ("/", ".", "/."), ("/etc", "/etc", "/etc"),
    ("/", "/", "/"),
])
def test_preserve_trailing(cleaned, original, want):
    assert paths.preserve_trailing(cleaned, original) == want


@pytest.mark.parametrize("path, want", [
    ("/etc/passwd", ("/etc", "passwd")), ("/etc/", ("/", "etc")), ("/etc/.", ("/etc", ".")), ("/", ("/", "/")),
    ("a/b", ("a", "b")), ("b", (".", "b")),
])
def test_split_dir_entry(path, want):
    assert paths.split_dir_entry(path) == want
    assert cli.split_dir_entry(path) == want


def test_go_mode_bits():
    assert paths.go_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert paths.go_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert paths.go_mode(stat.S_IFREG | 0o4755) == (1 << 23) | 0o755
    assert paths.go_mode(stat.S_IFDIR | 0o1777) == (1 << 31) | (1 << 20) | 0o777
    assert paths.go_mode(stat.S_IFCHR | 0o666) == (1 << 26) | (1 << 21) | 0o666


def test_rfc3339_trims_nanoseconds():
    assert archive.rfc3339_ns(1700000000 * 10**9) == "2023-11-14T22:13:20Z"
    assert archive.rfc3339_ns(1700000000 * 10**9 + 500_000_000) == "2023-11-14T22:13:20.5Z"


# -- docker cp's client-side rules -------------------------------------------------------------------
@pytest.mark.parametrize("arg, want", [
    ("c1:/etc", ("c1", "/etc")), ("/abs:x", ("", "/abs:x")), ("./f:x", ("", "./f:x")), ("file", ("", "file")),
    ("c1:", ("c1", "")),
])
def test_split_arg(arg, want):
    assert cli.split_arg(arg) == want


def test_prepare_copy_cases():
    f, d = cli.CopyInfo("/src/file", True, False), cli.CopyInfo("/src/dir", True, True)
    assert cli.prepare_copy(f, cli.CopyInfo("/dst", True, True)) == ("/dst", [])
    assert cli.prepare_copy(f, cli.CopyInfo("/dst/new")) == ("/dst", [("file", "new")])
    assert cli.prepare_copy(d, cli.CopyInfo("/dst/new")) == ("/dst", [("dir", "new")])
    assert cli.prepare_copy(f, cli.CopyInfo("/dst/old", True, False)) == ("/dst", [("file", "old")])
    with pytest.raises(cli.CopyError, match="cannot copy directory"):
        cli.prepare_copy(d, cli.CopyInfo("/dst/old", True, False))
    with pytest.raises(cli.CopyError, match="no such directory"):
        cli.prepare_copy(f, cli.CopyInfo("/dst/new/"))
    contents = cli.CopyInfo("/src/dir/.", True, True)
    assert cli.prepare_copy(contents, cli.CopyInfo("/dst/new")) == ("/dst", [(".", "new")])


def test_rebase_names():
    assert paths.rebase("dir/a", [("dir", "new")]) == "new/a"
    assert paths.rebase("./a", [(".", "new")]) == "new/a"
    assert paths.rebase("/bin/sh", [("/", "new")]) == "new/bin/sh"


# -- writing tars -----------------------------------------------------------------------------------
def _tar_of(tmp_path, name="d"):
    buf = io.BytesIO()
    out = tree_tar.TarOut(buf.write)
    d = os.open(tmp_path, DIR_FLAGS)
    try:
        tree_tar.TreeWriter(out).entry(d, name, name, (name,))
    finally:
        os.close(d)
    out.close()
    buf.seek(0)
    return buf


def test_tree_writer_dirs_links_hardlinks(tmp_path):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "f").write_bytes(b"x" * 1000)
    os.link(d / "sub" / "f", d / "g")
    os.symlink("/etc/shadow", d / "link")
    os.chmod(d / "sub" / "f", 0o640)
    with tarfile.open(fileobj=_tar_of(tmp_path), mode="r:") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert list(members) == ["d", "d/g", "d/link", "d/sub", "d/sub/f"]
        assert members["d/g"].isreg() and members["d/sub/f"].islnk() and members["d/sub/f"].linkname == "d/g"
        assert members["d/link"].issym() and members["d/link"].linkname == "/etc/shadow"
        assert tar.extractfile("d/g").read() == b"x" * 1000


# -- extraction --------------------------------------------------------------------------------------
def _tar(*entries, compress=False) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.uid, ti.gid = os.getuid(), os.getgid()
            ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            if kind == tarfile.SYMTYPE or kind == tarfile.LNKTYPE:
                ti.linkname = data
                tar.addfile(ti)
            elif kind == tarfile.REGTYPE:
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
            else:
                tar.addfile(ti)
    data = buf.getvalue()
    return io.BytesIO(gzip.compress(data) if compress else data)


def _untar(dest, stream, no_overwrite=True):
    fd = os.open(dest, DIR_FLAGS)
    try:
        archive.Untar(fd, ("x",), no_overwrite, (os.getuid(), os.getgid()), {}).run(decompress_stream(stream))
    finally:
        os.close(fd)


def test_untar_files_dirs_and_gzip(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    _untar(dest, _tar(("a", tarfile.DIRTYPE, b""), ("a/f", tarfile.REGTYPE, b"hi"), ("a/l", tarfile.SYMTYPE, "f"),
                      ("a/h", tarfile.LNKTYPE, "a/f"), compress=True))
    assert (dest / "a" / "f").read_bytes() == b"hi"
    assert os.readlink(dest / "a" / "l") == "f"
    assert os.stat(dest / "a" / "h").st_ino == os.stat(dest / "a" / "f").st_ino


@pytest.mark.parametrize("entries", [
    [("../../evil", tarfile.REGTYPE, b"x")],
    [("l", tarfile.SYMTYPE, "/"), ("l/evil", tarfile.REGTYPE, b"x")],
    [("l", tarfile.SYMTYPE, "../../.."), ("l2", tarfile.REGTYPE, b"x")],
    [("h", tarfile.LNKTYPE, "../../etc/passwd")],
])
def test_untar_refuses_escapes(tmp_path, entries):
    dest = tmp_path / "root" / "dest"
    dest.mkdir(parents=True)
    with pytest.raises(InvalidArgument):
        _untar(dest, _tar(*entries))
    assert not (tmp_path / "evil").exists() and not (tmp_path / "root" / "evil").exists()


def test_untar_does_not_write_through_an_existing_symlink(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "l")
    with pytest.raises(InvalidArgument):
        _untar(dest, _tar(("l/evil", tarfile.REGTYPE, b"x")))
    assert not (outside / "evil").exists()
    _untar(dest, _tar(("l", tarfile.REGTYPE, b"replaced")))  # the symlink itself is replaced, not followed
    assert (dest / "l").read_bytes() == b"replaced" and not (outside / "l").exists()


def test_untar_no_overwrite_dir_non_dir(tmp_path):
    dest = tmp_path / "dest"
    (dest / "d").mkdir(parents=True)
    with pytest.raises(InvalidArgument, match="cannot overwrite directory"):
        _untar(dest, _tar(("d", tarfile.REGTYPE, b"x")))
    _untar(dest, _tar(("d", tarfile.REGTYPE, b"x")), no_overwrite=False)
    assert (dest / "d").read_bytes() == b"x"


def test_untar_refuses_devices_and_bad_data(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(InvalidArgument, match="device"):
        _untar(dest, _tar(("null", tarfile.CHRTYPE, b"")))
    with pytest.raises(InvalidArgument):
        _untar(dest, io.BytesIO(b"not a tar at all" * 64))


# -- overlay changes -----------------------------------------------------------------------------------
@pytest.mark.skipif(not ROOT, reason="whiteouts and trusted xattrs need root")
def test_changes_and_layer(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in ("bin", "etc", "usr/lib"):
        (lower / d).mkdir(parents=True)
    (lower / "bin" / "ls").write_text("ls")
    (lower / "etc" / "passwd").write_text("root")
    (lower / "usr" / "lib" / "old").write_text("old")
    for d in ("bin", "etc", "usr/lib"):
        (upper / d).mkdir(parents=True)
        st = os.stat(lower / d)
        os.utime(upper / d, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.mknod(upper / "bin" / "ls", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (upper / "etc" / "passwd").write_text("root\n")
    (upper / "etc" / "hostname").write_text("")  # a runtime placeholder
    (upper / "new").write_text("new")
    os.setxattr(upper / "usr" / "lib", "trusted.overlay.opaque", b"y")
    (upper / "usr" / "lib" / "fresh").write_text("f")
    for d in ("etc", "usr"):  # only copied up: same times as below
        st = os.stat(lower / d)
        os.utime(upper / d, ns=(st.st_atime_ns, st.st_mtime_ns))
    fd = os.open(upper, DIR_FLAGS)
    try:
        entries, _ = upper_scan.scan_upper(fd, (), upper_scan.Lowers([str(lower)]), False, set(upper_scan.MOUNT_DIRS))
        changes = [(c["Kind"], c["Path"]) for c in upper_scan.changes_of(entries)]
        assert (upper_scan.DELETED, "/bin/ls") in changes and (upper_scan.MODIFIED, "/bin") in changes
        assert (upper_scan.MODIFIED, "/etc/passwd") in changes and (upper_scan.ADDED, "/new") in changes
        assert (upper_scan.DELETED, "/usr/lib") in changes and (upper_scan.ADDED, "/usr/lib/fresh") in changes
        assert not any(p == "/etc/hostname" for _, p in changes)
        buf = io.BytesIO()
        upper_scan.write_layer(tree_tar.TarOut(buf.write), fd, upper_scan.prune_for_layer(entries))
    finally:
        os.close(fd)
    buf.seek(0)
    with tarfile.open(fileobj=buf, mode="r:") as tar:
        names = tar.getnames()
    assert "bin/.wh.ls" in names and "etc/passwd" in names and "new" in names
    assert "usr/lib/.wh..wh..opq" in names and "etc/hostname" not in names
