"""Issue 20: live statistics. `stats.get` (docs/control-api.md) and the Prometheus text
exposition on `utargetd -o metrics_listen=IP:PORT`: a known qemu-io workload is counted
exactly (READ / WRITE commands and bytes), a refused CHAP login counts as an
authentication failure, promtool accepts the output, the HTTP responder refuses what is
not a GET of /metrics (malformed, oversized, slow, too many connections) while iSCSI
keeps working, and nothing listens for metrics unless asked."""

import os
import re
import socket
import subprocess
import time

import pytest

import uthelpers as ut
from uthelpers import KiB, MiB
from rpcclient import RpcClient
from test_auth import AuthConfig, chap, lun_url, AUTH_FAILED

IQN = ut.DEFAULT_TARGET


def start(utarget, config, workdir, metrics=True):
    """A daemon with metrics on a free loopback port; returns (daemon, metrics port)."""
    mport = ut.free_port() if metrics else None
    cfg_path = os.path.join(str(workdir), "stats-saveconfig.json")
    config.write(cfg_path)
    sock = os.path.join(str(workdir), "ctl.sock")
    argv = [ut_bin(), "-c", cfg_path, "-s", sock, "-f"]
    if metrics:
        argv += ["-o", "metrics_listen=127.0.0.1:%d" % mport]
    d = utarget(config, argv=argv)
    return d, mport


def ut_bin():
    from conftest import _utargetd_path
    return _utargetd_path()


def stats(d):
    with RpcClient(d.sock) as c:
        return c.call("stats.get")


def lun(st, name):
    """The storage object's own counters (every port)."""
    return next(l for l in st["storage_objects"] if l["name"] == name)


def tpg_lun(st, wwn, tpg, index):
    """One TPG LUN's counters (the commands through that target port)."""
    return next(l for l in st["luns"]
                if (l["target"], l["tpg"], l["lun"]) == (wwn, tpg, index))


def target(st, wwn):
    return next((t for t in st["targets"] if t["target"] == wwn), None)


