"""Layer decompression, storage and safe extraction (run as root)."""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import os
import stat
import struct
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
import zstandard

from berth.errors import InvalidArgument
from berth.image.layers import apply_layer, layer_diff_id, open_decompressed, store_uncompressed

ROOT = Path(__file__).resolve().parents[2]
MTIME = 1_600_000_000
CAP_NET_BIND = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _busybox_module():
    spec = importlib.util.spec_from_file_location("busybox_rootfs", ROOT / "scripts" / "busybox_rootfs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def busybox_tar(tmp_path_factory) -> str:
    return _busybox_module().make_rootfs_tar(str(tmp_path_factory.mktemp("bb") / "rootfs.tar"))


def ent(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, link="", uid=0, gid=0, mtime=MTIME, pax=None, dev=(0, 0)):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.linkname, ti.uid, ti.gid, ti.mtime = kind, mode, link, uid, gid, mtime
    ti.devmajor, ti.devminor = dev
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    if pax:
        ti.pax_headers = dict(pax)
    return ti, data


def make_tar(path, entries) -> str:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for ti, data in entries:
            tar.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
    return str(path)


def tar_bytes(entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for ti, data in entries:
            tar.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
    return buf.getvalue()


@pytest.fixture
def dest(tmp_path) -> Path:
    d = tmp_path / "layers" / "1" / "diff"
    d.mkdir(parents=True)
    return d


def apply(tmp_path, dest, entries) -> int:
    return apply_layer(make_tar(tmp_path / "layer.tar", entries), str(dest))


def test_busybox_rootfs(busybox_tar, dest):
    size = apply_layer(busybox_tar, str(dest))
    bb = dest / "bin" / "busybox"
    assert bb.read_bytes() == Path("/bin/busybox").read_bytes()
    assert stat.S_IMODE(bb.lstat().st_mode) == 0o755
    assert os.readlink(dest / "bin" / "sh") == "/bin/busybox"
    assert stat.S_IMODE((dest / "tmp").lstat().st_mode) == 0o1777
    assert stat.S_IMODE((dest / "etc").lstat().st_mode) == 0o755
    assert (dest / "etc" / "passwd").read_bytes().startswith(b"root:x:0:0")
    assert (dest / "bin").lstat().st_mtime == 1700000000
    assert (dest / "bin" / "sh").lstat().st_mtime == 1700000000
    assert size == bb.stat().st_size + (dest / "etc/passwd").stat().st_size + (dest / "etc/group").stat().st_size
    out = subprocess.run(["chroot", str(dest), "/bin/sh", "-c", "echo hi"], capture_output=True, text=True)
    assert out.stdout == "hi\n"


def test_metadata_modes_owners_xattrs_and_dir_mtime(tmp_path, dest):
    pax = {"SCHILY.xattr.security.capability": CAP_NET_BIND.decode("utf-8", "surrogateescape"),
           "SCHILY.xattr.user.note": "hello", "SCHILY.xattr.user.bin": b"\xff\x00\x01".decode("utf-8", "surrogateescape"),
           "SCHILY.xattr.trusted.overlay.opaque": "y", "mtime": "1600000000.123456789"}
    apply(tmp_path, dest, [
        ent("d", tarfile.DIRTYPE, mode=0o2750, uid=1000, gid=1001, mtime=MTIME - 100),
        ent("d/suid", data=b"x", mode=0o4755, uid=1000, gid=1001, pax=pax),
        ent("d/sub", tarfile.DIRTYPE, mode=0o555),
        ent("d/sub/f", data=b"y", mode=0o400),
        ent("sticky", tarfile.DIRTYPE, mode=0o1777),
        ent("d/link", tarfile.SYMTYPE, link="suid", uid=5, gid=6, mode=0o777),
        ent("d/fifo", tarfile.FIFOTYPE, mode=0o640, uid=7),
    ])
    st = (dest / "d").lstat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime) == (0o2750, 1000, 1001, MTIME - 100)
    st = (dest / "d/suid").lstat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o4755, 1000, 1001)
    assert st.st_mtime_ns == 1600000000123456789
    assert os.getxattr(dest / "d/suid", "security.capability") == CAP_NET_BIND
    assert os.getxattr(dest / "d/suid", "user.note") == b"hello"
    assert os.getxattr(dest / "d/suid", "user.bin") == b"\xff\x00\x01"
    assert "trusted.overlay.opaque" not in os.listxattr(dest / "d/suid")  # only whiteouts steer overlayfs
    assert stat.S_IMODE((dest / "d/sub").lstat().st_mode) == 0o555
    assert (dest / "d/sub/f").read_bytes() == b"y"
    assert stat.S_IMODE((dest / "sticky").lstat().st_mode) == 0o1777
    st = (dest / "d/link").lstat()
    assert stat.S_ISLNK(st.st_mode) and (st.st_uid, st.st_gid, st.st_mtime) == (5, 6, MTIME)
    st = (dest / "d/fifo").lstat()
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 7


