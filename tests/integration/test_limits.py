"""Resource limits (utargetd -o NAME=VALUE; issue 9 "Limits"): sessions per target,
connections per portal, task-buffer memory per connection. Each limit refuses the one
request past it with the RFC's / SAM's answer and lets the rest carry on."""

import os
import socket
import struct

import iscsiraw as raw
import uthelpers as ut

IQN = ut.DEFAULT_TARGET


def start(config, utarget, utargetd_bin, *limits):
    cfg_path = os.path.join(str(config.workdir), "limits-saveconfig.json")
    config.write(cfg_path)
    sock = os.path.join(str(config.workdir), "limits.sock")
    argv = [utargetd_bin, "-c", cfg_path, "-s", sock, "-f"]
    for lim in limits:
        argv += ["-o", lim]
    return utarget(config, argv=argv)


def test_max_sessions_per_target(config, utarget, utargetd_bin):
    config.target().tpg().lun(0, config.ramdisk("rd0"))
    d = start(config, utarget, utargetd_bin, "max_sessions_per_target=2")
    a = raw.RawConn("127.0.0.1", d.port)
    b = raw.RawConn("127.0.0.1", d.port)
    c = raw.RawConn("127.0.0.1", d.port)
    try:
        a.login(IQN, initiator="iqn.1994-05.com.example:l1")
        b.login(IQN, initiator="iqn.1994-05.com.example:l2")
        try:
            c.login(IQN, initiator="iqn.1994-05.com.example:l3")
            raise AssertionError("a third session logged in")
        except AssertionError as e:
            assert "0x0302" in str(e), e     # out of resources
        assert "max_sessions_per_target" in d.stderr_tail()
        # the sessions inside the limit still work, and a freed slot can be used
        assert a.ping() is not None and b.ping() is not None
        assert a.logout() is not None
        a.close()
        e = raw.RawConn("127.0.0.1", d.port)
        e.login(IQN, initiator="iqn.1994-05.com.example:l4")
        assert e.ping() is not None
        e.close()
    finally:
        for x in (a, b, c):
            x.close()


def _accepted(port):
    """True when the target keeps a new TCP connection open (a refused one is closed
    right after accept: recv sees EOF)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(1.0)
    try:
        return s.recv(1) != b""
    except socket.timeout:
        return True
    except ConnectionError:
        return False
    finally:
        s.close()


def test_max_connections_per_portal(config, utarget, utargetd_bin):
    config.target().tpg().lun(0, config.ramdisk("rd0"))
    d = start(config, utarget, utargetd_bin, "max_connections_per_portal=2")
    held = [socket.create_connection(("127.0.0.1", d.port), timeout=5) for _ in range(2)]
    try:
        # accepts are counted in order on the control thread: the first two hold
        # the slots by the time the third is accepted
        assert not _accepted(d.port), "a third connection was kept"
        assert "max_connections_per_portal" in d.stderr_tail()
        held.pop().close()
        # the slot comes back once the target has seen the close
        for _ in range(50):
            if _accepted(d.port):
                break
        else:
            raise AssertionError("a freed connection slot never came back")
    finally:
        for s in held:
            s.close()


def test_max_connection_buffers_task_set_full(config, utarget, utargetd_bin):
    config.target().tpg().lun(0, config.ramdisk("rd0"))
    d = start(config, utarget, utargetd_bin, "max_connection_buffers=1048576")
    c = raw.RawConn("127.0.0.1", d.port)
    try:
        c.login(IQN, extra={"ImmediateData": "No"})
        c.command(raw.TUR)                          # the POWER ON unit attention
        # a 1 MiB write parks its buffer waiting for Data-Out ...
        first = c.next_itt()
        c.send(c.scsi_cmd(raw.write10(0, 2048), 1 << 20, write=True, itt=first))
        _, r2t = c.recv_until(raw.OP_R2T)
        assert r2t is not None and r2t.itt == first
        # ... so the next one has no room: TASK SET FULL (SAM-5), not a hang
        second = c.next_itt()
        c.send(c.scsi_cmd(raw.write10(4096, 8), 4096, write=True, itt=second))
        _, rsp = c.recv_until(raw.OP_SCSI_RSP)
        assert rsp is not None and rsp.itt == second
        assert rsp.status == 0x28, "status 0x%02x, expected TASK SET FULL" % rsp.status
        # small commands without buffers still run
        rsp, _ = c.command(raw.TUR)
        assert rsp.status == 0
    finally:
        c.close()
