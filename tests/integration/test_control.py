"""Bad input over the control API (issue 4, "Validation with a clear error and no change").

Every refused call must answer a JSON-RPC error with a message an administrator can act
on, and leave the configuration exactly as it was: get_config before == get_config after.
Also the transport's own rules: malformed JSON, unknown methods, the 1 MiB request cap
and the SO_PEERCRED check.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

import uthelpers as ut
from uthelpers import MiB
from rpcclient import (RpcClient, RpcError, PARSE_ERROR, INVALID_REQUEST,
                       METHOD_NOT_FOUND, INVALID_PARAMS, REFUSED, NOT_FOUND, EXISTS)

IQN = ut.DEFAULT_TARGET
INIT = "iqn.1994-05.com.example:client-a"
T = {"wwn": IQN, "tag": 1}


@pytest.fixture
def api(config, utarget, workdir):
    """A daemon with rd0 (LUN 0), a fileio f0 (LUN 1), an ACL mapping both; and a client."""
    rd0 = config.ramdisk("rd0", size=4 * MiB)
    f0 = config.fileio("f0", size=4 * MiB)
    tpg = config.target(IQN).tpg()
    tpg.lun(0, rd0).lun(1, f0)
    tpg.acl(INIT).map(0, 0).map(1, 1)
    d = utarget(config)
    rpc = RpcClient(d.sock).connect()
    yield d, rpc
    rpc.close()


def refused(rpc, method, code=None, words=(), **params):
    """Call `method`, require an error (with `code`, and `words` in its message), and
    require the configuration unchanged. Returns the RpcError."""
    before = rpc.call("get_config")
    e = rpc.error(method, **params)
    if code is not None:
        assert e.code == code, "%s(%r): code %s, wanted %s (%s)" % (
            method, params, e.code, code, e.message)
    assert isinstance(e.message, str) and len(e.message) >= 8, \
        "%s(%r): unclear error message %r" % (method, params, e.message)
    for w in words:
        assert w.lower() in e.message.lower(), "%s(%r): %r does not mention %r" % (
            method, params, e.message, w)
    after = rpc.call("get_config")
    assert after == before, "%s(%r) was refused (%s) but changed the configuration" % (
        method, params, e.message)
    return e


# --------------------------------------------------------------------------- WWNs

# (name, words of the rule its refusal must name): RFC 7143 4.2.7, RFC 3722, RFC 3980
BAD_WWN_RULES = [
    ("iqn.2003-01", ["date"]),                          # no naming authority
    ("iqn.03-01.org.example:x", ["date"]),              # year is 4 digits
    ("iqn.2003-1.org.example:x", ["date"]),             # month is 2 digits
    ("iqn.2003-00.org.example:x", ["month 00"]),        # months run 01 to 12
    ("iqn.2003-13.org.example:x", ["month 13"]),
    ("iqn.2003-01.:x", ["naming authority"]),           # empty authority
    ("iqn.2003-01.org..example:x", ["empty label"]),
    ("iqn.2003-01.org.example.:x", ["empty label"]),
    ("iqn.2003-01.org example.x:y", ["space"]),         # no spaces
    ("iqn.2003-01.org.example:a\tb", ["control"]),      # no control characters
    ("iqn.2003-01.org.example:under_score", ["'_' at 30", "a-z, 0-9"]),  # RFC 3722
    ("iqn.2003-01.org.example:a/b", ["'/' at 26"]),
    ("iqn.2003-01.org.example:a@b", ["'@'"]),
    ("iqn.2003-01.org.example:a\u00a0b", ["space, control"]),   # no-break space
    ("iqn.2003-01.org.example:a\ue000", ["private-use"]),       # private use
    ("iqn.2003-01.org.example:\ufffe", ["non-character"]),
    ("iqn.2003-01.org.example:" + "a" * 200, ["223 bytes"]),
    ("naa.123", ["16 or 32"]),
    ("naa.3001405000000001", ["NAA format 3"]),         # locally assigned: not unique
    ("naa.5001405000000000000000000000000a", ["NAA format 5"]),  # 128 bits is type 6
    ("naa.50014050000000zz", ["hex"]),
    ("eui.0123456789abcde", ["16 hex"]),                # 15 digits
    ("eui.0123456789abcdef0", ["16 hex"]),              # 17 digits
    ("eui.0123456789abcdeg", ["16 hex"]),
    ("foo.bar", ["iqn., eui. or naa."]),
    ("5001405000000001", ["iqn., eui. or naa."]),
    ("", ["empty"]),
]
BAD_WWNS = [w for w, _ in BAD_WWN_RULES if w]
GOOD_WWNS = [
    "iqn.2003-01.org.example:ok",
    "iqn.2003-01.orgexample",                 # one-label authority: legal (LIO wants two)
    "iqn.2003-12.org.example",                # the ":" part is optional
    "iqn.2003-01.org.example:a:b.c-d",        # colons and dots after the first one
    "iqn.2003-01.org.example:st\u00fcck",      # non-ASCII UTF-8 (RFC 3722)
    "iqn.2003-01.org.example:" + "a" * 199,   # exactly 223 bytes
    "naa.5001405000000001",
    "naa.6001405000000001",                   # LIO's generated naa.6001405... form
    "naa.6001405000000000000000000000000a",
    "eui.0123456789abcdef",
]


@pytest.mark.parametrize("wwn,words", BAD_WWN_RULES)
def test_bad_wwn_names_the_rule(api, wwn, words):
    _, rpc = api
    refused(rpc, "target.create" if wwn else "acl.create", REFUSED,
            ["WWN not valid"] + words, **({"wwn": wwn} if wwn else dict(T, node_wwn=wwn)))


def test_wwn_upper_case_folded_as_rfc3722(api):
    """Upper case is legal input and folded to lower case (RFC 3722 table B.2), as rtslib
    stores names; a second create in another case is the same name."""
    _, rpc = api
    assert rpc.call("target.create", wwn="IQN.2003-01.ORG.Example:Up") == \
        {"wwn": "iqn.2003-01.org.example:up"}
    refused(rpc, "target.create", EXISTS, ["exists"], wwn="iqn.2003-01.org.EXAMPLE:UP")
    assert rpc.call("acl.create", node_wwn="EUI.0123456789ABCDEF", **T)["node_wwn"] == \
        "eui.0123456789abcdef"


@pytest.mark.parametrize("wwn", BAD_WWNS)
def test_bad_target_wwn_refused(api, wwn):
    _, rpc = api
    refused(rpc, "target.create", REFUSED, ["wwn"], wwn=wwn)


@pytest.mark.parametrize("wwn", BAD_WWNS)
def test_bad_acl_wwn_refused(api, wwn):
    _, rpc = api
    refused(rpc, "acl.create", REFUSED, ["wwn"], node_wwn=wwn, **T)


def test_good_wwns_accepted(api):
    _, rpc = api
    for wwn in GOOD_WWNS:
        assert rpc.call("target.create", wwn=wwn) == {"wwn": wwn}
        assert rpc.call("acl.create", node_wwn=wwn, **T)["node_wwn"] == wwn
    wwns = [t["wwn"] for t in rpc.call("get_config")["targets"]]
    assert sorted(wwns) == sorted([IQN] + GOOD_WWNS)
    # and a generated one has LIO's form
    gen = rpc.call("target.create")["wwn"]
    assert gen.startswith("iqn.2003-01.org.linux-iscsi.") and ":sn." in gen, gen
    assert len(gen.rsplit(":sn.", 1)[1]) == 12, gen


# --------------------------------------------------------------------------- portals

def _ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("ip", ["999.1.1.1", "garbage", "::g", "1.2.3", "127.0.0.1:80",
                                "[::1", "localhost", "1.2.3.4.5", "::1::2"])
def test_bad_portal_address_refused(api, ip):
    d, rpc = api
    refused(rpc, "portal.create", REFUSED, [ip], ip_address=ip, port=ut.free_port(), **T)


@pytest.mark.parametrize("bad_port", [0, 65536, -1, 1 << 40])
def test_portal_port_out_of_range_refused(api, bad_port):
    _, rpc = api
    refused(rpc, "portal.create", REFUSED, ["port"], ip_address="127.0.0.1", port=bad_port,
            **T)


@pytest.mark.parametrize("bad_port", ["abc", 1.5, "80x"])
def test_portal_port_not_a_number_refused(api, bad_port):
    _, rpc = api
    refused(rpc, "portal.create", INVALID_PARAMS, ["port"], ip_address="127.0.0.1",
            port=bad_port, **T)


def test_portal_already_in_use(api):
    d, rpc = api
    # the same portal twice in one TPG
    refused(rpc, "portal.create", EXISTS, ["exists"], ip_address="127.0.0.1", port=d.port, **T)
    # an address held by another program: the listener cannot be had
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        busy = s.getsockname()[1]
        refused(rpc, "portal.create", REFUSED, ["in use"], ip_address="127.0.0.1",
                port=busy, **T)
        # the wildcard too, when another program holds an address of that port
        refused(rpc, "portal.create", REFUSED, ["in use"], ip_address="0.0.0.0",
                port=busy, **T)
    # the wildcard on our own portal's port while 127.0.0.1 is ours (LIO's EADDRINUSE) is
    # accepted since issue 21: one listener, connections routed to the most specific
    # portal (tests/integration/test_portals_netacl.py)
    assert rpc.call("portal.create", ip_address="0.0.0.0", port=d.port, **T) == \
        {"ip_address": "0.0.0.0", "port": d.port}


def test_ipv6_portal(api):
    d, rpc = api
    if not _ipv6_loopback():
        pytest.skip("no IPv6 loopback in this machine / container")
    port6 = ut.free_port()
    assert rpc.call("portal.create", ip_address="::1", port=port6, **T) == \
        {"ip_address": "::1", "port": port6}
    # "[::1]" is the same portal
    refused(rpc, "portal.create", EXISTS, ["exists"], ip_address="[::1]", port=port6, **T)
    portals = rpc.call("get_config")["targets"][0]["tpgs"][0]["portals"]
    assert {"ip_address": "::1", "port": port6} in \
        [{"ip_address": p["ip_address"], "port": p["port"]} for p in portals], portals
    # delete takes any spelling of the address, as create does
    for spelling in ("[::1]", "0:0:0:0:0:0:0:1"):
        port_x = ut.free_port()
        rpc.call("portal.create", ip_address="::1", port=port_x, **T)
        rpc.call("portal.delete", ip_address=spelling, port=port_x, **T)
    refused(rpc, "portal.delete", NOT_FOUND, [], ip_address="::2", port=port6, **T)
    # and it serves: discovery and a LUN over IPv6
    res, targets = ut.iscsi_ls("iscsi://[::1]:%d" % port6, show_luns=True, initiator=INIT)
    assert res.returncode == 0, ut.describe(res, d)
    assert sorted(targets.get(IQN, {}).get("luns", {})) == [0, 1], ut.describe(res, d)
    res = ut.run(["iscsi-inq", "-i", INIT, "iscsi://[::1]:%d/%s/0" % (port6, IQN)])
    assert res.returncode == 0, ut.describe(res, d)


# --------------------------------------------------------------------------- duplicates

def test_duplicate_names_refused(api, workdir):
    _, rpc = api
    # a storage object name is unique across plugins (LIO: one namespace per HBA, but
    # /backstores/<plugin>/<name> is how LUNs name it; targetcli refuses reuse)
    refused(rpc, "backstore.create", EXISTS, ["rd0"], plugin="ramdisk", name="rd0", size=MiB)
    refused(rpc, "backstore.create", EXISTS, ["rd0"], plugin="fileio", name="rd0",
            dev=os.path.join(str(workdir), "other.img"), size=MiB)
    assert not os.path.exists(os.path.join(str(workdir), "other.img"))
    refused(rpc, "target.create", EXISTS, ["exists"], wwn=IQN)
    refused(rpc, "tpg.create", EXISTS, ["exists"], wwn=IQN, tag=1)
    refused(rpc, "acl.create", EXISTS, ["exists"], node_wwn=INIT, **T)
    rpc.call("backstore.create", plugin="ramdisk", name="rd9", size=MiB)
    refused(rpc, "lun.create", EXISTS, ["exists"], storage_object="/backstores/ramdisk/rd9",
            lun=0, **T)
    refused(rpc, "lun.create", REFUSED, ["already"], storage_object="/backstores/ramdisk/rd0",
            lun=5, **T)
    refused(rpc, "mapped_lun.create", EXISTS, ["exists"], node_wwn=INIT, mapped_lun=0,
            tpg_lun=1, **T)


@pytest.mark.parametrize("name", ["", "a/b", "with space", "x" * 64, "tab\there"])
def test_bad_backstore_name_refused(api, name):
    _, rpc = api
    refused(rpc, "backstore.create", REFUSED, ["name"], plugin="ramdisk", name=name, size=MiB)


def test_backstore_file_used_by_another_backstore(api, config, workdir):
    _, rpc = api
    f0 = config.so("/backstores/fileio/f0")["dev"]
    link = os.path.join(str(workdir), "link.img")
    os.symlink(f0, link)
    for dev in (f0, os.path.join(str(workdir), ".", os.path.basename(f0)), link):
        refused(rpc, "backstore.create", REFUSED, ["f0"], plugin="fileio", name="f9",
                dev=dev, size=MiB)
        refused(rpc, "backstore.create", REFUSED, ["f0"], plugin="block", name="b9", dev=dev)


# --------------------------------------------------------------------------- sizes

@pytest.mark.parametrize("size,code", [
    (None, INVALID_PARAMS), (0, INVALID_PARAMS), (-1, INVALID_PARAMS),
    ("1x", INVALID_PARAMS), ("", INVALID_PARAMS), (100, REFUSED), (1 << 62, REFUSED)])
def test_bad_ramdisk_size_refused(api, size, code):
    _, rpc = api
    params = {"plugin": "ramdisk", "name": "rdx"}
    if size is not None:
        params["size"] = size
    refused(rpc, "backstore.create", code, ["size"] if size != 1 << 62 else [], **params)


@pytest.mark.parametrize("size", [None, 0, -4096, "big"])
def test_bad_fileio_size_refused(api, workdir, size):
    _, rpc = api
    dev = os.path.join(str(workdir), "new.img")
    params = {"plugin": "fileio", "name": "fx", "dev": dev}
    if size is not None:
        params["size"] = size
    refused(rpc, "backstore.create", None, ["size"], **params)
    assert not os.path.exists(dev), "a refused fileio create left its file behind"


def test_fileio_in_missing_directory_refused(api, workdir):
    _, rpc = api
    refused(rpc, "backstore.create", REFUSED, ["no such"], plugin="fileio", name="fx",
            dev=os.path.join(str(workdir), "nodir", "x.img"), size=MiB)


def test_missing_dev_and_unknown_plugin_refused(api):
    _, rpc = api
    refused(rpc, "backstore.create", INVALID_PARAMS, ["dev"], plugin="fileio", name="fx",
            size=MiB)
    refused(rpc, "backstore.create", REFUSED, [], plugin="block", name="bx",
            dev="/dev/does-not-exist")
    refused(rpc, "backstore.create", REFUSED, ["bogus"], plugin="bogus", name="x", size=MiB)
    # pscsi exists in the model but cannot be created here: a clear error
    refused(rpc, "backstore.create", REFUSED, ["pscsi"], plugin="pscsi", name="p",
            dev="/dev/sg0")


# --------------------------------------------------------------------------- LUN numbers

@pytest.mark.parametrize("lun", [65536, -1, -5, 1 << 33])
def test_lun_number_out_of_range_refused(api, lun):
    _, rpc = api
    rpc.call("backstore.create", plugin="ramdisk", name="rd9", size=MiB)
    refused(rpc, "lun.create", REFUSED, ["lun"], storage_object="/backstores/ramdisk/rd9",
            lun=lun, **T)


@pytest.mark.parametrize("mlun", [65536, -1])
def test_mapped_lun_number_out_of_range_refused(api, mlun):
    _, rpc = api
    refused(rpc, "mapped_lun.create", REFUSED, ["mapped lun"], node_wwn=INIT,
            mapped_lun=mlun, tpg_lun=0, **T)


@pytest.mark.parametrize("tpg_lun", [7, -1, 65536])
def test_mapped_lun_to_missing_tpg_lun_refused(api, tpg_lun):
    _, rpc = api
    refused(rpc, "mapped_lun.create", NOT_FOUND, ["lun"], node_wwn=INIT, mapped_lun=5,
            tpg_lun=tpg_lun, **T)


def test_tpg_tag_out_of_range_and_missing_objects(api):
    _, rpc = api
    for tag in (0, 65536, -1):
        refused(rpc, "tpg.create", REFUSED, ["tag"], wwn=IQN, tag=tag)
    refused(rpc, "tpg.delete", NOT_FOUND, [], wwn=IQN, tag=2)
    refused(rpc, "target.delete", NOT_FOUND, [], wwn="iqn.2003-01.org.example:none")
    refused(rpc, "lun.delete", NOT_FOUND, [], lun=70000, **T)
    refused(rpc, "lun.delete", NOT_FOUND, [], lun=9, **T)
    refused(rpc, "acl.delete", NOT_FOUND, [], node_wwn="iqn.2003-01.org.example:none", **T)
    refused(rpc, "mapped_lun.delete", NOT_FOUND, [], node_wwn=INIT, mapped_lun=9, **T)
    refused(rpc, "mapped_lun.set_write_protect", NOT_FOUND, [], node_wwn=INIT,
            mapped_lun=9, write_protect=True, **T)
    refused(rpc, "portal.delete", NOT_FOUND, [], ip_address="127.0.0.2", port=1, **T)
    refused(rpc, "lun.create", NOT_FOUND, [], storage_object="/backstores/ramdisk/none", **T)
    refused(rpc, "lun.create", INVALID_PARAMS, ["storage_object"],
            storage_object="ramdisk/rd0", **T)


def test_delete_backstore_in_use_refused(api):
    _, rpc = api
    for plugin, name in (("ramdisk", "rd0"), ("fileio", "f0")):
        refused(rpc, "backstore.delete", REFUSED, ["lun"], plugin=plugin, name=name)
    refused(rpc, "backstore.delete", NOT_FOUND, [], plugin="fileio", name="rd0")
    # once its LUN is gone it may go (and the LUN's mapped LUNs went with the LUN)
    rpc.call("lun.delete", lun=0, **T)
    rpc.call("backstore.delete", plugin="ramdisk", name="rd0")
    acl = rpc.call("get_config")["targets"][0]["tpgs"][0]["node_acls"][0]
    assert [m["index"] for m in acl["mapped_luns"]] == [1], acl


# --------------------------------------------------------------------------- attributes

ATTR_CASES = [
    # (method, extra params, attributes, code, words)
    ("backstore.set_attributes", {"plugin": "ramdisk", "name": "rd0"},
     {"no_such_attribute": 1}, REFUSED, ["no_such_attribute"]),
    ("backstore.set_attributes", {"plugin": "ramdisk", "name": "rd0"},
     {"emulate_tpu": 2}, REFUSED, ["emulate_tpu"]),
    ("backstore.set_attributes", {"plugin": "fileio", "name": "f0"},
     {"max_unmap_lba_count": 1 << 32}, REFUSED, ["max_unmap_lba_count"]),
    ("backstore.set_attributes", {"plugin": "ramdisk", "name": "rd0"},
     {"queue_depth": 0}, REFUSED, ["queue_depth"]),
    ("backstore.set_attributes", {"plugin": "ramdisk", "name": "rd0"},
     {"hw_max_sectors": 128}, REFUSED, ["read-only"]),
    # in range for the attribute, but above hw_max_sectors (16384): LIO refuses it too
    ("backstore.set_attributes", {"plugin": "ramdisk", "name": "rd0"},
     {"optimal_sectors": 65535}, REFUSED, ["optimal_sectors"]),
    ("backstore.set_attributes", {"plugin": "ramdisk", "name": "rd0"},
     {"emulate_tpu": "abc"}, INVALID_PARAMS, ["emulate_tpu"]),
    ("backstore.set_attributes", {"plugin": "ramdisk", "name": "rd0"},
     {"emulate_tpu": 1.5}, INVALID_PARAMS, ["emulate_tpu"]),
    # all or none: the valid first one must not stick
    ("backstore.set_attributes", {"plugin": "ramdisk", "name": "rd0"},
     {"emulate_tpu": 0, "is_nonrot": 0, "emulate_caw": 7}, REFUSED, ["emulate_caw"]),
    ("tpg.set_attributes", T, {"no_such_attribute": 1}, REFUSED, ["no_such_attribute"]),
    ("tpg.set_attributes", T, {"login_timeout": 31}, REFUSED, ["login_timeout"]),
    ("tpg.set_attributes", T, {"default_cmdsn_depth": 0}, REFUSED, ["default_cmdsn_depth"]),
    ("tpg.set_attributes", T, {"authentication": 1, "default_cmdsn_depth": 513}, REFUSED,
     ["default_cmdsn_depth"]),
    ("acl.set_attributes", dict(T, node_wwn=INIT), {"bogus": 1}, REFUSED, ["bogus"]),
    ("acl.set_attributes", dict(T, node_wwn=INIT), {"nopin_timeout": 2}, REFUSED,
     ["nopin_timeout"]),
    ("acl.set_attributes", dict(T, node_wwn=INIT), {"dataout_timeout_retries": 16}, REFUSED,
     ["dataout_timeout_retries"]),
    ("acl.set_attributes", dict(T, node_wwn=INIT), {"nopin_timeout": 10, "x": 1}, REFUSED,
     ["x"]),
]


@pytest.mark.parametrize("method,extra,attrs,code,words", ATTR_CASES,
                         ids=["%s-%s" % (c[0].split(".")[0], "-".join(c[2]))
                              for c in ATTR_CASES])
def test_bad_attribute_refused(api, method, extra, attrs, code, words):
    _, rpc = api
    refused(rpc, method, code, words, attributes=attrs, **extra)


def test_block_size_only_powers_of_two(api):
    _, rpc = api
    # 1000 divides this ramdisk's size, so only the value itself is wrong
    rpc.call("backstore.create", plugin="ramdisk", name="rd9", size=1000 * 1024)
    for bs in (1000, 768, 256, 8192):
        refused(rpc, "backstore.set_attributes", REFUSED, ["block_size"], plugin="ramdisk",
                name="rd9", attributes={"block_size": bs})
    rpc.call("backstore.set_attributes", plugin="ramdisk", name="rd9",
             attributes={"block_size": 1024})
    assert rpc.call("backstore.get_attributes", plugin="ramdisk",
                    name="rd9")["block_size"] == 1024
    # an exported object keeps its block size
    refused(rpc, "backstore.set_attributes", REFUSED, ["block_size"], plugin="ramdisk",
            name="rd0", attributes={"block_size": 4096})


@pytest.mark.parametrize("params,words", [
    ({"MaxRecvDataSegmentLength": "100"}, ["MaxRecvDataSegmentLength"]),
    ({"MaxBurstLength": "16777216"}, ["MaxBurstLength"]),
    ({"FirstBurstLength": "abc"}, ["FirstBurstLength"]),
    ({"InitialR2T": "maybe"}, ["InitialR2T"]),
    ({"HeaderDigest": "MD5"}, ["HeaderDigest"]),
    ({"AuthMethod": "CHAP,CHAP"}, ["AuthMethod"]),
    ({"ErrorRecoveryLevel": "3"}, ["ErrorRecoveryLevel"]),
    ({"TargetAlias": "bad\nalias"}, ["TargetAlias"]),
    ({"NoSuchKey": "1"}, ["NoSuchKey"]),
    ({"ImmediateData": "No", "MaxConnections": "0"}, ["MaxConnections"]),
])
def test_bad_tpg_parameter_refused(api, params, words):
    _, rpc = api
    refused(rpc, "tpg.set_parameters", REFUSED, words, parameters=params, **T)


def test_bad_types_and_auth_refused(api):
    _, rpc = api
    refused(rpc, "tpg.set_parameters", INVALID_PARAMS, ["parameters"], parameters="x", **T)
    refused(rpc, "tpg.set_attributes", INVALID_PARAMS, ["attributes"], attributes=[1], **T)
    refused(rpc, "tpg.enable", INVALID_PARAMS, ["enable"], enable="maybe", **T)
    refused(rpc, "tpg.set_auth", REFUSED, ["userid"], userid="u" * 300, **T)
    refused(rpc, "tpg.set_auth", INVALID_PARAMS, ["userid"], userid=5, **T)
    refused(rpc, "acl.set_auth", INVALID_PARAMS, ["password"], node_wwn=INIT, password=[],
            **T)
    refused(rpc, "discovery_auth.set", INVALID_PARAMS, ["enable"], enable="maybe")
    refused(rpc, "clear_config", REFUSED, ["confirm"])
    refused(rpc, "clear_config", REFUSED, ["confirm"], confirm=False)
    refused(rpc, "restore_config", REFUSED, ["clear_existing"], config={})
    refused(rpc, "target.create", INVALID_PARAMS, ["wwn"], wwn=12)
    refused(rpc, "describe", INVALID_PARAMS, ["kind"], kind="nothing")


# --------------------------------------------------------------------------- transport

def test_malformed_json_and_unknown_method(api):
    d, rpc = api
    before = rpc.call("get_config")
    for raw in (b"{", b"not json at all", b'{"jsonrpc": "2.0", "id": 1, "method": ',
                b'{"a": 1, "a": 2}', b"\xff\xfe{}"):
        rpc.send_raw(raw + b"\n")
        resp = json.loads(rpc.recv_line())
        assert resp["error"]["code"] == PARSE_ERROR, (raw, resp)
        assert resp["id"] is None, resp
    cases = [
        ({"jsonrpc": "2.0", "id": 7, "method": "no.such.method"}, METHOD_NOT_FOUND),
        ({"jsonrpc": "2.0", "id": 8}, INVALID_REQUEST),
        ({"jsonrpc": "2.0", "id": 9, "method": 5}, INVALID_REQUEST),
        ({"jsonrpc": "2.0", "id": 10, "method": "get_config", "params": [1]}, INVALID_PARAMS),
    ]
    for req, code in cases:
        resp = rpc.request(req)
        assert resp["error"]["code"] == code, (req, resp)
        assert resp["id"] == req["id"], resp
    for raw in (b"[]", b"42", b'"x"', b"null"):
        rpc.send_raw(raw + b"\n")
        resp = json.loads(rpc.recv_line())
        assert resp["error"]["code"] == INVALID_REQUEST, (raw, resp)
    # a notification (no id) is not answered, even for an unknown method: the next
    # answer on the line is for the next request
    rpc.send_raw(b'{"jsonrpc": "2.0", "method": "no.such.method"}\n')
    assert rpc.call("version")["version"]
    # string ids are echoed
    resp = rpc.request({"jsonrpc": "2.0", "id": "abc", "method": "version"})
    assert resp["id"] == "abc" and "result" in resp, resp
    assert rpc.call("get_config") == before
    assert d.alive()


def test_request_over_1mib_closes_connection(api):
    d, rpc = api
    before = rpc.call("get_config")
    big = RpcClient(d.sock).connect()
    # a syntactically valid request, 1 MiB + 64 KiB long
    req = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tpg.set_auth",
                      "params": dict(T, userid="u" * (MiB + 64 * 1024))}).encode() + b"\n"
    closed = False
    try:
        big.send_raw(req)
        closed = big.recv_line() == b""
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    big.close()
    assert closed, "utargetd answered a request over 1 MiB instead of closing"
    # the same without a newline: the daemon must not buffer forever
    big = RpcClient(d.sock).connect()
    closed = False
    try:
        big.send_raw(b"{" + b" " * (MiB + 8192))
        closed = big.recv_line() == b""
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    big.close()
    assert closed, "utargetd kept a connection that sent over 1 MiB without a newline"
    # the daemon keeps serving, the old connection too, and nothing changed
    assert d.alive()
    assert rpc.call("get_config") == before
    with RpcClient(d.sock) as c2:
        assert c2.call("get_config") == before
    # just under the cap is fine (a 900 KiB request is parsed and refused on its merits)
    e = rpc.error("tpg.set_auth", userid="u" * (900 * 1024), **T)
    assert e.code == REFUSED and "userid" in e.message


def _as_nobody():
    """argv prefix that runs a command as `nobody`, or None."""
    try:
        import pwd
        pwd.getpwnam("nobody")
    except (ImportError, KeyError):
        return None
    if shutil.which("setpriv"):
        return ["setpriv", "--reuid=nobody", "--regid=nogroup" if _has_group("nogroup")
                else "--regid=nobody", "--clear-groups", "--"]
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"]
    return None


def _has_group(name):
    import grp
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


NOBODY_CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("CONNECT-FAILED", e); sys.exit(3)
try:
    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"clear_config","params":{"confirm":true}}\n')
    data = s.recv(65536)
except OSError as e:
    print("CLOSED", e); sys.exit(0)
print("ANSWER" if data else "CLOSED", data[:200])
sys.exit(1 if data else 0)
"""


