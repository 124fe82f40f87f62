"""Resource limits and security options, as Docker applies them: memory (and the OOM killer), CPUs, PIDs,
ulimits, /dev/shm and tmpfs sizes, sysctls, extra groups, devices, --init, and the default seccomp profile.

Needs root, runc, busybox and gcc (for a static program calling keyctl); the ``daemon`` fixture skips
without the first three. Nothing is pulled: busybox:latest is made locally.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import tarfile
import uuid

import pytest

from berth.runtime.oom import oom_killed
from berth.runtime.spec import cgroups_path
from tests.support.daemon import make_rootfs_tar, wait_for

BUSYBOX = "busybox:latest"
KEYCTL_C = r"""
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    long r = syscall(SYS_keyctl, 12345L, 0L, 0L, 0L, 0L); /* no such operation: EOPNOTSUPP unless filtered */
    printf("keyctl %ld errno %d\n", r, r < 0 ? errno : 0);
    return 0;
}
"""
EPERM, EACCES, EOPNOTSUPP = 1, 13, 95


def uniq(prefix: str = "lim") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def demux(data: bytes) -> tuple[bytes, bytes]:
    out, err, i = [], [], 0
    while i < len(data):
        (size,) = struct.unpack(">I", data[i + 4:i + 8])
        (out if data[i] == 1 else err).append(data[i + 8:i + 8 + size])
        i += 8 + size
    return b"".join(out), b"".join(err)


class Runs:
    """Containers made through the API, removed at the end of the test."""

    def __init__(self, daemon) -> None:
        self.daemon = daemon
        self.ids: list[str] = []

    def create(self, cmd: list[str], **host) -> tuple[int, dict]:
        image = host.pop("Image", BUSYBOX)
        status, r = self.daemon.api("POST", "/containers/create", {"Image": image, "Cmd": cmd, "HostConfig": host})
        if status == 201:
            self.ids.append(r["Id"])
        return status, r

    def start(self, cmd: list[str], **host) -> str:
        status, r = self.create(cmd, **host)
        assert status == 201, (status, r)
        status, s = self.daemon.api("POST", f"/containers/{r['Id']}/start")
        assert status == 204, (status, s, self.daemon.tail_log())
        return r["Id"]

    def run(self, cmd: list[str], **host) -> tuple[str, int, str, str]:
        """(id, exit code, stdout, stderr) of a container run to its end."""
        cid = self.start(cmd, **host)
        status, w = self.daemon.api("POST", f"/containers/{cid}/wait", timeout=120)
        assert status == 200, w
        out, err = self.logs(cid)
        return cid, w["StatusCode"], out, err

    def sh(self, script: str, **host) -> tuple[str, int, str, str]:
        return self.run(["sh", "-c", script], **host)

    def logs(self, cid: str) -> tuple[str, str]:
        status, raw = self.daemon.api("GET", f"/containers/{cid}/logs?stdout=1&stderr=1", raw=True)
        assert status == 200
        out, err = demux(raw)
        return out.decode(), err.decode()

    def inspect(self, cid: str) -> dict:
        status, info = self.daemon.api("GET", f"/containers/{cid}/json")
        assert status == 200, info
        return info

    def cleanup(self) -> None:
        for cid in self.ids:
            self.daemon.api("DELETE", f"/containers/{cid}?force=1")


@pytest.fixture
def runs(daemon):
    r = Runs(daemon)
    yield r
    r.cleanup()


def container_count(daemon) -> int:
    return len(daemon.api("GET", "/containers/json?all=1")[1])


# -- memory ---------------------------------------------------------------------------------------------

def test_memory_limit_kills_a_process_past_it(runs, daemon):
    import json
    import time
    since = time.time()
    cid, code, out, _ = runs.sh('x=$(head -c 64m /dev/zero | tr "\\0" a); echo never', Memory=16 * 1024 * 1024)
    assert code == 137 and "never" not in out
    info = runs.inspect(cid)
    assert info["HostConfig"]["Memory"] == 16 * 1024 * 1024
    assert info["HostConfig"]["MemorySwap"] == 32 * 1024 * 1024  # Docker's default: twice the memory
    assert info["State"]["OOMKilled"] is True
    status, raw = daemon.api("GET", f"/events?since={since}&until={time.time()}", raw=True)
    actions = [e["Action"] for e in map(json.loads, raw.splitlines()) if e["id"] == cid]
    assert actions.index("oom") < actions.index("die")


def test_no_oom_kill_without_a_limit_hit(runs):
    cid, code, _, _ = runs.sh("echo fine", Memory=16 * 1024 * 1024)
    assert code == 0
    assert runs.inspect(cid)["State"]["OOMKilled"] is False


def test_oom_kill_counted_in_the_container_cgroup(runs, daemon):
    # A child runs out of memory, the container lives on: the kernel's count is what berthd reads at exit.
    cid = runs.start(["sh", "-c", '(x=$(head -c 64m /dev/zero | tr "\\0" a)); echo child-done; sleep 600'],
                     Memory=16 * 1024 * 1024)
    wait_for(lambda: "child-done" in runs.logs(cid)[0], 60, what="the child to be OOM-killed")
    assert oom_killed(cgroups_path(cid))
    fresh = runs.start(["sleep", "600"], Memory=16 * 1024 * 1024)
    assert not oom_killed(cgroups_path(fresh))


def test_memory_limits_in_the_cgroup(runs):
    mib = 1024 * 1024
    _, code, out, err = runs.sh(
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.soft_limit_in_bytes "
        "2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.low",
        Memory=32 * mib, MemoryReservation=16 * mib)
    assert code == 0, err
    assert out.split() == [str(32 * mib), str(16 * mib)]


# -- CPUs and PIDs ----------------------------------------------------------------------------------------

def test_cpus_set_the_cfs_quota(runs):
    cid, code, out, err = runs.sh("cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us "
                                  "2>/dev/null || cat /sys/fs/cgroup/cpu.max", NanoCpus=500_000_000)
    assert code == 0, err
    assert out.split() == ["50000", "100000"]
    assert runs.inspect(cid)["HostConfig"]["NanoCpus"] == 500_000_000


def test_cpu_shares_and_cpuset(runs):
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        pytest.skip("cgroup v1 files (v2 converts shares to a weight)")
    _, code, out, err = runs.sh("cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpuset/cpuset.cpus",
                                CpuShares=512, CpusetCpus="0")
    assert code == 0, err
    assert out.split() == ["512", "0"]


def test_pids_limit_stops_forks_and_the_container_survives(runs):
    cid, code, out, err = runs.sh("(for i in $(seq 40); do sleep 30 & done) 2>&1; echo survived; "
                                  "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
                                  PidsLimit=20)
    assert code == 0, err
    assert "can't fork" in out
    assert "survived" in out and out.split()[-1] == "20"
    assert runs.inspect(cid)["HostConfig"]["PidsLimit"] == 20


def test_pids_limit_zero_or_negative_is_unlimited(runs):
    for value in (0, -1):
        status, r = runs.create(["true"], PidsLimit=value)
        assert status == 201, r
        assert runs.inspect(r["Id"])["HostConfig"]["PidsLimit"] is None


# -- ulimits, /dev/shm, tmpfs ----------------------------------------------------------------------------

def test_ulimit_nofile(daemon):
    out = daemon.cli("run", "--rm", "--ulimit", "nofile=100:200", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn")
    assert out.stdout.split() == [b"100", b"200"]


def test_ulimit_above_the_hosts_hard_limit_is_refused(daemon, runs):
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("the host's nofile hard limit is unlimited")
    before = container_count(daemon)
    status, r = runs.create(["true"], Ulimits=[{"Name": "nofile", "Soft": 100, "Hard": hard + 1}])
    assert status == 400, r
    assert "nofile" in r["message"] and "host" in r["message"] and str(hard) in r["message"]
    assert container_count(daemon) == before


def test_shm_size(daemon, runs):
    out = daemon.cli("run", "--rm", "--shm-size", "8m", "busybox", "df", "-k", "/dev/shm").stdout.decode()
    assert out.splitlines()[1].split()[1] == "8192"
    status, r = runs.create(["true"])
    assert runs.inspect(r["Id"])["HostConfig"]["ShmSize"] == 64 * 1024 * 1024


def test_tmpfs_mount(daemon):
    out = daemon.cli("run", "--rm", "--tmpfs", "/run/x:size=1m", "busybox", "sh", "-c",
                     "df -k /run/x; grep ' /run/x ' /proc/mounts").stdout.decode()
    lines = out.splitlines()
    assert lines[1].split()[1] == "1024"
    opts = lines[2].split()[3].split(",")
    assert {"nosuid", "nodev", "noexec"} <= set(opts)


# -- sysctls, groups, devices, init ------------------------------------------------------------------------

def test_sysctl_in_the_containers_network_namespace(daemon):
    out = daemon.cli("run", "--rm", "--sysctl", "net.ipv4.ip_forward=1", "busybox", "cat",
                     "/proc/sys/net/ipv4/ip_forward")
    assert out.stdout == b"1\n"
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        host = f.read()
    assert host in ("0\n", "1\n")  # the host's own value is whatever it was


def test_sysctl_not_namespaced_is_refused(daemon, runs):
    before = container_count(daemon)
    status, r = runs.create(["true"], Sysctls={"kernel.hostname": "x"})
    assert status == 400 and "sysctl 'kernel.hostname=x' is not allowed" in r["message"]
    status, r = runs.create(["true"], Sysctls={"net.ipv4.ip_forward": "1"}, NetworkMode="host")
    assert status == 400 and "host network namespace" in r["message"]
    assert container_count(daemon) == before
    bad = daemon.cli("run", "--rm", "--sysctl", "vm.swappiness=1", "busybox", "true", check=False)
    assert bad.returncode == 125 and b"is not allowed" in bad.stderr


def test_group_add(daemon):
    out = daemon.cli("run", "--rm", "--group-add", "1234", "busybox", "id", "-G")
    assert out.stdout.split() == [b"0", b"1234"]


def test_group_add_by_name(daemon):
    out = daemon.cli("run", "--rm", "--group-add", "nogroup", "busybox", "id", "-G")
    assert out.stdout.split() == [b"0", b"65534"]


def test_device_mapped_into_the_container(daemon, runs):
    out = daemon.cli("run", "--rm", "--device", "/dev/null:/dev/mynull", "busybox", "sh", "-c",
                     "ls -l /dev/mynull; echo x > /dev/mynull && echo written").stdout.decode()
    assert out.startswith("c") and "1,   3" in out and "written" in out
    if not os.path.exists("/dev/loop-control"):
        return
    # A device outside the default rules, allowed for reading only: opening it to write is refused.
    _, code, out, err = runs.sh("(exec 3</dev/lc) && echo read-ok; (exec 3>/dev/lc) && echo write-ok",
                                Devices=[{"PathOnHost": "/dev/loop-control", "PathInContainer": "/dev/lc",
                                          "CgroupPermissions": "r"}])
    assert "read-ok" in out and "write-ok" not in out, (out, err)
    assert "not permitted" in err


def test_missing_device_is_refused(daemon, runs):
    before = container_count(daemon)
    status, r = runs.create(["true"], Devices=[{"PathOnHost": "/dev/berth-nope", "PathInContainer": "/dev/x",
                                                "CgroupPermissions": "rwm"}])
    assert status == 400 and "/dev/berth-nope" in r["message"]
    assert container_count(daemon) == before


def test_init_runs_as_pid_1(daemon):
    out = daemon.cli("run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/comm; echo $$").stdout.split()
    assert out[0] == b"docker-init" and out[1] != b"1"
    plain = daemon.cli("run", "--rm", "busybox", "cat", "/proc/1/comm").stdout
    assert plain == b"cat\n"


def test_init_shows_in_inspect(runs):
    status, r = runs.create(["true"], Init=True)
    assert status == 201, r
    assert runs.inspect(r["Id"])["HostConfig"]["Init"] is True


# -- privileges and seccomp --------------------------------------------------------------------------------

def test_mount_needs_privileges(runs):
    _, code, out, err = runs.sh("mkdir -p /mnt && mount -t tmpfs x /mnt && echo mounted")
    assert code != 0 and "mounted" not in out
    _, code, out, err = runs.sh("mkdir -p /mnt && mount -t tmpfs x /mnt && echo mounted", Privileged=True)
    assert code == 0 and "mounted" in out, err


def test_unshare_refused_by_default(runs):
    _, code, out, err = runs.sh("unshare -n true && echo unshared")
    assert code != 0 and "unshared" not in out


@pytest.fixture(scope="module")
def keyctl_image(daemon, tmp_path_factory):
    """busybox plus a static program that calls keyctl with an operation that does not exist."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    d = tmp_path_factory.mktemp("keyctl")
    (d / "keyctl.c").write_text(KEYCTL_C)
    proc = subprocess.run(["gcc", "-static", "-O2", "-o", str(d / "keyctl"), str(d / "keyctl.c")],
                          capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"gcc -static failed (static libc missing?): {proc.stderr.decode()[-300:]}")
    tar = str(d / "rootfs.tar")
    make_rootfs_tar(tar)
    data = (d / "keyctl").read_bytes()
    with tarfile.open(tar, "a") as t:
        ti = tarfile.TarInfo("usr/bin/keyctl-probe")
        ti.size, ti.mode, ti.mtime = len(data), 0o755, 1700000000
        t.addfile(ti, io.BytesIO(data))
    name = f"berth-keyctl-{uuid.uuid4().hex[:8]}"
    with open(tar, "rb") as f:
        status, body = daemon.api("POST", f"/images/create?fromSrc=-&repo={name}&tag=test",
                                  f.read(), {"Content-Type": "application/x-tar"}, raw=True)
    assert status == 200, body
    yield f"{name}:test"
    daemon.api("DELETE", f"/images/{name}:test?force=1")