def test_whiteouts_and_opaque(tmp_path, dest):
    apply(tmp_path, dest, [
        ent(".wh.x"),
        ent("etc", tarfile.DIRTYPE, mode=0o755),
        ent("etc/.wh.passwd"),
        ent("usr/.wh..wh..opq"),
        ent("usr/new", data=b"n"),
        ent(".wh..wh.plnk", tarfile.DIRTYPE),
    ])
    for p in (dest / "x", dest / "etc/passwd"):
        st = p.lstat()
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert os.getxattr(dest / "usr", "trusted.overlay.opaque") == b"y"
    assert (dest / "usr/new").read_bytes() == b"n"
    assert not (dest / ".wh.x").exists() and not (dest / ".wh..wh.plnk").exists()
    assert sorted(os.listdir(dest)) == ["etc", "usr", "x"]


def test_whiteouts_work_under_overlayfs(tmp_path, busybox_tar):
    lower0, lower1 = tmp_path / "l0", tmp_path / "l1"
    lower0.mkdir()
    lower1.mkdir()
    apply_layer(busybox_tar, str(lower0))
    apply(tmp_path, lower1, [ent("etc/.wh.group"), ent("bin/.wh..wh..opq"), ent("bin/only", data=b"o")])
    merged = tmp_path / "merged"
    merged.mkdir()
    r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower1}:{lower0}", str(merged)],
                       capture_output=True)
    if r.returncode:
        pytest.skip(f"overlay mount failed: {r.stderr!r}")
    try:
        assert os.listdir(merged / "bin") == ["only"]
        assert (merged / "etc/passwd").exists() and not (merged / "etc/group").exists()
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def test_hardlinks_and_duplicates(tmp_path, dest):
    apply(tmp_path, dest, [
        ent("a", data=b"first"),
        ent("a", data=b"second", mode=0o600),
        ent("h", tarfile.LNKTYPE, link="a"),
        ent("./h2", tarfile.LNKTYPE, link="/a"),
        ent("d", tarfile.DIRTYPE, mode=0o700),
        ent("d/keep", data=b"k"),
        ent("d", tarfile.DIRTYPE, mode=0o751),
        ent("f", tarfile.DIRTYPE),
        ent("f/inner", data=b"i"),
        ent("f", data=b"now a file"),
        ent("s", tarfile.SYMTYPE, link="/etc/passwd"),
        ent("s", data=b"replaces the symlink"),
        ent("x", data=b"file"),
        ent("x", tarfile.DIRTYPE),
        ent("x/y", data=b"under"),
    ])
    assert (dest / "a").read_bytes() == b"second" and stat.S_IMODE((dest / "a").stat().st_mode) == 0o600
    assert (dest / "h").stat().st_ino == (dest / "a").stat().st_ino == (dest / "h2").stat().st_ino
    assert (dest / "d/keep").read_bytes() == b"k" and stat.S_IMODE((dest / "d").stat().st_mode) == 0o751
    assert (dest / "f").read_bytes() == b"now a file"
    assert not (dest / "s").is_symlink() and (dest / "s").read_bytes() == b"replaces the symlink"
    assert (dest / "x/y").read_bytes() == b"under"


def _snapshot(top: Path, skip: Path) -> dict:
    out = {}
    for root, dirs, files in os.walk(top):
        if Path(root) == skip:
            dirs[:] = []
            continue
        for n in dirs + files:
            p = Path(root, n)
            if p == skip:
                continue
            st = p.lstat()
            out[str(p)] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino)
    return out


EVIL = f"berth-test-evil-{uuid.uuid4().hex}"

