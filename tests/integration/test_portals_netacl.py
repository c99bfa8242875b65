"""Issue 21 ("What LIO users have asked for for years"), two items:

1. Wildcard and specific portals on one port in different targets (LIO: EADDRINUSE). One
   listener per (port, family) when a wildcard is involved; each connection goes to the
   most specific portal matching its local address; SendTargets reports the address the
   initiator connected to for a wildcard portal.
2. Initiator address ACLs: allowed_networks on TPGs and node ACLs (login refusal 0202,
   SendTargets filtering, API, utargetcli, saveconfig).

Real initiators: libiscsi's iscsi-ls / iscsi-inq.
"""

import json
import os
import subprocess
import sys

import pytest

import uthelpers as ut
from uthelpers import MiB
from rpcclient import RpcClient, RpcError, INVALID_PARAMS

A = "iqn.2003-01.org.linux-iscsi.test:wild"
B = "iqn.2003-01.org.linux-iscsi.test:lo1"
C = "iqn.2003-01.org.linux-iscsi.test:lo2"
INIT = "iqn.1994-05.com.example:client-a"
INIT2 = "iqn.1994-05.com.example:client-b"


def has_ipv6_lo():
    out = subprocess.run(["ip", "-6", "addr", "show", "lo"], capture_output=True,
                         text=True).stdout
    return "::1/128" in out


def ls_via(ip, port, initiator=None):
    host = "[%s]" % ip if ":" in ip else ip
    return ut.iscsi_ls("iscsi://%s:%d" % (host, port), initiator=initiator)


def inq_ok(ip, port, iqn, initiator=None):
    host = "[%s]" % ip if ":" in ip else ip
    res, inq = ut.iscsi_inq("iscsi://%s:%d/%s/0" % (host, port, iqn), initiator=initiator)
    return res.returncode == 0 and inq.get("Vendor", "").strip() == "LIO-ORG", res


@pytest.fixture
def three(config, utarget):
    """A has 0.0.0.0:P, B 127.0.0.1:P, C 127.0.0.2:P; one LUN each."""
    p = config.port
    for iqn, ip in ((A, "0.0.0.0"), (B, "127.0.0.1"), (C, "127.0.0.2")):
        so = config.ramdisk("rd_" + iqn.split(":")[1], size=4 * MiB)
        config.target(iqn).tpg(portals=[(ip, p)]).lun(0, so)
    d = utarget(config)
    rpc = RpcClient(d.sock).connect()
    yield d, rpc, p
    rpc.close()


def test_wildcard_next_to_specific_routing(three):
    d, rpc, p = three
    # login lands in the target whose portal is the most specific for the address
    for ip, good, bad in (("127.0.0.1", B, (A, C)), ("127.0.0.2", C, (A, B)),
                          ("127.0.0.3", A, (B, C))):
        ok, res = inq_ok(ip, p, good)
        assert ok, "%s via %s\n%s" % (good, ip, ut.describe(res, d))
        for other in bad:
            ok, res = inq_ok(ip, p, other)
            assert not ok, "%s reachable via %s\n%s" % (other, ip, ut.describe(res, d))


def test_sendtargets_addresses(three):
    d, rpc, p = three
    res, t = ls_via("127.0.0.3", p)
    assert res.returncode == 0, ut.describe(res, d)
    # the wildcard portal is reported as the address the initiator connected to
    assert t[A]["portals"] == ["127.0.0.3:%d,1" % p], ut.describe(res, d)
    assert t[B]["portals"] == ["127.0.0.1:%d,1" % p], ut.describe(res, d)
    assert t[C]["portals"] == ["127.0.0.2:%d,1" % p], ut.describe(res, d)
    res, t = ls_via("127.0.0.1", p)
    assert t[A]["portals"] == ["127.0.0.1:%d,1" % p], ut.describe(res, d)
    assert t[B]["portals"] == ["127.0.0.1:%d,1" % p], ut.describe(res, d)