def _errno(out: str) -> int:
    words = out.split()
    return int(words[words.index("errno") + 1])


def test_default_seccomp_profile_refuses_keyctl(runs, keyctl_image):
    _, code, out, err = runs.run(["/usr/bin/keyctl-probe"], Image=keyctl_image)
    assert code == 0, err
    assert _errno(out) == EPERM
    _, code, out, err = runs.run(["/usr/bin/keyctl-probe"], Image=keyctl_image, SecurityOpt=["seccomp=unconfined"])
    assert code == 0, err
    assert _errno(out) not in (0, EPERM)  # the kernel's own answer (EOPNOTSUPP)
    _, code, out, err = runs.run(["/usr/bin/keyctl-probe"], Image=keyctl_image, Privileged=True)
    assert _errno(out) != EPERM  # privileged: no seccomp


def test_custom_seccomp_profile_content(daemon, runs, keyctl_image, tmp_path):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": EACCES}]}
    cid, code, out, err = runs.run(["/usr/bin/keyctl-probe"], Image=keyctl_image,
                                   SecurityOpt=["seccomp=" + json.dumps(profile)])
    assert code == 0, err
    assert _errno(out) == EACCES
    assert runs.inspect(cid)["HostConfig"]["SecurityOpt"] == ["seccomp=" + json.dumps(profile)]
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile, indent=2))
    out = daemon.cli("run", "--rm", "--security-opt", f"seccomp={path}", keyctl_image, "/usr/bin/keyctl-probe")
    assert _errno(out.stdout.decode()) == EACCES
    if os.path.exists("/usr/local/bin/docker"):
        out = daemon.docker("run", "--rm", "--pull=never", "--security-opt", f"seccomp={path}", keyctl_image,
                            "/usr/bin/keyctl-probe")
        assert _errno(out.stdout.decode()) == EACCES


