"""HA gateways on one RBD image (issue 18: access states per LU, failover, fencing).

Two utargetd (gateways) on 127.0.0.2 and 127.0.0.3 export one image (user:rbd with
`;ha=1`) under one target IQN. Each gateway's configuration has both gateways' TPGs
(tags 1 and 2, so the RTPIs agree), its own enabled with a portal, the other disabled
without one; each TPG's LUN is in an ALUA group of its own (gw1 id 1, gw2 id 2). The
owner of the image's exclusive lock is active/optimized, the other standby; a dead
owner's lock is broken (and the owner blocklisted) by the survivor, which becomes
optimized; a stale owner that comes back cannot write.

The cluster is conftest's `ceph` (`osd client watch timeout = 5`): failover must take
well under FAILOVER_BOUND seconds (docs/rbd.md explains the parts of it)."""

import json
import os
import signal
import struct
import time
import uuid

import pytest

import iscsiraw as raw
import uthelpers as ut
from uthelpers import MiB
from guest import IO_LOOP_SH
from test_rbd import _naa

IQN = "iqn.2003-01.org.linux-iscsi.test:ha"
HOSTS = {1: "127.0.0.2", 2: "127.0.0.3", 3: "127.0.0.4"}
FAILOVER_BOUND = 15.0   # seconds; watch timeout 5 s + a 1 s tick + break and acquire
AO, STANDBY = 0, 2


