"""What one test made on a berthd (containers, images, host paths), removed at teardown whatever happened.

Test modules subclass ``Made`` to add their own ways of making things; the ``made``
fixture in tests/conftest.py builds the module's subclass, or this class.
"""
from __future__ import annotations

import os
import shutil
from urllib.parse import quote


class Made:
    def __init__(self, daemon) -> None:
        self.daemon = daemon
        self.containers: list[str] = []
        self.images: list[str] = []
        self.paths: list[str] = []  # host files and directories

    def container(self, ref: str) -> str:
        self.containers.append(ref)
        return ref

    def image(self, ref: str) -> str:
        self.images.append(ref)
        return ref

    def cleanup(self) -> None:
        for ref in self.containers:
            self.daemon.api("DELETE", f"/containers/{quote(ref, safe='')}?force=1")
        for ref in reversed(self.images):
            self.daemon.api("DELETE", f"/images/{quote(ref, safe='')}?force=1")
        for p in self.paths:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            elif os.path.lexists(p):
                os.unlink(p)