def test_non_root_peer_refused(api, workdir):
    d, rpc = api
    if os.geteuid() != 0:
        pytest.skip("the SO_PEERCRED test runs the daemon as root and a client as nobody")
    prefix = _as_nobody()
    if prefix is None:
        pytest.skip("no `nobody` user or no setpriv/runuser to become it")
    before = rpc.call("get_config")
    # The socket is 0600 in a 0700 test dir: give `nobody` a path to it (a hard link in a
    # world-searchable dir) and open its mode, so that only SO_PEERCRED stands in the way.
    pub = tempfile.mkdtemp(prefix="ut-peercred-", dir="/tmp")
    try:
        os.chmod(pub, 0o755)
        link = os.path.join(pub, "ctl.sock")
        os.link(d.sock, link)
        os.chmod(link, 0o666)
        # the system python: a per-user one (pyenv shims under /root) is out of reach
        py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
        res = ut.run(prefix + [py, "-c", NOBODY_CLIENT, link], timeout=60)
    finally:
        os.chmod(d.sock, 0o600)
        shutil.rmtree(pub, ignore_errors=True)
    if "CONNECT-FAILED" in res.stdout:
        pytest.skip("nobody cannot reach the socket here: %s" % res.stdout.strip())
    assert res.returncode == 0 and "CLOSED" in res.stdout, ut.describe(res, d)
    assert "refused a client with uid" in d.stderr_tail(), d.stderr_tail()
    assert d.alive()
    assert rpc.call("get_config") == before
