"""utarget.rtslib against a live utargetd (issue 10).

The LIO wiki's "Scripting with RTSlib" example (data/rtslib_wiki_example.py)
runs with only its import line, /dev/sdb and its portal address changed, and
must leave the tree the wiki shows: the target, tpg1 enabled, lun0, the
portal, the ACL with mapped_lun0. Then the ACL's initiator reads LUN 0 and
another initiator is refused. Errors: lookup of a missing object raises
RTSLibError, mode='create' of an existing one raises, and neither changes
the configuration.

The daemon fixture waits for a portal on `config.port`, so the daemon starts
with a placeholder target listening there; the test deletes it through
rtslib once the example ran, which leaves exactly the wiki's tree.
"""

import os
import re
import subprocess
import sys
import time

import pytest

import rtslib_testutil as rt
import uthelpers as ut

from utarget import rtslib
from utarget.rtslib import (LUN, TPG, FabricModule, FileIOStorageObject, MappedLUN,
                            NetworkPortal, NodeACL, RDMCPStorageObject, RTSLibError,
                            RTSLibNotInCFSError, RTSRoot, Target)

PLACEHOLDER = "iqn.2003-01.org.example.utarget:placeholder"
PATTERN = 0x5A
OTHER_INITIATOR = "iqn.1994-05.com.example:not-in-the-acl"


@pytest.fixture(autouse=True)
def _reset_default_client():
    yield
    rtslib.set_default_socket(None)


def start_daemon(utarget, config):
    config.target(PLACEHOLDER).tpg()        # its portal is 127.0.0.1:config.port
    return utarget(config)


def run_wiki_example(utarget, config, workdir):
    """Start utargetd, run the adapted wiki example; returns (daemon, portal port, image)."""
    d = start_daemon(utarget, config)
    image = os.path.join(str(workdir), "sdb.img")
    with open(image, "wb") as f:
        f.truncate(64 * ut.MiB)
        f.seek(0)
        f.write(bytes([PATTERN]) * 4096)
    port = ut.free_port()
    while port == config.port:
        port = ut.free_port()
    src, changed = rt.adapted_wiki_example(image, "127.0.0.1", port)
    assert len(changed) == 3, changed
    script = os.path.join(str(workdir), "wiki_example.py")
    with open(script, "w") as f:
        f.write(src)
    res = subprocess.run([sys.executable, script], capture_output=True, text=True,
                         env=rt.python_env(d.sock), timeout=120, cwd=str(workdir))
    assert res.returncode == 0, ("the wiki example failed\n--- stderr ---\n%s\n"
                                 "--- utargetd stderr ---\n%s"
                                 % (res.stderr, d.stderr_tail(3000)))
    root = RTSRoot(d.sock)
    Target(FabricModule("iscsi"), PLACEHOLDER, mode="lookup").delete()
    assert [t.wwn for t in root.targets] == [rt.WIKI_TARGET]
    return d, port, image


def wiki_url(port, lun=0):
    return "iscsi://127.0.0.1:%d/%s/%d" % (port, rt.WIKI_TARGET, lun)


def test_wiki_example_tree(utarget, config, workdir):
    d, port, image = run_wiki_example(utarget, config, workdir)
    cfg = RTSRoot(d.sock).dump()

    (so,) = cfg["storage_objects"]
    # A regular file instead of /dev/sdb: IBlockStorageObject makes it fileio.
    assert (so["plugin"], so["name"], so["dev"]) == ("fileio", "sdb", image)
    assert so["size"] == 64 * ut.MiB and so.get("wwn")       # gen_wwn=True
    (t,) = cfg["targets"]
    assert (t["fabric"], t["wwn"]) == ("iscsi", rt.WIKI_TARGET)
    (tpg,) = t["tpgs"]
    assert tpg["tag"] == 1 and tpg["enable"] is True
    assert tpg["attributes"]["authentication"] == 0
    assert [(lun["index"], lun["storage_object"]) for lun in tpg["luns"]] == \
        [(0, "/backstores/fileio/sdb")]
    assert [(p["ip_address"], p["port"]) for p in tpg["portals"]] == [("127.0.0.1", port)]
    (acl,) = tpg["node_acls"]
    assert acl["node_wwn"] == rt.WIKI_INITIATOR
    assert [(m["index"], m["tpg_lun"], m["write_protect"]) for m in acl["mapped_luns"]] == \
        [(0, 0, False)]

    # The same tree through the rtslib objects.
    root = RTSRoot(d.sock)
    (tpg_o,) = root.tpgs
    assert tpg_o.enable is True and tpg_o.path == "/iscsi/%s/tpg1" % rt.WIKI_TARGET
    (lun_o,) = tpg_o.luns
    assert lun_o.lun == 0 and lun_o.storage_object.name == "sdb"
    assert lun_o.storage_object.status == "activated"
    (portal_o,) = tpg_o.network_portals
    assert (portal_o.ip_address, portal_o.port) == ("127.0.0.1", port)
    (acl_o,) = tpg_o.node_acls
    (m_o,) = acl_o.mapped_luns
    assert m_o.mapped_lun == 0 and m_o.tpg_lun == lun_o and m_o.write_protect is False


