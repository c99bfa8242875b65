"""Issue 18: a gateway group's configuration lives in a RADOS object (docs/gateway-group.md).

Gateways are utargetd processes started with `-o group=rbd/OBJECT;conf=... -o gateway=NAME`
on their own loopback address (127.0.0.2, 127.0.0.3, ...) and one shared port, each with a
TPG of its own, exporting the same RBD image under one target IQN. Against the session's
throwaway Ceph cluster (the `ceph` fixture). Every test uses its own object and image.
"""

import json
import os
import socket
import subprocess
import threading
import time
import uuid

import pytest

import iscsiraw as raw
import uthelpers as ut
from rpcclient import RpcClient, RpcError
from uthelpers import MiB

IQN = "iqn.2003-01.org.linux-iscsi.test:group"
INI = "iqn.1994-05.com.example:group-client"


class Gateway(ut.Daemon):
    """A utargetd in a gateway group; ready when its control socket answers group.status
    (its portal, if any, is on its own address, not 127.0.0.1)."""

    def __init__(self, binary, workdir, ceph, obj, name, host, port, opts=""):
        cfg = ut.Config(port, workdir)
        super().__init__(binary, cfg, workdir, name=name, host=host)
        self.argv = [binary, "-c", self.cfg_path, "-s", self.sock, "-f",
                     "-o", "group=rbd/%s;conf=%s%s" % (obj, ceph.conf, opts), "-o", "gateway=" + name]

    def start(self, timeout=20.0):
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = ":".join(filter(None, [
            "detect_leaks=1", "abort_on_error=0", env.get("ASAN_OPTIONS", "")]))
        env["UBSAN_OPTIONS"] = ":".join(filter(None, [
            "print_stacktrace=1", env.get("UBSAN_OPTIONS", "")]))
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, cwd=self.workdir, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self.stopped = True
                raise AssertionError("gateway %s exited with %d\n%s"
                                     % (self.host, self.proc.returncode, self.stderr_tail()))
            try:
                with RpcClient(self.sock, connect_timeout=0.2) as c:
                    c.call("group.status")
                    return self
            except (OSError, RpcError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("gateway %s not ready within %.0f s\n%s"
                                     % (self.host, timeout, self.stderr_tail()))
            time.sleep(0.05)

    def rpc(self):
        return RpcClient(self.sock).connect()

    def call(self, method, **params):
        with RpcClient(self.sock) as c:
            return c.call(method, **params)


@pytest.fixture
def group(utargetd_bin, workdir, ceph):
    """group(name, host) -> a started Gateway of this test's group (its own object)."""
    obj = "gwgroup-" + uuid.uuid4().hex[:8]
    port = ut.free_port("127.0.0.2")
    started = []

    def start(name, host, opts=""):
        gw = Gateway(utargetd_bin, workdir, ceph, obj, name, host, port, opts)
        started.append(gw)
        return gw.start()
    start.obj = obj
    start.port = port
    start.gateways = started
    yield start
    for gw in started:
        gw.kill()
    subprocess.run(["rados", "-c", ceph.conf, "-p", "rbd", "rm", obj], capture_output=True,
                   timeout=60)


def stop_all(group):
    """Stop every gateway of the test and fail on an unclean exit or a sanitizer report."""
    for gw in group.gateways:
        gw.stop()


def document(ceph, obj):
    res = subprocess.run(["rados", "-c", ceph.conf, "-p", "rbd", "get", obj, "-"],
                         capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    x = subprocess.run(["rados", "-c", ceph.conf, "-p", "rbd", "getxattr", obj,
                        "utarget.version"], capture_output=True, text=True, timeout=60)
    assert x.returncode == 0, x.stderr
    assert int(x.stdout) == doc["gateway_group"]["version"], (x.stdout, doc["gateway_group"])
    return doc


def tpg_of(cfg, tag):
    for t in cfg["targets"]:
        if t["wwn"] == IQN:
            for tpg in t["tpgs"]:
                if tpg["tag"] == tag:
                    return tpg
    return None


def acls(cfg, tag):
    tpg = tpg_of(cfg, tag)
    return {a["node_wwn"] for a in tpg["node_acls"]} if tpg else set()


def wait_for(what, fn, timeout=10.0):
    """Poll fn until it returns a true value; returns (value, seconds it took)."""
    t0 = time.monotonic()
    while True:
        v = fn()
        if v:
            return v, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError("not within %.0f s: %s" % (timeout, what))
        time.sleep(0.02)


def image(ceph, size=32 * MiB):
    name = "gimg-" + uuid.uuid4().hex[:8]
    ceph.rbd("create", "--size", "%dM" % (size // MiB), "rbd/" + name)
    return name


def two_gateways(group, ceph, opts=""):
    """A (127.0.0.2, tpg1) and B (127.0.0.3, tpg2) exporting one image as LUN 0 of both
    TPGs. A makes the storage object, the target and its TPG; B its own TPG."""
    img = image(ceph)
    a = group("gw-a", "127.0.0.2", opts)
    b = group("gw-b", "127.0.0.3", opts)
    a.call("backstore.create", plugin="user:rbd", name="r0", cfgstring=ceph.cfgstring(img))
    a.call("target.create", wwn=IQN)
    for gw, other, tag in ((a, b, 1), (b, a, 2)):
        gw.call("tpg.create", wwn=IQN, tag=tag)
        gw.call("tpg.enable", wwn=IQN, tag=tag, enable=True)
        gw.call("tpg.set_attributes", wwn=IQN, tag=tag, attributes={"authentication": 0})
        gw.call("portal.create", wwn=IQN, tag=tag, ip_address=gw.host, port=group.port)
        gw.call("lun.create", wwn=IQN, tag=tag, storage_object="/backstores/user/r0", lun=0)
        wait_for("%s has tpg%d" % (other.host, tag),
                 lambda other=other, tag=tag: tpg_of(other.call("get_config"), tag))
    return a, b


def login(host, port, initiator=INI):
    c = raw.RawConn(host, port)
    c.login(target=IQN, initiator=initiator)
    for _ in range(4):      # the POWER ON unit attention out of the way
        p, _ = c.command(raw.TUR)
        if p is not None and p.status == 0:
            break
    return c


def write_read(c, lba, pattern):
    data = bytes([pattern]) * 4096
    p, _ = c.command(raw.write10(lba, 8), edtl=4096, write=True, data=data)
    assert p is not None and p.status == 0, p
    p, din = c.command(raw.read10(lba, 8), edtl=4096, read=True)
    assert p is not None and p.status == 0 and din == data, p


def read_back(c, lba, pattern):
    p, din = c.command(raw.read10(lba, 8), edtl=4096, read=True)
    assert p is not None and p.status == 0, p
    assert din == bytes([pattern]) * 4096


def rtpg_ports(c):
    """REPORT TARGET PORT GROUPS: {group id: sorted relative target port ids}."""
    cdb = bytes([0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0])
    p, din = c.command(cdb, edtl=4096, read=True)
    assert p is not None and p.status == 0, p
    n = int.from_bytes(din[0:4], "big") + 4
    out, off = {}, 4
    while off < n:
        gid, cnt = int.from_bytes(din[off + 2:off + 4], "big"), din[off + 7]
        out[gid] = sorted(int.from_bytes(din[off + 8 + 4 * i + 2:off + 8 + 4 * i + 4], "big")
                          for i in range(cnt))
        off += 8 + 4 * cnt
    return out


def send_targets(host, port, initiator=INI):
    """TargetAddress values of a SendTargets=All (each one, in order)."""
    c = raw.RawConn(host, port)
    with c:
        c.login(target="", initiator=initiator, discovery=True)
        itt = c.next_itt()
        c.send(raw.bhs(raw.OP_TEXT | raw.IMMEDIATE, 0x80, raw.text([("SendTargets", "All")]),
                       itt=itt, f20=raw.RSVD_TAG, f24=c.cmdsn, f28=c.expstatsn))
        _, r = c.recv_until(raw.OP_TEXT_RSP)
        assert r is not None
        pairs = [kv.split("=", 1) for kv in r.data.decode().split("\0") if kv]
        return [v for k, v in pairs if k == "TargetAddress"]


def test_change_on_a_is_live_on_b_within_a_second(group, ceph, workdir):
    """A new LUN and a new ACL with a mapped LUN made through gateway A, in B's TPG, are in
    B's running configuration within a second; B's initiator logs in with the new ACL's
    name and does I/O through B's portal; data written through B reads back through A
    (with an ACL made through B in A's TPG). The document and both local copies agree."""
    a, b = two_gateways(group, ceph)
    port = group.port
    img2 = image(ceph, 16 * MiB)
    # nobody is let in to B's TPG before the ACL exists (no generate_node_acls)
    with pytest.raises(AssertionError):
        login("127.0.0.3", port)
    t0 = time.monotonic()
    a.call("backstore.create", plugin="user:rbd", name="r1", cfgstring=ceph.cfgstring(img2))
    a.call("lun.create", wwn=IQN, tag=2, storage_object="/backstores/user/r1", lun=1)
    a.call("acl.create", wwn=IQN, tag=2, node_wwn=INI)
    made = time.monotonic() - t0

    def b_has_it():
        tpg = tpg_of(b.call("get_config"), 2)
        return tpg and any(a_["node_wwn"] == INI and len(a_["mapped_luns"]) == 2
                           for a_ in tpg["node_acls"])
    _, took = wait_for("B applies A's LUN and ACL", b_has_it)
    assert took < 1.0, "B took %.2f s after A's last change (changes took %.2f s)" % (took, made)
    print("B applied A's changes %.3f s after the last one" % took)

    c = login("127.0.0.3", port)
    with c:
        write_read(c, 100, 0x5a)
        p, din = c.command(bytes([0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0]),
                           edtl=64, read=True)   # REPORT LUNS: 0 and 1
        assert p.status == 0 and len(din) >= 24 and din[3] == 16, din
    # through A: an ACL made on B in A's TPG
    b.call("acl.create", wwn=IQN, tag=1, node_wwn=INI)
    wait_for("A applies B's ACL", lambda: INI in acls(a.call("get_config"), 1))
    c = login("127.0.0.2", port)
    with c:
        read_back(c, 100, 0x5a)
        via_a = rtpg_ports(c)
    # both gateways' ports, with the same relative port ids, in the LU's ALUA group
    with login("127.0.0.3", port) as c:
        via_b = rtpg_ports(c)
    assert via_a == via_b and sorted(sum(via_a.values(), [])) == [1, 2], (via_a, via_b)

    # SendTargets on either gateway lists both gateways' portals with their tags
    want = ["127.0.0.2:%d,1" % port, "127.0.0.3:%d,2" % port]
    assert send_targets("127.0.0.3", port) == want
    assert send_targets("127.0.0.2", port) == want

    doc = document(ceph, group.obj)
    assert INI in acls(doc, 1) and INI in acls(doc, 2)
    assert doc["gateway_group"]["gateways"] == {
        "gw-a": {"tpgs": [{"wwn": IQN, "tag": 1}]},
        "gw-b": {"tpgs": [{"wwn": IQN, "tag": 2}]}}
    for gw in (a, b):
        st = gw.call("group.status")
        assert st["version"] == doc["gateway_group"]["version"], st
        assert st["watching"], st
        # the local copy (-c FILE) is the configuration it runs
        local = json.load(open(gw.cfg_path))
        assert local["targets"] == doc["targets"], gw.host
    assert [t["tag"] for t in a.call("group.status")["local_tpgs"]] == [1]
    assert [t["tag"] for t in b.call("group.status")["local_tpgs"]] == [2]
    stop_all(group)


def listens(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def test_remote_tpg_binds_no_portal(group, ceph):
    """B keeps A's TPG (its portal, LUN, ACLs) but listens only on its own address: once
    A is stopped, A's portal refuses connections while B's serves; the document still has
    A's TPG on B. A restarted serves it again with the group's current state."""
    a, b = two_gateways(group, ceph)
    port = group.port
    b.call("acl.create", wwn=IQN, tag=2, node_wwn=INI)
    assert listens("127.0.0.2", port) and listens("127.0.0.3", port)
    st = b.call("group.status")
    assert [(t["tag"], t["gateway"]) for t in st["remote_tpgs"]] == [(1, "gw-a")], st
    a.stop()
    assert not listens("127.0.0.2", port), "someone (B?) listens on A's portal"
    assert listens("127.0.0.3", port)
    tpg1 = tpg_of(b.call("get_config"), 1)
    assert tpg1["enable"] and [p["ip_address"] for p in tpg1["portals"]] == ["127.0.0.2"]
    # a change while A is down; A restarted takes the current document, not its old file
    b.call("acl.create", wwn=IQN, tag=1, node_wwn=INI)
    a2 = group("gw-a", "127.0.0.2")
    assert INI in acls(a2.call("get_config"), 1)
    wait_for("A listens again", lambda: listens("127.0.0.2", port))
    with login("127.0.0.2", port) as c:
        write_read(c, 8, 0x11)
    with login("127.0.0.3", port) as c:
        read_back(c, 8, 0x11)
    stop_all(group)


def test_concurrent_changes_from_two_gateways_are_all_kept(group, ceph):
    """20 ACL creates through A and 20 through B, in parallel, all in A's TPG: every one
    is in both gateways' configuration and in the document (the change lock makes
    them one at a time; neither gateway starves the other)."""
    a, b = two_gateways(group, ceph)
    names = {gw: ["iqn.1994-05.com.example:%s-%02d" % (gw.host, i) for i in range(20)]
             for gw in (a, b)}
    errors = []

    def run(gw):
        try:
            with gw.rpc() as c:
                for n in names[gw]:
                    c.call("acl.create", wwn=IQN, tag=1, node_wwn=n)
        except Exception as e:      # reported below, with the daemon's log
            errors.append((gw.host, repr(e)))
    threads = [threading.Thread(target=run, args=(gw,)) for gw in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, (errors, a.stderr_tail(), b.stderr_tail())
    want = set(names[a]) | set(names[b])
    assert len(want) == 40
    for gw in (a, b):
        wait_for("%s has all 40 ACLs" % gw.host,
                 lambda gw=gw: acls(gw.call("get_config"), 1) == want)
    assert acls(document(ceph, group.obj), 1) == want
    sa, sb = a.call("group.status"), b.call("group.status")
    assert sa["version"] == sb["version"] and sa["written"] + sb["written"] >= 40 + 6
    print("waits for the change lock: A %d, B %d" % (sa["lock_waits"], sb["lock_waits"]))
    # the change lock serialises the changes: no compare-and-swap race is lost
    # (before it, a gateway changing continuously could starve the other)
    assert sa["conflicts"] == sb["conflicts"] == 0, (sa, sb)
    stop_all(group)


def test_change_lock_left_by_a_dead_gateway_expires(group, ceph):
    """A change lock taken by a client that then goes away (a gateway killed inside a
    change) holds a change only until its duration runs out: the change waits, then is
    made, on both gateways."""
    a, b = two_gateways(group, ceph)
    res = subprocess.run(["rados", "-c", ceph.conf, "-p", "rbd", "lock", "get", group.obj,
                          "utarget.change", "--lock-cookie", "dead-gateway",
                          "--lock-duration", "3"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    t0 = time.monotonic()
    a.call("acl.create", wwn=IQN, tag=1, node_wwn=INI)
    waited = time.monotonic() - t0
    # it waited for the lock (counted), and not the whole 20 s a live holder would cost
    assert a.call("group.status")["lock_waits"] == 1
    assert waited < 15, waited
    wait_for("B has the ACL", lambda: INI in acls(b.call("get_config"), 1))
    assert INI in acls(document(ceph, group.obj), 1)
    # released after the change: the next one does not wait
    b.call("acl.create", wwn=IQN, tag=2, node_wwn=INI)
    assert b.call("group.status")["lock_waits"] == 0
    stop_all(group)


def test_third_gateway_gets_current_state_and_joins(group, ceph):
    """A gateway started later applies the group's current state (same TPGs in the same
    order, so the same relative port ids); its own TPG and an ACL made through it reach the
    others."""
    a, b = two_gateways(group, ceph)
    a.call("acl.create", wwn=IQN, tag=2, node_wwn=INI)
    c = group("gw-c", "127.0.0.4")
    ca, cc = a.call("get_config"), c.call("get_config")
    assert cc["targets"] == ca["targets"] and cc["storage_objects"] == ca["storage_objects"]
    assert c.call("group.status")["version"] == a.call("group.status")["version"]
    c.call("tpg.create", wwn=IQN, tag=3)
    c.call("tpg.enable", wwn=IQN, tag=3, enable=True)
    c.call("tpg.set_attributes", wwn=IQN, tag=3, attributes={"authentication": 0})
    c.call("portal.create", wwn=IQN, tag=3, ip_address="127.0.0.4", port=group.port)
    c.call("lun.create", wwn=IQN, tag=3, storage_object="/backstores/user/r0", lun=0)
    c.call("acl.create", wwn=IQN, tag=3, node_wwn=INI)
    for gw in (a, b):
        wait_for("%s has tpg3's ACL" % gw.host, lambda gw=gw: INI in acls(gw.call("get_config"), 3))
    with login("127.0.0.4", group.port) as conn:
        write_read(conn, 16, 0x33)
    with login("127.0.0.3", group.port) as conn:
        read_back(conn, 16, 0x33)
    assert document(ceph, group.obj)["gateway_group"]["gateways"]["gw-c"] == \
        {"tpgs": [{"wwn": IQN, "tag": 3}]}
    stop_all(group)


def test_refused_change_is_not_written(group, ceph):
    """Changes the gateway refuses (no such storage object, a bad initiator name, a
    portal its own TPG cannot listen on) change neither the document nor any gateway."""
    a, b = two_gateways(group, ceph)
    before = document(ceph, group.obj)
    va, vb = a.call("group.status")["version"], b.call("group.status")["version"]
    assert va == vb == before["gateway_group"]["version"]
    with pytest.raises(RpcError):
        a.call("lun.create", wwn=IQN, tag=1, storage_object="/backstores/user/nosuch", lun=5)
    with pytest.raises(RpcError):
        b.call("acl.create", wwn=IQN, tag=2, node_wwn="not an iqn")
    # B's address:port is B's listener: A's own TPG cannot have it
    with pytest.raises(RpcError):
        a.call("portal.create", wwn=IQN, tag=1, ip_address="127.0.0.3", port=group.port)
    with pytest.raises(RpcError):
        b.call("tpg.create", wwn=IQN, tag=1)    # exists
    assert document(ceph, group.obj) == before
    for gw in (a, b):
        st = gw.call("group.status")
        assert st["version"] == va and st["written"] >= 1, st
        cfg = gw.call("get_config")
        assert cfg["targets"] == before["targets"], gw.host
    stop_all(group)


def test_cluster_away_changes_refused_then_resume(group, ceph):
    """With the OSD down a change is refused (and not made: the group's document cannot
    be read or written), while reads and the portals keep being served at once (the
    periodic version check does not block the control loop). With the OSD back, changes
    go through again and reach the other gateway."""
    a, b = two_gateways(group, ceph, opts=";timeout=3")
    b.call("acl.create", wwn=IQN, tag=2, node_wwn=INI)
    wait_for("A has the ACL", lambda: INI in acls(a.call("get_config"), 2))
    before = a.call("get_config")
    ceph.stop_osd()
    try:
        t0 = time.monotonic()
        with pytest.raises(RpcError) as ei:
            a.call("acl.create", wwn=IQN, tag=1, node_wwn=INI)
        took = time.monotonic() - t0
        assert "gateway group" in ei.value.message and "nothing changed" in \
            ei.value.message or "not made" in ei.value.message, ei.value.message
        assert took < 10, took
        assert a.call("get_config")["targets"] == before["targets"]
        # the loop is not held up by the periodic check: reads answer at once, and
        # B's initiator still logs in and reads (its backstore's I/O needs no OSD for a
        # login + TEST UNIT READY)
        deadline = time.monotonic() + 3.5   # several periodic checks meet the OSD down
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            b.call("group.status")
            assert time.monotonic() - t0 < 1.0, "B's control loop was held up"
        with login("127.0.0.3", group.port) as c:
            p, _ = c.command(raw.TUR)
            assert p is not None
    finally:
        ceph.start_osd()
    # back: the same change now goes through and reaches B
    def retry():
        try:
            a.call("acl.create", wwn=IQN, tag=1, node_wwn=INI)
            return True
        except RpcError:
            return False
    wait_for("a change goes through with the OSD back", retry, timeout=60)
    wait_for("B has it", lambda: INI in acls(b.call("get_config"), 1))
    stop_all(group)


def _states(c):
    """{group id: access state} of the groups that have ports (REPORT TARGET PORT GROUPS)."""
    cdb = bytes([0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0])
    for _ in range(4):
        p, din = c.command(cdb, edtl=4096, read=True)
        if p is not None and p.status == 0:
            break
    assert p is not None and p.status == 0, p
    n, off, out = int.from_bytes(din[0:4], "big") + 4, 4, {}
    while off < n:
        gid, cnt = int.from_bytes(din[off + 2:off + 4], "big"), din[off + 7]
        if cnt:
            out[gid] = din[off] & 0x0f
        off += 8 + 4 * cnt
    return out


def test_ha_object_in_a_group_is_not_recreated_by_changes(group, ceph):
    """A group exporting an ha=1 image (docs/rbd.md "HA gateways"): the lock owner's
    derived states differ from the others' view for a moment after every change of
    owner, and they must not make applying another gateway's document re-create the
    storage object (that would close the image and drop the lock). Changes made through
    the standby gateway leave the owner's lock and states alone; after the owner is
    killed the survivor takes over and changes still go through it."""
    img = image(ceph)
    a = group("gw-a", "127.0.0.2")
    b = group("gw-b", "127.0.0.3")
    a.call("backstore.create", plugin="user:rbd", name="r0",
           cfgstring=ceph.cfgstring(img, ha=1))
    for gid in (1, 2):
        a.call("alua.create", plugin="user:rbd", name="r0", group="gw%d" % gid, tag=gid)
    a.call("target.create", wwn=IQN)
    for gw, tag, host in ((a, 1, "127.0.0.2"), (b, 2, "127.0.0.3")):
        wait_for("tpg%d's gateway has the target" % tag,
                 lambda: any(t["wwn"] == IQN for t in gw.call("get_config")["targets"]))
        gw.call("tpg.create", wwn=IQN, tag=tag)
        gw.call("tpg.set_attributes", wwn=IQN, tag=tag,
                attributes={"authentication": 0, "generate_node_acls": 1,
                            "demo_mode_write_protect": 0})
        gw.call("portal.create", wwn=IQN, tag=tag, ip_address=host, port=group.port)
        gw.call("lun.create", wwn=IQN, tag=tag, storage_object="/backstores/user/r0", lun=0)
        gw.call("lun.set_alua", wwn=IQN, tag=tag, lun=0, alua_tg_pt_gp_name="gw%d" % tag)
        gw.call("tpg.enable", wwn=IQN, tag=tag, enable=True)
    ca = login("127.0.0.2", group.port)
    cb = login("127.0.0.3", group.port)
    wait_for("A optimized, B standby", lambda: _states(ca) == {1: 0, 2: 2} and
             _states(cb) == {1: 0, 2: 2}, timeout=20)
    with open(a.stderr_path, "rb") as f:
        took = f.read().count(b"owns the image's lock")
    assert took == 1, took
    # changes through the standby gateway: applied on A without touching the object
    for i in range(5):
        b.call("acl.create", wwn=IQN, tag=1, node_wwn="iqn.1994-05.com.example:n%d" % i)
    wait_for("A has B's ACLs", lambda: len(acls(a.call("get_config"), 1)) == 5)
    assert _states(ca) == {1: 0, 2: 2} and _states(cb) == {1: 0, 2: 2}
    write_read(ca, 8, 0x5a)
    with open(a.stderr_path, "rb") as f:
        assert f.read().count(b"owns the image's lock") == 1, "A re-took the lock"
    # the owner dies: B takes over, and the group goes on changing through B
    ca.close()
    a.kill()
    wait_for("B optimized", lambda: _states(cb) == {2: 0, 1: 2}, timeout=20)
    read_back(cb, 8, 0x5a)
    b.call("acl.create", wwn=IQN, tag=2, node_wwn="iqn.1994-05.com.example:after")
    assert _states(cb) == {2: 0, 1: 2}
    write_read(cb, 16, 0x6b)
    doc = document(ceph, group.obj)
    so = [s for s in doc["storage_objects"] if s["name"] == "r0"][0]
    assert all(t["alua_access_state"] == 0 for t in so["alua_tpgs"]), so["alua_tpgs"]
    cb.close()