def test_specific_first_then_wildcard_live(config, utarget):
    """The order LIO fails on: the specific portal exists, the wildcard is added live."""
    p = config.port
    so = config.ramdisk("rd0", size=4 * MiB)
    config.target(B).tpg(portals=[("127.0.0.1", p)]).lun(0, so)
    config.target(A).tpg(portals=[]).lun(0, so)
    d = utarget(config)
    rpc = RpcClient(d.sock).connect()
    rpc.call("portal.create", wwn=A, tag=1, ip_address="0.0.0.0", port=p)
    assert inq_ok("127.0.0.1", p, B)[0]
    assert not inq_ok("127.0.0.1", p, A)[0]
    assert inq_ok("127.0.0.5", p, A)[0]
    # deleting the specific portal keeps the shared listener; 127.0.0.1 now reaches A
    rpc.call("portal.delete", wwn=B, tag=1, ip_address="127.0.0.1", port=p)
    assert inq_ok("127.0.0.1", p, A)[0]
    assert not inq_ok("127.0.0.1", p, B)[0]
    # recreate it: it rides on the wildcard listener and wins again
    rpc.call("portal.create", wwn=B, tag=1, ip_address="127.0.0.1", port=p)
    assert inq_ok("127.0.0.1", p, B)[0]
    assert inq_ok("127.0.0.9", p, A)[0]
    # the wildcard goes, the specific one still listens; other addresses do not
    rpc.call("portal.delete", wwn=A, tag=1, ip_address="0.0.0.0", port=p)
    assert inq_ok("127.0.0.1", p, B)[0]
    assert not inq_ok("127.0.0.9", p, A)[0]
    # the last portal on the port goes: the port is closed
    rpc.call("portal.delete", wwn=B, tag=1, ip_address="127.0.0.1", port=p)
    res, _ = ls_via("127.0.0.1", p)
    assert res.returncode != 0, ut.describe(res, d)
    # and can be opened again, wildcard first this time
    rpc.call("portal.create", wwn=A, tag=1, ip_address="0.0.0.0", port=p)
    rpc.call("portal.create", wwn=B, tag=1, ip_address="127.0.0.1", port=p)
    assert inq_ok("127.0.0.1", p, B)[0]
    assert inq_ok("127.0.0.2", p, A)[0]
    rpc.close()


@pytest.mark.skipif(not has_ipv6_lo(), reason="no ::1 on lo")
def test_ipv6_wildcard_and_specific(config, utarget):
    p = config.port
    so = config.ramdisk("rd0", size=4 * MiB)
    config.target(B).tpg(portals=[("::1", p)]).lun(0, so)
    config.target(A).tpg(portals=[("[::]", p), ("0.0.0.0", p)]).lun(0, so)
    d = utarget(config)
    assert inq_ok("::1", p, B)[0]
    assert not inq_ok("::1", p, A)[0]
    assert inq_ok("127.0.0.1", p, A)[0]
    res, t = ls_via("::1", p)
    assert res.returncode == 0, ut.describe(res, d)
    assert "[::1]:%d,1" % p in t[A]["portals"], ut.describe(res, d)
    assert t[B]["portals"] == ["[::1]:%d,1" % p], ut.describe(res, d)


# ---- 2. initiator address ACLs ---------------------------------------------------------

@pytest.fixture
def netd(config, utarget):
    """Target B on 127.0.0.1:P, an explicit ACL for INIT; demo mode for the others."""
    so = config.ramdisk("rd0", size=4 * MiB)
    tpg = config.target(B).tpg().lun(0, so)
    tpg.acl(INIT).map(0, 0)
    d = utarget(config)
    rpc = RpcClient(d.sock).connect()
    yield d, rpc
    rpc.close()


T = {"wwn": B, "tag": 1}


