"""saveconfig.json: save / restart / restore (issue 4).

- A tree built over the control socket (fileio, ramdisk, block on a loop device, target,
  TPG, LUNs, IPv4 + IPv6 portals, ACLs with mapped LUNs and CHAP, attributes, parameters,
  discovery auth) is saved, the daemon restarted on the saved file: get_config is
  identical and the LUNs hold the data written before the restart.
- tests/fixtures/targetcli-saveconfig.json, a file as targetcli-fb 2.1.53 writes it
  (paths and portals rewritten to this test's temp dir and port), restores at daemon start
  and serves I/O; restore_config reports a broken object per object and loads the rest,
  or with abort_on_error leaves nothing.
- save_config: mode 0600, rtslib's text format, backups under backup/ pruned to
  max_backup_files, and a SIGKILL in the middle of a save leaves the old or the new file.
"""

import json
import os
import random
import re
import signal
import socket
import stat
import time

import pytest

import uthelpers as ut
from uthelpers import MiB
from rpcclient import RpcClient, RpcError, start_on_file, REFUSED

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(REPO, "tests", "fixtures", "targetcli-saveconfig.json")

ANCHOR = "iqn.2003-01.org.example:anchor"
IQN = "iqn.2003-01.org.example.storage:tree"
INIT_A = "iqn.1994-05.com.example:client-a"
INIT_B = "iqn.1994-05.com.example:client-b"
A_USER, A_SECRET = "client-a", "client-a-secret1"
A_MUSER, A_MSECRET = "target-a", "target-a-secret1"


def anchor_config(config):
    """Only a target whose portal is the test's port: Daemon.start waits for that port,
    the tree is then built over the socket."""
    config.target(ANCHOR).tpg()
    return config


def tpg_of(cfg, wwn, tag=1):
    for t in cfg["targets"]:
        if t["wwn"] == wwn:
            for tpg in t["tpgs"]:
                if tpg["tag"] == tag:
                    return tpg
    raise AssertionError("no %s tpg%d in %s" % (wwn, tag, json.dumps(cfg)[:2000]))


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def qemu_ok(d, opts, cmds):
    res = ut.qemu_io(opts, cmds)
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    return res


def chap_opts(port, iqn, lun, initiator, user, secret):
    return ut.image_opts(port, iqn, lun, initiator=initiator) + \
        ",user=%s,password=%s" % (user, secret)


def saved_text(rpc_cfg):
    """The text rtslib-fb writes for a dump: json.dumps(indent=2, sort_keys=True)."""
    return json.dumps(rpc_cfg, indent=2, sort_keys=True) + "\n"


# --------------------------------------------------------------------------- build & restart

REGIONS = [(0, 64 * 1024, 0xa1), (5 * MiB, 128 * 1024, 0xa2), (15 * MiB, 4096, 0xa3)]


