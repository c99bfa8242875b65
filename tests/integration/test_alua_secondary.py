"""LIO's per-LUN secondary target port state (issue 17): a TPG LUN's alua_tg_pt_offline,
alua_tg_pt_status and alua_tg_pt_write_md (configfs files beside alua_tg_pt_gp; rtslib-fb's
LUN properties of the same names). An offline port refuses every command with NOT READY,
LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN OFFLINE STATE (04/12), as LIO's
target_alua_state_check does, while the LU's other port serves on. rtslib-fb's LUN.dump
does not save them, so saveconfig.json holds none of them.
"""

import json
import os
import struct

import uthelpers as ut
from test_alua import IQN, REPO, _conn, _daemon, _read, _rtpg, _sense

LUN2 = dict(wwn=IQN, tag=2, lun=0)


def test_port_offline_api_scsi_saveconfig(config, utarget, workdir):
    d, port2, rpc = _daemon(config, utarget, workdir)
    a = _conn(d.port, [0x80, 0, 0, 0, 0, 1])   # tpg1
    b = _conn(port2, [0x80, 0, 0, 0, 0, 2])    # tpg2
    assert rpc.call("lun.get_alua", **LUN2) == {
        "alua_tg_pt_gp_name": "default_tg_pt_gp", "alua_tg_pt_offline": 0,
        "alua_tg_pt_status": 0, "alua_tg_pt_write_md": 0}
    r = rpc.call("lun.set_alua", alua_tg_pt_offline=1, **LUN2)
    # LIO: the store goes through core_alua_set_tg_pt_secondary_state(explicit=0):
    # status "altered by implicit ALUA"
    assert r["alua_tg_pt_offline"] == 1 and r["alua_tg_pt_status"] == 2, r
    # every command through tpg2 is refused 04/12, INQUIRY and REPORT LUNS included
    for cdb, edtl in ((bytes([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]), 512),
                      (bytes(6), 0),
                      (bytes([0x12, 0, 0, 0, 96, 0]), 96),
                      (bytes([0xa0, 0, 0, 0, 0, 0]) + struct.pack(">I", 64) + bytes(2), 64)):
        p, _ = b.command(cdb, edtl=edtl, read=bool(edtl))
        assert p.status == 2 and _sense(p) == (2, 0x04, 0x12), (cdb.hex(), _sense(p))
    # the other port serves on; the group itself is still active/optimized
    assert _read(a).status == 0
    groups, _ = _rtpg(a)
    assert groups[0]["state"] == 0 and groups[0]["ports"] == [1, 2]
    # status and write_md as LIO takes them (0..2, 0/1), refused outside
    e = rpc.error("lun.set_alua", alua_tg_pt_status=3, **LUN2)
    assert "alua_tg_pt_status" in e.message
    e = rpc.error("lun.set_alua", alua_tg_pt_offline=2, **LUN2)
    assert "alua_tg_pt_offline" in e.message
    r = rpc.call("lun.set_alua", alua_tg_pt_status=1, alua_tg_pt_write_md=1, **LUN2)
    assert (r["alua_tg_pt_offline"], r["alua_tg_pt_status"], r["alua_tg_pt_write_md"]) == \
        (1, 1, 1), r
    # saveconfig: as rtslib-fb's LUN.dump, no secondary state in the file
    saved = os.path.join(str(workdir), "sec.json")
    rpc.call("save_config", file=saved)
    with open(saved) as f:
        text = f.read()
    assert "alua_tg_pt_offline" not in text and "alua_tg_pt_status" not in text
    assert json.loads(text)["targets"][0]["tpgs"][1]["luns"][0]["alua_tg_pt_gp_name"] == \
        "default_tg_pt_gp"
    # back online: tpg2 serves again
    assert rpc.call("lun.set_alua", alua_tg_pt_offline=0, **LUN2)["alua_tg_pt_offline"] == 0
    assert _read(b).status == 0
    a.close()
    b.close()


def test_cli_lun_secondary_state(config, utarget, workdir):
    d, port2, rpc = _daemon(config, utarget, workdir)
    cli = os.environ.get("UTARGETCLI") or os.path.join(REPO, "build", "utargetcli")
    env = {"UTARGET_SOCKET": d.sock, "UTARGETCLI_HOME": os.path.join(str(workdir), "h"),
           "TERM": "dumb"}

    def run(*args):
        res = ut.run([cli] + list(args), env=env)
        assert "runtime error" not in res.stderr and "AddressSanitizer" not in res.stderr
        return res

    assert run("set", "global", "auto_save_on_exit=false").returncode == 0
    lun = "/iscsi/%s/tpg2/luns/lun0" % IQN
    res = run(lun, "get", "alua")
    assert res.returncode == 0, ut.describe(res, d)
    for line in ("alua_tg_pt_gp_name=default_tg_pt_gp", "alua_tg_pt_offline=0",
                 "alua_tg_pt_status=0", "alua_tg_pt_write_md=0"):
        assert line in res.stdout, res.stdout
    res = run(lun, "set", "alua", "alua_tg_pt_offline=1")
    assert res.returncode == 0 and "alua_tg_pt_offline is now '1'" in res.stdout, \
        ut.describe(res, d)
    assert rpc.call("lun.get_alua", **LUN2)["alua_tg_pt_offline"] == 1
    res = run(lun, "get", "alua", "alua_tg_pt_status")
    assert "alua_tg_pt_status=2" in res.stdout, res.stdout
    res = run(lun, "set", "alua", "alua_tg_pt_status=7")
    assert res.returncode == 1 and "alua_tg_pt_status" in res.stderr, ut.describe(res, d)
    res = run(lun, "set", "alua", "alua_tg_pt_offline=0")
    assert res.returncode == 0
    assert rpc.call("lun.get_alua", **LUN2)["alua_tg_pt_offline"] == 0


def test_rtslib_lun_secondary_state(config, utarget, workdir):
    """rtslib-fb's LUN.alua_tg_pt_offline / _status / _write_md, as a script uses them."""
    import rtslib_testutil  # noqa: F401  (python/ on sys.path)
    from utarget.rtslib import FabricModule, LUN, TPG, Target, set_default_socket
    d, port2, rpc = _daemon(config, utarget, workdir)
    set_default_socket(d.sock)
    lun = LUN(TPG(Target(FabricModule("iscsi"), IQN), 2), 0)
    assert lun.alua_tg_pt_offline is False and lun.alua_tg_pt_status == 0
    lun.alua_tg_pt_offline = True
    assert rpc.call("lun.get_alua", **LUN2)["alua_tg_pt_offline"] == 1
    assert lun.alua_tg_pt_status == LUN.ALUA_STATUS_ALTERED_BY_IMPLICIT_ALUA
    b = _conn(d.port, [0x80, 0, 0, 0, 0, 5])   # tpg1 still serves
    assert _read(b).status == 0
    b.close()
    lun.alua_tg_pt_status = LUN.ALUA_STATUS_NONE
    lun.alua_tg_pt_write_md = True
    assert lun.alua_tg_pt_status == 0 and lun.alua_tg_pt_write_md is True
    lun.alua_tg_pt_offline = False
    assert lun.alua_tg_pt_offline is False