def test_tpg_allowed_networks_login(netd):
    d, rpc = netd
    p = d.port
    assert rpc.call("tpg.get_allowed_networks", **T) == {"allowed_networks": []}
    assert inq_ok("127.0.0.1", p, B, INIT2)[0]
    rpc.call("tpg.set_allowed_networks", allowed_networks=["10.0.0.0/8", "::1/128"], **T)
    assert rpc.call("tpg.get_allowed_networks", **T) == \
        {"allowed_networks": ["10.0.0.0/8", "::1/128"]}
    ok, res = inq_ok("127.0.0.1", p, B, INIT2)
    assert not ok, ut.describe(res, d)
    assert not inq_ok("127.0.0.1", p, B, INIT)[0]
    assert "login refused: source address not in allowed_networks" in d.stderr_tail()
    rpc.call("tpg.set_allowed_networks", allowed_networks=["127.0.0.1"], **T)
    assert rpc.call("tpg.get_allowed_networks", **T)["allowed_networks"] == ["127.0.0.1/32"]
    assert inq_ok("127.0.0.1", p, B, INIT2)[0]
    rpc.call("tpg.set_allowed_networks", allowed_networks=[], **T)
    assert inq_ok("127.0.0.1", p, B, INIT2)[0]


def test_acl_allowed_networks_login(netd):
    d, rpc = netd
    p = d.port
    A_ = dict(T, node_wwn=INIT)
    rpc.call("acl.set_allowed_networks", allowed_networks=["10.1.2.3"], **A_)
    assert rpc.call("acl.get_allowed_networks", **A_) == {"allowed_networks": ["10.1.2.3/32"]}
    assert not inq_ok("127.0.0.1", p, B, INIT)[0]
    assert inq_ok("127.0.0.1", p, B, INIT2)[0]       # demo mode: the TPG list only
    rpc.call("acl.set_allowed_networks", allowed_networks=["127.0.0.0/8"], **A_)
    assert inq_ok("127.0.0.1", p, B, INIT)[0]
    # both set: both must allow
    rpc.call("tpg.set_allowed_networks", allowed_networks=["10.0.0.0/8"], **T)
    assert not inq_ok("127.0.0.1", p, B, INIT)[0]
    rpc.call("tpg.set_allowed_networks", allowed_networks=["127.0.0.1/32"], **T)
    assert inq_ok("127.0.0.1", p, B, INIT)[0]


def test_sendtargets_filtered(netd):
    d, rpc = netd
    res, t = ls_via("127.0.0.1", d.port, INIT)
    assert B in t, ut.describe(res, d)
    rpc.call("tpg.set_allowed_networks", allowed_networks=["::1/128"], **T)
    res, t = ls_via("127.0.0.1", d.port, INIT)
    assert B not in t, ut.describe(res, d)
    rpc.call("tpg.set_allowed_networks", allowed_networks=[], **T)
    rpc.call("acl.set_allowed_networks", allowed_networks=["10.0.0.0/8"],
             node_wwn=INIT, **T)
    res, t = ls_via("127.0.0.1", d.port, INIT)
    assert B not in t, ut.describe(res, d)
    res, t = ls_via("127.0.0.1", d.port, INIT2)
    assert B in t, ut.describe(res, d)


def test_live_sessions_not_dropped(netd):
    """Documented choice: a new list applies to logins; sessions already in stay."""
    d, rpc = netd
    from test_live import QemuIoSession
    q = QemuIoSession(d.image_opts(0, iqn=B, initiator=INIT))
    try:
        assert "read 4096/4096" in q.cmd("read 0 4096")
        rpc.call("tpg.set_allowed_networks", allowed_networks=["10.0.0.0/8"], **T)
        assert "read 4096/4096" in q.cmd("read 4096 4096")
        assert not inq_ok("127.0.0.1", d.port, B, INIT)[0]
    finally:
        q.cmd("quit", timeout=5)
        q.p.wait(timeout=30)


@pytest.mark.parametrize("bad", ["127.0.0.0/33", "1.2.3", "::1/129", "abc", 5])
def test_bad_cidr_refused_changes_nothing(netd, bad):
    d, rpc = netd
    rpc.call("tpg.set_allowed_networks", allowed_networks=["127.0.0.0/8"], **T)
    before = rpc.call("get_config")
    for method, kw in (("tpg.set_allowed_networks", T),
                       ("acl.set_allowed_networks", dict(T, node_wwn=INIT))):
        with pytest.raises(RpcError) as ei:
            rpc.call(method, allowed_networks=["10.0.0.0/8", bad], **kw)
        assert ei.value.code == INVALID_PARAMS
        assert str(bad) in ei.value.message or "not a string" in ei.value.message
    assert rpc.call("get_config") == before