UNSAFE = {
    "dotdot": [ent("../evil", data=b"x")],
    "dotdot-deep": [ent("a/../../evil", data=b"x")],
    "dotdot-sentinel": [ent("../../sentinel/owned", data=b"x")],
    "absolute": [ent(f"/tmp/{EVIL}", data=b"x")],
    "through-symlink-root": [ent("a", tarfile.SYMTYPE, link="/"), ent(f"a/tmp/{EVIL}", data=b"x")],
    "through-symlink-inside": [ent("d", tarfile.DIRTYPE), ent("l", tarfile.SYMTYPE, link="d"), ent("l/x", data=b"x")],
    "whiteout-through-symlink": [ent("a", tarfile.SYMTYPE, link="/tmp"), ent(f"a/.wh.{EVIL}")],
    "symlink-up": [ent("up", tarfile.SYMTYPE, link="../../..")],
    "symlink-up-nested": [ent("a/b", tarfile.SYMTYPE, link="../../x")],
    "hardlink-out": [ent("h", tarfile.LNKTYPE, link="../../etc/passwd")],
    "hardlink-missing": [ent("h", tarfile.LNKTYPE, link="etc/passwd")],
    "hardlink-through-symlink": [ent("l", tarfile.SYMTYPE, link="/"), ent("h", tarfile.LNKTYPE, link="l/etc/passwd")],
    "hardlink-to-dir": [ent("d", tarfile.DIRTYPE), ent("h", tarfile.LNKTYPE, link="d")],
    "char-device": [ent("dev/null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3))],
    "char-device-0-0": [ent("gone", tarfile.CHRTYPE, dev=(0, 0))],
    "block-device": [ent("dev/sda", tarfile.BLKTYPE, mode=0o660, dev=(8, 0))],
    "unknown-type": [ent("weird", b"Z")],
    "file-as-parent": [ent("f", data=b"x"), ent("f/g", data=b"y")],
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_entries_rejected(tmp_path, dest, case):
    sentinel = tmp_path / "layers" / "sentinel"
    sentinel.mkdir()
    (sentinel / "keep").write_text("keep")
    layer = make_tar(tmp_path / "evil.tar", UNSAFE[case])
    before = _snapshot(tmp_path, dest)
    with pytest.raises(InvalidArgument) as exc:
        apply_layer(layer, str(dest))
    assert repr(UNSAFE[case][-1][0].name) in exc.value.message
    assert _snapshot(tmp_path, dest) == before
    assert not Path("/tmp", EVIL).exists()
    assert os.listdir(sentinel) == ["keep"]


def test_absolute_symlink_targets_allowed(tmp_path, dest):
    apply(tmp_path, dest, [ent("bin/sh", tarfile.SYMTYPE, link="/bin/busybox"),
                           ent("lib/x", tarfile.SYMTYPE, link="../usr/lib/x")])
    assert os.readlink(dest / "bin/sh") == "/bin/busybox"
    assert os.readlink(dest / "lib/x") == "../usr/lib/x"


def _invalid_tars(busybox_tar):
    data = Path(busybox_tar).read_bytes()
    small = tar_bytes([ent("a", data=b"a" * 512), ent("b", data=b"b" * 100)])
    garbage_mid = small[:1024] + os.urandom(512) + small[1536:]
    return {
        "truncated-half": data[: len(data) // 2],
        "truncated-in-header": data[:700],
        "no-end-marker": small[:512 * 2],
        "garbage-header": garbage_mid,
        "random": os.urandom(4096),
        "empty": b"",
        "text": b"hello, I am not a tar\n" * 40,
    }


@pytest.mark.parametrize("case", ["truncated-half", "truncated-in-header", "no-end-marker",
                                  "garbage-header", "random", "empty", "text"])
def test_invalid_tar_rejected(tmp_path, dest, busybox_tar, case):
    path = tmp_path / "bad.tar"
    path.write_bytes(_invalid_tars(busybox_tar)[case])
    with pytest.raises(InvalidArgument, match="invalid tar"):
        apply_layer(str(path), str(dest))


class _OneWay:
    """A non-seekable stream returning short reads."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def read(self, n=-1):
        return self._f.read(min(n, 1000) if n and n > 0 else n)


def test_compressed_layers_give_same_diff_id(tmp_path, busybox_tar):
    raw = Path(busybox_tar).read_bytes()
    want = "sha256:" + hashlib.sha256(raw).hexdigest()
    assert layer_diff_id(busybox_tar) == want
    cctx = zstandard.ZstdCompressor()
    variants = {
        "plain": raw,
        "gzip": gzip.compress(raw),
        "gzip-multi": gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]),
        "zstd": cctx.compress(raw),
        "zstd-multi": cctx.compress(raw[:5000]) + cctx.compress(raw[5000:]),
    }
    for name, blob in variants.items():
        for src in (io.BytesIO(blob), _OneWay(blob)):
            out = tmp_path / f"{name}.tar"
            assert store_uncompressed(src, str(out)) == (want, len(raw)), name
            assert out.read_bytes() == raw
    assert open_decompressed(io.BytesIO(gzip.compress(b"abc"))).read() == b"abc"
    assert open_decompressed(io.BytesIO(b"ab")).read() == b"ab"
    gz = tmp_path / "layer.tar.gz"
    gz.write_bytes(variants["zstd"])
    d = tmp_path / "d"
    d.mkdir()
    apply_layer(str(gz), str(d))
    assert (d / "bin/busybox").exists()


@pytest.mark.parametrize("kind", ["gzip", "zstd", "zstd-garbage", "gzip-corrupt"])
def test_bad_compressed_data_rejected(tmp_path, busybox_tar, kind):
    raw = Path(busybox_tar).read_bytes()
    blob = {
        "gzip": gzip.compress(raw)[:-100],
        "zstd": zstandard.ZstdCompressor().compress(raw)[:-100],
        "zstd-garbage": zstandard.ZstdCompressor().compress(raw) + b"garbage!",
        "gzip-corrupt": gzip.compress(raw)[:20] + bytes(200) + gzip.compress(raw)[220:],
    }[kind]
    with pytest.raises(InvalidArgument, match="invalid compressed data"):
        store_uncompressed(io.BytesIO(blob), str(tmp_path / "out.tar"))
