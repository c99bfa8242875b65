"""ALUA (issue 17, first part): target port groups per storage object as LIO has them, a
LUN's target port joining one, REPORT / SET TARGET PORT GROUPS, INQUIRY TPGS and VPD 0x83,
the commands each access state refuses (NOT READY 04/0B, 04/0C, 04/0A, 04/12), ASYMMETRIC
ACCESS STATE CHANGED on a change, saveconfig / restore and the shell. Two TPGs of one
target, each with its own portal, are the two target ports.
"""

import json
import os
import struct

import iscsiraw as raw
import uthelpers as ut
from rpcclient import RpcClient
from uthelpers import MiB

IQN = "iqn.2003-01.org.linux-iscsi.test:alua"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SO = dict(plugin="fileio", name="f0")


def _daemon(config, utarget, workdir):
    f = config.fileio("f0", dev=os.path.join(str(workdir), "f0.img"), size=8 * MiB)
    t = config.target(IQN)
    t.tpg(1).lun(0, f)
    port2 = ut.free_port()
    t.tpg(2, portals=[("127.0.0.1", port2)]).lun(0, f)
    d = utarget(config)
    return d, port2, RpcClient(d.sock).connect()


def _conn(port, isid):
    c = raw.RawConn("127.0.0.1", port, isid=isid)
    c.login(target=IQN)
    for _ in range(4):   # the POWER ON unit attention
        p, _ = c.command(bytes(6))
        if p is not None and p.status == 0:
            break
    return c


def _sense(p):
    n = struct.unpack(">H", p.data[:2])[0]
    s = p.data[2:2 + n]
    return s[2] & 0xf, s[12], s[13]


def _rtpg(c, ext=False):
    cdb = bytes([0xa3, 0x0a | (0x20 if ext else 0), 0, 0, 0, 0]) + struct.pack(">I", 512) + \
        bytes(2)
    p, d = c.command(cdb, edtl=512, read=True)
    assert p.status == 0, _sense(p)
    hdr = 8 if ext else 4
    n = struct.unpack(">I", d[:4])[0]
    groups, off = {}, hdr
    while off < hdr + n:
        state, sup = d[off] & 0x0f, d[off + 1]
        gid = struct.unpack(">H", d[off + 2:off + 4])[0]
        cnt = d[off + 7]
        ports = [struct.unpack(">H", d[off + 8 + 4 * i + 2:off + 8 + 4 * i + 4])[0]
                 for i in range(cnt)]
        groups[gid] = {"state": state, "pref": bool(d[off] & 0x80), "sup": sup,
                       "status": d[off + 5], "ports": ports}
        off += 8 + 4 * cnt
    return groups, d[:8]


def _stpg(c, descs):
    data = bytes(4) + b"".join(bytes([st, 0]) + struct.pack(">H", gid) for st, gid in descs)
    cdb = bytes([0xa4, 0x0a, 0, 0, 0, 0]) + struct.pack(">I", len(data)) + bytes(2)
    p, _ = c.command(cdb, edtl=len(data), write=True, data=data)
    return p


def _read(c):
    return c.command(bytes([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]), edtl=512, read=True)[0]


