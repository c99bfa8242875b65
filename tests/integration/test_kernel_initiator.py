"""The real Linux kernel iSCSI initiator (iscsi_tcp through iscsistart) in a qemu guest
against utargetd on the host (docs/testing-guest.md), and ALUA with dm-multipath
(issue 17): scsi_dh_alua, multipathd (with systemd-udevd) and its alua prioritizer,
failover when the host makes the optimized group unavailable under running I/O, failback
when it comes back; then the same with the optimized TPG disabled and enabled again (iscsid
re-establishes the session). The host and the guest never wait a fixed time: the guest polls what it
can observe (sysfs, multipathd) and prints a step marker, the host waits for the marker.

The guest's network is restricted to forwards of the target's loopback portals: it logs in
to 10.0.2.100:3260 (TPG 1) and 10.0.2.101:3260 (TPG 2), which qemu carries to the host's
127.0.0.1 ports of the TPGs (explicit portals: the target's SendTargets would say 127.0.0.1).
Each test also checks that nothing else on the host is reachable from the guest.
"""

import socket
import threading

import pytest

import uthelpers as ut
from guest import IO_LOOP_SH, LinuxGuest
from rpcclient import RpcClient
from uthelpers import MiB

pytestmark = pytest.mark.guest

IQN = "iqn.2003-01.org.linux-iscsi.test:kernel"
GUEST = "iqn.1994-05.com.example:guest"
USER, SECRET, WRONG = "guestuser", "guest-secret-123", "wrong-secret-123"
PATTERN_LINE = b"UTARGET-KERNEL-INITIATOR-PATTERN\n"   # 33 bytes, `yes` in the guest
PAT_OFF = 1 * MiB
PAT_LEN = 1 * MiB

# shell used by both guests: /tmp/pat = 1 MiB of PATTERN_LINE repeated
MAKE_PATTERN = "yes %s | head -c %d > /tmp/pat\n" % (PATTERN_LINE.decode().strip(), PAT_LEN)


