"""Files in containers: the service behind the archive API (``docker cp``), ``diff``, ``export`` and ``commit``.

Its parts, by role: ``container_root`` (a container's root mounted for a call and reached without
following a symlink out), ``archive`` (stat, GET and PUT of a path), ``changes`` (diff, export, commit)
with ``upper_scan`` (reading the container's upper directory), ``tree_tar`` (tars written from a tree)
and ``byte_streams`` (blocking file work bridged to the event loop).
"""
from __future__ import annotations

from berth.services.archive import ArchiveOps
from berth.services.changes import ChangesOps


class FilesystemService(ArchiveOps, ChangesOps):
    """``stat``, ``archive``, ``extract``, ``changes``, ``export`` and ``commit`` of a container's files."""
