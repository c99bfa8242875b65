"""utargetd as a service (issue 19): readiness and reload through the systemd notify
protocol, SIGHUP reload that keeps the sessions of unchanged targets, an unprivileged
daemon on default XDG paths, migration from a LIO saveconfig.json, log levels.
"""

import copy
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import iscsiraw
import rpcclient
import uthelpers as ut

T1 = "iqn.2003-01.org.linux-iscsi.test:svc1"
T2 = "iqn.2003-01.org.linux-iscsi.test:svc2"
T3 = "iqn.2003-01.org.linux-iscsi.test:svc3"
TUR = bytes(6)  # TEST UNIT READY


def utargetcli():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    p = os.environ.get("UTARGETCLI") or os.path.join(repo, "build", "utargetcli")
    assert os.access(p, os.X_OK), "utargetcli not built: %s (run make)" % p
    return p


class Notify:
    """The service manager's side of sd_notify: a datagram socket whose address goes
    into NOTIFY_SOCKET ('@name' = abstract namespace)."""

    def __init__(self, workdir, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "utarget-test-%d-%d" % (os.getpid(), time.monotonic_ns())
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            path = os.path.join(str(workdir), "notify.sock")
            self.sock.bind(path)
            self.env = path
        self.messages = []

    def wait_for(self, key, timeout=10.0):
        """Collect messages until one has `key` (e.g. 'READY=1'); return that one."""
        deadline = time.monotonic() + timeout
        for m in self.messages:
            if key in m.split("\n"):
                self.messages.remove(m)
                return m
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                m = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            if key in m.split("\n"):
                return m
            self.messages.append(m)
        raise AssertionError("no %s from utargetd within %.0f s (got %r)"
                             % (key, timeout, self.messages))

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_notify_ready_reload_stopping(utarget, config, workdir, abstract):
    rd = config.ramdisk("rd0", size=8 * ut.MiB)
    config.target(T1).tpg().lun(0, rd)
    n = Notify(workdir, abstract)
    try:
        d = utarget(config, env={"NOTIFY_SOCKET": n.env})
        ready = n.wait_for("READY=1")
        assert "MAINPID=%d" % d.proc.pid in ready.split("\n"), ready
        # Ready means restored and listening: the target is there at once.
        res, fields = ut.iscsi_inq(d.lun_url(0, T1))
        assert res.returncode == 0, ut.describe(res, d)
        os.kill(d.proc.pid, signal.SIGHUP)
        n.wait_for("RELOADING=1")
        n.wait_for("READY=1")
        d.stop()
        n.wait_for("STOPPING=1")
    finally:
        n.close()


def sessions(d):
    return rpcclient.RpcClient(d.sock).call("sessions")


def get_config(d):
    return rpcclient.RpcClient(d.sock).call("get_config")


def wait_log(d, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in d.stderr_tail(200000):
            return
        time.sleep(0.05)
    raise AssertionError("%r not logged within %.0f s\n%s" % (text, timeout, d.stderr_tail()))


def raw_session(port, target):
    c = iscsiraw.RawConn("127.0.0.1", port)
    c.login(target)
    assert c.ping() is not None
    tur_ok(c)  # takes the power-on unit attention
    return c


def tur_ok(c):
    """TEST UNIT READY answered GOOD (the first one after login may report the
    power-on unit attention: raw_session consumes it)."""
    itt = c.next_itt()
    c.send(c.scsi_cmd(TUR, itt=itt))
    _, rsp = c.recv_until(iscsiraw.OP_SCSI_RSP)
    return rsp is not None and rsp.itt == itt and rsp.status == 0


def test_sighup_reload_keeps_sessions(utarget, config, workdir):
    rd1 = config.ramdisk("rd1", size=8 * ut.MiB)
    rd2 = config.ramdisk("rd2", size=8 * ut.MiB)
    config.target(T1).tpg().lun(0, rd1)
    config.target(T2).tpg().lun(0, rd2)
    d = utarget(config)
    c1 = raw_session(d.port, T1)
    c2 = raw_session(d.port, T2)
    c3 = None
    try:
        assert tur_ok(c1)
        before = {s["target"]: (s["tsih"], s["sid"]) for s in sessions(d)}
        assert set(before) == {T1, T2}
        # The administrator edits the file: T2 gets a second LUN, T3 is new; T1 and
        # its storage object are as they were (kept untouched), T2 is re-created.
        new = config.dump()
        new["storage_objects"].append({"plugin": "ramdisk", "name": "rd3",
                                       "size": 4 * ut.MiB})
        new["targets"][1]["tpgs"][0]["luns"].append(
            {"index": 1, "storage_object": "/backstores/ramdisk/rd3"})
        t3 = copy.deepcopy(new["targets"][0])
        t3["wwn"] = T3
        new["targets"].append(t3)
        with open(d.cfg_path, "w") as f:
            json.dump(new, f)
        os.kill(d.proc.pid, signal.SIGHUP)
        wait_log(d, "reload %s: kept" % d.cfg_path)
        # T1 was not touched: its session goes on, without even a unit attention.
        assert c1.ping() is not None, d.stderr_tail()
        assert tur_ok(c1), d.stderr_tail()
        # T2 was re-created: its session, still allowed in, got the new LUN map as
        # after the same change made live (lun.create), and goes on too.
        assert c2.ping() is not None, d.stderr_tail()
        cfg = get_config(d)
        tg = {t["wwn"]: t for t in cfg["targets"]}
        assert set(tg) == {T1, T2, T3}
        assert [l["index"] for l in tg[T2]["tpgs"][0]["luns"]] == [0, 1]
        res, _ = ut.iscsi_inq(d.lun_url(1, T2))
        assert res.returncode == 0, ut.describe(res, d)
        res, _ = ut.iscsi_inq(d.lun_url(0, T3))
        assert res.returncode == 0, ut.describe(res, d)
        after = {s["target"]: (s["tsih"], s["sid"]) for s in sessions(d)}
        assert after == before, (before, after)
        c3 = raw_session(d.port, T3)

        # A file that does not parse changes nothing.
        with open(d.cfg_path, "w") as f:
            f.write("{ not json")
        os.kill(d.proc.pid, signal.SIGHUP)
        wait_log(d, "the running configuration is unchanged")
        assert tur_ok(c1)
        assert {t["wwn"] for t in get_config(d)["targets"]} == {T1, T2, T3}

        # Removing T3 from the file removes it from the daemon, and ends its session;
        # T1 stays.
        del new["targets"][2]
        with open(d.cfg_path, "w") as f:
            json.dump(new, f)
        os.kill(d.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while T3 in {t["wwn"] for t in get_config(d)["targets"]}:
            assert time.monotonic() < deadline, "T3 still there after reload"
            time.sleep(0.05)
        assert c3.closed_within(5), "T3's session should end with T3"
        assert tur_ok(c1)
        res, _ = ut.iscsi_inq(d.lun_url(0, T3))
        assert res.returncode != 0, "T3 should be gone"
    finally:
        for c in (c1, c2, c3):
            if c:
                c.close()


def test_changed_storage_object_recreates_its_targets(utarget, config, workdir):
    rd1 = config.ramdisk("rd1", size=8 * ut.MiB)
    config.target(T1).tpg().lun(0, rd1)
    d = utarget(config)
    c1 = raw_session(d.port, T1)
    try:
        new = config.dump()
        new["storage_objects"][0]["size"] = 16 * ut.MiB
        with open(d.cfg_path, "w") as f:
            json.dump(new, f)
        os.kill(d.proc.pid, signal.SIGHUP)
        wait_log(d, "reload %s: kept" % d.cfg_path)
        so = get_config(d)["storage_objects"][0]
        assert so["size"] == 16 * ut.MiB
        # T1 was re-created on the new rd1; its session goes on with the new LU.
        assert c1.ping() is not None, d.stderr_tail()
        res, cap = ut.readcap16(d.lun_url(0, T1))
        assert res.returncode == 0, ut.describe(res, d)
        assert (cap["last_lba"] + 1) * cap["block_size"] == 16 * ut.MiB, cap
        res, fields = ut.iscsi_inq(d.lun_url(0, T1))
        assert res.returncode == 0, ut.describe(res, d)
    finally:
        c1.close()


def test_reload_keeps_listening_on_a_recreated_targets_portal(utarget, config, workdir):
    """A reload that re-creates a target frees its portal and creates it again in one
    step; the listening socket must stay open throughout. Closed and opened again, a
    connection the kernel had already accepted into its queue is reset (the initiator
    sees its login cut off) although the portal was never changed. Made deterministic
    by stopping the daemon: the SIGHUP is pending before the connection arrives, so on
    SIGCONT the reload runs before the accept."""
    rd1 = config.ramdisk("rd1", size=8 * ut.MiB)
    rd2 = config.ramdisk("rd2", size=8 * ut.MiB)
    config.target(T1).tpg().lun(0, rd1)
    d = utarget(config)
    new = config.dump()
    new["targets"][0]["tpgs"][0]["luns"].append(
        {"index": 1, "storage_object": "/backstores/ramdisk/rd2"})
    with open(d.cfg_path, "w") as f:
        json.dump(new, f)
    c = None
    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        os.kill(d.proc.pid, signal.SIGHUP)
        time.sleep(0.1)
        c = iscsiraw.RawConn("127.0.0.1", d.port)   # queued, not accepted yet
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)
    try:
        wait_log(d, "reload %s: kept" % d.cfg_path)
        c.login(T1)
        assert c.ping() is not None, d.stderr_tail()
    finally:
        c.close()
    assert [l["index"] for l in get_config(d)["targets"][0]["tpgs"][0]["luns"]] == [0, 1]
    res, _ = ut.iscsi_inq(d.lun_url(1, T1))
    assert res.returncode == 0, ut.describe(res, d)


# ---------------------------------------------------------------- unprivileged user

def _nobody():
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


def test_unprivileged_default_paths(utarget, utargetd_bin, config, workdir):
    """As `nobody`, with no path flags: the config comes from
    $HOME/.config/utarget/saveconfig.json, the socket is
    $XDG_RUNTIME_DIR/utarget/utargetd.sock, utargetcli finds it with no -s, and an
    initiator logs in on a port above 1024."""
    if os.geteuid() != 0:
        pytest.skip("switching to the user nobody needs root (runuser)")
    nb = _nobody()
    assert nb is not None, "no user nobody on this system"
    # setpriv (util-linux) execs utargetd itself as nobody, so the test sees the
    # daemon's own exit status (runuser would stay as a parent and die by SIGTERM)
    assert shutil.which("setpriv"), "setpriv (util-linux) is not installed"
    # pytest's temp dirs are private to root: the user's dirs live in /tmp.
    base = tempfile.mkdtemp(prefix="utarget-nobody-")
    try:
        os.chmod(base, 0o755)
        home = os.path.join(base, "home")
        run = os.path.join(base, "run")
        for p in (home, run):
            os.mkdir(p, 0o700)
            os.chown(p, nb.pw_uid, nb.pw_gid)
        rd = config.ramdisk("rd0", size=8 * ut.MiB)
        config.target(T1).tpg().lun(0, rd)
        assert config.port >= 1024
        cfgdir = os.path.join(home, ".config", "utarget")
        os.makedirs(cfgdir)
        config.write(os.path.join(cfgdir, "saveconfig.json"))
        for dp, dn, fn in os.walk(os.path.join(home, ".config")):
            for p in [dp] + [os.path.join(dp, f) for f in fn]:
                os.chown(p, nb.pw_uid, nb.pw_gid)
        env = ["env", "-u", "UTARGET_SOCKET", "-u", "XDG_CONFIG_HOME",
               "HOME=" + home, "XDG_RUNTIME_DIR=" + run]
        as_nobody = ["setpriv", "--reuid=%d" % nb.pw_uid, "--regid=%d" % nb.pw_gid,
                     "--clear-groups", "--"] + env
        d = utarget(config, argv=as_nobody + [utargetd_bin, "-f"])
        sock = os.path.join(run, "utarget", "utargetd.sock")
        st = os.stat(sock)
        assert st.st_uid == nb.pw_uid and st.st_mode & 0o777 == 0o600
        res, fields = ut.iscsi_inq(d.lun_url(0, T1))
        assert res.returncode == 0, ut.describe(res, d)
        res = ut.run(as_nobody + [utargetcli(), "ls", "/iscsi"])
        assert res.returncode == 0 and T1 in res.stdout, ut.describe(res, d)
        res = ut.run(as_nobody + [utargetcli(), "saveconfig"])
        assert res.returncode == 0, ut.describe(res, d)
        saved = os.path.join(cfgdir, "saveconfig.json")
        assert os.stat(saved).st_uid == nb.pw_uid
        assert T1 in open(saved).read()
        d.stop()
        assert not os.path.exists(sock)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_default_socket_fallback_without_xdg_runtime_dir():
    """Without XDG_RUNTIME_DIR the daemon, utargetcli and the Python module agree on a
    per-user /tmp/utarget-UID/utargetd.sock (not a /tmp/utarget shared by all)."""
    if os.geteuid() != 0:
        pytest.skip("switching to the user nobody needs root (runuser)")
    nb = _nobody()
    want = "/tmp/utarget-%d/utargetd.sock" % nb.pw_uid
    env = ["setpriv", "--reuid=%d" % nb.pw_uid, "--regid=%d" % nb.pw_gid,
           "--clear-groups", "--", "env", "-u", "UTARGET_SOCKET",
           "-u", "XDG_RUNTIME_DIR", "HOME=/nonexistent"]
    res = ut.run(env + [utargetcli(), "ls"])
    assert res.returncode != 0 and want in res.stdout + res.stderr, ut.describe(res)
    here = os.path.dirname(os.path.abspath(__file__))
    py = os.path.join(os.path.dirname(os.path.dirname(here)), "python")
    res = ut.run(env + ["PYTHONPATH=" + py, "/usr/bin/python3", "-c",
                        "from utarget.rtslib import client; "
                        "print(client.default_socket_path())"])
    assert res.returncode == 0 and res.stdout.strip() == want, ut.describe(res)


# ---------------------------------------------------------------- LIO migration

LIO_FILE = {
    "fabric_modules": [],
    "storage_objects": [
        {"plugin": "ramdisk", "name": "lio_rd", "size": 8 * ut.MiB,
         "attributes": {"block_size": 512, "no_such_attribute": 1}},
        {"plugin": "user", "name": "glfs", "size": 8 * ut.MiB, "config": "glfs/x"},
    ],
    "targets": [
        {"fabric": "iscsi", "wwn": T1, "tpgs": [{
            "tag": 1, "enable": True,
            "attributes": {"authentication": 0, "generate_node_acls": 1,
                           "demo_mode_write_protect": 0},
            "luns": [{"index": 0, "storage_object": "/backstores/ramdisk/lio_rd"}],
            "portals": [{"ip_address": "127.0.0.1", "port": 0}]}]},
        {"fabric": "loopback", "wwn": "naa.5001405a1b2c3d4e", "tpgs": []},
    ],
}


def test_import_lio_saveconfig_reports_what_it_cannot_take(utarget, config, workdir,
                                                          utargetd_bin):
    lio = copy.deepcopy(LIO_FILE)
    lio["targets"][0]["tpgs"][0]["portals"][0]["port"] = config.port
    lio_path = os.path.join(str(workdir), "lio-saveconfig.json")
    with open(lio_path, "w") as f:
        json.dump(lio, f)
    own = os.path.join(str(workdir), "own-saveconfig.json")
    sock = os.path.join(str(workdir), "imp.sock")
    d = utarget(config, argv=[utargetd_bin, "-f", "-c", own, "-s", sock,
                              "--import", lio_path])
    d.sock = sock
    err = d.stderr_tail()
    assert "fabric loopback is not supported" in err, err
    assert "Storage object user/glfs" in err, err
    assert "Cannot find attribute: no_such_attribute" in err, err
    assert "imported %s: 3 settings or objects not taken over" % lio_path in err, err
    res, _ = ut.iscsi_inq(d.lun_url(0, T1))
    assert res.returncode == 0, ut.describe(res, d)
    # The import wrote nothing; saveconfig writes the daemon's own file.
    assert not os.path.exists(own)
    res = ut.run([utargetcli(), "-s", sock, "saveconfig"])
    assert res.returncode == 0, ut.describe(res, d)
    saved = json.load(open(own))
    assert [t["wwn"] for t in saved["targets"]] == [T1]


def test_import_lio_option_names_lio_path(utargetd_bin):
    res = ut.run([utargetd_bin, "--help"])
    assert "--import-lio  -i /etc/target/saveconfig.json" in res.stdout


# ---------------------------------------------------------------- logging

def test_log_levels_and_journal_prefixes(utarget, config, workdir, utargetd_bin):
    rd = config.ramdisk("rd0", size=8 * ut.MiB)
    config.target(T1).tpg().lun(0, rd)
    quiet = utarget(config, name="quiet",
                    argv=[utargetd_bin, "-f", "-q", "-c",
                          config.write(os.path.join(str(workdir), "q.json")),
                          "-s", os.path.join(str(workdir), "q.sock")])
    quiet.stop()
    assert "info:" not in quiet.stderr_tail(), quiet.stderr_tail()

    config.port = ut.free_port()
    config.targets[0].tpgs[0].portals = [("127.0.0.1", config.port)]
    verbose = utarget(config, name="verbose",
                      argv=[utargetd_bin, "-f", "-v", "-c",
                            config.write(os.path.join(str(workdir), "v.json")),
                            "-s", os.path.join(str(workdir), "v.sock")])
    ut.iscsi_inq(verbose.lun_url(0, T1))
    verbose.stop()
    assert " debug: " in verbose.stderr_tail(100000), verbose.stderr_tail()
    assert " info: utargetd " in verbose.stderr_tail(100000)


def test_journal_stream_gets_priority_prefixes(utargetd_bin, workdir):
    """Under systemd stderr is the journal ($JOURNAL_STREAM = its dev:ino): lines carry
    sd-daemon '<N>' priorities instead of timestamps, so journalctl -p works."""
    errpath = os.path.join(str(workdir), "journal.stderr")
    cfg = os.path.join(str(workdir), "missing.json")
    with open(errpath, "wb") as err:
        st = os.fstat(err.fileno())
        env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        # a config that does not parse: the daemon logs an error and exits 1
        with open(cfg, "w") as f:
            f.write("{")
        p = subprocess.run([utargetd_bin, "-f", "-c", cfg, "-s",
                            os.path.join(str(workdir), "j.sock")],
                           stderr=err, stdout=subprocess.DEVNULL, env=env, timeout=30)
    assert p.returncode == 1
    lines = open(errpath).read().splitlines()
    assert any(l.startswith("<3>error: configuration not loaded") for l in lines), lines
