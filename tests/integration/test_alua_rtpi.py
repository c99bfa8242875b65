"""Relative target port identifiers (issue 17): SPC-4 7.8.6.7 wants the RTPI to name a
target port uniquely within the SCSI target device. Two targets, each with a tpg 1 (the
same TPG tag), export one storage object: their ports must get different RTPIs in INQUIRY
VPD 0x83, REPORT TARGET PORT GROUPS and persistent reservations, as Linux's global RTPI
(target_core_tpg.c target_tpg_register_rtpi) gives them.
"""

import os
import struct

import iscsiraw as raw
import uthelpers as ut
from uthelpers import MiB
from test_alua import _prout, _read_keys, _rtpg, _sense, _write

IQN_A = "iqn.2003-01.org.linux-iscsi.test:rtpi-a"
IQN_B = "iqn.2003-01.org.linux-iscsi.test:rtpi-b"


def _daemon(config, utarget, workdir):
    f = config.fileio("f0", dev=os.path.join(str(workdir), "f0.img"), size=8 * MiB)
    config.target(IQN_A).tpg(1).lun(0, f)
    port_b = ut.free_port()
    config.target(IQN_B).tpg(1, portals=[("127.0.0.1", port_b)]).lun(0, f)
    d = utarget(config)
    return d, port_b


def _conn(port, iqn, isid):
    c = raw.RawConn("127.0.0.1", port, isid=isid)
    c.login(target=iqn)
    for _ in range(4):   # the POWER ON unit attention
        p, _ = c.command(bytes(6))
        if p is not None and p.status == 0:
            break
    return c


def _vpd83(c):
    """{designator type: value bytes} of INQUIRY VPD 0x83 (target port association)."""
    p, vpd = c.command(bytes([0x12, 1, 0x83, 0, 255, 0]), edtl=255, read=True)
    assert p.status == 0
    out, off = {}, 4
    while off < 4 + struct.unpack(">H", vpd[2:4])[0]:
        if (vpd[off + 1] >> 4) & 3 == 1:   # ASSOCIATION: target port
            out[vpd[off + 1] & 0x0f] = vpd[off + 4:off + 4 + vpd[off + 3]]
        off += 4 + vpd[off + 3]
    return out


def _rtpi(c):
    return struct.unpack(">H", _vpd83(c)[4][2:4])[0]   # type 4: relative target port


def _full_status(c):
    """PERSISTENT RESERVE IN, READ FULL STATUS: [(key, rtpi, transport id name)]."""
    p, d = c.command(bytes([0x5e, 3, 0, 0, 0, 0, 0]) + struct.pack(">H", 1024) + bytes(1),
                     edtl=1024, read=True)
    assert p.status == 0, _sense(p)
    n = struct.unpack(">I", d[4:8])[0]
    out, off = [], 8
    while off < 8 + n:
        key = struct.unpack(">Q", d[off:off + 8])[0]
        rtpi = struct.unpack(">H", d[off + 18:off + 20])[0]
        tlen = struct.unpack(">I", d[off + 20:off + 24])[0]
        tid = d[off + 24:off + 24 + tlen]
        name = tid[4:4 + struct.unpack(">H", tid[2:4])[0]].split(b"\0")[0].decode()
        out.append((key, rtpi, name))
        off += 24 + tlen
    return sorted(out)


def test_two_targets_tpg1_distinct_rtpi(config, utarget, workdir):
    d, port_b = _daemon(config, utarget, workdir)
    a = _conn(d.port, IQN_A, [0x80, 0, 0, 0, 0, 1])
    b = _conn(port_b, IQN_B, [0x80, 0, 0, 0, 0, 2])
    ra, rb = _rtpi(a), _rtpi(b)
    # both TPG tags are 1, the ports are not the same port: different, never 0
    assert ra != rb and 0 not in (ra, rb), (ra, rb)
    # the SCSI target port name designator (type 8) says which target each one is
    assert _vpd83(a)[8].startswith((IQN_A + ",t,0x0001").encode())
    assert _vpd83(b)[8].startswith((IQN_B + ",t,0x0001").encode())
    # REPORT TARGET PORT GROUPS lists both ports, by those ids, through either port
    for c in (a, b):
        groups, _ = _rtpg(c)
        assert sorted(groups[0]["ports"]) == sorted([ra, rb])
    a.close()
    b.close()


def test_pr_per_target_port(config, utarget, workdir):
    """A registration through target A's port (ALL_TG_PT=0) is not target B's port's,
    though both are tpg 1; READ FULL STATUS names each port by its own RTPI; REGISTER AND
    MOVE to B's RTPI hands the reservation to the I_T nexus through target B."""
    d, port_b = _daemon(config, utarget, workdir)
    isid = [0x80, 0, 0, 0, 0, 0x21]
    a = _conn(d.port, IQN_A, isid)
    b = _conn(port_b, IQN_B, isid)   # the same initiator port, the other target port
    ra, rb = _rtpi(a), _rtpi(b)
    iport = raw.INITIATOR + ",i,0x" + "".join("%02x" % x for x in isid)
    assert _prout(a, 0, sakey=0xA1).status == 0          # REGISTER through A
    assert _prout(b, 1, key=0xA1, typ=0x01).status == 0x18   # B's nexus is not registered
    assert _prout(b, 0, sakey=0xB2).status == 0          # REGISTER through B
    assert _read_keys(a) == [0xA1, 0xB2]
    assert _full_status(a) == [(0xA1, ra, iport), (0xB2, rb, iport)]
    # A reserves (write exclusive); B's nexus is registered but not the holder
    assert _prout(a, 1, key=0xA1, typ=0x01).status == 0
    assert _write(b).status == 0x18 and _write(a).status == 0
    assert _prout(b, 6, key=0xB2).status == 0            # B unregisters (key 0)
    # REGISTER AND MOVE (SPC-4 5.12.8) to B's RTPI, UNREG: A's registration goes
    tid = (iport.encode() + b"\0").ljust((len(iport) + 1 + 3) // 4 * 4, b"\0")
    tid = bytes([0x40 | 0x05, 0]) + struct.pack(">H", len(tid)) + tid
    data = struct.pack(">QQBBHI", 0xA1, 0xC3, 0, 0x02, rb, len(tid)) + tid
    cdb = bytes([0x5f, 7, 0x01, 0, 0]) + struct.pack(">I", len(data)) + bytes(1)
    p, _ = a.command(cdb, edtl=len(data), write=True, data=data)
    assert p.status == 0, _sense(p)
    assert _full_status(b) == [(0xC3, rb, iport)]
    assert _write(b).status == 0                         # B holds it now
    assert _write(a).status == 0x18
    # an RTPI that is no port of the LU is refused (INVALID FIELD IN PARAMETER LIST)
    data = struct.pack(">QQBBHI", 0xC3, 0xD4, 0, 0, 999, len(tid)) + tid
    p, _ = b.command(cdb[:5] + struct.pack(">I", len(data)) + bytes(1), edtl=len(data),
                     write=True, data=data)
    assert p.status == 2 and _sense(p)[:2] == (5, 0x26), _sense(p)
    a.close()
    b.close()