def http(mport, data, timeout=10.0, shut=False):
    """Send raw bytes, return everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", mport), timeout=timeout) as s:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
    return out


def get_metrics(mport):
    r = http(mport, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = r.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), r[:300]
    assert b"Connection: close" in head
    return body.decode()


def sample(text, metric, **labels):
    """The value of the sample of `metric` with exactly these labels (any order)."""
    want = {k: str(v) for k, v in labels.items()}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        name, _, rest = key.partition("{")
        if name != metric:
            continue
        got = {}
        for part in filter(None, rest.rstrip("}").split('",')):
            k, _, v = part.partition('="')
            got[k] = v.rstrip('"')
        if got == want:
            return float(value)
    raise AssertionError("no sample %s%s in metrics" % (metric, want))


def promtool_accepts(text, tmp_path):
    """Prometheus' own checker on the exposition (issue 20's done-when)."""
    p = tmp_path / "metrics.txt"
    p.write_text(text)
    with open(p) as f:
        r = subprocess.run(["promtool", "check", "metrics"], stdin=f,
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def workload(d):
    cmds = ["write -P 0x5a %d 4k" % (i * 4 * KiB) for i in range(256)]  # 1 MiB, 4 KiB each
    cmds += ["read -P 0x5a 0 1M", "read -P 0 1M 1M"]                    # 2 MiB
    res = ut.qemu_io(d.image_opts(0), cmds)
    assert not ut.qemu_io_problems(res), ut.describe(res, d)


def test_counters_match_workload(config, utarget, workdir, tmp_path):
    rd = config.ramdisk("rd0", size=16 * MiB)
    config.target(IQN).tpg().lun(0, rd)
    d, mport = start(utarget, config, workdir)

    s0 = lun(stats(d), "rd0")
    # what qemu-io itself does at open and close (INQUIRY, READ CAPACITY, probing reads)
    res = ut.qemu_io(d.image_opts(0), [])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    s1 = lun(stats(d), "rd0")
    workload(d)
    s2 = lun(stats(d), "rd0")

    def delta(k):
        return (s2[k] - s1[k]) - (s1[k] - s0[k])

    assert delta("write_commands") == 256, (s0, s1, s2)
    assert delta("write_bytes") == 1 * MiB
    assert delta("read_bytes") == 2 * MiB
    assert delta("read_commands") >= 2
    assert s2["errors"] == 0
    assert s2["latency"]["write"]["count"] == s2["write_commands"]
    assert s2["latency"]["read"]["count"] == s2["read_commands"]
    assert s2["latency"]["write"]["buckets_us"][-1] == [-1, s2["write_commands"]]

    st = stats(d)
    t = target(st, IQN)
    assert t["login_accepts"] == 2 and t["logout_normals"] == 2, t
    assert t["login_authenticate_fails"] == 0 and t["sessions"] == 0
    assert st["instance"]["sessions"] == 0

    # the same numbers in /metrics, and promtool accepts the exposition
    text = get_metrics(mport)
    S = {"backstore": "ramdisk", "name": "rd0"}
    L = dict(S, target=IQN, tpg=1, lun=0)
    # the only LUN of the storage object: its counters are the object's
    tl = tpg_lun(st, IQN, 1, 0)
    for k in ("commands", "read_commands", "write_commands", "read_bytes",
              "write_bytes", "errors"):
        assert tl[k] == lun(st, "rd0")[k] == s2[k], (k, tl, s2)
    assert tl["latency"] == s2["latency"] and tl["storage_object"] == "ramdisk/rd0"
    for fam, lab in (("utarget_lun", L), ("utarget_storage_object", S)):
        assert sample(text, fam + "_write_bytes_total", **lab) == s2["write_bytes"]
        assert sample(text, fam + "_read_bytes_total", **lab) == s2["read_bytes"]
        assert sample(text, fam + "_commands_total", direction="write", **lab) == \
            s2["write_commands"]
        assert sample(text, fam + "_latency_seconds_count", direction="write", **lab) == \
            s2["write_commands"]
        assert sample(text, fam + "_latency_seconds_bucket", direction="write",
                      le="+Inf", **lab) == s2["write_commands"]
    assert sample(text, "utarget_logins_total", target=IQN, result="accepted") == 2
    assert sample(text, "utarget_sessions") == 0
    assert "# TYPE utarget_lun_latency_seconds histogram" in text
    assert "# TYPE utarget_storage_object_latency_seconds histogram" in text
    assert sample(text, "utarget_portal_logins_total", portal="127.0.0.1:%d" % d.port,
                  result="accepted") == 2
    promtool_accepts(text, tmp_path)

    # a live session shows its RFC 4544 counters
    proc = ut.qemu_io(d.image_opts(0), ["read 0 64k", "sleep 3000"], popen=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ss = [s for s in stats(d)["sessions"] if s["type"] == "Normal"]
            if ss and ss[0]["tx_data_octets"] >= 64 * KiB:
                break
            time.sleep(0.2)
        assert ss and ss[0]["tx_data_octets"] >= 64 * KiB and ss[0]["cmd_pdus"] >= 1, ss
        # the session's own SCSI counters: the 64 KiB read is in them
        io = ss[0]["io"]
        assert io["read_bytes"] >= 64 * KiB and 1 <= io["commands"] <= ss[0]["cmd_pdus"], io
        assert io["latency"]["read"]["count"] == io["read_commands"], io
        assert target(stats(d), IQN)["sessions"] == 1
        assert sample(get_metrics(mport), "utarget_target_sessions", target=IQN) == 1
        pt = {p["portal"]: p for p in stats(d)["portals"]}["127.0.0.1:%d" % d.port]
        assert pt["sessions"] == 1, pt
        assert sample(get_metrics(mport), "utarget_portal_sessions",
                      portal="127.0.0.1:%d" % d.port) == 1
    finally:
        proc.wait(timeout=60)


def test_chap_failure_counted(port, workdir, utarget):
    acfg = AuthConfig(port, workdir)
    rd = acfg.ramdisk("rd0", size=16 * MiB)
    tpg = acfg.target(IQN).tpg(generate_node_acls=1, authentication=1,
                               demo_mode_write_protect=0)
    tpg.lun(0, rd)
    tpg.chap = chap("tpguser", "tpg-secret-12345")
    d, mport = start(utarget, acfg, workdir)
    ini = "iqn.1994-05.com.example:stats"

    res, _ = ut.iscsi_inq(lun_url(d, user="tpguser", secret="wrong-secret-123"),
                          initiator=ini)
    assert res.returncode != 0 and AUTH_FAILED in res.stdout + res.stderr, ut.describe(res, d)
    t = target(stats(d), IQN)
    assert t["login_authenticate_fails"] == 1 and t["login_accepts"] == 0, t
    res, _ = ut.iscsi_inq(lun_url(d, user="tpguser", secret="tpg-secret-12345"),
                          initiator=ini)
    assert res.returncode == 0, ut.describe(res, d)
    st = stats(d)
    assert target(st, IQN)["login_accepts"] == 1
    assert st["instance"]["login_authenticate_fails"] == 1
    text = get_metrics(mport)
    assert sample(text, "utarget_logins_total", target=IQN,
                  result="authenticate_failed") == 1
    # a target that does not exist counts under "" (not a label per invented name)
    res, _ = ut.iscsi_inq(lun_url(d, iqn="iqn.2003-01.org.example:nope"), initiator=ini)
    assert res.returncode != 0
    assert target(stats(d), "")["login_not_found"] == 1


def test_http_hardening(config, utarget, workdir):
    rd = config.ramdisk("rd0", size=16 * MiB)
    config.target(IQN).tpg().lun(0, rd)
    d, mport = start(utarget, config, workdir)

    def status(r):
        return r.split(b"\r\n", 1)[0]

    assert status(http(mport, b"GET /nothing HTTP/1.1\r\n\r\n")) == b"HTTP/1.1 404 Not Found"
    assert status(http(mport, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")) == \
        b"HTTP/1.1 405 Method Not Allowed"
    assert status(http(mport, b"GARBAGE\r\n\r\n")) == b"HTTP/1.1 400 Bad Request"
    assert status(http(mport, b"GET /metrics HTTP/9\r\n\r\n")) == b"HTTP/1.1 400 Bad Request"
    assert status(http(mport, b"GET /me\x00trics HTTP/1.1\r\n\r\n")) == \
        b"HTTP/1.1 400 Bad Request"
    big = b"GET /metrics HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 9000 + b"\r\n\r\n"
    assert status(http(mport, big)) == b"HTTP/1.1 431 Request Header Fields Too Large"
    head = http(mport, b"HEAD /metrics HTTP/1.0\r\n\r\n")
    assert status(head) == b"HTTP/1.1 200 OK" and head.endswith(b"\r\n\r\n")

    # slowloris: an unfinished request is answered 408 and closed after 5 s
    t0 = time.monotonic()
    r = http(mport, b"GET /metrics HTTP/1.1\r\nHost: x\r\n", timeout=15)
    assert status(r) == b"HTTP/1.1 408 Request Timeout", r
    assert 4 <= time.monotonic() - t0 < 12

    # connection cap: idle connections beyond 16 are closed at once
    idle = [socket.create_connection(("127.0.0.1", mport), timeout=5) for _ in range(24)]
    try:
        time.sleep(0.5)
        closed = 0
        for s in idle:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed += 1
        assert closed >= 8, closed
        # iSCSI service is not disturbed while the metrics port is saturated
        res = ut.qemu_io(d.image_opts(0), ["write -P 0x33 0 64k", "read -P 0x33 0 64k"])
        assert not ut.qemu_io_problems(res), ut.describe(res, d)
    finally:
        for s in idle:
            s.close()
    time.sleep(0.5)
    assert sample(get_metrics(mport), "utarget_storage_object_write_bytes_total",
                  backstore="ramdisk", name="rd0") == 64 * KiB
    assert d.alive()


def _listen_ports(pid):
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fl = line.split()
                if fl[3] == "0A" and fl[9] in inodes:
                    ports.add(int(fl[1].rsplit(":", 1)[1], 16))
    return ports


def test_metrics_off_by_default(config, utarget, workdir):
    rd = config.ramdisk("rd0", size=16 * MiB)
    config.target(IQN).tpg().lun(0, rd)
    d = utarget(config)
    assert _listen_ports(d.proc.pid) == {d.port}
    st = stats(d)
    assert "luns" in st and "storage_objects" in st and st["instance"]["io_counters"]


def test_bad_metrics_listen_refused(config, utarget, workdir):
    cfg_path = os.path.join(str(workdir), "x.json")
    config.write(cfg_path)
    r = subprocess.run([ut_bin(), "-c", cfg_path, "-s", os.path.join(str(workdir), "s.sock"),
                        "-f", "-o", "metrics_listen=nonsense"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "metrics_listen" in r.stderr, r.stderr


def test_cli_sessions_detail_and_stats(config, utarget, workdir):
    from test_cli import _cli_path
    rd = config.ramdisk("rd0", size=16 * MiB)
    config.target(IQN).tpg().lun(0, rd)
    d, _ = start(utarget, config, workdir, metrics=False)
    env = {"UTARGET_SOCKET": d.sock, "UTARGETCLI_HOME": os.path.join(str(workdir), "h"),
           "TERM": "dumb", "ASAN_OPTIONS": "detect_leaks=1"}

    def cli(*args):
        res = ut.run([_cli_path()] + list(args), env=env, timeout=60)
        assert res.returncode == 0 and "runtime error:" not in res.stderr, ut.describe(res, d)
        return res.stdout

    workload(d)
    out = cli("stats")
    assert "ramdisk/rd0: commands: " in out and "write 256" in out, out
    assert "written: %d bytes" % MiB in out and "last 1 s: IOPS: 0 " in out, out
    assert "/iscsi/%s/tpg1/luns/lun0: commands: " % IQN in out, out
    assert "no storage object" in ut.run([_cli_path(), "stats", "nope"], env=env).stderr

    proc = ut.qemu_io(d.image_opts(0), ["read 0 64k", "sleep 4000"], popen=True)
    try:
        deadline = time.monotonic() + 20
        while not [s for s in stats(d)["sessions"] if s["type"] == "Normal"]:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        out = cli("sessions", "detail")
        assert "negotiated parameters:" in out and "MaxBurstLength=" in out, out
        assert "HeaderDigest=None" in out and "rates (last 1 s): IOPS:" in out, out
        assert "totals: commands: " in out, out
        m = re.search(r"totals: commands: \d+ .* mean latency: (\d+) us", out)
        assert m and int(m.group(1)) < 5000000, out
    finally:
        proc.wait(timeout=60)


def test_per_lun_and_per_portal(config, utarget, workdir, tmp_path):
    """One storage object exported by two TPGs (two target ports, two portals) and
    by a second target: each TPG LUN counts the commands that came through it,
    the storage object counts them all; logins count per portal reached."""
    rd = config.ramdisk("rd0", size=16 * MiB)
    t = config.target(IQN)
    t.tpg(1).lun(0, rd)
    port2 = ut.free_port()
    t.tpg(2, portals=[("127.0.0.1", port2)]).lun(3, rd)
    iqn2 = IQN + "-b"
    config.target(iqn2).tpg(1).lun(0, rd)
    d, mport = start(utarget, config, workdir)

    def writes(port, iqn, lun, n):
        cmds = ["write -P 0x11 %d 4k" % (i * 4 * KiB) for i in range(n)]
        res = ut.qemu_io(ut.image_opts(port, iqn, lun), cmds)
        assert not ut.qemu_io_problems(res), ut.describe(res, d)

    s0 = stats(d)
    writes(d.port, IQN, 0, 5)
    writes(port2, IQN, 3, 7)
    writes(d.port, iqn2, 0, 11)
    s1 = stats(d)

    def dw(st0, st1, k="write_commands"):
        return st1[k] - st0[k]

    a = dw(tpg_lun(s0, IQN, 1, 0), tpg_lun(s1, IQN, 1, 0))
    b = dw(tpg_lun(s0, IQN, 2, 3), tpg_lun(s1, IQN, 2, 3))
    c = dw(tpg_lun(s0, iqn2, 1, 0), tpg_lun(s1, iqn2, 1, 0))
    assert (a, b, c) == (5, 7, 11), (a, b, c)
    assert dw(lun(s0, "rd0"), lun(s1, "rd0")) == 23
    assert dw(lun(s0, "rd0"), lun(s1, "rd0"), "write_bytes") == 23 * 4 * KiB
    assert dw(tpg_lun(s0, IQN, 2, 3), tpg_lun(s1, IQN, 2, 3), "write_bytes") == 7 * 4 * KiB

    portals = {p["portal"]: p for p in s1["portals"]}
    assert portals["127.0.0.1:%d" % d.port]["login_accepts"] == 2, portals
    assert portals["127.0.0.1:%d" % port2]["login_accepts"] == 1, portals
    # a refused login counts on the portal it came through
    res, _ = ut.iscsi_inq("iscsi://127.0.0.1:%d/iqn.2003-01.org.example:none/0" % port2)
    assert res.returncode != 0
    p2 = {p["portal"]: p for p in stats(d)["portals"]}["127.0.0.1:%d" % port2]
    assert p2["login_not_found"] == 1 and p2["login_accepts"] == 1, p2

    text = get_metrics(mport)
    assert sample(text, "utarget_lun_write_bytes_total", target=IQN, tpg=2, lun=3,
                  backstore="ramdisk", name="rd0") == 7 * 4 * KiB
    assert sample(text, "utarget_portal_logins_total", portal="127.0.0.1:%d" % port2,
                  result="target_not_found") == 1
    promtool_accepts(text, tmp_path)


def test_task_management_and_digest_errors_counted(config, utarget, workdir):
    """A LUN RESET counts as task management on the session, the TPG LUN and the
    storage object; a wrong header digest counts as a digest error of the session's
    target (and the session then fails: RFC 7143 §7.8, ERL 0)."""
    import iscsiraw as raw
    from test_tmf import lun_reset
    rd = config.ramdisk("rd0", size=16 * MiB)
    config.target(IQN).tpg(parameters={"HeaderDigest": "CRC32C,None"}).lun(0, rd)
    d, mport = start(utarget, config, workdir)

    with raw.RawConn("127.0.0.1", d.port) as c:
        c.login(IQN, initiator="iqn.1994-05.com.example:tmf")
        lun_reset(c)
        st = stats(d)
        sess = [s for s in st["sessions"] if s["type"] == "Normal"]
        assert len(sess) == 1 and sess[0]["task_management"] == 1, sess
        assert sess[0]["io"]["task_management"] == 1, sess
        assert tpg_lun(st, IQN, 1, 0)["task_management"] == 1
        assert lun(st, "rd0")["task_management"] == 1
        c.logout()
    assert sample(get_metrics(mport), "utarget_lun_task_management_total", target=IQN,
                  tpg=1, lun=0, backstore="ramdisk", name="rd0") == 1

    before = target(stats(d), IQN)
    with raw.RawConn("127.0.0.1", d.port) as c:
        c.login(IQN, initiator="iqn.1994-05.com.example:dig", header_digest=True)
        assert c.hdigest
        c.send(c.nop_out(b"x"), bad_hdigest=True)
        assert c.closed_within(10), "a wrong header digest did not end the connection"
    deadline = time.monotonic() + 10
    while target(stats(d), IQN)["digest_errors"] == before["digest_errors"]:
        assert time.monotonic() < deadline, "digest error not counted"
        time.sleep(0.1)
    after = target(stats(d), IQN)
    assert after["digest_errors"] == before["digest_errors"] + 1, after
    assert after["session_failures"] == before["session_failures"] + 1, after
    assert stats(d)["instance"]["digest_errors"] == after["digest_errors"]
    assert sample(get_metrics(mport), "utarget_digest_errors_total", target=IQN) == \
        after["digest_errors"]


def test_stats_off(config, utarget, workdir):
    """utargetd -o stats=off: I/O works, no I/O counter moves, logins still count;
    a value other than on/off is refused."""
    rd = config.ramdisk("rd0", size=16 * MiB)
    config.target(IQN).tpg().lun(0, rd)
    cfg_path = os.path.join(str(workdir), "off.json")
    config.write(cfg_path)
    argv = [ut_bin(), "-c", cfg_path, "-s", os.path.join(str(workdir), "ctl.sock"), "-f",
            "-o", "stats=off"]
    d = utarget(config, argv=argv)
    workload(d)
    st = stats(d)
    assert st["instance"]["io_counters"] is False
    for l in (lun(st, "rd0"), tpg_lun(st, IQN, 1, 0)):
        assert l["commands"] == 0 and l["write_bytes"] == 0, l
        assert l["latency"]["write"]["count"] == 0, l
    assert target(st, IQN)["login_accepts"] == 1
    r = subprocess.run([ut_bin(), "-c", cfg_path, "-s", os.path.join(str(workdir), "s.sock"),
                        "-f", "-o", "stats=maybe"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "stats=on|off" in r.stderr, r.stderr
