"""skopeo (the containers/image tools) reads what berth and the docker CLI save, and berth loads what
skopeo writes: docker-archive -> OCI layout -> docker-archive -> berth load, keeping the image ID.

Only local transports (docker-archive:, oci:) are used; ``--insecure-policy`` because there is no
/etc/containers/policy.json here. Needs root, runc and busybox (the ``daemon`` fixture skips otherwise).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from urllib.parse import quote

import pytest

BUSYBOX = "busybox:latest"
SKOPEO = "/usr/bin/skopeo"
COPIED = "skopeo/busybox:copied"

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not os.path.exists(SKOPEO), reason="skopeo is not installed"),
]


def skopeo(*args: str) -> subprocess.CompletedProcess:
    p = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, timeout=60)
    assert p.returncode == 0, f"skopeo {' '.join(args)} exited {p.returncode}: {p.stderr.decode()}"
    return p


def image_id(daemon, ref: str) -> str | None:
    status, body = daemon.api("GET", f"/images/{quote(ref, safe='')}/json")
    return body["Id"] if status == 200 else None


@pytest.fixture
def workdir(daemon):
    d = tempfile.mkdtemp(prefix="bt-skopeo-", dir="/tmp")
    yield d
    daemon.api("DELETE", f"/images/{quote(COPIED, safe='')}")
    shutil.rmtree(d, ignore_errors=True)


def _save(daemon, saver: str, path: str) -> None:
    if saver == "berth":
        daemon.cli("save", "-o", path, BUSYBOX)
    else:
        daemon.docker("save", "-o", path, BUSYBOX)
    assert os.path.getsize(path) > 100_000


@pytest.mark.parametrize("saver", ["berth", "docker"])
def test_archive_to_oci_and_back_keeps_the_image(daemon, workdir, saver):
    original = image_id(daemon, BUSYBOX)
    assert original, "the daemon fixture's busybox:latest is missing"
    assert image_id(daemon, COPIED) is None, f"{COPIED} is left over from an earlier run"
    archive = os.path.join(workdir, "saved.tar")
    layout = os.path.join(workdir, "oci")
    archive2 = os.path.join(workdir, "copied.tar")

    _save(daemon, saver, archive)

    # skopeo reads the saved archive: its config is busybox's
    cfg = json.loads(skopeo("inspect", "--config", f"docker-archive:{archive}").stdout)
    assert cfg["config"]["Cmd"] == ["sh"]
    assert cfg["os"] == "linux"

    skopeo("copy", f"docker-archive:{archive}", f"oci:{layout}:latest")
    with open(os.path.join(layout, "oci-layout")) as f:
        assert json.load(f)["imageLayoutVersion"] == "1.0.0"
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == ["latest"]

    skopeo("copy", f"oci:{layout}:latest", f"docker-archive:{archive2}:{COPIED}")

    p = daemon.cli("load", "-i", archive2)
    assert f"Loaded image: {COPIED}" in p.stdout.decode()
    copied = image_id(daemon, COPIED)
    assert copied is not None, f"berth load did not make {COPIED}"
    shown = daemon.cli("image", "inspect", "-f", "{{.Id}}", COPIED).stdout.decode().strip()
    assert shown == copied

    p = daemon.cli("run", "--rm", COPIED, "echo", "from-the-copy")
    assert p.stdout.decode() == "from-the-copy\n"
    assert copied == original, (
        f"the image came back from skopeo with another ID: {copied} != {original} "
        f"(skopeo's config: {json.dumps(cfg, sort_keys=True)})")