def build_tree(rpc, workdir, port, loopdev, port6):
    img = os.path.join(str(workdir), "f1.img")
    rpc.call("backstore.create", plugin="fileio", name="f1", dev=img, size=16 * MiB,
             write_back=False, wwn="0a1b2c3d-0000-4000-8000-00000000f1f1")
    rpc.call("backstore.set_attributes", plugin="fileio", name="f1",
             attributes={"is_nonrot": 1, "max_write_same_len": 1024, "emulate_tpu": 1})
    rpc.call("backstore.create", plugin="ramdisk", name="r1", size=8 * MiB)
    rpc.call("backstore.set_attributes", plugin="ramdisk", name="r1",
             attributes={"block_size": 4096})
    rpc.call("backstore.create", plugin="block", name="b1", dev=loopdev)
    rpc.call("backstore.set_attributes", plugin="block", name="b1",
             attributes={"emulate_write_cache": 0, "optimal_sectors": 256})

    assert rpc.call("target.create", wwn=IQN) == {"wwn": IQN}
    assert rpc.call("tpg.create", wwn=IQN) == {"tag": 1}
    t = {"wwn": IQN, "tag": 1}
    assert rpc.call("lun.create", storage_object="/backstores/fileio/f1", **t)["lun"] == 0
    assert rpc.call("lun.create", storage_object="/backstores/ramdisk/r1", **t)["lun"] == 1
    assert rpc.call("lun.create", storage_object="/backstores/block/b1", lun=2, **t)["lun"] == 2
    rpc.call("portal.create", ip_address="127.0.0.1", port=port, **t)
    if port6:
        rpc.call("portal.create", ip_address="::1", port=port6, **t)
    # ACL A: every LUN (add_mapped_luns), CHAP both ways, a tag, an attribute
    assert rpc.call("acl.create", node_wwn=INIT_A, **t)["mapped"] == [0, 1, 2]
    rpc.call("acl.set_auth", node_wwn=INIT_A, userid=A_USER, password=A_SECRET,
             mutual_userid=A_MUSER, mutual_password=A_MSECRET, **t)
    rpc.call("acl.set_attributes", node_wwn=INIT_A, attributes={"nopin_timeout": 10}, **t)
    rpc.call("acl.set_tag", node_wwn=INIT_A, acl_tag="web", **t)
    # ACL B: hand-made mapped LUNs, one write-protected
    rpc.call("acl.create", node_wwn=INIT_B, add_mapped_luns=False, **t)
    rpc.call("mapped_lun.create", node_wwn=INIT_B, mapped_lun=5, tpg_lun=0,
             write_protect=True, **t)
    rpc.call("mapped_lun.create", node_wwn=INIT_B, mapped_lun=7, tpg_lun=2, **t)
    rpc.call("acl.set_auth", node_wwn=INIT_B, userid="client-b", password="client-b-secret", **t)
    # TPG: attributes, parameters, TPG CHAP, enabled
    rpc.call("tpg.set_attributes", attributes={"generate_node_acls": 0, "authentication": 0,
                                               "default_cmdsn_depth": 32,
                                               "login_timeout": 10}, **t)
    rpc.call("tpg.set_parameters", parameters={"MaxRecvDataSegmentLength": "65536",
                                               "TargetAlias": "utarget tree test",
                                               "FirstBurstLength": "32768",
                                               "DefaultTime2Retain": "30"}, **t)
    rpc.call("tpg.set_auth", userid="tpg-user", password="tpg-secret-1234", **t)
    rpc.call("tpg.enable", enable=True, **t)
    rpc.call("discovery_auth.set", enable=True, userid="disc-user",
             password="disc-secret-1234", mutual_userid="disc-target",
             mutual_password="disc-tsecret-12")
    # the anchor goes: the saved tree is what was built over the socket
    rpc.call("target.delete", wwn=ANCHOR)
    return t


