"""A service's build context as a tar, with ``.dockerignore`` applied exactly as the docker CLI applies it
(``berth.util.dockerignore``): the Dockerfile and the ignore file are always sent, and a Dockerfile outside
the context is added under a random name."""
from __future__ import annotations

import io
import os
import tarfile
import tempfile

from berth.util import dockerignore


def context_tar(context: str, dockerfile: str = "Dockerfile") -> tuple[tempfile.SpooledTemporaryFile, str]:
    """The tar of ``context`` (a spooled file at offset 0) and the Dockerfile name to send with it."""
    root = os.path.realpath(context)
    df_path = dockerfile if os.path.isabs(dockerfile) else os.path.join(root, dockerfile)
    rel_df = os.path.relpath(os.path.realpath(df_path), root)
    outside = rel_df.startswith("..")
    patterns = dockerignore.read_ignore_file(dockerignore.ignore_file_for(root, None if outside else rel_df))
    if not outside:
        patterns = dockerignore.keep_build_files(patterns, rel_df)
    out = tempfile.SpooledTemporaryFile(max_size=16 << 20)
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in dockerignore.context_files(root, patterns):
            path = os.path.join(root, rel)
            try:
                info = tar.gettarinfo(path, rel)
            except OSError:
                continue  # gone meanwhile
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            elif info.isdir() or info.issym() or info.islnk() or info.isfifo():
                tar.addfile(info)
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