def test_groups_states_rtpg_stpg(config, utarget, workdir):
    d, port2, rpc = _daemon(config, utarget, workdir)
    a = _conn(d.port, [0x80, 0, 0, 0, 0, 1])   # through tpg1
    b = _conn(port2, [0x80, 0, 0, 0, 0, 2])    # through tpg2
    # INQUIRY TPGS: implicit and explicit (LIO's default alua_access_type 3)
    p, inq = a.command(bytes([0x12, 0, 0, 0, 96, 0]), edtl=96, read=True)
    assert (inq[5] >> 4) & 3 == 3
    # both ports in default_tg_pt_gp (id 0), active/optimized
    groups, _ = _rtpg(a)
    assert groups == {0: {"state": 0, "pref": False, "sup": 0xcf, "status": 0,
                          "ports": [1, 2]}}

    # a second group, tpg2's LUN in it, standby
    assert rpc.call("alua.create", group="secondary", tag=2, **SO)["tg_pt_gp_id"] == 2
    rpc.call("lun.set_alua", wwn=IQN, tag=2, lun=0, alua_tg_pt_gp_name="secondary")
    g = rpc.call("alua.set_attributes", group="secondary",
                 attributes={"alua_access_state": 2, "preferred": 0}, **SO)
    assert g["alua_access_state"] == 2 and g["members"] == [IQN + "/tpgt_2/lun_0"]
    for c in (a, b):   # everyone is told (2A/06)
        p, _ = c.command(bytes(6))
        assert p.status == 2 and _sense(p) == (6, 0x2a, 0x06), _sense(p)
    groups, hdr = _rtpg(b, ext=True)
    assert groups[0]["ports"] == [1] and groups[2]["ports"] == [2]
    assert groups[2]["state"] == 2 and groups[2]["status"] == 2   # altered implicitly
    assert hdr[4] == 0x10   # extended header format
    # VPD 0x83 target port group designator: the port's group
    p, vpd = b.command(bytes([0x12, 1, 0x83, 0, 255, 0]), edtl=255, read=True)
    off, tg = 4, None
    while off < 4 + struct.unpack(">H", vpd[2:4])[0]:
        if vpd[off + 1] & 0x0f == 5:
            tg = struct.unpack(">H", vpd[off + 6:off + 8])[0]
        off += 4 + vpd[off + 3]
    assert tg == 2
    # standby: READ refused 04/0B, TEST UNIT READY too; INQUIRY, REPORT LUNS, RTPG,
    # READ CAPACITY (16) pass; the active port serves on
    p = _read(b)
    assert p.status == 2 and _sense(p) == (2, 0x04, 0x0b), _sense(p)
    p, _ = b.command(bytes(6))
    assert p.status == 2 and _sense(p) == (2, 0x04, 0x0b)
    p, _ = b.command(bytes([0x9e, 0x10]) + bytes(8) + struct.pack(">I", 32) + bytes(2),
                     edtl=32, read=True)
    assert p.status == 0
    p, _ = b.command(bytes([0xa0, 0, 0, 0, 0, 0]) + struct.pack(">I", 64) + bytes(2),
                     edtl=64, read=True)
    assert p.status == 0
    assert _read(a).status == 0
    # the other states' sense
    for state, ascq in ((3, 0x0c), (15, 0x0a), (14, 0x12)):
        rpc.call("alua.set_attributes", group="secondary",
                 attributes={"alua_access_state": state}, **SO)
        b.command(bytes(6))   # the unit attention
        p = _read(b)
        assert p.status == 2 and _sense(p) == (2, 0x04, ascq), (state, _sense(p))

    # SET TARGET PORT GROUPS from port a: secondary active/optimized, default standby
    rpc.call("alua.set_attributes", group="secondary", attributes={"alua_access_state": 2},
             **SO)
    a.command(bytes(6))
    b.command(bytes(6))
    p = _stpg(a, [(0, 2), (2, 0)])
    assert p.status == 0, _sense(p)
    p, _ = b.command(bytes(6))    # b is told, a is not (SPC-4 5.16.2.6)
    assert p.status == 2 and _sense(p) == (6, 0x2a, 0x06)
    assert _read(b).status == 0
    p = _read(a)
    assert p.status == 2 and _sense(p) == (2, 0x04, 0x0b)
    groups, _ = _rtpg(a)
    assert groups[2]["state"] == 0 and groups[2]["status"] == 1   # by STPG
    # a state the group does not support, or an unknown group: refused, nothing changes
    rpc.call("alua.set_attributes", group="secondary",
             attributes={"alua_support_unavailable": 0}, **SO)
    b.command(bytes(6))
    p = _stpg(b, [(1, 0), (3, 2)])
    assert p.status == 2 and _sense(p)[:2] == (5, 0x26), _sense(p)
    p = _stpg(b, [(1, 77)])
    assert p.status == 2 and _sense(p)[:2] == (5, 0x26)
    assert _rtpg(b)[0][0]["state"] == 2
    # implicit only: SET TARGET PORT GROUPS is refused, INQUIRY says so
    rpc.call("alua.set_attributes", group="secondary", attributes={"alua_access_type": 1},
             **SO)
    p = _stpg(b, [(0, 2)])
    assert p.status == 2 and _sense(p)[:2] == (5, 0x24), _sense(p)
    p, inq = b.command(bytes([0x12, 0, 0, 0, 96, 0]), edtl=96, read=True)
    assert (inq[5] >> 4) & 3 == 1
    a.close()
    b.close()


