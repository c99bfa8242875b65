"""Every configuration row, end to end (issue 15): for each kind the daemon describes
(storage object, TPG and node ACL attributes, TPG parameters, ALUA group attributes),
each row has a name, a description and a default inside its bounds; get returns exactly
the described rows; setting a row to its default is accepted and reads back; saveconfig
writes each writable row under its name; and that file restores with no error into the
same document. A row added to a table without a description or default, or left out of
get / saveconfig / restore, fails here.
"""

import json
import os

from rpcclient import RpcClient
from uthelpers import MiB

IQN = "iqn.2003-01.org.linux-iscsi.test:schema"
INIT = "iqn.1994-05.com.example:schema"
T = dict(wwn=IQN, tag=1)
SO = dict(plugin="ramdisk", name="r0")


def _rows(rpc, kind):
    rows = rpc.call("describe", kind=kind)
    assert rows, kind
    for r in rows:
        assert r.get("name"), (kind, r)
        assert isinstance(r.get("description"), str) and len(r["description"]) >= 8, \
            "%s row %s has no description" % (kind, r["name"])
        if not r.get("ro"):
            assert "default" in r, "%s row %s has no default" % (kind, r["name"])
            if "min" in r and isinstance(r["default"], int):
                assert r["min"] <= r["default"] <= r["max"], (kind, r)
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names)), "%s rows named twice" % kind
    return {r["name"]: r for r in rows}


def test_every_row_described_got_set_saved_restored(config, utarget, workdir):
    config.target(IQN).tpg().lun(0, config.ramdisk("r0", size=4 * MiB))
    d = utarget(config)
    rpc = RpcClient(d.sock).connect()
    rpc.call("acl.create", node_wwn=INIT, **T)

    cases = [
        ("backstore", "backstore.get_attributes", "backstore.set_attributes", SO,
         lambda doc: doc["storage_objects"][0]["attributes"]),
        ("tpg", "tpg.get_attributes", "tpg.set_attributes", T,
         lambda doc: doc["targets"][0]["tpgs"][0]["attributes"]),
        ("acl", "acl.get_attributes", "acl.set_attributes", dict(T, node_wwn=INIT),
         lambda doc: doc["targets"][0]["tpgs"][0]["node_acls"][0]["attributes"]),
        ("tpg_parameter", "tpg.get_parameters", "tpg.set_parameters", T,
         lambda doc: doc["targets"][0]["tpgs"][0]["parameters"]),
        ("alua", "alua.get_attributes", "alua.set_attributes",
         dict(SO, group="default_tg_pt_gp"),
         lambda doc: doc["storage_objects"][0]["alua_tpgs"][0]),
    ]
    saved = os.path.join(str(workdir), "schema.json")
    for kind, get, set_, ident, in_file in cases:
        rows = _rows(rpc, kind)
        got = rpc.call(get, **ident)
        assert set(got) == set(rows), "%s: get returns %s, describe lists %s" % (
            kind, sorted(set(got) ^ set(rows)), kind)
        writable = {n: r for n, r in rows.items() if not r.get("ro")}
        # each row set to its default on its own: accepted, and read back
        for n, r in writable.items():
            key = "parameters" if kind == "tpg_parameter" else "attributes"
            rpc.call(set_, **dict(ident, **{key: {n: r["default"]}}))
            assert str(rpc.call(get, **ident)[n]) == str(r["default"]), (kind, n)
        rpc.call("save_config", file=saved)
        with open(saved) as f:
            doc = json.load(f)
        keys = set(in_file(doc)) - {"name"}
        assert set(writable) <= keys, "%s: saveconfig leaves out %s" % (
            kind, sorted(set(writable) - keys))
        assert keys <= set(rows), "%s: saveconfig writes undescribed %s" % (
            kind, sorted(keys - set(rows)))
    # the whole file back into an empty daemon: no complaint, the same document
    rpc.call("clear_config", confirm=True)
    r = rpc.call("restore_config", file=saved)
    assert r["errors"] == [], r["errors"]
    again = os.path.join(str(workdir), "schema2.json")
    rpc.call("save_config", file=again)
    with open(saved) as f, open(again) as g:
        assert json.load(f) == json.load(g)


DESCRIBE_SNAPSHOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                                 "describe.json")


def test_fake_daemon_tables_are_the_daemons(config, utarget):
    """fake_utargetd.py (the stand-in the rtslib module's offline tests talk to) takes its
    attribute and parameter tables from data/describe.json; that file must be what the
    daemon describes, so the fake cannot drift from it. After changing a table:
    UT_UPDATE_DESCRIBE=1 pytest-3 tests/integration/test_schema.py rewrites it."""
    config.target(IQN).tpg().lun(0, config.ramdisk("r0", size=4 * MiB))
    rpc = RpcClient(utarget(config).sock).connect()
    real = {kind: rpc.call("describe", kind=kind)
            for kind in ("backstore", "tpg", "acl", "tpg_parameter")}
    if os.environ.get("UT_UPDATE_DESCRIBE") == "1":
        with open(DESCRIBE_SNAPSHOT, "w") as f:
            json.dump(real, f, indent=1, sort_keys=True)
            f.write("\n")
    with open(DESCRIBE_SNAPSHOT) as f:
        assert json.load(f) == real, "data/describe.json is stale (see this test's doc)"