def expected_pattern(n=PAT_LEN):
    return (PATTERN_LINE * (n // len(PATTERN_LINE) + 1))[:n]


def check_file(path, off, data):
    with open(path, "rb") as f:
        f.seek(off)
        got = f.read(len(data))
    if got != data:
        first = next((i for i in range(min(len(got), len(data))) if got[i] != data[i]),
                     min(len(got), len(data)))
        return "backing file %s: mismatch at offset %d + %d" % (path, off, first)
    return None


@pytest.fixture
def guest_cache(tmp_path_factory):
    return tmp_path_factory.getbasetemp()


PORTAL1 = ("10.0.2.100", 3260)
PORTAL2 = ("10.0.2.101", 3260)


class Canary:
    """A host port listening on 127.0.0.1 that the guest must NOT reach (its network only
    has the forwards): counts the connections it accepts and greets each with a line the
    guest would print."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            try:
                c.sendall(b"CANARY-REACHED\n")
            finally:
                c.close()

    def close(self):
        self.sock.close()


# the guest tries the canary and the target's real portal port at 10.0.2.2, the address
# at which qemu's unrestricted user network would carry it to the host's loopback; a
# reachable one prints CANARY-REACHED or the target's answer and exits 0. (No probe of
# another address: without the restriction qemu would really connect to it.)
ISOLATION = r"""
step isolation
for hp in 10.0.2.2:$CANARY 10.0.2.2:$P1; do
  echo | timeout 5 nc ${hp%:*} ${hp#*:} > /tmp/nc.out 2>&1
  rc=$?; cat /tmp/nc.out
  grep -q CANARY-REACHED /tmp/nc.out && rc=0
  result reach_$(echo $hp | tr '.:' '__') $rc
done
"""


def check_isolation(r, canary, p1):
    """The guest reached none of the host's ports outside its forwards."""
    assert canary.accepted == 0, "the guest connected to a host port it has no forward to"
    for k in ("10_0_2_2_%d" % canary.port, "10_0_2_2_%d" % p1):
        assert r["reach_" + k] != "0", ("the guest reached %s outside its forwards" % k, r)


SINGLE = MAKE_PATTERN + ISOLATION + r"""
step login-open
login $IQN 1 10.0.2.100 3260 || fail "login to tpg1 (no CHAP) failed"
wait_disks 1 || fail "no disk after the login to tpg1"
D1=$(ls /sys/block | grep '^sd' | head -1)
result open_disk $D1
result open_sectors $(cat /sys/block/$D1/size)
result open_vendor "$(cat /sys/block/$D1/device/vendor)"
step io
dd if=/tmp/pat of=/dev/$D1 bs=65536 seek=16 conv=fsync 2>/tmp/dd.err || fail "dd write: $(cat /tmp/dd.err)"
echo 3 > /proc/sys/vm/drop_caches
dd if=/dev/$D1 of=/tmp/back bs=65536 skip=16 count=16 iflag=direct 2>/tmp/dd.err || fail "dd read: $(cat /tmp/dd.err)"
cmp /tmp/pat /tmp/back && result readback ok || fail "read back differs"
step login-chap-wrong
login $IQN 2 10.0.2.101 3260 $USER $WRONG > /tmp/l.out 2>&1
result chap_wrong_rc $?
tail -3 /tmp/l.out
result chap_wrong_disks $(ls /sys/block | grep -c '^sd')
step login-chap
login $IQN 2 10.0.2.101 3260 $USER $SECRET || fail "login to tpg2 with the right CHAP secret failed"
wait_disks 2 || fail "no second disk after the CHAP login"
for d in $(ls /sys/block | grep '^sd'); do
  [ $d = $D1 ] || { result chap_disk $d; result chap_sectors $(cat /sys/block/$d/size); }
done
"""


def test_single_path_login_chap_io(config, utarget, workdir, guest_cache):
    f0 = config.fileio("f0", size=64 * MiB)
    f1 = config.fileio("f1", size=32 * MiB)
    t = config.target(IQN)
    t.tpg(1).lun(0, f0)
    p2 = ut.free_port()
    tpg2 = t.tpg(2, portals=[("127.0.0.1", p2)], authentication=1)
    tpg2.lun(0, f1)
    d = utarget(config)
    rpc = RpcClient(d.sock).connect()
    rpc.call("tpg.set_auth", wwn=IQN, tag=2, userid=USER, password=SECRET)
    canary = Canary()
    script = ("IQN=%s; P1=%d; CANARY=%d; USER=%s; SECRET=%s; WRONG=%s\n" %
              (IQN, d.port, canary.port, USER, SECRET, WRONG)) + SINGLE
    g = LinuxGuest(workdir, script, cache_dir=guest_cache, initiator=GUEST,
                   forwards=[PORTAL1 + (d.port,), PORTAL2 + (p2,)]).run(240)
    canary.close()
    r = g.check()
    check_isolation(r, canary, d.port)
    # one session through the first forward; the refused and the accepted CHAP login are
    # two connections through the second
    assert len(g.forward_connects(d.port)) == 1, g.forward_connects()
    assert len(g.forward_connects(p2)) == 2, g.forward_connects()
    assert r["open_sectors"] == str(64 * MiB // 512), g.tail()
    assert r["open_vendor"].strip('"').strip() == "LIO-ORG", r
    assert r["readback"] == "ok"
    assert r["chap_wrong_rc"] != "0" and r["chap_wrong_disks"] == "1", g.tail()
    assert r["chap_sectors"] == str(32 * MiB // 512), g.tail()
    err = check_file(config.so(f0)["dev"], PAT_OFF, expected_pattern())
    assert err is None, err
    print("guest ran %.1f s" % g.elapsed)


MULTI = MAKE_PATTERN + ISOLATION + r"""
step multipathd
start_multipathd || { echo "@@EXIT 1"; poweroff -f; }
# iscsid, not iscsistart: the last phase takes A's session away and iscsid brings it back
start_iscsid || { echo "@@EXIT 1"; poweroff -f; }
step login
node_login $IQN 1 10.0.2.100 3260 || fail "login tpg1"
step login2
node_login $IQN 2 10.0.2.101 3260 || fail "login tpg2"
step disks
until_true 60 "two SCSI disks" '[ $(ls /sys/block | grep -c "^sd") -ge 2 ]'
for d in $(ls /sys/block | grep '^sd'); do
  sess=$(readlink -f /sys/block/$d/device | sed 's,.*/\(session[0-9]*\)/.*,\1,')
  tpgt=$(cat /sys/class/iscsi_session/$sess/tpgt)
  result disk_tpgt$tpgt $d
  eval DISK$tpgt=$d
  eval SESS$tpgt=$sess
done
DA=$DISK1; DB=$DISK2
# state NAME: multipathd's view of a path, "DMSTATE CHECKERSTATE PRIO" (active ready 50)
state() { multipathd show paths raw format "%d %t %T %p" | sed -n "s/^$1 //p"; }
# pg_of NAME: status (active / enabled) of the path group that holds the path
pg_of() {
  multipathd show topology | awk -v d=" $1 " '/prio=/ { st = $0; sub(/.*status=/, "", st);
    sub(/ .*/, "", st) } index($0, d) { print st; exit }'
}
# iocount NAME: read + write requests the disk completed (block layer counters: what dm
# sent down this path; multipathd's checker commands are passthrough, not counted)
iocount() { awk '{ print $1 + $5 }' /sys/block/$1/stat; }
access() { cat /sys/block/$1/device/access_state; }
until_true 60 "multipathd to put both paths into one map" \
  '[ "$(multipathd show maps raw format "%N")" = 2 ] && [ -n "$(state $DA)" ] && [ -n "$(state $DB)" ]'
step map
udevadm settle --timeout=30
for t in 1 2; do
  eval d=\$DISK$t
  result dh_tpgt$t $(cat /sys/block/$d/device/dh_state)
  result access_tpgt$t "$(access $d)"
  result serial_tpgt$t "$(udevadm info -q property -n /dev/$d | sed -n 's/^ID_SERIAL=//p')"
done
multipathd show topology
result maps "$(multipathd show maps raw format '%n' | wc -l)"
result map_paths "$(multipathd show maps raw format '%N')"
DM=/dev/$(ls /sys/block | grep '^dm-' | head -1)
[ "$DM" = /dev/ ] && { fail "multipathd made no map"; echo "@@EXIT 1"; poweroff -f; }
result dm $DM
""" + IO_LOOP_SH + r"""echo "0 0" > /tmp/io.count
step io
io_loop &
IO=$!
more_rounds 3 "three verified rounds through the map"
# (a group's status says "active" once dm has sent I/O to it)
result pgs_before "$(multipathd show topology | grep -o 'prio=[0-9]* status=[a-z]*' | tr ' ' ',' | tr '\n' ' ')"
result pg_a_before $(pg_of $DA)
result pg_b_before $(pg_of $DB)
result a_io_before $(iocount $DA)
result b_io_before $(iocount $DB)
# the host now makes A's group unavailable while the loop runs
step failover
# failed_over: A's port unavailable as the kernel sees it, multipathd's checker finds A's
# path down (not only dm's failed state: a TUR answered before the change can reinstate it
# for a moment), B's group carries the I/O; what it saw stays in AS / SA / PB
failed_over() {
  AS=$(access $DA); SA=$(state $DA); PB=$(pg_of $DB)
  [ "$AS" = unavailable ] && [ "${SA% *}" = "failed faulty" ] && [ "$PB" = active ]
}
until_true 90 "A's path to fail and B's group to take the I/O" failed_over
result access_a_failed "$AS"
result state_a_failed "$SA"
result pg_b_failed "$PB"
result access_b_failed "$(access $DB)"
result state_b_failed "$(state $DB)"
more_rounds 1 "a round after the failover"
A0=$(iocount $DA); B0=$(iocount $DB)
more_rounds 3 "three rounds through B alone"
result a_io_failed $(( $(iocount $DA) - A0 ))
result b_io_failed $(( $(iocount $DB) - B0 ))
multipathd show topology
# the host now makes A's group active/optimized again
step failed-over
# failed_back: A's port active/optimized again, multipathd's checker reinstated the path
# with its priority 50, and failed back to its group
failed_back() {
  AS=$(access $DA); SA=$(state $DA); PA=$(pg_of $DA)
  [ "$AS" = active/optimized ] && [ "$SA" = "active ready 50" ] && [ "$PA" = active ]
}
until_true 90 "multipathd to reinstate A's path and fail back to its group" failed_back
result access_a_back "$AS"
result state_a_back "$SA"
result pg_a_back "$PA"
result pg_b_back $(pg_of $DB)
more_rounds 1 "a round after the failback"
A0=$(iocount $DA); B0=$(iocount $DB)
more_rounds 3 "three rounds after the failback"
result a_io_back $(( $(iocount $DA) - A0 ))
result b_io_back $(( $(iocount $DB) - B0 ))
step failed-back
# the host now disables TPG 1: A's session ends, iscsid tries to log in again and again
# lost_a: A's session down, dm failed A's path (its commands failed after the 5 s
# replacement timeout), B's group carries the I/O
lost_a() {
  SS=$(cat /sys/class/iscsi_session/$SESS1/state); SA=$(state $DA); PB=$(pg_of $DB)
  [ "$SS" != LOGGED_IN ] && [ "${SA%% *}" = failed ] && [ "$PB" = active ]
}
until_true 90 "A's session to end and B's group to take the I/O" lost_a
result session_a_lost "$SS"
result state_a_lost "$SA"
result pg_b_lost "$PB"
more_rounds 1 "a round after A's session ended"
A0=$(iocount $DA); B0=$(iocount $DB)
more_rounds 3 "three rounds through B while A's portal is gone"
result a_io_lost $(( $(iocount $DA) - A0 ))
result b_io_lost $(( $(iocount $DB) - B0 ))
multipathd show topology
# the host now enables TPG 1 again: iscsid's next login gets through, the session (same
# device) comes back, multipathd reinstates the path and fails back to it
step portal-lost
reconnected() { SS=$(cat /sys/class/iscsi_session/$SESS1/state); [ "$SS" = LOGGED_IN ] && failed_back; }
until_true 120 "iscsid to re-establish A's session and multipathd to fail back" reconnected
result session_a_again "$SS"
result state_a_again "$SA"
result pg_a_again "$PA"
more_rounds 1 "a round after A came back"
A0=$(iocount $DA); B0=$(iocount $DB)
more_rounds 3 "three rounds after A came back"
result a_io_again $(( $(iocount $DA) - A0 ))
result b_io_again $(( $(iocount $DB) - B0 ))
step portal-back
touch /tmp/io.stop
wait $IO
result io_rounds $(rounds)
result io_errors $(cut -d' ' -f2 /tmp/io.count)
echo "rounds ended at (round@uptime): $(tr '\n' ' ' < /tmp/io.times)"
multipathd show topology
tail -8 /tmp/iscsid.log
grep -iE 'reinstat|fail|switch|checker|prio' /tmp/multipathd.log | grep -v 'checker timeout' | tail -25
dmesg | grep -iE 'alua|multipath|device-mapper' | tail -20
"""


def _tpg_octets(rpc, tag):
    """Data octets (received + sent) of the target's sessions through TPG `tag`."""
    st = rpc.call("stats.get")
    return sum(s["rx_data_octets"] + s["tx_data_octets"] for s in st["sessions"]
               if s["target"] == IQN and s["tpg"] == tag)


def test_multipath_alua_failover(config, utarget, workdir, guest_cache):
    f0 = config.fileio("f0", size=64 * MiB)
    t = config.target(IQN)
    t.tpg(1).lun(0, f0)
    p2 = ut.free_port()
    t.tpg(2, portals=[("127.0.0.1", p2)]).lun(0, f0)
    d = utarget(config)
    rpc = RpcClient(d.sock).connect()
    so = dict(plugin="fileio", name="f0")
    rpc.call("alua.create", group="grpA", tag=10, **so)
    rpc.call("alua.create", group="grpB", tag=20, **so)
    rpc.call("lun.set_alua", wwn=IQN, tag=1, lun=0, alua_tg_pt_gp_name="grpA")
    rpc.call("lun.set_alua", wwn=IQN, tag=2, lun=0, alua_tg_pt_gp_name="grpB")
    # implicit ALUA only: the target alone decides the states (scsi_dh_alua would
    # otherwise send SET TARGET PORT GROUPS to make the group it fails over to optimized)
    # B's nonop_delay_msecs 10 instead of LIO's 100: udev's probes of B's disk (blkid reads
    # many small blocks) and the rounds through B waited 100 ms per command, 10-15 s in all
    for grp, state in (("grpA", 0), ("grpB", 1)):
        rpc.call("alua.set_attributes", group=grp, attributes={
            "alua_access_type": 1, "alua_access_state": state, "nonop_delay_msecs": 10},
            **so)
    canary = Canary()
    script = "IQN=%s; P1=%d; CANARY=%d\n" % (IQN, d.port, canary.port) + MULTI
    g = LinuxGuest(workdir, script, cache_dir=guest_cache, initiator=GUEST,
                   forwards=[PORTAL1 + (d.port,), PORTAL2 + (p2,)]).start()
    try:
        assert g.wait_line("@@STEP failover", 180), "guest never got to I/O\n" + g.tail()
        # A's group becomes unavailable while the guest writes and reads through the map
        rpc.call("alua.set_attributes", group="grpA", attributes={"alua_access_state": 3},
                 **so)
        assert g.wait_line("@@STEP failed-over", 150), "no failover\n" + g.tail()
        a_failed = _tpg_octets(rpc, 1)
        rpc.call("alua.set_attributes", group="grpA", attributes={"alua_access_state": 0},
                 **so)
        assert g.wait_line("@@STEP failed-back", 150), "no failback\n" + g.tail()
        a_back = _tpg_octets(rpc, 1)
        # A's portal goes away under I/O: TPG 1 disabled, its session ends
        rpc.call("tpg.enable", wwn=IQN, tag=1, enable=False)
        assert g.wait_line("@@STEP portal-lost", 150), "A's loss not handled\n" + g.tail()
        connects_lost = len(g.forward_connects(d.port))
        rpc.call("tpg.enable", wwn=IQN, tag=1, enable=True)
        assert g.wait_line("@@STEP portal-back", 180), "A did not come back\n" + g.tail()
        g.wait(120)
    finally:
        g.kill()
        canary.close()
    r = g.check()
    check_isolation(r, canary, d.port)
    # one session per portal, each through its own forward, until A's portal went away;
    # then iscsid's logins again through the same forward, the last one accepted
    assert connects_lost >= 1 and len(g.forward_connects(p2)) == 1, g.forward_connects()
    assert len(g.forward_connects(d.port)) > connects_lost, g.forward_connects()
    assert r["dh_tpgt1"] == "alua" and r["dh_tpgt2"] == "alua", r
    assert r["access_tpgt1"] == "active/optimized", r
    assert r["access_tpgt2"] == "active/non-optimized", r
    # udev found the LU's NAA WWID on both paths (that is how multipathd pairs them)
    assert r["serial_tpgt1"].startswith("36001405") and \
        r["serial_tpgt1"] == r["serial_tpgt2"], r
    assert r["maps"] == "1" and r["map_paths"] == "2", r
    # one map, two path groups by ALUA priority: A's (prio 50) in use, B's (10) standing by
    assert r["pgs_before"].split() == ["prio=50,status=active", "prio=10,status=enabled"], r
    assert r["pg_a_before"] == "active" and r["pg_b_before"] == "enabled", r
    assert int(r["a_io_before"]) > 0, r
    # A unavailable under I/O: the kernel sees the state, multipathd fails the path, B's
    # group carries the I/O and A gets none
    assert r["access_a_failed"] == "unavailable", r
    assert r["access_b_failed"] == "active/non-optimized", r
    assert r["state_a_failed"].split()[:2] == ["failed", "faulty"], r
    assert r["state_b_failed"].split()[:2] == ["active", "ready"], r
    assert r["pg_b_failed"] == "active", r
    assert r["a_io_failed"] == "0" and int(r["b_io_failed"]) > 0, r
    # A back: multipathd reinstated it, failed back to its group, and the I/O is on A again
    assert r["access_a_back"] == "active/optimized", r
    assert r["state_a_back"].split() == ["active", "ready", "50"], r
    assert r["pg_a_back"] == "active" and r["pg_b_back"] == "enabled", r
    assert int(r["a_io_back"]) > 0 and r["b_io_back"] == "0", r
    # ... which the target saw too: TPG 1's session moved data after the failback
    assert a_back - a_failed >= 3 * PAT_LEN, (a_failed, a_back)
    # TPG 1 disabled under I/O: A's session ended, dm failed the path, B carried the I/O
    assert r["session_a_lost"] in ("FAILED", "FREE"), r
    assert r["state_a_lost"].split()[0] == "failed", r
    assert r["pg_b_lost"] == "active", r
    assert r["a_io_lost"] == "0" and int(r["b_io_lost"]) > 0, r
    # TPG 1 back: iscsid re-established the session, multipathd reinstated A, I/O on A
    assert r["session_a_again"] == "LOGGED_IN", r
    assert r["state_a_again"] == "active ready 50" and r["pg_a_again"] == "active", r
    assert int(r["a_io_again"]) > 0 and r["b_io_again"] == "0", r
    # no I/O error at any time, every round read back what it wrote
    assert r["io_errors"] == "0", g.tail()
    assert int(r["io_rounds"]) >= 19, r   # 3 + 4 x (1 + 3) the script waits for
    for k in range(8):   # the eight 1 MiB regions the loop wrote
        err = check_file(config.so(f0)["dev"], PAT_OFF + k * PAT_LEN, expected_pattern())
        assert err is None, err
    print("guest ran %.1f s" % g.elapsed)
