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