def test_tree_built_over_socket_survives_restart(config, utarget, utargetd_bin, workdir,
                                                 loop_factory):
    loopdev = loop_factory(32 * MiB)
    d = utarget(anchor_config(config))
    rpc = RpcClient(d.sock).connect()
    port6 = ut.free_port() if ipv6_loopback() else None
    build_tree(rpc, workdir, config.port, loopdev, port6)
    # the built tree now requires CHAP for A's sessions
    rpc.call("tpg.set_attributes", wwn=IQN, tag=1, attributes={"authentication": 1})
    before = rpc.call("get_config")

    # spot checks that the tree is what was asked for
    tpg = tpg_of(before, IQN)
    assert [t["wwn"] for t in before["targets"]] == [IQN]
    assert sorted((l["index"], l["storage_object"]) for l in tpg["luns"]) == [
        (0, "/backstores/fileio/f1"), (1, "/backstores/ramdisk/r1"), (2, "/backstores/block/b1")]
    acls = {a["node_wwn"]: a for a in tpg["node_acls"]}
    assert acls[INIT_A]["chap_userid"] == A_USER and acls[INIT_A]["tag"] == "web"
    assert {(m["index"], m["tpg_lun"], m["write_protect"]) for m in acls[INIT_B]["mapped_luns"]} \
        == {(5, 0, True), (7, 2, False)}
    assert tpg["parameters"]["MaxRecvDataSegmentLength"] == "65536"
    assert tpg["attributes"]["authentication"] == 1

    # data on the file- and device-backed LUNs (and the ramdisk, which forgets it)
    for lun in (0, 2):
        qemu_ok(d, chap_opts(config.port, IQN, lun, INIT_A, A_USER, A_SECRET),
                ut.pattern_commands(REGIONS, "write") + ut.pattern_commands(REGIONS, "read"))
    qemu_ok(d, chap_opts(config.port, IQN, 1, INIT_A, A_USER, A_SECRET),
            ["write -P 0x77 0 65536", "read -P 0x77 0 65536"])

    res = rpc.call("save_config")
    assert res["file"] == d.cfg_path, res
    st = os.stat(d.cfg_path)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    with open(d.cfg_path) as f:
        text = f.read()
    assert json.loads(text) == before
    assert text == saved_text(before), "not rtslib-fb's format (sorted keys, 2-space indent)"
    assert not os.path.exists(d.cfg_path + ".temp")
    rpc.close()
    d.stop()

    d2 = start_on_file(utarget, utargetd_bin, workdir, config.port, d.cfg_path, "restarted")
    rpc2 = RpcClient(d2.sock).connect()
    after = rpc2.call("get_config")
    assert after == before, "the tree changed across save + restart:\n%s" % _diff(before, after)
    assert "skipped" not in d2.stderr_tail(), d2.stderr_tail()

    # the data is still there, under the same CHAP credentials
    for lun in (0, 2):
        qemu_ok(d2, chap_opts(config.port, IQN, lun, INIT_A, A_USER, A_SECRET),
                ut.pattern_commands(REGIONS, "read"))
    # and straight from the backing file / device, for good measure
    assert not ut.check_regions_in_file(os.path.join(str(workdir), "f1.img"), REGIONS)
    assert not ut.check_regions_in_file(loopdev, REGIONS)
    # the ramdisk LUN came back with its 4096-byte blocks
    res, cap = ut.readcap16("iscsi://%s%%%s@127.0.0.1:%d/%s/1"
                            % (A_USER, A_SECRET, config.port, IQN), initiator=INIT_A)
    assert res.returncode == 0, ut.describe(res, d2)
    assert cap.get("block_size") == 4096, ut.describe(res, d2)
    # an unlisted initiator is still refused, B still cannot write through mapped LUN 5
    res, _ = ut.iscsi_inq("iscsi://127.0.0.1:%d/%s/0" % (config.port, IQN),
                          initiator="iqn.1994-05.com.example:stranger")
    assert res.returncode != 0, ut.describe(res, d2)
    if port6:
        res = ut.run(["iscsi-inq", "-i", INIT_A, "iscsi://%s%%%s@[::1]:%d/%s/0"
                      % (A_USER, A_SECRET, port6, IQN)])
        assert res.returncode == 0, ut.describe(res, d2)

    # saving the unchanged tree again rewrites the same text and makes no new backup
    # (the one there is the anchor-only file the test started with)
    kept = backups(workdir)
    assert len(kept) == 1, kept
    res = rpc2.call("save_config")
    with open(d.cfg_path) as f:
        assert f.read() == text
    assert backups(workdir) == kept
    rpc2.close()


def _diff(a, b, path=""):
    """A short description of where two JSON values differ."""
    out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append("%s/%s: %r vs %r" % (path, k, a.get(k, "<missing>"),
                                                 b.get(k, "<missing>")))
            elif a[k] != b[k]:
                out += _diff(a[k], b[k], "%s/%s" % (path, k)).splitlines()
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                out += _diff(x, y, "%s[%d]" % (path, i)).splitlines()
    else:
        out.append("%s: %r vs %r" % (path, a, b))
    return "\n".join(out[:40])


# --------------------------------------------------------------------------- targetcli fixture

FIX_T1 = "iqn.2003-01.org.linux-iscsi.storage.x8664:sn.4b2f81d0a6c3"
FIX_T2 = "iqn.2003-01.org.linux-iscsi.storage.x8664:sn.9c7e2d415a0b"
FIX_C1 = "iqn.1994-05.com.redhat:client1"
FIX_C2 = "iqn.1994-05.com.redhat:client2"


def fixture_config(workdir, port, loopdev):
    """The targetcli-fb file with its paths moved to the temp dir, its block device
    replaced by a loop device and its portals (0.0.0.0:3260) by 127.0.0.1:<port>."""
    with open(FIXTURE) as f:
        text = f.read()
    text = text.replace("/var/lib/iscsi_disks/", str(workdir) + "/")
    text = text.replace('"/dev/vdb"', json.dumps(loopdev))
    cfg = json.loads(text)
    for t in cfg["targets"]:
        for tpg in t["tpgs"]:
            for p in tpg["portals"]:
                assert (p["ip_address"], p["port"]) == ("0.0.0.0", 3260)
                p["ip_address"], p["port"] = "127.0.0.1", port
    return cfg


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    return path