def test_invalid_seccomp_profile_is_refused(daemon, runs):
    before = container_count(daemon)
    status, r = runs.create(["true"], SecurityOpt=["seccomp={not json"])
    assert status == 400 and r["message"].startswith("Decoding seccomp profile failed")
    assert container_count(daemon) == before
    bad = daemon.cli("run", "--rm", "--security-opt", "seccomp=/nonexistent/profile.json", "busybox", "true",
                     check=False)
    assert bad.returncode == 125 and b"opening seccomp profile" in bad.stderr


# -- refusals and inspect --------------------------------------------------------------------------------------

@pytest.mark.parametrize("host, message", [
    ({"Memory": 1024 * 1024}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 16 * 1024 * 1024, "MemorySwap": 8 * 1024 * 1024},
     "Minimum memoryswap limit should be larger than memory limit"),
    ({"MemorySwap": 64 * 1024 * 1024}, "You should always set the Memory limit when using Memoryswap limit"),
    ({"MemoryReservation": 1024}, "Minimum memory reservation allowed is 6MB"),
    ({"NanoCpus": 10**15}, "Range of CPUs is from 0.01 to"),
    ({"NanoCpus": -1}, "Range of CPUs is from 0.01 to"),
    ({"NanoCpus": 10**8, "CpuQuota": 5000}, "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ({"CpuPeriod": 10}, "CPU cfs period can not be less than 1ms"),
    ({"CpusetCpus": "0-9999"}, "Requested CPUs are not available"),
    ({"CpusetCpus": "x"}, "Invalid value x for cpuset cpus"),
    ({"ShmSize": -1}, "SHM size can not be less than 0"),
    ({"OomScoreAdj": 5000}, "range for oom score adj is [-1000, 1000]"),
    ({"Ulimits": [{"Name": "nofiles", "Soft": 1, "Hard": 1}]}, "invalid ulimit type: nofiles"),
    ({"Ulimits": [{"Name": "nofile", "Soft": 200, "Hard": 100}]}, "soft limit must be less than or equal"),
    ({"Tmpfs": {"run": ""}}, "mount path must be absolute"),
    ({"Tmpfs": {"/run": "size=1m,bogus"}}, 'invalid tmpfs option "bogus"'),
    ({"Sysctls": {"kernel.domainname": "x"}}, "is not allowed"),
    ({"Memory": "16m"}, "invalid type for HostConfig.Memory"),
    ({"PidsLimit": "20"}, "invalid type for HostConfig.PidsLimit"),
    ({"SecurityOpt": ["seccomp"]}, "invalid --security-opt 1"),
])
def test_bad_values_are_refused_and_nothing_is_created(daemon, runs, host, message):
    before = container_count(daemon)
    status, r = runs.create(["true"], **host)
    assert status == 400, r
    assert message in r["message"]
    assert container_count(daemon) == before


