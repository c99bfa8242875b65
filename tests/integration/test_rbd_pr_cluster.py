"""Issue 18, persistent reservations across a gateway group: two utargetd (gateway A: TPG 1
on 127.0.0.2, gateway B: TPG 2 on 127.0.0.3) export one RBD image under one target IQN
with cfgstring `;pr=cluster`, so the SPC-4 5.12 state lives in the RADOS object
utarget.pr.<image id> (src/backstore/rbd_pr.c, docs/rbd.md "Persistent reservations
across gateways"). A registration or reservation made through one gateway is enforced
through the other, outlives the gateway that took it, and concurrent updates through both
lose nothing (compare-and-swap on the object's version)."""

import os
import signal
import struct
import threading
import time
import uuid

import iscsiraw as raw
import uthelpers as ut
from uthelpers import MiB

IQN = "iqn.2003-01.org.linux-iscsi.test:hapr"
I1 = "iqn.1994-05.com.example:node1"
I2 = "iqn.1994-05.com.example:node2"
LEASE = 5          # pr_lease: seconds a gateway serves its copy without the OSD
PR_TIMEOUT = 40    # a PR OUT may wait for a dead gateway's watch + one lease
WE = 0x01          # WRITE EXCLUSIVE


def _image(ceph, size=32 * MiB):
    name = "pr-" + uuid.uuid4().hex[:8]
    ceph.rbd("create", "--size", "%dM" % (size // MiB), "rbd/" + name)
    return name


class Gateway:
    def __init__(self, utarget, workdir, ceph, image, wwn, tag, ip, name):
        self.utarget, self.tag, self.ip, self.name = utarget, tag, ip, name
        self.cfg = ut.Config(ut.free_port(ip), workdir)
        so = self.cfg.rbd("r0", ceph.cfgstring(image, pr="cluster", pr_lease=LEASE), wwn=wwn)
        self.cfg.target(IQN).tpg(tag, portals=[(ip, self.cfg.port)]).lun(0, so)
        self.d = None
        self.n = 0

    def start(self):
        self.n += 1
        self.d = self.utarget(self.cfg, name="%s-%d" % (self.name, self.n), host=self.ip,
                              timeout=30)
        return self

    def conn(self, initiator, isid):
        c = raw.RawConn(self.ip, self.cfg.port, isid=isid)
        c.login(target=IQN, initiator=initiator)
        for _ in range(4):   # the POWER ON unit attention of a new nexus
            p, _ = c.command(bytes(6))
            if p is not None and p.status == 0:
                break
        return c


def _gateways(utarget, workdir, ceph, image):
    wwn = str(uuid.uuid4())   # the same LU on both (test_rbd covers the image identity)
    a = Gateway(utarget, workdir, ceph, image, wwn, 1, "127.0.0.2", "gwA").start()
    b = Gateway(utarget, workdir, ceph, image, wwn, 2, "127.0.0.3", "gwB").start()
    return a, b


def _sense(p):
    n = struct.unpack(">H", p.data[:2])[0]
    s = p.data[2:2 + n]
    return s[2] & 0xf, s[12], s[13]


def _prout(c, sa, key=0, sakey=0, typ=0, all_tg_pt=False, timeout=PR_TIMEOUT):
    data = struct.pack(">QQI", key, sakey, 0) + bytes([0x04 if all_tg_pt else 0, 0, 0, 0])
    cdb = bytes([0x5f, sa, typ, 0, 0]) + struct.pack(">I", len(data)) + bytes(1)
    p, _ = c.command(cdb, edtl=len(data), write=True, data=data, timeout=timeout)
    assert p is not None, "no response to PERSISTENT RESERVE OUT"
    return p


def _prin(c, sa, n=4096):
    p, d = c.command(bytes([0x5e, sa, 0, 0, 0, 0, 0]) + struct.pack(">H", n) + bytes(1),
                     edtl=n, read=True)
    assert p is not None and p.status == 0, _sense(p) if p is not None else "no response"
    return d


def _read_keys(c):
    d = _prin(c, 0)
    gen, n = struct.unpack(">II", d[:8])
    return gen, sorted(struct.unpack(">Q", d[8 + 8 * i:16 + 8 * i])[0] for i in range(n // 8))


def _read_resv(c):
    """(key, type) of the persistent reservation, None when there is none."""
    d = _prin(c, 1)
    if struct.unpack(">I", d[4:8])[0] == 0:
        return None
    return struct.unpack(">Q", d[8:16])[0], d[21] & 0x0f


def _full_status(c):
    """READ FULL STATUS: sorted [(key, holder, transport id name)]."""
    d = _prin(c, 3)
    n = struct.unpack(">I", d[4:8])[0]
    out, off = [], 8
    while off < 8 + n:
        key = struct.unpack(">Q", d[off:off + 8])[0]
        tlen = struct.unpack(">I", d[off + 20:off + 24])[0]
        tid = d[off + 24:off + 24 + tlen]
        name = tid[4:4 + struct.unpack(">H", tid[2:4])[0]].split(b"\0")[0].decode()
        out.append((key, bool(d[off + 12] & 1), name))
        off += 24 + tlen
    return sorted(out)


def _write(c):
    p, _ = c.command(bytes([0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0]), edtl=512, write=True,
                     data=b"\x5a" * 512, timeout=30)
    assert p is not None
    return p


def _read(c):
    p, _ = c.command(bytes([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]), edtl=512, read=True,
                     timeout=30)
    assert p is not None
    return p


def _iport(name, isid):
    return name + ",i,0x" + "".join("%02x" % x for x in isid)


ISID1 = [0x80, 0, 0, 0, 0, 0x01]
ISID2 = [0x80, 0, 0, 0, 0, 0x02]


def test_reservation_enforced_across_gateways_survives_kill_and_preempt(
        utarget, workdir, ceph):
    image = _image(ceph)
    a, b = _gateways(utarget, workdir, ceph, image)
    i1a = a.conn(I1, ISID1)
    i2b = b.conn(I2, ISID2)
    i1b = b.conn(I1, ISID1)   # the same initiator port through the other gateway's port

    # I1 registers and reserves WRITE EXCLUSIVE through A
    assert _prout(i1a, 0, sakey=0xA1).status == 0
    assert _prout(i1a, 1, key=0xA1, typ=WE).status == 0
    # through B: a WRITE from I2 conflicts, a READ does not (SPC-4 5.12.1 table)
    assert _write(i2b).status == 0x18, "no RESERVATION CONFLICT through gateway B"
    assert _read(i2b).status == 0
    # I1's registration is for A's target port only (ALL_TG_PT=0): I1 through B's port
    # is another I_T nexus, not registered, so it conflicts too
    assert _write(i1b).status == 0x18
    assert _write(i1a).status == 0
    # PR IN through B shows A's registration and reservation, with A's generation
    gen_a, keys_a = _read_keys(i1a)
    assert _read_keys(i2b) == (gen_a, [0xA1]) and keys_a == [0xA1]
    assert _read_resv(i2b) == (0xA1, WE)
    assert _full_status(i2b) == [(0xA1, True, _iport(I1, ISID1))]

    # gateway A dies: the reservation is still enforced on B
    i1a.close()
    a.d.proc.send_signal(signal.SIGKILL)
    a.d.proc.wait(10)
    a.d.stopped = True
    assert _write(i2b).status == 0x18
    assert _read_resv(i2b) == (0xA1, WE)
    # ... and on A restarted: I1 (through A's port) is still the holder
    a.start()
    i1a = a.conn(I1, ISID1)
    i2a = a.conn(I2, ISID2)
    assert _read_resv(i1a) == (0xA1, WE)
    assert _write(i1a).status == 0
    assert _write(i2a).status == 0x18

    # I2 registers through B and preempts I1's reservation (SPC-4 5.12.11.4)
    assert _prout(i2b, 0, sakey=0xB2).status == 0
    p = _prout(i2b, 4, key=0xB2, sakey=0xA1, typ=WE)
    assert p.status == 0, _sense(p) if p.status == 2 else p.status
    # I1, through gateway A, learns it first thing: REGISTRATIONS PREEMPTED (2A/05)
    p, _ = i1a.command(bytes(6))
    assert p.status == 2 and _sense(p) == (6, 0x2a, 0x05), p.status
    p, _ = i1a.command(bytes(6))
    assert p.status == 0                       # reported once
    for c in (i1a, i2a, i2b, i1b):
        assert _read_keys(c)[1] == [0xB2]
        assert _read_resv(c) == (0xB2, WE)
    assert _write(i1a).status == 0x18
    assert _write(i2b).status == 0
    for c in (i1a, i2a, i2b, i1b):
        c.close()


def test_concurrent_registers_through_both_gateways_lose_none(utarget, workdir, ceph):
    """Sixteen initiators register at once, eight through each gateway: the compare-and-swap
    makes the losers evaluate again, so every key is there and PRgeneration counted each
    REGISTER once."""
    image = _image(ceph)
    a, b = _gateways(utarget, workdir, ceph, image)
    n = 8
    conns = [(gw.conn("iqn.1994-05.com.example:c%d-%d" % (gw.tag, i), [0x80, 0, 0, 0, gw.tag, i]),
              0x1000 * gw.tag + i) for gw in (a, b) for i in range(n)]
    gen0 = _read_keys(conns[0][0])[0]
    start = threading.Barrier(len(conns))
    results = {}

    def register(c, key):
        start.wait()
        results[key] = _prout(c, 0, sakey=key).status

    threads = [threading.Thread(target=register, args=cs) for cs in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    want = sorted(k for _, k in conns)
    assert results == {k: 0 for k in want}, results
    for c in (conns[0][0], conns[-1][0]):   # through A and through B
        gen, keys = _read_keys(c)
        assert keys == want
        assert gen == gen0 + len(want), (gen0, gen)
    for c, _ in conns:
        c.close()


def test_frozen_gateway_does_not_serve_a_stale_reservation(utarget, workdir, ceph):
    """Gateway B is SIGSTOPped for longer than its lease; meanwhile I1 reserves through A.
    After SIGCONT, B must not let I2 write on the old (empty) state: each WRITE through B
    is either refused as retryable (NOT READY 04/0A while B re-watches and reloads) or a
    RESERVATION CONFLICT, and the conflict comes within a bounded time."""
    image = _image(ceph)
    a, b = _gateways(utarget, workdir, ceph, image)
    i1a = a.conn(I1, ISID1)
    i2b = b.conn(I2, ISID2)
    assert _write(i2b).status == 0
    os.killpg(b.d.proc.pid, signal.SIGSTOP)
    try:
        assert _prout(i1a, 0, sakey=0xA1).status == 0
        assert _prout(i1a, 1, key=0xA1, typ=WE).status == 0
        # the PR OUT waited out B's lease (B did not ack): B is past it now
    finally:
        os.killpg(b.d.proc.pid, signal.SIGCONT)
    seen = set()
    deadline = time.monotonic() + 4 * LEASE
    while True:
        p = _write(i2b)
        if p.status == 2:
            assert _sense(p) == (2, 0x04, 0x0a), _sense(p)
            seen.add("not ready")
        else:
            assert p.status == 0x18, "gateway B served a stale state: status %d" % p.status
            break
        assert time.monotonic() < deadline, "gateway B did not reload within %ds" % (4 * LEASE)
        time.sleep(0.2)
    assert _read_resv(i2b) == (0xA1, WE)
    i1a.close()
    i2b.close()


def test_spc2_reserve_across_gateways(utarget, workdir, ceph):
    """SPC-2 RESERVE(6) through A holds on B too (SPC-2 7.21: another initiator's WRITE and
    RESERVE conflict, INQUIRY does not); RELEASE by a non-holder changes nothing; the
    reservation ends with the holder's session, and B sees that (polled: the release is
    stored asynchronously, docs/rbd.md)."""
    image = _image(ceph)
    a, b = _gateways(utarget, workdir, ceph, image)
    i1a = a.conn(I1, ISID1)
    i2b = b.conn(I2, ISID2)
    reserve6, release6 = bytes([0x16, 0, 0, 0, 0, 0]), bytes([0x17, 0, 0, 0, 0, 0])
    assert i1a.command(reserve6, timeout=PR_TIMEOUT)[0].status == 0
    assert _write(i2b).status == 0x18
    assert i2b.command(reserve6, timeout=PR_TIMEOUT)[0].status == 0x18
    assert i2b.command(release6, timeout=PR_TIMEOUT)[0].status == 0   # a no-op
    assert i2b.command(bytes([0x12, 0, 0, 0, 36, 0]), edtl=36, read=True)[0].status == 0
    assert _write(i1a).status == 0
    assert _write(i2b).status == 0x18
    # PERSISTENT RESERVE OUT conflicts under an SPC-2 reservation (SPC-4 5.12.3)
    assert _prout(i2b, 0, sakey=0xB2).status == 0x18
    i1a.logout()
    i1a.close()
    deadline = time.monotonic() + 10
    while i2b.command(reserve6, timeout=PR_TIMEOUT)[0].status != 0:
        assert time.monotonic() < deadline, "the SPC-2 reservation outlived its session"
        time.sleep(0.1)
    assert _write(i2b).status == 0
    assert i2b.command(release6, timeout=PR_TIMEOUT)[0].status == 0
    i2b.close()