def _utargetcli():
    p = os.environ.get("UTARGETCLI") or str(rt.REPO / "build" / "utargetcli")
    return p if os.path.isabs(p) else str(rt.REPO / p)


def test_wiki_example_tree_in_utargetcli_ls(utarget, config, workdir):
    d, port, image = run_wiki_example(utarget, config, workdir)
    cli = _utargetcli()
    if not os.access(cli, os.X_OK):
        pytest.skip("utargetcli not built: %s" % cli)
    res = ut.run([cli, "-s", d.sock, "ls"], env={"COLUMNS": "200", "TERM": "dumb"})
    if res.returncode != 0 and "not implemented" in res.stderr:
        pytest.skip("utargetcli's shell is not implemented yet")
    assert res.returncode == 0, ut.describe(res, d)
    out = re.sub(r"\x1b\[[0-9;]*m", "", res.stdout)     # in case of colour
    lines = {}
    for line in out.splitlines():
        m = re.match(r"^[\s|]*[o+]- (\S+)", line)
        if m:
            lines[m.group(1)] = line
    for node in ("sdb", rt.WIKI_TARGET, "tpg1", "luns", "lun0", "portals",
                 "127.0.0.1:%d" % port, "acls", rt.WIKI_INITIATOR, "mapped_lun0"):
        assert node in lines, "%s missing from `utargetcli ls`:\n%s" % (node, out)
    assert "disabled" not in lines["tpg1"], out
    # the example's NodeACL has no CHAP: `ls` must not claim "1-way auth" for it
    assert "way auth" not in lines[rt.WIKI_INITIATOR], out
    assert "fileio/sdb" in lines["lun0"], out
    assert "lun0" in lines["mapped_lun0"] and "(rw)" in lines["mapped_lun0"], out
    assert PLACEHOLDER not in out

    # authentication=1 and a NodeACL made by tpg.node_acl() without credentials: `ls`
    # says no CHAP is set (nobody gets in), not "1-way auth"
    RTSRoot(d.sock)
    tpg = TPG(Target(FabricModule("iscsi"), rt.WIKI_TARGET), 1, mode="lookup")
    tpg.set_attribute("authentication", "1")
    tpg.node_acl("iqn.1994-05.com.example:nochap")
    res = ut.run([cli, "-s", d.sock, "ls"], env={"COLUMNS": "200", "TERM": "dumb"})
    line = [l for l in res.stdout.splitlines() if "iqn.1994-05.com.example:nochap" in l]
    assert line and "no CHAP set, Mapped LUNs: 0" in line[0] and "way auth" not in line[0], \
        res.stdout


def test_wiki_example_acl_initiator_reads_other_is_refused(utarget, config, workdir):
    d, port, image = run_wiki_example(utarget, config, workdir)

    res, fields = ut.iscsi_inq(wiki_url(port), initiator=rt.WIKI_INITIATOR)
    assert res.returncode == 0, ut.describe(res, d)
    assert "DIRECT_ACCESS" in fields.get("Peripheral Device Type", ""), res.stdout

    opts = ut.image_opts(port, rt.WIKI_TARGET, 0, initiator=rt.WIKI_INITIATOR)
    res = ut.qemu_io(opts, ["read -P 0x%02x 0 4096" % PATTERN, "read -P 0 4096 4096"],
                     read_only=True)
    assert not ut.qemu_io_problems(res), ut.describe(res, d)

    res, _ = ut.iscsi_inq(wiki_url(port), initiator=OTHER_INITIATOR)
    assert res.returncode != 0, ut.describe(res, d)
    assert "Authorization failure" in res.stdout + res.stderr, ut.describe(res, d)
    assert d.alive()


