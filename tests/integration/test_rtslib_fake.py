"""utarget.rtslib against an in-memory fake of the control socket
(fake_utargetd.py): the rtslib API surface, its modes and errors, without
utargetd. test_rtslib.py runs the same module against the real daemon."""

import json
import os
import subprocess
import sys

import pytest

import rtslib_testutil as rt
from fake_utargetd import FakeUtargetd

from utarget import rtslib
from utarget.rtslib import (LUN, TPG, BlockStorageObject, FabricModule, FileIOBackstore,
                            FileIOStorageObject, IBlockBackstore, IBlockStorageObject,
                            MappedLUN, NetworkPortal, NodeACL, PSCSIStorageObject,
                            RDMCPBackstore, RDMCPStorageObject, RTSLibError,
                            RTSLibNotInCFSError, RTSRoot, Target)

IQN = "iqn.2003-01.org.example:t1"
INIT = "iqn.1994-05.com.example:init1"


@pytest.fixture
def fake(tmp_path):
    # Short path: AF_UNIX paths are limited to 107 bytes.
    with FakeUtargetd(tmp_path / "ctl.sock") as f:
        yield f


@pytest.fixture
def root(fake):
    r = RTSRoot(fake.path)
    yield r
    rtslib.set_default_socket(None)


@pytest.fixture
def img(tmp_path):
    p = tmp_path / "disk.img"
    with open(p, "wb") as f:
        f.truncate(16 << 20)
    return str(p)


def build(img):
    so = FileIOStorageObject("disk", img)
    tpg = TPG(Target(FabricModule("iscsi"), IQN), 1)
    lun = LUN(tpg, 0, so)
    acl = NodeACL(tpg, INIT)
    return so, tpg, lun, acl


def test_wiki_example_against_fake(fake, tmp_path, img):
    src, changed = rt.adapted_wiki_example(img, "127.0.0.1", 3261)
    assert len(changed) == 3, changed
    script = tmp_path / "wiki.py"
    script.write_text(src)
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=rt.python_env(fake.path), timeout=60)
    assert res.returncode == 0, res.stderr
    cfg = fake.config
    assert [(so["plugin"], so["name"], so["dev"]) for so in cfg["storage_objects"]] == \
        [("fileio", "sdb", img)]
    (t,) = cfg["targets"]
    assert t["wwn"] == rt.WIKI_TARGET
    (tp,) = t["tpgs"]
    assert tp["tag"] == 1 and tp["enable"] is True
    assert tp["attributes"]["authentication"] == 0
    assert tp["portals"] == [{"ip_address": "127.0.0.1", "port": 3261, "iser": False,
                              "offload": False}]
    assert [(lun["index"], lun["storage_object"]) for lun in tp["luns"]] == \
        [(0, "/backstores/fileio/sdb")]
    (acl,) = tp["node_acls"]
    assert acl["node_wwn"] == rt.WIKI_INITIATOR
    assert acl["mapped_luns"] == [{"index": 0, "tpg_lun": 0, "write_protect": False}]


def test_tree_and_properties(root, img):
    so, tpg, lun, acl = build(img)
    NetworkPortal(tpg, "127.0.0.1", 3262)
    m = acl.mapped_lun(0, lun)
    tpg.enable = True
    assert tpg.enable is True
    assert so.status == "activated" and so.udev_path == img and so.size == 16 << 20
    assert so.write_back is False           # rtslib-fb's default, not the API's
    assert [l.lun for l in so.attached_luns] == [0]
    assert lun.storage_object == so and lun.storage_object.name == "disk"
    assert [x.mapped_lun for x in lun.mapped_luns] == [0]
    assert m.tpg_lun == lun and m.write_protect is False and m.node_wwn == INIT
    m.write_protect = True
    assert MappedLUN(acl, 0).write_protect is True
    assert [t.wwn for t in root.targets] == [IQN]
    assert [t.tag for t in root.tpgs] == [1]
    assert [(p.ip_address, p.port) for p in root.network_portals] == [("127.0.0.1", 3262)]
    assert [a.node_wwn for a in root.node_acls] == [INIT]
    assert [x.mapped_lun for x in root.mapped_luns] == [0]
    assert [s.name for s in root.storage_objects] == ["disk"]
    assert [f.name for f in root.fabric_modules] == ["iscsi"]
    assert tpg.path == "/iscsi/%s/tpg1" % IQN
    assert acl.path == "/iscsi/%s/tpg1/acls/%s" % (IQN, INIT)
    assert m.path.endswith("/acls/%s/mapped_lun0" % INIT)
    assert root.dump()["targets"][0]["wwn"] == IQN
    assert tpg.dump()["tag"] == 1


