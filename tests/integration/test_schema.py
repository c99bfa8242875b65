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


def test_auth_rows_are_what_get_set_save_and_restore_use(config, utarget, workdir):
    """CHAP credentials are one table (src/control/auth.c): describe kind=auth lists the
    fields get_auth returns on a TPG, a node ACL and discovery; set_auth takes each;
    saveconfig writes each under LIO's prefix (chap_ / discovery_); restore takes them
    back; a value too long is refused by the API and reported (not cut) by restore."""
    config.target(IQN).tpg().lun(0, config.ramdisk("r0", size=4 * MiB))
    d = utarget(config)
    rpc = RpcClient(d.sock).connect()
    rpc.call("acl.create", node_wwn=INIT, **T)
    rows = _rows(rpc, "auth")
    assert {n for n, r in rows.items() if r["secret"]} == {"password", "mutual_password"}
    vals = {n: "v-%s-123456789" % n for n in rows}
    places = [("tpg", T, "chap_", lambda doc: doc["targets"][0]["tpgs"][0]),
              ("acl", dict(T, node_wwn=INIT), "chap_",
               lambda doc: doc["targets"][0]["tpgs"][0]["node_acls"][0]),
              ("discovery_auth", {}, "discovery_",
               lambda doc: [f for f in doc["fabric_modules"] if f["name"] == "iscsi"][0])]
    for kind, ident, _, _ in places:
        getm = "%s.get%s" % (kind, "" if kind == "discovery_auth" else "_auth")
        setm = "%s.set%s" % (kind, "" if kind == "discovery_auth" else "_auth")
        got = rpc.call(getm, **ident)
        assert set(rows) <= set(got), (kind, sorted(set(rows) - set(got)))
        rpc.call(setm, **dict(ident, **vals))
        got = rpc.call(getm, **ident)
        assert {n: got[n] for n in rows} == vals, kind
        err = rpc.error(setm, **dict(ident, userid="u" * 300))
        assert "longer than 255 bytes" in err.message, err
        assert rpc.call(getm, **ident)["userid"] == vals["userid"], "refused set changed it"
    saved = os.path.join(str(workdir), "auth.json")
    rpc.call("save_config", file=saved)
    with open(saved) as f:
        doc = json.load(f)
    for kind, _, prefix, where in places:
        obj = where(doc)
        assert {n: obj[prefix + n] for n in rows} == vals, kind
    rpc.call("clear_config", confirm=True)
    r = rpc.call("restore_config", file=saved)
    assert r["errors"] == [], r["errors"]
    for kind, ident, _, _ in places:
        getm = "%s.get%s" % (kind, "" if kind == "discovery_auth" else "_auth")
        got = rpc.call(getm, **ident)
        assert {n: got[n] for n in rows} == vals, kind
    # restore reports a secret it cannot take instead of cutting it
    where = places[0][3]
    where(doc)["chap_password"] = "p" * 300
    bad = os.path.join(str(workdir), "auth-bad.json")
    with open(bad, "w") as f:
        json.dump(doc, f)
    rpc.call("clear_config", confirm=True)
    r = rpc.call("restore_config", file=bad)
    assert any("chap_password is longer than 255 bytes" in e for e in map(str, r["errors"])), r
