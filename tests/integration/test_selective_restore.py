"""Selective restore and change reports (issue 21, beyond LIO): restoreconfig of one target
or one storage object from a file leaves the rest of the running configuration alone;
saveconfig and restoreconfig say exactly which objects they added, removed or changed.
"""

import copy
import json
import os

import uthelpers as ut
from rpcclient import RpcClient
from uthelpers import MiB

A = "iqn.2003-01.org.linux-iscsi.test:a"
B = "iqn.2003-01.org.linux-iscsi.test:b"
C = "iqn.2003-01.org.linux-iscsi.test:c"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _daemon(config, utarget):
    config.target(A).tpg().lun(0, config.ramdisk("ra", size=MiB))
    config.target(B).tpg().lun(0, config.ramdisk("rb", size=MiB))
    config.ramdisk("spare", size=MiB)
    d = utarget(config)
    return d, RpcClient(d.sock).connect()


def _none(**kw):
    out = {"added": [], "removed": [], "changed": []}
    out.update(kw)
    return out


def test_restore_one_target_or_storage_object(config, utarget, workdir):
    d, rpc = _daemon(config, utarget)
    saved = os.path.join(str(workdir), "snap.json")
    r = rpc.call("save_config", file=saved)
    assert r["replaced"] is False
    # the running configuration moves on: A deleted, B changed, C new, spare gone
    rpc.call("target.delete", wwn=A)
    rpc.call("tpg.set_attributes", wwn=B, tag=1, attributes={"cache_dynamic_acls": 0})
    rpc.call("target.create", wwn=C)
    rpc.call("backstore.delete", plugin="ramdisk", name="spare")
    live_b = [t for t in rpc.call("get_config")["targets"] if t["wwn"] == B]

    # A alone comes back; B keeps its new attribute, C stays, spare stays gone
    r = rpc.call("restore_config", file=saved, target=A)
    assert r == {"errors": [], "changes": _none(added=["/iscsi/" + A])}
    cfg = rpc.call("get_config")
    assert sorted(t["wwn"] for t in cfg["targets"]) == sorted([A, B, C])
    assert [t for t in cfg["targets"] if t["wwn"] == B] == live_b
    assert "spare" not in [s["name"] for s in cfg["storage_objects"]]
    res = ut.qemu_io(d.image_opts(0, A), ["write -P 0x31 0 4096", "read -P 0x31 0 4096"])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)

    # B exists: refused unless clear_existing, which replaces just B
    before = rpc.call("get_config")
    e = rpc.error("restore_config", file=saved, target=B)
    assert e.code == -32002 and "clear_existing" in e.message, e
    assert rpc.call("get_config") == before
    r = rpc.call("restore_config", file=saved, target=B, clear_existing=True)
    assert r["changes"] == _none(changed=["/iscsi/%s/tpg1" % B]), r
    assert sorted(t["wwn"] for t in rpc.call("get_config")["targets"]) == sorted([A, B, C])

    # one storage object, by name or by path
    r = rpc.call("restore_config", file=saved, storage_object="/backstores/ramdisk/spare")
    assert r["changes"] == _none(added=["/backstores/ramdisk/spare"])
    e = rpc.error("restore_config", file=saved, storage_object="spare")
    assert e.code == -32002
    # in use by a LUN of a target not being replaced: refused, nothing changes
    before = rpc.call("get_config")
    e = rpc.error("restore_config", file=saved, storage_object="ra", clear_existing=True)
    assert "in use" in e.message, e
    e = rpc.error("restore_config", file=saved, target="iqn.2003-01.org.example:none")
    assert e.code == -32001 and "is not in" in e.message, e
    e = rpc.error("restore_config", file=saved, storage_object="nothing")
    assert e.code == -32001, e
    e = rpc.error("restore_config", file=saved, target="")
    assert e.code == -32602, e
    assert rpc.call("get_config") == before