def test_cli_refuses_malformed_flags(daemon):
    for args, text in ((["--pids-limit", "abc"], b'invalid argument "abc" for "--pids-limit" flag'),
                       (["--memory", "lots"], b'for "--memory" flag'),
                       (["--cpus", "half"], b'for "--cpus" flag'),
                       (["--ulimit", "nofile"], b"invalid ulimit argument"),
                       (["--device", "/dev/null:/x:rwz"], b"bad mode specified"),
                       (["-m", "1m"], b"Minimum memory limit allowed is 6MB")):
        before = container_count(daemon)
        bad = daemon.cli("run", "--rm", *args, "busybox", "true", check=False)
        assert bad.returncode == 125 and text in bad.stderr, (args, bad.stderr)
        assert container_count(daemon) == before


def test_inspect_shows_the_host_config(runs):
    mib = 1024 * 1024
    status, r = runs.create(["true"], Memory=64 * mib, MemorySwap=-1, MemoryReservation=32 * mib, CpuShares=256,
                            CpuPeriod=50000, CpuQuota=25000, CpusetCpus="0", CpusetMems="0", PidsLimit=50,
                            Ulimits=[{"Name": "nofile", "Soft": 100, "Hard": 200}], ShmSize=8 * mib,
                            OomKillDisable=True, OomScoreAdj=500, Sysctls={"net.ipv4.ip_forward": "1"},
                            GroupAdd=["1234"], Tmpfs={"/run": "size=1m"}, SecurityOpt=["no-new-privileges"],
                            Devices=[{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n",
                                      "CgroupPermissions": "rw"}])
    assert status == 201, r
    h = runs.inspect(r["Id"])["HostConfig"]
    assert (h["Memory"], h["MemorySwap"], h["MemoryReservation"]) == (64 * mib, -1, 32 * mib)
    assert (h["CpuShares"], h["CpuPeriod"], h["CpuQuota"], h["CpusetCpus"], h["CpusetMems"]) == \
        (256, 50000, 25000, "0", "0")
    assert h["PidsLimit"] == 50 and h["ShmSize"] == 8 * mib
    assert h["Ulimits"] == [{"Name": "nofile", "Soft": 100, "Hard": 200}]
    assert h["OomKillDisable"] is True and h["OomScoreAdj"] == 500
    assert h["Sysctls"] == {"net.ipv4.ip_forward": "1"} and h["GroupAdd"] == ["1234"]
    assert h["Tmpfs"] == {"/run": "size=1m"} and h["SecurityOpt"] == ["no-new-privileges"]
    assert h["Devices"] == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "rw"}]


def test_docker_cli_flags(daemon):
    if not os.path.exists("/usr/local/bin/docker"):
        pytest.skip("no docker CLI")
    out = daemon.docker("run", "--rm", "--pull=never", "--memory", "32m", "--cpus", "0.5", "--pids-limit", "30",
                        "--ulimit", "nofile=100:200", "--shm-size", "8m", "--tmpfs", "/run/x:size=1m", "--init",
                        "--group-add", "1234", BUSYBOX, "sh", "-c",
                        "ulimit -n; df -k /dev/shm | tail -1; df -k /run/x | tail -1; cat /proc/1/comm; id -G; "
                        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
                        "2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max").stdout.decode()
    lines = out.splitlines()
    assert lines[0] == "100"
    assert lines[1].split()[1] == "8192" and lines[2].split()[1] == "1024"
    assert lines[3] == "docker-init" and lines[4].split() == ["0", "1234"]
    assert lines[5:7] == [str(32 * 1024 * 1024), "30"]