def test_alua_api_refusals_and_saveconfig(config, utarget, workdir):
    d, port2, rpc = _daemon(config, utarget, workdir)
    rpc.call("alua.create", group="g1", tag=5, **SO)
    for params, code, words in (
            (dict(group="g1", tag=6), -32002, ["already exists"]),
            (dict(group="g2", tag=5), -32002, ["already exists"]),
            (dict(group="g3", tag=0), -32602, ["tag"]),
            (dict(group="a/b", tag=7), -32602, ["group"])):
        before = rpc.call("get_config")
        e = rpc.error("alua.create", **dict(SO, **params))
        assert e.code == code and all(w in e.message for w in words), e
        assert rpc.call("get_config") == before
    for attrs, words in (({"alua_access_state": 4}, ["LBA"]),
                         ({"alua_access_state": 9}, ["alua_access_state"]),
                         ({"preferred": 2}, ["preferred"]),
                         ({"members": "x"}, ["read-only"]),
                         ({"nonsense": 1}, ["Cannot find attribute"]),
                         ({"tg_pt_gp_id": 0}, ["used by another"]),
                         ({"preferred": 1, "alua_access_type": 9}, ["alua_access_type"])):
        before = rpc.call("get_config")
        e = rpc.error("alua.set_attributes", group="g1", attributes=attrs, **SO)
        assert all(w in e.message for w in words), (attrs, e)
        assert rpc.call("get_config") == before
    e = rpc.error("alua.delete", group="default_tg_pt_gp", **SO)
    assert "cannot be deleted" in e.message
    rpc.call("lun.set_alua", wwn=IQN, tag=1, lun=0, alua_tg_pt_gp_name="g1")
    e = rpc.error("alua.delete", group="g1", **SO)
    assert "LUNs in it" in e.message
    e = rpc.error("lun.set_alua", wwn=IQN, tag=1, lun=0, alua_tg_pt_gp_name="nope")
    assert e.code == -32001
    rpc.call("alua.set_attributes", group="g1",
             attributes={"alua_access_state": 1, "preferred": 1, "nonop_delay_msecs": 50,
                         "implicit_trans_secs": 7}, **SO)
    # saveconfig: LIO's alua_tpgs and alua_tg_pt_gp_name; a fresh daemon restores them
    saved = os.path.join(str(workdir), "alua.json")
    rpc.call("save_config", file=saved)
    with open(saved) as f:
        doc = json.load(f)
    so = [s for s in doc["storage_objects"] if s["name"] == "f0"][0]
    g1 = [g for g in so["alua_tpgs"] if g["name"] == "g1"][0]
    assert g1["tg_pt_gp_id"] == 5 and g1["alua_access_state"] == 1 and g1["preferred"] == 1
    assert g1["nonop_delay_msecs"] == 50 and g1["implicit_trans_secs"] == 7
    assert [g["name"] for g in so["alua_tpgs"]] == ["default_tg_pt_gp", "g1"]
    luns = {t["tag"]: t["luns"][0] for t in doc["targets"][0]["tpgs"]}
    assert luns[1]["alua_tg_pt_gp_name"] == "g1"
    assert luns[2]["alua_tg_pt_gp_name"] == "default_tg_pt_gp"
    rpc.call("clear_config", confirm=True)
    r = rpc.call("restore_config", file=saved)
    assert r["errors"] == [], r
    rpc.call("save_config", file=saved + ".2")
    with open(saved + ".2") as f:
        assert json.load(f) == doc
    c = _conn(d.port, [0x80, 0, 0, 0, 0, 9])
    groups, _ = _rtpg(c, ext=True)
    assert groups[5] == {"state": 1, "pref": True, "sup": 0xcf, "status": groups[5]["status"],
                         "ports": [1]}
    c.close()
    # a LUN naming a group its storage object does not have: reported, LUN restored
    luns[2]["alua_tg_pt_gp_name"] = "ghost"
    with open(saved, "w") as f:
        json.dump(doc, f)
    r = rpc.call("restore_config", file=saved, clear_existing=True)
    assert any("ghost" in e for e in r["errors"]), r