def _image(ceph, size=32 * MiB):
    name = "ha-" + uuid.uuid4().hex[:8]
    ceph.rbd("create", "--size", "%dM" % (size // MiB), "rbd/" + name)
    return name


def _gw_config(ceph, image, me, port, path, n=2, opts=None):
    """Gateway `me`'s saveconfig.json: the TPGs of all n gateways, only its own enabled
    with a portal."""
    tpgs = []
    for tag in range(1, n + 1):
        tpgs.append({
            "tag": tag, "enable": tag == me,
            "attributes": {"authentication": 0, "generate_node_acls": 1,
                           "demo_mode_write_protect": 0, "cache_dynamic_acls": 1},
            "parameters": {},
            "luns": [{"index": 0, "storage_object": "/backstores/user/r0",
                      "alua_tg_pt_gp_name": "gw%d" % tag}],
            "portals": [{"ip_address": HOSTS[me], "port": port}] if tag == me else [],
            "node_acls": []})
    doc = {"fabric_modules": [],
           # no wwn: the LU identity comes from the image, the same on both
           "storage_objects": [{
               "name": "r0", "plugin": "user",
               "config": "rbd/" + ceph.cfgstring(image, ha=1, **(opts or {})),
               "attributes": {},
               "alua_tpgs": [{"name": "gw%d" % t, "tg_pt_gp_id": t}
                             for t in range(1, n + 1)]}],
           "targets": [{"fabric": "iscsi", "wwn": IQN, "tpgs": tpgs}]}
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)


class Gateways:
    """Starts gateway daemons (each in its own directory); at the end stops the live
    ones cleanly (exit 0, no sanitizer report) and kills whatever is left."""

    def __init__(self, binary, workdir, ceph, image, n=2, opts=None):
        self.binary, self.workdir, self.ceph, self.image = binary, str(workdir), ceph, image
        self.n, self.opts = n, opts
        self.ports = {me: ut.free_port(HOSTS[me]) for me in range(1, n + 1)}
        self.daemons = []

    def start(self, me, run=0):
        d_dir = os.path.join(self.workdir, "gw%d-%d" % (me, run))
        os.makedirs(d_dir, exist_ok=True)
        cfg_path = os.path.join(d_dir, "saveconfig.json")
        _gw_config(self.ceph, self.image, me, self.ports[me], cfg_path, self.n,
                   self.opts)
        cfg = ut.Config(self.ports[me], d_dir)
        sock = os.path.join(d_dir, "ctl.sock")
        d = ut.Daemon(self.binary, cfg, d_dir, name="gw%d" % me, host=HOSTS[me],
                      argv=[self.binary, "-c", cfg_path, "-s", sock, "-f"])
        d.sock = sock
        self.daemons.append(d)
        return d.start(timeout=30)

    def finish(self):
        problems = []
        for d in self.daemons:
            if d.proc is not None and d.proc.poll() is None:
                try:
                    os.kill(d.proc.pid, signal.SIGCONT)
                except OSError:
                    pass
            try:
                d.stop(timeout=30)
            except AssertionError as e:
                problems.append(str(e))
            finally:
                d.kill()
        return problems


@pytest.fixture
def gateways(utargetd_bin, workdir, ceph):
    made = []

    def make(image, n=2, **opts):
        g = Gateways(utargetd_bin, workdir, ceph, image, n, opts)
        made.append(g)
        return g

    yield make
    problems = []
    for g in made:
        problems += g.finish()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def _sense(p):
    n = struct.unpack(">H", p.data[:2])[0]
    s = p.data[2:2 + n]
    return s[2] & 0xf, s[12], s[13]


def _conn(host, port, isid=None, initiator=None):
    c = raw.RawConn(host, port, isid=isid)
    if initiator:
        c.login(target=IQN, initiator=initiator)
    else:
        c.login(target=IQN)
    return c


def _cmd(c, cdb, **kw):
    """A command, unit attentions (06h) taken and the command sent again."""
    for _ in range(8):
        p, din = c.command(bytes(cdb), timeout=60, **kw)
        assert p is not None, "no response to CDB %s" % bytes(cdb).hex()
        if p.status == 2 and _sense(p)[0] == 6:
            continue
        return p, din
    raise AssertionError("unit attentions without end on CDB %s" % bytes(cdb).hex())


def _rtpg(c):
    """{group id: (state, [rtpi])} from REPORT TARGET PORT GROUPS."""
    cdb = bytes([0xa3, 0x0a, 0, 0, 0, 0]) + struct.pack(">I", 512) + bytes(2)
    p, d = _cmd(c, cdb, edtl=512, read=True)
    assert p.status == 0, _sense(p)
    n, off, out = struct.unpack(">I", d[:4])[0], 4, {}
    while off < 4 + n:
        cnt = d[off + 7]
        out[struct.unpack(">H", d[off + 2:off + 4])[0]] = (
            d[off] & 0x0f,
            [struct.unpack(">H", d[off + 10 + 4 * i:off + 12 + 4 * i])[0]
             for i in range(cnt)])
        off += 8 + 4 * cnt
    return out


def _states(c):
    g = _rtpg(c)
    return {gid: st for gid, (st, ports) in g.items() if ports}


def _wait_states(c, want, timeout, what):
    t0 = time.monotonic()
    while True:
        got = _states(c)
        if got == want:
            return time.monotonic() - t0
        assert time.monotonic() - t0 < timeout, "%s: states %s, want %s" % (what, got, want)
        time.sleep(0.1)


def _write(c, lba, data):
    cdb = bytes([0x8a, 0]) + struct.pack(">QIBB", lba, len(data) // 512, 0, 0)
    return _cmd(c, cdb, edtl=len(data), write=True, data=data)[0]


def _read(c, lba, nbytes):
    cdb = bytes([0x88, 0]) + struct.pack(">QIBB", lba, nbytes // 512, 0, 0)
    return _cmd(c, cdb, edtl=nbytes, read=True)


def _ident(c):
    p, v80 = _cmd(c, [0x12, 1, 0x80, 0, 255, 0], edtl=255, read=True)
    assert p.status == 0
    p, v83 = _cmd(c, [0x12, 1, 0x83, 0, 255, 0], edtl=255, read=True)
    assert p.status == 0
    return v80[4:4 + v80[3]], v83[:4 + struct.unpack(">H", v83[2:4])[0]]


def _rtpi(v83):
    off = 4
    while off < len(v83):
        if v83[off + 1] & 0x0f == 4:   # relative target port designator
            return struct.unpack(">H", v83[off + 6:off + 8])[0]
        off += 4 + v83[off + 3]
    raise AssertionError("no RTPI in VPD 0x83")


def _export(ceph, image, workdir):
    out = os.path.join(str(workdir), image + "-%s.raw" % uuid.uuid4().hex[:4])
    ceph.rbd("export", "rbd/" + image, out)
    with open(out, "rb") as f:
        return f.read()


def _two_gateways(gateways, ceph):
    """gw1 started first (it takes the lock), then gw2; both agree."""
    image = _image(ceph)
    g = gateways(image)
    d1 = g.start(1)
    c1 = _conn(HOSTS[1], g.ports[1])
    _wait_states(c1, {1: AO, 2: STANDBY}, 20, "gw1 alone")
    d2 = g.start(2)
    c2 = _conn(HOSTS[2], g.ports[2])
    _wait_states(c2, {1: AO, 2: STANDBY}, 20, "gw2 joining")
    return image, g, d1, d2, c1, c2


def test_two_gateways_states_identity_io(gateways, ceph, workdir):
    image, g, d1, d2, c1, c2 = _two_gateways(gateways, ceph)
    # one LU: the same unit serial and NAA on both paths, different RTPIs
    s1, v1 = _ident(c1)
    s2, v2 = _ident(c2)
    assert s1 == s2 and s1
    assert _naa(v1) == _naa(v2)
    assert (_rtpi(v1), _rtpi(v2)) == (1, 2)
    # RTPG on each: both groups, each with its own gateway's port
    for c in (c1, c2):
        assert _rtpg(c) == {0: (STANDBY, []), 1: (AO, [1]), 2: (STANDBY, [2])}
    # INQUIRY TPGS: implicit only (states are derived, SET TARGET PORT GROUPS refused)
    p, inq = _cmd(c1, [0x12, 0, 0, 0, 96, 0], edtl=96, read=True)
    assert (inq[5] >> 4) & 3 == 1, inq[5]
    stpg = bytes(4) + bytes([AO, 0]) + struct.pack(">H", 2)
    p, _ = _cmd(c2, bytes([0xa4, 0x0a, 0, 0, 0, 0]) + struct.pack(">I", len(stpg)) + bytes(2),
                edtl=len(stpg), write=True, data=stpg)
    assert p.status == 2 and _sense(p)[0] == 5, "STPG was accepted under ha=1"
    # nor by hand: alua_access_state is refused
    from rpcclient import RpcClient
    rpc = RpcClient(d2.sock).connect()
    e = rpc.error("alua.set_attributes", plugin="user", name="r0", group="gw2",
                  attributes={"alua_access_state": 0})
    assert "derived" in e.message, e
    # verified I/O through the owner; the standby path refuses with 02/04/0B
    data = os.urandom(64 * 1024)
    p = _write(c1, 2048, data)
    assert p.status == 0, _sense(p)
    p, din = _read(c1, 2048, len(data))
    assert p.status == 0 and din == data
    p = _write(c2, 4096, data)
    assert p.status == 2 and _sense(p) == (2, 0x04, 0x0b), _sense(p)
    assert _export(ceph, image, workdir)[2048 * 512:2048 * 512 + len(data)] == data
    # the owner's record in the image: its address and its ports
    md = ceph.rbd("image-meta", "get", "rbd/" + image, "utarget.ha_owner").stdout.strip()
    assert md.endswith(" 1"), md
    # saveconfig keeps ha=1 in LIO's config string; a bad value is refused
    cli = os.environ.get("UTARGETCLI") or os.path.join(
        os.path.dirname(d2.binary), "utargetcli")
    env = {"UTARGET_SOCKET": d2.sock, "UTARGETCLI_HOME": os.path.join(str(workdir), "h")}
    saved = os.path.join(str(workdir), "saved.json")
    res = ut.run([cli, "saveconfig", saved], env=env)
    assert res.returncode == 0, ut.describe(res, d2)
    so = json.load(open(saved))["storage_objects"][0]
    assert so["config"] == "rbd/" + ceph.cfgstring(image, ha=1), so
    # the derived states are not settings: saved as LIO's default on every gateway, so
    # the gateways of a group write the same document (docs/gateway-group.md)
    assert so["alua_tpgs"] and all(t["alua_access_state"] == 0 and
                                   t["alua_access_status"] == 0
                                   for t in so["alua_tpgs"]), so["alua_tpgs"]
    res = ut.run([cli, "/backstores/user:rbd", "create", "name=bad",
                  "cfgstring=" + ceph.cfgstring(image, ha=2)], env=env)
    assert res.returncode != 0 and "ha '2' must be 0 or 1" in res.stderr, ut.describe(res, d2)
    c1.close()
    c2.close()


def test_clean_stop_of_owner_hands_over_at_once(gateways, ceph, workdir):
    """SIGTERM: the owner closes the image, which releases the lock; the survivor takes
    it at its next look (no watch timeout to wait for)."""
    image, g, d1, d2, c1, c2 = _two_gateways(gateways, ceph)
    c1.close()
    t0 = time.monotonic()
    d1.stop(timeout=30)
    took = _wait_states(c2, {1: STANDBY, 2: AO}, 5, "after SIGTERM of the owner")
    print("\nhand-over after SIGTERM: %.1f s (after the stop: %.1f s)"
          % (time.monotonic() - t0, took))
    p = _write(c2, 0, b"\x44" * 4096)
    assert p.status == 0, _sense(p)
    # released, not broken: nobody was blocklisted
    with open(d2.stderr_path, "rb") as f:
        log = f.read().decode("utf-8", "replace")
    assert "breaking its lock" not in log and "owns the image's lock" in log, log[-3000:]
    c2.close()


def test_sigkill_owner_failover_and_rejoin(gateways, ceph, workdir):
    image, g, d1, d2, c1, c2 = _two_gateways(gateways, ceph)
    before = os.urandom(128 * 1024)
    p = _write(c1, 0, before)
    assert p.status == 0, _sense(p)
    c1.close()
    t0 = time.monotonic()
    d1.kill()   # SIGKILL to the owner's process group
    _wait_states(c2, {1: STANDBY, 2: AO}, FAILOVER_BOUND, "after SIGKILL of the owner")
    took = time.monotonic() - t0
    print("\nfailover after SIGKILL: %.1f s (bound %.0f s)" % (took, FAILOVER_BOUND))
    # I/O through the new owner; what was acknowledged before the kill is there
    p, din = _read(c2, 0, len(before))
    assert p.status == 0, _sense(p)
    assert din == before
    after = os.urandom(64 * 1024)
    p = _write(c2, 1024, after)
    assert p.status == 0, _sense(p)
    # the killed gateway restarts: it rejoins as a non-owner and stays one
    g.start(1, run=1)
    c1 = _conn(HOSTS[1], g.ports[1])
    _wait_states(c1, {1: STANDBY, 2: AO}, 20, "restarted gw1")
    deadline = time.monotonic() + 3   # a few of its ticks: still not the owner
    while time.monotonic() < deadline:
        assert _states(c1) == {1: STANDBY, 2: AO}
        assert _states(c2) == {1: STANDBY, 2: AO}
        time.sleep(0.5)
    p = _write(c1, 1024, bytes(len(after)))
    assert p.status == 2 and _sense(p) == (2, 0x04, 0x0b), _sense(p)
    p = _write(c2, 1024 + 128, after[:512])
    assert p.status == 0, _sense(p)
    exp = _export(ceph, image, workdir)
    assert exp[:len(before)] == before
    assert exp[1024 * 512:1024 * 512 + len(after)] == after
    c1.close()
    c2.close()


def test_sigstop_stale_owner_is_fenced(gateways, ceph, workdir):
    image, g, d1, d2, c1, c2 = _two_gateways(gateways, ceph)
    old = b"\x11" * 4096
    p = _write(c1, 0, old)
    assert p.status == 0, _sense(p)
    t0 = time.monotonic()
    os.kill(d1.proc.pid, signal.SIGSTOP)
    stale = b"\x33" * 4096
    cdb = bytes([0x8a, 0]) + struct.pack(">QIBB", 0, 8, 0, 0)
    try:
        _wait_states(c2, {1: STANDBY, 2: AO}, FAILOVER_BOUND, "after SIGSTOP of the owner")
        print("\nfailover after SIGSTOP: %.1f s" % (time.monotonic() - t0))
        new = b"\x22" * 4096
        p = _write(c2, 0, new)
        assert p.status == 0, _sense(p)
        # a WRITE through the stale gateway's session from before, queued in its
        # socket while it is stopped: on SIGCONT its worker usually takes it before
        # the HA thread has looked at the lock, so it reaches librbd
        itt = c1.next_itt()
        c1.send(c1.scsi_cmd(cdb, 4096, write=True, data=stale[:c1.immediate_limit()],
                            itt=itt))
    finally:
        os.kill(d1.proc.pid, signal.SIGCONT)
    p, _ = c1.wait_status(itt, stale, timeout=60)
    assert p is not None, "no response from the stale gateway"
    assert p.status == 2, "a WRITE through the fenced gateway succeeded"
    print("stale gateway's WRITE: sense %s" % (_sense(p),))
    if _sense(p)[0] == 6:
        # the HA thread was first: the state change's unit attention; again
        p = _write(c1, 0, stale)
        assert p.status == 2, "a WRITE through the fenced gateway succeeded"
        print("stale gateway's WRITE again: sense %s" % (_sense(p),))
    # blocklisted in librbd: 02/04/0A; refused by the standby state: 02/04/0B
    assert _sense(p) in ((2, 0x04, 0x0a), (2, 0x04, 0x0b)), _sense(p)
    # it notices, turns standby, reconnects with a new client and agrees on the owner
    _wait_states(c1, {1: STANDBY, 2: AO}, 30, "the fenced gateway")
    p = _write(c1, 8, stale)
    assert p.status == 2 and _sense(p) == (2, 0x04, 0x0b), _sense(p)
    # the image holds the new owner's data, read through the new owner and exported
    p, din = _read(c2, 0, 4096)
    assert p.status == 0 and din == new
    exp = _export(ceph, image, workdir)
    assert exp[:4096] == new and exp[8 * 512:8 * 512 + 4096] != stale
    with open(d1.stderr_path, "rb") as f:
        log = f.read().decode("utf-8", "replace")
    assert "fenced" in log and "reconnected" in log, log[-3000:]
    c1.close()
    c2.close()


def test_three_gateways_one_survivor_wins(gateways, ceph, workdir):
    """Three gateways; the owner is SIGKILLed: both survivors see its watch go, exactly one
    of them gets the lock, and all the live gateways agree on which (RTPG on each)."""
    image = _image(ceph)
    g = gateways(image, n=3)
    g.start(1)
    conns = {1: _conn(HOSTS[1], g.ports[1])}
    _wait_states(conns[1], {1: AO, 2: STANDBY, 3: STANDBY}, 20, "gw1 alone")
    for me in (2, 3):
        g.start(me)
        conns[me] = _conn(HOSTS[me], g.ports[me])
    for me in (2, 3):
        _wait_states(conns[me], {1: AO, 2: STANDBY, 3: STANDBY}, 20, "gw%d joining" % me)
    conns.pop(1).close()
    t0 = time.monotonic()
    g.daemons[0].kill()
    while True:
        seen = {me: _states(c) for me, c in conns.items()}
        winners = {me: [gid for gid, st in s.items() if st == AO] for me, s in seen.items()}
        if all(len(w) == 1 and w[0] != 1 for w in winners.values()) and \
                winners[2] == winners[3]:
            break
        assert time.monotonic() - t0 < FAILOVER_BOUND, seen
        time.sleep(0.1)
    new = winners[2][0]
    print("\nthree gateways: gw%d took over after %.1f s" % (new, time.monotonic() - t0))
    # it stays that way, and the other survivor refuses writes
    for _ in range(4):
        assert all(_states(c) == seen[2] for c in conns.values())
        time.sleep(0.5)
    other = 5 - new
    p = _write(conns[new], 0, b"\x55" * 4096)
    assert p.status == 0, _sense(p)
    p = _write(conns[other], 0, b"\x66" * 4096)
    assert p.status == 2 and _sense(p) == (2, 0x04, 0x0b), _sense(p)
    # exactly one survivor ever owned the lock (a second breaker finds it gone or taken)
    logs = []
    for d in g.daemons[1:]:
        with open(d.stderr_path, "rb") as f:
            logs.append(f.read().decode("utf-8", "replace"))
    assert sum("owns the image's lock" in l for l in logs) == 1, logs
    for c in conns.values():
        c.close()


# ---- the Linux kernel initiator with dm-multipath (tests/integration/guest.py) ----

GUEST = "iqn.1994-05.com.example:guest"
PATTERN_LINE = b"UTARGET-RBD-HA-PATTERN\n"
PAT_LEN = 1 * MiB

# The guest writes, reads back and compares 1 MiB regions through the multipath map
# without pause; the host SIGKILLs the owner at "@@STEP kill" and restarts it at
# "@@STEP killed". io.times holds "ROUND@UPTIME" per verified round: the longest gap
# between two rounds is the time I/O stood still.
HA_GUEST = ("yes %s | head -c %d > /tmp/pat\n" % (PATTERN_LINE.decode().strip(), PAT_LEN)) + r"""
step multipathd
start_multipathd || { echo "@@EXIT 1"; poweroff -f; }
start_iscsid || { echo "@@EXIT 1"; poweroff -f; }
step login
node_login $IQN 1 10.0.2.100 3260 || fail "login gw1"
node_login $IQN 2 10.0.2.101 3260 || fail "login gw2"
until_true 60 "two SCSI disks" '[ $(ls /sys/block | grep -c "^sd") -ge 2 ]'
for d in $(ls /sys/block | grep '^sd'); do
  sess=$(readlink -f /sys/block/$d/device | sed 's,.*/\(session[0-9]*\)/.*,\1,')
  tpgt=$(cat /sys/class/iscsi_session/$sess/tpgt)
  eval DISK$tpgt=$d
  eval SESS$tpgt=$sess
done
DA=$DISK1; DB=$DISK2
pg_of() {
  multipathd show topology | awk -v d=" $1 " '/prio=/ { st = $0; sub(/.*status=/, "", st);
    sub(/ .*/, "", st) } index($0, d) { print st; exit }'
}
iocount() { awk '{ print $1 + $5 }' /sys/block/$1/stat; }
access() { cat /sys/block/$1/device/access_state; }
until_true 60 "multipathd to put both paths into one map" \
  '[ "$(multipathd show maps raw format "%N")" = 2 ]'
udevadm settle --timeout=30
result access_a "$(access $DA)"
result access_b "$(access $DB)"
result serial_a "$(udevadm info -q property -n /dev/$DA | sed -n 's/^ID_SERIAL=//p')"
result serial_b "$(udevadm info -q property -n /dev/$DB | sed -n 's/^ID_SERIAL=//p')"
multipathd show topology
DM=/dev/$(ls /sys/block | grep '^dm-' | head -1)
[ "$DM" = /dev/ ] && { fail "multipathd made no map"; echo "@@EXIT 1"; poweroff -f; }
""" + IO_LOOP_SH + r"""echo "0 0" > /tmp/io.count
step io
io_loop &
IO=$!
more_rounds 3 "three verified rounds through the map" 180
result pg_a_before $(pg_of $DA)
result a_io_before $(iocount $DA)
result b_io_before $(iocount $DB)
step kill
until_true 120 "gw2 optimized and carrying the I/O" \
  '[ "$(access $DB)" = active/optimized ] && [ "$(pg_of $DB)" = active ]'
B0=$(iocount $DB)
more_rounds 3 "three rounds through gw2" 180
result b_io_failed $(( $(iocount $DB) - B0 ))
multipathd show topology
step killed
# gw1 restarted: iscsid logs in again, its path comes back standby; I/O stays on gw2
until_true 180 "gw1's session back, its path standby" \
  '[ "$(cat /sys/class/iscsi_session/$SESS1/state)" = LOGGED_IN ] && [ "$(access $DA)" = standby ]'
result access_a_rejoined "$(access $DA)"
more_rounds 1 "a round after gw1 rejoined" 180
A0=$(iocount $DA); B0=$(iocount $DB)
more_rounds 3 "three rounds after gw1 rejoined" 180
result a_io_rejoined $(( $(iocount $DA) - A0 ))
result b_io_rejoined $(( $(iocount $DB) - B0 ))
result access_b_rejoined "$(access $DB)"
multipathd show topology
step rejoined
touch /tmp/io.stop
wait $IO
result io_rounds $(rounds)
result io_errors $(cut -d' ' -f2 /tmp/io.count)
result max_gap $(awk -F@ 'NR > 1 { d = $2 - p; if (d > m) m = d } { p = $2 } END { printf "%.1f", m }' /tmp/io.times)
echo "rounds (round@uptime): $(tr '\n' ' ' < /tmp/io.times)"
grep -iE 'reinstat|fail|switch|prio' /tmp/multipathd.log | grep -v 'checker timeout' | tail -25
dmesg | grep -iE 'alua|multipath|device-mapper' | tail -20
"""


@pytest.fixture
def guest_cache(tmp_path_factory):
    return tmp_path_factory.getbasetemp()


@pytest.mark.guest
def test_kernel_multipath_sigkill_owner(gateways, ceph, workdir, guest_cache):
    """dm-multipath in a Linux guest writes and verifies a pattern through both gateways'
    paths without pause; the owner is SIGKILLed: the I/O goes on through the other
    gateway with no error (the time it stood still is printed), the bytes are on the
    image; the killed gateway restarts and rejoins as standby, the I/O stays where it is."""
    from guest import LinuxGuest
    image = _image(ceph, 64 * MiB)
    g = gateways(image)
    g.start(1)
    c1 = _conn(HOSTS[1], g.ports[1])
    _wait_states(c1, {1: AO, 2: STANDBY}, 20, "gw1 alone")
    c1.close()
    g.start(2)
    script = "IQN=%s\n" % IQN + HA_GUEST
    vm = LinuxGuest(workdir, script, cache_dir=guest_cache, initiator=GUEST,
                    forwards=[("10.0.2.100", 3260, g.ports[1], HOSTS[1]),
                              ("10.0.2.101", 3260, g.ports[2], HOSTS[2])]).start()
    try:
        assert vm.wait_line("@@STEP kill", 300), "guest never got to I/O\n" + vm.tail()
        t0 = time.monotonic()
        g.daemons[0].kill()
        assert vm.wait_line("@@STEP killed", 200), "no failover\n" + vm.tail()
        print("\nguest saw gw2 optimized and carrying I/O %.1f s after the SIGKILL"
              % (time.monotonic() - t0))
        g.start(1, run=1)
        assert vm.wait_line("@@STEP rejoined", 300), "gw1 did not rejoin\n" + vm.tail()
        vm.wait(120)
    finally:
        vm.kill()
    r = vm.check()
    print("I/O stood still at most %s s (%s verified rounds)" % (r["max_gap"], r["io_rounds"]))
    assert r["access_a"] == "active/optimized" and r["access_b"] == "standby", r
    assert r["serial_a"] and r["serial_a"] == r["serial_b"], r
    assert r["pg_a_before"] == "active" and int(r["a_io_before"]) > 0, r
    assert int(r["b_io_failed"]) > 0, r
    assert r["access_a_rejoined"] == "standby" and r["access_b_rejoined"] == "active/optimized", r
    assert r["a_io_rejoined"] == "0" and int(r["b_io_rejoined"]) > 0, r
    assert r["io_errors"] == "0", vm.tail(200)
    assert float(r["max_gap"]) < 30, r
    pat = (PATTERN_LINE * (PAT_LEN // len(PATTERN_LINE) + 1))[:PAT_LEN]
    exp = _export(ceph, image, workdir)
    for seek in range(1, 9):
        assert exp[seek * MiB:(seek + 1) * MiB] == pat, "region %d MiB on the image" % seek


def _prout(c, sa, key=0, sakey=0, typ=0, all_tg_pt=False):
    """PERSISTENT RESERVE OUT (SPC-4 6.16) with the basic parameter list."""
    par = struct.pack(">QQ", key, sakey) + bytes(4) + bytes([0x04 if all_tg_pt else 0]) + bytes(3)
    cdb = bytes([0x5f, sa, typ, 0, 0]) + struct.pack(">I", len(par)) + bytes(1)
    return _cmd(c, cdb, edtl=len(par), write=True, data=par)[0]


def _read_reservation(c):
    """(key, type) of PR IN READ RESERVATION (SPC-4 6.15.3), None when there is none."""
    p, d = _cmd(c, bytes([0x5e, 1, 0, 0, 0, 0, 0]) + struct.pack(">H", 64) + bytes(1),
                edtl=64, read=True)
    assert p.status == 0, _sense(p)
    if struct.unpack(">I", d[4:8])[0] == 0:
        return None
    return struct.unpack(">Q", d[8:16])[0], d[21] & 0x0f


def test_reservation_holds_across_lock_failover(gateways, ceph, workdir):
    """ha=1 and pr=cluster together (issue 18): I1 registers (ALL_TG_PT, as a clustered
    initiator registers every path) and reserves WRITE EXCLUSIVE through the owner gw1;
    gw1 is SIGKILLed; gw2 takes the lock and turns optimized; through gw2 the
    reservation still holds: I2's WRITE gets RESERVATION CONFLICT, the holder I1 writes
    and reads back, READ RESERVATION shows I1's key. The reservation state has a rados
    client of its own, so the failover's blocklisting leaves it alone."""
    I1, I2 = "iqn.1994-05.com.example:ha-node1", "iqn.1994-05.com.example:ha-node2"
    image = _image(ceph)
    g = gateways(image, pr="cluster", pr_lease=5)
    g.start(1)
    a1 = _conn(HOSTS[1], g.ports[1], initiator=I1)
    _wait_states(a1, {1: AO, 2: STANDBY}, 20, "gw1 alone")
    g.start(2)
    b2 = _conn(HOSTS[2], g.ports[2], initiator=I2)
    b1 = _conn(HOSTS[2], g.ports[2], initiator=I1)
    _wait_states(b2, {1: AO, 2: STANDBY}, 20, "gw2 joining")
    p = _prout(a1, 0, sakey=0xa1, all_tg_pt=True)          # REGISTER
    assert p.status == 0, _sense(p)
    p = _prout(a1, 1, key=0xa1, typ=1)                      # RESERVE, WRITE EXCLUSIVE
    assert p.status == 0, _sense(p)
    a2 = _conn(HOSTS[1], g.ports[1], initiator=I2)
    p = _write(a2, 0, b"\x11" * 4096)
    assert p.status == 0x18, "I2's WRITE through gw1: status %#x" % p.status
    a2.close()
    a1.close()
    g.daemons[0].kill()
    _wait_states(b2, {1: STANDBY, 2: AO}, FAILOVER_BOUND, "after SIGKILL of the owner")
    assert _read_reservation(b2) == (0xa1, 1)
    p = _write(b2, 0, b"\x22" * 4096)
    assert p.status == 0x18, "I2's WRITE through gw2 after failover: status %#x" % p.status
    data = os.urandom(8192)
    p = _write(b1, 16, data)
    assert p.status == 0, _sense(p)
    p, din = _read(b1, 16, len(data))
    assert p.status == 0 and din == data
    assert _export(ceph, image, workdir)[16 * 512:16 * 512 + len(data)] == data
    b1.close()
    b2.close()
