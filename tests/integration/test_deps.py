"""scripts/deps.sh, which `make run` and `make check` call: as root it runs apt-get itself
(no sudo); as a user without a working sudo it says what is missing and how to install it,
and fails, instead of hanging on a password prompt or failing with sudo's error. apt-get,
dpkg-query and sudo are stand-ins on PATH here, so nothing is installed."""

import os
import shutil
import subprocess
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
DEPS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "scripts", "deps.sh")


def _tool(d, name, body):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write("#!/bin/sh\n" + body + "\n")
    os.chmod(p, 0o755)


@pytest.fixture
def fakebin():
    top = tempfile.mkdtemp(prefix="utdeps-", dir="/tmp")   # readable by nobody
    os.chmod(top, 0o755)
    d = os.path.join(top, "bin")
    os.mkdir(d)
    log = os.path.join(top, "calls.log")
    open(log, "w").close()
    os.chmod(log, 0o666)
    _tool(d, "dpkg-query", "exit 1")                       # every package "missing"
    _tool(d, "apt-get", 'echo "apt-get $*" >> %s' % log)
    _tool(d, "sudo", 'echo "sudo $*" >> %s; exit 1' % log)  # a sudo that wants a password
    for t in ("grep", "id"):                                # all else deps.sh runs
        os.symlink(shutil.which(t), os.path.join(d, t))
    yield d, log
    shutil.rmtree(top, ignore_errors=True)


def _run(d, user=None):
    env = {"PATH": d, "HOME": "/tmp"}   # only the stand-ins: no real sudo or apt-get
    cmd = [shutil.which("bash"), DEPS, "build"]
    if user:
        cmd = [shutil.which("runuser"), "-u", user, "--", shutil.which("env")] + \
            ["%s=%s" % kv for kv in env.items()] + cmd
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


def test_root_runs_apt_get_directly(fakebin):
    if os.geteuid() != 0:
        pytest.skip("needs root to check the root path of deps.sh")
    d, log = fakebin
    res = _run(d)
    assert res.returncode == 0, res.stderr
    calls = open(log).read().splitlines()
    assert calls and all(c.startswith("apt-get install -y --no-install-recommends") for c in calls)
    assert "libjansson-dev" in calls[0]


def test_user_without_sudo_is_told_what_to_install(fakebin):
    if os.geteuid() != 0:
        pytest.skip("needs root to run deps.sh as another user (runuser)")
    d, log = fakebin
    res = _run(d, user="nobody")
    assert res.returncode == 1, res
    assert "deps: missing Debian packages: make gcc" in res.stderr, res.stderr
    assert "not root and sudo needs a password" in res.stderr, res.stderr
    assert "apt-get install --no-install-recommends make gcc" in res.stderr, res.stderr
    calls = open(log).read().splitlines()
    assert not any(c.startswith("apt-get") for c in calls), calls   # nothing ran apt-get
    os.remove(os.path.join(d, "sudo"))
    res = _run(d, user="nobody")
    assert res.returncode == 1 and "sudo is not installed" in res.stderr, res.stderr