def test_cli_alua(config, utarget, workdir):
    d, port2, rpc = _daemon(config, utarget, workdir)
    cli = os.environ.get("UTARGETCLI") or os.path.join(REPO, "build", "utargetcli")
    env = {"UTARGET_SOCKET": d.sock, "UTARGETCLI_HOME": os.path.join(str(workdir), "h"),
           "TERM": "dumb"}

    def run(*args):
        res = ut.run([cli] + list(args), env=env)
        assert "runtime error" not in res.stderr and "AddressSanitizer" not in res.stderr
        return res

    assert run("set", "global", "auto_save_on_exit=false").returncode == 0
    alua = "/backstores/fileio/f0/alua"
    res = run(alua, "create", "name=passive", "tag=3")
    assert res.returncode == 0 and res.stdout == "Created ALUA group passive with tag 3.\n", \
        ut.describe(res, d)
    res = run(alua + "/passive", "set", "alua", "alua_access_state=1")
    assert res.returncode == 0 and "alua_access_state is now '1'" in res.stdout, \
        ut.describe(res, d)
    res = run("/iscsi/%s/tpg2/luns/lun0" % IQN, "set", "alua", "alua_tg_pt_gp_name=passive")
    assert res.returncode == 0, ut.describe(res, d)
    res = run("ls", alua)
    assert "[ALUA Groups: 2]" in res.stdout and "[ALUA state: Active/non-optimized]" in \
        res.stdout and "[ALUA state: Active/optimized]" in res.stdout, res.stdout
    res = run(alua + "/passive", "get", "alua", "members")
    assert res.stdout.strip() == "members=%s/tpgt_2/lun_0 [ro]" % IQN, res.stdout
    res = run("/iscsi/%s/tpg2/luns/lun0" % IQN, "get", "alua", "alua_tg_pt_gp_name")
    assert "alua_tg_pt_gp_name=passive" in res.stdout, res.stdout
    res = run(alua, "delete", "passive")
    assert res.returncode == 1 and "LUNs in it" in res.stderr
    res = run(alua, "create", "name=x", "tag=zero")
    assert res.returncode == 1 and "Invalid tag" in res.stderr