def test_fixture_is_targetcli_format():
    with open(FIXTURE) as f:
        text = f.read()
    cfg = json.loads(text)
    assert text == saved_text(cfg), "the fixture must stay byte-for-byte rtslib-fb output"
    assert sorted(cfg) == ["fabric_modules", "storage_objects", "targets"]


def test_targetcli_fixture_restores_and_serves(config, utarget, utargetd_bin, workdir,
                                               loop_factory):
    loopdev = loop_factory(32 * MiB)
    src = fixture_config(workdir, config.port, loopdev)
    path = write_json(os.path.join(str(workdir), "targetcli.json"), src)
    d = start_on_file(utarget, utargetd_bin, workdir, config.port, path, "fixture")
    assert "skipped" not in d.stderr_tail(), d.stderr_tail()
    rpc = RpcClient(d.sock).connect()
    got = rpc.call("get_config")

    # storage objects: every one, with its wwn, size, flags and exactly LIO's attributes
    # (PI, restricted reordering, force_pr_aptpl and unmap_zeroes_data included)
    so_got = {s["name"]: s for s in got["storage_objects"]}
    assert sorted(so_got) == ["blk1", "disk1", "disk2", "rd1"]
    for so in src["storage_objects"]:
        g = so_got[so["name"]]
        for k in ("plugin", "wwn", "dev", "size", "write_back", "readonly"):
            if k in so:
                assert g.get(k) == so[k], (so["name"], k, g.get(k), so[k])
        assert g["attributes"] == so["attributes"], _diff(so["attributes"], g["attributes"])
    assert os.path.getsize(os.path.join(str(workdir), "disk1.img")) == 64 * MiB

    # targets: TPG attributes and known parameters, LUN and mapped-LUN aliases, ACLs
    for t in src["targets"]:
        for stpg in t["tpgs"]:
            gtpg = tpg_of(got, t["wwn"], stpg["tag"])
            assert gtpg["enable"] == stpg["enable"]
            assert gtpg["attributes"] == stpg["attributes"]
            # every parameter, the iSER ones (RDMAExtensions, ...) included
            assert gtpg["parameters"] == stpg["parameters"], \
                _diff(stpg["parameters"], gtpg["parameters"])
            assert [(l["index"], l["storage_object"], l["alias"]) for l in gtpg["luns"]] == \
                [(l["index"], l["storage_object"], l["alias"]) for l in stpg["luns"]]
            assert [(p["ip_address"], p["port"]) for p in gtpg["portals"]] == \
                [("127.0.0.1", config.port)]
            for sacl, gacl in zip(stpg["node_acls"], gtpg["node_acls"]):
                assert gacl == sacl, _diff(sacl, gacl)
            assert len(gtpg["node_acls"]) == len(stpg["node_acls"])
    assert got["fabric_modules"] == src["fabric_modules"]

    # I/O: client1 with CHAP on target 1's fileio, block and ramdisk LUNs; demo mode on
    # target 2; client2's mapped LUN 0 is the block LUN, write-protected
    for lun in (0, 1, 2):
        qemu_ok(d, chap_opts(config.port, FIX_T1, lun, FIX_C1, "client1", "client1-secret"),
                ["write -P 0x5%d 0 65536" % lun, "read -P 0x5%d 0 65536" % lun])
    qemu_ok(d, ut.image_opts(config.port, FIX_T2, 0, initiator="iqn.1994-05.com.example:any"),
            ["write -P 0x61 1M 65536", "read -P 0x61 1M 65536"])
    res = ut.qemu_io(chap_opts(config.port, FIX_T1, 0, FIX_C2, "client2", "client2-secret"),
                     ["read -P 0x51 0 65536"], read_only=True)
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    assert not ut.check_regions_in_file(os.path.join(str(workdir), "disk1.img"),
                                        [(0, 65536, 0x50)])
    assert not ut.check_regions_in_file(loopdev, [(0, 65536, 0x51)])
    assert not ut.check_regions_in_file(os.path.join(str(workdir), "disk2.img"),
                                        [(MiB, 65536, 0x61)])
    # client1 with a wrong secret is refused (authentication=1 came through)
    res = ut.qemu_io(chap_opts(config.port, FIX_T1, 0, FIX_C1, "client1", "wrong-secret-12"),
                     ["read 0 512"])
    assert ut.qemu_io_problems(res), ut.describe(res, d)
    rpc.close()


