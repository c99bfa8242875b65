"""The real Linux kernel iSCSI initiator (iscsi_tcp through iscsistart) in a qemu guest
against utargetd on the host (docs/testing-guest.md), and ALUA with dm-multipath
(issue 17): scsi_dh_alua, multipath's alua prioritizer, failover when the host changes
the groups' access states under running I/O.

The guest's network is restricted to forwards of the target's loopback portals: it logs in
to 10.0.2.100:3260 (TPG 1) and 10.0.2.101:3260 (TPG 2), which qemu carries to the host's
127.0.0.1 ports of the TPGs (explicit portals: the target's SendTargets would say 127.0.0.1).
Each test also checks that nothing else on the host is reachable from the guest.
"""

import os
import socket
import threading
import time

import pytest

import uthelpers as ut
from guest import LinuxGuest
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


MULTI = MAKE_PATTERN + r"""
export DM_DISABLE_UDEV=1
step login
login $IQN 1 10.0.2.100 3260 || fail "login tpg1"
login $IQN 2 10.0.2.101 3260 || fail "login tpg2"
wait_disks 2 || fail "two disks did not appear"
sleep 1
for d in $(ls /sys/block | grep '^sd'); do
  sess=$(readlink -f /sys/block/$d/device | sed 's,.*/\(session[0-9]*\)/.*,\1,')
  tpgt=$(cat /sys/class/iscsi_session/$sess/tpgt)
  result disk_tpgt${tpgt} $d
  [ "$tpgt" = 1 ] && DISK1=$d
  result dh_tpgt${tpgt} $(cat /sys/block/$d/device/dh_state)
  result access_tpgt${tpgt} "$(cat /sys/block/$d/device/access_state)"
done
step multipath
# no udevd in the guest: multipath enumerates only devices udev "initialized", so write
# the udev database entries it reads (ID_SERIAL = the NAA WWID with its type digit 3)
mkdir -p /run/udev/data
for d in $(ls /sys/block | grep '^sd'); do
  w=$(sed 's/^naa\./3/' /sys/block/$d/device/wwid)
  printf 'I:1000000\nE:ID_SERIAL=%s\nE:ID_WWN=%s\nE:DEVTYPE=disk\n' $w $w > /run/udev/data/b$(cat /sys/block/$d/dev)
done
multipath -v2 > /tmp/mp.out 2>&1 || { cat /tmp/mp.out; fail "multipath -v2"; }
cat /tmp/mp.out
multipath -ll > /tmp/ll.out
cat /tmp/ll.out
result pgs_before "$(grep -o 'prio=[0-9]* status=[a-z]*' /tmp/ll.out | tr ' ' ',' | tr '\n' ' ')"
result maps $(dmsetup ls --target multipath | grep -vc 'No devices')
DM=/dev/$(ls /sys/block | grep '^dm-' | head -1)
result dm $DM
result table_before "$(dmsetup table | tr ' ' '_')"
dmsetup status
[ "$DM" = /dev/ ] && { fail "multipath made no map"; IOSECS=0; }
# io_loop SECS PREFIX: write, read back and compare 1 MiB regions through the map for SECS
io_loop() {
  i=0; errs=0; late=0
  start=$(cut -d. -f1 /proc/uptime)
  end=$(( start + $1 ))
  while [ $(cut -d. -f1 /proc/uptime) -lt $end ]; do
    # rounds in the second half run after the host's change (made at 6 s)
    [ $(cut -d. -f1 /proc/uptime) -ge $(( start + $1 / 2 )) ] && late=$((late+1))
    seek=$(( (i % 8) * 16 + 16 ))
    dd if=/tmp/pat of=$DM bs=65536 seek=$seek oflag=direct conv=fsync 2>/tmp/dd.err || { errs=$((errs+1)); cat /tmp/dd.err; }
    dd if=$DM of=/tmp/back bs=65536 skip=$seek count=16 iflag=direct 2>/tmp/dd.err || { errs=$((errs+1)); cat /tmp/dd.err; }
    cmp -s /tmp/pat /tmp/back || { errs=$((errs+1)); echo "mismatch at round $i"; }
    i=$((i+1))
  done
  result ${2}rounds $i
  result ${2}late_rounds $late
  result ${2}errors $errs
}
step io
io_loop $IOSECS io_
step after
multipath -ll > /tmp/ll.out
cat /tmp/ll.out
result pgs_after "$(grep -o 'prio=[0-9]* status=[a-z]*' /tmp/ll.out | tr ' ' ',' | tr '\n' ' ')"
dmsetup status
result status_after "$(dmsetup status | tr ' ' '_')"
for d in $(ls /sys/block | grep '^sd'); do
  sess=$(readlink -f /sys/block/$d/device | sed 's,.*/\(session[0-9]*\)/.*,\1,')
  tpgt=$(cat /sys/class/iscsi_session/$sess/tpgt)
  result access_after_tpgt${tpgt} "$(cat /sys/block/$d/device/access_state)"
done
# phase 2: the host makes A active/optimized again; the guest reinstates A's path in
# the map (multipathd's job, not run here), then the host disables tpg2: B's session
# ends and I/O goes on through A
step phase2
sleep 3
MAP=$(dmsetup ls --target multipath | cut -f1)
dmsetup message $MAP 0 reinstate_path $(cat /sys/block/$(echo $DISK1)/dev) || fail "reinstate_path"
dmsetup status
step io2
io_loop $IOSECS io2_
multipath -ll
result status_end "$(dmsetup status | tr ' ' '_')"
dmesg | grep -iE 'alua|multipath|device-mapper|connection|session' | tail -30
"""


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
    rpc.call("alua.set_attributes", group="grpA", attributes={"alua_access_state": 0}, **so)
    rpc.call("alua.set_attributes", group="grpB", attributes={"alua_access_state": 1}, **so)
    iosecs = 20
    script = "IQN=%s; P1=%d; P2=%d; IOSECS=%d\n" % (IQN, d.port, p2, iosecs) + MULTI
    g = LinuxGuest(workdir, script, cache_dir=guest_cache, initiator=GUEST,
                   forwards=[PORTAL1 + (d.port,), PORTAL2 + (p2,)]).start()
    try:
        assert g.wait_line("@@STEP io", 180), g.tail()
        time.sleep(6)
        # A goes standby, B becomes active/optimized, while the guest writes and reads
        rpc.call("alua.set_attributes", group="grpA", attributes={"alua_access_state": 2},
                 **so)
        rpc.call("alua.set_attributes", group="grpB", attributes={"alua_access_state": 0},
                 **so)
        assert g.wait_line("@@STEP phase2", 180), g.tail()
        rpc.call("alua.set_attributes", group="grpA", attributes={"alua_access_state": 0},
                 **so)
        assert g.wait_line("@@STEP io2", 60), g.tail()
        time.sleep(6)
        rpc.call("tpg.enable", wwn=IQN, tag=2, enable=False)   # path B goes away
        g.wait(240)
    finally:
        g.kill()
    r = g.check()
    assert r["dh_tpgt1"] == "alua" and r["dh_tpgt2"] == "alua", r
    assert r["access_tpgt1"].strip('"') == "active/optimized", r
    assert r["access_tpgt2"].strip('"') == "active/non-optimized", r
    assert r["maps"] == "1", g.tail()
    # one map, two path groups by ALUA priority: A (sda, prio 50) first, B (prio 10)
    assert r["pgs_before"].split() == ["prio=50,status=enabled", "prio=10,status=enabled"], r
    table = r["table_before"].split("_")
    assert "alua" in table, table
    assert r["io_errors"] == "0", g.tail()
    assert int(r["io_rounds"]) > 3 and int(r["io_late_rounds"]) > 2, r
    # after the switch: B's group (prio 50 now) is the active one, A's path failed
    # (standby, "ghost"; no multipathd in the guest to reinstate it)
    assert r["pgs_after"].split()[1] == "prio=50,status=active", r
    st = r["status_after"].split("_")
    maj_a = st.index("8:0") if "8:0" in st else None
    assert maj_a is not None and st[maj_a + 1] == "F", st
    assert st[st.index("8:16") + 1] == "A", st
    assert r["access_after_tpgt1"].strip('"') == "standby", r
    assert r["access_after_tpgt2"].strip('"') == "active/optimized", r
    # phase 2: B's TPG disabled under I/O, A carries on
    assert r["io2_errors"] == "0", g.tail()
    assert int(r["io2_late_rounds"]) > 2, r
    st = r["status_end"].split("_")
    assert st[st.index("8:0") + 1] == "A" and st[st.index("8:16") + 1] == "F", st
    for k in range(8):   # the eight 1 MiB regions the loops wrote
        err = check_file(config.so(f0)["dev"], PAT_OFF + k * PAT_LEN, expected_pattern())
        assert err is None, err
    print("guest ran %.1f s" % g.elapsed)