def test_rtslib_alua(config, utarget, workdir):
    """rtslib-fb's ALUATargetPortGroup and LUN.alua_tg_pt_gp_name, as a script uses them."""
    import rtslib_testutil  # noqa: F401  (python/ on sys.path)
    from utarget.rtslib import (ALUATargetPortGroup, FabricModule, LUN, RTSRoot, TPG,
                                FileIOStorageObject, Target, set_default_socket)
    d, port2, rpc = _daemon(config, utarget, workdir)
    set_default_socket(d.sock)
    so = FileIOStorageObject("f0")
    assert [g.name for g in so.alua_tpgs] == ["default_tg_pt_gp"]
    gp = ALUATargetPortGroup(so, "ao2", tag=4)
    assert gp.tg_pt_gp_id == 4 and gp.alua_access_state == 0 and gp.nonop_delay_msecs == 100
    gp.alua_access_state = 1
    lun = LUN(TPG(Target(FabricModule("iscsi"), IQN), 2), 0)
    lun.alua_tg_pt_gp_name = "ao2"
    assert lun.alua_tg_pt_gp_name == "ao2"
    assert gp.members == [IQN + "/tpgt_2/lun_0"]
    assert sorted(g.name for g in RTSRoot().alua_tpgs) == ["ao2", "default_tg_pt_gp"]
    assert ALUATargetPortGroup(so, "ao2").alua_access_state == 1
    try:
        ALUATargetPortGroup(so, "ao2", tag=5)
        raise AssertionError("a second group of that name was created")
    except Exception as e:   # rtslib raises RTSLibError
        assert "exists" in str(e)
    lun.alua_tg_pt_gp_name = "default_tg_pt_gp"
    gp.delete()
    assert [g.name for g in so.alua_tpgs] == ["default_tg_pt_gp"]


def _prout(c, sa, key=0, sakey=0, typ=0, all_tg_pt=False):
    data = struct.pack(">QQI", key, sakey, 0) + bytes([0x04 if all_tg_pt else 0, 0, 0, 0])
    cdb = bytes([0x5f, sa, typ, 0, 0]) + struct.pack(">I", len(data)) + bytes(1)
    p, _ = c.command(cdb, edtl=len(data), write=True, data=data)
    return p