def broken_fixture(workdir, port, loopdev):
    """The fixture with one broken storage object (disk2's file in a missing directory).
    Everything that depends on it (target 2's LUN 0) cannot load either."""
    cfg = fixture_config(workdir, port, loopdev)
    for so in cfg["storage_objects"]:
        if so["name"] == "disk2":
            so["dev"] = os.path.join(str(workdir), "missing-dir", "disk2.img")
    return cfg


def test_restore_config_reports_per_object_and_loads_the_rest(config, utarget, workdir,
                                                              loop_factory):
    loopdev = loop_factory(32 * MiB)
    d = utarget(anchor_config(config))
    rpc = RpcClient(d.sock).connect()
    broken = broken_fixture(workdir, config.port, loopdev)
    path = write_json(os.path.join(str(workdir), "broken.json"), broken)

    # refused while the configuration is not empty, and nothing changes
    before = rpc.call("get_config")
    e = rpc.error("restore_config", file=path)
    assert e.code == REFUSED and "clear_existing" in e.message, e
    assert rpc.call("get_config") == before

    res = rpc.call("restore_config", file=path, clear_existing=True)
    errors = res["errors"]
    assert errors, res
    assert all(x.endswith(", skipped") for x in errors), errors
    assert any("disk2" in x for x in errors), errors
    assert any(FIX_T2 in x and "LUN 0" in x for x in errors), errors
    assert len(errors) == 2, errors
    got = rpc.call("get_config")
    assert sorted(s["name"] for s in got["storage_objects"]) == ["blk1", "disk1", "rd1"]
    assert sorted(t["wwn"] for t in got["targets"]) == sorted([FIX_T1, FIX_T2])
    assert ANCHOR not in [t["wwn"] for t in got["targets"]]
    assert tpg_of(got, FIX_T2)["luns"] == []
    assert len(tpg_of(got, FIX_T1)["node_acls"]) == 2
    # the rest serves
    qemu_ok(d, chap_opts(config.port, FIX_T1, 0, FIX_C1, "client1", "client1-secret"),
            ["write -P 0x42 0 4096", "read -P 0x42 0 4096"])
    rpc.close()


def test_restore_config_abort_on_error_leaves_nothing(config, utarget, workdir,
                                                      loop_factory):
    loopdev = loop_factory(32 * MiB)
    d = utarget(anchor_config(config))
    rpc = RpcClient(d.sock).connect()
    broken = broken_fixture(workdir, config.port, loopdev)
    path = write_json(os.path.join(str(workdir), "broken.json"), broken)

    rpc.call("clear_config", confirm=True)
    empty = rpc.call("get_config")
    assert empty["storage_objects"] == [] and empty["targets"] == [], empty
    e = rpc.error("restore_config", file=path, abort_on_error=True)
    assert e.code == REFUSED and "not restored" in e.message.lower(), e
    assert rpc.call("get_config") == empty
    # nothing of it lingers: the portal is closed, the files it created may stay but
    # a second attempt without the broken object loads cleanly
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", config.port), timeout=5).close()
    fixed = fixture_config(workdir, config.port, loopdev)
    res = rpc.call("restore_config", config=fixed)
    assert res["errors"] == [], res
    assert sorted(s["name"] for s in rpc.call("get_config")["storage_objects"]) == \
        ["blk1", "disk1", "disk2", "rd1"]

    # a file that is not JSON: refused with a clear error, nothing changes
    bad = os.path.join(str(workdir), "bad.json")
    with open(bad, "w") as f:
        f.write('{"storage_objects": [')
    before = rpc.call("get_config")
    e = rpc.error("restore_config", file=bad, clear_existing=True)
    assert e.code == REFUSED and "bad.json" in e.message, e
    assert rpc.call("get_config") == before
    rpc.close()


