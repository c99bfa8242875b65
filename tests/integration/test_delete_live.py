"""Deleting what live sessions use never hangs (issue 21, beyond LIO): a target, a TPG or a
node ACL deleted (or a TPG disabled) under logged-in initiators answers at once; each of
their sessions gets an Asynchronous Message asking it to log out (RFC 7143 11.9.1,
AsyncEvent 1, Parameter3 = seconds), its LUNs are gone meanwhile, and the connection ends
within that time plus one second whether the initiator logs out or not. Other targets'
sessions keep serving.
"""

import struct
import subprocess
import time

import iscsiraw as raw
import uthelpers as ut
from rpcclient import RpcClient
from uthelpers import MiB

T1 = "iqn.2003-01.org.linux-iscsi.test:del1"
T2 = "iqn.2003-01.org.linux-iscsi.test:del2"
INIT = "iqn.1994-05.com.example:deleter"
WAIT_S = 2   # what the daemon gives an initiator to log out (ISCSI_LOGOUT_WAIT_S)


def _daemon(config, utarget):
    config.target(T1).tpg().lun(0, config.ramdisk("r1", size=8 * MiB))
    tpg2 = config.target(T2).tpg()
    tpg2.lun(0, config.ramdisk("r2", size=8 * MiB))
    d = utarget(config)
    return d, RpcClient(d.sock).connect()


def _session(d, target, isid, initiator=raw.INITIATOR):
    c = raw.RawConn("127.0.0.1", d.port, isid=isid)
    c.login(target=target, initiator=initiator)
    for _ in range(4):   # POWER ON unit attention out of the way
        p, _ = c.command(bytes(6))
        if p is not None and p.status == 0:
            break
    return c


def _logout_request(c, timeout=3):
    got, p = c.recv_until(raw.OP_ASYNC, timeout)
    assert p is not None, "no Asynchronous Message; got %r" % got
    event = p.bhs[36]
    param3 = struct.unpack(">H", p.bhs[42:44])[0]
    assert event == 1 and param3 == WAIT_S, (event, param3)
    return p


def _timed(rpc, method, **params):
    t0 = time.monotonic()
    rpc.call(method, **params)
    took = time.monotonic() - t0
    assert took < 1.0, "%s took %.1f s with sessions open" % (method, took)


def test_target_delete_asks_for_logout_then_closes(config, utarget):
    d, rpc = _daemon(config, utarget)
    polite = _session(d, T1, [0x80, 0, 0, 0, 0, 1])
    deaf = _session(d, T1, [0x80, 0, 0, 0, 0, 2])
    other = _session(d, T2, [0x80, 0, 0, 0, 0, 3])
    _timed(rpc, "target.delete", wwn=T1)
    t0 = time.monotonic()
    _logout_request(polite)
    _logout_request(deaf)
    # meanwhile the connection answers, but the deleted target's LUN is gone
    p, _ = polite.command(bytes([0x12, 0, 0, 0, 36, 0]), edtl=36, read=True)
    assert p is not None
    # one initiator logs out as asked: a normal Logout Response, then the close
    rsp = polite.logout()
    assert rsp is not None and rsp.bhs[2] == 0, "logout refused"
    assert polite.closed_within(2)
    # the other says nothing: closed by the bound, not left hanging
    assert deaf.closed_within(WAIT_S + 3)
    assert time.monotonic() - t0 < WAIT_S + 3
    # the other target's session never noticed
    p, _ = other.command(bytes(6))
    assert p is not None and p.status == 0
    other.close()


def test_tpg_delete_disable_and_acl_delete(config, utarget):
    d, rpc = _daemon(config, utarget)
    rpc.call("tpg.set_attributes", wwn=T2, tag=1,
             attributes={"generate_node_acls": 0})
    rpc.call("acl.create", wwn=T2, tag=1, node_wwn=INIT)
    a = _session(d, T1, [0x80, 0, 0, 0, 0, 4])
    b = _session(d, T2, [0x80, 0, 0, 0, 0, 5], initiator=INIT)
    _timed(rpc, "acl.delete", wwn=T2, tag=1, node_wwn=INIT)
    _logout_request(b)
    assert b.closed_within(WAIT_S + 3)
    _timed(rpc, "tpg.enable", wwn=T1, tag=1, enable=False)
    _logout_request(a)
    assert a.closed_within(WAIT_S + 3)
    rpc.call("tpg.enable", wwn=T1, tag=1, enable=True)
    c = _session(d, T1, [0x80, 0, 0, 0, 0, 6])
    _timed(rpc, "tpg.delete", wwn=T1, tag=1)
    _logout_request(c)
    assert c.closed_within(WAIT_S + 3)


def test_delete_under_a_real_initiator_writing(config, utarget):
    """qemu-io writing through libiscsi when its target is deleted: the delete answers
    at once and the session is gone within the bound (libiscsi then keeps trying to log in
    again, which is the initiator's business: each attempt is refused), the daemon serves
    the other target on."""
    d, rpc = _daemon(config, utarget)
    cmds = ["aio_write -P 0x%02x %d 64k" % (i % 200 + 1, (i % 100) * 65536)
            for i in range(4000)]
    q = ut.qemu_io(d.image_opts(0, T1), cmds + ["aio_flush"], popen=True)
    try:
        deadline = time.monotonic() + 20
        while not [s for s in rpc.call("sessions") if s["target"] == T1]:
            assert time.monotonic() < deadline and q.poll() is None, "qemu-io never logged in"
            time.sleep(0.05)
        time.sleep(0.3)
        _timed(rpc, "target.delete", wwn=T1)
        t0 = time.monotonic()
        while [s for s in rpc.call("sessions") if s["target"] == T1]:
            assert time.monotonic() - t0 < WAIT_S + 3, "the session outlived the bound"
            time.sleep(0.1)
    finally:
        q.kill()
        q.communicate()
    assert d.proc.poll() is None, d.stderr_tail()
    res = ut.qemu_io(d.image_opts(0, T2), ["write -P 0x21 0 65536", "read -P 0x21 0 65536"])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