def test_lookup_missing_raises(root, img):
    fm = FabricModule("iscsi")
    with pytest.raises(RTSLibError):
        Target(fm, IQN, mode="lookup")
    with pytest.raises(RTSLibNotInCFSError):
        Target(fm, IQN, mode="lookup")
    with pytest.raises(RTSLibError):
        FileIOStorageObject("nosuch")
    with pytest.raises(RTSLibError):
        BlockStorageObject("nosuch")
    with pytest.raises(RTSLibError):
        RDMCPStorageObject("nosuch")
    with pytest.raises(RTSLibError):
        PSCSIStorageObject("nosuch")
    so, tpg, lun, acl = build(img)
    with pytest.raises(RTSLibError):
        TPG(tpg.parent_target, 2, mode="lookup")
    with pytest.raises(RTSLibError):
        NetworkPortal(tpg, "127.0.0.1", 3263, mode="lookup")
    with pytest.raises(RTSLibError):
        NodeACL(tpg, "iqn.1994-05.com.example:other", mode="lookup")
    with pytest.raises(RTSLibError):
        LUN(tpg, 7)
    with pytest.raises(RTSLibError):
        MappedLUN(acl, 3)
    with pytest.raises(RTSLibError):
        TPG(Target(fm, "iqn.2003-01.org.example:none", mode="any"), 1, mode="lookup")
    # Nothing was created by the failed lookups (mode='any' made the target).
    assert [t.tag for t in root.tpgs] == [1]
    assert [lu.lun for lu in root.luns] == [0] and list(root.mapped_luns) == []


def test_create_existing_raises(root, img):
    so, tpg, lun, acl = build(img)
    NetworkPortal(tpg, "127.0.0.1", 3264)
    acl.mapped_lun(0, 0)
    fm = FabricModule("iscsi")
    with pytest.raises(RTSLibError):
        Target(fm, IQN, mode="create")
    with pytest.raises(RTSLibError):
        TPG(tpg.parent_target, 1, mode="create")
    with pytest.raises(RTSLibError):
        NetworkPortal(tpg, "127.0.0.1", 3264, mode="create")
    with pytest.raises(RTSLibError):
        NodeACL(tpg, INIT, mode="create")
    with pytest.raises(RTSLibError):
        FileIOStorageObject("disk", img)
    with pytest.raises(RTSLibError):
        LUN(tpg, 0, so)
    with pytest.raises(RTSLibError):
        acl.mapped_lun(0, 0)
    # mode='any' finds what exists without complaint
    assert Target(fm, IQN).wwn == IQN
    assert TPG(tpg.parent_target, 1).tag == 1
    assert NodeACL(tpg, INIT).node_wwn == INIT
    with pytest.raises(RTSLibError):
        Target(fm, IQN, mode="bogus")


def test_attributes_parameters_auth(root, img):
    so, tpg, lun, acl = build(img)
    tpg.set_attribute("authentication", False)
    assert tpg.get_attribute("authentication") == "0"
    tpg.set_attribute("default_cmdsn_depth", "128")
    assert tpg.get_attribute("default_cmdsn_depth") == "128"
    assert "authentication" in tpg.list_attributes()
    with pytest.raises(RTSLibError):
        tpg.get_attribute("nosuch")
    with pytest.raises(RTSLibError):
        tpg.set_attribute("nosuch", 1)
    tpg.set_parameter("InitialR2T", "No")
    assert tpg.get_parameter("InitialR2T") == "No"
    tpg.set_parameter("ImmediateData", False)
    assert tpg.get_parameter("ImmediateData") == "No"
    so.set_attribute("block_size", 4096)
    assert so.get_attribute("block_size") == "4096"
    # the daemon's read-only row (the fake once invented hw_block_size here)
    assert "hw_max_sectors" not in so.list_attributes(writable=True)
    assert "hw_max_sectors" in so.list_attributes(writable=False)
    tpg.chap_userid = "tu"
    tpg.chap_password = "tp12345678901"
    assert (tpg.chap_userid, tpg.chap_password) == ("tu", "tp12345678901")
    acl.chap_userid = "iu"
    acl.chap_mutual_userid = "mu"
    acl.chap_mutual_password = "mp12345678901"
    assert (acl.chap_userid, acl.chap_mutual_userid, acl.chap_mutual_password) == \
        ("iu", "mu", "mp12345678901")
    assert acl.authenticate_target is True
    acl.set_attribute("nopin_timeout", 30)
    assert acl.get_attribute("nopin_timeout") == "30"
    acl.tag = "group1"
    assert acl.tag == "group1"
    acl.tag = None
    assert acl.tag is None
    fm = FabricModule("iscsi")
    fm.discovery_userid = "du"
    fm.discovery_enable_auth = True
    assert fm.discovery_userid == "du" and fm.discovery_enable_auth is True
    with pytest.raises(RTSLibError):
        LUN(tpg, 0).set_parameter("x", 1)     # LUNs have no parameters
    with pytest.raises(RTSLibError):
        FabricModule("loopback")


def test_delete(root, img):
    so, tpg, lun, acl = build(img)
    acl.mapped_lun(0, 0)
    portal = NetworkPortal(tpg, "127.0.0.1", 3265)
    portal.delete()
    assert not portal.exists
    with pytest.raises(RTSLibNotInCFSError):
        portal.delete()
    so.delete()                 # rtslib-fb: its LUNs go first (and their mappings)
    assert not so.exists and not lun.exists and list(acl.mapped_luns) == []
    tpg.parent_target.delete()
    assert list(root.targets) == []
    with pytest.raises(RTSLibNotInCFSError):
        _ = tpg.enable