def test_saveconfig_round_trip(netd, utarget, config, workdir):
    d, rpc = netd
    rpc.call("tpg.set_allowed_networks", allowed_networks=["127.0.0.0/8", "::1"], **T)
    rpc.call("acl.set_allowed_networks", allowed_networks=["127.0.0.1"],
             node_wwn=INIT, **T)
    cfg = rpc.call("get_config")
    tpg = cfg["targets"][0]["tpgs"][0]
    assert tpg["allowed_networks"] == ["127.0.0.0/8", "::1/128"]
    assert tpg["node_acls"][0]["allowed_networks"] == ["127.0.0.1/32"]
    rpc.call("clear_config", confirm=True)
    res = rpc.call("restore_config", config=cfg)
    assert res["errors"] == []
    assert rpc.call("tpg.get_allowed_networks", **T)["allowed_networks"] == \
        ["127.0.0.0/8", "::1/128"]
    assert inq_ok("127.0.0.1", d.port, B, INIT)[0]
    # no list: no key (files stay what LIO writes)
    rpc.call("tpg.set_allowed_networks", allowed_networks=[], **T)
    rpc.call("acl.set_allowed_networks", allowed_networks=[], node_wwn=INIT, **T)
    cfg = rpc.call("get_config")
    assert "allowed_networks" not in cfg["targets"][0]["tpgs"][0]
    assert "allowed_networks" not in cfg["targets"][0]["tpgs"][0]["node_acls"][0]
    # a bad entry in a file: the TPG is refused, named
    bad = json.loads(json.dumps(cfg))
    bad["targets"][0]["tpgs"][0]["allowed_networks"] = ["127.0.0.0/99"]
    res = rpc.call("restore_config", config=bad, clear_existing=True)
    assert any("127.0.0.0/99" in e and "skipped" in e for e in res["errors"]), res
    # skipped, not restored open to everyone
    with pytest.raises(RpcError):
        rpc.call("tpg.get_allowed_networks", **T)


def test_utargetcli_netacl(netd, workdir):
    from test_cli import _cli_path
    d, rpc = netd
    env = {"UTARGET_SOCKET": d.sock, "UTARGETCLI_HOME": os.path.join(str(workdir), "h"),
           "TERM": "dumb", "ASAN_OPTIONS": "detect_leaks=1"}

    def cli(*args):
        res = ut.run([_cli_path()] + list(args), env=env, timeout=60)
        assert "AddressSanitizer" not in res.stderr, ut.describe(res, d)
        return res

    tpgp = "/iscsi/%s/tpg1" % B
    aclp = tpgp + "/acls/" + INIT
    res = cli(tpgp, "set", "netacl", "allowed_networks=127.0.0.0/8,::1/128")
    assert res.returncode == 0, ut.describe(res, d)
    assert "Parameter allowed_networks is now '127.0.0.0/8,::1/128'." in res.stdout
    assert rpc.call("tpg.get_allowed_networks", **T)["allowed_networks"] == \
        ["127.0.0.0/8", "::1/128"]
    res = cli(aclp, "set", "netacl", "allowed_networks=127.0.0.1")
    assert res.returncode == 0, ut.describe(res, d)
    res = cli(tpgp, "get", "netacl")
    assert res.returncode == 0 and "allowed_networks=127.0.0.0/8,::1/128" in res.stdout, \
        ut.describe(res, d)
    res = cli(aclp, "get", "netacl", "allowed_networks")
    assert "allowed_networks=127.0.0.1/32" in res.stdout, ut.describe(res, d)
    res = cli("ls", tpgp)
    assert "networks: 127.0.0.0/8,::1/128" in res.stdout, ut.describe(res, d)
    assert "networks: 127.0.0.1/32" in res.stdout, ut.describe(res, d)
    # a bad CIDR: refused, named, nothing changed
    res = cli(tpgp, "set", "netacl", "allowed_networks=10.0.0.0/8,300.1.1.1")
    assert res.returncode != 0 and "300.1.1.1" in res.stderr, ut.describe(res, d)
    assert rpc.call("tpg.get_allowed_networks", **T)["allowed_networks"] == \
        ["127.0.0.0/8", "::1/128"]
    # the group is offered on TPG and ACL nodes
    res = cli(tpgp, "get")
    assert "netacl" in res.stdout, ut.describe(res, d)
    # empty: everyone
    res = cli(tpgp, "set", "netacl", "allowed_networks=none")
    assert res.returncode == 0, ut.describe(res, d)
    assert rpc.call("tpg.get_allowed_networks", **T)["allowed_networks"] == []