def _read_keys(c):
    p, d = c.command(bytes([0x5e, 0, 0, 0, 0, 0, 0]) + struct.pack(">H", 256) + bytes(1),
                     edtl=256, read=True)
    assert p.status == 0
    n = struct.unpack(">I", d[4:8])[0]
    return [struct.unpack(">Q", d[8 + 8 * i:16 + 8 * i])[0] for i in range(n // 8)]


def _write(c):
    return c.command(bytes([0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0]), edtl=512, write=True,
                     data=bytes(512))[0]


def test_persistent_reservations_across_target_ports(config, utarget, workdir):
    """SPC-4 5.12: a registration made through one target port is seen through the other
    (the LU's, not the port's); a reservation holds on both ports; ALL_TG_PT registers the
    initiator on every port."""
    d, port2, rpc = _daemon(config, utarget, workdir)
    a = _conn(d.port, [0x80, 0, 0, 0, 0, 0x11])
    b = _conn(port2, [0x80, 0, 0, 0, 0, 0x11])   # same initiator port, other target port
    assert _prout(a, 0, sakey=0xA1).status == 0          # REGISTER through port 1
    assert _read_keys(b) == [0xA1]                        # seen through port 2
    assert _prout(a, 1, key=0xA1, typ=0x01).status == 0  # RESERVE, write exclusive
    p = _write(b)                                         # port 2's nexus is not registered
    assert p.status == 0x18, "no RESERVATION CONFLICT through the other port"
    assert _write(a).status == 0
    # with ALL_TG_PT the registration covers port 2's nexus too
    assert _prout(a, 2, key=0xA1, typ=0x01).status == 0  # RELEASE
    assert _prout(a, 6, key=0xA1).status == 0            # REGISTER AND IGNORE: key 0 = drop
    assert _read_keys(b) == []
    assert _prout(a, 0, sakey=0xB2, all_tg_pt=True).status == 0
    assert _prout(b, 1, key=0xB2, typ=0x01).status == 0  # port 2 may reserve with it
    assert _write(b).status == 0 and _write(a).status == 0
    a.close()
    b.close()


def test_nonop_and_transition_delays(config, utarget, workdir):
    """nonop_delay_msecs and trans_delay_msecs act as LIO's do: every command through an
    active/non-optimized port waits the delay (the worker serves others meanwhile); a state
    change shows Transitioning (04/0A, 2A/06) for trans_delay_msecs, then the new state
    (2A/06 again). Only lower bounds on time are asserted: a slow machine is no failure."""
    import time
    d, port2, rpc = _daemon(config, utarget, workdir)
    rpc.call("alua.create", group="secondary", tag=2, **SO)
    rpc.call("lun.set_alua", wwn=IQN, tag=2, lun=0, alua_tg_pt_gp_name="secondary")
    rpc.call("alua.set_attributes", group="secondary",
             attributes={"alua_access_state": 1, "nonop_delay_msecs": 600}, **SO)
    a = _conn(d.port, [0x80, 0, 0, 0, 0, 1])
    b = _conn(port2, [0x80, 0, 0, 0, 0, 2])
    t0 = time.monotonic()
    p = _read(b)
    slow = time.monotonic() - t0
    assert p.status == 0 and slow >= 0.6, (p.status, slow)
    # the same LU through the optimized port is not held up by it
    t0 = time.monotonic()
    assert _read(a).status == 0
    assert time.monotonic() - t0 < slow
    # a connection dropped while its command waits out the delay leaks nothing
    c = _conn(port2, [0x80, 0, 0, 0, 0, 3])
    c.send(c.scsi_cmd(bytes([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]), edtl=512, read=True))
    time.sleep(0.2)
    assert rpc.call("stats")["tasks"] == 1   # waiting out the delay
    c.close()
    deadline = time.monotonic() + 20
    while rpc.call("stats")["tasks"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rpc.call("stats")["tasks"] == 0
    # out of range (LIO's limit is 10 s): refused, nothing changes
    e = rpc.error("alua.set_attributes", group="secondary",
                  attributes={"nonop_delay_msecs": 10001}, **SO)
    assert "nonop_delay_msecs" in e.message, e

    rpc.call("alua.set_attributes", group="secondary",
             attributes={"nonop_delay_msecs": 0, "trans_delay_msecs": 2500}, **SO)
    t0 = time.monotonic()
    g = rpc.call("alua.set_attributes", group="secondary",
                 attributes={"alua_access_state": 2}, **SO)
    assert g["alua_access_state"] == 15, g          # Transitioning first
    # saved as the state it is going to, so a restore never stays transitioning
    saved = os.path.join(str(workdir), "t.json")
    rpc.call("save_config", file=saved)
    with open(saved) as f:
        so = [s for s in json.load(f)["storage_objects"] if s["name"] == "f0"][0]
    assert [g["alua_access_state"] for g in so["alua_tpgs"] if g["name"] == "secondary"] == [2]
    p, _ = b.command(bytes(6))
    assert p.status == 2 and _sense(p) == (6, 0x2a, 0x06), _sense(p)
    p = _read(b)
    if time.monotonic() - t0 < 2.4:             # still inside the delay
        assert p.status == 2 and _sense(p) == (2, 0x04, 0x0a), _sense(p)
        groups, _ = _rtpg(b)
        assert groups[2]["state"] == 15
    while time.monotonic() - t0 < 2.6:
        time.sleep(0.1)
    # after it: the new state, announced again
    p, _ = b.command(bytes(6))
    assert p.status == 2 and _sense(p) == (6, 0x2a, 0x06), _sense(p)
    p = _read(b)
    assert p.status == 2 and _sense(p) == (2, 0x04, 0x0b), _sense(p)
    assert rpc.call("alua.get_attributes", group="secondary", **SO)["alua_access_state"] == 2
    # a reader that is not a command (the API) ends a due transition too
    rpc.call("alua.set_attributes", group="secondary",
             attributes={"trans_delay_msecs": 300}, **SO)
    rpc.call("alua.set_attributes", group="secondary", attributes={"alua_access_state": 0},
             **SO)
    time.sleep(0.4)
    assert rpc.call("alua.get_attributes", group="secondary", **SO)["alua_access_state"] == 0
    a.close()
    b.close()