def test_lookup_missing_and_create_existing_raise(utarget, config, workdir):
    d, port, image = run_wiki_example(utarget, config, workdir)
    root = RTSRoot(d.sock)
    before = root.dump()
    fm = FabricModule("iscsi")
    target = Target(fm, rt.WIKI_TARGET, mode="lookup")
    tpg = TPG(target, 1, mode="lookup")
    acl = NodeACL(tpg, rt.WIKI_INITIATOR, mode="lookup")
    so = FileIOStorageObject("sdb")

    missing = [
        lambda: Target(fm, "iqn.2003-01.org.example:missing", mode="lookup"),
        lambda: TPG(target, 2, mode="lookup"),
        lambda: LUN(tpg, 1),
        lambda: NetworkPortal(tpg, "127.0.0.1", port + 1 if port < 65535 else port - 1,
                              mode="lookup"),
        lambda: NodeACL(tpg, OTHER_INITIATOR, mode="lookup"),
        lambda: MappedLUN(acl, 1),
        lambda: FileIOStorageObject("missing"),
        lambda: RDMCPStorageObject("missing"),
    ]
    for make in missing:
        with pytest.raises(RTSLibNotInCFSError):
            make()
    with pytest.raises(RTSLibError):
        missing[0]()

    existing = [
        lambda: Target(fm, rt.WIKI_TARGET, mode="create"),
        lambda: TPG(target, 1, mode="create"),
        lambda: LUN(tpg, 0, so),
        lambda: NetworkPortal(tpg, "127.0.0.1", port, mode="create"),
        lambda: NodeACL(tpg, rt.WIKI_INITIATOR, mode="create"),
        lambda: acl.mapped_lun(0, 0),
        lambda: FileIOStorageObject("sdb", image),
    ]
    for make in existing:
        with pytest.raises(RTSLibError):
            make()
    # Refusals leave the configuration exactly as it was.
    assert root.dump() == before

    # The daemon's own refusals come back as RTSLibError with its words.
    with pytest.raises(RTSLibError) as ei:
        tpg.set_attribute("login_timeout", 99999)
    assert "login_timeout" in str(ei.value)
    # (rtslib's so.delete() deletes the LUNs first: ask the daemon directly.)
    with pytest.raises(RTSLibError):
        rtslib.default_client().call("backstore.delete", plugin="fileio", name="sdb")
    assert root.dump() == before


def test_live_attributes_auth_save_restore_sessions(utarget, config, workdir):
    d, port, image = run_wiki_example(utarget, config, workdir)
    root = RTSRoot(d.sock)
    tpg = TPG(Target(FabricModule("iscsi"), rt.WIKI_TARGET), 1, mode="lookup")
    acl = NodeACL(tpg, rt.WIKI_INITIATOR, mode="lookup")

    tpg.set_attribute("default_cmdsn_depth", "32")
    assert tpg.get_attribute("default_cmdsn_depth") == "32"
    tpg.set_parameter("MaxBurstLength", 131072)
    assert tpg.get_parameter("MaxBurstLength") == "131072"
    acl.chap_userid = "user1"
    acl.chap_password = "secretsecret1"
    assert (acl.chap_userid, acl.chap_password) == ("user1", "secretsecret1")
    # LIO's configfs names of the mutual pair, as rtslib-fb's set_auth_attr takes them
    acl.set_auth_attr("userid_mutual", "target1")
    acl.set_auth_attr("password_mutual", "mutualsecret1")
    assert acl.chap_mutual_userid == "target1"
    assert acl.get_auth_attr("password_mutual") == "mutualsecret1"
    acl.chap_mutual_userid = ""
    acl.chap_mutual_password = ""
    acl.chap_userid = ""
    acl.chap_password = ""

    # A session shows up in RTSRoot.sessions and NodeACL.session while open.
    opts = ut.image_opts(port, rt.WIKI_TARGET, 0, initiator=rt.WIKI_INITIATOR)
    proc = subprocess.Popen(["qemu-io", "-r", "--image-opts", opts], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        sessions = []
        while time.monotonic() < deadline and not sessions:
            sessions = [s for s in root.sessions if s["type"] == "Normal"]
            time.sleep(0.1)
        assert sessions, "no session appeared while qemu-io was logged in"
        (s,) = sessions
        assert s["initiator"] == rt.WIKI_INITIATOR and s["parent_nodeacl"] == acl
        assert s["connections"] and s["connections"][0]["cstate"]
        assert acl.session["id"] == s["id"]
        assert acl.get_parameter("MaxBurstLength") == "131072"
    finally:
        proc.communicate("quit\n", timeout=60)

    saved = os.path.join(str(workdir), "saved.json")
    res = root.save_to_file(saved)
    assert res["file"] == saved and os.path.exists(saved)
    before = root.dump()
    root.clear_existing(confirm=True)
    assert list(root.targets) == [] and list(root.storage_objects) == []
    assert root.restore_from_file(saved) == []
    assert root.dump() == before
    # restore() of a dict (what rtslib's restore takes) over the live config.
    assert root.restore(before, clear_existing=True) == []
    assert root.dump() == before

    # Deleting the storage object takes its LUN (and the mapping) with it.
    FileIOStorageObject("sdb").delete()
    assert list(tpg.luns) == [] and list(acl.mapped_luns) == []
    assert list(root.storage_objects) == []