RTSLIB_SCRIPT = r'''
import sys
from utarget.rtslib import RTSRoot
from utarget.rtslib.utils import RTSLibError
root = RTSRoot()
tpg = [t for t in root.tpgs if t.parent_target.wwn == sys.argv[1]][0]
acl = [a for a in tpg.node_acls if a.node_wwn == sys.argv[2]][0]
assert tpg.allowed_networks == [], tpg.allowed_networks
tpg.allowed_networks = ["127.0.0.0/8", "::1"]
assert tpg.allowed_networks == ["127.0.0.0/8", "::1/128"], tpg.allowed_networks
acl.allowed_networks = "127.0.0.1"
assert acl.allowed_networks == ["127.0.0.1/32"], acl.allowed_networks
try:
    acl.allowed_networks = ["bogus"]
except RTSLibError as e:
    assert "bogus" in str(e), e
else:
    raise AssertionError("bogus accepted")
assert acl.allowed_networks == ["127.0.0.1/32"]
print("OK")
'''


def test_rtslib_allowed_networks(netd, workdir):
    import rtslib_testutil as rt
    d, rpc = netd
    res = ut.run([sys.executable, "-c", RTSLIB_SCRIPT, B, INIT], env=rt.python_env(d.sock))
    assert res.returncode == 0 and "OK" in res.stdout, ut.describe(res, d)
    assert rpc.call("acl.get_allowed_networks", node_wwn=INIT, **T) == \
        {"allowed_networks": ["127.0.0.1/32"]}


def test_libutarget_allowed_networks(netd):
    """The C API (libutarget) setters, called through ctypes."""
    import ctypes
    lib = ctypes.CDLL(os.path.join(os.path.dirname(__file__), "..", "..", "build",
                                   "libutarget.so.0"))
    lib.ut_open.restype = ctypes.c_void_p
    lib.ut_open.argtypes = [ctypes.c_char_p]
    lib.ut_connect.argtypes = [ctypes.c_void_p]
    lib.ut_close.argtypes = [ctypes.c_void_p]
    arr_t = ctypes.c_char_p * 2
    for f in (lib.ut_tpg_set_allowed_networks,):
        f.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint, arr_t, ctypes.c_size_t]
    lib.ut_acl_set_allowed_networks.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                                ctypes.c_uint, ctypes.c_char_p, arr_t,
                                                ctypes.c_size_t]
    d, rpc = netd
    ctx = lib.ut_open(d.sock.encode())
    assert ctx and lib.ut_connect(ctx) == 0
    try:
        nets = arr_t(b"127.0.0.0/8", b"::1")
        assert lib.ut_tpg_set_allowed_networks(ctx, B.encode(), 1, nets, 2) == 0
        assert rpc.call("tpg.get_allowed_networks", **T)["allowed_networks"] == \
            ["127.0.0.0/8", "::1/128"]
        bad = arr_t(b"127.0.0.1", b"nope")
        assert lib.ut_acl_set_allowed_networks(ctx, B.encode(), 1, INIT.encode(), bad, 2) != 0
        assert rpc.call("acl.get_allowed_networks", node_wwn=INIT, **T)["allowed_networks"] == []
        assert lib.ut_acl_set_allowed_networks(ctx, B.encode(), 1, INIT.encode(), bad, 1) == 0
        assert rpc.call("acl.get_allowed_networks", node_wwn=INIT, **T)["allowed_networks"] == \
            ["127.0.0.1/32"]
    finally:
        lib.ut_close(ctx)
