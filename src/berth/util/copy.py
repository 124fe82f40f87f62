"""Copying a directory's content with owners, modes and times kept (an image path into a new volume)."""
from __future__ import annotations

import errno
import os
import stat


def copy_tree(src: str, dst: str) -> None:
    """Copy what is below ``src`` into the existing directory ``dst``, never following symlinks;
    ``dst`` takes ``src``'s owner and mode. Device nodes and fifos are made again; sockets are skipped."""
    for entry in os.scandir(src):
        s, d = entry.path, os.path.join(dst, entry.name)
        st = entry.stat(follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(d)
            copy_tree(s, d)
            continue
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISREG(mode):
            _copy_file(s, d)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            os.mknod(d, mode, st.st_rdev)
        else:
            continue
        _copy_meta(s, d, st)
    _copy_meta(src, dst)  # last: copying into it changed its times


def _copy_file(src: str, dst: str) -> None:
    fin = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            size = os.fstat(fin).st_size
            offset = 0
            while offset < size:
                try:
                    sent = os.copy_file_range(fin, fout, size - offset)
                except OSError as e:  # across filesystems on older kernels (overlay → ext4): EXDEV
                    if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                        raise
                    sent = os.sendfile(fout, fin, None, size - offset)
                if sent == 0:
                    break
                offset += sent
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def _copy_meta(src: str, dst: str, st: os.stat_result | None = None) -> None:
    st = st or os.lstat(src)
    os.lchown(dst, st.st_uid, st.st_gid)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