def test_restore_reports_unknown_attribute_and_parameter(config, utarget, workdir,
                                                        loop_factory):
    """A name this daemon does not have (a typo, or a newer kernel's setting) is reported
    the way rtslib reports it and ignored; the object itself is restored. With
    abort_on_error it refuses the whole file, as rtslib does."""
    loopdev = loop_factory(32 * MiB)
    d = utarget(anchor_config(config))
    rpc = RpcClient(d.sock).connect()
    cfg = fixture_config(workdir, config.port, loopdev)
    disk1 = [so for so in cfg["storage_objects"] if so["name"] == "disk1"][0]
    disk1["attributes"]["emulate_fooo"] = 1
    cfg["targets"][0]["tpgs"][0]["parameters"]["MaxBurstLenght"] = "65536"

    rpc.call("clear_config", confirm=True)
    empty = rpc.call("get_config")
    e = rpc.error("restore_config", config=cfg, abort_on_error=True)
    assert e.code == REFUSED and "not restored" in e.message.lower(), e
    assert rpc.call("get_config") == empty

    res = rpc.call("restore_config", config=cfg)
    assert sorted(res["errors"]) == sorted([
        "Storage object fileio/disk1: Cannot find attribute: emulate_fooo, ignored",
        "%s tpg1: Cannot find parameter: MaxBurstLenght, ignored" % FIX_T1]), res
    got = rpc.call("get_config")
    assert sorted(s["name"] for s in got["storage_objects"]) == \
        ["blk1", "disk1", "disk2", "rd1"]
    g1 = [so for so in got["storage_objects"] if so["name"] == "disk1"][0]
    del disk1["attributes"]["emulate_fooo"]
    assert g1["attributes"] == disk1["attributes"], _diff(disk1["attributes"],
                                                          g1["attributes"])
    assert "MaxBurstLenght" not in tpg_of(got, FIX_T1, 1)["parameters"]
    assert "Cannot find attribute: emulate_fooo" in d.stderr_tail()
    rpc.close()


def test_daemon_start_with_broken_object_loads_the_rest(config, utarget, utargetd_bin,
                                                         workdir, loop_factory):
    loopdev = loop_factory(32 * MiB)
    path = write_json(os.path.join(str(workdir), "broken.json"),
                      broken_fixture(workdir, config.port, loopdev))
    d = start_on_file(utarget, utargetd_bin, workdir, config.port, path, "broken")
    log = d.stderr_tail()
    assert "disk2" in log and "skipped" in log, log
    with RpcClient(d.sock) as rpc:
        got = rpc.call("get_config")
    assert sorted(s["name"] for s in got["storage_objects"]) == ["blk1", "disk1", "rd1"]
    qemu_ok(d, chap_opts(config.port, FIX_T1, 2, FIX_C1, "client1", "client1-secret"),
            ["write -P 0x24 0 8192", "read -P 0x24 0 8192"])


# --------------------------------------------------------------------------- save_config

def backups(workdir):
    bdir = os.path.join(str(workdir), "backup")
    return sorted(os.listdir(bdir)) if os.path.isdir(bdir) else []


def test_save_mode_backups_and_pruning(config, utarget, workdir):
    config.ramdisk("rd0", size=MiB)
    config.target(ut.DEFAULT_TARGET).tpg().lun(0, "/backstores/ramdisk/rd0")
    d = utarget(config)
    rpc = RpcClient(d.sock).connect()
    os.chmod(d.cfg_path, 0o644)
    with open(d.cfg_path) as f:
        original = f.read()

    res = rpc.call("save_config")
    assert stat.S_IMODE(os.stat(d.cfg_path).st_mode) == 0o600
    assert res["backup_dir"] == os.path.join(str(workdir), "backup"), res
    assert res["backups_kept"] == 10, res
    # the file the test wrote differs from the daemon's dump: it was backed up, intact
    (first,) = backups(workdir)
    assert re.match(r"^saveconfig-\d{8}-\d\d:\d\d:\d\d.*json", first), first
    with open(os.path.join(str(workdir), "backup", first)) as f:
        assert f.read() == original
    assert stat.S_IMODE(os.stat(os.path.join(str(workdir), "backup", first)).st_mode) == 0o600

    # 14 more saves, each after a change: each keeps the previous file, 10 at most stay.
    # Saves come faster than one a second; no backup may be lost to a name clash.
    contents = []
    for i in range(14):
        with open(d.cfg_path) as f:
            contents.append(f.read())
        rpc.call("tpg.set_attributes", wwn=ut.DEFAULT_TARGET, tag=1,
                 attributes={"default_cmdsn_depth": 100 + i})
        rpc.call("save_config")
    names = backups(workdir)
    assert len(names) == 10, names
    kept = []
    for n in names:
        with open(os.path.join(str(workdir), "backup", n)) as f:
            kept.append(f.read())
    assert kept == contents[-10:], "backups are not the 10 newest previous files, in " \
        "order: %s" % [(n, contents.index(k) if k in contents else None)
                       for n, k in zip(names, kept)]
    # a file that cannot be written: a clear error, the old file and backups untouched
    with open(d.cfg_path) as f:
        current = f.read()
    e = rpc.error("save_config", file=os.path.join(d.cfg_path, "x.json"))
    assert e.code == REFUSED and d.cfg_path in e.message, e
    with open(d.cfg_path) as f:
        assert f.read() == current
    assert backups(workdir) == names
    # another file by name (save_config file=...) also gets 0600
    other = os.path.join(str(workdir), "sub", "other.json")
    res = rpc.call("save_config", file=other)
    assert res["file"] == other
    assert stat.S_IMODE(os.stat(other).st_mode) == 0o600
    with open(other) as f:
        assert json.load(f) == rpc.call("get_config")
    rpc.close()


