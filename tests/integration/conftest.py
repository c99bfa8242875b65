"""Fixtures for the utarget integration tests.

Run: `make integration`, or `UTARGETD=build/utargetd pytest-3 -q tests/integration`.

A test builds a config with `config` (a uthelpers.Config bound to a free port and the
test's temp dir), starts the daemon with `utarget(config)`, and talks to it with real
initiators. After the test body passes, every daemon it started is stopped with SIGTERM
and the test FAILS if the daemon does not exit with status 0 within 10 s or its stderr
holds an AddressSanitizer / LeakSanitizer / UBSan ("runtime error:") report.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import uthelpers as ut

REPO = Path(__file__).resolve().parents[2]
_DAEMONS = pytest.StashKey()


def _utargetd_path():
    p = os.environ.get("UTARGETD") or str(REPO / "build" / "utargetd")
    if not os.path.isabs(p):
        p = str(REPO / p)
    return p


@pytest.fixture(scope="session")
def utargetd_bin():
    p = _utargetd_path()
    if not (os.path.isfile(p) and os.access(p, os.X_OK)):
        pytest.fail("utargetd binary not found or not executable: %s "
                    "(run `make`, or set UTARGETD=path)" % p, pytrace=False)
    return p


@pytest.fixture
def port():
    return ut.free_port()


@pytest.fixture
def workdir(tmp_path):
    return tmp_path


@pytest.fixture
def config(port, workdir):
    """An empty saveconfig builder; new TPGs get the portal 127.0.0.1:<port>."""
    return ut.Config(port, workdir)


@pytest.fixture
def loop_factory(workdir):
    """loop_factory(size) -> '/dev/loopN' on a sparse file in the temp dir.

    Detached at teardown (after the daemons stopped: `utarget` depends on this fixture).
    Skips the test only when loop devices cannot be had (not root, no losetup, or the
    kernel / container refuses)."""
    devices = []

    def make(size=64 * ut.MiB, name=None):
        if shutil.which("losetup") is None:
            pytest.skip("losetup (util-linux) is not installed: cannot test the block backstore")
        if os.geteuid() != 0:
            pytest.skip("the block backstore test needs root to attach a loop device")
        img = os.path.join(str(workdir), name or "loop%d.img" % len(devices))
        with open(img, "wb") as f:
            f.truncate(size)
        res = ut.run(["losetup", "-f", "--show", img], timeout=30)
        if res.returncode != 0 or not res.stdout.strip().startswith("/dev/"):
            pytest.skip("losetup cannot attach a loop device here: %s" % res.stderr.strip())
        dev = res.stdout.strip()
        devices.append(dev)
        return dev

    yield make
    for dev in devices:
        subprocess.run(["losetup", "-d", dev], capture_output=True, timeout=30)


@pytest.fixture
def utarget(request, utargetd_bin, workdir, loop_factory):
    """utarget(cfg, name='utargetd', argv=None, env=None, host='127.0.0.1') -> a started
    uthelpers.Daemon (host: where its first portal listens)."""
    daemons = request.node.stash.setdefault(_DAEMONS, [])

    def start(cfg, name="utargetd", timeout=10.0, argv=None, env=None, host="127.0.0.1"):
        d = ut.Daemon(utargetd_bin, cfg, workdir, name=name, argv=argv, env=env, host=host)
        daemons.append(d)
        return d.start(timeout=timeout)

    yield start
    # Normally already stopped (and checked) by pytest_runtest_call below; this covers
    # tests that failed: still stop the daemon and report a sanitizer finding.
    problems = []
    for d in daemons:
        try:
            d.stop()
        except AssertionError as e:
            problems.append(str(e))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.hookimpl(trylast=True)
def pytest_runtest_call(item):
    """Runs after the test body passed: stop its daemons inside the test's own phase so a
    dirty exit or a sanitizer report is reported as a FAILED test, not a teardown error."""
    for d in item.stash.get(_DAEMONS, []):
        d.stop()


class CephCluster:
    """A throwaway cluster from scripts/ceph-cluster.sh (one mon, one memstore OSD)."""

    def __init__(self, root):
        self.dir = str(root)
        self.conf = os.path.join(self.dir, "ceph.conf")
        self.script = str(REPO / "scripts" / "ceph-cluster.sh")

    def _run(self, *args, timeout=120, check=True):
        res = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            pytest.fail("%s failed (%d):\n%s\n%s" % (" ".join(args), res.returncode,
                                                      res.stdout, res.stderr), pytrace=False)
        return res

    def rbd(self, *args, timeout=60, check=True):
        return self._run("rbd", "-c", self.conf, *args, timeout=timeout, check=check)

    def cfgstring(self, image, pool="rbd", **opts):
        s = "%s/%s;conf=%s" % (pool, image, self.conf)
        for k, v in opts.items():
            s += ";%s=%s" % (k, v)
        return s

    def stop_osd(self):
        self._run(self.script, "stop-osd", self.dir)

    def start_osd(self):
        self._run(self.script, "start-osd", self.dir)


@pytest.fixture(scope="session")
def ceph(tmp_path_factory):
    """One Ceph cluster for the session's RBD tests. FAILS (never skips) with the
    script's reason when the machine cannot run it: `make check` must prove RBD works."""
    root = tmp_path_factory.mktemp("ceph")
    script = str(REPO / "scripts" / "ceph-cluster.sh")
    res = subprocess.run([script, "start", str(root)], capture_output=True, text=True,
                         timeout=180)
    if res.returncode != 0:
        subprocess.run([script, "stop", str(root)], capture_output=True, timeout=60)
        pytest.fail("cannot start a Ceph cluster for the RBD tests (scripts/deps.sh test "
                    "installs ceph-mon ceph-osd ceph-common):\n%s\n%s"
                    % (res.stdout, res.stderr), pytrace=False)
    c = CephCluster(root)
    yield c
    subprocess.run([script, "stop", str(root)], capture_output=True, timeout=60)