def test_generated_names(root):
    t = Target(FabricModule("iscsi"))
    assert t.wwn.startswith("iqn.")
    tpg = TPG(t)
    assert tpg.tag == 1
    assert TPG(t).tag == 2
    rd = RDMCPStorageObject("rd", size="1M")
    assert rd.size == 1 << 20 and rd.wwn
    lun = LUN(tpg, storage_object=rd)
    assert lun.lun == 0
    with pytest.raises(RTSLibError):
        Target(FabricModule("iscsi"), mode="lookup")


def test_legacy_backstores(root, tmp_path, img):
    bs = IBlockBackstore(0, mode="create")
    so = IBlockStorageObject(bs, "f", img, gen_wwn=True)
    assert isinstance(so, FileIOStorageObject)          # a regular file -> fileio
    assert [o.name for o in bs.storage_objects] == ["f"]
    fbs = FileIOBackstore(1, mode="create")
    f2 = fbs.storage_object("f2", str(tmp_path / "f2.img"), "4M")
    assert f2.size == 4 << 20 and os.path.getsize(tmp_path / "f2.img") == 4 << 20
    f3 = FileIOStorageObject(fbs, "f3", str(tmp_path / "f3.img"), "1M", True, True)
    assert f3.write_back is True
    rbs = RDMCPBackstore(2)
    r = rbs.storage_object("r", 1 << 20)
    assert isinstance(r, RDMCPStorageObject) and r.size == 1 << 20
    r2 = RDMCPStorageObject(rbs, "r2", "2M")
    assert r2.size == 2 << 20
    bs.delete()
    assert not so.exists
    assert sorted(s.name for s in root.storage_objects) == ["f2", "f3", "r", "r2"]


def test_save_restore(root, fake, tmp_path, img):
    build(img)
    save = tmp_path / "saved.json"
    res = root.save_to_file(str(save))
    assert res["file"] == str(save)
    saved = json.loads(save.read_text())
    assert saved["targets"][0]["wwn"] == IQN
    with pytest.raises(RTSLibError):
        root.clear_existing()                    # confirm=False
    root.clear_existing(confirm=True)
    assert list(root.targets) == [] and list(root.storage_objects) == []
    assert root.restore_from_file(str(save)) == []
    assert [t.wwn for t in root.targets] == [IQN]
    errors = root.restore(saved, clear_existing=True)
    assert errors == []
    method, params = fake.calls[-1]
    assert method == "restore_config" and params["clear_existing"] is True
    assert not os.path.exists(params["file"])    # the temp file is gone
    # selective restore of one storage object
    root.clear_existing(target=IQN, confirm=True)
    root.clear_existing(storage_object="disk", confirm=True)
    assert list(root.storage_objects) == []
    root.restore(saved, storage_object="disk")
    assert [s.name for s in root.storage_objects] == ["disk"]


def test_sessions(root, fake, img):
    so, tpg, lun, acl = build(img)
    fake.sessions = [{"tsih": 1, "sid": 5, "type": "Normal", "state": "LOGGED_IN",
                      "initiator": INIT, "alias": "host1", "isid": "400001370000",
                      "target": IQN, "tpg": 1, "authenticated": False,
                      "connections": [{"cid": 0, "address": "127.0.0.1:40000",
                                       "local_address": "127.0.0.1:3266",
                                       "state": "LOGGED_IN"}],
                      "parameters": {"MaxBurstLength": "262144"},
                      "mapped_luns": []}]
    (s,) = list(root.sessions)
    assert s["id"] == 5 and s["alias"] == "host1" and s["parent_nodeacl"] == acl
    assert s["connections"][0]["cstate"] == "LOGGED_IN"
    assert acl.session["id"] == 5
    assert acl.get_parameter("MaxBurstLength") == "262144"
    with pytest.raises(RTSLibError):
        acl.set_parameter("MaxBurstLength", "1")


def test_no_daemon(tmp_path):
    r = None
    try:
        r = RTSRoot(str(tmp_path / "none.sock"))
        with pytest.raises(RTSLibError) as ei:
            list(r.targets)
        assert "none.sock" in str(ei.value)
    finally:
        rtslib.set_default_socket(None)


def test_socket_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("UTARGET_SOCKET", "/x/env.sock")
    assert rtslib.default_socket_path() == "/x/env.sock"
    monkeypatch.delenv("UTARGET_SOCKET")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    expect = ("/run/utarget/utargetd.sock" if os.geteuid() == 0
              else "/run/user/1000/utarget/utargetd.sock")
    assert rtslib.default_socket_path() == expect


def test_reconnects_after_daemon_closed_connection(fake, root):
    assert list(root.targets) == []
    first = root._client._sock
    fake.drop_connections()         # the daemon side goes away between two requests
    import time
    time.sleep(0.1)
    assert list(root.targets) == []
    assert root._client._sock is not first