def _many_acls(rpc, n):
    t = {"wwn": ut.DEFAULT_TARGET, "tag": 1}
    for i in range(n):
        rpc.call("acl.create", node_wwn="iqn.1994-05.com.example:host-%05d" % i, **t)


def test_sigkill_during_save_leaves_old_or_new_file(config, utarget, utargetd_bin, workdir):
    config.ramdisk("rd0", size=MiB)
    config.ramdisk("rd1", size=MiB)
    tpg = config.target(ut.DEFAULT_TARGET).tpg(generate_node_acls=0)
    tpg.lun(0, "/backstores/ramdisk/rd0").lun(1, "/backstores/ramdisk/rd1")
    d = utarget(config)
    cfg_path = d.cfg_path
    with RpcClient(d.sock) as rpc:
        _many_acls(rpc, 1500)          # a few MB of JSON: a save takes a while
        t0 = time.monotonic()
        rpc.call("save_config")
        save_time = time.monotonic() - t0
    d.stop()
    rng = random.Random(4)
    saw_old = saw_new = 0
    for i in range(30):
        with open(cfg_path) as f:
            old_text = f.read()
        old = json.loads(old_text)
        di = start_on_file(utarget, utargetd_bin, workdir, config.port, cfg_path,
                           "kill%02d" % i)
        rpc = RpcClient(di.sock).connect()
        assert rpc.call("get_config") == old, "restart %d did not load the saved file" % i
        # a change, so the new file differs from the old one
        rpc.call("tpg.set_attributes", wwn=ut.DEFAULT_TARGET, tag=1,
                 attributes={"default_cmdsn_depth": 1 + i})
        rpc.call("acl.create", node_wwn="iqn.1994-05.com.example:extra-%02d" % i,
                 wwn=ut.DEFAULT_TARGET, tag=1)
        new = rpc.call("get_config")
        # fire the save and kill the daemon somewhere inside it
        rpc.send_raw(json.dumps({"jsonrpc": "2.0", "id": 99, "method": "save_config",
                                 "params": {}}).encode() + b"\n")
        time.sleep(rng.uniform(0, save_time * 1.5))
        os.killpg(di.proc.pid, signal.SIGKILL)
        di.proc.wait(30)
        di.stopped = True
        rpc.close()
        with open(cfg_path) as f:
            text = f.read()
        try:
            now = json.loads(text)
        except ValueError:
            raise AssertionError("round %d: saveconfig.json is broken after SIGKILL "
                                 "(%d bytes)" % (i, len(text)))
        assert now in (old, new), "round %d: the file is neither the old nor the new one" % i
        if now == new:
            saw_new += 1
            assert text == saved_text(new)
        else:
            saw_old += 1
            assert text == old_text
        assert stat.S_IMODE(os.stat(cfg_path).st_mode) == 0o600
    # not a proof, but the random delays should have hit both sides at least once
    print("SIGKILL rounds: %d left the old file, %d the new one" % (saw_old, saw_new))
    assert saw_old + saw_new == 30