def test_refused_selective_restore_changes_nothing(config, utarget, workdir):
    """With abort_on_error a selection that fails to load puts back what it replaced."""
    d, rpc = _daemon(config, utarget)
    doc = rpc.call("get_config")
    broken = copy.deepcopy(doc)
    tb = [t for t in broken["targets"] if t["wwn"] == B][0]
    tb["tpgs"][0]["luns"][0]["storage_object"] = "/backstores/ramdisk/missing"
    path = os.path.join(str(workdir), "broken.json")
    with open(path, "w") as f:
        json.dump(broken, f)
    before = rpc.call("get_config")
    e = rpc.error("restore_config", file=path, target=B, clear_existing=True,
                  abort_on_error=True)
    assert "missing" in e.message, e
    assert rpc.call("get_config") == before
    res = ut.qemu_io(d.image_opts(0, B), ["write -P 0x32 0 4096", "read -P 0x32 0 4096"])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)


def test_saveconfig_reports_what_it_changed(config, utarget, workdir):
    d, rpc = _daemon(config, utarget)
    saved = os.path.join(str(workdir), "s.json")
    assert rpc.call("save_config", file=saved)["replaced"] is False
    r = rpc.call("save_config", file=saved)
    assert r["replaced"] is True and r["changes"] == _none()
    rpc.call("target.delete", wwn=A)
    rpc.call("backstore.create", plugin="ramdisk", name="new", size=MiB)
    rpc.call("lun.create", wwn=B, tag=1, lun=1, storage_object="/backstores/ramdisk/new")
    rpc.call("portal.create", wwn=B, tag=1, ip_address="127.0.0.1", port=ut.free_port())
    rpc.call("acl.create", wwn=B, tag=1, node_wwn="iqn.1994-05.com.example:x",
             add_mapped_luns=False)
    rpc.call("tpg.set_auth", wwn=B, tag=1, userid="u")
    r = rpc.call("save_config", file=saved)
    ch = r["changes"]
    port = [p for p in [t for t in rpc.call("get_config")["targets"] if t["wwn"] == B][0]
            ["tpgs"][0]["portals"]]
    assert ch["removed"] == ["/iscsi/" + A]
    assert sorted(ch["added"]) == sorted([
        "/backstores/ramdisk/new", "/iscsi/%s/tpg1/luns/lun1" % B,
        "/iscsi/%s/tpg1/portals/127.0.0.1:%d" % (B, port[-1]["port"]),
        "/iscsi/%s/tpg1/acls/iqn.1994-05.com.example:x" % B])
    assert ch["changed"] == ["/iscsi/%s/tpg1" % B]   # its auth

    # utargetcli prints them, a line each, after targetcli's own lines
    cli = os.environ.get("UTARGETCLI") or os.path.join(REPO, "build", "utargetcli")
    env = {"UTARGET_SOCKET": d.sock, "UTARGETCLI_HOME": os.path.join(str(workdir), "h"),
           "TERM": "dumb"}
    ut.run([cli, "set", "global", "auto_save_on_exit=false"], env=env)
    rpc.call("backstore.delete", plugin="ramdisk", name="spare")
    res = ut.run([cli, "saveconfig", saved], env=env)
    assert res.returncode == 0, ut.describe(res, d)
    assert res.stdout.splitlines()[-2:] == ["Configuration saved to %s" % saved,
                                           "Removed /backstores/ramdisk/spare"], res.stdout
    res = ut.run([cli, "restoreconfig", saved, "clear_existing=true", "target=" + B], env=env)
    assert res.returncode == 0 and res.stdout == "Configuration restored from %s\n" % saved, \
        ut.describe(res, d)
    rpc.call("target.delete", wwn=B)
    res = ut.run([cli, "restoreconfig", saved, "target=" + B], env=env)
    assert res.returncode == 0 and res.stdout.splitlines() == [
        "Configuration restored from %s" % saved, "Added /iscsi/" + B], ut.describe(res, d)
